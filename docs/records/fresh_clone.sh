#!/usr/bin/env bash
# Makes docs/records/fresh-clone.md: the README's first command on a fresh clone, in a brand-new
# virtualenv, with no ../shared beside the clone (what a user has), timed, with the machine named.
#   bash docs/records/fresh_clone.sh [NAME]     # writes docs/records/NAME.md (default fresh-clone); commits nothing
#   BUSY_CORE=1 bash docs/records/fresh_clone.sh NAME   # the same while one busy process loads one of the cores
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
name=${1:-fresh-clone}
out="$repo/docs/records/$name.md"
work=$(mktemp -d "${TMPDIR:-/tmp}/hwnas-fresh.XXXXXX")
trap 'rm -rf "$work"' EXIT

main_cmd=$("$repo/.ci/readme-command" 1)
git clone -q "$repo" "$work/hwnas"
commit=$(git -C "$work/hwnas" rev-parse --short HEAD)
python3 -m venv "$work/venv"
busy=""
if [ "${BUSY_CORE:-0}" = 1 ]; then
  python3 -c "while True: pass" & busy=$!
  trap 'kill $busy 2>/dev/null || true; rm -rf "$work"' EXIT
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
rc=0
(cd "$work/hwnas" && source "$work/venv/bin/activate" && env -u HWNAS_DATA bash -c "$main_cmd") \
  > "$work/out.log" 2>&1 || rc=$?
wall=$(( $(date +%s) - start ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
[ -n "$busy" ] && kill "$busy" || true

{
  echo "# Record: the main job on a fresh clone"
  echo
  echo "Made by \`bash docs/records/fresh_clone.sh $name\` (this file is its output, not edited)."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $commit (cloned into a temporary folder, no ../shared beside it, HWNAS_DATA unset)"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB, $(python3 --version)"
  echo "- load average (1/5/15 min) before: $load_before; after: $load_after"
  [ -n "$busy" ] && echo "- one busy process (\`python3 -c 'while True: pass'\`) loaded a core for the whole run (BUSY_CORE=1)"
  echo "- command, in a new virtualenv: \`$main_cmd\`"
  echo "- exit code: $rc; wall time, install included: $((wall / 60)) min $((wall % 60)) s"
  echo
  echo "What the run printed from its first stage on (progress bars and library warnings left out):"
  echo
  echo '```text'
  # From the first stage on; progress-bar redraws (carriage returns) and library warnings left out.
  sed -n '/^pipeline: stage/,$p' "$work/out.log" | sed -E 's/.*\r//' | grep -v -E '(site-packages/|^\s*$)' | tail -n 60
  echo '```'
} > "$out"
echo "wrote $out (exit $rc, ${wall} s)"
exit "$rc"
