// Standard Webhooks signatures (https://www.standardwebhooks.com), as RouteMate signs its callbacks:
// `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with `whsec_<base64>`.
import { createHmac, timingSafeEqual } from "node:crypto";

export const TOLERANCE_SECONDS = 5 * 60;

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(" ") : value;
  }
  return undefined;
}

function key(secret: string | Uint8Array): Buffer {
  if (typeof secret !== "string") return Buffer.from(secret);
  return Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
}

/** The webhook-signature value for a body (what the sender computes). */
export function sign(secret: string | Uint8Array, msgId: string, timestamp: number, body: string | Uint8Array): string {
  const mac = createHmac("sha256", key(secret));
  mac.update(`${msgId}.${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest("base64")}`;
}

/** Check a callback's signature and timestamp; returns its parsed JSON payload or throws
 * WebhookVerificationError. Pass the raw body, before any JSON parsing. */
export function verify(
  secret: string | Uint8Array,
  headers: HeaderSource,
  body: string | Uint8Array,
  options: { tolerance?: number; now?: number } = {},
): unknown {
  const msgId = header(headers, "webhook-id");
  const stamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!msgId || !stamp || !signatures) throw new WebhookVerificationError("missing webhook headers");
  const timestamp = Number(stamp);
  if (!Number.isInteger(timestamp)) throw new WebhookVerificationError("invalid webhook-timestamp");
  const now = options.now ?? Date.now() / 1000;
  const tolerance = options.tolerance ?? TOLERANCE_SECONDS;
  if (timestamp < now - tolerance) throw new WebhookVerificationError("message timestamp too old");
  if (timestamp > now + tolerance) throw new WebhookVerificationError("message timestamp too new");
  const expected = Buffer.from(sign(secret, msgId, timestamp, body).slice(3));
  for (const candidate of signatures.split(" ")) {
    const [version, value] = [candidate.slice(0, candidate.indexOf(",")), candidate.slice(candidate.indexOf(",") + 1)];
    const given = Buffer.from(value);
    if (version === "v1" && given.length === expected.length && timingSafeEqual(given, expected)) {
      return JSON.parse(typeof body === "string" ? body : Buffer.from(body).toString("utf8"));
    }
  }
  throw new WebhookVerificationError("no matching signature");
}
