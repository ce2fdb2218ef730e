#!/usr/bin/env bash
# Hardware-aware search on NAS-Bench-201 (issue #5 item 4a): evolution (OFA's finder, 100 x 500)
# under three latency budgets per device, on six HELP devices (GPU, server CPU, phone, ASIC, FPGA,
# Raspberry Pi), with four latency models and the device table itself; picks and fronts verified
# against the HELP table and the NB201 CIFAR-10 accuracy table (regret, violations, hypervolume).
#   budgets: the 25 / 50 / 75 % latency quantiles of the device over all 15,625 cells (3 s.f.)
#   latency: device (the table itself: the search's own regret) | flops (least squares on 100
#            samples) | predictor (MLP on 100 / 1,000 samples) | table = a few-shot transferred
#            predictor (job=transfer: pretrained on 8 other HELP devices, adapted on 20 samples of
#            the target; its predictions.csv read by estimator=table)
# 2b. The learned models again with search.latency_margin=auto: each searches under budget x (1 - m),
#     m = the 95 % quantile of its underestimate on 500 cells it was not fitted on (margin_n).
# Tables (regenerated into README.md): search.md (per device), search_summary.md (over devices),
# margin.md, transfer.md. A sweep whose runs all finished is skipped on a rerun (delete it to redo it).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=experiments/search_nb201
SEEDS=${SEEDS:-0,1,2}
DEVICES=${DEVICES:-titan_rtx_1 gold_6226 pixel3 eyeriss fpga raspi4}
SOURCES="1080ti_1,1080ti_32,1080ti_256,silver_4114,silver_4210r,samsung_a50,essential_ph_1,samsung_s7"

source experiments/study.sh  # sweep (a multirun, kept when finished) and report (a README table)

# 1. few-shot transfer to the six devices (one pretrained model per seed; 20 target samples each). The committed
#    runs used the network head, then the default; job=transfer's default is now the ridge head
#    (experiments/predictor_transfer), so it is pinned here to keep reproducing them.
sweep job=transfer search_space=nb201 "transfer.source_devices=[$SOURCES]" transfer.adapt.head=network \
  "transfer.test_devices=[$(echo $DEVICES | tr ' ' ',')]" seed=$SEEDS estimator.progress_bar=false logger=$LOGGER \
  'hydra.sweep.subdir=seed${seed}' hydra.sweep.dir=$OUT/runs/transfer

# 2. searches, per device (its budgets differ)
budgets() {  # 25/50/75 % quantiles of the device's latency over the whole space, 3 significant digits
  python -c "
import sys, numpy as np
from hwnas.data.root import data_path
from hwnas.data.tables import read_wide_table
col = read_wide_table(data_path('nb201/latency_help.csv')).column(sys.argv[1])
print(','.join(f'{q:.3g}' for q in np.quantile(col, [0.25, 0.5, 0.75])))" "$1"
}
for dev in $DEVICES; do
  B=$(budgets $dev)
  echo "== $dev: budgets [$B] ms"
  COMMON="job=search search_space=nb201 device=help device.column=$dev search.latency_budgets=[$B] search.verify=true
          search.plot=false seed=$SEEDS logger=$LOGGER"
  RUNS=$OUT/runs/search/$dev
  sweep $COMMON search.latency_source=device hydra.sweep.dir=$RUNS/device
  for M in "" search.latency_margin=auto; do  # (no override: margin 0, as in the first runs)
    S=${M:+_margin}
    sweep $COMMON $M search.latency_source=estimator estimator=flops hydra.sweep.dir=$RUNS/flops$S
    sweep $COMMON $M search.latency_source=estimator estimator=predictor estimator.fit_samples=100,1000 \
      estimator.progress_bar=false hydra.sweep.dir=$RUNS/predictor$S
    sweep $COMMON $M search.latency_source=estimator estimator=table estimator.device=$dev \
      "estimator.path=$OUT/runs/transfer/seed\${seed}/predictions.csv" hydra.sweep.dir=$RUNS/transfer$S
  done
  # 2c. the MLP with per-cell error bars: searched under the upper end of its 90 % interval (quantile heads,
  #     calibrated on 500 cells it was not fitted on), beside latency_margin=auto's one margin for all cells
  sweep $COMMON search.latency_margin=uncertainty search.latency_source=estimator estimator=predictor \
    estimator.fit_samples=100,1000 estimator.interval=0.9 estimator.progress_bar=false \
    hydra.sweep.dir=$RUNS/predictor_uncertainty
  # 2d. the same MLP, its error bars from the gap to a FLOPs fit on its own samples (interval_method=flops_gap:
  #     wide where the MLP departs from the FLOPs fit), at two coverages; and the one margin at a higher
  #     quantile, so that each method is seen at more than one point of its violations-regret trade-off
  sweep $COMMON search.latency_margin=uncertainty search.latency_source=estimator estimator=predictor \
    estimator.fit_samples=100,1000 estimator.interval=0.8,0.9 estimator.interval_method=flops_gap \
    estimator.progress_bar=false hydra.sweep.dir=$RUNS/predictor_flops_gap
  sweep $COMMON search.latency_margin=auto search.margin_quantile=0.99 search.latency_source=estimator \
    estimator=predictor estimator.fit_samples=100,1000 estimator.progress_bar=false \
    hydra.sweep.dir=$RUNS/predictor_margin99
  # 2e. the same MLP, its error bars from CV+ (interval_method=cv_plus: 5 more MLPs, each trained without one fifth
  #     of the samples; the interval from their out-of-fold errors): no held-out cells used, at two coverages
  sweep $COMMON search.latency_margin=uncertainty search.latency_source=estimator estimator=predictor \
    estimator.fit_samples=100,1000 estimator.interval=0.8,0.9 estimator.interval_method=cv_plus \
    estimator.progress_bar=false hydra.sweep.dir=$RUNS/predictor_cv_plus
