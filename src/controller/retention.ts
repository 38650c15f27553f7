// The controller's side of the retention rules (src/rules/retention.ts): it keeps the group index
// (src/controller/groups.ts) fed from the informer events, re-judges the members whose side of a
// history/keepLatest limit moved, and deletes the pods of finished objects first (ttlPods). Every
// DELETE carries the uid and resourceVersion of what was judged (src/kube/deleter.ts).
import type { Logger } from 'pino';
import { deleteWithPreconditions } from '../kube/deleter.ts';
import type { KubeHttp } from '../kube/http.ts';
import { PODS, type ResourceRef } from '../kube/resources.ts';
import { membershipsOf } from '../rules/history.ts';
import type { ObjectSummary, PolicyTtl } from '../rules/types.ts';
import type { Verdict } from '../rules/verdict.ts';
import { GroupIndex, type GroupRule } from './groups.ts';

/** Scheduler/work-queue key prefix of a pods-first sweep (a kind id never holds a space). */
export const PODS_PREFIX = 'pods ';

/** A sweep that left pods it may not delete yet (still running) looks again this much later. */
const PODS_RETRY_MS = 30_000;

export interface RetentionOptions {
  http: KubeHttp;
  logger: Logger;
  dryRun: boolean;
  isLeader: () => boolean;
  schedule: (key: string, atMs: number) => void;
  cancel: (key: string) => void;
  /** Judge again the object under this work-queue key (its rank in a group changed). */
  rejudge: (qkey: string) => void;
  /** A Warning Event (told once per object and message) on the object under this work-queue key. */
  warn: (qkey: string, obj: ObjectSummary, reason: string, message: string) => void;
}

interface PodLike {
  metadata?: {
    name?: string;
    uid?: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
    ownerReferences?: Array<{ uid?: string }>;
  };
  status?: { phase?: string };
}

export class Retention {
  readonly #o: RetentionOptions;
  readonly groups = new GroupIndex();
  /** Objects whose pods were swept (uid): not listed again while they stay in the cache. */
  readonly #podsDone = new Set<string>();

  constructor(o: RetentionOptions) {
    this.#o = o;
  }

  rank(uid: string, rule: GroupRule): number | undefined {
    return this.groups.rank(uid, rule);
  }

  /**
   * An object was judged (`v`): updates its groups and its pods-first timer. Returns true when its
   * own groups changed, so its rank (and verdict) may differ: the caller judges it again.
   */
  observed(kindId: string, qkey: string, obj: ObjectSummary, v: Verdict, policy: PolicyTtl | null): boolean {
    const { changed, rejudge } = this.groups.set(obj.uid, qkey, membershipsOf(kindId, obj, v.finish, policy));
    for (const ref of rejudge) this.#o.rejudge(ref);
    const pkey = PODS_PREFIX + qkey;
    if (v.pods.state === 'invalid')
      this.#o.warn(qkey, obj, 'InvalidTTL', `kttl keeps its pods: ${v.pods.message}`);
    if (
      v.pods.state === 'at' &&
      !this.#podsDone.has(obj.uid) &&
      obj.deletionMs === null &&
      v.archive !== 'required' &&
      v.judgement.state !== 'expired'
    )
      this.#o.schedule(pkey, v.pods.atMs);
    else this.#o.cancel(pkey);
    return changed;
  }

  removed(qkey: string, obj: ObjectSummary): void {
    for (const ref of this.groups.remove(obj.uid)) this.#o.rejudge(ref);
    this.#o.cancel(PODS_PREFIX + qkey);
    this.#podsDone.delete(obj.uid);
  }

  /**
   * A pods-first sweep is due: deletes the finished pods this object owns (never a running one),
   * each with its own uid/resourceVersion preconditions; the object itself stays. Not with archive:
   * required (the record needs the pods' logs) nor when the object itself is due now.
   */
  async podsDue(
    qkey: string,
    resource: ResourceRef,
    obj: ObjectSummary,
    v: Verdict,
    nowMs: number,
  ): Promise<void> {
    const p = v.pods;
    if (
      p.state !== 'at' ||
      obj.deletionMs !== null ||
      v.archive === 'required' ||
      this.#podsDone.has(obj.uid)
    )
      return;
    if (p.atMs > nowMs) {
      this.#o.schedule(PODS_PREFIX + qkey, p.atMs);
      return;
    }
    if (v.judgement.state === 'expired' || !this.#o.isLeader() || obj.namespace === '') return;
    const jobs = resource.group === 'batch' && resource.kind === 'Job';
    const list = await this.#o.http.request<{ items?: PodLike[] }>(
      'list',
      'GET',
      `/api/v1/namespaces/${encodeURIComponent(obj.namespace)}/pods`,
      {
        query: jobs ? { labelSelector: `batch.kubernetes.io/controller-uid=${obj.uid}` } : {},
        timeoutMs: 30_000,
      },
    );
    const owned = (list.items ?? []).filter((pod) =>
      (pod.metadata?.ownerReferences ?? []).some((r) => r.uid === obj.uid),
    );
    let left = 0;
    let deleted = 0;
    const log = this.#o.logger.child({
      kind: resource.kind,
      namespace: obj.namespace,
      name: obj.name,
      uid: obj.uid,
    });
    for (const pod of owned) {
      const m = pod.metadata ?? {};
      if (m.deletionTimestamp !== undefined || !m.name || !m.uid || !m.resourceVersion) continue;
      const phase = pod.status?.phase;
      if (phase !== 'Succeeded' && phase !== 'Failed') {
        left++;
        continue;
      }
      if (this.#o.dryRun || (v.decision?.action === 'ttl' && v.decision.dryRun)) {
        log.info({ pod: m.name, dryRun: true }, `would delete pod first: ${p.detail}`);
        continue;
      }
      const r = await deleteWithPreconditions(
        this.#o.http,
        PODS,
        { namespace: obj.namespace, name: m.name, uid: m.uid, resourceVersion: m.resourceVersion },
        'Background',
        () => this.#o.isLeader(),
      );
      if (r === 'deleted') deleted++;
      if (r === 'conflict') left++;
    }
    if (deleted > 0)
      log.info(
        { pods: deleted, rule: p.detail },
        'deleted its pods first (the object stays until its own TTL)',
      );
    if (left > 0) this.#o.schedule(PODS_PREFIX + qkey, nowMs + PODS_RETRY_MS);
    else this.#podsDone.add(obj.uid);
  }
}
