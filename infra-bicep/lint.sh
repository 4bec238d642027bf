#!/usr/bin/env bash
# Builds and lints every Bicep file and parameter file in this folder with warnings as failures: most Bicep type
# errors are warnings with exit code 0, so a run fails on a non-zero exit OR a ' : Warning ' / ' : Error ' line.
# The Bicep CLI comes from NuGet with the restore of tests/Nudge.Infra.Tests (BICEP overrides its path).
# tests/Nudge.Infra.Tests runs this script, and checks the compiled templates too.
set -euo pipefail
cd "$(dirname "$0")"
version=0.49.2
bicep=${BICEP:-${NUGET_PACKAGES:-$HOME/.nuget/packages}/azure.bicep.commandline.linux-x64/$version/tools/bicep}
if [ ! -f "$bicep" ]; then
  echo "Bicep CLI not found at $bicep: run 'dotnet restore tests/Nudge.Infra.Tests' (NuGet Azure.Bicep.CommandLine.linux-x64 $version)" >&2
  exit 1
fi
[ -x "$bicep" ] || chmod u+x "$bicep"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0
check() {
  local status=0
  "$bicep" "$@" >"$out/log" 2>&1 || status=$?
  if [ "$status" -ne 0 ] || grep -Eq ' : (Warning|Error) ' "$out/log"; then
    echo "FAIL: bicep $* (exit $status)" >&2
    cat "$out/log" >&2
    failed=1
  else
    echo "ok: bicep $*"
  fi
}
check build --pattern '**/*.bicep' --outdir "$out/build"
check build-params --pattern '*.bicepparam' --outdir "$out/params"
check lint --pattern '**/*.bicep'
check lint --pattern '*.bicepparam'
exit "$failed"
