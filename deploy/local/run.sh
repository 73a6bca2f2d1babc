#!/usr/bin/env bash
# `make run`: the whole platform on its embedded defaults, shown working on the example job.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# Over https with the local CA `up` makes (curl reads CURL_CA_BUNDLE); plain http with your own certificate.
BASE="http://127.0.0.1:${EDGE_PORT:-8080}" TRUST=""
if [ -z "${EDGE_TLS_CERT:-}" ]; then
  BASE="https://127.0.0.1:${EDGE_TLS_PORT:-8443}"
  export CURL_CA_BUNDLE="${VAR_DIR:-$ROOT/var}/tls/ca.crt"
  TRUST="export CURL_CA_BUNDLE=$CURL_CA_BUNDLE   # trust the local CA (README: Security: transport)"
fi
RM="$ROOT/.venv/bin/routemate"
sleeper=""
stop() { [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; echo; echo "stopping…"; bash deploy/local/platform.sh down; exit 0; }
trap stop INT TERM
bash deploy/local/platform.sh up

creds="$("$RM" integration create --org demo --name "demo integration")"
"$RM" driver add --org demo --email driver@example.com --name "Dana Driver" >/dev/null
# A local admin for the console, with a fresh password each run (set again when it exists already).
admin_email="admin@demo.example"; admin_password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
"$RM" user add --org demo --email "$admin_email" --role admin --password-stdin <<<"$admin_password" >/dev/null 2>&1 \
  || "$RM" user set-password --email "$admin_email" <<<"$admin_password" >/dev/null
client_id="$(jq -r .client_id <<<"$creds")"; client_secret="$(jq -r .client_secret <<<"$creds")"
token="$(curl -fsS -X POST "$BASE/v1/integration-token" -H 'Content-Type: application/json' \
         -d "{\"client_id\":\"$client_id\",\"client_secret\":\"$client_secret\"}" | jq -r .access_token)"
job="$(jq --arg id "DEMO-$(date +%s)" '.external_job_id = $id' deploy/examples/brisbane-job.json)"

echo; echo "== POST /v1/integration-import (the example job, Brisbane)"
answer="$(curl -sS -X POST "$BASE/v1/integration-import" -H "Authorization: Bearer $token" \
          -H 'Content-Type: application/json' -d "$job")"
jq '{job_id, status, driver, optimization, warnings: [.warnings[]?.code] | unique,
     route: [.stops[]? | "\(.sequence). \(.external_stop_id)  \(.address)  eta \(.eta)  +\(.distance_from_previous_km) km"]}' <<<"$answer"
job_id="$(jq -r .job_id <<<"$answer")"

cat <<EOT

The platform is up at $BASE/v1 (Ctrl-C stops it).

Console (the customers' dashboard): $BASE/
  sign in as $admin_email with the password $admin_password

Try the API:

  $TRUST
  curl -s -X POST $BASE/v1/integration-token -H 'Content-Type: application/json' \\
       -d '{"client_id":"$client_id","client_secret":"$client_secret"}'
  export TOKEN=$token
  curl -s "$BASE/v1/integration-jobs?job_id=$job_id" -H "Authorization: Bearer \$TOKEN" | jq
  curl -s -X POST $BASE/v1/integration-jobs/$job_id/stops/STOP-1/status -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: application/json' -d '{"status":"completed","recipient_name":"Sam"}'
  curl -s $BASE/v1/integration-jobs -H "Authorization: Bearer \$TOKEN" | jq '.jobs[] | {job_id, status}'

Metrics: http://127.0.0.1:808{1..7}/metrics (every service, the console and the notifier)   Logs: var/log/
EOT
while true; do sleep 3600 & sleeper=$!; wait "$sleeper"; done
