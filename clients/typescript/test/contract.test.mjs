// The declared types are the published OpenAPI document's, field for field (read from src/types.ts
// with the TypeScript compiler, compared with /v1/openapi.json of the platform).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import ts from "typescript";

import { platform } from "./platform.mjs";

const PAIRS = {
  ImportJob: "ImportIn", ImportStop: "StopIn", Depot: "DepotIn", TimeWindow: "TimeWindowIn", Token: "TokenResponse",
  Job: "Job", Stop: "Stop", Driver: "Driver", Optimization: "Optimization", ProofOfDelivery: "ProofOfDelivery",
  UnroutedStop: "UnroutedStop", JobWarning: "JobWarning", JobPage: "JobPage", ImportAccepted: "ImportAccepted",
  StopStatusAccepted: "StopStatusAccepted", WebhookEndpoint: "WebhookEndpoint",
  WebhookEndpointWithSecret: "WebhookEndpointWithSecret", WebhookAttempt: "WebhookAttempt",
  WebhookDelivery: "WebhookDelivery", WebhookDeliveryPage: "WebhookDeliveryPage",
  WebhookDeliveryScheduled: "WebhookDeliveryScheduled", Vehicle: "VehicleIn", Route: "Route", RouteTotals: "RouteTotals",
};

function interfaces() {
  const path = new URL("../src/types.ts", import.meta.url);
  const source = ts.createSourceFile("types.ts", readFileSync(path, "utf8"), ts.ScriptTarget.Latest);
  const found = {};
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node)) return;
    const members = node.members.filter((m) => ts.isPropertySignature(m));
    found[node.name.text] = {
      fields: members.map((m) => m.name.text).sort(),
      required: members.filter((m) => !m.questionToken).map((m) => m.name.text).sort(),
    };
  });
  return found;
}

test("every declared body has the documented fields and required ones", async () => {
  const document = await (await fetch(`${platform.baseUrl}/v1/openapi.json`)).json();
  assert.match(document.openapi, /^3\.1/);
  const declared = interfaces();
  for (const [type, schemaName] of Object.entries(PAIRS)) {
    const schema = document.components.schemas[schemaName];
    assert.deepEqual(declared[type].fields, Object.keys(schema.properties).sort(), type);
    assert.deepEqual(declared[type].required, [...(schema.required ?? [])].sort(), type);
  }
});
