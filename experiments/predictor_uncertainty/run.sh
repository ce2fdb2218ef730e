#!/usr/bin/env bash
# Issue #15, item 3: per-architecture 90 % latency intervals from the MLP's quantile heads (estimator.interval=0.9),
# calibrated on the validation split by conformalized quantile regression, and (estimator.interval_method=flops_gap)
# from the gap between the MLP and a FLOPs fit on its training set, calibrated by normalized conformal regression, and
# (cv_plus) by CV+ over 5 fold models; scored on the test split (coverage,
# median width relative to the prediction): HELP NB201 (Pixel 3), HELP FBNet (Raspberry Pi 4), Syed OFA (RTX 2080
# Ti), 1,000 training architectures each, and this CPU's ONNX Runtime measurements of experiments/runtimes (300
# subnets: 210 / 45 / 45). 3 seeds. ~45 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/predictor_uncertainty
source experiments/study.sh
COMMON="job=train_predictor estimator.interval=0.9 estimator.progress_bar=false seed=0,1,2 logger=$LOGGER"
# the four datasets once per interval method: quantile (no override, the default: two quantile heads, conformalized on
# the validation split); flops_gap (each interval's width from the gap between the prediction and a FLOPs fit on the
# same training architectures, normalized conformal regression, hwnas/predictors/intervals.py, no quantile heads);
# cv_plus (CV+ over 5 more models, each trained without one fifth of the training split, Barber et al. 2021; its
# intervals need no calibration: calibrate_interval leaves them as they are). Sweep dirs: runs/<dataset>[_<method>]
for M in "" flops_gap cv_plus; do
  I=${M:+estimator.interval_method=$M} S=${M:+_$M}
  sweep $COMMON $I search_space=nb201 device=help device.column=pixel3 train.samples=1000 hydra.sweep.dir=$OUT/runs/nb201$S
  sweep $COMMON $I search_space=fbnet device=help device.column=raspi4 train.samples=1000 hydra.sweep.dir=$OUT/runs/fbnet$S
  sweep $COMMON $I search_space=ofa_mbv3 device=syed device.column=rtx2080ti_b64 train.samples=1000 \
    hydra.sweep.dir=$OUT/runs/ofa$S
  sweep $COMMON $I 'search_space.resolutions=[24,28,32]' search_space.width_mult=0.25 search_space.num_classes=10 \
    device=table device.path=experiments/runtimes/measurements/onnxruntime.csv device.name=onnxruntime \
    'estimator.hidden=[64]' estimator.epochs=1000 hydra.sweep.dir=$OUT/runs/onnxruntime$S
done
hwnas job=report "report.dirs=[$OUT/runs]" "report.rows=[search_space,device.column,device.name,estimator.interval_method]" \
  "report.metrics=[interval_coverage,interval_width_pct,test/rmse_pct,test/spearman,n_train,n_val,n_test]" \
  "report.title='90 % intervals (quantile heads, or interval_method flops_gap, both calibrated on the validation split; or cv_plus, calibrated by its folds): coverage and median width (% of the prediction) on the test split, mean ± std over 3 seeds'" \
  report.output=$OUT/coverage.md report.readme=$OUT/README.md report.section=coverage logger=none \
  hydra.run.dir=$OUT/runs/report_coverage
