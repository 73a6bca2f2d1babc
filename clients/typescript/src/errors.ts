// Errors the client throws: one class per kind of answer, all carrying the problem+json details.

export interface FieldError {
  pointer: string;
  reason: string;
  type?: string;
}

export interface ErrorDetails {
  status?: number;
  code?: string;
  errors?: FieldError[];
  requestId?: string;
  retryAfter?: number;
  problem?: Record<string, unknown>;
}

/** An answer the client could not turn into a result: `code` is the stable machine code. */
export class RouteMateError extends Error {
  readonly status?: number;
  readonly code?: string;
  readonly errors: FieldError[];
  readonly requestId?: string;
  readonly retryAfter?: number;
  readonly problem: Record<string, unknown>;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = new.target.name;
    this.status = details.status;
    this.code = details.code;
    this.errors = details.errors ?? [];
    this.requestId = details.requestId;
    this.retryAfter = details.retryAfter;
    this.problem = details.problem ?? {};
  }
}

/** Wrong client credentials, or a token refused even after a fresh one. */
export class AuthenticationError extends RouteMateError {}
/** 400, 413, 415 or 422: see `errors`. */
export class InvalidRequestError extends RouteMateError {}
/** No such job or stop for this organization. */
export class NotFoundError extends RouteMateError {}
/** 409: `idempotency_conflict` or `illegal_transition`. */
export class ConflictError extends RouteMateError {}
/** 412: the If-Match ETag is stale; `currentEtag` is the job's ETag now. */
export class PreconditionFailed extends RouteMateError {
  currentEtag?: string;
}
/** 429, still refused after the retries. */
export class RateLimitedError extends RouteMateError {}
/** 503 or another 5xx, still failing after the retries. */
export class UnavailableError extends RouteMateError {}
/** The platform could not be reached, even after the retries. */
export class ConnectionFailedError extends RouteMateError {}
/** importJob with wait gave up; the job is still being routed. */
export class JobWaitTimeout extends RouteMateError {}

const BY_STATUS: Record<number, typeof RouteMateError> = {
  400: InvalidRequestError,
  401: AuthenticationError,
  403: AuthenticationError,
  404: NotFoundError,
  409: ConflictError,
  412: PreconditionFailed,
  413: InvalidRequestError,
  415: InvalidRequestError,
  422: InvalidRequestError,
  429: RateLimitedError,
};

/** Seconds from a Retry-After header (delta-seconds; an HTTP date counts as unknown). */
export function retryAfter(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? Math.max(0, seconds) : undefined;
}

/** The error for an answer: problem+json, an RFC 6749 error, or anything else. */
export async function errorFrom(response: Response): Promise<RouteMateError> {
  let body: Record<string, unknown> = {};
  try {
    const parsed = await response.json();
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON: keep the status alone
  }
  const text = (key: string) => (typeof body[key] === "string" ? (body[key] as string) : undefined);
  const Kind = BY_STATUS[response.status] ?? (response.status >= 500 ? UnavailableError : RouteMateError);
  const message = text("detail") ?? text("error_description") ?? text("title") ?? response.statusText;
  const error = new Kind(message, {
    status: response.status,
    code: text("code") ?? text("error"),
    errors: Array.isArray(body.errors) ? (body.errors as FieldError[]) : [],
    requestId: response.headers.get("x-request-id") ?? undefined,
    retryAfter: retryAfter(response),
    problem: body,
  });
  if (error instanceof PreconditionFailed) {
    const version = body.current_version;
    error.currentEtag = response.headers.get("etag") ?? (version !== undefined ? `"${String(version)}"` : undefined);
  }
  return error;
}
