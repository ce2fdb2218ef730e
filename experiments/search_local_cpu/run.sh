#!/usr/bin/env bash
# Hardware-aware search for THIS machine's CPU (issue #5 item 4c), on an idle machine: OFA
# MobileNetV3 w1.0 (resolutions 160..224 step 16, batch 1, 1 thread) under three latency budgets;
# accuracy = OFA's released ImageNet accuracy predictor; latency = a predictor trained on our own
# measurements of 1,000 subnets (experiments/local_cpu_latency/idle, measured on this CPU); every
# pick measured afresh on this CPU (search.verify=true: median of 20 timed runs, 5 warm-up).
#   predictors: job=train_predictor, 70/15/15 split of the 1,000 subnets, on 100 or all 700
#               training subnets (200 epochs), and on 700 with the tuned recipe of
#               predictor_single_device (500 epochs, batch 128, no log target); seeds 0, 1, 2 (the
#               seed also drives the split and the search)
#   lut:        the raw per-layer lookup table of this CPU (median per layer), profiled in the same
#               idle session (biased per resolution: see local_cpu_latency)
#   margin:     0, or auto = the 95 % quantile of the model's underestimate (true - pred) / true on
#               the 150 measured test subnets of that seed's split (its predictions.csv; the LUT uses
#               the 700-sample run's, the same 150 subnets)
#   budgets:    the 25 / 50 / 75 % quantiles of the 1,000 measured latencies (3 s.f.)
# Tables (regenerated into README.md): search.md, per_budget.md, predictors.md. A sweep whose runs
# all finished is skipped on a rerun (delete its folder to redo it).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=experiments/search_local_cpu
SEEDS=${SEEDS:-0,1,2}
IDLE=experiments/local_cpu_latency/idle
DATA=$IDLE/measurements/ofa_mbv3__local_cpu_t1_b1.csv
LUT=$IDLE/luts/ofa_mbv3__local_cpu_t1_b1.yaml
RES='search_space.resolutions=[160,176,192,208,224]'

source experiments/study.sh  # sweep (a multirun, kept when finished) and report (a README table)
SEARCHES="predictor_n100 predictor_n700 predictor_n700tuned lut predictor_n100_margin predictor_n700_margin predictor_n700tuned_margin lut_margin predictor_n700_check lut_check"

# 1. latency predictors on the local measurements (predictor.pt is not committed: a fresh clone
#    trains them again only if a search below has to run)
todo=0; for d in $SEARCHES; do finished $OUT/runs/search/$d || todo=1; done
for d in predictor predictor_tuned; do
  [ $todo = 1 ] && [ -z "$(find $OUT/runs/$d -name predictor.pt 2>/dev/null)" ] && rm -rf $OUT/runs/$d
done
sweep job=train_predictor search_space=ofa_mbv3 "$RES" device=table device.path=$DATA train.samples=100,700 \
  seed=$SEEDS estimator.progress_bar=false logger=$LOGGER 'hydra.sweep.subdir=n${train.samples}_seed${seed}' \
  hydra.sweep.dir=$OUT/runs/predictor
# the tuned recipe of predictor_single_device (500 epochs, batch 128, no log target) on the 700
sweep job=train_predictor search_space=ofa_mbv3 "$RES" device=table device.path=$DATA train.samples=700 \
  estimator.epochs=500 estimator.batch_size=128 estimator.target_transform=none \
  seed=$SEEDS estimator.progress_bar=false logger=$LOGGER 'hydra.sweep.subdir=seed${seed}' \
  hydra.sweep.dir=$OUT/runs/predictor_tuned

