#!/usr/bin/env bash
# `make bench`: every benchmark, each printing its own table against the reference it names.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY=.venv/bin/python
bash deploy/local/platform.sh up >/dev/null
echo; $PY -m bench.optimizer_quality "$@"
# Constrained routing (issue 18): TSPTW and VRPTW against published best-known values. The quick
# forms keep `make bench` bounded; BENCH_FULL=1 runs every shipped instance (about 25 minutes).
if [ "${BENCH_FULL:-0}" = 1 ]; then
  echo; nice $PY -m bench.tsptw_quality
  echo; nice $PY -m bench.vrptw_quality
else
  echo; nice $PY -m bench.tsptw_quality --quick
  echo; nice $PY -m bench.vrptw_quality --quick
fi
echo; $PY -m bench.cli_optimize
echo; $PY -m bench.cli_optimize --quality 30  # its 20-stop search without numba vs the compiled one, and LKH-3
# Rebuild rate (issue 20): a log of about 23,000 events replayed into empty SQLite and PostgreSQL.
# First of the benchmarks that write to Kafka: on a fresh platform its log is then the jobs it
# generates (23 events each, every stop reported); the ingest and pipeline bursts after it add
# jobs of only their heavy events (import, geocoding, route), which replay at a lower rate in
# events/s (the same in jobs/s).
echo; $PY -m bench.rebuild
echo; $PY -m bench.ingest_burst
# The status projection in-process (issue 20): CPU per job against the ORM projection it replaced.
echo; $PY -m bench.projection || echo "projection: below its target, see the table above"
echo; $PY -m bench.geocoder_lookups
echo
$PY -m bench.pipeline_burst
echo; $PY -m bench.webhook_delivery
echo; $PY -m bench.console_pages --jobs 1000
# A short soak (memory, fds and disk of every process at a steady rate); the 30-minute one is
# `python -m bench.soak --minutes 30`. It exits 1 when it flags growth: the table says where.
echo; $PY -m bench.soak --minutes "${SOAK_MINUTES:-2}" || echo "soak: growth flagged, see the table above"
