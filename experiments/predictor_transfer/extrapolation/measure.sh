#!/usr/bin/env bash
# 400 OFA MobileNetV3 subnets at OFA's own resolutions (128..224 in steps of 4, the space's default) measured
# on this machine's CPU (1 thread, batch 1): a target whose resolutions mostly fall outside the 160..224 step 16
# grid of Syed et al.'s data that the base predictor learned from. Resumable: rerun to finish.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=experiments/predictor_transfer/extrapolation
hwnas job=measure search_space=ofa_mbv3 measure.n=400 device=local_cpu device.threads=1 measure.noise_subset=30 \
  measure.noise_rounds=2 logger=none paths.output_dir=$OUT hydra.run.dir=$OUT/runs/measure
