// One DELETE per object, with the uid and resourceVersion of the object that was judged as
// preconditions: if anything changed since (TTL extended, object replaced by one of the same
// name, finalizer added), the API server refuses with 409 and nothing is lost. `fence` (leadership,
// src/kube/leader-election.ts) is checked right before the DELETE is sent, after any QPS wait;
// when it no longer holds, nothing is sent and FencedError (src/kube/http.ts) is thrown.
import type { PropagationPolicy } from '../rules/types.ts';
import { isApiError } from './errors.ts';
import type { KubeHttp } from './http.ts';
import { objectPath, type ResourceRef } from './resources.ts';

export interface JudgedObject {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
}

/** deleted: accepted (object gone or, with finalizers/Foreground, marked for deletion);
 *  gone: it was already gone (404); conflict: preconditions failed (409), re-judge. */
export type DeleteResult = 'deleted' | 'gone' | 'conflict';

export async function deleteWithPreconditions(
  http: KubeHttp,
  resource: ResourceRef,
  obj: JudgedObject,
  propagationPolicy: PropagationPolicy,
  fence?: () => boolean,
): Promise<DeleteResult> {
  try {
    await http.request('delete', 'DELETE', objectPath(resource, obj.namespace, obj.name), {
      body: {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        propagationPolicy,
        preconditions: { uid: obj.uid, resourceVersion: obj.resourceVersion },
      },
      timeoutMs: 30_000,
      fence,
    });
    return 'deleted';
  } catch (err) {
    if (isApiError(err, 404)) return 'gone';
    if (isApiError(err, 409)) return 'conflict';
    throw err;
  }
}
