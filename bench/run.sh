#!/usr/bin/env bash
# `make bench`: every benchmark, each printing its own table against the reference it names.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY=.venv/bin/python
bash deploy/local/platform.sh up >/dev/null
echo; $PY -m bench.optimizer_quality "$@"
echo; $PY -m bench.cli_optimize
# Constrained routing (issue 18): TSPTW and VRPTW against published best-known values. The quick
# forms keep `make bench` bounded; BENCH_FULL=1 runs every shipped instance (about 25 minutes).
if [ "${BENCH_FULL:-0}" = 1 ]; then
  echo; nice $PY -m bench.tsptw_quality
  echo; nice $PY -m bench.vrptw_quality
else
  echo; nice $PY -m bench.tsptw_quality --quick
  echo; nice $PY -m bench.vrptw_quality --quick
fi
echo; $PY -m bench.ingest_burst
echo; $PY -m bench.geocoder_lookups
echo
$PY -m bench.pipeline_burst
echo; $PY -m bench.webhook_delivery
