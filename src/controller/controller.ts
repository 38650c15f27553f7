// The reconcile loop, shaped like upstream's ttlafterfinished controller: watch handlers only
// judge and schedule; an expiry scheduler (one timer for all objects) puts due keys on a work
// queue; workers re-judge the cached object on the API server's clock and delete it with one
// precondition-guarded DELETE. Only the leader deletes; every replica keeps its cache warm.
import type { Logger } from 'pino';
import type { Archiver } from '../archive/archiver.ts';
import type { RecordKey } from '../archive/types.ts';
import type { Clock } from '../clock.ts';
import type { ClockSkewEstimator } from '../kube/clock-skew.ts';
import { deleteWithPreconditions } from '../kube/deleter.ts';
import { isApiError, isRetryableAnswer, retryAfterMs, summarizeError } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { FencedError, type KubeHttp } from '../kube/http.ts';
import type { RawObject } from '../kube/objects.ts';
import { protobufKind } from '../kube/protobuf/k8s.ts';
import { objectKey, Reflector } from '../kube/reflector.ts';
import { apiVersionOf, kindKey, objectPath, type ResourceRef } from '../kube/resources.ts';
import { worthCaching } from '../rules/cache.ts';
import { formatDuration } from '../rules/duration.ts';
import type { Judgement } from '../rules/expiry.ts';
import type { FinishChoice, FinishRule } from '../rules/finish.ts';
import { builtinKind, kindKeyOf } from '../rules/kinds.ts';
import { noticeAtMs } from '../rules/safety.ts';
import { StringPool, summarizeObject } from '../rules/summary.ts';
import { describeDecision } from '../rules/ttl.ts';
import type {
  ArchiveMode,
  Finish,
  ObjectSummary,
  PolicyTtl,
  PropagationPolicy,
  TtlDecision,
} from '../rules/types.ts';
import { type Verdict, verdictOf } from '../rules/verdict.ts';
import { ExpiryScheduler } from './expiry-scheduler.ts';
import type { Metrics } from './metrics.ts';
import { PODS_PREFIX, Retention } from './retention.ts';
import type { Safety } from './safety.ts';
import { WorkQueue } from './workqueue.ts';

export interface WatchedKind {
  resource: ResourceRef;
  /** Upstream deletes Jobs in the Foreground; Pods and others default to Background. */
  defaultPropagation: PropagationPolicy;
  /**
   * For custom resources: the finish rules policies give the kind. Each object is evaluated under
   * all of them at ingest; which one counts is chosen per object (ControllerOptions.finishChoiceFor).
   */
  finishRules?: ReadonlyArray<{ key: string; rule: FinishRule }>;
}

export interface NamespaceScope {
  /** Only these namespaces (empty = all). */
  include: readonly string[];
  /** Never these (applied with a field selector, so their objects are not even sent). */
  exclude: readonly string[];
}

export interface ControllerOptions {
  http: KubeHttp;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  events: EventRecorder;
  skew: ClockSkewEstimator;
  kinds: readonly WatchedKind[];
  namespaces: NamespaceScope;
  dryRun: boolean;
  /** handle: kttl also deletes Jobs whose only TTL is .spec.ttlSecondsAfterFinished; leave: the native controller's. */
  nativeJobs: 'handle' | 'leave';
  helmHooks: boolean;
  /** --propagation-policy: overrides each kind's default (a policy's own setting still wins). */
  propagationPolicy?: PropagationPolicy;
  workers: number;
  isLeader: () => boolean;
  resyncMs: number;
  /**
   * Read Jobs and Pods in the API server's protobuf encoding (src/kube/protobuf/k8s.ts) where no
   * policy gives their kind a finish rule of its own (that may read any field); default JSON.
   */
  protobuf?: boolean;
  /** The policy matched to an object (docs/policies.md); none by default. */
  policyFor?: (obj: ObjectSummary) => PolicyTtl | null;
  /** Which finish rule judges an object (a selecting policy's, the built-in, or none: kept). */
  finishChoiceFor?: (obj: ObjectSummary) => FinishChoice;
  /** Whether some policy names Pods: only then are Pods owned by a Job cached and judged. */
  policiesTargetPods?: () => boolean;
  /** Annotation keys policies group by, kept in the summaries (a change needs restartKind). */
  groupAnnotationKeys?: () => ReadonlySet<string>;
  /**
   * Archiving before deleting (docs/archive.md): the archiver and `--archive` (a policy's `archive`
   * wins). Without an archiver nothing is archived.
   */
  archiver?: Archiver;
  archive?: ArchiveMode;
  /** Test seam: runs after an object was judged expired and before its DELETE is sent, so tests
   *  can change the object inside that window deliberately (the preconditions must then refuse). */
  beforeDelete?: (obj: ObjectSummary) => Promise<void>;
  /** The safety rails (src/controller/safety.ts): brake, notices, notifications. */
  safety?: Safety;
}

/**
 * One watched kind and its reflectors: one per included namespace, or one for all — for Pods two
 * each, finished ones in full and unfinished ones as metadata (#makeReflectors). A key is in at
 * most one of them but for the moment a Pod moves between the two.
 */
