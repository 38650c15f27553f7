// The safety rails around the controller's deletions (docs/operations.md "Safety rails"), wired
// from the pure brake (src/controller/brake.ts) and notice rule (src/rules/safety.ts) to their
// I/O: the Warning Event on the policy or the Lease, the gauge, the Lease's resume annotation,
// the outbound notifications. The controller asks three questions (admit, noticeFor, forget) and
// reports what happened (notify); everything else lives here.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { isApiError } from '../kube/errors.ts';
import type { EventRecorder, EventTarget } from '../kube/events.ts';
import type { KubeHttp } from '../kube/http.ts';
import { LEASES, objectPath } from '../kube/resources.ts';
import type { Notification, Notifier } from '../notify/types.ts';
import { POLICY_API_VERSION, type Policy } from '../policy/schema.ts';
import type { DeletionLimit } from '../rules/safety.ts';
import { type BrakeTrip, DeletionBrake, GLOBAL_BRAKE, type PolicyBrake } from './brake.ts';
import type { SafetyMetrics } from './safety-metrics.ts';

/** The annotation `kttl resume` writes (any new value resumes), on the policy or the Lease. */
export const RESUME_ANNOTATION = 'kttl.dev/resume';

export interface SafetyOptions {
  http: KubeHttp;
  clock: Clock;
  logger: Logger;
  metrics: SafetyMetrics;
  events: EventRecorder;
  /** `--max-deletions`. */
  maxDeletions?: DeletionLimit;
  /** `--notice-before`, seconds. */
  noticeBeforeSeconds?: number;
  /** The usable policies (src/policy/store.ts policies()); the same array until they change. */
  policies?: () => readonly Policy[];
  /** The leader Lease: the global brake's Event and resume annotation live there. */
  lease: { namespace: string; name: string };
  notifier?: Notifier;
  /** How often the Lease is read while the global brake holds (default 2 s). */
  leasePollMs?: number;
}

export interface Safety {
  /** The gate in front of a DELETE: true, send it; false, paused (requeued via `requeue` later). */
  admit(uid: string, key: string, policyRef: string | undefined): boolean;
  /** The object is gone or no longer due. */
  forget(uid: string): void;
  /** The notice period for an object decided by this policy (or none: the flag's), seconds. */
  noticeFor(policyRef: string | undefined): number | undefined;
  /** Policies changed: a tripped policy brake may have been resumed or raised. */
  policiesChanged(): void;
  notify(n: Notification): void;
  /** Set by the controller: puts released keys back on its work queue. */
  requeue: (keys: string[]) => void;
  stop(): void;
}

