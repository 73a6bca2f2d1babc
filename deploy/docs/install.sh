#!/usr/bin/env bash
# Installs the /docs page's assets (Swagger UI from npm, pinned by package-lock.json) beside this
# script, once per lock change; nginx serves them from deploy/docs/node_modules. No CDN at run time.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.routemate-installed
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then exit 0; fi
SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
touch "$stamp"
