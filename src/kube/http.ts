// The one door to the API server. client-node loads the kubeconfig (files, in-cluster, exec and
// token auth); requests go out here over ONE keep-alive undici Agent, because client-node builds a
// new Agent (new TLS connection) per request and parses list results into Date objects while watch
// events stay raw JSON. Everything here is raw JSON (or, for the reflector's built-in kinds, raw
// protobuf: src/kube/protobuf/k8s.ts), rate-limited, counted, and timed for clock skew.
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent, type Dispatcher, fetch } from 'undici';
import type { Clock } from '../clock.ts';
import { ApiError, parseRetryAfter, TransportError } from './errors.ts';
import { statusText } from './protobuf/k8s.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface RequestObserver {
  /** Every answered request (code) or unanswered one (code 0). */
  response?(verb: Verb, code: number): void;
  /** Local send/receive times and the Date header of a 2xx answer, for clock-skew estimation. */
  serverDate?(sentMs: number, receivedMs: number, date: string): void;
}

export interface Limiter {
  take(): Promise<void>;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** The Accept header (default application/json), e.g. PartialObjectMetadata for metadata-only reads. */
  accept?: string;
  signal?: AbortSignal;
  /** Skip the QPS budget (used only for the leader-election lease, like client-go's separate client). */
  unlimited?: boolean;
  timeoutMs?: number;
  /** Checked right before sending (after the QPS wait): false means FencedError, nothing sent. */
  fence?: () => boolean;
}

/** The request was not sent: its fence (e.g. leadership) no longer held when it was due. */
export class FencedError extends Error {
  constructor(verb: Verb, path: string) {
    super(`${verb} ${path}: not sent, fenced (no longer the leader)`);
    this.name = 'FencedError';
  }
}

export interface KubeHttpOptions {
  kubeConfig: KubeConfig;
  clock: Clock;
  limiter?: Limiter;
  observer?: RequestObserver;
  userAgent?: string;
}

const HEADER_REFRESH_MS = 60_000;

export class KubeHttp {
  readonly server: string;
  readonly #kc: KubeConfig;
  readonly #clock: Clock;
  readonly #limiter: Limiter | undefined;
  readonly #observer: RequestObserver;
  readonly #userAgent: string;
  #dispatcher: Dispatcher | undefined;
  #headers: Record<string, string> = {};
  #headersAt = -Infinity;
  #closed = false;

  constructor(o: KubeHttpOptions) {
    const cluster = o.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('no current cluster in the kubeconfig');
    this.server = cluster.server.replace(/\/+$/, '');
    this.#kc = o.kubeConfig;
    this.#clock = o.clock;
    this.#limiter = o.limiter;
    this.#observer = o.observer ?? {};
    this.#userAgent = o.userAgent ?? 'kttl';
  }

