#!/usr/bin/env bash
# Issue #15, item 2: a kernel-level lookup table in the manner of nn-Meter (fused conv+bn+act,
# depthwise conv+bn+act, squeeze-and-excite, residual add, ... each profiled per configuration and
# summed) beside OFA's block-level table, FLOPs and ridge regression, on this CPU through eager PyTorch
# and ONNX Runtime. Per runtime, back to back: 300 OFA MobileNetV3 subnets (width 1.0, 160-224 px)
# measured, the block table and the kernel table profiled; then every estimator scored on the same
# held-out subnets (210 fit / 90 held out, 3 splits). Run on an otherwise idle machine: ~45 min (ONNX Runtime measures 300 subnets in ~24 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/kernel_lut
source experiments/study.sh
SPACE='search_space=ofa_mbv3 search_space.resolutions=[160,176,192,208,224]'
DEVICES=(local_cpu onnxruntime)
FIT=210
for d in "${DEVICES[@]}"; do
  sweep job=measure device=$d $SPACE measure.n=300 measure.seed=5 measure.output=$OUT/measurements/$d.csv \
    logger=$LOGGER hydra.sweep.dir=$OUT/runs/measure_$d
  for g in layer kernel; do
    sweep job=build_lut device=$d $SPACE build_lut.granularity=$g build_lut.output=$OUT/luts/${d}_$g.yaml \
      logger=$LOGGER hydra.sweep.dir=$OUT/runs/lut_${d}_$g
  done
done
tables=$(for d in "${DEVICES[@]}"; do printf "$OUT/runs/lut_${d}_%s," layer kernel; done | sed 's/,$//')
report tables "report.dirs=[$tables]" \
  "report.rows=[device,build_lut.granularity]" "report.metrics=[n_layers,profile_seconds]" \
  "report.title='Lookup tables of the space (OFA MobileNetV3 w1.0, 160-224 px step 16): entries and profiling seconds'"
for d in "${DEVICES[@]}"; do
  common="job=evaluate $SPACE device=table device.path=$OUT/measurements/$d.csv device.name=$d seed=0,1,2 evaluate.train_samples=$FIT logger=$LOGGER"
  sweep $common estimator=flops estimator.per_resolution=true estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval_${d}_flops
  sweep $common estimator=ridge estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval_${d}_ridge
  for g in layer kernel; do
    sweep $common estimator=lut estimator.granularity=$g estimator.path=$OUT/luts/${d}_$g.yaml estimator.statistic=median \
      hydra.sweep.dir=$OUT/runs/eval_${d}_${g}_raw
    sweep $common estimator=lut estimator.granularity=$g estimator.path=$OUT/luts/${d}_$g.yaml estimator.statistic=median \
      estimator.calibrate=per_resolution estimator.fit_samples=$FIT hydra.sweep.dir=$OUT/runs/eval_${d}_${g}_calibrated
  done
done
dirs=$(for d in "${DEVICES[@]}"; do printf "$OUT/runs/eval_${d}_%s," flops ridge layer_raw kernel_raw layer_calibrated kernel_calibrated; done | sed 's/,$//')
report estimators "report.dirs=[$dirs]" "report.rows=[device.name,estimator,estimator.granularity,estimator.calibrate]" \
  "report.metrics=[rmse_pct,spearman,kendall,within_5pct,within_10pct,n_fit,n_test]" \
  "report.title='Held-out accuracy (210 fit / 90 held out), mean ± std over 3 splits: FLOPs fitted per resolution, ridge on the one-hot encoding, block (layer) and kernel tables raw and calibrated per resolution'"
