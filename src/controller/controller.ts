// The reconcile loop, shaped like upstream's ttlafterfinished controller: watch handlers only
// judge and schedule; an expiry scheduler (one timer for all objects) puts due keys on a work
// queue; workers re-judge the cached object on the API server's clock and delete it with one
// precondition-guarded DELETE. Only the leader deletes; every replica keeps its cache warm.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { ClockSkewEstimator } from '../kube/clock-skew.ts';
import { deleteWithPreconditions } from '../kube/deleter.ts';
import { isApiError, summarizeError } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { KubeHttp } from '../kube/http.ts';
import type { RawObject } from '../kube/objects.ts';
import { objectKey, Reflector } from '../kube/reflector.ts';
import { apiVersionOf, kindKey, objectPath, type ResourceRef } from '../kube/resources.ts';
import { formatDuration } from '../rules/duration.ts';
import { type Judgement, judge } from '../rules/expiry.ts';
import {
  BUILTIN_CHOICE,
  chosenFinish,
  type FinishChoice,
  type FinishRule,
  finishOf,
  hasFixedFinish,
} from '../rules/finish.ts';
import { StringPool, toSummary } from '../rules/summary.ts';
import { describeDecision, resolveTtl } from '../rules/ttl.ts';
import type { ObjectSummary, PolicyTtl, PropagationPolicy, TtlDecision } from '../rules/types.ts';
import { ExpiryScheduler } from './expiry-scheduler.ts';
import type { Metrics } from './metrics.ts';
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
  /** The policy matched to an object (issue 4); none by default. */
  policyFor?: (obj: ObjectSummary) => PolicyTtl | null;
  /** Which finish rule judges an object (a selecting policy's, the built-in, or none: kept). */
  finishChoiceFor?: (obj: ObjectSummary) => FinishChoice;
  /** Whether some policy names Pods: only then are Pods owned by a Job cached and judged. */
  policiesTargetPods?: () => boolean;
  /** Test seam: runs after an object was judged expired and before its DELETE is sent, so tests
   *  can change the object inside that window deliberately (the preconditions must then refuse). */
  beforeDelete?: (obj: ObjectSummary) => Promise<void>;
}

/** What the controller concluded about one object, for logs and tests. */
export interface Verdict {
  decision: TtlDecision;
  judgement: Judgement;
  /** The finish that counted (chosen rule; first-seen time filled in). */
  finish: ObjectSummary['finish'];
}

export class TtlController {
  readonly #o: ControllerOptions;
  readonly #log: Logger;
  readonly #queue: WorkQueue<string>;
  readonly #scheduler: ExpiryScheduler<string>;
  readonly #kinds: WatchedKind[] = [];
  /** Equal strings (namespaces, labels, kinds) shared by all cached objects. */
  readonly #strings = new StringPool();
  /** Per kind index: reflectors (one per included namespace, or one for all). */
  readonly #reflectors: Reflector<ObjectSummary>[][] = [];
  /** Pods and custom resources without a finish time: when we first saw them finished (server clock). */
  readonly #firstSeenFinished = new Map<string, number>();
  /** Objects (uid@resourceVersion) we already warned about, or already dry-run deleted, or deleted. */
  readonly #warned = new Set<string>();
  readonly #dryRunDone = new Set<string>();
  readonly #deleted = new Map<string, string>();
  #workers: Promise<void>[] = [];
  #started = false;
  #stopped = false;

