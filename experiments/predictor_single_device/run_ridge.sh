#!/usr/bin/env bash
# Ridge regression (estimator=ridge, closed form) on the same datasets and splits as run.sh, with the per-layer
# encoding (estimator.encoding=layers: one column per block x kernel x expansion x input resolution) and the
# latency in ms (target_transform=none: a sum over layers), beside ridge on the 128-d one-hot encoding (log
# latency, estimator=ridge's default); and both over the training-set sizes of the learning curve (RTX 2080 Ti).
# Tables: single_device_ridge.md beside published.yaml, learning_curve_ridge.md. ~8 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/predictor_single_device
source experiments/study.sh
COMMON="job=train_predictor device=syed estimator=ridge seed=0,1,2 logger=$LOGGER"
LAYERS="estimator.encoding=layers estimator.target_transform=none"
sweep $COMMON $LAYERS search_space=ofa_mbv3 device.column=note10_lut,rtx2080ti_b64,tesla_p40_b64 \
  hydra.sweep.dir=$OUT/runs/ridge/layers_ofa
sweep $COMMON $LAYERS search_space=compofa_fixed device.column=xeon_cpu_b64,rtx2080ti_b64 \
  hydra.sweep.dir=$OUT/runs/ridge/layers_compofa
sweep $COMMON search_space=ofa_mbv3 device.column=note10_lut,rtx2080ti_b64,tesla_p40_b64 \
  hydra.sweep.dir=$OUT/runs/ridge/onehot_ofa
sweep $COMMON search_space=compofa_fixed device.column=xeon_cpu_b64,rtx2080ti_b64 \
  hydra.sweep.dir=$OUT/runs/ridge/onehot_compofa
sweep $COMMON $LAYERS search_space=ofa_mbv3 device.column=rtx2080ti_b64 train.samples=100,300,1000,3000 \
  hydra.sweep.dir=$OUT/runs/ridge_curve/layers
sweep $COMMON search_space=ofa_mbv3 device.column=rtx2080ti_b64 train.samples=100,300,1000,3000 \
  hydra.sweep.dir=$OUT/runs/ridge_curve/onehot
hwnas job=report "report.dirs=[$OUT/runs/ridge]" "report.rows=[search_space,device.column,estimator.encoding]" \
  "report.metrics=[test/rmse_ms,test/rmse_pct,test/spearman,test/within_10pct,n_train,train_seconds]" \
  "report.title='Ridge regression, per-layer (layers, ms) and one-hot (log ms) encodings (test split of run.sh, mean ± std over 3 seeds)'" \
  report.published=$OUT/published.yaml report.output=$OUT/single_device_ridge.md report.readme=$OUT/README.md \
  report.section=ridge logger=none hydra.run.dir=$OUT/runs/report_ridge
hwnas job=report "report.dirs=[$OUT/runs/ridge_curve,$OUT/runs/ridge/layers_ofa,$OUT/runs/ridge/onehot_ofa]" \
  "report.rows=[estimator.encoding,train.samples]" "report.where=['device.column=rtx2080ti_b64']" \
  "report.metrics=[test/rmse_ms,test/rmse_pct,test/spearman,n_train]" \
  "report.title='Ridge learning curve on the RTX 2080 Ti (OFA): test metrics vs training-set size (the MLP: learning_curve.md)'" \
  report.output=$OUT/learning_curve_ridge.md report.readme=$OUT/README.md report.section=ridge_curve logger=none \
  hydra.run.dir=$OUT/runs/report_ridge_curve
