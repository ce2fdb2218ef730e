#!/usr/bin/env bash
# The side-by-side run on an otherwise idle machine: 200 OFA subnets measured and the lookup
# table profiled back to back (same conditions), then every estimator scored on the same
# held-out subnets (3 splits). Output under experiments/local_cpu_latency/quiet/.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Parameters (environment): OUT (output folder), N (subnets), FIT (fitting subnets; the rest is
# held out), SEED (which subnets). Defaults: the 200-subnet run; `idle.sh` is the 1,000-subnet run.
OUT=${OUT:-experiments/local_cpu_latency/quiet}
N=${N:-200}
FIT=${FIT:-140}
SEED=${SEED:-7}
# README (optional): a study README whose report blocks <!-- report:${TAG}_median --> and
# <!-- report:${TAG}_min --> receive the two tables
README=${README:-}
TAG=${TAG:-quiet}
inject() { [ -n "$README" ] && echo "report.readme=$README report.section=${TAG}_$1" || true; }
RES='search_space.resolutions=[160,176,192,208,224]'
COMMON="logger=none paths.output_dir=$OUT device=local_cpu device.threads=1"
data=$OUT/measurements/ofa_mbv3__local_cpu_t1_b1.csv
lut=$OUT/luts/ofa_mbv3__local_cpu_t1_b1.yaml
# the table is profiled once (a rerun keeps it); the measurement resumes where it stopped
[ -f $lut ] || hwnas job=build_lut search_space=ofa_mbv3 "$RES" $COMMON hydra.run.dir=$OUT/runs/lut_ofa_mbv3
hwnas job=measure search_space=ofa_mbv3 "$RES" measure.n=$N measure.seed=$SEED measure.noise_subset=20 measure.noise_rounds=2 \
  $COMMON hydra.run.dir=$OUT/runs/measure_ofa_mbv3
common="job=evaluate search_space=ofa_mbv3 $RES device=table device.path=$data evaluate.train_samples=$FIT seed=0,1,2 logger=none"
rm -rf $OUT/runs/eval
hwnas -m $common estimator=flops estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval/flops
hwnas -m $common estimator=lut estimator.path=$lut hydra.sweep.dir=$OUT/runs/eval/lut
hwnas -m $common estimator=lut estimator.path=$lut estimator.statistic=median hydra.sweep.dir=$OUT/runs/eval/lut_median
hwnas -m $common estimator=lut estimator.path=$lut estimator.calibrate=true estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval/lut_calibrated
hwnas -m $common estimator=flops estimator.per_resolution=true estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval/flops_per_resolution
hwnas -m $common estimator=lut estimator.path=$lut estimator.statistic=median estimator.calibrate=per_resolution estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval/lut_per_resolution
hwnas -m $common estimator=predictor estimator.fit_samples=$FIT estimator.progress_bar=false hydra.sweep.dir=$OUT/runs/eval/predictor
hwnas job=report "report.dirs=[$OUT/runs/eval]" "report.rows=[estimator,estimator.statistic,estimator.calibrate,estimator.per_resolution]" \
  "report.metrics=[rmse_ms,rmse_pct,spearman,kendall,within_10pct,n_fit,n_test]" \
  "report.title='OFA MobileNetV3 on this CPU, quiet machine, $N subnets: held-out accuracy, mean ± std over 3 splits'" \
  report.output=$OUT/ofa_mbv3.md $(inject median) logger=none hydra.run.dir=$OUT/runs/report
# The same, with the robust statistics: per-layer median in the table, and each network's
# minimum over its 20 timed runs as the truth (interference only ever adds time).
common_min="job=evaluate search_space=ofa_mbv3 $RES device=table device.path=$data device.column=min_ms evaluate.train_samples=$FIT seed=0,1,2 logger=none"
rm -rf $OUT/runs/eval_min
hwnas -m $common_min estimator=flops estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval_min/flops
hwnas -m $common_min estimator=lut estimator.path=$lut estimator.statistic=median hydra.sweep.dir=$OUT/runs/eval_min/lut
hwnas -m $common_min estimator=lut estimator.path=$lut estimator.statistic=median estimator.calibrate=true estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval_min/lut_calibrated
hwnas -m $common_min estimator=flops estimator.per_resolution=true estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval_min/flops_per_resolution
hwnas -m $common_min estimator=lut estimator.path=$lut estimator.statistic=median estimator.calibrate=per_resolution estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval_min/lut_per_resolution
hwnas -m $common_min estimator=predictor estimator.fit_samples=$FIT estimator.progress_bar=false hydra.sweep.dir=$OUT/runs/eval_min/predictor
hwnas job=report "report.dirs=[$OUT/runs/eval_min]" "report.rows=[estimator,estimator.statistic,estimator.calibrate,estimator.per_resolution]" \
  "report.metrics=[rmse_ms,rmse_pct,spearman,kendall,within_10pct,n_fit,n_test]" \
  "report.title='Same $N subnets, truth = minimum of 20 runs, table = per-layer median: mean ± std over 3 splits'" \
  report.output=$OUT/ofa_mbv3_min.md $(inject min) logger=none hydra.run.dir=$OUT/runs/report_min
