// Token lifetime and retry timing, on a scripted fetch (no platform needed).
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, UnavailableError } from "@routemate/client";

function scripted(answers, seen) {
  return async (url, init) => {
    seen.push({ url: new URL(url), init });
    return answers.shift();
  };
}
const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const token = (expiresIn, name = "rm_at_1") => json(200, { access_token: name, token_type: "Bearer", expires_in: expiresIn });
const missing = () => json(404, { code: "job_not_found", status: 404, title: "Not Found", type: "t" });

test("the token is reused, then refreshed shortly before it expires", async () => {
  const seen = [];
  const fetch = scripted([token(3, "rm_at_1"), missing(), missing(), token(3, "rm_at_2"), missing()], seen);
  const rm = new Client({ baseUrl: "http://rm.test", clientId: "id", clientSecret: "s", fetch });
  await rm.findJob("a");
  await rm.findJob("b");
  await new Promise((resolve) => setTimeout(resolve, 2750)); // inside the last tenth of 3 s
  await rm.findJob("c");
  assert.equal(seen.filter((s) => s.url.pathname === "/v1/integration-token").length, 2);
  assert.equal(seen.at(-1).init.headers.Authorization, "Bearer rm_at_2");
});

test("a 503 is retried with Retry-After, then thrown", async () => {
  const seen = [];
  const busy = () => json(503, { code: "dependency_unavailable", status: 503 }, { "retry-after": "0" });
  const rm = new Client({ baseUrl: "http://rm.test", clientId: "id", clientSecret: "s", maxRetries: 2, fetch: scripted([token(3600), busy(), busy(), busy()], seen) });
  await assert.rejects(rm.getJob("job_1"), (error) => error instanceof UnavailableError && error.retryAfter === 0);
  assert.equal(seen.length, 4);
});

test("a connection error is retried with growing, jittered backoff", async () => {
  const delays = [];
  let calls = 0;
  const fetch = async () => {
    calls += 1;
    if (calls === 1) return token(3600);
    if (calls < 5) throw new TypeError("fetch failed");
    return missing();
  };
  const rm = new Client({ baseUrl: "http://rm.test", clientId: "id", clientSecret: "s", backoffBase: 0.05, fetch, onRetry: (i) => delays.push(i.delaySeconds) });
  assert.equal(await rm.findJob("x"), null);
  assert.equal(delays.length, 3);
  delays.forEach((delay, i) => assert.ok(delay >= 0.025 * 2 ** i && delay <= 0.05 * 2 ** i, `${i}: ${delay}`));
});