export function startSafety(o: SafetyOptions): Safety {
  const log = o.logger;
  const { paused, tripped: trips } = o.metrics;
  if (o.maxDeletions) {
    paused.set({ policy: GLOBAL_BRAKE }, 0);
    trips.set({ policy: GLOBAL_BRAKE }, 0);
  }
  let byRefOf: readonly Policy[] | undefined;
  let byRef = new Map<string, Policy>();
  const policy = (ref: string): Policy | undefined => {
    const all = o.policies?.();
    if (!all) return undefined;
    if (all !== byRefOf) {
      byRefOf = all;
      byRef = new Map(all.map((p) => [p.ref, p]));
    }
    return byRef.get(ref);
  };
  const leasePath = objectPath(LEASES, o.lease.namespace, o.lease.name);
  const leaseTarget: EventTarget = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    namespace: o.lease.namespace,
    name: o.lease.name,
    uid: '',
  };
  let leaseUid = '';
  let leaseKnown = false;
  let pollTimer: ReturnType<Clock['setTimer']> | undefined;
  let stopped = false;

  const readLease = async (): Promise<string | undefined> => {
    try {
      const lease = await o.http.request<{
        metadata?: { uid?: string; annotations?: Record<string, string> };
      }>('get', 'GET', leasePath, { timeoutMs: 10_000 });
      leaseUid = lease.metadata?.uid ?? leaseUid;
      return lease.metadata?.annotations?.[RESUME_ANNOTATION];
    } catch (err) {
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  };
  let polling = false;
  const poll = (): void => {
    pollTimer = undefined;
    // One read at a time: a trip while a read is out must not start a second loop.
    if (stopped || polling || !brake.isTripped(GLOBAL_BRAKE)) return;
    polling = true;
    readLease()
      .then(
        (token) => {
          brake.setGlobalToken(token, !leaseKnown);
          leaseKnown = true;
        },
        (err) =>
          log.warn({ err: String(err) }, 'could not read the Lease for a resume of the deletion brake'),
      )
      .finally(() => {
        polling = false;
        if (!stopped && brake.isTripped(GLOBAL_BRAKE))
          pollTimer = o.clock.setTimer(poll, o.leasePollMs ?? 2000);
      });
  };

  const safety: Safety = {
    requeue: () => {},
    admit: (uid, key, ref) => brake.admit(uid, key, ref),
    forget: (uid) => brake.forget(uid),
    noticeFor: (ref) =>
      (ref !== undefined ? policy(ref)?.noticeBeforeSeconds : undefined) ?? o.noticeBeforeSeconds,
    policiesChanged: () => brake.recheck(),
    notify: (n) => o.notifier?.notify(n),
    stop: () => {
      stopped = true;
      if (pollTimer) o.clock.clearTimer(pollTimer);
    },
  };

  const targetOf = (brakeId: string): EventTarget => {
    if (brakeId === GLOBAL_BRAKE) return { ...leaseTarget, uid: leaseUid };
    const p = policy(brakeId);
    return {
      apiVersion: POLICY_API_VERSION,
      kind: p?.kind ?? (brakeId.startsWith('ClusterTTLPolicy/') ? 'ClusterTTLPolicy' : 'TTLPolicy'),
      namespace: p?.namespace ?? '',
      name: p?.name ?? brakeId.split('/').at(-1)!,
      uid: p?.uid ?? '',
    };
  };
  const resumeCommand = (brakeId: string): string => {
    if (brakeId === GLOBAL_BRAKE) return `kttl resume -n ${o.lease.namespace}`;
    const p = policy(brakeId);
    return p?.kind === 'ClusterTTLPolicy'
      ? `kttl resume clusterttlpolicy/${p.name}`
      : `kttl resume policy/${p?.name ?? brakeId.split('/').at(-1)} -n ${p?.namespace ?? ''}`;
  };
  const onTrip = (t: BrakeTrip): void => {
    const what =
      t.brake === GLOBAL_BRAKE
        ? `--max-deletions ${t.limit.text}`
        : `maxDeletions ${t.limit.text} of ${t.brake}`;
    const message = `kttl paused deletions: ${t.deleted} deleted within ${t.limit.text.split('/')[1]} (${what}); the rest are kept until \`${resumeCommand(t.brake)}\` or a higher limit`;
    log.warn({ brake: t.brake, limit: t.limit.text, deleted: t.deleted }, message);
    trips.set({ policy: t.brake }, 1);
    // Essential: the one Event that says why deletions stopped must not lose to the TTLExpired
    // Events of the burst that tripped the brake.
    o.events.record(targetOf(t.brake), 'Warning', 'DeletionsPaused', message, { essential: true });
    o.notifier?.notify({
      type: 'brake.tripped',
      subject: t.brake === GLOBAL_BRAKE ? `leases/${o.lease.namespace}/${o.lease.name}` : t.brake,
      data: {
        brake: t.brake,
        limit: t.limit.text,
        deleted: t.deleted,
        resume: resumeCommand(t.brake),
        message,
      },
    });
    if (t.brake === GLOBAL_BRAKE && !pollTimer) {
      // The first read is the baseline unless the Lease was read before (then a change since counts).
      queueMicrotask(poll);
    }
  };
  const brake = new DeletionBrake({
    clock: o.clock,
    ...(o.maxDeletions ? { global: o.maxDeletions } : {}),
    policy: (ref): PolicyBrake | undefined => {
      const p = policy(ref);
      if (!p) return undefined;
      return {
        ...(p.maxDeletions ? { limit: p.maxDeletions } : {}),
        ...(p.resumeToken !== undefined ? { resumeToken: p.resumeToken } : {}),
      };
    },
    onTrip,
    onPaused: (id, n) => paused.set({ policy: id }, n),
    onRelease: (id, keys, why) => {
      trips.set({ policy: id }, 0);
      log.info({ brake: id, released: keys.length, why }, `deletion brake let go (${why})`);
      o.events.record(
        targetOf(id),
        'Normal',
        'DeletionsResumed',
        `kttl resumed deletions (${why}): ${keys.length} waiting deletions go ahead`,
        { essential: true },
      );
      safety.requeue(keys);
    },
  });
  if (o.maxDeletions) {
    // Know the annotation before any trip, so a resume written during the trip is a change.
    readLease().then(
      (t) => {
        // Read before the trip, or at it: either way what it was then, not a resume.
        brake.setGlobalToken(t, true);
        leaseKnown = true;
      },
      () => {},
    );
  }
  return safety;
}
