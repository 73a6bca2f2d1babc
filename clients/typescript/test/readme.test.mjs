// The README's example runs unchanged (as an ES module inside the package, so that
// "@routemate/client" resolves to this build).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { test } from "node:test";

test("the README example runs", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const example = readme.match(/## Example\n\n```js\n([\s\S]*?)```/)[1];
  const script = new URL("./readme-example.tmp.mjs", import.meta.url);
  writeFileSync(script, example);
  try {
    const out = execFileSync(process.execPath, [script.pathname], { encoding: "utf8", timeout: 180_000 });
    const first = out.split("\n")[0].split(" ");
    assert.match(first[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(["assigned", "unassigned", "in_progress"].includes(first[1]), out); // in_progress when replayed
    assert.match(out, /^true$/m);
    assert.match(out, /job_not_found/);
  } finally {
    rmSync(script, { force: true });
  }
});
