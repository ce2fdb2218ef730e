#!/usr/bin/env bash
# Issue #16, item 4: a Hydra sweeper tunes a predictor on the validation split. hydra/sweeper=optuna (TPE, seed 0,
# 20 trials) over the MLP's learning rate, weight decay, batch size and epochs, on NB201 / Pixel 3 (HELP table) with
# 1,000 training cells; each trial returns job=train_predictor's objective, val/rmse_pct (hwnas/objective.py). Then
# the default recipe and the best trial's, each on seeds 0, 1, 2, scored on the test split that the tuning never saw.
# ~15 min on 2 cores (OMP_NUM_THREADS=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=experiments/tune_predictor
source experiments/study.sh
COMMON="job=train_predictor search_space=nb201 device=help device.column=pixel3 train.samples=1000
        estimator.progress_bar=false logger=$LOGGER"

# 1. the Optuna study (its optimization_results.yaml: best_params, best_value)
sweep $COMMON hydra/sweeper=optuna hydra.sweeper.n_trials=20 hydra.sweeper.direction=minimize \
  hydra.sweeper.sampler.seed=0 'estimator.lr=tag(log, interval(1e-4, 1e-2))' \
  'estimator.weight_decay=tag(log, interval(1e-6, 1e-1))' 'estimator.batch_size=choice(64, 128, 256)' \
  'estimator.epochs=choice(100, 200, 400)' hydra.sweep.dir=$OUT/runs/optuna

# 2. default and tuned recipes, 3 seeds each, on the test split
best=$(python -c "
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))['best_params']
print(' '.join(f'{k}={v}' for k, v in sorted(p.items())))" $OUT/runs/optuna/optimization_results.yaml)
echo "== best trial: $best"
sweep $COMMON seed=0,1,2 hydra.sweep.dir=$OUT/runs/default
sweep $COMMON $best seed=0,1,2 hydra.sweep.dir=$OUT/runs/tuned

# 3. tables, into README.md
report trials "report.dirs=[$OUT/runs/optuna]" \
  "report.rows=[estimator.lr,estimator.weight_decay,estimator.batch_size,estimator.epochs]" \
  "report.metrics=[val/rmse_pct,val/spearman,test/rmse_pct,train_seconds]" \
  "report.title='Optuna trials (TPE, seed 0): validation RMSE % is the objective; the test columns are shown, never used'"
report recipes "report.dirs=[$OUT/runs/default,$OUT/runs/tuned]" \
  "report.rows=[estimator.lr,estimator.weight_decay,estimator.batch_size,estimator.epochs]" \
  "report.metrics=[val/rmse_pct,test/rmse_pct,test/rmse_ms,test/spearman,test/within_10pct,train_seconds]" \
  "report.title='Default recipe (empty row keys) and the best trial, seeds 0-2: test split, mean ± std'"
