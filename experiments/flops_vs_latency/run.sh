#!/usr/bin/env bash
# FLOPs as a latency predictor on every published device: a least-squares fit of latency on
# MFLOPs from 100 random architectures, scored on all the other architectures of the space.
# (Device names that start with a digit are quoted for Hydra's override grammar.)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/flops_vs_latency
source experiments/study.sh  # LOGGER: W&B offline, one project per study
COMMON="job=evaluate device=help estimator=flops estimator.fit_samples=100 evaluate.save_predictions=false logger=$LOGGER"
NB201_DEVICES="'1080ti_1','1080ti_256','1080ti_32','2080ti_1','2080ti_256','2080ti_32','essential_ph_1','eyeriss','fpga','gold_6226','gold_6240','pixel2','pixel3','raspi4','samsung_a50','samsung_s7','silver_4114','silver_4210r','titan_rtx_1','titan_rtx_256','titan_rtx_32','titanx_1','titanx_256','titanx_32','titanxp_1','titanxp_256','titanxp_32'"
FBNET_DEVICES="'1080ti_1','1080ti_32','1080ti_64','2080ti_1','2080ti_32','2080ti_64','essential_ph_1','eyeriss','fpga','gold_6226','gold_6240','pixel2','pixel3','raspi4','samsung_a50','samsung_s7','silver_4114','silver_4210r','titan_rtx_1','titan_rtx_32','titan_rtx_64','titanx_1','titanx_32','titanx_64','titanxp_1','titanxp_32','titanxp_64'"
hwnas -m $COMMON search_space=nb201 "device.column=$NB201_DEVICES" hydra.sweep.dir=$OUT/runs/nb201
hwnas -m $COMMON search_space=fbnet "device.column=$FBNET_DEVICES" hydra.sweep.dir=$OUT/runs/fbnet
for s in nb201 fbnet; do
  hwnas job=report "report.dirs=[$OUT/runs/$s]" "report.rows=[device.column]" \
    "report.metrics=[spearman,kendall,rmse_ms,rmse_pct,within_10pct,latency_ms_mean]" \
    "report.title='FLOPs vs latency on $s: fit on 100 archs, scored on the rest'" report.output=$OUT/$s.md \
    logger=none hydra.run.dir=$OUT/runs/report_$s
done
