// Requests to the archive's read API (group archive.kttl.dev, docs/archive.md) through the API
// server, with the user's own kubeconfig: the API server authenticates the user, the aggregation
// layer passes the request to kttl, and kttl asks the API server whether that user may read
// deletedobjects in that namespace. Failures read as one line naming the verb and the resource.
import { ApiError, TransportError } from '../../kube/errors.ts';
import { collectionPath, objectPath } from '../../kube/resources.ts';
import { UserError } from '../errors.ts';
import { type Cluster, explainFailure, oneLine } from './cluster.ts';
import {
  ARCHIVE_GROUP,
  DELETED_OBJECTS,
  type DeletedObject,
  type DeletedObjectList,
  type DeletedObjectSummary,
} from './history-model.ts';

const REQUEST_TIMEOUT_MS = 30_000;
const PAGE_SIZE = 500;

/** The archive API is not there to ask (a cluster-side problem: exit 2, the message alone). */
export class ArchiveUnavailable extends Error {
  override readonly name = 'ArchiveUnavailable';
}

export const NOT_AVAILABLE = `the archive API (${ARCHIVE_GROUP}) is not available: is kttl run serving it and the APIService registered?`;

function scope(namespace: string | undefined): string {
  return namespace ? ` in namespace "${namespace}"` : ' in all namespaces';
}

/**
 * One line for a failed archive request. 404 without a record name (the group is not served: no
 * APIService) and 503 (registered, kttl not answering) say so; 403 names verb and resource as the
 * API server does for any resource.
 */
export function archiveFailure(
  err: unknown,
  c: Cluster,
  verb: 'get' | 'list',
  namespace: string | undefined,
  o: { name?: string; subresource?: 'log' } = {},
): unknown {
  const what = `${DELETED_OBJECTS.plural}${o.subresource ? `/${o.subresource}` : ''}.${ARCHIVE_GROUP}`;
  if (err instanceof ApiError) {
    // A list never misses; a GET misses its record with our own Status, the group with the API
    // server's generic one.
    if (
      err.code === 404 &&
      (o.name === undefined || /could not find the requested resource/.test(err.message) || !err.reason)
    )
      return new ArchiveUnavailable(NOT_AVAILABLE);
    if (err.code === 503)
      return new ArchiveUnavailable(
        /^archive store:/.test(err.message)
          ? `the archive API (${ARCHIVE_GROUP}) cannot read its store: ${oneLine(err.message.replace(/^archive store:\s*/, ''))}`
          : `the archive API (${ARCHIVE_GROUP}) is registered but not answering: ${oneLine(err.message)}`,
      );
    if (err.code === 403)
      return new ApiError(verb, err.path, 403, err.reason, `cannot ${verb} ${what}${scope(namespace)}`);
    if (err.code === 404)
      return new UserError(
        /not found$/.test(err.message)
          ? `${what} "${o.name}" not found${scope(namespace)}`
          : oneLine(err.message),
      );
    if (err.code === 400) return new UserError(oneLine(err.message));
    return new ApiError(
      verb,
      err.path,
      err.code,
      err.reason,
      `${verb} ${what}${scope(namespace)}: ${oneLine(err.message)}`,
    );
  }
  if (err instanceof TransportError) return explainFailure(err, c, verb, DELETED_OBJECTS, namespace);
  return err;
}

export interface ListOptions {
  fieldSelector?: string;
  labelSelector?: string;
  /** Stop after this many items (the API's order: newest first). */
  max?: number;
}

/** Every record in a namespace (undefined: all), page by page, newest first. */
export async function listRecords(
  c: Cluster,
  namespace: string | undefined,
  o: ListOptions = {},
): Promise<DeletedObjectSummary[]> {
  const out: DeletedObjectSummary[] = [];
  let cont: string | undefined;
  do {
    let page: DeletedObjectList;
    const limit = o.max !== undefined ? Math.min(PAGE_SIZE, o.max - out.length) : PAGE_SIZE;
    try {
      page = await c.http.request<DeletedObjectList>(
        'list',
        'GET',
        collectionPath(DELETED_OBJECTS, namespace),
        {
          query: {
            limit,
            continue: cont,
            fieldSelector: o.fieldSelector || undefined,
            labelSelector: o.labelSelector || undefined,
          },
          timeoutMs: REQUEST_TIMEOUT_MS,
        },
      );
    } catch (err) {
      if (err instanceof ApiError && err.code === 400 && o.labelSelector && /label/i.test(err.message))
        throw new UserError(
          `invalid label selector ${JSON.stringify(o.labelSelector)}: ${oneLine(err.message)}`,
        );
      throw archiveFailure(err, c, 'list', namespace);
    }
    out.push(...(page.items ?? []));
    cont = page.metadata?.continue || undefined;
  } while (cont && (o.max === undefined || out.length < o.max));
  return out;
}

export async function getRecord(c: Cluster, namespace: string, name: string): Promise<DeletedObject> {
  try {
    return await c.http.request<DeletedObject>('get', 'GET', objectPath(DELETED_OBJECTS, namespace, name), {
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  } catch (err) {
    throw archiveFailure(err, c, 'get', namespace, { name });
  }
}

/** The archived text of one container, byte for byte. */
export async function getLog(
  c: Cluster,
  namespace: string,
  name: string,
  o: { container: string; pod: string },
): Promise<Uint8Array> {
  try {
    return await c.http.bytes(`${objectPath(DELETED_OBJECTS, namespace, name)}/log`, {
      query: { container: o.container, pod: o.pod },
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  } catch (err) {
    throw archiveFailure(err, c, 'get', namespace, { name, subresource: 'log' });
  }
}
