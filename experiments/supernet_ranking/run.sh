#!/usr/bin/env bash
# Ranking quality of the progressive-shrinking supernet (seed 0 of ../supernet_shrinking): 10 subnets picked
# at evenly spaced ranks of their inherited val accuracy among 50 sampled subnets, each trained from scratch
# (job=train_subnet: the same network, the supernet recipe, 23 epochs, seeds 0 and 1, the same data split) and
# scored on the test split beside its inherited accuracy. Kendall tau / Spearman, table and scatter plot:
# ranking.md, ranking.csv, scatter.png; the per-subnet job=report table: subnets.md.
# CPU: one thread, runs one after another (~10 min of CPU time on this machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/supernet_ranking
source experiments/study.sh  # LOGGER: W&B offline, one project per study
SN=experiments/supernet_shrinking/runs/train/progressive/0
export OMP_NUM_THREADS=1
if [ ! -f $SN/supernet.pt ]; then  # the same run as ../supernet_shrinking/run.sh trains (seed 0)
  hwnas -m job=train_supernet supernet=progressive supernet.kd.teacher=snapshot seed=0 logger=$LOGGER \
    train_supernet.progress_bar=false train_supernet.threads=1 hydra.sweep.dir=$(dirname $SN)
fi
# 50 subnets (smallest, largest, 48 sampled), inherited accuracy on the val split: what the picks are chosen by
hwnas job=eval_subnets eval_subnets.checkpoint=$SN/supernet.pt seed=0 eval_subnets.seed=0 eval_subnets.n=50 \
  eval_subnets.split=val eval_subnets.output=$OUT/inherited_val.csv logger=$LOGGER hydra.run.dir=$OUT/runs/eval_val
python $OUT/pick.py $OUT/inherited_val.csv $OUT/picked.csv 10
# each picked subnet from scratch, twice: training seeds 0 and 1 (data.seed=0: the supernet's data split throughout)
for seed in 0 1; do
  hwnas -m job=train_subnet train_subnet.archs_file=$OUT/picked.csv train_subnet.index=0,1,2,3,4,5,6,7,8,9 \
    train_subnet.supernet=$SN/supernet.pt seed=$seed data.seed=0 train_subnet.progress_bar=false logger=$LOGGER \
    hydra.sweep.dir=$OUT/runs/scratch_seed$seed
done
hwnas job=report "report.dirs=[$OUT/runs/scratch_seed0,$OUT/runs/scratch_seed1]" "report.rows=[train_subnet.index]" \
  "report.metrics=[flops,params,resolution,val/acc_inherited,val/acc,test/acc_inherited,test/acc,test/acc_running_bn]" \
  "report.title='10 subnets of the progressive supernet (seed 0): inherited vs trained from scratch (23 epochs; mean ± std over training seeds 0, 1), top-1 %'" \
  report.output=$OUT/subnets.md logger=none hydra.run.dir=$OUT/runs/report
python $OUT/analyze.py $OUT $OUT/runs/scratch_seed0 $OUT/runs/scratch_seed1
