#!/usr/bin/env bash
# Fine-tuning to resolutions outside the source data: the RTX 2080 Ti predictor (Syed et al.'s data, resolutions
# 160..224 in steps of 16; OFA/Syed MLP recipe, 3 seeds) fine-tuned on N of the 400 subnets measured here at
# 128..224 in steps of 4 (measure.sh), beside FLOPs fitted on the same N samples; with and without the
# cross-validated fallback (transfer.finetune.fallback). Table: extrapolation.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=experiments/predictor_transfer/extrapolation
TARGET=$OUT/measurements/ofa_mbv3__local_cpu_t1_b1.csv
[ -f $OUT/runs/base/2/predictor.pt ] || hwnas -m job=train_predictor search_space=ofa_mbv3 device=syed device.column=rtx2080ti_b64 estimator.epochs=200 \
  estimator.progress_bar=false seed=0,1,2 logger=none hydra.sweep.dir=$OUT/runs/base
rm -rf $OUT/runs/finetune_seed*
for seed in 0 1 2; do
  base=$OUT/runs/base/$seed/predictor.pt
  hwnas -m job=transfer transfer.method=finetune transfer.base=$base search_space=ofa_mbv3 \
    transfer.target.path=$TARGET transfer.target.name=local_cpu transfer.samples=50,100,200 \
    transfer.finetune.fallback=flops,none seed=$seed estimator.progress_bar=false logger=none \
    hydra.sweep.dir=$OUT/runs/finetune_seed$seed
done
hwnas job=report "report.dirs=[$OUT/runs/finetune_seed0,$OUT/runs/finetune_seed1,$OUT/runs/finetune_seed2]" \
  "report.rows=[transfer.samples,transfer.finetune.fallback]" \
  "report.metrics=[rmse_pct_unseen_mean,network_rmse_pct_unseen_mean,flops_fit_rmse_pct_unseen_mean,residual_rmse_pct_unseen_mean,spearman_unseen_mean,network_spearman_unseen_mean,flops_fit_spearman_unseen_mean,residual_spearman_unseen_mean,choice_local_cpu]" \
  "report.title='Fine-tuning the RTX 2080 Ti predictor (160-224 px) to this CPU at 128-224 px: unseen subnets, mean ± std over 3 seeds'" \
  report.output=$OUT/extrapolation.md report.readme=$OUT/README.md report.section=extrapolation logger=none \
  hydra.run.dir=$OUT/runs/report
