// The platform under test and the levers the fault tests pull. RouteMate's `make test`
// (tests/clients/test_typescript_client.py) sets ROUTEMATE_BASE_URL, ROUTEMATE_CLIENT_ID,
// ROUTEMATE_CLIENT_SECRET, ROUTEMATE_DRIVER_EMAIL, REDIS_URL, ROUTEMATE_ROOT, ROUTEMATE_PYTHON.
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through RouteMate's make test`);
  return value;
}

export const platform = {
  baseUrl: env("ROUTEMATE_BASE_URL"),
  clientId: env("ROUTEMATE_CLIENT_ID"),
  clientSecret: env("ROUTEMATE_CLIENT_SECRET"),
  driver: env("ROUTEMATE_DRIVER_EMAIL"),
  root: env("ROUTEMATE_ROOT"),
};

export const STOPS = [
  { external_stop_id: "STOP-1", address: "123 Queen St, Brisbane City QLD 4000", parcel_count: 3 },
  { external_stop_id: "STOP-2", address: "45 Grey St, South Brisbane QLD 4101", parcel_count: 1 },
  { external_stop_id: "STOP-3", address: "61 Merthyr Rd, New Farm QLD 4005", parcel_count: 2 },
  { external_stop_id: "STOP-4", address: "12 Given Tce, Paddington QLD 4064", parcel_count: 1 },
];

export function job(over = {}) {
  return {
    external_job_id: `TSCLIENT-${randomUUID().slice(0, 12)}`,
    title: "typescript client test",
    driver_email: platform.driver,
    stops: STOPS.map((s) => ({ ...s })),
    ...over,
  };
}

export function redis(...args) {
  return execFileSync("redis-cli", ["-u", env("REDIS_URL"), ...args], { encoding: "utf8" });
}

/** Delete every live token of an integration, as an expiry would. */
export function revokeTokens(clientId) {
  const digests = redis("SMEMBERS", `rm:client-tokens:${clientId}`).split(/\s+/).filter(Boolean);
  for (const digest of digests) redis("DEL", `rm:token:${digest}`);
  redis("DEL", `rm:client-tokens:${clientId}`);
  return digests.length;
}

export const liveTokens = (clientId) => Number(redis("SCARD", `rm:client-tokens:${clientId}`).trim());

/** Empty the import bucket, stamped in the future: exactly the next import gets a 429. */
export function drainRateBucket(clientId) {
  redis("HSET", `rm:rl:${clientId}`, "tokens", "0", "ts", String(Date.now() / 1000 + 1000));
}

export function newIntegration() {
  const out = execFileSync(
    env("ROUTEMATE_PYTHON"),
    ["-m", "routemate_cli.main", "integration", "create", "--org", `tsclient-${randomUUID().slice(0, 8)}`, "--name", "ts"],
    { cwd: platform.root, encoding: "utf8" },
  );
  return JSON.parse(out);
}

export function kafka(action) {
  const state = `${process.env.VAR_DIR ?? `${platform.root}/var`}/kafka`;
  execFileSync("bash", [`${platform.root}/deploy/kafka/kafka.sh`, action], {
    env: { ...process.env, KAFKA_STATE_DIR: state },
    stdio: "ignore",
  });
}

/** `platform.sh up` in the background; resolves when it exits. */
export function up() {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [`${platform.root}/deploy/local/platform.sh`, "up"], { stdio: "ignore" });
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`platform.sh up: ${code}`))));
  });
}
