// The controller's view of TTLPolicy / ClusterTTLPolicy objects and of namespace labels (for
// namespaceSelector), kept by list+watch reflectors. Policies are parsed once on arrival; lookups
// (policyFor, explain) are pure and synchronous over the cache.
//
// The policy CRDs are optional: when listing a kind answers 404 the kind is "off" (logged once,
// counted) and probed again every 30 s, so CRDs installed later are picked up without a restart;
// CRDs removed while running are noticed the same way and their policies dropped.
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.ts';
import { isApiError, summarizeError } from '../kube/errors.ts';
import type { KubeHttp } from '../kube/http.ts';
import type { RawObject } from '../kube/objects.ts';
import { Reflector } from '../kube/reflector.ts';
import { collectionPath, objectPath, type ResourceRef } from '../kube/resources.ts';
import { type FinishChoice, type FinishRule, groupOf } from '../rules/finish.ts';
import type { ObjectSummary, PolicyTtl } from '../rules/types.ts';
import {
  chooseFinishRule,
  choosePolicy,
  comparePolicies,
  finishRulesOf,
  mismatch,
  type Ranking,
  selection,
  toPolicyTtl,
} from './match.ts';
import {
  POLICY_GROUP,
  POLICY_VERSION,
  type Policy,
  type PolicyKind,
  type PolicyParseResult,
  parsePolicy,
  policyRef,
} from './schema.ts';
import { isEmptySelector } from './selectors.ts';

export const TTL_POLICIES: ResourceRef = {
  group: POLICY_GROUP,
  version: POLICY_VERSION,
  kind: 'TTLPolicy',
  plural: 'ttlpolicies',
  namespaced: true,
};
export const CLUSTER_TTL_POLICIES: ResourceRef = {
  group: POLICY_GROUP,
  version: POLICY_VERSION,
  kind: 'ClusterTTLPolicy',
  plural: 'clusterttlpolicies',
  namespaced: false,
};
export const NAMESPACES: ResourceRef = {
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  namespaced: false,
};

/** The status condition kttl writes: True when the policy parses, False with the errors otherwise. */
export const VALID_CONDITION = 'Valid';

export interface PolicyStoreOptions {
  http: KubeHttp;
  clock: Clock;
  logger: Logger;
  /** onChange fires this long after the last change of a burst (default 100 ms)… */
  debounceMs?: number;
  /** …but no later than this after its first change (default 1 s), so a steady stream still fires. */
  maxDelayMs?: number;
  /** How often a missing policy CRD is probed again (default 30 s). */
  discoveryIntervalMs?: number;
  /** Called each time a policy kind is found not installed (for a metric). */
  onCrdMissing?: (kind: PolicyKind) => void;
  /** Passed to the reflectors (tests use short watches). */
  minWatchTimeoutSeconds?: number;
}

/** What changed, for onChange listeners: re-judge everything, or only objects in these namespaces. */
export interface PolicyChange {
  /** A policy was added, changed (spec) or removed, or a policy kind appeared or vanished. */
  policies: boolean;
  /** Namespaces whose labels changed (or that appeared/vanished) while a namespaceSelector is in use. */
  namespaces: string[];
}

export interface PolicyExplanation extends Ranking {
  /** Set when no policy may decide for the object now (policies not known, a gap): it is kept. */
  held?: string;
  /** Policies that name the object's kind but do not select it, and why. */
  notMatching: Array<{ policy: Policy; reason: string }>;
  /** Invalid policies that name the object's kind and are ignored (they cannot be matched safely). */
  ignored: Array<{ ref: string; errors: string[] }>;
}

interface RawStatus {
  observedGeneration?: unknown;
  matchedObjects?: unknown;
  errors?: unknown;
  conditions?: unknown;
}

/** One policy object in the cache. */
interface Entry {
  ref: string;
  kind: PolicyKind;
  resource: ResourceRef;
  namespace: string;
  name: string;
  uid: string;
  /** Of the object as last seen (watch, or our own status write): the status patch precondition. */
  resourceVersion: string;
  generation: number;
  result: PolicyParseResult;
  /** The policy that takes part in matching: the valid one, or the holding one (bad TTL values only). */
  usable: Policy | null;
  /** Kinds (group/Kind) named by the raw object, even when invalid: for explain and stand-ins. */
  kinds: string[];
  /** spec.priority read leniently (unreadable: the highest, so an ignored policy holds, never yields). */
  priority: number;
  /** Spec identity: equal fingerprints mean nothing a lookup depends on changed (status edits). */
  fingerprint: string;
  status: RawStatus;
}

