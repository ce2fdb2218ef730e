# Sourced by study scripts (after `cd` to the repository root, with OUT=experiments/<study>):
#   sweep <hwnas -m arguments> hydra.sweep.dir=DIR   a Hydra multirun, unless DIR already holds runs
#       that all finished (each run's metrics.json is written last): a rerun of a study resumes at
#       the first unfinished sweep; delete a sweep's folder to redo it.
#   report SECTION <job=report arguments>            the table SECTION: $OUT/SECTION.md (+ .csv) and
#       the README block <!-- report:SECTION -->, from a job=report run in $OUT/runs/report_SECTION.
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
