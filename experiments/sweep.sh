# Sourced by study scripts: `sweep <hwnas -m arguments> hydra.sweep.dir=DIR` runs a Hydra multirun unless
# DIR already holds runs that all finished (each run's metrics.json is written last), so a rerun of
# a study resumes at the first unfinished sweep; delete a sweep's folder to redo it.
finished() {  # DIR holds runs, all finished
  [ -d "$1" ] && [ -n "$(find "$1" -name metrics.json)" ] && \
    [ "$(find "$1" -name overrides.yaml | wc -l)" = "$(find "$1" -name metrics.json | wc -l)" ]
}
sweep() {  # the last argument must be hydra.sweep.dir=DIR
  local dir=${@: -1}; dir=${dir#hydra.sweep.dir=}
  if finished "$dir"; then echo "== $dir: finished earlier, kept"; return; fi
  hwnas -m "$@"
}
