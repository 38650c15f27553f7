// The archive's read API (docs/archive.md): an HTTPS server behind kube-apiserver's aggregation
// layer, for group archive.kttl.dev/v1alpha1. Every request comes from the front proxy
// (src/archive/api/authn.ts) and is authorised for its user by a SubjectAccessReview
// (src/archive/api/authz.ts); reads go to the archive store, on any replica.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { parseBindAddress } from '../../controller/servers.ts';
import type { KubeHttp } from '../../kube/http.ts';
import { summaryOf } from '../record.ts';
import { encodeContinue, MAX_LIMIT } from '../rows.ts';
import type { ArchiveStore, ListQuery, RecordState, RecordSummary } from '../types.ts';
import { authenticate, type RequestHeaderConfig, readRequestHeaderConfig, type UserInfo } from './authn.ts';
import { type AccessRequest, Authorizer } from './authz.ts';
import { apiGroup, apiGroupList, apiResourceList } from './discovery.ts';
import { openApiV2, openApiV3Index, openApiV3Text } from './openapi.ts';
import {
  deletedObject,
  deletedObjectList,
  forbidden,
  GROUP,
  GROUP_VERSION,
  type IncludeObject,
  namesSummary,
  notFound,
  parseDeletedObjectName,
  RESOURCE,
  status,
  summaryItem,
  table,
} from './resources.ts';
import { SelectorError, selection } from './selectors.ts';

export interface ArchiveApiOptions {
  /** host:port (`:8443`, `127.0.0.1:0`). */
  bindAddress: string;
  tls: { certFile: string; keyFile: string };
  store: ArchiveStore;
  /** The server's own client: reads the request-header ConfigMap, sends SubjectAccessReviews. */
  http: KubeHttp;
  logger: Logger;
  now?: () => number;
  /** How often the request-header ConfigMap is read again (default 5 min). */
  configRefreshMs?: number;
  /** How often the serving pair's files are read for changes (default 10 s). */
  certReloadMs?: number;
}

export interface ArchiveApiServer {
  readonly server: Server;
  readonly port: number;
  readonly authorizer: Authorizer;
  stop(): Promise<void>;
}

class HttpError extends Error {
  readonly body: ReturnType<typeof status>;
  constructor(body: ReturnType<typeof status>) {
    super(body.message);
    this.body = body;
  }
}

const badRequest = (message: string) => new HttpError(status(400, 'BadRequest', message));

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** `as=Table` in the Accept header (kubectl get): which Table version, or undefined for plain JSON. */
export function wantsTable(accept: string | undefined): 'v1' | 'v1beta1' | undefined {
  for (const part of (accept ?? '').split(',')) {
    const params = new Map(
      part
        .split(';')
        .slice(1)
        .map((p) => p.trim().split('=') as [string, string]),
    );
    if (params.get('as') === 'Table' && params.get('g') === 'meta.k8s.io') {
      const v = params.get('v');
      if (v === 'v1' || v === 'v1beta1') return v;
    }
  }
  return undefined;
}

function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  if (v === 'None' || v === 'Object') return v;
  return 'Metadata';
}

function limitOf(q: URLSearchParams): number | undefined {
  const raw = q.get('limit');
  if (raw === null || raw === '' || raw === '0') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw badRequest(`limit: ${JSON.stringify(raw)} is not a non-negative integer`);
  return n;
}

/**
 * One page of the selection: the store's pages, filtered; a page that ends inside a store page
 * gets a continue token at its last item (the store's keyset tokens: src/archive/rows.ts).
 */