  constructor(o: ControllerOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#queue = new WorkQueue<string>({ clock: o.clock });
    // Due times are on the API server's clock (as conservatively estimated): when the estimate
    // moves, the one armed timer is re-armed, so a start with a wide first estimate is not late.
    const serverClock: Clock = {
      now: () => this.#serverNow(),
      setTimer: (fn, delayMs) => o.clock.setTimer(fn, delayMs),
      clearTimer: (handle) => o.clock.clearTimer(handle),
    };
    this.#scheduler = new ExpiryScheduler<string>({
      clock: serverClock,
      onDue: (key) => this.#queue.add(key),
      onError: (err) => this.#log.error({ err: summarizeError(err) }, 'scheduler callback failed'),
    });
    o.skew.onLowBoundChange(() => this.#scheduler.rearm());
    for (const kind of o.kinds) this.addKind(kind);
  }

  /** Starts watching another kind (e.g. a custom resource named by a policy); returns its index. */
  addKind(kind: WatchedKind): number {
    const kindIndex = this.#kinds.length;
    this.#kinds.push(kind);
    this.#reflectors[kindIndex] = this.#makeReflectors(kindIndex);
    if (this.#started && !this.#stopped) for (const r of this.#reflectors[kindIndex]) r.start();
    return kindIndex;
  }

  /** The index of a watched kind, by API group and kind. */
  kindIndexOf(group: string, kind: string): number {
    return this.#kinds.findIndex((k) => k.resource.group === group && k.resource.kind === kind);
  }

  get kinds(): readonly WatchedKind[] {
    return this.#kinds;
  }

  /**
   * Re-reads a kind from scratch (new list): its finish rule changed, or which of its objects are
   * worth caching changed (Job-owned Pods when a policy starts or stops targeting Pods).
   */
  async restartKind(
    kindIndex: number,
    finishRules?: ReadonlyArray<{ key: string; rule: FinishRule }>,
  ): Promise<void> {
    const kind = this.#kinds[kindIndex];
    if (!kind) return;
    if (finishRules !== undefined) this.#kinds[kindIndex] = { ...kind, finishRules };
    const old = this.#reflectors[kindIndex] ?? [];
    this.#reflectors[kindIndex] = this.#makeReflectors(kindIndex);
    await Promise.all(old.map((r) => r.stop()));
    if (this.#started && !this.#stopped) for (const r of this.#reflectors[kindIndex]) r.start();
  }

  #makeReflectors(kindIndex: number): Reflector<ObjectSummary>[] {
    const o = this.#o;
    const kind = this.#kinds[kindIndex]!;
    const scopes =
      o.namespaces.include.length > 0 && kind.resource.namespaced ? [...o.namespaces.include] : [undefined];
    const fieldSelector =
      o.namespaces.include.length === 0 && kind.resource.namespaced && o.namespaces.exclude.length > 0
        ? o.namespaces.exclude.map((ns) => `metadata.namespace!=${ns}`).join(',')
        : undefined;
    return scopes.map(
      (namespace) =>
        new Reflector<ObjectSummary>({
          http: o.http,
          resource: kind.resource,
          namespace,
          fieldSelector,
          clock: o.clock,
          logger: o.logger.child({ kind: kindKey(kind.resource), ...(namespace ? { namespace } : {}) }),
          resyncMs: o.resyncMs,
          transform: (raw) => this.#ingest(this.#kinds[kindIndex]!, raw),
          handler: {
            upsert: (key, obj) => this.#onUpsert(kindIndex, key, obj),
            remove: (key, old) => this.#onRemove(kindIndex, key, old),
            listed: () => this.#updateTracked(kindIndex),
          },
        }),
    );
  }

  /** True once every watch has listed. */
  get synced(): boolean {
    // Only the kinds given at start (Jobs, Pods) gate readiness: a custom kind found later, or one
    // the RBAC role does not grant, is reported in the log and must not hold a rollout forever.
    return this.#reflectors.slice(0, this.#o.kinds.length).every((rs) => rs.every((r) => r.hasSynced));
  }

  async waitForSync(): Promise<void> {
    await Promise.all(
      this.#reflectors
        .slice(0, this.#o.kinds.length)
        .flat()
        .map((r) => r.synced),
    );
  }

  /**
   * The API server answers again after an outage: retry the deletions that failed during it and
   * end the watches' back-off waits now, instead of waiting out back-offs that grew as long as the
   * outage. Returns how many keys were retried.
   */
  apiRecovered(): number {
    if (this.#stopped) return 0;
    for (const r of this.#reflectors.flat()) r.retryNow();
    const n = this.#queue.retryBackedOffNow();
    if (n > 0) this.#log.info({ retried: n }, 'API server answers again: retrying failed deletions now');
    return n;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const r of this.#reflectors.flat()) r.start();
    for (let i = 0; i < this.#o.workers; i++) this.#workers.push(this.#worker());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#scheduler.stop();
    this.#queue.shutDown();
    await Promise.all(this.#reflectors.flat().map((r) => r.stop()));
    await Promise.all(this.#workers);
    await this.#o.events.flush();
  }

  /** Re-judges everything in the caches (e.g. on becoming leader, or when policies change). */
  rejudgeAll(): void {
    this.#reflectors.forEach((rs, kindIndex) => {
      for (const reflector of rs)
        for (const [key, obj] of reflector.store) this.#onUpsert(kindIndex, key, obj);
    });
  }

  /** Visits every cached object (for policy status counts). */
  forEachObject(cb: (obj: ObjectSummary) => void): void {
    for (const rs of this.#reflectors) for (const r of rs) for (const obj of r.store.values()) cb(obj);
  }

  /** Number of objects cached per kind (kttl_tracked_objects). */
  trackedCount(kindIndex: number): number {
    return (this.#reflectors[kindIndex] ?? []).reduce((n, r) => n + r.store.size, 0);
  }

  /** For tests and `explain`: the verdict on a cached object right now. */
  verdictFor(kindIndex: number, namespace: string, name: string): Verdict | undefined {
    const obj = this.#reflectorFor(kindIndex, namespace)?.store.get(objectKey(namespace, name));
    return obj ? this.#evaluate(this.#kinds[kindIndex]!, obj) : undefined;
  }

  reflectorStats(): Array<Reflector<ObjectSummary>['stats']> {
    return this.#reflectors.flat().map((r) => r.stats);
  }

  #reflectorFor(kindIndex: number, namespace: string): Reflector<ObjectSummary> | undefined {
    const rs = this.#reflectors[kindIndex] ?? [];
    if (rs.length === 1) return rs[0];
    const i = this.#o.namespaces.include.indexOf(namespace);
    return i >= 0 ? rs[i] : undefined;
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
    const summary = toSummary(raw, finishOf(raw, null, type), type, this.#strings);
    if (kind.finishRules && kind.finishRules.length > 0) {
      const byRule: Record<string, ObjectSummary['finish']> = Object.create(null);
      for (const { key, rule } of kind.finishRules) {
        const f = finishOf(raw, rule, type);
        byRule[this.#strings.intern(key)] = f && { ...f, reason: this.#strings.intern(f.reason) };
      }
      summary.finishes = byRule;
    }
    return summary;
  }

  #serverNow(): number {
    return this.#o.skew.serverNowForExpiry(this.#o.clock.now());
  }

  #evaluate(kind: WatchedKind, objIn: ObjectSummary): Verdict {
    const now = this.#serverNow();
    // Jobs and Pods finish by fixed rules; a custom kind by the rule chosen for this very object.
    const choice = hasFixedFinish(kind.resource.group, kind.resource.kind)
      ? BUILTIN_CHOICE
      : (this.#o.finishChoiceFor?.(objIn) ?? BUILTIN_CHOICE);
    const chosen = chosenFinish(objIn.finish, objIn.finishes, choice);
    const obj = chosen.finish === objIn.finish ? objIn : { ...objIn, finish: chosen.finish };
    if (!obj.finish) {
      // Not finished (again): a later finish is judged from then, never from an earlier one.
      this.#firstSeenFinished.delete(obj.uid);
      if (
        chosen.blocked !== undefined &&
        choice.kind === 'conflict' &&
        Object.values(objIn.finishes ?? {}).some((f) => f !== null)
      )
        this.#warnFinishConflict(kind, obj, chosen.blocked);
      return {
        decision: {
          action: 'none',
          source: 'none',
          detail: chosen.blocked === undefined ? 'not finished' : `kept: ${chosen.blocked}`,
        },
        judgement: { state: 'not-finished' },
        finish: null,
      };
    }
    const policy = this.#o.policyFor?.(obj) ?? null;
    if (
      obj.kind === 'Pod' &&
      obj.apiVersion === 'v1' &&
      !policy &&
      obj.owners.some((r) => r.kind === 'Job' && r.controller)
    ) {
      return {
        decision: {
          action: 'none',
          source: 'none',
          detail: 'a Pod of a Job: deleted with its Job (no policy names Pods)',
        },
        judgement: { state: 'no-ttl' },
        finish: obj.finish,
      };
    }
    let decision = resolveTtl(obj, obj.finish.outcome, { policy, helmHooks: this.#o.helmHooks });
    if (
      decision.action === 'ttl' &&
      decision.source === 'field' &&
      this.#o.nativeJobs === 'leave' &&
      kind.resource.kind === 'Job'
    ) {
      decision = {
        action: 'none',
        source: 'none',
        detail: 'left to the native ttl-after-finished controller (--native-jobs=leave)',
      };
    }
    let judged = obj;
    if (obj.finish.atMs === null && obj.finish.timeSource === 'firstSeen') {
      // No finish time on the object: count from when we first saw it finished.
      let seen = this.#firstSeenFinished.get(obj.uid);
      if (seen === undefined) {
        seen = now;
        this.#firstSeenFinished.set(obj.uid, seen);
      }
      judged = { ...obj, finish: { ...obj.finish, atMs: seen } };
    }
    return { decision, judgement: judge(judged, decision, now), finish: judged.finish };
  }

  #queueKey(kindIndex: number, key: string): string {
    return `${kindIndex}|${key}`;
  }

  #onUpsert(kindIndex: number, key: string, obj: ObjectSummary): void {
    const kind = this.#kinds[kindIndex]!;
    const qkey = this.#queueKey(kindIndex, key);
    const { decision, judgement } = this.#evaluate(kind, obj);
    switch (judgement.state) {
      case 'pending':
      case 'expired':
        // Due when the server clock (as we conservatively estimate it) reaches expireAt.
        this.#scheduler.schedule(qkey, judgement.expireAtMs!);
        break;
      case 'invalid':
        this.#scheduler.cancel(qkey);
        if (decision.action === 'invalid') this.#warnInvalid(kind, obj, decision);
        break;
      case 'no-finish-time':
        this.#scheduler.cancel(qkey);
        this.#warnOnce(obj, 'no-finish-time', () =>
          this.#log.warn(
            { object: `${obj.namespace}/${obj.name}`, uid: obj.uid },
            'finished, but its condition has no lastTransitionTime: kept (as upstream)',
          ),
        );
        break;
      default:
        this.#scheduler.cancel(qkey);
    }
    this.#updateTracked(kindIndex);
  }

  #onRemove(kindIndex: number, key: string, old: ObjectSummary): void {
    this.#scheduler.cancel(this.#queueKey(kindIndex, key));
    this.#firstSeenFinished.delete(old.uid);
    this.#deleted.delete(old.uid);
    this.#updateTracked(kindIndex);
  }

  #updateTracked(kindIndex: number): void {
    const kind = this.#kinds[kindIndex];
    if (kind) this.#o.metrics.tracked.set({ kind: kind.resource.kind }, this.trackedCount(kindIndex));
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
      this.#o.metrics.invalidTtl.inc({ kind: kind.resource.kind });
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

  async #worker(): Promise<void> {
    for (;;) {
      const qkey = await this.#queue.get();
      if (qkey === undefined) return;
      try {
        await this.#process(qkey);
        this.#queue.forget(qkey);
      } catch (err) {
        this.#log.warn(
          { key: qkey, err: summarizeError(err), retries: this.#queue.numRequeues(qkey) },
          'processing failed; will retry',
        );
        this.#queue.addRateLimited(qkey);
      } finally {
        this.#queue.done(qkey);
      }
    }
  }

  async #process(qkey: string): Promise<void> {
    const bar = qkey.indexOf('|');
    const kindIndex = Number(qkey.slice(0, bar));
    const key = qkey.slice(bar + 1);
    const kind = this.#kinds[kindIndex];
    if (!kind) return;
    const slash = key.indexOf('/');
    const namespace = kind.resource.namespaced ? key.slice(0, slash) : '';
    const reflector = this.#reflectorFor(kindIndex, namespace);
    const obj = reflector?.store.get(key);
    if (!obj || !reflector) return;
    let current = obj;
    // At most a few rounds: a 409 means the object changed; judge the fresh copy and try again.
    for (let round = 0; round < 3; round++) {
      const { decision, judgement, finish } = this.#evaluate(kind, current);
      if (judgement.state === 'pending') {
        this.#scheduler.schedule(qkey, judgement.expireAtMs!);
        return;
      }
      if (judgement.state !== 'expired' || decision.action !== 'ttl') return;
      if (!this.#o.isLeader()) return; // the leader deletes; we re-judge everything if we become leader
      if (this.#deleted.get(current.uid) === current.resourceVersion) return; // already sent this exact delete
      const outcome = await this.#delete(kind, { ...current, finish }, decision, judgement);
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
  ): Promise<'deleted' | 'gone' | 'conflict' | 'dry-run'> {
    const outcome = obj.finish?.outcome ?? 'succeeded';
    const labels = { kind: kind.resource.kind, outcome, source: decision.source };
    const log = this.#log.child({
      kind: kind.resource.kind,
      namespace: obj.namespace,
      name: obj.name,
      uid: obj.uid,
    });
    const why = `finished (${outcome}) at ${new Date(obj.finish?.atMs ?? 0).toISOString()}; ${describeDecision(decision)}; expired at ${new Date(judgement.expireAtMs!).toISOString()}`;
    if (this.#o.dryRun || decision.dryRun) {
      const k = `${obj.uid}@${obj.resourceVersion}`;
      if (this.#dryRunDone.has(k)) return 'dry-run';
      this.#dryRunDone.add(k);
      this.#o.metrics.deletions.inc({ ...labels, dry_run: 'true' });
      log.info({ dryRun: true }, `would delete: ${why}`);
      return 'dry-run';
    }
    const propagation = decision.propagationPolicy ?? this.#o.propagationPolicy ?? kind.defaultPropagation;
    // Leadership may have ended while this worker waited: no "Deleting" Event for a DELETE that the
    // fence (src/kube/http.ts) will refuse to send.
    if (!this.#o.isLeader()) return 'gone';
    this.#o.events.record(
      this.#target(kind, obj),
      'Normal',
      'TTLExpired',
      `Deleting (${propagation}): ${why}`,
    );
    await this.#o.beforeDelete?.(obj);
    const result = await deleteWithPreconditions(this.#o.http, kind.resource, obj, propagation, () =>
      this.#o.isLeader(),
    );
    switch (result) {
      case 'deleted': {
        this.#deleted.set(obj.uid, obj.resourceVersion);
        const lateness = (this.#serverNow() - judgement.expireAtMs!) / 1000;
        this.#o.metrics.deletions.inc({ ...labels, dry_run: 'false' });
        this.#o.metrics.lateness.observe({ kind: kind.resource.kind }, Math.max(0, lateness));
        log.info(
          {
            propagation,
            latenessSeconds: Number(lateness.toFixed(3)),
            ttl: formatDuration(decision.seconds),
            source: decision.source,
          },
          'deleted: TTL expired',
        );
        break;
      }
      case 'gone':
        log.debug('already gone');
        break;
      case 'conflict':
        this.#o.metrics.deleteConflicts.inc({ kind: kind.resource.kind });
        log.info('object changed since it was judged (precondition failed): re-judging');
        break;
    }
    return result;
  }
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
