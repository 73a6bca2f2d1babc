// Changing a job (update by re-import with If-Match, re-plan, cancel) and managing webhook
// endpoints against the real platform.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, ConflictError, NotFoundError, PreconditionFailed } from "@routemate/client";
import { job, platform } from "./platform.mjs";

const client = () => new Client({ baseUrl: platform.baseUrl, clientId: platform.clientId, clientSecret: platform.clientSecret });

test("an update needs the current ETag and a stale one says which is current", async () => {
  const rm = client();
  const body = job();
  const first = await rm.importJob(body);
  const done = first.stops[0].external_stop_id;
  await rm.updateStopStatus(first.job_id, done, "completed");
  body.title = "one more parcel at the last stop";
  body.stops[3].parcel_count += 1;
  let current;
  await assert.rejects(rm.updateJob(body, { ifMatch: first.version }), (error) => {
    assert.ok(error instanceof PreconditionFailed);
    assert.equal(error.status, 412);
    current = error.currentEtag;
    return true;
  });
  assert.equal(current, `"${(await rm.getJob(first.job_id)).version}"`);
  await assert.rejects(rm.importJob(body), ConflictError); // without If-Match: still a conflict
  const updated = await rm.updateJob(body, { ifMatch: current });
  assert.equal(updated.job_id, first.job_id);
  // A stale update refused by the projection (not by ingest) used spec 2 up: this one is a later spec.
  assert.ok(updated.spec_version >= 2);
  const kept = updated.stops.find((s) => s.external_stop_id === done);
  assert.deepEqual([kept.status, kept.sequence], ["completed", 1]);
});

test("a re-plan from the driver's location keeps finished stops, then a cancel", async () => {
  const rm = client();
  const first = await rm.importJob(job());
  const done = first.stops[0].external_stop_id;
  await rm.updateStopStatus(first.job_id, done, "completed");
  const replanned = await rm.reoptimizeJob(first.job_id, { currentLocation: { lat: -27.4575, lng: 153.0355 } });
  assert.ok(replanned.version > first.version);
  assert.equal(replanned.stops[0].external_stop_id, done);
  assert.deepEqual(replanned.stops.map((s) => s.sequence), [1, 2, 3, 4]);
  const cancelled = await rm.cancelJob(first.job_id, { reason: "customer called" });
  assert.equal(cancelled.status, "cancelled");
  assert.deepEqual(cancelled.stops.map((s) => s.status), ["completed", "cancelled", "cancelled", "cancelled"]);
});

test("webhook endpoints are created, listed, changed, rotated, tested and deleted", async () => {
  const rm = client();
  const created = await rm.createWebhook("https://93.184.216.34/hooks", ["job.routed", "job.cancelled"], "ERP");
  assert.match(created.secret, /^whsec_/);
  assert.ok((await rm.listWebhooks()).some((e) => e.id === created.id));
  assert.equal("secret" in (await rm.getWebhook(created.id)), false); // shown once
  const changed = await rm.updateWebhook(created.id, { events: ["job.updated"], status: "disabled" });
  assert.deepEqual([changed.events, changed.status], [["job.updated"], "disabled"]);
  const rotated = await rm.rotateWebhookSecret(created.id, 60);
  assert.notEqual(rotated.secret, created.secret);
  await rm.updateWebhook(created.id, { status: "active" });
  assert.ok((await rm.testWebhook(created.id)).webhook_id);
  assert.ok(Array.isArray((await rm.webhookDeliveries(created.id)).deliveries));
  await rm.deleteWebhook(created.id);
  await assert.rejects(rm.getWebhook(created.id), NotFoundError);
});

test("a deleted job is gone, and deleting it again is safe", async () => {
  const rm = client();
  const imported = await rm.importJob(job());
  await rm.deleteJob(imported.job_id);
  await assert.rejects(rm.getJob(imported.job_id), NotFoundError);
  await rm.deleteJob(imported.job_id); // again: still erased, no error
  await assert.rejects(rm.deleteJob("00000000-0000-4000-8000-000000000000"), NotFoundError);
});
