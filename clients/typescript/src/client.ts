// The RouteMate client: one cached token, safe retries honouring Retry-After, typed answers.
import { ConnectionFailedError, JobWaitTimeout, NotFoundError, AuthenticationError, errorFrom, retryAfter } from "./errors.js";
import type {
  ReplanOptions,
  WebhookDeliveryPage,
  WebhookDeliveryScheduled,
  WebhookEndpoint,
  WebhookEndpointChange,
  WebhookEndpointWithSecret,
  WebhookEvent,
  ImportAccepted,
  ImportJob,
  Job,
  JobPage,
  ListJobsOptions,
  StopOutcome,
  StopStatusAccepted,
  StopStatusUpdate,
  Token,
} from "./types.js";
import { SETTLED } from "./types.js";

export const VERSION = "0.1.0";
const TOKEN_PATH = "/v1/integration-token";
const IMPORT_PATH = "/v1/integration-import";
const JOBS_PATH = "/v1/integration-jobs";
const WEBHOOKS_PATH = "/v1/integration-webhooks";

/** An ETag as the platform sends it ('"7"'), from the tag itself or the job's `version`. */
const etag = (version: string | number) => {
  const text = String(version).trim();
  return text.startsWith('"') || text.startsWith("W/") ? text : `"${text}"`;
};
const versionOf = (tag: string | number) => Number(String(tag).replace(/^W\//, "").replace(/"/g, "")) || 0;
/** After a change from version `base`: the job moved on and every stop still to visit has its place. */
const replanned = (job: Job, base: number) =>
  SETTLED.has(job.status) &&
  (job.version ?? 0) > base &&
  job.stops.every((s) => s.sequence !== null && s.sequence !== undefined || s.status !== "pending");
const RETRY_STATUSES = new Set([429, 502, 503, 504]);

export interface RetryInfo {
  method: string;
  path: string;
  /** the status that caused the retry, or the connection error's name */
  reason: string;
  delaySeconds: number;
  retry: number;
}

export interface ClientOptions {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  /** per request, milliseconds (default 60000) */
  timeoutMs?: number;
  /** retries on connection errors, 429 and 5xx (default 5) */
  maxRetries?: number;
  /** backoff: between half and all of backoffBase·2^retry seconds, capped at backoffMax (0.5, 30) */
  backoffBase?: number;
  backoffMax?: number;
  /** a Retry-After longer than this (seconds, default 120) is not waited out */
  maxRetryAfter?: number;
  /** refresh the token this many seconds (at most a tenth of its lifetime) before it expires (60) */
  refreshMargin?: number;
  /** called before every retry */
  onRetry?: (info: RetryInfo) => void;
  fetch?: typeof fetch;
}

export interface ImportOptions {
  /** wait for the route (default true): follows a 202's Location until the job settles */
  wait?: boolean;
  waitTimeoutMs?: number;
  pollIntervalMs?: number;
}

interface SendOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  authenticated?: boolean;
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

export class Client {
  private readonly options: Required<Omit<ClientOptions, "onRetry" | "fetch">> & Pick<ClientOptions, "onRetry">;
  private readonly fetch: typeof fetch;
  private token?: string;
  private refreshAt = 0;
  private refreshing: Promise<string> | null = null;

  constructor(options: ClientOptions) {
    this.options = {
      timeoutMs: 60_000,
      maxRetries: 5,
      backoffBase: 0.5,
      backoffMax: 30,
      maxRetryAfter: 120,
      refreshMargin: 60,
      ...options,
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
    };
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** Import a job. By default resolves to the routed Job (following a 202's Location until it
   * settles); with `wait: false` sends `Prefer: respond-async` and resolves to ImportAccepted.
   * Retrying is safe: the platform is idempotent on external_job_id. */
  importJob(job: ImportJob, options?: ImportOptions & { wait?: true }): Promise<Job>;
  importJob(job: ImportJob, options: ImportOptions & { wait: false }): Promise<ImportAccepted>;
  async importJob(job: ImportJob, options: ImportOptions = {}): Promise<Job | ImportAccepted> {
    const wait = options.wait ?? true;
    const headers: Record<string, string> = wait ? {} : { Prefer: "respond-async" };
    const answer = await this.send("POST", IMPORT_PATH, { body: job, headers });
    if (answer.status === 200 || answer.status === 201) {
      const routed = (await answer.json()) as Job;
      if (wait) return routed;
      const { job_id, external_job_id, status } = routed;
      return { job_id, external_job_id, status, links: { job: `${JOBS_PATH}/${job_id}` } };
    }
    if (answer.status !== 202) throw await errorFrom(answer);
    const accepted = (await answer.json()) as ImportAccepted;
    if (!wait) return accepted;
    const location = answer.headers.get("location") ?? accepted.links.job;
    return this.waitUntilSettled(location, options.waitTimeoutMs ?? 120_000, options.pollIntervalMs ?? 1000);
  }

  /** One job with its stops in route order; throws NotFoundError if this organization has none. */
  async getJob(jobId: string): Promise<Job> {
    return (await this.json("GET", `${JOBS_PATH}/${encodeURIComponent(jobId)}`)) as Job;
  }

  /** The job imported under your own id, or null. */
  async findJob(externalJobId: string): Promise<Job | null> {
    try {
      return (await this.json("GET", JOBS_PATH, { query: { external_job_id: externalJobId } })) as Job;
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  /** Every matching job, newest first, fetching page after page as you iterate. */
  async *iterJobs(options: ListJobsOptions = {}): AsyncGenerator<Job> {
    let cursor: string | undefined;
    const since = options.updatedSince instanceof Date ? options.updatedSince.toISOString() : options.updatedSince;
    do {
      const query = {
        limit: options.pageSize ?? 100,
        status: options.status,
        updated_since: since,
        driver_email: options.driverEmail,
        cursor,
      };
      const page = (await this.json("GET", JOBS_PATH, { query })) as JobPage;
      yield* page.jobs;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  /** Record a stop's delivery outcome with proof of delivery. `occurred_at` defaults to now and is
   * fixed before the first try, so a retried update is the same report. */
  async updateStopStatus(
    jobId: string,
    externalStopId: string,
    status: StopOutcome,
    update: StopStatusUpdate = {},
  ): Promise<StopStatusAccepted> {
    const occurred = update.occurred_at ?? new Date();
    const body = { ...update, status, occurred_at: occurred instanceof Date ? occurred.toISOString() : occurred };
    const path = `${JOBS_PATH}/${encodeURIComponent(jobId)}/stops/${encodeURIComponent(externalStopId)}/status`;
    return (await this.json("POST", path, { body })) as StopStatusAccepted;
  }

  /** The job's next version: the changed body under the same external_job_id, sent with If-Match
   * of the ETag (or `version`) you read; resolves to the job on its new route. Throws
   * PreconditionFailed (412) when the job changed since: its `currentEtag` is the one to use. */
  async updateJob(job: ImportJob, options: { ifMatch: string | number } & Omit<ImportOptions, "wait">): Promise<Job> {
    const tag = etag(options.ifMatch);
    const answer = await this.send("POST", IMPORT_PATH, { body: job, headers: { "If-Match": tag } });
    if (answer.status === 200 || answer.status === 201) return (await answer.json()) as Job;
    if (answer.status !== 202) throw await errorFrom(answer);
    const accepted = (await answer.json()) as ImportAccepted;
    const location = answer.headers.get("location") ?? accepted.links.job;
    const base = versionOf(tag);
    return this.waitUntil(location, (j) => replanned(j, base), options.waitTimeoutMs ?? 120_000, options.pollIntervalMs ?? 1000);
  }

  /** Cancel a job (terminal): its pending stops become cancelled. Cancelling again is safe.
   * Resolves to the job once the cancellation shows. */
  async cancelJob(jobId: string, options: { reason?: string; ifMatch?: string | number } = {}): Promise<Job> {
    const path = `${JOBS_PATH}/${encodeURIComponent(jobId)}`;
    const headers: Record<string, string> = options.ifMatch !== undefined ? { "If-Match": etag(options.ifMatch) } : {};
    const body = options.reason !== undefined ? { reason: options.reason } : {};
    await this.json("POST", `${path}/cancel`, { body, headers });
    return this.waitUntil(path, (j) => j.status === "cancelled", 60_000, 500);
  }

  /** Erase a job and its personal data (addresses, names, notes, proof of delivery) everywhere;
   * erasing again is safe. An unknown job, or another organization's, rejects with a 404 error. */
  async deleteJob(jobId: string): Promise<void> {
    const answer = await this.send("DELETE", `${JOBS_PATH}/${encodeURIComponent(jobId)}`);
    if (answer.status >= 300) throw await errorFrom(answer);
  }

  /** Re-plan the stops still to visit from `currentLocation` at `at`; finished stops keep their
   * place. Resolves to the job on its new route. */
  async reoptimizeJob(
    jobId: string,
    options: ReplanOptions & { ifMatch?: string | number; waitTimeoutMs?: number; pollIntervalMs?: number } = {},
  ): Promise<Job> {
    const path = `${JOBS_PATH}/${encodeURIComponent(jobId)}`;
    const body: Record<string, unknown> = {};
    if (options.currentLocation) body.current_location = options.currentLocation;
    if (options.at !== undefined) body.at = options.at instanceof Date ? options.at.toISOString() : options.at;
    const headers: Record<string, string> = options.ifMatch !== undefined ? { "If-Match": etag(options.ifMatch) } : {};
    const before = await this.send("GET", path);
    const base = before.status === 200 ? versionOf(before.headers.get("etag") ?? "0") : 0;
    await before.body?.cancel();
    await this.json("POST", `${path}/reoptimize`, { body, headers });
    return this.waitUntil(path, (j) => replanned(j, base), options.waitTimeoutMs ?? 120_000, options.pollIntervalMs ?? 1000);
  }

  // --- webhook endpoints --------------------------------------------------------------------

  /** A new endpoint; the answer's `secret` (whsec_…) is shown this once. */
  async createWebhook(url: string, events: WebhookEvent[], description?: string): Promise<WebhookEndpointWithSecret> {
    const body = description === undefined ? { url, events } : { url, events, description };
    return (await this.json("POST", WEBHOOKS_PATH, { body })) as WebhookEndpointWithSecret;
  }

  async listWebhooks(): Promise<WebhookEndpoint[]> {
    return ((await this.json("GET", WEBHOOKS_PATH)) as { endpoints: WebhookEndpoint[] }).endpoints;
  }

  async getWebhook(endpointId: string): Promise<WebhookEndpoint> {
    return (await this.json("GET", `${WEBHOOKS_PATH}/${encodeURIComponent(endpointId)}`)) as WebhookEndpoint;
  }

  async updateWebhook(endpointId: string, change: WebhookEndpointChange): Promise<WebhookEndpoint> {
    const path = `${WEBHOOKS_PATH}/${encodeURIComponent(endpointId)}`;
    return (await this.json("PATCH", path, { body: change })) as WebhookEndpoint;
  }

  async deleteWebhook(endpointId: string): Promise<void> {
    const answer = await this.send("DELETE", `${WEBHOOKS_PATH}/${encodeURIComponent(endpointId)}`);
    if (answer.status >= 300) throw await errorFrom(answer);
  }

  /** A new secret, shown once; during the grace both the old and the new one sign. */
  async rotateWebhookSecret(endpointId: string, graceSeconds?: number): Promise<WebhookEndpointWithSecret> {
    const path = `${WEBHOOKS_PATH}/${encodeURIComponent(endpointId)}/rotate-secret`;
    const body = graceSeconds === undefined ? {} : { grace_seconds: graceSeconds };
    return (await this.json("POST", path, { body })) as WebhookEndpointWithSecret;
  }

  /** Send a webhook.test event to the endpoint now. */
  async testWebhook(endpointId: string): Promise<WebhookDeliveryScheduled> {
    const path = `${WEBHOOKS_PATH}/${encodeURIComponent(endpointId)}/test`;
    return (await this.json("POST", path)) as WebhookDeliveryScheduled;
  }

  /** One page of the endpoint's delivery log. */
  async webhookDeliveries(endpointId: string, cursor?: string): Promise<WebhookDeliveryPage> {
    const path = `${WEBHOOKS_PATH}/${encodeURIComponent(endpointId)}/deliveries`;
    return (await this.json("GET", path, { query: { cursor } })) as WebhookDeliveryPage;
  }

  // --- plumbing ---------------------------------------------------------------------------

  private waitUntilSettled(location: string, timeoutMs: number, pollMs: number): Promise<Job> {
    return this.waitUntil(location, (job) => SETTLED.has(job.status), timeoutMs, pollMs);
  }

  private async waitUntil(location: string, done: (job: Job) => boolean, timeoutMs: number, pollMs: number): Promise<Job> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let job: Job | null = null;
      try {
        job = (await this.json("GET", location)) as Job;
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error; // accepted, not on the jobs endpoint yet
      }
      if (job && done(job)) return job;
      if (Date.now() >= deadline) {
        throw new JobWaitTimeout(`${location} is still ${job?.status ?? "not visible yet"}`, {
          status: 202,
          code: "wait_timeout",
        });
      }
      await sleep(pollMs / 1000);
    }
  }

  private async json(method: string, path: string, options: SendOptions = {}): Promise<unknown> {
    const answer = await this.send(method, path, options);
    if (answer.status >= 300) throw await errorFrom(answer);
    return answer.json();
  }

  /** The cached token, or one fresh token shared by every caller that asks while it is fetched. */
  private async currentToken(): Promise<string> {
    if (this.token && Date.now() < this.refreshAt) return this.token;
    this.refreshing ??= this.fetchToken().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async fetchToken(): Promise<string> {
    const { clientId, clientSecret, refreshMargin } = this.options;
    const answer = await this.send("POST", TOKEN_PATH, {
      body: { client_id: clientId, client_secret: clientSecret },
      authenticated: false,
    });
    if (answer.status !== 200) {
      const error = await errorFrom(answer);
      if (answer.status === 400 || answer.status === 401) {
        throw new AuthenticationError(error.message, { ...error, requestId: error.requestId, problem: error.problem });
      }
      throw error;
    }
    const token = (await answer.json()) as Token;
    const margin = Math.min(refreshMargin, token.expires_in / 10);
    this.token = token.access_token;
    this.refreshAt = Date.now() + (token.expires_in - margin) * 1000;
    return token.access_token;
  }

  /** Drop a refused token if it is still the cached one: of many callers refused at once, only
   * the first causes a refresh. */
  private forget(token: string | undefined): void {
    if (token !== undefined && token === this.token) {
      this.token = undefined;
      this.refreshAt = 0;
    }
  }

  private retryDelay(retry: number, response?: Response): number | undefined {
    const { maxRetries, backoffBase, backoffMax, maxRetryAfter } = this.options;
    if (retry >= maxRetries) return undefined;
    const ceiling = Math.min(backoffMax, backoffBase * 2 ** retry);
    const told = response ? retryAfter(response) : undefined;
    if (told === undefined) return ceiling / 2 + (Math.random() * ceiling) / 2;
    if (told > maxRetryAfter) return undefined;
    return told + Math.random() * Math.min(1, ceiling / 2);
  }

  private url(path: string, query?: SendOptions["query"]): string {
    const url = new URL(path.startsWith("/") ? this.options.baseUrl + path : path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  /** One call, retried on connection errors, 429 and 5xx (Retry-After honoured) and once with a
   * fresh token on a 401. Resolves to the final answer, whatever its status. */
  private async send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
    const authenticated = options.authenticated ?? true;
    let refreshed = false;
    let retry = 0;
    for (;;) {
      const token = authenticated ? await this.currentToken() : undefined;
      const headers: Record<string, string> = {
        Accept: "application/json",
        "User-Agent": `routemate-client-node/${VERSION}`,
        ...options.headers,
      };
      if (token) headers.Authorization = `Bearer ${token}`;
      if (options.body !== undefined) headers["Content-Type"] = "application/json";
      let answer: Response;
      try {
        answer = await this.fetch(this.url(path, options.query), {
          method,
          headers,
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
      } catch (error) {
        const delay = this.retryDelay(retry);
        if (delay === undefined) {
          throw new ConnectionFailedError(`${method} ${path} failed: ${String(error)}`, { code: "connection_failed" });
        }
        this.options.onRetry?.({ method, path, reason: (error as Error).name, delaySeconds: delay, retry: retry + 1 });
        await sleep(delay);
        retry += 1;
        continue;
      }
      if (answer.status === 401 && authenticated && !refreshed) {
        await answer.body?.cancel();
        this.forget(token);
        refreshed = true;
        continue;
      }
      if (RETRY_STATUSES.has(answer.status)) {
        const delay = this.retryDelay(retry, answer);
        if (delay !== undefined) {
          await answer.body?.cancel();
          this.options.onRetry?.({ method, path, reason: String(answer.status), delaySeconds: delay, retry: retry + 1 });
          await sleep(delay);
          retry += 1;
          continue;
        }
      }
      return answer;
    }
  }
}