interface KindState {
  /** `group/Kind` (src/rules/kinds.ts kindKeyOf): kinds are keyed by name, never by position. */
  id: string;
  kind: WatchedKind;
  reflectors: Reflector<ObjectSummary>[];
  /** Given at start (Jobs, Pods): only these gate readiness. */
  initial: boolean;
}

/** The finish an unfinished object deleted by kttl.dev/expires is archived with (docs/decisions.md). */
const UNFINISHED: Finish = {
  outcome: 'failed',
  atMs: null,
  timeSource: 'firstSeen',
  reason: 'not finished: deleted by kttl.dev/expires',
};

/** A deletion waiting for its archive record is tried again at least this often. */
const ARCHIVE_RETRY_MAX_MS = 30_000;

/**
 * A deletion answered 429 or 5xx (the server says "not now", not "not this") is tried again at
 * least this often, so the end of a throttling storm is followed within seconds, not after a
 * per-object back-off grown as long as the storm (test/integration/faults-throttle.test.ts).
 */
const RETRYABLE_RETRY_MAX_MS = 10_000;

/** Prefix of a notice's scheduler key (a kind id is `group/Kind`: it never holds a space). */
const NOTICE_PREFIX = 'notice ';

/** The work-queue key of an object: `group/Kind|namespace/name` (a kind id holds no `|`). */
function queueKey(kindId: string, objectKey: string): string {
  return `${kindId}|${objectKey}`;
}

/** The kinds of the core and batch groups, whose names other groups reuse (Volcano's Job). */
const CORE_KIND_NAMES = new Set(['Job', 'Pod', 'CronJob']);

/**
 * The `kind` label of the metrics: the kind's name, as in docs/operations.md, except for a kind of
 * another group that is named like a core or batch kind: `Job.batch.volcano.sh`, so the two never
 * share a series (a gauge would be overwritten by whichever cache reported last).
 */
export function metricKind(r: Pick<ResourceRef, 'group' | 'kind'>): string {
  return r.group === '' || r.group === 'batch' || !CORE_KIND_NAMES.has(r.kind)
    ? r.kind
    : `${r.kind}.${r.group}`;
}

function splitQueueKey(qkey: string): { kindId: string; objectKey: string } {
  const bar = qkey.indexOf('|');
  return { kindId: qkey.slice(0, bar), objectKey: qkey.slice(bar + 1) };
}

export class TtlController {
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  readonly #queue: WorkQueue<string>;
  readonly #scheduler: ExpiryScheduler<string>;
  /** By `group/Kind`. */
  readonly #kinds = new Map<string, KindState>();
  /** Equal strings (namespaces, labels, kinds) shared by all cached objects. */
  readonly #strings = new StringPool();
  /** Pods and custom resources without a finish time: when we first saw them finished (server clock). */
  readonly #firstSeenFinished = new Map<string, number>();
  /** Objects we already warned about (uid|what). */
  readonly #warned = new Set<string>();
  /** The resourceVersion of each object we sent a DELETE (or logged a dry-run one) for, by uid:
   *  the same object is never deleted twice; forgotten when it leaves the cache. */
  readonly #deleted = new Map<string, string>();
  /** Deletions waiting for their archive record (archive: required), uid → resourceVersion. */
  readonly #awaitingArchive = new Map<string, string>();
  /** history, keepLatest and pods first (src/controller/retention.ts). */
  readonly #retention: Retention;
  /** Notices sent: uid → the expiry they announced (one per object and expiry). */
  readonly #noticed = new Map<string, number>();
  #workers: Promise<void>[] = [];
  #started = false;
  #stopped = false;

