#!/usr/bin/env bash
# The seven NASFLAT device partitions (few-shot, 20 samples per test device, Spearman over all
# architectures of the space, mean over test devices), 3 seeds, with both adaptation heads: ridge
# (the default, hwnas/predictors/stacking.py) and the fine-tuned network. Table: tasks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/predictor_transfer
source experiments/study.sh  # LOGGER: W&B offline, one project per study
rm -rf $OUT/runs/tasks
hwnas -m job=transfer task=nb201_ND,fbnet_FD,fbnet_F1,fbnet_F2,fbnet_F3,fbnet_F4,fbnet_FA transfer.adapt.head=ridge,network seed=0,1,2 \
  estimator.progress_bar=false logger=$LOGGER hydra.sweep.dir=$OUT/runs/tasks
hwnas job=report "report.dirs=[$OUT/runs/tasks]" "report.rows=[task,transfer.adapt.head]" \
  "report.metrics=[spearman_mean,flops_spearman_mean,kendall_mean,rmse_pct_mean]" report.published=$OUT/published_tasks.yaml \
  "report.title='NASFLAT partitions, 20 target samples: mean Spearman over test devices (mean ± std over 3 seeds) beside the published figures, ridge and network heads'" \
  report.output=$OUT/tasks.md report.readme=$OUT/README.md report.section=tasks logger=none hydra.run.dir=$OUT/runs/report_tasks
