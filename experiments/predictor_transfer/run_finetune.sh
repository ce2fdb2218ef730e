#!/usr/bin/env bash
# Syed et al.'s fine-tuning: the Note10-trained MLP of experiments/predictor_single_device (same
# seed) adapted to the RTX 2080 Ti, Tesla P40 (OFA) and Xeon (CompOFA fixed kernel) from N target
# samples, first two layers frozen; RMSE on every unseen architecture. Table: finetune.md. Syed et al.'s
# protocol is the fine-tuned network alone (transfer.finetune.fallback=none; the default cross-validates it
# against FLOPs fitted on the same samples: extrapolation/).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/predictor_transfer
source experiments/study.sh  # LOGGER: W&B offline, one project per study
BASES=experiments/predictor_single_device/runs/single/ofa_mbv3
for seed in 0 1 2; do
  base=$(grep -l "device.column=note10_lut" $BASES/*/.hydra/overrides.yaml | xargs grep -l "seed=$seed" | head -1 | xargs dirname | xargs dirname)/predictor.pt
  COMMON="job=transfer transfer.method=finetune transfer.base=$base device=syed transfer.samples=20,50,100,300,700 transfer.finetune.fallback=none seed=$seed estimator.progress_bar=false logger=$LOGGER"
  hwnas -m $COMMON search_space=ofa_mbv3 device.column=rtx2080ti_b64,tesla_p40_b64 hydra.sweep.dir=$OUT/runs/finetune/ofa_seed$seed
  hwnas -m $COMMON search_space=compofa_fixed device.column=xeon_cpu_b64 hydra.sweep.dir=$OUT/runs/finetune/compofa_seed$seed
done
hwnas job=report "report.dirs=[$OUT/runs/finetune]" "report.rows=[device.column,transfer.samples]" \
  "report.metrics=[rmse_ms_unseen_mean,rmse_pct_unseen_mean,spearman_unseen_mean,kendall_unseen_mean]" \
  "report.title='Fine-tuning the Note10 predictor (2 layers frozen): RMSE on unseen architectures, mean ± std over 3 seeds'" \
  "report.plots=[{kind: line, x: transfer.samples, y: rmse_ms_unseen_mean, logx: true, logy: true, name: rmse, title: 'RMSE (ms) on unseen architectures vs target samples, mean ± std over 3 seeds'}]" \
  report.published=$OUT/published_finetune.yaml report.readme=$OUT/README.md report.section=finetune \
  report.output=$OUT/finetune.md logger=none hydra.run.dir=$OUT/runs/report_finetune
