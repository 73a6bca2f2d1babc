#!/usr/bin/env bash
# `make bench`: every benchmark, each printing its own table against the reference it names.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY=.venv/bin/python
bash deploy/local/platform.sh up >/dev/null
echo; $PY -m bench.optimizer_quality "$@"
echo; $PY -m bench.cli_optimize
echo; $PY -m bench.ingest_burst
echo; $PY -m bench.geocoder_lookups
echo
$PY -m bench.pipeline_burst
echo; $PY -m bench.webhook_delivery
