// RouteMate quick start with fetch (Node 18+ or a browser on an allowed origin): a token, an import, the job.
// ROUTEMATE_BASE_URL (default http://127.0.0.1:8080), ROUTEMATE_CLIENT_ID, ROUTEMATE_CLIENT_SECRET.
const BASE_URL = process.env.ROUTEMATE_BASE_URL ?? "http://127.0.0.1:8080";

// 1. Exchange the client credentials for a bearer token (valid for expires_in seconds: reuse it).
const tokenResponse = await fetch(`${BASE_URL}/v1/integration-token`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({
    client_id: process.env.ROUTEMATE_CLIENT_ID,
    client_secret: process.env.ROUTEMATE_CLIENT_SECRET,
  }),
});
if (!tokenResponse.ok) throw new Error(`token: ${tokenResponse.status} ${await tokenResponse.text()}`);
const { access_token } = await tokenResponse.json();

// 2. Import a job: the answer is the optimized route.
const importResponse = await fetch(`${BASE_URL}/v1/integration-import`, {
  method: "POST",
  headers: { Authorization: `Bearer ${access_token}`, "Content-Type": "application/json" },
  body: JSON.stringify({
    external_job_id: "WMS-ORDER-10045",
    title: "Brisbane inner-city deliveries",
    driver_email: "driver@example.com",
    stops: [
      { external_stop_id: "STOP-1", address: "123 Queen St, Brisbane City QLD 4000", label: "Queen Street Mall store", parcel_count: 3 },
      { external_stop_id: "STOP-2", address: "45 Grey St, South Brisbane QLD 4101", label: "South Bank cafe", parcel_count: 1 },
      { external_stop_id: "STOP-3", address: "61 Merthyr Rd, New Farm QLD 4005", label: "New Farm bakery", parcel_count: 2 },
    ],
  }),
});
if (!importResponse.ok) throw new Error(`import: ${importResponse.status} ${await importResponse.text()}`);
const job = await importResponse.json();
console.log(job.job_id, job.optimization.total_distance_km, job.stops.map((stop) => stop.external_stop_id));

// 3. Follow the job.
const jobResponse = await fetch(`${BASE_URL}/v1/integration-jobs?job_id=${job.job_id}`, {
  headers: { Authorization: `Bearer ${access_token}` },
});
const current = await jobResponse.json();
console.log(current.job_id, current.status, current.status_counts);
