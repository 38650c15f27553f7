// A fault-injecting TLS reverse proxy in front of the testbed's kube-apiserver, so tests can give
// kttl a skewed Date header, watches that end at once, or a rewritten answer from an otherwise
// real API server. Traffic stays on 127.0.0.1.
//
// API:
//   const proxy = await startFaultProxy(tb);
//   proxy.url                      https://127.0.0.1:<free port>; its serving cert is signed by the
//                                  testbed CA (test/testbed/certs.ts), so the testbed's CA trusts it.
//   proxy.kubeconfig(x)            path of a kubeconfig whose `server` is the proxy: `x` is a bearer
//                                  token, or the path of a token kubeconfig (e.g.
//                                  controllerKubeconfigPath(tb), tb.serviceAccountKubeconfig(...)).
//                                  Client-certificate users cannot be proxied (TLS ends here).
//   proxy.setFault(f | null)       the fault for the requests from now on (null: pass through).
//   proxy.stats() / resetStats()   requests seen: { requests, byVerb, watches, lists }.
//   proxy.log()                    every request since the last resetStats(): { at, verb, method,
//                                  path, status } (status 0 until its answer's headers are sent).
//   proxy.partition()              a network partition at the TCP level: new connections are taken
//                                  but never read (no TLS handshake, no answer), and every open one
//                                  is frozen (no byte passes either way, nothing is closed: a watch
//                                  stream in flight just goes silent).
//   proxy.heal({resumeFrozen})     new connections pass again; the frozen ones stay black-holed (as
//                                  when a NAT entry or a node is gone) unless resumeFrozen.
//   proxy.stop()
//
// A Fault (every field optional, applied in this order):
//   hold(req)                      awaited before the request goes anywhere (e.g. compact etcd
//                                  between two pages of a list).
//   respond(req)                   an answer of your own ({status, body, headers}) instead of the
//                                  API server's; undefined: forward as usual.
//   endWatchesAtOnce               watch requests get 200 with headers, then the body ends at once
//                                  with no events; setting it also ends every watch open now.
//   delayMs                        added latency (ms, or a function of the request) before the
//                                  request goes on; a watch's headers come that much later.
//   rewriteHeaders(req, status, headers)
//                                  called for every answer (forwarded or not) before its headers
//                                  are sent; mutate `headers` or return new ones.
// `answerShare({share, status, retryAfterSeconds, when})` builds a respond fault answering a share of
// the chosen requests with 429 (+ Retry-After) or a 5xx Status, as API Priority and Fairness or a
// failing server would; `faults(a, b, …)` combines several.
// `dateShift({byMs, count | forMs})` builds a rewriteHeaders fault that shifts the Date header of
// exactly `count` answers, or of every answer for `forMs` after the first one shifted.
//
// Upstream requests carry the client's headers (Authorization included) and trust the testbed CA.
import { readFileSync, writeFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Agent, createServer, request } from 'node:https';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { parse } from 'yaml';
import { issueServingCert } from './certs.ts';
import type { Testbed } from './testbed.ts';

export type FaultVerb = 'watch' | 'list' | 'get' | 'create' | 'update' | 'patch' | 'delete' | 'other';

export interface FaultRequest {
  method: string;
  /** The path without the query. */
  path: string;
  query: URLSearchParams;
  verb: FaultVerb;
}

export interface FaultAnswer {
  status: number;
  body?: string;
  headers?: OutgoingHttpHeaders;
}

export interface Fault {
  hold?: (req: FaultRequest) => Promise<void> | void;
  respond?: (req: FaultRequest) => FaultAnswer | undefined;
  endWatchesAtOnce?: boolean;
  delayMs?: number | ((req: FaultRequest) => number);
  rewriteHeaders?: (
    req: FaultRequest,
    status: number,
    headers: OutgoingHttpHeaders,
  ) => OutgoingHttpHeaders | undefined | void;
}

export interface FaultProxyStats {
  requests: number;
  byVerb: Record<string, number>;
  watches: number;
  lists: number;
}

export interface FaultLogEntry {
  /** Local time the request arrived, ms. */
  at: number;
  verb: FaultVerb;
  method: string;
  path: string;
  /** Its answer's status (0: no answer sent yet, or none ever). */
  status: number;
  /** Its answer's Retry-After header, if any. */
  retryAfter?: string;
}

