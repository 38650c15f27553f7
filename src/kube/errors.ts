// Errors from the API server, with the fields callers branch on.

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly verb: string;
  readonly path: string;

  constructor(verb: string, path: string, code: number, reason: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.reason = reason;
    this.verb = verb;
    this.path = path;
  }
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
