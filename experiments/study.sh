# Sourced by study scripts (after `cd` to the repository root, with OUT=experiments/<study>):
#   sweep <hwnas -m arguments> hydra.sweep.dir=DIR   a Hydra multirun, unless DIR already holds runs
#       that all finished (each run's metrics.json is written last): a rerun of a study resumes at
#       the first unfinished sweep; delete a sweep's folder to redo it.
#   report SECTION <job=report arguments>            the table SECTION: $OUT/SECTION.md (+ .csv) and
#       the README block <!-- report:SECTION -->, from a job=report run in $OUT/runs/report_SECTION.
#   $LOGGER (for the study's jobs: logger=$LOGGER)   wandb unless HWNAS_STUDY_LOGGER says otherwise (none, csv):
#       every run logs to W&B offline, into its run dir (runs/**/wandb/, not committed), one W&B project per study
#       (WANDB_PROJECT, default hwnas-<study>), a group per sweep; `wandb sync <run dir>/wandb/offline-run-*`
#       uploads a study. (job=report runs keep logger=none.)
LOGGER=${HWNAS_STUDY_LOGGER:-wandb}
export WANDB_PROJECT=${WANDB_PROJECT:-hwnas-$(basename "${OUT:-$(dirname "$0")}")}
finished() {  # DIR holds runs, all finished
  [ -d "$1" ] && [ -n "$(find "$1" -name metrics.json)" ] && \
    [ "$(find "$1" -name overrides.yaml | wc -l)" = "$(find "$1" -name metrics.json | wc -l)" ]
}
sweep() {  # the last argument must be hydra.sweep.dir=DIR
  local dir=${@: -1}; dir=${dir#hydra.sweep.dir=}
  if finished "$dir"; then echo "== $dir: finished earlier, kept"; return; fi
  hwnas -m "$@"
}
report() {
  local section=$1; shift
  hwnas job=report "$@" report.output=$OUT/$section.md report.readme=$OUT/README.md report.section=$section \
    logger=none hydra.run.dir=$OUT/runs/report_$section
}
