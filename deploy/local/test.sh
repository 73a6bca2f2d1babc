#!/usr/bin/env bash
# `make test`: the offline layer first (unit + component, no network), then the platform and
# every test over the real stack; leaves the machine as it was.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PYTEST=(.venv/bin/python -m pytest -q -p no:cacheprovider)
rc=0
if [ "${E2E_ONLY:-0}" != 1 ]; then
  started=$(date +%s)
  bash deploy/local/offline.sh "${PYTEST[@]}" -m "not e2e" services shared tests || rc=$?
  echo "offline layer: $(( $(date +%s) - started )) s"
fi
was_up=0
bash deploy/local/platform.sh status >/dev/null 2>&1 && was_up=1
started=$(date +%s)
stop() { [ $was_up -eq 1 ] || { bash deploy/local/platform.sh down; bash deploy/local/postgres.sh stop; }; }
bash deploy/local/platform.sh up || { echo "platform did not come up" >&2; stop; exit 1; }
bash deploy/local/postgres.sh start || { echo "postgres did not come up" >&2; stop; exit 1; }
echo "platform up in $(( $(date +%s) - started )) s"
"${PYTEST[@]}" -m e2e services shared tests || rc=$?
stop
exit $rc
