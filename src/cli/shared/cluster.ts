// The CLI's connection to the cluster: the kubeconfig as kubectl finds it, one KubeHttp, the
// namespace (-n, else the context's, else `default`), the API server's clock (from the Date header
// of every answer), and requests whose failures read as one line naming the verb and resource.
import { systemClock } from '../../clock.ts';
import { ClockSkewEstimator } from '../../kube/clock-skew.ts';
import { loadKubeConfig } from '../../kube/config.ts';
import { ApiError, TransportError } from '../../kube/errors.ts';
import { KubeHttp, type Verb } from '../../kube/http.ts';
import type { RawObject } from '../../kube/objects.ts';
import { collectionPath, objectPath, type ResourceRef } from '../../kube/resources.ts';
import { UserError } from '../errors.ts';
import type { GlobalOptions } from '../program.ts';
import { resourceText } from './refs.ts';

/** Every CLI request gives up after this long (an unreachable address must not hang the shell). */
const REQUEST_TIMEOUT_MS = 30_000;
const PAGE_SIZE = 500;

export interface Cluster {
  http: KubeHttp;
  /** -n, else the kubeconfig context's namespace, else `default`. */
  namespace: string;
  server: string;
  /** Epoch ms on the API server's clock when it answered at least once, else the local clock. */
  now(): number;
  /** Which clock now() reads, for `explain`. */
  clock(): { source: 'server' | 'local'; offsetMs: number };
  close(): Promise<void>;
}

/** One line: newlines and runs of spaces from server messages collapsed. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

export function openCluster(g: GlobalOptions, env: Record<string, string | undefined>): Cluster {
  let loaded: ReturnType<typeof loadKubeConfig>;
  try {
    loaded = loadKubeConfig({ kubeconfig: g.kubeconfig, context: g.context, env });
  } catch (err) {
    // A missing file or context is the user's to fix, not the cluster's.
    throw new UserError(oneLine(err instanceof Error ? err.message : String(err)));
  }
  const skew = new ClockSkewEstimator();
  const http = new KubeHttp({
    kubeConfig: loaded.kubeConfig,
    clock: systemClock,
    userAgent: 'kttl-cli',
    observer: { serverDate: (sent, received, date) => skew.observe(sent, received, date) },
  });
  return {
    http,
    namespace: g.namespace || loaded.namespace || 'default',
    server: http.server,
    now: () => skew.serverNowForExpiry(Date.now()),
    clock: () => {
      const e = skew.estimate();
      return e ? { source: 'server', offsetMs: e.offsetMs } : { source: 'local', offsetMs: 0 };
    },
    close: () => http.close(),
  };
}

/** Opens the cluster, runs fn, always closes the connection (so the process can exit at once). */
export async function withCluster<T>(
  g: GlobalOptions,
  env: Record<string, string | undefined>,
  fn: (c: Cluster) => Promise<T>,
): Promise<T> {
  const c = openCluster(g, env);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

function scope(namespace: string | undefined): string {
  return namespace ? ` in namespace "${namespace}"` : ' in all namespaces';
}

/**
 * Rewrites a failed request as one line naming what was attempted:
 * 403 → `forbidden: cannot delete jobs.batch in namespace "x"` (exit 2), 404 on a named object →
 * a user error (exit 1), unreachable → `cannot reach the cluster: list jobs.batch ... (server): why`.
 */
export function explainFailure(
  err: unknown,
  c: Cluster,
  verb: Verb,
  r: ResourceRef,
  namespace: string | undefined,
  name?: string,
): unknown {
  const what = resourceText(r);
  if (err instanceof ApiError) {
    if (err.code === 403) {
      return new ApiError(verb, err.path, 403, err.reason, `cannot ${verb} ${what}${scope(namespace)}`);
    }
    if (err.code === 404 && verb === 'create') {
      // Creating can only miss the namespace.
      return new UserError(namespace ? `namespace "${namespace}" not found` : oneLine(err.message));
    }
    if (err.code === 404 && name !== undefined) {
      // The object, or its namespace, does not exist.
      return new UserError(`${what} "${name}" not found${scope(namespace)}`);
    }
    if (err.code === 409 && verb === 'create') {
      return new UserError(`${what} "${name ?? ''}" already exists${scope(namespace)}`);
    }
    if (err.code === 422 || (err.code === 400 && (verb === 'list' || verb === 'create'))) {
      return new UserError(oneLine(err.message));
    }
    return new ApiError(
      verb,
      err.path,
      err.code,
      err.reason,
      `${verb} ${what}${scope(namespace)}: ${oneLine(err.message)}`,
    );
  }
  if (err instanceof TransportError) {
    const t = new TransportError(verb, err.path, err.cause);
    t.message = oneLine(`${verb} ${what}${scope(namespace)} (${c.server}): ${causeText(err.cause)}`);
    return t;
  }
  return err;
}

function causeText(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  // undici: "fetch failed" wrapping the real reason (ECONNREFUSED, a TLS failure, a timeout).
  const inner = (cause as { cause?: unknown }).cause;
  const e = inner instanceof Error ? inner : cause;
  const code = (e as { code?: unknown }).code;
  // Node appends advice about --use-system-ca that does not apply to a kubeconfig's own CA.
  const msg = e.message.replace(/; if the root CA is installed locally.*$/, '');
  if (typeof code === 'string' && /CERT|SIGNATURE|SELF_SIGNED|TLS|SSL|ISSUER|HOSTNAME/.test(code)) {
    return `TLS refused: ${msg} (${code})`;
  }
  return msg;
}

export async function getObject(
  c: Cluster,
  r: ResourceRef,
  namespace: string,
  name: string,
): Promise<RawObject> {
  try {
    return await c.http.request<RawObject>('get', 'GET', objectPath(r, namespace, name), {
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  } catch (err) {
    throw explainFailure(err, c, 'get', r, namespace, name);
  }
}

/** Every object of a kind (paginated), in one namespace or (namespace undefined) all of them. */
export async function listObjects(
  c: Cluster,
  r: ResourceRef,
  namespace: string | undefined,
  labelSelector?: string,
): Promise<RawObject[]> {
  const out: RawObject[] = [];
  let cont: string | undefined;
  do {
    let page: { metadata?: { continue?: string }; items?: RawObject[] };
    try {
      page = await c.http.request('list', 'GET', collectionPath(r, namespace), {
        query: { limit: PAGE_SIZE, continue: cont, labelSelector: labelSelector || undefined },
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
    } catch (err) {
      if (err instanceof ApiError && err.code === 400 && labelSelector) {
        throw new UserError(
          `invalid label selector ${JSON.stringify(labelSelector)}: ${oneLine(err.message)}`,
        );
      }
      throw explainFailure(err, c, 'list', r, namespace);
    }
    out.push(...(page.items ?? []));
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return out;
}

export async function patchObject(
  c: Cluster,
  r: ResourceRef,
  namespace: string,
  name: string,
  patch: unknown,
): Promise<RawObject> {
  try {
    return await c.http.request<RawObject>('patch', 'PATCH', objectPath(r, namespace, name), {
      body: patch,
      contentType: 'application/merge-patch+json',
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  } catch (err) {
    throw explainFailure(err, c, 'patch', r, namespace, name);
  }
}

export async function createObject(
  c: Cluster,
  r: ResourceRef,
  namespace: string,
  name: string,
  body: unknown,
): Promise<RawObject> {
  try {
    return await c.http.request<RawObject>('create', 'POST', collectionPath(r, namespace), {
      body,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  } catch (err) {
    throw explainFailure(err, c, 'create', r, namespace, name);
  }
}
