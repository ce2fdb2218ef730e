"""Learned latency predictors: networks, LightningModule, data, transfer."""
from hwnas.predictors.estimator import PredictorEstimator
from hwnas.predictors.module import LatencyPredictor, load_predictor, save_predictor

__all__ = ["PredictorEstimator", "LatencyPredictor", "load_predictor", "save_predictor"]
