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
//   proxy.stop()
//
// A Fault (every field optional, applied in this order):
//   hold(req)                      awaited before the request goes anywhere (e.g. compact etcd
//                                  between two pages of a list).
//   respond(req)                   an answer of your own ({status, body, headers}) instead of the
//                                  API server's; undefined: forward as usual.
//   endWatchesAtOnce               watch requests get 200 with headers, then the body ends at once
//                                  with no events; setting it also ends every watch open now.
//   rewriteHeaders(req, status, headers)
//                                  called for every answer (forwarded or not) before its headers
//                                  are sent; mutate `headers` or return new ones.
// `dateShift({byMs, count | forMs})` builds a rewriteHeaders fault that shifts the Date header of
// exactly `count` answers, or of every answer for `forMs` after the first one shifted.
//
// Upstream requests carry the client's headers (Authorization included) and trust the testbed CA.
import { readFileSync, writeFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Agent, createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
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

export interface FaultProxy {
  url: string;
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
  /** Open watch streams, so endWatchesAtOnce can end them. */
  const watches = new Set<OpenWatch>();

  const headersFor = (req: FaultRequest, status: number, h: OutgoingHttpHeaders): OutgoingHttpHeaders => {
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
    const f = fault;
    if (f?.hold) await f.hold(r);
    const own = f?.respond?.(r);
    if (own) {
      inReq.resume();
      const h: OutgoingHttpHeaders = {
        date: new Date().toUTCString(),
        'content-type': 'application/json',
        ...own.headers,
      };
      res.writeHead(own.status, headersFor(r, own.status, h));
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
      res.writeHead(200, headersFor(r, 200, h));
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
        res.writeHead(status, headersFor(r, status, h));
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
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
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
    },
    async stop() {
      fault = null;
      for (const w of watches) {
        w.ended = true;
        w.upstream?.destroy();
        w.res.destroy();
      }
      watches.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      agent.destroy();
    },
  };
}
