// webhooks.verify against the independent `standardwebhooks` package's signer.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import { webhooks } from "@routemate/client";
import { Webhook } from "standardwebhooks";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const BODY = JSON.stringify({ type: "job.assigned", data: { job_id: "job_1" } });

function signed({ body = BODY, when = new Date(), id = "msg_1", secret = SECRET } = {}) {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(when.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, when, body),
  };
}

test("a Standard Webhooks signature verifies", () => {
  assert.deepEqual(webhooks.verify(SECRET, signed(), BODY), JSON.parse(BODY));
  assert.deepEqual(webhooks.verify(SECRET, new Headers(signed()), Buffer.from(BODY)), JSON.parse(BODY));
});

test("one valid signature among several is enough", () => {
  const headers = signed();
  headers["webhook-signature"] = `v1,AAAA ${headers["webhook-signature"]}`;
  assert.ok(webhooks.verify(SECRET, headers, BODY));
});

const minutes = (n) => new Date(Date.now() + n * 60_000);
for (const [name, headers, body] of [
  ["altered body", signed(), BODY.replace("job_1", "job_2")],
  ["another secret", signed({ secret: `whsec_${randomBytes(32).toString("base64")}` }), BODY],
  ["too old", signed({ when: minutes(-6) }), BODY],
  ["too new", signed({ when: minutes(6) }), BODY],
  ["unsigned", { "webhook-id": "msg_1", "webhook-timestamp": String(Math.floor(Date.now() / 1000)) }, BODY],
]) {
  test(`a forged or stale callback is refused: ${name}`, () => {
    assert.throws(() => webhooks.verify(SECRET, headers, body), webhooks.WebhookVerificationError);
  });
}

test("what we sign the reference verifies", () => {
  const stamp = Math.floor(Date.now() / 1000);
  const headers = { "webhook-id": "msg_2", "webhook-timestamp": String(stamp), "webhook-signature": webhooks.sign(SECRET, "msg_2", stamp, BODY) };
  assert.deepEqual(new Webhook(SECRET).verify(BODY, headers), JSON.parse(BODY));
});
