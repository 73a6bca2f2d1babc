"""RouteMate quick start with requests: a token, an import, the job.

ROUTEMATE_BASE_URL (default http://127.0.0.1:8080), ROUTEMATE_CLIENT_ID, ROUTEMATE_CLIENT_SECRET.
"""

import os

import requests

BASE_URL = os.environ.get("ROUTEMATE_BASE_URL", "http://127.0.0.1:8080")

# 1. Exchange the client credentials for a bearer token (valid for expires_in seconds: reuse it).
token = requests.post(
    f"{BASE_URL}/v1/integration-token",
    json={"client_id": os.environ["ROUTEMATE_CLIENT_ID"], "client_secret": os.environ["ROUTEMATE_CLIENT_SECRET"]},
    timeout=30,
)
token.raise_for_status()
headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

# 2. Import a job: the answer is the optimized route.
job = {
    "external_job_id": "WMS-ORDER-10045",
    "title": "Brisbane inner-city deliveries",
    "driver_email": "driver@example.com",
    "stops": [
        {"external_stop_id": "STOP-1", "address": "123 Queen St, Brisbane City QLD 4000", "parcel_count": 3},
        {"external_stop_id": "STOP-2", "address": "45 Grey St, South Brisbane QLD 4101", "parcel_count": 1},
        {"external_stop_id": "STOP-3", "address": "61 Merthyr Rd, New Farm QLD 4005", "parcel_count": 2},
    ],
}
imported = requests.post(f"{BASE_URL}/v1/integration-import", json=job, headers=headers, timeout=60)
imported.raise_for_status()
route = imported.json()
print(route["job_id"], route["optimization"]["total_distance_km"], [s["external_stop_id"] for s in route["stops"]])

# 3. Follow the job.
current = requests.get(
    f"{BASE_URL}/v1/integration-jobs", params={"job_id": route["job_id"]}, headers=headers, timeout=30
)
current.raise_for_status()
print(current.json()["job_id"], current.json()["status"], current.json()["status_counts"])