  constructor(o: ControllerOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#queue = new WorkQueue<string>({ clock: o.clock });
    this.#retention = new Retention({
      http: o.http,
      logger: o.logger,
      dryRun: o.dryRun,
      isLeader: () => o.isLeader(),
      schedule: (key, atMs) => this.#scheduler.schedule(key, atMs),
      cancel: (key) => this.#scheduler.cancel(key),
      rejudge: (qkey) => {
        const found = this.#lookup(qkey);
        if (found) this.#onUpsert(found.state, found.key, found.obj);
      },
      warn: (qkey, obj, reason, message) => {
        const found = this.#lookup(qkey);
        if (found)
          this.#warnOnce(obj, `${reason}|${message}`, () =>
            this.#o.events.record(this.#target(found.state.kind, obj), 'Warning', reason, message),
          );
      },
    });
    // Due times are on the API server's clock (as conservatively estimated): when the estimate
    // moves, the one armed timer is re-armed, so a start with a wide first estimate is not late.
    const serverClock: Clock = {
      now: () => this.#serverNow(),
      setTimer: (fn, delayMs) => o.clock.setTimer(fn, delayMs),
      clearTimer: (handle) => o.clock.clearTimer(handle),
    };
    this.#scheduler = new ExpiryScheduler<string>({
      clock: serverClock,
      // Notices share the one timer: their keys carry a prefix no kind id can start with.
      onDue: (key) =>
        key.startsWith(NOTICE_PREFIX) ? this.#notice(key.slice(NOTICE_PREFIX.length)) : this.#queue.add(key),
      onError: (err) => this.#log.error({ err: summarizeError(err) }, 'scheduler callback failed'),
    });
    o.skew.onLowBoundChange(() => this.#scheduler.rearm());
    if (o.safety)
      o.safety.requeue = (keys) => {
        for (const k of keys) this.#queue.add(k);
      };
    for (const kind of o.kinds) this.#add(kind, true);
  }

  /** Starts watching another kind (e.g. a custom resource named by a policy). */
  addKind(kind: WatchedKind): void {
    this.#add(kind, false);
  }

  #add(kind: WatchedKind, initial: boolean): void {
    const id = kindKeyOf(kind.resource.group, kind.resource.kind);
    if (this.#kinds.has(id)) return;
    const state: KindState = { id, kind, reflectors: [], initial };
    this.#kinds.set(id, state);
    state.reflectors = this.#makeReflectors(state);
    if (this.#started && !this.#stopped) for (const r of state.reflectors) r.start();
  }

  /** Whether a kind is watched, by API group and kind. */
  hasKind(group: string, kind: string): boolean {
    return this.#kinds.has(kindKeyOf(group, kind));
  }

  get kinds(): WatchedKind[] {
    return [...this.#kinds.values()].map((k) => k.kind);
  }

  /**
   * Re-reads a kind from scratch (new list): its finish rule changed, or which of its objects are
   * worth caching changed (Job-owned Pods when a policy starts or stops targeting Pods).
   */
  async restartKind(
    group: string,
    kind: string,
    finishRules?: ReadonlyArray<{ key: string; rule: FinishRule }>,
  ): Promise<void> {
    const state = this.#kinds.get(kindKeyOf(group, kind));
    if (!state) return;
    if (finishRules !== undefined) state.kind = { ...state.kind, finishRules };
    const old = state.reflectors;
    state.reflectors = this.#makeReflectors(state);
    await Promise.all(old.map((r) => r.stop()));
    if (this.#started && !this.#stopped) for (const r of state.reflectors) r.start();
  }

  #makeReflectors(state: KindState): Reflector<ObjectSummary>[] {
    const o = this.#o;
    const kind = state.kind;
    const scopes =
      o.namespaces.include.length > 0 && kind.resource.namespaced ? [...o.namespaces.include] : [undefined];
    const excluded =
      o.namespaces.include.length === 0 && kind.resource.namespaced && o.namespaces.exclude.length > 0
        ? o.namespaces.exclude.map((ns) => `metadata.namespace!=${ns}`)
        : [];
    // Protobuf carries only the fields src/kube/protobuf/k8s.ts reads: not for a policy's finish rule.
    const protobuf =
      o.protobuf && (kind.finishRules?.length ?? 0) === 0
        ? protobufKind(kind.resource.group, kind.resource.version, kind.resource.kind)
        : undefined;
    const make = (
      namespace: string | undefined,
      selectors: readonly string[],
      metadataOnly: boolean,
    ): Reflector<ObjectSummary> =>
      new Reflector<ObjectSummary>({
        http: o.http,
        resource: kind.resource,
        namespace,
        ...(selectors.length > 0 ? { fieldSelector: selectors.join(',') } : {}),
        ...(metadataOnly ? { metadataOnly } : {}),
        ...(protobuf ? { protobuf } : {}),
        clock: o.clock,
        logger: o.logger.child({
          kind: kindKey(kind.resource),
          ...(namespace ? { namespace } : {}),
          ...(metadataOnly ? { phase: 'unfinished' } : {}),
        }),
        resyncMs: o.resyncMs,
        // A metadata-only object says PartialObjectMetadata: judged as the kind it is.
        transform: metadataOnly
          ? (raw) => this.#ingest(state.kind, { metadata: raw.metadata })
          : (raw) => this.#ingest(state.kind, raw),
        handler: {
          upsert: (key, obj, old) => {
            // Recreated under the same name (a relist shows the new one in place of the old).
            if (old !== undefined && old.uid !== obj.uid) this.#forgetObject(state, key, old);
            this.#onUpsert(state, key, this.#cached(state, key) ?? obj);
          },
          remove: (key, old) => this.#onRemoveFrom(state, key, old),
          listed: () => this.#updateTracked(state),
        },
      });
    if (!isPods(kind.resource)) return scopes.map((ns) => make(ns, excluded, false));
    // Pods: the API server filters on status.phase, so running Pods are never sent in full — only
    // their metadata, for the one rule that deletes a running Pod (kttl.dev/expires; a Pod without
    // it is not cached: src/rules/cache.ts). Finished first: #cached prefers it.
    return scopes.flatMap((ns) => [
      make(ns, [...excluded, ...FINISHED_PODS], false),
      make(ns, [...excluded, ...UNFINISHED_PODS], true),
    ]);
  }

  /**
   * The cached object under a key: from the first of the kind's reflectors that holds it (for
   * Pods the finished one: a Pod that finished is never unfinished again).
   */
  #cached(state: KindState, key: string): ObjectSummary | undefined {
    for (const r of state.reflectors) {
      const obj = r.store.get(key);
      if (obj !== undefined) return obj;
    }
    return undefined;
  }

  /** A reflector dropped a key: gone, unless another of the kind's reflectors now holds it. */
  #onRemoveFrom(state: KindState, key: string, old: ObjectSummary): void {
    const current = this.#cached(state, key);
    if (current === undefined) {
      this.#onRemove(state, key, old);
      return;
    }
    // A Pod that finished left the unfinished watch (its finished one may have told us first).
    if (current.uid !== old.uid) this.#forgetObject(state, key, old);
    this.#onUpsert(state, key, current);
  }

  /** True once every watch has listed. */
  get synced(): boolean {
    // Only the kinds given at start (Jobs, Pods) gate readiness: a custom kind found later, or one
    // the RBAC role does not grant, is reported in the log and must not hold a rollout forever.
    return this.#initialReflectors().every((r) => r.hasSynced);
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.#initialReflectors().map((r) => r.synced));
  }

  #initialReflectors(): Reflector<ObjectSummary>[] {
    return [...this.#kinds.values()].filter((k) => k.initial).flatMap((k) => k.reflectors);
  }

  #allReflectors(): Reflector<ObjectSummary>[] {
    return [...this.#kinds.values()].flatMap((k) => k.reflectors);
  }

  /**
   * The API server answers again after an outage: retry the deletions that failed during it and
   * end the watches' back-off waits now, instead of waiting out back-offs that grew as long as the
   * outage. Returns how many keys were retried.
   */
  apiRecovered(): number {
    if (this.#stopped) return 0;
    for (const r of this.#allReflectors()) r.retryNow();
    const n = this.#queue.retryBackedOffNow();
    if (n > 0) this.#log.info({ retried: n }, 'API server answers again: retrying failed deletions now');
    return n;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const r of this.#allReflectors()) r.start();
    for (let i = 0; i < this.#o.workers; i++) this.#workers.push(this.#worker());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#scheduler.stop();
    this.#queue.shutDown();
    await Promise.all(this.#allReflectors().map((r) => r.stop()));
    await Promise.all(this.#workers);
    await this.#o.events.flush();
  }

  /** Re-judges everything in the caches (e.g. on becoming leader, or when policies change). */
  rejudgeAll(): void {
    for (const state of this.#kinds.values())
      for (const reflector of state.reflectors)
        for (const [key, obj] of reflector.store) this.#onUpsert(state, key, this.#cached(state, key) ?? obj);
  }

  /** Visits every cached object (for policy status counts). */
  forEachObject(cb: (obj: ObjectSummary) => void): void {
    for (const r of this.#allReflectors()) for (const obj of r.store.values()) cb(obj);
  }

  #trackedCount(state: KindState): number {
    return state.reflectors.reduce((n, r) => n + r.store.size, 0);
  }

  /** For tests: the verdict on a cached object right now. */
  verdictFor(group: string, kind: string, namespace: string, name: string): Verdict | undefined {
    const state = this.#kinds.get(kindKeyOf(group, kind));
    const obj = state && this.#cached(state, objectKey(namespace, name));
    return state && obj ? this.#evaluate(state.kind, obj) : undefined;
  }

  reflectorStats(): Array<Reflector<ObjectSummary>['stats']> {
    return this.#allReflectors().map((r) => r.stats);
  }

  #ingest(kind: WatchedKind, raw: RawObject): ObjectSummary | null {
    const type = { apiVersion: apiVersionOf(kind.resource), kind: kind.resource.kind };
    const ns = raw.metadata?.namespace ?? '';
    if (this.#o.namespaces.exclude.includes(ns)) return null;
    // Pods of a Job go with their Job (its Foreground delete removes them), unless a policy names
    // Pods: not caching them halves the memory in a cluster of Jobs.
    if (
      kind.resource.kind === 'Pod' &&
      kind.resource.group === '' &&
      isOwnedByJob(raw) &&
      !this.#o.policiesTargetPods?.()
    )
      return null;
    const summary = summarizeObject(
      raw,
      type,
      kind.finishRules,
      this.#strings,
      this.#o.groupAnnotationKeys?.(),
    );
    return worthCaching(summary) ? summary : null;
  }

  #serverNow(): number {
    return this.#o.skew.serverNowForExpiry(this.#o.clock.now());
  }

  #evaluate(kind: WatchedKind, obj: ObjectSummary): Verdict {
    const now = this.#serverNow();
    const v = verdictOf(obj, {
      nowMs: now,
      policy: this.#o.policyFor?.(obj) ?? null,
      ...(this.#o.finishChoiceFor ? { finishChoice: this.#o.finishChoiceFor(obj) } : {}),
      helmHooks: this.#o.helmHooks,
      nativeJobs: this.#o.nativeJobs,
      ...(this.#o.archive ? { archive: this.#o.archive } : {}),
      rank: (rule) => this.#retention.rank(obj.uid, rule),
      firstSeen: (finish) => {
        // Not finished (again): a later finish is judged from then, never from an earlier one.
        if (finish === null) {
          this.#firstSeenFinished.delete(obj.uid);
          return undefined;
        }
        if (finish.atMs !== null || finish.timeSource !== 'firstSeen') return undefined;
        // No finish time on the object: count from when we first saw it finished.
        let seen = this.#firstSeenFinished.get(obj.uid);
        if (seen === undefined) {
          seen = now;
          this.#firstSeenFinished.set(obj.uid, seen);
        }
        return seen;
      },
    });
    if (v.finishConflict && v.finishBlocked !== undefined)
      this.#warnFinishConflict(kind, obj, v.finishBlocked);
    return v;
  }

  #onUpsert(state: KindState, key: string, obj: ObjectSummary): void {
    const kind = state.kind;
    const qkey = queueKey(state.id, key);
    const first = this.#evaluate(kind, obj);
    // Its groups (history, keepLatest) changed: its rank did too, judge it again.
    const { decision, judgement } = this.#retention.observed(
      state.id,
      qkey,
      obj,
      first,
      this.#o.policyFor?.(obj) ?? null,
    )
      ? this.#evaluate(kind, obj)
      : first;
    switch (judgement.state) {
      case 'pending':
      case 'expired':
        // Due when the server clock (as we conservatively estimate it) reaches expireAt.
        this.#scheduler.schedule(qkey, judgement.expireAtMs!);
        this.#scheduleNotice(qkey, obj, decision, judgement.expireAtMs!);
        if (judgement.state === 'pending') this.#o.safety?.forget(obj.uid);
        break;
      case 'invalid':
        this.#scheduler.cancel(qkey);
        this.#notDue(qkey, obj);
        if (decision?.action === 'invalid') this.#warnInvalid(kind, obj, decision);
        break;
      case 'no-finish-time':
        this.#scheduler.cancel(qkey);
        this.#notDue(qkey, obj);
        this.#warnOnce(obj, 'no-finish-time', () =>
          this.#log.warn(
            { object: `${obj.namespace}/${obj.name}`, uid: obj.uid },
            'finished, but its condition has no lastTransitionTime: kept (as upstream)',
          ),
        );
        break;
      default:
        this.#scheduler.cancel(qkey);
        this.#notDue(qkey, obj);
    }
    this.#updateTracked(state);
  }

  /** Neither a deletion nor its notice is due: forget both (and any pause of the brake). */
  #notDue(qkey: string, obj: ObjectSummary): void {
    this.#scheduler.cancel(NOTICE_PREFIX + qkey);
    this.#noticed.delete(obj.uid);
    this.#o.safety?.forget(obj.uid);
  }

  /** The policy whose TTL decided (its maxDeletions and noticeBefore apply); none for an object's own TTL. */
  #decidingPolicy(obj: ObjectSummary, decision: TtlDecision | null): string | undefined {
    if (decision?.action !== 'ttl' || (decision.source !== 'policy' && decision.source !== 'history'))
      return undefined;
    return this.#o.policyFor?.(obj)?.ref;
  }

  /** A DeletionScheduled notice on the same one timer, if asked and the TTL is longer than it. */
  #scheduleNotice(qkey: string, obj: ObjectSummary, decision: TtlDecision | null, expireAtMs: number): void {
    const safety = this.#o.safety;
    if (!safety || decision?.action !== 'ttl') return;
    const notice = safety.noticeFor(this.#decidingPolicy(obj, decision));
    const at = noticeAtMs(expireAtMs, decision.seconds, notice);
    const nkey = NOTICE_PREFIX + qkey;
    if (at === undefined || expireAtMs <= this.#serverNow() || this.#noticed.get(obj.uid) === expireAtMs) {
      this.#scheduler.cancel(nkey);
      return;
    }
    if (this.#scheduler.dueAtMs(nkey) !== at) this.#scheduler.schedule(nkey, at);
  }

  /** The notice is due: told once per object and expiry, by the leader, if still so judged. */
  #notice(qkey: string): void {
    const { kindId, objectKey: key } = splitQueueKey(qkey);
    const state = this.#kinds.get(kindId);
    if (!state || !this.#o.isLeader()) return;
    const obj = this.#cached(state, key);
    if (!obj) return;
    const { decision, judgement } = this.#evaluate(state.kind, obj);
    if (judgement.state !== 'pending' || decision?.action !== 'ttl') return;
    const expireAtMs = judgement.expireAtMs!;
    if (this.#noticed.get(obj.uid) === expireAtMs) return;
    this.#noticed.set(obj.uid, expireAtMs);
    const at = new Date(expireAtMs).toISOString();
    const rule = describeDecision(decision);
    const inText = formatDuration(Math.max(0, Math.round((expireAtMs - this.#serverNow()) / 1000)));
    this.#o.events.record(
      this.#target(state.kind, obj),
      'Normal',
      'DeletionScheduled',
      `kttl will delete this object at ${at} (in ${inText}): ${rule}`,
    );
    this.#o.safety?.notify({
      type: 'deletion.scheduled',
      subject: subjectOf(state.kind.resource, obj),
      data: { ...objectData(state.kind.resource, obj), expireAt: at, rule },
    });
  }

  #onRemove(state: KindState, key: string, old: ObjectSummary): void {
    this.#scheduler.cancel(queueKey(state.id, key));
    this.#retention.removed(queueKey(state.id, key), old);
    this.#notDue(queueKey(state.id, key), old);
    this.#forgetUid(old.uid);
    this.#updateTracked(state);
  }

  /** An object replaced under its key by another one (another uid): its groups and notices go. */
  #forgetObject(state: KindState, key: string, old: ObjectSummary): void {
    this.#retention.removed(queueKey(state.id, key), old);
    this.#noticed.delete(old.uid);
    this.#o.safety?.forget(old.uid);
    this.#forgetUid(old.uid);
  }

  /** What is kept by uid for an object that left the cache. */
  #forgetUid(uid: string): void {
    this.#firstSeenFinished.delete(uid);
    this.#deleted.delete(uid);
    this.#archiveSettled(uid);
  }

  #updateTracked(state: KindState): void {
    this.#o.metrics.tracked.set({ kind: metricKind(state.kind.resource) }, this.#trackedCount(state));
  }

  #warnOnce(obj: ObjectSummary, what: string, fn: () => void): void {
    const k = `${obj.uid}|${what}`;
    if (this.#warned.has(k)) return;
    if (this.#warned.size > 100_000) this.#warned.clear(); // bounded; a repeat warning is harmless
    this.#warned.add(k);
    fn();
  }

  #warnInvalid(kind: WatchedKind, obj: ObjectSummary, d: Extract<TtlDecision, { action: 'invalid' }>): void {
    // The key and the log line stay small whatever the value (src/rules/summary.ts cuts over-long
    // annotations; a policy's value is whatever its author wrote): at most 100 characters, copied
    // flat (a slice would keep the whole value alive in #warned).
    const value =
      d.value.length > 100 ? `${[...d.value.slice(0, 64)].join('')}… (${d.value.length} chars)` : d.value;
    const message = d.message.length > 1000 ? `${d.message.slice(0, 1000)}…` : d.message;
    this.#warnOnce(obj, `invalid|${d.key}|${value}`, () => {
      this.#o.metrics.invalidTtl.inc({ kind: metricKind(kind.resource) });
      this.#o.safety?.notify({
        type: 'ttl.invalid',
        subject: subjectOf(kind.resource, obj),
        data: { ...objectData(kind.resource, obj), key: d.key, value, message },
      });
      this.#log.warn(
        { object: `${obj.namespace}/${obj.name}`, uid: obj.uid, key: d.key, value },
        `invalid TTL, object kept: ${message}`,
      );
      this.#o.events.record(
        this.#target(kind, obj),
        'Warning',
        'InvalidTTL',
        `kttl keeps this object: ${message}`,
      );
    });
  }

  #warnFinishConflict(kind: WatchedKind, obj: ObjectSummary, why: string): void {
    this.#warnOnce(obj, 'finish-conflict', () => {
      this.#log.warn({ object: `${obj.namespace}/${obj.name}`, uid: obj.uid }, why);
      this.#o.events.record(
        this.#target(kind, obj),
        'Warning',
        'FinishRuleConflict',
        `kttl keeps this object: ${why}`,
      );
    });
  }

  #target(kind: WatchedKind, obj: ObjectSummary) {
    return {
      apiVersion: apiVersionOf(kind.resource),
      kind: kind.resource.kind,
      namespace: obj.namespace,
      name: obj.name,
      uid: obj.uid,
      resourceVersion: obj.resourceVersion,
    };
  }

  /** archive: required and no record: the object is kept, told once, counted, retried later. */
  #archiveFailed(kind: WatchedKind, obj: ObjectSummary, message: string): never {
    this.#awaitingArchive.set(obj.uid, obj.resourceVersion);
    this.#o.archiver?.setPending(this.#awaitingArchive.size);
    this.#warnOnce(obj, `archive|${obj.resourceVersion}`, () => {
      this.#log.warn(
        { object: `${obj.namespace}/${obj.name}`, uid: obj.uid },
        `archive required but not written, not deleted yet: ${message}`,
      );
      this.#o.events.record(
        this.#target(kind, obj),
        'Warning',
        'ArchivePending',
        `kttl keeps this object until its archive record is written: ${message.slice(0, 500)}`,
      );
      this.#o.safety?.notify({
        type: 'archive.failed',
        subject: subjectOf(kind.resource, obj),
        data: { ...objectData(kind.resource, obj), mode: 'required', deleted: false, message },
      });
    });
    throw new ArchivePendingError(`archive required: ${message}`);
  }

  #archiveSettled(uid: string): void {
    if (this.#awaitingArchive.delete(uid)) this.#o.archiver?.setPending(this.#awaitingArchive.size);
  }

  async #worker(): Promise<void> {
    for (;;) {
      const qkey = await this.#queue.get();
      if (qkey === undefined) return;
      try {
        await this.#process(qkey);
        this.#queue.forget(qkey);
      } catch (err) {
        if (err instanceof ArchivePendingError) {
          // Told once (Warning Event); the archive may be back any moment: retry at least every 30 s.
          this.#log.debug({ key: qkey, retries: this.#queue.numRequeues(qkey) }, err.message);
          this.#queue.addRateLimited(qkey, ARCHIVE_RETRY_MAX_MS);
          continue;
        }
        if (this.#stopped) {
          // Its request was ended by the stop (src/controller/app.ts): the next leader judges it.
          this.#log.debug({ key: qkey, err: summarizeError(err) }, 'processing ended by the stop');
          continue;
        }
        this.#log.warn(
          { key: qkey, err: summarizeError(err), retries: this.#queue.numRequeues(qkey) },
          'processing failed; will retry',
        );
        // The server's Retry-After (API Priority and Fairness) is a floor over the back-off.
        this.#queue.addRateLimited(
          qkey,
          isRetryableAnswer(err) ? RETRYABLE_RETRY_MAX_MS : undefined,
          retryAfterMs(err),
        );
      } finally {
        this.#queue.done(qkey);
      }
    }
  }

  /** The cached object under a work-queue key. */
  #lookup(qkey: string): { state: KindState; key: string; obj: ObjectSummary } | undefined {
    const { kindId, objectKey: key } = splitQueueKey(qkey);
    const state = this.#kinds.get(kindId);
    if (!state) return undefined;
    const obj = this.#cached(state, key);
    return obj ? { state, key, obj } : undefined;
  }

  /** A pods-first sweep is due (src/controller/retention.ts). */
  async #podsDue(qkey: string): Promise<void> {
    const found = this.#lookup(qkey);
    if (!found || !this.#o.isLeader()) return;
    const v = this.#evaluate(found.state.kind, found.obj);
    await this.#retention.podsDue(qkey, found.state.kind.resource, found.obj, v, this.#serverNow());
  }

  async #process(qkey: string): Promise<void> {
    if (qkey.startsWith(PODS_PREFIX)) return this.#podsDue(qkey.slice(PODS_PREFIX.length));
    const { kindId, objectKey: key } = splitQueueKey(qkey);
    const state = this.#kinds.get(kindId);
    if (!state) return;
    const kind = state.kind;
    const obj = this.#cached(state, key);
    if (!obj) return;
    let current = obj;
    // At most a few rounds: a 409 means the object changed; judge the fresh copy and try again.
    for (let round = 0; round < 3; round++) {
      const { decision, judgement, finish, archive } = this.#evaluate(kind, current);
      if (judgement.state === 'pending') {
        this.#scheduler.schedule(qkey, judgement.expireAtMs!);
        return;
      }
      if (judgement.state !== 'expired' || decision?.action !== 'ttl') return;
      if (!this.#o.isLeader()) return; // the leader deletes; we re-judge everything if we become leader
      if (this.#deleted.get(current.uid) === current.resourceVersion) return; // already sent this exact delete
      // The brake (src/controller/brake.ts) is a gate, not a judge: paused, the object is kept and
      // its key comes back when the brake lets go. Dry runs delete nothing and pass.
      if (
        this.#o.safety &&
        !(this.#o.dryRun || decision.dryRun) &&
        !this.#o.safety.admit(current.uid, qkey, this.#decidingPolicy(current, decision))
      )
        return;
      const outcome = await this.#delete(kind, { ...current, finish }, decision, judgement, archive);
      if (outcome !== 'conflict') return;
      const fresh = await this.#readFresh(kind, current);
      if (!fresh) return;
      current = fresh;
    }
  }

  async #readFresh(kind: WatchedKind, obj: ObjectSummary): Promise<ObjectSummary | null> {
    try {
      const raw = await this.#o.http.request<RawObject>(
        'get',
        'GET',
        objectPath(kind.resource, obj.namespace, obj.name),
      );
      return this.#ingest(kind, raw);
    } catch (err) {
      if (isApiError(err, 404)) return null;
      throw err;
    }
  }

  async #delete(
    kind: WatchedKind,
    obj: ObjectSummary,
    decision: Extract<TtlDecision, { action: 'ttl' }>,
    judgement: Judgement,
    archive: ArchiveMode,
  ): Promise<'deleted' | 'gone' | 'conflict' | 'dry-run'> {
    // 'unfinished': deleted by kttl.dev/expires before it finished (the one rule that may).
    const outcome = obj.finish?.outcome ?? 'unfinished';
    const labels = { kind: metricKind(kind.resource), outcome, source: decision.source };
    const log = this.#log.child({
      kind: kind.resource.kind,
      namespace: obj.namespace,
      name: obj.name,
      uid: obj.uid,
    });
    const why = `${obj.finish ? `finished (${outcome}) at ${new Date(obj.finish.atMs ?? 0).toISOString()}` : 'not finished'}; ${describeDecision(decision)}; expired at ${new Date(judgement.expireAtMs!).toISOString()}`;
    if (this.#o.dryRun || decision.dryRun) {
      // Once per object version, as a real DELETE (#process skips what #deleted holds).
      this.#deleted.set(obj.uid, obj.resourceVersion);
      this.#o.metrics.deletions.inc({ ...labels, dry_run: 'true' });
      log.info({ dryRun: true }, `would delete: ${why}`);
      return 'dry-run';
    }
    const propagation = decision.propagationPolicy ?? this.#o.propagationPolicy ?? kind.defaultPropagation;
    // Leadership may have ended while this worker waited: no "Deleting" Event for a DELETE that the
    // fence (src/kube/http.ts) will refuse to send.
    if (!this.#o.isLeader()) return 'gone';
    let record: RecordKey | undefined;
    const archiver = this.#o.archiver;
    // Required and nowhere to write: kept, never deleted without its record.
    if (archive === 'required' && !archiver)
      this.#archiveFailed(kind, obj, 'no archive is configured in this controller');
    if (archive !== 'off' && archiver) {
      const r = await archiver.prepare(
        {
          resource: kind.resource,
          judged: obj,
          // kttl.dev/expires deletes unfinished objects too: archived as not succeeded, no finish time.
          finish: obj.finish ?? UNFINISHED,
          decision,
          reason: why,
          ...podLabelOf(kind.resource),
        },
        archive === 'required',
      );
      if (r.state === 'changed') return 'conflict';
      if (r.state === 'failed') {
        if (archive === 'required') this.#archiveFailed(kind, obj, r.message); // throws: retried with back-off
        log.warn({ reason: r.reason }, `archive (best-effort) failed, deleting anyway: ${r.message}`);
        this.#o.safety?.notify({
          type: 'archive.failed',
          subject: subjectOf(kind.resource, obj),
          data: { ...objectData(kind.resource, obj), mode: 'best-effort', deleted: true, message: r.message },
        });
      } else {
        record = r.key;
      }
      this.#archiveSettled(obj.uid);
      if (!this.#o.isLeader()) {
        if (record) await archiver.notDeleted(record);
        return 'gone';
      }
    }
    this.#o.events.record(
      this.#target(kind, obj),
      'Normal',
      'TTLExpired',
      `Deleting (${propagation}): ${why}`,
    );
    await this.#o.beforeDelete?.(obj);
    let result: Awaited<ReturnType<typeof deleteWithPreconditions>>;
    try {
      result = await deleteWithPreconditions(this.#o.http, kind.resource, obj, propagation, () =>
        this.#o.isLeader(),
      );
    } catch (err) {
      // Not sent (fenced): the record describes no deletion. Any other failure may or may not have
      // deleted it: the record stays pending and is settled by the start-up reconciliation.
      if (record && err instanceof FencedError) await archiver?.notDeleted(record);
      throw err;
    }
    if (record) {
      if (result === 'conflict') await archiver?.notDeleted(record);
      else await archiver?.deleted(record);
    }
    switch (result) {
      case 'deleted': {
        this.#deleted.set(obj.uid, obj.resourceVersion);
        const lateness = (this.#serverNow() - judgement.expireAtMs!) / 1000;
        this.#o.metrics.deletions.inc({ ...labels, dry_run: 'false' });
        this.#o.metrics.lateness.observe({ kind: metricKind(kind.resource) }, Math.max(0, lateness));
        log.info(
          {
            propagation,
            latenessSeconds: Number(lateness.toFixed(3)),
            ttl: formatDuration(decision.seconds),
            source: decision.source,
          },
          'deleted: TTL expired',
        );
        this.#o.safety?.notify({
          type: 'object.deleted',
          subject: subjectOf(kind.resource, obj),
          data: {
            ...objectData(kind.resource, obj),
            outcome,
            finishedAt: new Date(obj.finish?.atMs ?? 0).toISOString(),
            expiredAt: new Date(judgement.expireAtMs!).toISOString(),
            rule: describeDecision(decision),
            source: decision.source,
            propagation,
          },
        });
        break;
      }
      case 'gone':
        log.debug('already gone');
        break;
      case 'conflict':
        this.#o.metrics.deleteConflicts.inc({ kind: metricKind(kind.resource) });
        log.info('object changed since it was judged (precondition failed): re-judging');
        break;
    }
    return result;
  }
}

