#!/usr/bin/env bash
# Issue #14, item 2 (latency per batch size, throughput): 100 OFA subnets of the main job's space measured
# at batch 1 and at a server batch of 32, through ONNX Runtime and eager PyTorch, 1 thread, the protocol of
# docs/measurement.md. Per setting: noise floor, median latency, throughput (images/s), p99/p50; then how
# the ranking of the subnets changes with the batch size (compare.py of experiments/runtimes).
# Run on an otherwise idle machine: ~8 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/batch_size
source experiments/study.sh
SPACE='search_space.resolutions=[24,28,32] search_space.width_mult=0.25 search_space.num_classes=10'
NAMES=()
for d in onnxruntime local_cpu; do
  for b in 1 32; do
    sweep job=measure device=$d device.batch_size=$b $SPACE measure.n=100 measure.seed=7 \
      measure.output=$OUT/measurements/${d}_b$b.csv logger=$LOGGER hydra.sweep.dir=$OUT/runs/measure_${d}_b$b
    NAMES+=("${d}_b$b")
  done
done
report measure "report.dirs=[$(printf "$OUT/runs/measure_%s," "${NAMES[@]}" | sed 's/,$//')]" \
  "report.rows=[device,device.batch_size]" \
  "report.metrics=[rows_total,noise_floor_cv_median,latency_ms_median,images_per_s_median,p99_over_p50_median,seconds_per_arch]" \
  "report.title='100 OFA subnets (w0.25, 24-32 px), 1 thread, batch 1 and 32: noise floor (probes re-measured, drift-corrected), median latency of one batch (ms), median throughput (images/s), median p99/p50, measuring seconds per subnet'"
python experiments/runtimes/compare.py $OUT/measurements "${NAMES[@]}" > $OUT/compare.md
python -c "import sys; from hwnas.report import inject; inject(sys.argv[1], 'compare', open(sys.argv[2]).read())" \
  $OUT/README.md $OUT/compare.md
