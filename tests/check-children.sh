#!/usr/bin/env bash
# Run after the tests (test.sh does): every child process a test started is recorded by Nudge.TestSupport's
# ChildProcesses in artifacts/test-children/*.tsv as "PID<TAB>start time<TAB>command". Any of them still running is a
# leak: this names it, kills it (and its children) by PID, and exits 1.
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/artifacts/test-children"}
shopt -s nullglob
left=0
for file in "$dir"/*.tsv; do
  while IFS=$'\t' read -r pid started command; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # Fields after the command name, which is in parentheses and may hold spaces: state is field 3, start time field 22.
    read -r -a fields <<<"${stat##*) }"
    [ "${fields[19]}" = "$started" ] || continue # the PID now belongs to another process
    [ "${fields[0]}" != Z ] || continue           # exited, only not reaped yet
    echo "check-children: test child $pid ($command), started by $(basename "$file" .tsv), is still running: killing it" >&2
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    left=$((left + 1))
  done <"$file"
done
if [ "$left" -gt 0 ]; then
  echo "check-children: $left process(es) started by the tests outlived them" >&2
  exit 1
fi