/** A notification's subject: `namespaces/NS/PLURAL.GROUP/NAME` (or without the namespace). */
function subjectOf(r: ResourceRef, obj: ObjectSummary): string {
  const res = r.group ? `${r.plural}.${r.group}` : r.plural;
  return obj.namespace ? `namespaces/${obj.namespace}/${res}/${obj.name}` : `${res}/${obj.name}`;
}

function objectData(r: ResourceRef, obj: ObjectSummary): Record<string, unknown> {
  return {
    apiVersion: apiVersionOf(r),
    kind: r.kind,
    ...(obj.namespace ? { namespace: obj.namespace } : {}),
    name: obj.name,
    uid: obj.uid,
  };
}

/** The label that names a built-in kind's pods (src/rules/kinds.ts), for the archive's log capture. */
function podLabelOf(r: ResourceRef): { podLabel?: string } {
  const label = builtinKind(r.group, r.kind)?.podLabel;
  return label ? { podLabel: label } : {};
}

/** A deletion that waits for its archive record (archive: required): the worker retries it with back-off. */
export class ArchivePendingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchivePendingError';
  }
}

/** Field selectors of the two Pod watches (status.phase: Pending, Running, Succeeded, Failed, Unknown). */
const FINISHED_PODS = ['status.phase!=Pending', 'status.phase!=Running', 'status.phase!=Unknown'];
const UNFINISHED_PODS = ['status.phase!=Succeeded', 'status.phase!=Failed'];

function isPods(r: ResourceRef): boolean {
  return r.group === '' && r.kind === 'Pod';
}

function isOwnedByJob(raw: RawObject): boolean {
  const refs = (
    raw.metadata as
      | { ownerReferences?: Array<{ kind?: string; apiVersion?: string; controller?: boolean }> }
      | undefined
  )?.ownerReferences;
  return (
    Array.isArray(refs) &&
    refs.some((r) => r.kind === 'Job' && r.controller === true && String(r.apiVersion).startsWith('batch/'))
  );
}