export async function listPage(
  store: ArchiveStore,
  query: Omit<ListQuery, 'limit' | 'continue'>,
  filter: ((s: RecordSummary) => boolean) | undefined,
  limit: number | undefined,
  cont: string | undefined,
): Promise<{ items: RecordSummary[]; continue?: string }> {
  const items: RecordSummary[] = [];
  let token = cont;
  for (;;) {
    const want = limit === undefined ? MAX_LIMIT : Math.min(MAX_LIMIT, limit - items.length);
    const page = await store.list({
      ...query,
      limit: filter ? MAX_LIMIT : want,
      ...(token ? { continue: token } : {}),
    });
    const kept = filter ? page.items.filter(filter) : page.items;
    if (limit !== undefined && items.length + kept.length > limit) {
      const taken = kept.slice(0, limit - items.length);
      items.push(...taken);
      const last = taken[taken.length - 1] ?? items[items.length - 1]!;
      return {
        items,
        continue: encodeContinue({
          deletedAtMs: Date.parse(last.deletedAt),
          uid: last.uid,
          resourceVersion: last.resourceVersion,
        }),
      };
    }
    items.push(...kept);
    token = page.continue;
    if (!token) return { items };
    if (limit !== undefined && items.length >= limit) {
      // Exactly full at a store page boundary: the store's token is the next page's.
      if (!filter) return { items, continue: token };
      const last = items[items.length - 1]!;
      return {
        items,
        continue: encodeContinue({
          deletedAtMs: Date.parse(last.deletedAt),
          uid: last.uid,
          resourceVersion: last.resourceVersion,
        }),
      };
    }
  }
}

type Route =
  | { kind: 'health' }
  | { kind: 'groups' }
  | { kind: 'group' }
  | { kind: 'resources' }
  | { kind: 'openapi-v2' }
  | { kind: 'openapi-v3' }
  | { kind: 'openapi-v3-gv' }
  | { kind: 'list'; namespace?: string }
  | { kind: 'get'; namespace: string; name: string }
  | { kind: 'log'; namespace: string; name: string };

/** The route of a path (pure). */
export function route(path: string): Route | undefined {
  if (
    path === '/healthz' ||
    path === '/readyz' ||
    path === '/livez' ||
    path.startsWith('/healthz/') ||
    path.startsWith('/readyz/') ||
    path.startsWith('/livez/')
  )
    return { kind: 'health' };
  if (path === '/apis' || path === '/apis/') return { kind: 'groups' };
  if (path === `/apis/${GROUP}` || path === `/apis/${GROUP}/`) return { kind: 'group' };
  if (path === '/openapi/v2') return { kind: 'openapi-v2' };
  if (path === '/openapi/v3') return { kind: 'openapi-v3' };
  if (path === `/openapi/v3/apis/${GROUP_VERSION}`) return { kind: 'openapi-v3-gv' };
  const base = `/apis/${GROUP_VERSION}`;
  if (path === base || path === `${base}/`) return { kind: 'resources' };
  if (!path.startsWith(`${base}/`)) return undefined;
  const parts = path
    .slice(base.length + 1)
    .split('/')
    .map(decodeURIComponent);
  if (parts.length === 1 && parts[0] === RESOURCE) return { kind: 'list' };
  if (parts[0] !== 'namespaces' || !parts[1] || parts[2] !== RESOURCE) return undefined;
  const namespace = parts[1];
  if (parts.length === 3) return { kind: 'list', namespace };
  if (parts.length === 4 && parts[3]) return { kind: 'get', namespace, name: parts[3] };
  if (parts.length === 5 && parts[3] && parts[4] === 'log') return { kind: 'log', namespace, name: parts[3] };
  return undefined;
}

