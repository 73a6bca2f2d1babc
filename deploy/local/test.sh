#!/usr/bin/env bash
# `make test`: start the platform, run every test, and leave the machine as it was.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
was_up=0
bash deploy/local/platform.sh status >/dev/null 2>&1 && was_up=1
started=$(date +%s)
bash deploy/local/platform.sh up || { echo "platform did not come up" >&2; exit 1; }
bash deploy/local/postgres.sh start || { echo "postgres did not come up" >&2; exit 1; }
echo "platform up in $(( $(date +%s) - started )) s"
.venv/bin/python -m pytest -q -p no:cacheprovider services shared tests
rc=$?
[ $was_up -eq 1 ] || { bash deploy/local/platform.sh down; bash deploy/local/postgres.sh stop; }
exit $rc