  /** TLS material once (one Agent, connections reused); auth headers refreshed every minute (token rotation). */
  async #prepare(): Promise<{ dispatcher: Dispatcher; headers: Record<string, string> }> {
    // After close() nothing may open a new connection (it would keep a stopping process alive).
    if (this.#closed) throw new Error('KubeHttp is closed');
    const now = this.#clock.now();
    if (!this.#dispatcher || now - this.#headersAt > HEADER_REFRESH_MS) {
      const opts: {
        ca?: Buffer;
        cert?: Buffer;
        key?: Buffer;
        headers?: Record<string, string>;
        rejectUnauthorized?: boolean;
        servername?: string;
        auth?: string;
      } = {};
      await this.#kc.applyToHTTPSOptions(opts as never);
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
      this.#headers = headers;
      this.#headersAt = now;
      if (!this.#dispatcher) {
        this.#dispatcher = new Agent({
          connect: {
            ca: opts.ca,
            cert: opts.cert,
            key: opts.key,
            servername: opts.servername,
            rejectUnauthorized: opts.rejectUnauthorized ?? true,
          },
          keepAliveTimeout: 30_000,
          // Long-running watches hold a connection each; the rest share a few.
          connections: 64,
          bodyTimeout: 0,
          headersTimeout: 60_000,
        });
      }
    }
    return { dispatcher: this.#dispatcher, headers: this.#headers };
  }

  url(path: string, query?: RequestOptions['query']): string {
    const u = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** A JSON request; non-2xx answers throw ApiError, unanswered ones TransportError. */
  async request<T = unknown>(verb: Verb, method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.#send(verb, method, path, o);
    const text = await res.text();
    if (res.status >= 200 && res.status < 300) return (text ? JSON.parse(text) : undefined) as T;
    throw toApiError(
      verb,
      path,
      res.status,
      text,
      parseRetryAfter(res.headers.get('retry-after'), this.#clock.now()),
    );
  }

  /** A GET whose answer is not JSON (pods/log): its body's bytes; non-2xx answers throw ApiError. */
  async bytes(path: string, o: RequestOptions = {}): Promise<Uint8Array> {
    return (await this.negotiated('get', path, o)).body;
  }

  /**
   * A GET that may be answered in one of several encodings (`accept` lists them): the body's
   * bytes and the type the server chose. Non-2xx answers throw ApiError, a protobuf Status read.
   */
  async negotiated(
    verb: Verb,
    path: string,
    o: RequestOptions = {},
  ): Promise<{ contentType: string; body: Uint8Array }> {
    const res = await this.#send(verb, 'GET', path, o);
    const body = new Uint8Array(await res.arrayBuffer());
    if (res.status >= 200 && res.status < 300)
      return { contentType: res.headers.get('content-type') ?? '', body };
    throw toApiError(
      verb,
      path,
      res.status,
      errorBodyText(body),
      parseRetryAfter(res.headers.get('retry-after'), this.#clock.now()),
    );
  }

  /**
   * Opens a streaming GET (watch); the caller reads `body` (its framing given by `contentType`:
   * JSON lines or length-prefixed protobuf) and aborts via `signal`.
   */
  async stream(
    path: string,
    o: RequestOptions,
  ): Promise<{
    status: number;
    body: ReadableStream<Uint8Array> | null;
    contentType?: string;
    errorText?: string;
  }> {
    const res = await this.#send('watch', 'GET', path, o);
    if (res.status !== 200)
      return {
        status: res.status,
        body: null,
        errorText: errorBodyText(new Uint8Array(await res.arrayBuffer())),
      };
    return { status: 200, body: res.body, contentType: res.headers.get('content-type') ?? '' };
  }

  async #send(verb: Verb, method: string, path: string, o: RequestOptions) {
    if (!o.unlimited && this.#limiter) await this.#limiter.take();
    const { dispatcher, headers } = await this.#prepare();
    const h: Record<string, string> = {
      ...headers,
      accept: o.accept ?? 'application/json',
      'user-agent': this.#userAgent,
    };
    let body: string | undefined;
    if (o.body !== undefined) {
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      h['content-type'] = o.contentType ?? 'application/json';
    }
    const signals = [o.signal, o.timeoutMs ? AbortSignal.timeout(o.timeoutMs) : undefined].filter(
      (s): s is AbortSignal => !!s,
    );
    if (o.fence && !o.fence()) throw new FencedError(verb, path);
    const sent = this.#clock.now();
    try {
      const res = await fetch(this.url(path, o.query), {
        method,
        headers: h,
        body,
        dispatcher,
        signal: signals.length ? AbortSignal.any(signals) : undefined,
      });
      const received = this.#clock.now();
      this.#observer.response?.(verb, res.status);
      const date = res.headers.get('date');
      // Only the API server's own successes: an error page may come from a proxy in between.
      if (date && res.status >= 200 && res.status < 300) this.#observer.serverDate?.(sent, received, date);
      return res;
    } catch (err) {
      // Cancelled by the caller (a watch being stopped) or by abort(): not an answer the server
      // failed to give.
      if (o.signal?.aborted || this.#closed) throw err;
      this.#observer.response?.(verb, 0);
      throw new TransportError(verb, path, err);
    }
  }

  /** Waits for the requests in flight, then closes the connections; refuses new requests. */
  async close(): Promise<void> {
    this.#closed = true;
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    await d?.close();
  }

  /** Ends every request in flight at once (they fail) and refuses new ones: a stopping process
   *  must not wait for answers a partitioned API server never sends (a request's own timeout is up
   *  to 30 s). The Agent is destroyed rather than one signal joined to each request: a long-lived
   *  signal in AbortSignal.any keeps ~35 B per request alive (Node 24). */
  async abort(): Promise<void> {
    this.#closed = true;
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    await d?.destroy();
  }
}

/** An error body as text: a protobuf Status as its JSON (src/kube/protobuf/k8s.ts), else UTF-8. */
function errorBodyText(body: Uint8Array): string {
  return statusText(body) ?? utf8(body);
}

/** A response body as UTF-8 text, without copying the bytes. */
export function utf8(body: Uint8Array): string {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
}

export function toApiError(
  verb: string,
  path: string,
  code: number,
  text: string,
  retryAfterMs?: number,
): ApiError {
  let reason = '';
  let message = text.slice(0, 500) || `HTTP ${code}`;
  try {
    const status = JSON.parse(text) as { reason?: string; message?: string };
    reason = status.reason ?? '';
    if (status.message) message = status.message;
  } catch {
    // not a Status object; keep the text
  }
  return new ApiError(verb, path, code, reason, message, retryAfterMs);
}