interface KindState {
  resource: ResourceRef;
  kind: PolicyKind;
  state: 'unknown' | 'missing' | 'watching';
  reflector: Reflector<Entry> | null;
  /** reflector.stats.errors when last checked: a new error makes the probe check the CRD again. */
  errorsSeen: number;
  settled: boolean;
  /** Why this kind's policies cannot be trusted right now (a 404 not yet confirmed, probe errors). */
  uncertain: string | null;
  /** Consecutive 404 answers, and when the first came: a CRD counts as gone only when both are large. */
  notFound: number;
  notFoundSinceMs: number;
}

/** A policy kind answering 404 is gone only after this many answers over at least this long. */
const NOT_FOUND_CONFIRMATIONS = 3;
const NOT_FOUND_CONFIRM_MS = 15_000;
/** While uncertain, probe this often. */
const UNCERTAIN_PROBE_MS = 2_000;

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_MAX_DELAY_MS = 1000;
const DEFAULT_DISCOVERY_MS = 30_000;
/** First retry after a probe error other than 404 (doubling up to discoveryIntervalMs). */
const PROBE_BACKOFF_START_MS = 1000;
const MAX_CONDITION_MESSAGE = 32_768;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameStrings(a: readonly unknown[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Only string label values, in an object without a prototype (a label named `constructor` is data). */
function cleanLabels(raw: unknown): Readonly<Record<string, string>> {
  const out: Record<string, string> = Object.create(null);
  if (isObj(raw)) for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') out[k] = v;
  return Object.freeze(out);
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/** The group/Kind keys a raw policy names, read leniently (for explain of invalid policies). */
function rawKinds(raw: RawObject): string[] {
  const spec = raw.spec;
  const resources = isObj(spec) ? spec.resources : undefined;
  if (!Array.isArray(resources)) return [];
  const out: string[] = [];
  for (const r of resources) {
    if (isObj(r) && typeof r.apiVersion === 'string' && typeof r.kind === 'string') {
      out.push(`${groupOf(r.apiVersion)}/${r.kind}`);
    }
  }
  return out;
}

function rawPriority(raw: RawObject): number {
  const p = isObj(raw.spec) ? raw.spec.priority : undefined;
  if (p === undefined || p === null) return 0;
  return typeof p === 'number' && Number.isSafeInteger(p) ? p : Number.MAX_SAFE_INTEGER;
}

export class PolicyStore {
  readonly #o: Required<Omit<PolicyStoreOptions, 'onCrdMissing' | 'minWatchTimeoutSeconds'>> &
    Pick<PolicyStoreOptions, 'onCrdMissing' | 'minWatchTimeoutSeconds'>;
  readonly #log: Logger;
  /** Policy entries by ref, across both kinds. */
  readonly #entries = new Map<string, Entry>();
  readonly #namespaces: Reflector<Readonly<Record<string, string>>>;
  readonly #kinds: KindState[];
  readonly #listeners: Array<(change: PolicyChange) => void> = [];
  /**
   * Usable policies grouped by `group/Kind`, each list in specificity order, with a stand-in for
   * each ignored (invalid) policy that names the kind (it holds what it might select); rebuilt on change.
   */
  #index: Map<string, Policy[]> | null = null;
  /** Stand-ins for ignored policies whose kinds cannot be told: they hold every kind in their scope. */
  #anyKind: Policy[] = [];
  /** Whether policies were known at the last check (a flip re-judges everything). */
  #wasKnown = false;
  #all: readonly Policy[] | null = null;
  #usesNamespaceSelector = false;
  #pending: { policies: boolean; namespaces: Set<string>; firstMs: number } | null = null;
  #debounce: TimerHandle | undefined;
  #probeTimer: TimerHandle | undefined;
  #probeWake: (() => void) | undefined;
  #probing: Promise<void> | undefined;
  /** Aborts an in-flight probe on stop (it may otherwise wait for its 30 s timeout). */
  readonly #abort = new AbortController();
  #stopped = false;
  #started = false;
  /** Kinds whose absence was logged: each absence is logged once, not at every probe. */
  readonly #missingLogged = new Set<PolicyKind>();
  /** Serializes status writes per policy, so equal concurrent calls send one PATCH. */
  readonly #statusChains = new Map<string, Promise<unknown>>();
  #syncedResolve!: () => void;
  /** Resolves when namespaces are listed and each policy kind is either listed or known missing. */
  readonly synced: Promise<void>;
  readonly stats = { crdMissing: 0, statusPatches: 0, statusSkipped: 0, statusConflicts: 0, changes: 0 };

  constructor(o: PolicyStoreOptions) {
    this.#o = {
      debounceMs: DEFAULT_DEBOUNCE_MS,
      maxDelayMs: DEFAULT_MAX_DELAY_MS,
      discoveryIntervalMs: DEFAULT_DISCOVERY_MS,
      ...o,
    };
    this.#log = o.logger;
    this.synced = new Promise((r) => {
      this.#syncedResolve = r;
    });
    this.#kinds = [
      { resource: TTL_POLICIES, kind: 'TTLPolicy' },
      { resource: CLUSTER_TTL_POLICIES, kind: 'ClusterTTLPolicy' },
    ].map((k) => ({
      ...k,
      kind: k.kind as PolicyKind,
      state: 'unknown',
      reflector: null,
      errorsSeen: 0,
      settled: false,
      uncertain: null,
      notFound: 0,
      notFoundSinceMs: 0,
    }));
    this.#namespaces = new Reflector({
      http: o.http,
      resource: NAMESPACES,
      clock: o.clock,
      logger: o.logger.child({ kind: 'Namespace' }),
      ...(o.minWatchTimeoutSeconds ? { minWatchTimeoutSeconds: o.minWatchTimeoutSeconds } : {}),
      transform: (raw) => cleanLabels(raw.metadata?.labels),
      handler: {
        upsert: (key, labels, old) => {
          if (old === undefined || !sameLabels(old, labels)) this.#namespaceChanged(key);
        },
        remove: (key) => this.#namespaceChanged(key),
      },
    });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#namespaces.start();
    void this.#namespaces.synced.then(() => this.#checkSynced());
    // Never an unhandled rejection: a bug in discovery must not take the controller down.
    this.#probing = this.#probeLoop().catch((err) =>
      this.#log.error({ err: summarizeError(err) }, 'policy CRD discovery stopped'),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#probeWake?.();
    if (this.#probeTimer) this.#o.clock.clearTimer(this.#probeTimer);
    if (this.#debounce) this.#o.clock.clearTimer(this.#debounce);
    await this.#probing;
    await Promise.all([this.#namespaces.stop(), ...this.#kinds.map((k) => k.reflector?.stop())]);
  }

  /** Registers a listener, called (debounced) after any policy or relevant namespace-label change. */
  onChange(cb: (change: PolicyChange) => void): () => void {
    this.#listeners.push(cb);
    return () => {
      const i = this.#listeners.indexOf(cb);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** Every usable policy (valid, or holding), in specificity order. */
  policies(): readonly Policy[] {
    this.#rebuild();
    return this.#all!;
  }

  /** The labels of a namespace, or undefined when it is not (yet) in the cache. */
  namespaceLabels(ns: string): Readonly<Record<string, string>> | undefined {
    return this.#namespaces.store.get(ns);
  }

  /** Invalid policies and their errors (the holding ones included: they are invalid too). */
  invalid(): Array<{ ref: string; errors: string[] }> {
    const out: Array<{ ref: string; errors: string[] }> = [];
    for (const e of this.#entries.values())
      if (!e.result.ok) out.push({ ref: e.ref, errors: e.result.errors });
    return out.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  }

  /** Parse errors of one policy (empty when valid, undefined when unknown). */
  errorsOf(ref: string): string[] | undefined {
    const e = this.#entries.get(ref);
    return e === undefined ? undefined : e.result.ok ? [] : e.result.errors;
  }

  /**
   * Why no policy may decide anything now, or null when the policies are known: until both kinds
   * and the namespaces are listed, and while a kind's CRD answers 404 unconfirmed or cannot be
   * read, a missing policy could be the one that should win (docs/decisions.md, "Policy gaps keep").
   */
  unknownReason(): string | null {
    if (!this.#namespaces.hasSynced) return 'namespaces are not listed yet';
    for (const k of this.#kinds) {
      if (!k.settled) return `${k.resource.plural}.${k.resource.group} are not listed yet`;
      if (k.uncertain !== null) return `${k.resource.plural}.${k.resource.group} ${k.uncertain}`;
    }
    return null;
  }

  /** The winning policy for an object, as resolveTtl wants it; null when no policy selects it. */
  policyFor(obj: ObjectSummary): PolicyTtl | null {
    const w = this.#decide(obj);
    if (w === null) return null;
    if ('hold' in w) return { ref: w.ref, hold: w.hold };
    return toPolicyTtl(w.policy);
  }

  /** The winning policy itself (status counts); null when none, or when the object is held. */
  winnerFor(obj: ObjectSummary): Policy | null {
    const w = this.#decide(obj);
    return w !== null && 'policy' in w ? w.policy : null;
  }

  /** The candidates for an object's kind, in specificity order (stand-ins of ignored ones included). */
  #candidates(obj: Pick<ObjectSummary, 'apiVersion' | 'kind'>): readonly Policy[] {
    this.#rebuild();
    return this.#index!.get(`${groupOf(obj.apiVersion)}/${obj.kind}`) ?? this.#anyKind;
  }

  #decide(obj: ObjectSummary): { policy: Policy } | { hold: string; ref: string } | null {
    const unknown = this.unknownReason();
    if (unknown !== null) return { hold: `policies not known yet: ${unknown}`, ref: '(policies)' };
    const ns = (n: string) => this.namespaceLabels(n);
    // Specificity order: the first that selects the object decides. One that might select it — an
    // unknown namespace, an ignored policy in scope — holds it: nothing weaker may decide instead.
    for (const p of this.#candidates(obj)) {
      const s = selection(obj, p, ns);
      if (s.state === 'no') continue;
      if (s.state === 'unknown') return { hold: `${p.ref} may select it: ${s.reason}`, ref: p.ref };
      if (p.blocking)
        return { hold: `${p.ref} is invalid and may select it (${p.blocking.join('; ')})`, ref: p.ref };
      return { policy: p };
    }
    return null;
  }

  /** The ranking behind policyFor, with the policies that did not match and why (`kttl explain`). */
  explain(obj: ObjectSummary): PolicyExplanation {
    this.#rebuild();
    const key = `${groupOf(obj.apiVersion)}/${obj.kind}`;
    const ns = (n: string) => this.namespaceLabels(n);
    const matched: Policy[] = [];
    const notMatching: Array<{ policy: Policy; reason: string }> = [];
    for (const p of this.#candidates(obj)) {
      if (p.blocking) continue; // reported as ignored below
      const why = mismatch(obj, p, ns);
      if (why === null) matched.push(p);
      else notMatching.push({ policy: p, reason: why });
    }
    const ignored: Array<{ ref: string; errors: string[] }> = [];
    for (const e of this.#entries.values()) {
      if (e.usable === null && !e.result.ok && e.kinds.includes(key)) {
        ignored.push({ ref: e.ref, errors: e.result.errors });
      }
    }
    const decided = this.#decide(obj);
    const ranking = choosePolicy(matched);
    if (decided !== null && 'hold' in decided)
      return { ...ranking, winner: null, notMatching, ignored, held: decided.hold };
    return { ...ranking, notMatching, ignored };
  }

  /** The distinct finish rules policies give a kind (each object is evaluated under all of them). */
  finishRulesOf(apiVersion: string, kind: string): Array<{ key: string; rule: FinishRule }> {
    return finishRulesOf(
      apiVersion,
      kind,
      this.#candidates({ apiVersion, kind }).filter((p) => !p.blocking),
    );
  }

  /** Which finish rule judges this object: a selecting policy's, the built-in, or none (kept). */
  finishChoiceFor(obj: ObjectSummary): FinishChoice {
    const unknown = this.unknownReason();
    if (unknown !== null) return { kind: 'unknown', reason: `policies not known yet: ${unknown}` };
    const ns = (n: string) => this.namespaceLabels(n);
    return chooseFinishRule(
      obj,
      this.#candidates(obj).filter((p) => !p.blocking),
      ns,
    );
  }

  /**
   * Writes status.matchedObjects, status.errors, observedGeneration and the Valid condition through
   * the status subresource (JSON merge patch), only when something differs from the cached status.
   * `errors` defaults to the policy's parse errors. Resolves true when a PATCH was sent and accepted;
   * false when nothing changed, the policy is not known, or it was deleted or replaced meanwhile
   * (the patch carries the cached resourceVersion as a precondition; on a conflict the object is
   * read again and, if it is the same one, the write retried once). Other API errors reject.
   */
  updateStatus(ref: string, s: { matchedObjects: number; errors?: readonly string[] }): Promise<boolean> {
    const prev = this.#statusChains.get(ref) ?? Promise.resolve();
    const run = () => this.#writeStatus(ref, s.matchedObjects, s.errors ?? this.errorsOf(ref) ?? []);
    // One write at a time per policy: the second of two equal calls sees the first one's result.
    const next = prev.then(run, run);
    this.#statusChains.set(ref, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.#statusChains.get(ref) === next) this.#statusChains.delete(ref);
      });
    return next;
  }

  async #writeStatus(ref: string, matchedObjects: number, errorList: readonly string[]): Promise<boolean> {
    const e = this.#entries.get(ref);
    if (!e) return false;
    const errors = [...errorList];
    const valid = errors.length === 0;
    const status = valid ? 'True' : 'False';
    const reason = valid ? 'Valid' : 'InvalidSpec';
    const message = (valid ? 'the policy is valid' : errors.join('; ')).slice(0, MAX_CONDITION_MESSAGE);
    const objPath = objectPath(e.resource, e.namespace, e.name);
    const path = `${objPath}/status`;
    // Two attempts: the cached resourceVersion may be behind (a write the watch has not shown yet).
    for (let attempt = 1; ; attempt++) {
      const cur = e.status;
      const conditions = Array.isArray(cur.conditions) ? cur.conditions : [];
      const existing = conditions.find((c) => isObj(c) && c.type === VALID_CONDITION) as
        | Record<string, unknown>
        | undefined;
      const unchanged =
        cur.observedGeneration === e.generation &&
        cur.matchedObjects === matchedObjects &&
        sameStrings(Array.isArray(cur.errors) ? cur.errors : undefined, errors) &&
        existing?.status === status &&
        existing.reason === reason &&
        existing.message === message &&
        existing.observedGeneration === e.generation;
      if (unchanged) {
        this.stats.statusSkipped++;
        return false;
      }
      const condition = {
        type: VALID_CONDITION,
        status,
        reason,
        message,
        observedGeneration: e.generation,
        // As metav1.Condition: the time changes only when the status flips.
        lastTransitionTime:
          existing?.status === status && typeof existing.lastTransitionTime === 'string'
            ? existing.lastTransitionTime
            : new Date(this.#o.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      };
      const body = {
        // resourceVersion is a precondition (409 when the object changed since it was cached). It
        // also keeps a policy deleted and recreated under the same name from getting the old one's
        // status: the API server ignores metadata.uid in a status patch, but never reuses a version.
        metadata: { resourceVersion: e.resourceVersion },
        status: {
          observedGeneration: e.generation,
          matchedObjects,
          errors,
          conditions: [...conditions.filter((c) => !(isObj(c) && c.type === VALID_CONDITION)), condition],
        },
      };
      try {
        const updated = await this.#o.http.request<RawObject>('patch', 'PATCH', path, {
          body,
          contentType: 'application/merge-patch+json',
          timeoutMs: 30_000,
        });
        this.stats.statusPatches++;
        // The answer is the object as stored: cache it now, so an equal call before the watch event
        // arrives is a no-op.
        this.#adopt(e, updated);
        return true;
      } catch (err) {
        if (isApiError(err, 404)) return false; // deleted meanwhile
        if (!isApiError(err, 409)) throw err;
        this.stats.statusConflicts++;
        if (attempt > 1) {
          this.#log.debug({ ref }, 'policy status not written: the policy keeps changing; next pass');
          return false;
        }
        // Stale cache: read the object; the same object (uid) is retried once, a new one is not ours.
        let fresh: RawObject;
        try {
          fresh = await this.#o.http.request<RawObject>('get', 'GET', objPath, { timeoutMs: 30_000 });
        } catch (getErr) {
          if (isApiError(getErr, 404)) return false;
          throw getErr;
        }
        if (fresh.metadata?.uid !== e.uid) return false;
        this.#adopt(e, fresh);
      }
    }
  }

  /** Takes status and resourceVersion from an object just read or written (same uid only). */
  #adopt(e: Entry, raw: RawObject | undefined): void {
    if (raw?.metadata?.uid !== e.uid) return;
    if (isObj(raw.status)) e.status = raw.status as RawStatus;
    if (typeof raw.metadata.resourceVersion === 'string') e.resourceVersion = raw.metadata.resourceVersion;
  }

  // --- cache maintenance -------------------------------------------------------------------------

  #toEntry(k: KindState, raw: RawObject): Entry | null {
    const name = raw.metadata?.name;
    if (typeof name !== 'string' || name === '') return null;
    const namespace = typeof raw.metadata?.namespace === 'string' ? raw.metadata.namespace : '';
    const result = parsePolicy(raw, k.kind);
    const usable = result.ok ? result.policy : (result.holding ?? null);
    const ref = policyRef(k.kind, namespace, name);
    const generation = typeof raw.metadata?.generation === 'number' ? raw.metadata.generation : 0;
    return {
      ref,
      kind: k.kind,
      resource: k.resource,
      namespace,
      name,
      uid: typeof raw.metadata?.uid === 'string' ? raw.metadata.uid : '',
      resourceVersion: typeof raw.metadata?.resourceVersion === 'string' ? raw.metadata.resourceVersion : '',
      generation,
      result,
      usable,
      kinds: rawKinds(raw),
      priority: rawPriority(raw),
      fingerprint: JSON.stringify([generation, result]),
      status: isObj(raw.status) ? (raw.status as RawStatus) : {},
    };
  }

  #upsert(e: Entry, old: Entry | undefined): void {
    this.#entries.set(e.ref, e);
    if (old !== undefined && old.fingerprint === e.fingerprint && old.uid === e.uid) return; // status-only
    if (!e.result.ok) {
      this.#log.warn(
        { policy: e.ref, errors: e.result.errors, holding: e.usable !== null },
        e.usable
          ? 'invalid policy: its TTL values cannot be used; objects it selects are kept'
          : 'invalid policy ignored',
      );
    } else {
      this.#log.info({ policy: e.ref }, old ? 'policy updated' : 'policy added');
    }
    this.#policiesChanged();
  }

  #remove(e: Entry): void {
    if (this.#entries.get(e.ref)?.uid === e.uid) this.#entries.delete(e.ref);
    this.#log.info({ policy: e.ref }, 'policy removed');
    this.#policiesChanged();
  }

  #policiesChanged(): void {
    this.#index = null;
    this.#all = null;
    this.#schedule(true, undefined);
  }

  #namespaceChanged(ns: string): void {
    this.#rebuild();
    // Labels matter only to namespaceSelectors; without one, a namespace event changes no verdict.
    if (this.#usesNamespaceSelector) this.#schedule(false, ns);
  }

  #rebuild(): void {
    if (this.#index !== null) return;
    const all: Policy[] = [];
    for (const e of this.#entries.values()) if (e.usable) all.push(e.usable);
    all.sort(comparePolicies);
    const standIns: Policy[] = [];
    for (const e of this.#entries.values()) if (e.usable === null && !e.result.ok) standIns.push(standIn(e));
    const anyKind = standIns.filter((p) => p.resources.length === 0).sort(comparePolicies);
    const index = new Map<string, Policy[]>();
    for (const p of [...all, ...standIns]) {
      for (const r of p.resources) {
        const key = `${r.group}/${r.kind}`;
        const list = index.get(key);
        if (list) list.push(p);
        else index.set(key, [p]);
      }
    }
    for (const list of index.values()) {
      list.push(...anyKind);
      list.sort(comparePolicies);
    }
    this.#anyKind = anyKind;
    this.#index = index;
    this.#all = Object.freeze(all);
    this.#usesNamespaceSelector = all.some((p) => !isEmptySelector(p.namespaceSelector));
  }

  #schedule(policies: boolean, ns: string | undefined): void {
    if (this.#stopped) return;
    const now = this.#o.clock.now();
    if (this.#pending === null) this.#pending = { policies: false, namespaces: new Set(), firstMs: now };
    if (policies) this.#pending.policies = true;
    if (ns !== undefined) this.#pending.namespaces.add(ns);
    if (this.#debounce) this.#o.clock.clearTimer(this.#debounce);
    const delay = Math.max(0, Math.min(this.#o.debounceMs, this.#pending.firstMs + this.#o.maxDelayMs - now));
    this.#debounce = this.#o.clock.setTimer(() => this.#fire(), delay);
  }

  #fire(): void {
    this.#debounce = undefined;
    const p = this.#pending;
    this.#pending = null;
    if (p === null || this.#stopped) return;
    this.stats.changes++;
    const change: PolicyChange = { policies: p.policies, namespaces: [...p.namespaces].sort() };
    for (const cb of [...this.#listeners]) {
      try {
        cb(change);
      } catch (err) {
        this.#log.error({ err: summarizeError(err) }, 'policy change listener failed');
      }
    }
  }

  #checkSynced(): void {
    if (this.#namespaces.hasSynced && this.#kinds.every((k) => k.settled)) this.#syncedResolve();
    const known = this.unknownReason() === null;
    if (known !== this.#wasKnown) {
      this.#wasKnown = known;
      this.#log.info(
        { known, reason: this.unknownReason() ?? undefined },
        known ? 'policies known' : 'policies not known: objects they could decide are kept',
      );
      this.#schedule(true, undefined); // re-judge: held objects may go now, or must be held
    }
  }

  // --- CRD discovery -----------------------------------------------------------------------------

  /**
   * Probes each policy kind with a one-item list: 404 = CRD not installed (kind off, probe again
   * every discoveryIntervalMs); 2xx = start (or keep) its reflector. While a reflector runs, the
   * probe only runs again after the reflector reported an error, which is how a deleted CRD shows.
   */
  async #probeLoop(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      let ok = true;
      let uncertain = false;
      for (const k of this.#kinds) {
        if (this.#stopped) return;
        if (k.state === 'watching' && k.reflector && k.reflector.stats.errors === k.errorsSeen) continue;
        try {
          // Outside the QPS budget: a tiny periodic probe must not take tokens from deletions.
          await this.#o.http.request('list', 'GET', collectionPath(k.resource), {
            query: { limit: 1 },
            timeoutMs: 30_000,
            signal: this.#abort.signal,
            unlimited: true,
          });
          if (k.reflector) k.errorsSeen = k.reflector.stats.errors;
          else this.#startKind(k);
          k.notFound = 0;
          k.uncertain = null;
        } catch (err) {
          if (this.#stopped) return;
          if (isApiError(err, 404)) {
            // One 404 is not proof (a CRD briefly not served, an API server starting): dropping a
            // kind's policies would hand their objects to weaker ones. Gone only when confirmed.
            const now = this.#o.clock.now();
            if (k.notFound === 0) k.notFoundSinceMs = now;
            k.notFound++;
            if (
              k.state === 'missing' ||
              (k.notFound >= NOT_FOUND_CONFIRMATIONS && now - k.notFoundSinceMs >= NOT_FOUND_CONFIRM_MS)
            ) {
              k.uncertain = null;
              await this.#kindMissing(k);
            } else {
              k.uncertain = `answer 404 (${k.notFound} time${k.notFound > 1 ? 's' : ''} since ${new Date(k.notFoundSinceMs).toISOString()}); not yet confirmed gone`;
              uncertain = true;
            }
          } else {
            ok = false;
            k.notFound = 0;
            // Watching, but the kind cannot be read: its cache may be stale.
            if (k.state === 'watching')
              k.uncertain = `cannot be read (${summarizeError(err).message ?? 'error'})`;
            this.#log.warn(
              { kind: k.kind, err: summarizeError(err) },
              'cannot tell whether the policy CRD is installed; retrying',
            );
          }
        }
      }
      this.#logMissing();
      this.#checkSynced();
      // Errors other than 404 (no RBAC yet, API server restarting) are retried sooner, with back-off.
      failures = ok ? 0 : failures + 1;
      let delay = ok
        ? this.#o.discoveryIntervalMs
        : Math.min(this.#o.discoveryIntervalMs, PROBE_BACKOFF_START_MS * 2 ** Math.min(failures - 1, 10));
      if (uncertain) delay = Math.min(delay, UNCERTAIN_PROBE_MS);
      await this.#sleep(delay);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#probeTimer = this.#o.clock.setTimer(() => {
        this.#probeWake = undefined;
        resolve();
      }, ms);
      this.#probeWake = () => {
        if (this.#probeTimer) this.#o.clock.clearTimer(this.#probeTimer);
        resolve();
      };
    });
  }

  #startKind(k: KindState): void {
    if (k.state === 'missing') this.#log.info({ kind: k.kind }, 'policy CRD installed; watching it');
    k.state = 'watching';
    const reflector = new Reflector<Entry>({
      http: this.#o.http,
      resource: k.resource,
      clock: this.#o.clock,
      logger: this.#log.child({ kind: k.kind }),
      ...(this.#o.minWatchTimeoutSeconds ? { minWatchTimeoutSeconds: this.#o.minWatchTimeoutSeconds } : {}),
      transform: (raw) => this.#toEntry(k, raw),
      handler: {
        upsert: (_key, e, old) => this.#upsert(e, old),
        remove: (_key, e) => this.#remove(e),
      },
    });
    k.reflector = reflector;
    k.errorsSeen = 0;
    reflector.start();
    void reflector.synced.then(() => {
      if (k.reflector !== reflector) return;
      k.settled = true;
      this.#checkSynced();
    });
  }

  async #kindMissing(k: KindState): Promise<void> {
    const wasWatching = k.reflector !== null;
    if (k.reflector) {
      const r = k.reflector;
      k.reflector = null;
      await r.stop();
      for (const e of r.store.values()) this.#remove(e);
      this.#log.info({ kind: k.kind }, 'policy CRD removed; its policies are off');
    }
    if (k.state !== 'missing') {
      k.state = 'missing';
      this.stats.crdMissing++;
      this.#o.onCrdMissing?.(k.kind);
      if (wasWatching) this.#policiesChanged();
      // The kind is known to have no policies: nothing to wait for.
    }
    k.settled = true;
  }

  /** One info line when CRDs are found missing (not at every probe). */
  #logMissing(): void {
    const missing = this.#kinds.filter((k) => k.state === 'missing');
    for (const kind of [...this.#missingLogged]) {
      if (!missing.some((k) => k.kind === kind)) this.#missingLogged.delete(kind);
    }
    const fresh = missing.filter((k) => !this.#missingLogged.has(k.kind));
    if (fresh.length === 0) return;
    for (const k of fresh) this.#missingLogged.add(k.kind);
    const names = fresh.map((k) => `${k.resource.plural}.${k.resource.group}`);
    this.#log.info(
      { missing: names, retryEveryMs: this.#o.discoveryIntervalMs },
      missing.length === this.#kinds.length
        ? 'policy CRDs not installed; policies off'
        : `policy CRD ${names.join(', ')} not installed; ${fresh.map((k) => k.kind).join(', ')} off`,
    );
  }
}

/**
 * What an ignored (invalid) policy still tells: its scope, name, priority and kinds, read leniently.
 * It takes part in ranking as a policy that may select anything in its scope (no selectors): what it
 * would select is held instead of falling to a weaker policy.
 */
function standIn(e: Entry): Policy {
  return {
    ref: e.ref,
    kind: e.kind,
    scope: e.kind === 'TTLPolicy' ? 'namespace' : 'cluster',
    ...(e.kind === 'TTLPolicy' ? { namespace: e.namespace } : {}),
    name: e.name,
    uid: e.uid,
    generation: e.generation,
    resources: e.kinds.map((k) => {
      const i = k.lastIndexOf('/');
      return { apiVersion: '', group: k.slice(0, i), kind: k.slice(i + 1) };
    }),
    dryRun: false,
    priority: e.priority,
    enforce: 'none',
    blocking: e.result.ok ? [] : e.result.errors,
  };
}
