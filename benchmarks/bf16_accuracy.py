"""How much bf16 inference changes a trained predictor's output (the throughput table's caveat).

Usage: python benchmarks/bf16_accuracy.py <predictor.pt> [syed device column, default note10_lut]
(e.g. a predictor.pt from `hwnas job=train_predictor search_space=ofa_mbv3 device=syed`).
"""
import sys

import numpy as np
import scipy.stats as st

from hwnas.devices import TableDevice
from hwnas.predictors import PredictorEstimator
from hwnas.spaces import get_space

checkpoint, column = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "note10_lut")
space = get_space("ofa_mbv3")
archs, latency = TableDevice(source="syed", column=column, space="ofa_mbv3").dataset(space)
fp32 = PredictorEstimator(checkpoint=checkpoint).predict(space, archs)
bf16 = PredictorEstimator(checkpoint=checkpoint, precision="bf16").predict(space, archs)
rel = np.abs(bf16 - fp32) / fp32
print(f"{len(archs)} archs: bf16 vs fp32 relative deviation median {np.median(rel):.2e}, max {rel.max():.2e}; "
      f"Spearman(fp32, bf16) {st.spearmanr(fp32, bf16).statistic:.7f}; RMSE vs truth fp32 "
      f"{np.sqrt(np.mean((fp32 - latency) ** 2)):.4f} ms, bf16 {np.sqrt(np.mean((bf16 - latency) ** 2)):.4f} ms")
