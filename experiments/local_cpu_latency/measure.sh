#!/usr/bin/env bash
# Measure the study's latency datasets and lookup tables on this machine's CPU (1 thread, batch 1).
# Resumable: rerun to finish an interrupted run. Outputs land in experiments/local_cpu_latency/.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/local_cpu_latency
RES='search_space.resolutions=[160,176,192,208,224]'
COMMON="logger=none paths.output_dir=$OUT device=local_cpu device.threads=1 measure.noise_subset=30 measure.noise_rounds=2"
hwnas job=measure search_space=ofa_mbv3 "$RES" measure.n=1000 $COMMON hydra.run.dir=$OUT/runs/measure_ofa_mbv3
hwnas job=measure search_space=compofa_fixed measure.n=400 $COMMON hydra.run.dir=$OUT/runs/measure_compofa_fixed
hwnas job=measure search_space=nb201 measure.n=300 $COMMON hydra.run.dir=$OUT/runs/measure_nb201
hwnas job=build_lut search_space=ofa_mbv3 "$RES" logger=none paths.output_dir=$OUT hydra.run.dir=$OUT/runs/lut_ofa_mbv3
hwnas job=build_lut search_space=compofa_fixed logger=none paths.output_dir=$OUT hydra.run.dir=$OUT/runs/lut_compofa_fixed
hwnas job=build_lut search_space=nb201 logger=none paths.output_dir=$OUT hydra.run.dir=$OUT/runs/lut_nb201