export interface FaultProxy {
  url: string;
  log(): FaultLogEntry[];
  partition(): void;
  heal(o?: { resumeFrozen?: boolean }): void;
  readonly partitioned: boolean;
  kubeconfig(tokenOrKubeconfigPath: string): string;
  setFault(f: Fault | null): void;
  stats(): FaultProxyStats;
  resetStats(): void;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** Which API verb a request is, from its method and path (/api/v1/... or /apis/g/v/...). */
export function classify(method: string, path: string, query: URLSearchParams): FaultVerb {
  const m = method.toUpperCase();
  if (m === 'POST') return 'create';
  if (m === 'PUT') return 'update';
  if (m === 'PATCH') return 'patch';
  if (m === 'DELETE') return 'delete';
  if (m !== 'GET') return 'other';
  const w = query.get('watch');
  if (w === '1' || w === 'true') return 'watch';
  const seg = path.split('/').filter(Boolean);
  let rest: string[];
  if (seg[0] === 'api' && seg.length >= 2) rest = seg.slice(2);
  else if (seg[0] === 'apis' && seg.length >= 3) rest = seg.slice(3);
  else return 'get';
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  return rest.length === 1 ? 'list' : 'get';
}

/** Shifts an HTTP Date header value by ms (HTTP dates have 1 s resolution). */
export function shiftedDate(value: string | undefined, byMs: number): string {
  const t = value ? Date.parse(value) : Number.NaN;
  return new Date((Number.isNaN(t) ? Date.now() : t) + byMs).toUTCString();
}

export interface DateShift extends Fault {
  /** Answers shifted so far. */
  readonly shifted: number;
}

/**
 * A fault shifting the Date header by `byMs`: of the next `count` answers (count 1: exactly one),
 * or of every answer for `forMs` from the first one shifted. `when` picks the answers that count
 * (default: all).
 */
export function dateShift(o: {
  byMs: number;
  count?: number;
  forMs?: number;
  when?: (req: FaultRequest, status: number) => boolean;
}): DateShift {
  let shifted = 0;
  let firstAt: number | undefined;
  return {
    get shifted() {
      return shifted;
    },
    rewriteHeaders(req, status, headers) {
      if (o.when && !o.when(req, status)) return;
      if (o.count !== undefined && shifted >= o.count) return;
      if (o.forMs !== undefined && firstAt !== undefined && Date.now() - firstAt > o.forMs) return;
      firstAt ??= Date.now();
      shifted++;
      headers.date = shiftedDate(headers.date as string | undefined, o.byMs);
    },
  };
}

/** The Status body an API server sends with `code` (429 from API Priority and Fairness). */
export function statusBody(code: number, message: string, retryAfterSeconds?: number): string {
  const reason =
    code === 429
      ? 'TooManyRequests'
      : code === 503
        ? 'ServiceUnavailable'
        : code === 504
          ? 'Timeout'
          : 'InternalError';
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    details: retryAfterSeconds === undefined ? undefined : { retryAfterSeconds },
    code,
  });
}

export interface AnswerShare extends Fault {
  /** Requests chosen by `when` so far, and how many of them got the fault's answer. */
  readonly chosen: number;
  readonly answered: number;
}

/**
 * Answers `share` (0–1) of the requests chosen by `when` (default: all) with `status` and a Status
 * body; `retryAfterSeconds` adds a Retry-After header (and details.retryAfterSeconds), as API
 * Priority and Fairness does. `random` is injectable; each request is drawn independently.
 */
export function answerShare(o: {
  share: number;
  status: number;
  retryAfterSeconds?: number;
  when?: (req: FaultRequest) => boolean;
  random?: () => number;
}): AnswerShare {
  let chosen = 0;
  let answered = 0;
  const random = o.random ?? Math.random;
  return {
    get chosen() {
      return chosen;
    },
    get answered() {
      return answered;
    },
    respond(req) {
      if (o.when && !o.when(req)) return undefined;
      chosen++;
      if (random() >= o.share) return undefined;
      answered++;
      return {
        status: o.status,
        body: statusBody(
          o.status,
          `fault proxy: ${o.status} for ${req.method} ${req.path}`,
          o.retryAfterSeconds,
        ),
        headers: o.retryAfterSeconds === undefined ? {} : { 'retry-after': String(o.retryAfterSeconds) },
      };
    },
  };
}

/** Several faults as one: holds and delays in turn, the first own answer wins, every rewrite runs. */
export function faults(...fs: Fault[]): Fault {
  return {
    async hold(req) {
      for (const f of fs) await f.hold?.(req);
    },
    respond(req) {
      for (const f of fs) {
        const a = f.respond?.(req);
        if (a) return a;
      }
      return undefined;
    },
    endWatchesAtOnce: fs.some((f) => f.endWatchesAtOnce),
    delayMs: (req) =>
      fs.reduce((n, f) => n + (typeof f.delayMs === 'function' ? f.delayMs(req) : (f.delayMs ?? 0)), 0),
    rewriteHeaders(req, status, headers) {
      let h = headers;
      for (const f of fs) h = f.rewriteHeaders?.(req, status, h) ?? h;
      return h;
    },
  };
}

