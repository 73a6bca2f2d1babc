// Client against the real platform: imports, reads, cursors, stop updates, errors, tokens, retries.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AuthenticationError, Client, ConflictError, InvalidRequestError, NotFoundError, RateLimitedError } from "@routemate/client";
import { drainRateBucket, job, kafka, liveTokens, newIntegration, platform, revokeTokens, up } from "./platform.mjs";

const client = (options = {}) =>
  new Client({ baseUrl: platform.baseUrl, clientId: platform.clientId, clientSecret: platform.clientSecret, ...options });

test("an import answers with the route and the job reads back", async () => {
  const rm = client();
  const body = job();
  const routed = await rm.importJob(body);
  assert.equal(routed.status, "assigned");
  assert.deepEqual(routed.stops.map((s) => s.sequence), [1, 2, 3, 4]);
  assert.ok(routed.optimization.total_distance_km > 0);
  assert.equal(routed.driver.email, platform.driver);
  assert.deepEqual((await rm.getJob(routed.job_id)).stops, routed.stops);
  assert.equal((await rm.findJob(body.external_job_id)).job_id, routed.job_id);
  assert.equal(await rm.findJob("TSCLIENT-never-imported"), null);
  await assert.rejects(rm.getJob("job_00000000000000000000000"), (error) => {
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.code, "job_not_found");
    assert.ok(error.requestId);
    return true;
  });
});

test("a 202 is followed to the settled job", async () => {
  // The platform answers 202 (asked for on the wire here); with wait the client follows Location.
  const asyncFetch = (url, init) =>
    fetch(url, url.endsWith("/integration-import") ? { ...init, headers: { ...init.headers, Prefer: "respond-async" } } : init);
  const routed = await client({ fetch: asyncFetch }).importJob(job(), { pollIntervalMs: 200 });
  assert.equal(routed.status, "assigned");
  assert.equal(routed.stops.length, 4);
});

test("without wait the import is accepted and a retry replays it", async () => {
  const rm = client();
  const body = job();
  const accepted = await rm.importJob(body, { wait: false });
  assert.ok(accepted.links.job.endsWith(accepted.job_id));
  assert.equal((await rm.importJob(body)).job_id, accepted.job_id);
});

test("iterJobs follows the cursor over several pages", async () => {
  const cursors = [];
  const counting = (url, init) => {
    const parsed = new URL(url);
    if (parsed.pathname === "/v1/integration-jobs") cursors.push(parsed.searchParams.get("cursor"));
    return fetch(url, init);
  };
  const rm = client({ fetch: counting });
  const imported = new Set();
  for (let i = 0; i < 5; i++) imported.add((await rm.importJob(job())).job_id);
  cursors.length = 0;
  const listed = [];
  for await (const found of rm.iterJobs({ pageSize: 2 })) listed.push(found.job_id);
  for (const id of imported) assert.ok(listed.includes(id), id);
  assert.equal(new Set(listed).size, listed.length);
  assert.ok(cursors.length >= 3 && cursors[0] === null && cursors.slice(1).every(Boolean), String(cursors));
});

test("a stop update moves the job in progress", async () => {
  const rm = client();
  const routed = await rm.importJob(job());
  const stop = routed.stops[0].external_stop_id;
  const accepted = await rm.updateStopStatus(routed.job_id, stop, "completed", { recipient_name: "Sam" });
  assert.equal(accepted.status, "completed");
  let now;
  for (let i = 0; i < 50; i++) {
    now = await rm.getJob(routed.job_id);
    if (now.status === "in_progress") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(now.status, "in_progress");
  assert.equal(now.stops[0].proof_of_delivery.recipient_name, "Sam");
  await assert.rejects(rm.updateStopStatus(routed.job_id, "NO-SUCH-STOP", "failed"), { code: "stop_not_found" });
});

test("errors carry the code, field errors and request id", async () => {
  const rm = client();
  await assert.rejects(rm.importJob({ external_job_id: "TSCLIENT-bad", title: "x", stops: [{ address: "no id" }] }), (error) => {
    assert.ok(error instanceof InvalidRequestError);
    assert.equal(error.status, 422);
    assert.equal(error.code, "validation_failed");
    assert.ok(error.requestId);
    assert.ok(error.errors.some((e) => e.pointer.startsWith("/stops/0")));
    return true;
  });
  const body = job();
  await rm.importJob(body, { wait: false });
  await assert.rejects(rm.importJob({ ...body, title: "another body" }, { wait: false }), (error) => {
    assert.ok(error instanceof ConflictError);
    assert.equal(error.code, "idempotency_conflict");
    return true;
  });
});

test("wrong credentials are an authentication error", async () => {
  const rm = client({ clientSecret: "rm_cs_wrong", maxRetries: 0 });
  await assert.rejects(rm.findJob("anything"), (error) => {
    assert.ok(error instanceof AuthenticationError);
    assert.equal(error.code, "invalid_client");
    assert.equal(error.status, 401);
    return true;
  });
});

test("a 401 refreshes the token once and the call succeeds", async () => {
  const fresh = newIntegration();
  const rm = client({ clientId: fresh.client_id, clientSecret: fresh.client_secret });
  await rm.findJob("warm-up");
  assert.equal(revokeTokens(fresh.client_id), 1);
  await Promise.all(Array.from({ length: 20 }, (_, i) => rm.findJob(`after-${i}`))); // all refused, one refresh
  assert.equal(liveTokens(fresh.client_id), 1);
});

test("concurrent callers share one token", async () => {
  const fresh = newIntegration();
  const rm = client({ clientId: fresh.client_id, clientSecret: fresh.client_secret });
  await Promise.all(Array.from({ length: 20 }, (_, i) => rm.findJob(`T-${i}`)));
  assert.equal(liveTokens(fresh.client_id), 1);
});

test("a 429 is retried after Retry-After", async () => {
  const retries = [];
  const rm = client({ onRetry: (info) => retries.push(info) });
  await rm.findJob("warm-up");
  drainRateBucket(platform.clientId);
  const started = Date.now();
  const accepted = await rm.importJob(job(), { wait: false });
  assert.ok(accepted.job_id);
  assert.ok(Date.now() - started >= 1000, "waited Retry-After: 1");
  assert.deepEqual(retries.map((r) => r.reason), ["429"]);
});

test("a 429 without retries left is thrown with retryAfter", async () => {
  const rm = client({ maxRetries: 0 });
  await rm.findJob("warm-up");
  drainRateBucket(platform.clientId);
  await assert.rejects(rm.importJob(job(), { wait: false }), (error) => {
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.code, "rate_limited");
    assert.ok(error.retryAfter >= 1);
    return true;
  });
});

test("a 503 while the broker is stopped is retried until it is back", async () => {
  const retries = [];
  const rm = client({ maxRetries: 20, backoffMax: 5, onRetry: (info) => retries.push(info.reason) });
  await rm.findJob("warm-up"); // the token is cached before the broker goes
  kafka("stop");
  const restarted = new Promise((resolve, reject) => setTimeout(() => up().then(resolve, reject), 8000));
  try {
    const routed = await rm.importJob(job());
    assert.equal(routed.status, "assigned");
  } finally {
    await restarted;
  }
  assert.ok(retries.includes("503"), String(retries));
});
