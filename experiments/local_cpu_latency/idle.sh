#!/usr/bin/env bash
# The 1,000-subnet side-by-side run on an idle machine (nothing else running: no tests, no
# training): table profiled and 1,000 OFA subnets measured back to back, 700 fit / 300 held out.
set -euo pipefail
cd "$(dirname "$0")"
OUT=experiments/local_cpu_latency/idle N=1000 FIT=700 SEED=11 README=experiments/local_cpu_latency/README.md TAG=idle \
  exec ./quiet.sh
