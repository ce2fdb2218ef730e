"""Learned latency predictors: networks, LightningModule, data, transfer."""
from hwnas.predictors.estimator import PredictorEstimator
from hwnas.predictors.module import LatencyPredictor, load_predictor, save_predictor
from hwnas.predictors.transfer import MultiDevicePredictor, TransferredPredictor, fine_tune, select_samples

__all__ = ["PredictorEstimator", "LatencyPredictor", "load_predictor", "save_predictor", "MultiDevicePredictor",
           "TransferredPredictor", "fine_tune", "select_samples"]
