#!/usr/bin/env bash
# Hardware-aware search for the Samsung Note10 over OFA MobileNetV3 w1.2 (issue #5 item 4b):
# evolution (OFA's finder, 100 x 500 per budget) for the most accurate subnet under 15, 20, 25,
# 30, 35 ms; accuracy = OFA's released ImageNet accuracy predictor (trained for the w1.0 supernet:
# the encoding does not depend on width, see README); latency =
#   lut_note10   OFA's Note10 lookup tables (resolutions 160..224 step 4)
#   predictor    an MLP trained on Syed et al.'s note10_lut dataset (10,000 LUT-summed subnets at
#                resolutions 160, 176, 192, 208, 224), searched over the 17 resolutions and over
#                the dataset's 5
# Every pick is verified on device=lut_note10 (the Note10 tables as a device: their sum is the
# "true" latency of any subnet; Syed's dataset lists only its 10,000). Tables: search.md,
# accuracy.md, true_latency.md; OFA's published Note10 points: published.md (published.py); all
# regenerated inside README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=experiments/search_ofa_note10
SEEDS=${SEEDS:-0,1,2}
R17="[$(seq -s, 160 4 224)]"
R5="[160,176,192,208,224]"
BUDGETS="[15,20,25,30,35]"

source experiments/study.sh  # sweep (a multirun, kept when finished) and report (a README table)

# 1. the Note10 latency predictor (job=train_predictor, 70/15/15 split, 200 epochs, seed 0);
#    NOTE10_PREDICTOR=<predictor.pt> reuses one trained by the same command elsewhere
PRED=${NOTE10_PREDICTOR:-$OUT/runs/train_predictor/predictor.pt}
[ -f "$PRED" ] || hwnas job=train_predictor search_space=ofa_mbv3 device=syed device.column=note10_lut \
  estimator.epochs=200 estimator.progress_bar=false seed=0 logger=$LOGGER hydra.run.dir=$OUT/runs/train_predictor

# 2. searches (each run: picks.csv, front.csv, front.png, metrics.json)
COMMON="job=search search_space=ofa_mbv3 search_space.width_mult=1.2 accuracy=ofa_predictor device=lut_note10
        search.latency_budgets=$BUDGETS search.verify=true seed=$SEEDS logger=$LOGGER"
sweep $COMMON search_space.resolutions=$R17 estimator=lut_note10 hydra.sweep.dir=$OUT/runs/search/lut_r17
sweep $COMMON search_space.resolutions=$R17 estimator=predictor estimator.checkpoint=$PRED \
  hydra.sweep.dir=$OUT/runs/search/predictor_r17
sweep $COMMON search_space.resolutions=$R5 estimator=predictor estimator.checkpoint=$PRED \
  hydra.sweep.dir=$OUT/runs/search/predictor_r5
sweep $COMMON search_space.resolutions=$R5 estimator=lut_note10 hydra.sweep.dir=$OUT/runs/search/lut_r5
# the predictor under budget x 0.95 (room for its error; picks still checked against the budget)
sweep $COMMON search_space.resolutions=$R5 estimator=predictor estimator.checkpoint=$PRED search.latency_margin=0.05 \
  hydra.sweep.dir=$OUT/runs/search/predictor_r5_margin
# ... and under its measured margin: the 95 % quantile of its underestimate on its 1,500 test subnets
sweep $COMMON search_space.resolutions=$R5 estimator=predictor estimator.checkpoint=$PRED search.latency_margin=auto \
  search.margin_data=$(dirname $PRED)/predictions.csv hydra.sweep.dir=$OUT/runs/search/predictor_r5_margin_auto

# 3. tables
ROWS="report.rows=[estimator,search_space.resolutions,search.latency_margin]"
report search "report.dirs=[$OUT/runs/search]" "$ROWS" \
  "report.metrics=[search_seconds,n_evaluated,cache_hits,cache_misses,cache_hit_rate,latency_margin,violations,max_violation_pct]" \
  "report.title='Search cost and budget violations (of 5 budgets, LUT latency), mean ± std over seeds'"
report accuracy "report.dirs=[$OUT/runs/search]" "$ROWS" \
  "report.metrics=[$(for b in 15 20 25 30 35; do printf 'budget_%sms/accuracy,' $b; done | sed 's/,$//')]" \
  "report.title='Predicted ImageNet top-1 (%, OFA w1.0 predictor) of the pick under each budget, mean ± std over seeds'"
report true_latency "report.dirs=[$OUT/runs/search]" "$ROWS" \
  "report.metrics=[$(for b in 15 20 25 30 35; do printf 'budget_%sms/true_latency_ms,' $b; done | sed 's/,$//')]" \
  "report.title='Note10 LUT latency (ms) of the pick under each budget, mean ± std over seeds'"
python $OUT/published.py
