#!/usr/bin/env bash
# The same single-device study with the recipe chosen on the validation split of the Note10 data:
# 500 epochs, batch 128, standardized (not log) latency. Table: single_device_tuned.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/predictor_single_device
source experiments/study.sh  # LOGGER: W&B offline, one project per study
COMMON="job=train_predictor device=syed estimator.epochs=500 estimator.batch_size=128 estimator.target_transform=none estimator.progress_bar=false logger=$LOGGER"
hwnas -m $COMMON search_space=ofa_mbv3 device.column=note10_lut,rtx2080ti_b64 seed=${SEEDS:-0,1,2} hydra.sweep.dir=$OUT/runs/tuned/ofa_a
hwnas -m $COMMON search_space=ofa_mbv3 device.column=tesla_p40_b64 seed=${SEEDS:-0,1,2} hydra.sweep.dir=$OUT/runs/tuned/ofa_b
hwnas -m $COMMON search_space=compofa_fixed device.column=xeon_cpu_b64 seed=${SEEDS:-0,1,2} hydra.sweep.dir=$OUT/runs/tuned/compofa
hwnas job=report "report.dirs=[$OUT/runs/tuned]" "report.rows=[search_space,device.column]" \
  "report.metrics=[test/rmse_ms,test/rmse_pct,test/spearman,test/kendall,test/within_10pct,val/rmse_ms,n_train,train_seconds]" \
  "report.title='Single-device MLP predictors, tuned recipe (test split, mean ± std over 3 seeds)'" \
  report.published=$OUT/published.yaml report.output=$OUT/single_device_tuned.md report.readme=$OUT/README.md report.section=tuned logger=none \
  hydra.run.dir=$OUT/runs/report_tuned
