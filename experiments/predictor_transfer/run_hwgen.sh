#!/usr/bin/env bash
# Leave-one-GPU-out zero-shot generalization (issue #4): a predictor on encoding ⊕ hardware
# descriptor (cores, memory, bandwidth, peak GFLOP/s, batch) is trained on 14 of the 15 GPU
# settings of a HELP table and scores the 15th without a single sample from it; every GPU is held
# out in turn. NB201 seeds 0, 1, 2; FBNet seed 0 (FBNET_SEEDS=0,1,2 for all three: ~45 min more). Tables: hwgen.md (mean over held-out GPUs),
# hwgen_<space>.md (per held-out GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/predictor_transfer
source experiments/study.sh  # LOGGER: W&B offline, one project per study
NB201_GPUS="1080ti_1,1080ti_32,1080ti_256,2080ti_1,2080ti_32,2080ti_256,titan_rtx_1,titan_rtx_32,titan_rtx_256,titanx_1,titanx_32,titanx_256,titanxp_1,titanxp_32"
FBNET_GPUS="1080ti_1,1080ti_32,1080ti_64,2080ti_1,2080ti_32,2080ti_64,titan_rtx_1,titan_rtx_32,titan_rtx_64,titanx_1,titanx_32,titanx_64,titanxp_1,titanxp_32"
COMMON="job=transfer transfer.method=hwgen transfer.hwgen.leave_one_out=true estimator.progress_bar=false logger=$LOGGER"
# leave_one_out rotates over sources + test devices, so the split below only lists all 15.
[ -n "${SKIP_NB201:-}" ] || hwnas -m $COMMON seed=${SEEDS:-0,1,2} search_space=nb201 "transfer.source_devices=[$NB201_GPUS]" "transfer.test_devices=[titanxp_256]" \
  hydra.sweep.dir=$OUT/runs/hwgen/nb201
hwnas -m $COMMON seed=${FBNET_SEEDS:-0} search_space=fbnet "transfer.source_devices=[$FBNET_GPUS]" "transfer.test_devices=[titanxp_64]" \
  hydra.sweep.dir=$OUT/runs/hwgen/fbnet
hwnas job=report "report.dirs=[$OUT/runs/hwgen]" "report.rows=[search_space]" \
  "report.metrics=[rmse_ms_mean,rmse_pct_mean,spearman_mean,kendall_mean,flops_spearman_mean,n_targets]" \
  "report.title='Leave-one-GPU-out, zero target samples: mean over the 15 held-out GPU settings (mean ± std over seeds)'" \
  report.output=$OUT/hwgen.md report.readme=$OUT/README.md report.section=hwgen logger=none \
  hydra.run.dir=$OUT/runs/report_hwgen
for space in nb201 fbnet; do
  gpus=$([ $space = nb201 ] && echo "$NB201_GPUS,titanxp_256" || echo "$FBNET_GPUS,titanxp_64")
  metrics=$(echo "$gpus" | tr ',' '\n' | sed 's/^/rmse_ms_/' | paste -sd,)
  metrics="$metrics,$(echo "$gpus" | tr ',' '\n' | sed 's/^/spearman_/' | paste -sd,)"
  hwnas job=report "report.dirs=[$OUT/runs/hwgen/$space]" "report.rows=[search_space]" "report.metrics=[$metrics]" \
    "report.title='$space, leave-one-GPU-out: RMSE (ms) and Spearman of each held-out GPU setting (mean ± std over seeds)'" \
    report.output=$OUT/hwgen_$space.md logger=none hydra.run.dir=$OUT/runs/report_hwgen_$space
done
