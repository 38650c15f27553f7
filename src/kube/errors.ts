// Errors from the API server, with the fields callers branch on.

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly verb: string;
  readonly path: string;
  /** The answer's Retry-After (429 from API Priority and Fairness, some 5xx), in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(
    verb: string,
    path: string,
    code: number,
    reason: string,
    message: string,
    retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.reason = reason;
    this.verb = verb;
    this.path = path;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A Retry-After header's delay in ms (seconds or an HTTP date); undefined when absent or bad. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** How long the server asked to wait before retrying after err, if it said (at most 10 min). */
export function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof ApiError) || err.retryAfterMs === undefined) return undefined;
  return Math.min(err.retryAfterMs, 600_000);
}

/** An answer saying "not now" rather than "not this": throttled (429) or failing (5xx). */
export function isRetryableAnswer(err: unknown): boolean {
  return err instanceof ApiError && (err.code === 429 || err.code >= 500);
}

/** A request that never got an HTTP answer (refused, TLS, DNS, timeout). */
export class TransportError extends Error {
  readonly verb: string;
  readonly path: string;
  override readonly cause: unknown;

  constructor(verb: string, path: string, cause: unknown) {
    const detail = describeCause(cause);
    super(`${verb} ${path}: ${detail}`);
    this.name = 'TransportError';
    this.verb = verb;
    this.path = path;
    this.cause = cause;
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    if (inner instanceof Error) return `${cause.message} (${inner.message})`;
    return cause.message;
  }
  return String(cause);
}

export function isApiError(err: unknown, code?: number): err is ApiError {
  return err instanceof ApiError && (code === undefined || err.code === code);
}

/** The fields of an error worth logging (a log line, not a stack). */
export function summarizeError(err: unknown): Record<string, unknown> {
  if (err instanceof ApiError)
    return { type: 'ApiError', code: err.code, reason: err.reason, message: err.message };
  if (err instanceof Error) return { type: err.name, message: err.message };
  return { message: String(err) };
}