export async function startArchiveApi(o: ArchiveApiOptions): Promise<ArchiveApiServer> {
  const parsed = parseBindAddress(o.bindAddress);
  if (!parsed) throw new Error('the archive API is turned off (--archive-api-bind-address 0)');
  const now = o.now ?? Date.now;
  const log = o.logger;
  let [cert, key] = await Promise.all([readFile(o.tls.certFile), readFile(o.tls.keyFile)]);
  let config: RequestHeaderConfig = await readRequestHeaderConfig(o.http);
  const authorizer = new Authorizer({ http: o.http, now });
  const secure = (c: RequestHeaderConfig) => ({ cert, key, ca: c.clientCa, minVersion: 'TLSv1.2' as const });

  const check = async (user: UserInfo, a: Omit<AccessRequest, 'user'>): Promise<void> => {
    let d: Awaited<ReturnType<Authorizer['authorize']>>;
    try {
      d = await authorizer.authorize({ user, ...a });
    } catch (err) {
      throw new HttpError(
        status(
          503,
          'ServiceUnavailable',
          `could not authorise the request (SubjectAccessReview): ${(err as Error).message}`,
        ),
      );
    }
    if (!d.allowed) {
      throw new HttpError(
        forbidden({
          user: user.name,
          verb: a.verb,
          resource: a.subresource ? `${RESOURCE}/${a.subresource}` : RESOURCE,
          namespace: a.namespace,
          name: a.name,
          reason: d.reason,
        }),
      );
    }
  };

  /** The newest record a DeletedObject name names, with its state. */
  const find = async (namespace: string, name: string) => {
    const p = parseDeletedObjectName(name);
    if (!p) throw new HttpError(notFound(name));
    let token: string | undefined;
    do {
      const page = await o.store.list({
        namespace,
        name: p.name,
        ...(p.uidPrefix.length >= 32 ? { uid: p.uidPrefix } : {}),
        limit: MAX_LIMIT,
        ...(token ? { continue: token } : {}),
      });
      const s = page.items.find((i) => namesSummary(p, i));
      if (s) {
        const record = await o.store.get({ uid: s.uid, resourceVersion: s.resourceVersion });
        if (record) return { record, state: s.state as RecordState };
      }
      token = page.continue;
    } while (token);
    throw new HttpError(notFound(name));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, r: Route, url: URL, user: UserInfo) => {
    const q = url.searchParams;
    const tableVersion = wantsTable(req.headers.accept);
    const asTable = (rows: Parameters<typeof table>[0], cont?: string) => {
      const t = table(rows, { nowMs: now(), include: includeObject(q), ...(cont ? { continue: cont } : {}) });
      return tableVersion === 'v1beta1' ? { ...t, apiVersion: 'meta.k8s.io/v1beta1' } : t;
    };
    switch (r.kind) {
      case 'groups':
        return sendJson(res, 200, apiGroupList());
      case 'group':
        return sendJson(res, 200, apiGroup());
      case 'resources':
        return sendJson(res, 200, apiResourceList());
      case 'openapi-v2':
        return sendJson(res, 200, openApiV2());
      case 'openapi-v3':
        return sendJson(res, 200, openApiV3Index());
      case 'openapi-v3-gv': {
        const text = openApiV3Text();
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          'cache-control': q.has('hash') ? 'public, immutable' : 'no-cache, private',
        });
        return res.end(text);
      }
      case 'list': {
        const watch = q.get('watch') === 'true' || q.get('watch') === '1';
        await check(user, { verb: watch ? 'watch' : 'list', namespace: r.namespace });
        if (watch)
          throw new HttpError(
            status(
              405,
              'MethodNotAllowed',
              `watch is not supported on ${RESOURCE}.${GROUP}: the archive is read with list`,
            ),
          );
        let sel: ReturnType<typeof selection>;
        try {
          sel = selection({
            namespace: r.namespace,
            labelSelector: q.get('labelSelector') ?? undefined,
            fieldSelector: q.get('fieldSelector') ?? undefined,
          });
        } catch (err) {
          if (err instanceof SelectorError) throw badRequest(err.message);
          throw err;
        }
        let page: Awaited<ReturnType<typeof listPage>>;
        try {
          page = await listPage(o.store, sel.query, sel.filter, limitOf(q), q.get('continue') || undefined);
        } catch (err) {
          if (err instanceof Error && /continue/i.test(err.message))
            throw badRequest(`invalid continue token: ${err.message}`);
          throw err;
        }
        if (tableVersion) {
          return sendJson(
            res,
            200,
            asTable(
              page.items.map((s) => ({ summary: s, item: summaryItem(s) })),
              page.continue,
            ),
          );
        }
        return sendJson(res, 200, deletedObjectList(page.items, page.continue));
      }
      case 'get': {
        await check(user, { verb: 'get', namespace: r.namespace, name: r.name });
        const { record, state } = await find(r.namespace, r.name);
        const obj = deletedObject(record, state);
        if (tableVersion)
          return sendJson(res, 200, asTable([{ summary: summaryOf(record, state), item: obj }]));
        return sendJson(res, 200, obj);
      }
      case 'log': {
        await check(user, { verb: 'get', namespace: r.namespace, name: r.name, subresource: 'log' });
        const { record } = await find(r.namespace, r.name);
        const pods = [...new Set(record.logs.map((l) => l.pod))];
        const podParam = q.get('pod');
        if (pods.length === 0)
          throw new HttpError(status(404, 'NotFound', `no logs were archived for ${RESOURCE} "${r.name}"`));
        let pod = podParam ?? undefined;
        if (pod !== undefined && !pods.includes(pod)) {
          throw badRequest(`pod ${pod} is not one of the archived pods of ${r.name}: [${pods.join(' ')}]`);
        }
        if (pod === undefined) {
          if (pods.length > 1)
            throw badRequest(
              `a pod name must be specified for ${r.name}, choose one of: [${pods.join(' ')}]`,
            );
          pod = pods[0]!;
        }
        const logs = record.logs.filter((l) => l.pod === pod);
        const container = q.get('container');
        let entry = logs[0];
        if (container) {
          entry = logs.find((l) => l.container === container);
          if (!entry) {
            throw badRequest(
              `container ${container} is not valid for pod ${pod}: choose one of: [${logs.map((l) => l.container).join(' ')}]`,
            );
          }
        } else if (logs.length > 1) {
          throw badRequest(
            `a container name must be specified for pod ${pod}, choose one of: [${logs.map((l) => l.container).join(' ')}]`,
          );
        }
        if (!entry) throw new HttpError(notFound(r.name));
        if (entry.error && entry.text === '') {
          throw new HttpError(
            status(
              404,
              'NotFound',
              `no log was archived for container ${entry.container} of pod ${pod}: ${entry.error}`,
            ),
          );
        }
        const body = Buffer.from(entry.text, 'utf8');
        res.writeHead(200, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': body.length,
          ...(entry.truncated ? { 'x-kttl-truncated': 'true' } : {}),
        });
        return res.end(body);
      }
      case 'health':
        return;
    }
  };

  const server = createServer(
    { ...secure(config), requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'https://archive');
      const r = route(url.pathname);
      if (r?.kind === 'health') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      const authn = authenticate(req, config);
      if (!authn.ok) return sendJson(res, 401, status(401, 'Unauthorized', authn.message));
      if (!r)
        return sendJson(
          res,
          404,
          status(404, 'NotFound', 'the server could not find the requested resource'),
        );
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET');
        return sendJson(
          res,
          405,
          status(405, 'MethodNotAllowed', `the archive is read-only: ${req.method} is not supported`),
        );
      }
      handle(req, res, r, url, authn.user).catch((err: unknown) => {
        if (err instanceof HttpError) return sendJson(res, err.body.code, err.body);
        log.error({ err, path: url.pathname }, 'archive API request failed');
        const message = err instanceof Error ? err.message : String(err);
        if (!res.headersSent)
          sendJson(res, 503, status(503, 'ServiceUnavailable', `archive store: ${message}`));
        else res.destroy();
      });
    },
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(parsed.port, parsed.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // A rotated serving pair (cert-manager, a renewed Secret) is picked up without a restart; a
  // pair that does not load keeps the old one.
  const certTimer = setInterval(() => {
    Promise.all([readFile(o.tls.certFile), readFile(o.tls.keyFile)])
      .then(([c, k]) => {
        if (c.equals(cert) && k.equals(key)) return;
        const previous = [cert, key] as const;
        [cert, key] = [c, k];
        try {
          server.setSecureContext(secure(config));
          log.info({ certFile: o.tls.certFile }, 'archive API serving certificate reloaded');
        } catch (err) {
          [cert, key] = previous;
          log.warn({ err: (err as Error).message }, 'archive API serving certificate not reloaded');
        }
      })
      .catch(() => {});
  }, o.certReloadMs ?? 10_000);
  certTimer.unref();
  // The API server may rotate its request-header CA: read the ConfigMap again now and then.
  const refresh = setInterval(() => {
    readRequestHeaderConfig(o.http)
      .then((next) => {
        if (next.clientCa !== config.clientCa) server.setSecureContext(secure(next));
        config = next;
      })
      .catch((err: unknown) => log.warn({ err }, 'could not read the request-header configuration again'));
  }, o.configRefreshMs ?? 300_000);
  refresh.unref();
  const port = (server.address() as AddressInfo).port;
  log.info({ port, group: GROUP_VERSION }, 'archive API serving');
  return {
    server,
    port,
    authorizer,
    async stop() {
      clearInterval(refresh);
      clearInterval(certTimer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