/** One TCP connection from a client, relayed to the proxy's TLS server. */
interface Relay {
  client: Socket;
  inner?: Socket;
  /** Partitioned: no byte passes, nothing is closed. */
  frozen: boolean;
}

let proxies = 0;

interface OpenWatch {
  res: ServerResponse;
  upstream?: ClientRequest;
  up?: IncomingMessage;
  /** Ended by the proxy: upstream errors from now on are ours, not the client's business. */
  ended?: boolean;
}

/** Ends a watch answer cleanly (the terminating chunk), as an API server ending it would. */
function endWatch(w: OpenWatch): void {
  w.ended = true;
  w.up?.unpipe(w.res);
  w.res.end();
  w.upstream?.destroy();
}

export async function startFaultProxy(tb: Testbed): Promise<FaultProxy> {
  const { pki, ports, dir } = tb.state;
  const base = `fault-proxy-${process.pid}-${++proxies}`;
  const serving = issueServingCert(dir, pki, base, 'kttl-fault-proxy', 'IP:127.0.0.1,DNS:localhost');
  const ca = readFileSync(pki.caCert);
  const agent = new Agent({ keepAlive: true, ca, maxSockets: Number.POSITIVE_INFINITY });
  let fault: Fault | null = null;
  let stats: FaultProxyStats = { requests: 0, byVerb: {}, watches: 0, lists: 0 };
  let log: FaultLogEntry[] = [];
  /** Open watch streams, so endWatchesAtOnce can end them. */
  const watches = new Set<OpenWatch>();

  const headersFor = (
    req: FaultRequest,
    status: number,
    h: OutgoingHttpHeaders,
    entry?: FaultLogEntry,
  ): OutgoingHttpHeaders => {
    if (entry) {
      entry.status = status;
      if (h['retry-after'] !== undefined) entry.retryAfter = String(h['retry-after']);
    }
    const out = fault?.rewriteHeaders?.(req, status, h);
    return out ?? h;
  };

  const handle = async (inReq: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(inReq.url ?? '/', 'https://proxy');
    const method = inReq.method ?? 'GET';
    const r: FaultRequest = {
      method,
      path: url.pathname,
      query: url.searchParams,
      verb: classify(method, url.pathname, url.searchParams),
    };
    stats.requests++;
    stats.byVerb[r.verb] = (stats.byVerb[r.verb] ?? 0) + 1;
    if (r.verb === 'watch') stats.watches++;
    if (r.verb === 'list') stats.lists++;
    const logged: FaultLogEntry = { at: Date.now(), verb: r.verb, method, path: r.path, status: 0 };
    log.push(logged);
    const f = fault;
    if (f?.hold) await f.hold(r);
    const delay = typeof f?.delayMs === 'function' ? f.delayMs(r) : f?.delayMs;
    if (delay && delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    const own = f?.respond?.(r);
    if (own) {
      inReq.resume();
      const h: OutgoingHttpHeaders = {
        date: new Date().toUTCString(),
        'content-type': 'application/json',
        ...own.headers,
      };
      res.writeHead(own.status, headersFor(r, own.status, h, logged));
      res.end(own.body ?? '');
      return;
    }
    if (r.verb === 'watch' && f?.endWatchesAtOnce) {
      inReq.resume();
      const h: OutgoingHttpHeaders = {
        date: new Date().toUTCString(),
        'content-type': 'application/json',
        'cache-control': 'no-cache, private',
      };
      res.writeHead(200, headersFor(r, 200, h, logged));
      res.end();
      return;
    }
    const fwd: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(inReq.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) fwd[k] = v;
    const entry: OpenWatch = { res };
    const upstream = request(
      {
        host: '127.0.0.1',
        port: ports.apiserver,
        method,
        path: inReq.url,
        headers: fwd,
        agent,
        servername: 'localhost',
      },
      (up) => {
        const h: OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) h[k] = v;
        const status = up.statusCode ?? 502;
        res.writeHead(status, headersFor(r, status, h, logged));
        if (r.verb === 'watch') res.flushHeaders();
        entry.up = up;
        up.pipe(res);
        up.on('error', () => {
          if (!entry.ended) res.destroy();
        });
      },
    );
    entry.upstream = upstream;
    if (r.verb === 'watch') {
      watches.add(entry);
      res.on('close', () => watches.delete(entry));
    }
    upstream.on('error', (err) => {
      if (entry.ended) return;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`fault proxy: upstream error: ${err.message}`);
      } else res.destroy();
    });
    // The client went away (a watch being stopped): stop the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    inReq.pipe(upstream);
  };

  const server = createServer(
    { cert: readFileSync(serving.cert), key: readFileSync(serving.key) },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`fault proxy: ${String(err)}`);
      });
    },
  );
  // Watches last minutes; the API server decides when they end, not a proxy timeout.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const innerPort = (server.address() as AddressInfo).port;

  // The public side is plain TCP relayed to the TLS server, so a partition can stop bytes without
  // closing anything (a TLS server cannot hold a connection it has already started to read).
  let partitioned = false;
  const relays = new Set<Relay>();
  const held: Relay[] = [];
  const freeze = (r: Relay): void => {
    r.frozen = true;
    r.client.unpipe();
    r.inner?.unpipe();
    r.client.pause();
    r.inner?.pause();
  };
  const link = (r: Relay): void => {
    const inner = connect(innerPort, '127.0.0.1');
    r.inner = inner;
    inner.on('error', () => undefined);
    // A frozen connection's inner side ending (the API server ended a watch) must not reach the client.
    inner.on('close', () => {
      if (!r.frozen) r.client.destroy();
    });
    r.client.pipe(inner);
    inner.pipe(r.client);
    r.client.resume();
  };
  const front = createTcpServer({ pauseOnConnect: true }, (client) => {
    const r: Relay = { client, frozen: false };
    relays.add(r);
    client.on('error', () => undefined);
    client.on('close', () => {
      relays.delete(r);
      r.inner?.destroy();
    });
    // Partitioned: the kernel completed the handshake, but nothing is read or answered.
    if (partitioned) held.push(r);
    else link(r);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `https://127.0.0.1:${(front.address() as AddressInfo).port}`;
  let kubeconfigs = 0;

  return {
    url,
    kubeconfig(tokenOrPath) {
      let token = tokenOrPath;
      let namespace = 'default';
      if (tokenOrPath.includes('/')) {
        const kc = parse(readFileSync(tokenOrPath, 'utf8')) as {
          'current-context'?: string;
          contexts?: Array<{ name: string; context: { user: string; namespace?: string } }>;
          users?: Array<{ name: string; user: { token?: string; 'client-certificate-data'?: string } }>;
        };
        const ctx = kc.contexts?.find((c) => c.name === kc['current-context'])?.context;
        const user = kc.users?.find((u) => u.name === ctx?.user)?.user;
        if (!user?.token)
          throw new Error(`${tokenOrPath}: the fault proxy needs a token user (TLS ends at the proxy)`);
        token = user.token;
        namespace = ctx?.namespace ?? namespace;
      }
      const path = join(dir, `${base}-${++kubeconfigs}.kubeconfig`);
      writeFileSync(
        path,
        `apiVersion: v1
kind: Config
clusters:
- name: fault-proxy
  cluster: {server: "${url}", certificate-authority-data: ${ca.toString('base64')}}
users:
- name: proxied
  user: {token: ${token}}
contexts:
- name: proxied
  context: {cluster: fault-proxy, user: proxied, namespace: ${namespace}}
current-context: proxied
`,
        { mode: 0o600 },
      );
      return path;
    },
    setFault(f) {
      fault = f;
      if (f?.endWatchesAtOnce) {
        for (const w of watches) endWatch(w);
        watches.clear();
      }
    },
    stats: () => ({ ...stats, byVerb: { ...stats.byVerb } }),
    resetStats() {
      stats = { requests: 0, byVerb: {}, watches: 0, lists: 0 };
      log = [];
    },
    log: () => log.map((e) => ({ ...e })),
    get partitioned() {
      return partitioned;
    },
    partition() {
      partitioned = true;
      for (const r of relays) if (!r.frozen) freeze(r);
    },
    heal(o = {}) {
      partitioned = false;
      for (const r of held.splice(0)) if (!r.client.destroyed) link(r);
      if (o.resumeFrozen)
        for (const r of relays) {
          if (!r.frozen || !r.inner) continue;
          r.frozen = false;
          r.client.pipe(r.inner);
          r.inner.pipe(r.client);
          r.client.resume();
          r.inner.resume();
        }
    },
    async stop() {
      fault = null;
      for (const w of watches) {
        w.ended = true;
        w.upstream?.destroy();
        w.res.destroy();
      }
      watches.clear();
      partitioned = false;
      for (const r of relays) {
        r.frozen = true;
        r.client.destroy();
        r.inner?.destroy();
      }
      relays.clear();
      held.length = 0;
      const frontClosed = new Promise<void>((resolve) => front.close(() => resolve()));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await Promise.all([closed, frontClosed]);
      agent.destroy();
    },
  };
}