# 2. searches, every pick measured on this CPU
B=$(python -c "
import numpy as np, pandas as pd
print(','.join(f'{q:.3g}' for q in np.quantile(pd.read_csv('$DATA')['latency_ms'], [0.25, 0.5, 0.75])))")
echo "== budgets [$B] ms"
COMMON="job=search search_space=ofa_mbv3 $RES accuracy=ofa_predictor device=local_cpu device.threads=1
        search.latency_budgets=[$B] search.verify=true seed=$SEEDS logger=$LOGGER"
for M in "" search.latency_margin=auto; do  # (no override: margin 0)
  S=${M:+_margin}
  for n in 100 700 700tuned; do
    run="$OUT/runs/predictor/n${n}_seed"'${seed}'  # (${seed}: resolved by Hydra per run)
    label="+study.train_samples=$n"
    [ $n = 700tuned ] && run="$OUT/runs/predictor_tuned/seed"'${seed}' && label="+study.train_samples=700 +study.recipe=tuned"
    sweep $COMMON $M estimator=predictor "estimator.checkpoint=$run/predictor.pt" ${M:+search.margin_data=$run/predictions.csv} \
      $label hydra.sweep.dir=$OUT/runs/search/predictor_n$n$S
  done
  run="$OUT/runs/predictor/n700_seed"'${seed}'
  sweep $COMMON $M estimator=lut estimator.path=$LUT estimator.statistic=median ${M:+search.margin_data=$run/predictions.csv} \
    hydra.sweep.dir=$OUT/runs/search/lut$S
done

# 2b. the pick chosen by measurement (search.device_check=10; no margin): the most accurate member of
#     the estimated front that meets the budget on this CPU, by bisection, <= 10 measurements per budget
CHECK="search.device_check=10"
sweep $COMMON $CHECK estimator=predictor "estimator.checkpoint=$OUT/runs/predictor/n700_seed"'${seed}'/predictor.pt \
  +study.train_samples=700 hydra.sweep.dir=$OUT/runs/search/predictor_n700_check
sweep $COMMON $CHECK estimator=lut estimator.path=$LUT estimator.statistic=median hydra.sweep.dir=$OUT/runs/search/lut_check

# 3. every pick measured once more, after all searches (noise or estimator error?)
#    (a rerun measures the picks not measured yet: job=measure resumes its CSV)
if [ ! -f $OUT/runs/remeasure/picks.csv ] || [ $todo = 1 ]; then
  python $OUT/remeasure.py archs
  hwnas job=measure search_space=ofa_mbv3 "$RES" device=local_cpu device.threads=1 measure.archs=$OUT/runs/picks_all.csv \
    measure.noise_subset=0 measure.output=$OUT/runs/remeasure/picks.csv logger=$LOGGER hydra.run.dir=$OUT/runs/remeasure
fi

# 4. tables, into README.md
ROWS="report.rows=[estimator,study.train_samples,study.recipe,search.latency_margin,search.device_check]"
report search "report.dirs=[$OUT/runs/search]" "$ROWS" \
  "report.metrics=[latency_margin,violations,beyond_margin,max_violation_pct,n_found,device_checks,search_seconds,device_check_seconds]" \
  "report.title='Search on this CPU, picks measured: violations (of 3 budgets), margin; mean ± std over 3 seeds (latency_margin empty: 0)'" \
  "report.plots=[{kind:pareto,name:fronts,title:'Fronts found (predicted latency; one line per run)'}]"
BUD=$(echo $B | tr ',' ' ')
report per_budget "report.dirs=[$OUT/runs/search]" "$ROWS" \
  "report.metrics=[$(for b in $BUD; do printf 'budget_%sms/accuracy,budget_%sms/predicted_latency_ms,budget_%sms/true_latency_ms,' $b $b $b; done | sed 's/,$//')]" \
  "report.title='Per budget ($B ms): predicted ImageNet top-1 (%), predicted and measured latency (ms) of the pick; mean ± std over 3 seeds'"
report predictors "report.dirs=[$OUT/runs/predictor,$OUT/runs/predictor_tuned]" "report.rows=[train.samples,estimator.epochs]" \
  "report.metrics=[test/rmse_ms,test/rmse_pct,test/spearman,test/kendall,test/within_10pct,n_train,n_test,train_seconds]" \
  "report.title='Latency predictors on the 1,000 measured subnets (test split of 150), mean ± std over 3 seeds'" \
  "report.plots=[{kind:predictions,title:'Test subnets, 3 seeds'}]"
python $OUT/remeasure.py table
