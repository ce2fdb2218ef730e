#!/usr/bin/env bash
# Issue #14, item 5: the same 300 OFA subnets of the main job's space (MobileNetV3 width 0.25, 24-32 px,
# 10 classes) measured on this CPU through four runtimes, 1 thread, batch 1, the protocol of
# docs/measurement.md: eager PyTorch (local_cpu), ONNX Runtime fp32, ONNX Runtime int8 (static QDQ) and
# OpenVINO fp32. Per runtime: the noise floor, p99/p50, a lookup table, and FLOPs vs calibrated table vs
# learned predictor on held-out subnets (210 fit / 90 held out, 3 splits). compare.py: latency ratios
# and how the ranking of the subnets changes between runtimes. Run on an otherwise idle machine: ~25 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/runtimes
source experiments/study.sh
SPACE='search_space.resolutions=[24,28,32] search_space.width_mult=0.25 search_space.num_classes=10'
DEVICES=(local_cpu onnxruntime onnxruntime_int8 openvino)
EXTRA=("" "" "device.runtime.quantize=static" "")   # int8: static (dynamic re-quantizes activations every run: ~8x slower than fp32 here)
for i in "${!DEVICES[@]}"; do
  d=${DEVICES[$i]}
  sweep job=measure device=$d ${EXTRA[$i]} $SPACE measure.n=300 measure.seed=7 measure.output=$OUT/measurements/$d.csv logger=$LOGGER \
    hydra.sweep.dir=$OUT/runs/measure_$d
  sweep job=build_lut device=$d ${EXTRA[$i]} $SPACE build_lut.output=$OUT/luts/$d.yaml logger=$LOGGER \
    hydra.sweep.dir=$OUT/runs/lut_$d
done
report measure "report.dirs=[$(printf "$OUT/runs/measure_%s," "${DEVICES[@]}" | sed 's/,$//')]" "report.rows=[device,device.runtime.quantize]" \
  "report.metrics=[rows_total,noise_floor_cv_median,noise_floor_raw_cv_median,latency_ms_median,p99_over_p50_median,seconds_per_arch]" \
  "report.title='300 OFA subnets (w0.25, 24-32 px) per runtime, 1 thread, batch 1: noise floor (probes re-measured, drift-corrected; raw beside it), median latency (ms), median p99/p50, measuring seconds per subnet'"
FIT=210
for i in "${!DEVICES[@]}"; do
  d=${DEVICES[$i]}
  TABLE="device=table device.path=$OUT/measurements/$d.csv device.name=$d"
  sweep job=evaluate $SPACE $TABLE seed=0,1,2 evaluate.train_samples=$FIT \
    estimator=flops estimator.fit_samples=$FIT logger=$LOGGER hydra.sweep.dir=$OUT/runs/eval_flops_$d
  sweep job=evaluate $SPACE $TABLE seed=0,1,2 evaluate.train_samples=$FIT estimator=lut estimator.path=$OUT/luts/$d.yaml \
    estimator.statistic=median estimator.calibrate=per_resolution estimator.fit_samples=$FIT logger=$LOGGER \
    hydra.sweep.dir=$OUT/runs/eval_lut_$d
  sweep job=evaluate $SPACE $TABLE seed=0,1,2 evaluate.train_samples=$FIT estimator=predictor estimator.fit_samples=$FIT \
    'estimator.hidden=[64]' estimator.epochs=1000 estimator.progress_bar=false logger=$LOGGER \
    hydra.sweep.dir=$OUT/runs/eval_predictor_$d
  sweep job=evaluate $SPACE $TABLE seed=0,1,2 evaluate.train_samples=$FIT estimator=ridge estimator.fit_samples=$FIT \
    logger=$LOGGER hydra.sweep.dir=$OUT/runs/eval_ridge_$d
done
# the main job's size: 140 fitted subnets (70 % of its 200), on ONNX Runtime, every estimator on the same splits
TABLE="device=table device.path=$OUT/measurements/onnxruntime.csv device.name=onnxruntime"
sweep job=evaluate $SPACE $TABLE seed=0,1,2 evaluate.train_samples=140 estimator=flops estimator.fit_samples=140 \
  logger=$LOGGER hydra.sweep.dir=$OUT/runs/fit140_flops
sweep job=evaluate $SPACE $TABLE seed=0,1,2 evaluate.train_samples=140 estimator=lut estimator.path=$OUT/luts/onnxruntime.yaml \
  estimator.statistic=median estimator.calibrate=per_resolution estimator.fit_samples=140 logger=$LOGGER \
  hydra.sweep.dir=$OUT/runs/fit140_lut
sweep job=evaluate $SPACE $TABLE seed=0,1,2 evaluate.train_samples=140 estimator=predictor estimator.fit_samples=140 \
  'estimator.hidden=[64]' estimator.epochs=1000 estimator.progress_bar=false logger=$LOGGER \
  hydra.sweep.dir=$OUT/runs/fit140_predictor
sweep job=evaluate $SPACE $TABLE seed=0,1,2 evaluate.train_samples=140 estimator=ridge estimator.fit_samples=140 \
  logger=$LOGGER hydra.sweep.dir=$OUT/runs/fit140_ridge
# the predictor's default network (3 x 400, 300 epochs as the main job had it) beside the 64-unit one, on ONNX Runtime
sweep job=evaluate $SPACE device=table device.path=$OUT/measurements/onnxruntime.csv device.name=onnxruntime seed=0,1,2 \
  evaluate.train_samples=$FIT estimator=predictor estimator.fit_samples=$FIT estimator.epochs=300 estimator.progress_bar=false \
  logger=$LOGGER hydra.sweep.dir=$OUT/runs/eval_predictor400_onnxruntime
dirs=$(for d in "${DEVICES[@]}"; do printf "$OUT/runs/eval_%s_$d," flops lut predictor ridge; done | sed 's/,$//')
dirs="$dirs,$OUT/runs/eval_predictor400_onnxruntime"
report estimators "report.dirs=[$dirs]" "report.rows=[device.name,estimator,estimator.hidden,estimator.epochs]" \
  "report.metrics=[rmse_pct,spearman,kendall,within_10pct,n_fit,n_test]" \
  "report.title='Held-out accuracy per runtime (210 fit / 90 held out), mean ± std over 3 splits: FLOPs (linear fit), calibrated lookup table, MLP predictor (3 x 400 where estimator.hidden is empty), ridge regression on the one-hot encoding'"
report fit140 "report.dirs=[$(printf "$OUT/runs/fit140_%s," flops lut predictor ridge | sed 's/,$//')]" \
  "report.rows=[estimator,estimator.hidden]" "report.metrics=[rmse_pct,spearman,kendall,within_10pct,n_fit,n_test]" \
  "report.title='ONNX Runtime, 140 fit / 160 held out (the main job fits 140), mean ± std over 3 splits'"
python $OUT/compare.py $OUT/measurements "${DEVICES[@]}" > $OUT/compare.md
python -c "import sys; from hwnas.report import inject; inject(sys.argv[1], 'compare', open(sys.argv[2]).read())" \
  $OUT/README.md $OUT/compare.md
