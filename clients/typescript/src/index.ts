// @routemate/client: the RouteMate Integration API for Node 18+, on the built-in fetch.
export { Client, VERSION } from "./client.js";
export type { ClientOptions, ImportOptions, RetryInfo } from "./client.js";
export * from "./errors.js";
export * from "./types.js";
export * as webhooks from "./webhooks.js";
