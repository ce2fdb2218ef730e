#!/usr/bin/env bash
# Single-device MLP latency predictors (OFA/Syed recipe: 128-d one-hot -> 3 x 400 -> 1) on the
# Syed et al. OFA/CompOFA datasets, 70/15/15 split, 3 seeds; and a learning curve over the
# training-set size on the RTX 2080 Ti data. Tables (also in README.md): single_device.md
# beside published.yaml, learning_curve.md (+ learning_curve_rmse.png).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/predictor_single_device
source experiments/study.sh  # LOGGER: W&B offline, one project per study
COMMON="job=train_predictor device=syed estimator.epochs=200 estimator.progress_bar=false seed=0,1,2 logger=$LOGGER"
hwnas -m $COMMON search_space=ofa_mbv3 device.column=note10_lut,rtx2080ti_b64,tesla_p40_b64 \
  hydra.sweep.dir=$OUT/runs/single/ofa_mbv3
hwnas -m $COMMON search_space=compofa_fixed device.column=xeon_cpu_b64,rtx2080ti_b64 \
  hydra.sweep.dir=$OUT/runs/single/compofa_fixed
hwnas -m $COMMON search_space=ofa_mbv3 device.column=rtx2080ti_b64 train.samples=100,300,1000,3000 \
  hydra.sweep.dir=$OUT/runs/learning_curve
hwnas job=report "report.dirs=[$OUT/runs/single]" "report.rows=[search_space,device.column]" \
  "report.metrics=[test/rmse_ms,test/rmse_pct,test/spearman,test/kendall,test/within_10pct,n_train,train_seconds]" \
  "report.title='Single-device MLP predictors (test split, mean ± std over 3 seeds) beside the published RMSE'" \
  report.published=$OUT/published.yaml report.readme=$OUT/README.md report.section=single \
  report.output=$OUT/single_device.md logger=none hydra.run.dir=$OUT/runs/report_single
hwnas job=report "report.dirs=[$OUT/runs/learning_curve,$OUT/runs/single/ofa_mbv3]" "report.rows=[device.column,train.samples]" \
  "report.where=['device.column=rtx2080ti_b64']" \
  "report.metrics=[test/rmse_ms,test/rmse_pct,test/spearman,n_train]" \
  "report.title='Learning curve on the RTX 2080 Ti (OFA): test metrics vs training-set size'" \
  "report.plots=[{kind: line, x: n_train, y: test/rmse_ms, by: [device.column], logx: true, logy: true, name: rmse, title: 'Test RMSE (ms) vs training architectures, mean ± std over 3 seeds'}]" \
  report.readme=$OUT/README.md report.section=learning_curve \
  report.output=$OUT/learning_curve.md logger=none hydra.run.dir=$OUT/runs/report_curve
