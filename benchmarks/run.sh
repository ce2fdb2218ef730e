#!/usr/bin/env bash
# Predictor inference throughput on this machine (run it on an otherwise idle machine):
# 100,000 OFA architectures, encode + MLP forward (3 x 400), fp32 and bf16 autocast; median of 5.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/runs
hwnas -m job=benchmark search_space=ofa_mbv3 estimator=predictor "estimator.precision='32',bf16" \
  benchmark.n=100000 benchmark.repeats=5 logger=none hydra.sweep.dir=$OUT/predictor
hwnas -m job=benchmark search_space=nb201,fbnet estimator=predictor benchmark.n=100000 benchmark.repeats=5 \
  logger=none hydra.sweep.dir=$OUT/predictor_cells
# OFA's Note10 lookup tables (width 1.2, 160-224 px step 4) summed through the vectorized slot sums
NOTE10='search_space.width_mult=1.2 search_space.resolutions=[160,164,168,172,176,180,184,188,192,196,200,204,208,212,216,220,224]'
hwnas -m job=benchmark search_space=ofa_mbv3 $NOTE10 estimator=lut_note10 benchmark.n=100000 benchmark.repeats=5 \
  logger=none hydra.sweep.dir=$OUT/lut
hwnas job=report "report.dirs=[$OUT/predictor,$OUT/predictor_cells,$OUT/lut]" "report.rows=[search_space,estimator,estimator.precision]" \
  "report.metrics=[encode_archs_per_s,predict_archs_per_s,sum_archs_per_s,threads]" \
  "report.title='Encoding and encode + predict throughput (architectures/s, median of 5 calls of 100,000)'" \
  report.output=benchmarks/throughput.md report.readme=benchmarks/README.md report.section=throughput \
  logger=none hydra.run.dir=$OUT/report
# One evolutionary search (population 100 x 500 generations) with a learned latency predictor (MLP) as
# the hard latency constraint (budget: median prediction) and OFA's accuracy predictor as the objective.
hwnas -m job=benchmark search_space=ofa_mbv3 estimator=predictor search_strategy=evolution benchmark.search=true \
  benchmark.n=10000 benchmark.repeats=1 benchmark.threads=1 seed=0,1,2,3,4 logger=none hydra.sweep.dir=$OUT/search
hwnas -m job=benchmark search_space=ofa_mbv3 $NOTE10 estimator=lut_note10 search_strategy=evolution benchmark.search=true \
  benchmark.n=10000 benchmark.repeats=1 benchmark.threads=1 seed=0,1,2,3,4 logger=none hydra.sweep.dir=$OUT/search_lut
hwnas job=report "report.dirs=[$OUT/search,$OUT/search_lut]" "report.rows=[search_strategy,estimator,benchmark.threads]" \
  "report.metrics=[search_seconds,search_cpu_seconds,search_distinct_archs,search_latency_lookups,search_cache_hit_rate]" \
  "report.title='One evolutionary search, 100 x 500, latency constraint from an MLP (estimator=predictor) or the Note10 lookup tables (lut_note10), OFA accuracy MLP: seconds, mean ± std over 5 seeds'" \
  report.output=benchmarks/search.md report.readme=benchmarks/README.md report.section=search \
  logger=none hydra.run.dir=$OUT/report_search
