// The RouteMate client: one cached token, safe retries honouring Retry-After, typed answers.
import { ConnectionFailedError, JobWaitTimeout, NotFoundError, AuthenticationError, errorFrom, retryAfter } from "./errors.js";
import type {
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

  // --- plumbing ---------------------------------------------------------------------------

  private async waitUntilSettled(location: string, timeoutMs: number, pollMs: number): Promise<Job> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let job: Job | null = null;
      try {
        job = (await this.json("GET", location)) as Job;
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error; // accepted, not on the jobs endpoint yet
      }
      if (job && SETTLED.has(job.status)) return job;
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
