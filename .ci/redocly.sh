#!/usr/bin/env bash
# Runs Redocly CLI, the OpenAPI linter of httpapi's TestAPIDoc_PassesStrictLint,
# with the arguments given. The pinned version is installed with npm the
# first time, into a cache folder kept across runs ($KVD_TOOLS, default
# ~/.cache/kvd-tools), under a name with its version, so a new pin
# installs afresh. Needs node and npm.
set -euo pipefail
version=2.77.0
dir="${KVD_TOOLS:-$HOME/.cache/kvd-tools}/redocly-$version"
if [ ! -x "$dir/node_modules/.bin/redocly" ]; then
	# Into a fresh folder first, moved into place whole: an interrupted
	# install leaves nothing that looks installed.
	mkdir -p "$(dirname "$dir")"
	tmp=$(mktemp -d "$dir.XXXXXX")
	npm install --silent --no-audit --no-fund --prefix "$tmp" "@redocly/cli@$version" >&2
	rm -rf "$dir" && mv "$tmp" "$dir"
fi
# No usage data sent, no update or Node.js-version notices in the output.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_SUPPRESS_NOTIFICATIONS=true
exec "$dir/node_modules/.bin/redocly" "$@"