done

# 3. tables, into README.md
METRICS="mean_regret,max_regret,violations,max_violation_pct,hv_ratio,search_seconds"
report search_summary "report.dirs=[$OUT/runs/search]" \
  "report.rows=[search.latency_source,estimator,estimator.fit_samples,search.latency_margin,search.margin_quantile,estimator.interval_method,estimator.interval]" "report.metrics=[$METRICS]" \
  "report.title='NB201 search over the six devices: mean ± std over devices x seeds (latency_margin empty: 0)'"
report margin "report.dirs=[$OUT/runs/search]" "report.where=['search.latency_margin=auto']" \
  "report.rows=[estimator,estimator.fit_samples,search.margin_quantile]" \
  "report.metrics=[latency_margin,margin_median_abs_error_pct,violations,beyond_margin,max_violation_pct,mean_regret,hv_ratio]" \
  "report.title='latency_margin=auto: the margin set per run (95 % quantile of underestimate on 500 unseen cells), violations and picks beyond the margin (of 3 budgets); mean ± std over devices x seeds'"
margin_dirs=$(for d in $DEVICES; do for r in predictor_margin predictor_margin99 predictor_uncertainty predictor_flops_gap predictor_cv_plus; do
  printf "$OUT/runs/search/$d/$r,"; done; done | sed 's/,$//')
report uncertainty "report.dirs=[$margin_dirs]" \
  "report.rows=[estimator.fit_samples,search.latency_margin,search.margin_quantile,estimator.interval_method,estimator.interval]" \
  "report.metrics=[violations,max_violation_pct,mean_regret,max_regret,hv_ratio,latency_margin,interval_offset]" \
  "report.title='The MLP predictor under one measured margin (auto: the 95 % quantile, or margin_quantile 0.99) and under the upper end of each cell calibrated interval (uncertainty: quantile heads at 90 %, flops_gap or cv_plus at 80 / 90 %; cv_plus reads no held-out cells): violations (of 3 budgets), regret (accuracy points), hypervolume ratio; mean ± std over 6 devices x 3 seeds'"
report search "report.dirs=[$OUT/runs/search]" \
  "report.rows=[device.column,search.latency_budgets,search.latency_source,estimator,estimator.fit_samples,search.latency_margin,search.margin_quantile,estimator.interval_method,estimator.interval]" \
  "report.metrics=[$METRICS]" \
  "report.title='NB201 search per device: regret (accuracy points), violations (of 3 budgets), hypervolume ratio; mean ± std over seeds'"
report transfer "report.dirs=[$OUT/runs/transfer]" "report.rows=[search_space]" \
  "report.metrics=[$(for d in $DEVICES; do printf 'spearman_%s,rmse_pct_%s,' $d $d; done)spearman_mean]" \
  "report.title='Few-shot transferred predictors (20 target samples): Spearman and RMSE % over all 15,625 cells, mean ± std over seeds'"
