#!/usr/bin/env bash
# Builds the Azure Functions app (custom handler) for zip deploy or `func start`:
#   artifacts/functionapp/      host.json, one folder per function with its function.json, journeys/, and the
#                               self-contained linux-x64 Nudge.Host executable (host.json's defaultExecutablePath)
#   artifacts/functionapp.zip   the same folder, with the executable's exec bit kept (Premium/Dedicated plans need it)
# Needs the .NET 10 SDK; restores the linux-x64 runtime packs from NuGet on first use.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

out=artifacts/functionapp
exe=$(sed -n 's/.*"defaultExecutablePath": *"\([^"]*\)".*/\1/p' host.json)
[ -n "$exe" ] || { echo "publish.sh: host.json has no customHandler.description.defaultExecutablePath" >&2; exit 1; }

# A local.settings.json put there for `func start` survives a new publish (and never goes into the zip).
settings=""
if [ -f "$out/local.settings.json" ]; then
  settings=$(mktemp)
  cp "$out/local.settings.json" "$settings"
fi
rm -rf "$out" artifacts/functionapp.zip
mkdir -p "$out"

# Its own bin/obj under artifacts/build: publishing for linux-x64 never touches the solution's Debug build. No build
# servers: nothing outlives the command (it also runs inside the test suite).
dotnet publish functions/Nudge.Host/Nudge.Host.csproj -c Release -r linux-x64 --self-contained \
  --artifacts-path artifacts/build --disable-build-servers -o "$out" -p:GenerateDocumentationFile=false -nologo -v quiet

[ -f "$out/$exe" ] || { echo "publish.sh: the publish output has no '$exe' (host.json's defaultExecutablePath)" >&2; exit 1; }
cp host.json "$out/"
for dir in functions/Nudge.Host/Functions/*/; do
  name=$(basename "$dir")
  mkdir -p "$out/$name"
  cp "$dir/function.json" "$out/$name/"
done
# The journeys the app runs (Nudge:Journeys:Dir is relative to the app root, the handler's working directory).
cp -r journeys "$out/journeys"
chmod 755 "$out/$exe"

(cd "$out" && zip -q -r -X ../functionapp.zip .)
if [ -n "$settings" ]; then
  mv "$settings" "$out/local.settings.json"
fi
echo "publish.sh: $out ($(ls "$out" | wc -l) entries) and artifacts/functionapp.zip"
