#!/usr/bin/env bash
# Runs every check and test Nudge has: build with warnings as errors, format check, and all test projects.
# Needs the .NET 10 SDK and Node.js/npm (the official client compatibility tests, and maildev for SMTP); nothing else.
set -euo pipefail
cd "$(dirname "$0")"
export COSMOS_DISABLE_IMDS_ACCESS=true DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# Install (again) when the lock file changed since the last install: the official clients and maildev (SMTP tests).
if [ ! -f tests/clients/node_modules/.package-lock.json ] || [ tests/clients/package-lock.json -nt tests/clients/node_modules/.package-lock.json ]; then
  (cd tests/clients && npm ci --no-audit --no-fund)
fi

dotnet build Serverless.sln -warnaserror -nologo -v quiet
dotnet format Serverless.sln --verify-no-changes --no-restore

log=$(mktemp)
# Every child process a test starts is recorded here (Nudge.TestSupport's ChildProcesses); checked after the run.
rm -rf artifacts/test-children
set +e
dotnet test Serverless.sln --no-build -nologo 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# No test may leave a process behind: names and kills any recorded child still running, and fails the run.
tests/check-children.sh artifacts/test-children || status=1
set -e
# One closing line for the whole run, summed over the test assemblies.
awk '/(Passed|Failed)!/ { for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { gsub(",", "", f); printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$status"
