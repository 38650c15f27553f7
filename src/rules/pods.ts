// Pods first (policy ttlPods, annotation kttl.dev/ttl-pods): the pods of a finished object go
// after that TTL while the object itself stays until its own. Never for an unfinished object.
// The annotation wins over the policy's field, as the other kttl.dev/ttl* annotations do.
import { parseDuration } from './duration.ts';
import { ANNOTATIONS, type Finish, type ObjectSummary, type PolicyTtl } from './types.ts';

export type PodsFirst =
  /** No ttlPods applies (not set, or the object is not finished). */
  | { state: 'none' }
  | { state: 'invalid'; key: string; value: string; message: string }
  /** Its pods go at atMs (finish + ttlPods). */
  | { state: 'at'; atMs: number; seconds: number; detail: string };

export function podsFirst(obj: ObjectSummary, finish: Finish | null, policy: PolicyTtl | null): PodsFirst {
  if (finish === null || finish.atMs === null) return { state: 'none' };
  const ann = Object.hasOwn(obj.annotations, ANNOTATIONS.ttlPods)
    ? obj.annotations[ANNOTATIONS.ttlPods]
    : undefined;
  const [value, where] =
    ann !== undefined
      ? [ann, `annotation ${ANNOTATIONS.ttlPods}`]
      : policy?.ttlPods !== undefined && policy.hold === undefined
        ? [policy.ttlPods, `policy ${policy.ref} ttlPods`]
        : [undefined, ''];
  if (value === undefined) return { state: 'none' };
  const r = parseDuration(value);
  if (!r.ok)
    return {
      state: 'invalid',
      key: ann !== undefined ? ANNOTATIONS.ttlPods : `${policy!.ref} spec.ttlPods`,
      value,
      message: `${where}: ${r.error} (its pods are kept)`,
    };
  return {
    state: 'at',
    atMs: finish.atMs + r.seconds * 1000,
    seconds: r.seconds,
    detail: `${where}=${value.slice(0, 64)}`,
  };
}
