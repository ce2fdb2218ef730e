#!/usr/bin/env bash
# Score latency estimators on this CPU's measurements (measure.sh must have run): every
# estimator fits on the same 70 % training pool and is scored on the same held-out 30 %,
# for three random splits (seed=0,1,2). Tables: ofa_mbv3.md, compofa_fixed.md, nb201.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/local_cpu_latency
DEV=local_cpu_t1_b1
study() {  # space, train pool, extra space overrides, estimators...
  local space=$1 pool=$2 extra=$3; shift 3
  local data=$OUT/measurements/${space}__${DEV}.csv lut=$OUT/luts/${space}__${DEV}.yaml
  local common="job=evaluate search_space=$space $extra device=table device.path=$data evaluate.train_samples=$pool seed=0,1,2 logger=none"
  rm -rf "$OUT/runs/eval_$space"
  hwnas -m $common estimator=flops estimator.fit_samples=$pool hydra.sweep.dir=$OUT/runs/eval_$space/flops
  hwnas -m $common estimator=lut estimator.path=$lut hydra.sweep.dir=$OUT/runs/eval_$space/lut
  hwnas -m $common estimator=lut estimator.path=$lut estimator.calibrate=true estimator.fit_samples=$pool \
    hydra.sweep.dir=$OUT/runs/eval_$space/lut_calibrated
  for est in "$@"; do
    hwnas -m $common estimator=$est estimator.fit_samples=$pool estimator.progress_bar=false \
      hydra.sweep.dir=$OUT/runs/eval_$space/$est
  done
  hwnas job=report "report.dirs=[$OUT/runs/eval_$space]" "report.rows=[estimator,estimator.calibrate]" \
    "report.metrics=[rmse_ms,rmse_pct,spearman,kendall,within_10pct,n_fit,n_test]" \
    "report.title='$space on this CPU (1 thread, batch 1): held-out estimator accuracy, mean ± std over 3 splits'" \
    report.output=$OUT/$space.md logger=none hydra.run.dir=$OUT/runs/report_$space
}
RES='search_space.resolutions=[160,176,192,208,224]'
study ofa_mbv3 700 "$RES" predictor
study compofa_fixed 280 "" predictor
study nb201 210 "" predictor gcn
# the datasets: size, noise floor (re-measured CV), within-run CV and median latency of each measure run
hwnas job=report "report.dirs=[$OUT/runs/measure_ofa_mbv3,$OUT/runs/measure_compofa_fixed,$OUT/runs/measure_nb201,$OUT/quiet/runs/measure_ofa_mbv3]" \
  "report.rows=[paths.output_dir,search_space]" \
  "report.metrics=[rows_total,noise_floor_cv_median,within_run_cv_median,latency_ms_median]" \
  "report.title='Measured datasets (1 thread, batch 1): rows, noise floor (median CV of re-measured subnets), median within-run CV, median latency (ms)'" \
  report.output=$OUT/datasets.md report.readme=$OUT/README.md report.section=datasets logger=none hydra.run.dir=$OUT/runs/report_datasets
