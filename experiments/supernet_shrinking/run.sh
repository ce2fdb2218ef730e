#!/usr/bin/env bash
# Progressive shrinking (OFA) vs naive uniform sampling, digits, ofa_mbv3 at width 0.25, resolutions
# 24/28/32, 23 epochs each, seeds 0,1,2; plus progressive with the naive schedule's in-place teacher
# (isolates the schedule from the teacher; seeds 0,1 only, for CPU time), and naive for 13 epochs (as many
# forward/backward subnet passes as progressive: 741) and 17 epochs (about its training time). Then 50
# subnets of every supernet on the test split (the same 50 for all: eval_subnets.seed=0; smallest and
# largest first). Tables: train.md, subnets.md, subnets_by_seed.md (seed = the data split: compare within a seed).
# CPU: one thread per run, runs one after another (~27 min of CPU time in all on this machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/supernet_shrinking
source experiments/study.sh  # report (a README table)
export OMP_NUM_THREADS=1
COMMON="logger=$LOGGER train_supernet.progress_bar=false train_supernet.threads=1"
# name, seeds, overrides (the teacher is spelled out so that the tables can show it)
variants=("progressive 0,1,2 supernet=progressive supernet.kd.teacher=snapshot"
          "naive 0,1,2 supernet=naive supernet.kd.teacher=inplace"
          "progressive_inplace 0,1 supernet=progressive supernet.kd.teacher=inplace"
          "naive_13ep 0,1,2 supernet=naive supernet.kd.teacher=inplace supernet.phases.0.epochs=13"
          "naive_17ep 0,1,2 supernet=naive supernet.kd.teacher=inplace supernet.phases.0.epochs=17")
for v in "${variants[@]}"; do
  set -- $v; name=$1; seeds=$2; shift 2
  # a rerun with the same sweep dir resumes (each run from its checkpoints/); a finished run is only re-scored
  hwnas -m job=train_supernet "$@" seed=$seeds $COMMON hydra.sweep.dir=$OUT/runs/train/$name
done
for v in "${variants[@]}"; do
  set -- $v; name=$1; seeds=$2; shift 2
  # seed = the supernet's seed (its data split); eval_subnets.seed=0: the same 50 subnets for every supernet
  hwnas -m job=eval_subnets "$@" seed=$seeds eval_subnets.seed=0 eval_subnets.n=50 eval_subnets.split=test \
    "eval_subnets.checkpoint=$OUT/runs/train/$name/\${seed}/supernet.pt" logger=$LOGGER \
    hydra.sweep.dir=$OUT/runs/eval/$name
done
ROWS="report.rows=[supernet,supernet.kd.teacher,supernet.phases.0.epochs]"
report train "report.dirs=[$OUT/runs/train]" "$ROWS" \
  "report.metrics=[global_step,test/acc_smallest,test/acc_median,test/acc_largest,val/acc_smallest,val/acc_median,val/acc_largest]" \
  "report.title='train_supernet: test / val top-1 % of the smallest, median and largest subnets (BN recalibrated), mean ± std over seeds'"
report subnets "report.dirs=[$OUT/runs/eval]" "$ROWS" \
  "report.metrics=[accuracy_mean,accuracy_min,accuracy_p10,accuracy_median,accuracy_max,accuracy_std]" \
  "report.title='50 subnets (the same for every supernet) on the test split: top-1 % over subnets, mean ± std over seeds'"
hwnas job=report "report.dirs=[$OUT/runs/eval]" "report.rows=[seed,supernet,supernet.kd.teacher,supernet.phases.0.epochs]" \
  "report.metrics=[accuracy_mean,accuracy_min,accuracy_p10,accuracy_median,accuracy_max]" \
  "report.title='The same 50 subnets per seed (seed = training seed and data split): test top-1 % over subnets'" \
  report.output=$OUT/subnets_by_seed.md logger=none hydra.run.dir=$OUT/runs/report_subnets_by_seed
