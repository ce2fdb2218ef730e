#!/usr/bin/env bash
# device=litert beside the four runtimes of run.sh, on the first 40 of the same 300 subnets (measure.seed=7):
# LiteRT's converter takes 10-20 s per subnet here, so not all 300. Needs `pip install 'hwnas[litert]'`.
# Run on an otherwise idle machine after run.sh: ~12 min.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/runtimes
source experiments/study.sh
SPACE='search_space.resolutions=[24,28,32] search_space.width_mult=0.25 search_space.num_classes=10'
sweep job=measure device=litert $SPACE measure.n=40 measure.seed=7 measure.output=$OUT/measurements/litert.csv \
  logger=$LOGGER hydra.sweep.dir=$OUT/runs/measure_litert
report measure_litert "report.dirs=[$OUT/runs/measure_litert]" "report.rows=[device]" \
  "report.metrics=[rows_total,noise_floor_cv_median,noise_floor_raw_cv_median,latency_ms_median,p99_over_p50_median,seconds_per_arch]" \
  "report.title='LiteRT (XNNPACK, fp32), 40 of the subnets, 1 thread, batch 1'"
python $OUT/compare.py $OUT/measurements onnxruntime litert openvino local_cpu > $OUT/compare_litert.md
python -c "import sys; from hwnas.report import inject; inject(sys.argv[1], 'compare_litert', open(sys.argv[2]).read())" \
  $OUT/README.md $OUT/compare_litert.md
