#!/usr/bin/env bash
# RouteMate quick start with curl: a token, an import, the job. Needs curl and jq.
# ROUTEMATE_BASE_URL (default http://127.0.0.1:8080), ROUTEMATE_CLIENT_ID, ROUTEMATE_CLIENT_SECRET.
set -euo pipefail
BASE_URL="${ROUTEMATE_BASE_URL:-http://127.0.0.1:8080}"

# 1. Exchange the client credentials for a bearer token (valid for expires_in seconds: reuse it).
TOKEN=$(curl -sS --fail-with-body -X POST "$BASE_URL/v1/integration-token" \
  -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$ROUTEMATE_CLIENT_ID\",\"client_secret\":\"$ROUTEMATE_CLIENT_SECRET\"}" | jq -r .access_token)

# 2. Import a job: the answer is the optimized route.
JOB=$(curl -sS --fail-with-body -X POST "$BASE_URL/v1/integration-import" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{
    "external_job_id": "WMS-ORDER-10045",
    "title": "Brisbane inner-city deliveries",
    "driver_email": "driver@example.com",
    "stops": [
      {"external_stop_id": "STOP-1", "address": "123 Queen St, Brisbane City QLD 4000", "label": "Queen Street Mall store", "parcel_count": 3},
      {"external_stop_id": "STOP-2", "address": "45 Grey St, South Brisbane QLD 4101", "label": "South Bank cafe", "parcel_count": 1},
      {"external_stop_id": "STOP-3", "address": "61 Merthyr Rd, New Farm QLD 4005", "label": "New Farm bakery", "parcel_count": 2}
    ]
  }')
JOB_ID=$(echo "$JOB" | jq -r .job_id)
echo "$JOB" | jq '{job_id, total_distance_km: .optimization.total_distance_km, stops: [.stops[].external_stop_id]}'

# 3. Follow the job.
curl -sS --fail-with-body "$BASE_URL/v1/integration-jobs?job_id=$JOB_ID" -H "Authorization: Bearer $TOKEN" \
  | jq '{job_id, status, stop_count, status_counts}'
