// The controller's view of TTLPolicy / ClusterTTLPolicy objects and of namespace labels (for
// namespaceSelector), kept by list+watch reflectors. Policies are parsed once on arrival; lookups
// (policyFor, explain) are pure and synchronous over the cache.
//
// The policy CRDs are optional (src/kube/optional-resource.ts): when listing a kind answers 404
// (confirmed: 3 answers over at least 15 s) the kind is "off" (logged once, counted) and probed
// again every 30 s, so CRDs installed later are
// picked up without a restart; CRDs removed while running are noticed the same way and their
// policies dropped. Status writes are src/policy/status-writer.ts.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { ApiChanges } from '../kube/api-changes.ts';
import { isApiError, summarizeError } from '../kube/errors.ts';
import type { KubeHttp } from '../kube/http.ts';
import type { RawObject } from '../kube/objects.ts';
import {
  type AbsenceRule,
  OptionalResource,
  type Presence,
  ProbeLoop,
  type ProbeRound,
} from '../kube/optional-resource.ts';
import { Reflector } from '../kube/reflector.ts';
import { collectionPath, type ResourceRef } from '../kube/resources.ts';
import { combineCaps } from '../rules/caps.ts';
import { type FinishChoice, type FinishRule, groupOf } from '../rules/finish.ts';
import { groupAnnotationKeys } from '../rules/history.ts';
import type { ObjectSummary, PolicyTtl, TtlCap } from '../rules/types.ts';
import { ChangeBatcher, type PolicyChange } from './changes.ts';
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
import { PolicyStatusWriter, type RawStatus, type StatusTarget } from './status-writer.ts';

export type { PolicyChange } from './changes.ts';

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
  /** CRD changes: a missing policy CRD is then probed again only when kttl.dev changed. */
  apiChanges?: ApiChanges;
  /** Called each time a policy kind is found not installed (for a metric). */
  onCrdMissing?: (kind: PolicyKind) => void;
  /** Passed to the reflectors (tests use short watches). */
  minWatchTimeoutSeconds?: number;
}

/** Which policies the store reads (the second constructor argument; default: all of them). */
export interface PolicyStoreScope {
  /**
   * false: TTLPolicy only — no ClusterTTLPolicy, no Namespace reads (a namespace-only install,
   * `kttl run --cluster-policies=false`); default true.
   */
  clusterPolicies?: boolean;
  /** With clusterPolicies false: TTLPolicies are listed in these namespaces only (empty: all). */
  namespaces?: readonly string[];
}

export interface PolicyExplanation extends Ranking {
  /** Set when no policy may decide for the object now (policies not known, a gap): it is kept. */
  held?: string;
  /** Policies that name the object's kind but do not select it, and why. */
  notMatching: Array<{ policy: Policy; reason: string }>;
  /** Invalid policies that name the object's kind and are ignored (they cannot be matched safely). */
  ignored: Array<{ ref: string; errors: string[] }>;
}

/**
 * One policy object in the cache. resourceVersion and status are of the object as last seen (watch,
 * or our own status write): the status patch precondition, and what it compares with.
 */
interface Entry extends StatusTarget {
  ref: string;
  kind: PolicyKind;
  result: PolicyParseResult;
  /** The policy that takes part in matching: the valid one, or the holding one (bad TTL values only). */
  usable: Policy | null;
  /** Kinds (group/Kind) named by the raw object, even when invalid: for explain and stand-ins. */
  kinds: string[];
  /** spec.priority read leniently (unreadable: the highest, so an ignored policy holds, never yields). */
  priority: number;
  /** Spec identity: equal fingerprints mean nothing a lookup depends on changed (status edits). */
  fingerprint: string;
}

interface KindState {
  resource: ResourceRef;
  kind: PolicyKind;
  /** TTLPolicies of one namespace only (a namespace-only install); undefined: all. */
  namespace?: string;
  /**
   * Whether the CRD serves the kind; its `uncertain` says why this kind's policies cannot be
   * trusted right now (a 404 not yet confirmed, errors while watched).
   */
  crd: OptionalResource<true>;
  reflector: Reflector<Entry> | null;
  /** reflector.stats.errors when last checked: a new error makes the probe check the CRD again. */
  errorsSeen: number;
  settled: boolean;
  /** Answered "not served" at least once (confirmed or not). */
  notServedSeen: boolean;
  /** o.apiChanges.mark() taken before the last look. */
  mark: number;
}

/** A policy kind answering 404 is gone only after 3 answers over at least 15 s (docs/decisions.md). */
const CRD_GONE: AbsenceRule = { answers: 3, overMs: 15_000 };

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_MAX_DELAY_MS = 1000;
const DEFAULT_DISCOVERY_MS = 30_000;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
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
  readonly #o: Required<Omit<PolicyStoreOptions, 'onCrdMissing' | 'minWatchTimeoutSeconds' | 'apiChanges'>> &
    Pick<PolicyStoreOptions, 'onCrdMissing' | 'minWatchTimeoutSeconds' | 'apiChanges'>;
  readonly #log: Logger;
  /** Policy entries by ref, across both kinds. */
  readonly #entries = new Map<string, Entry>();
  /** null without ClusterTTLPolicies: namespace labels serve only their namespaceSelector. */
  readonly #namespaces: Reflector<Readonly<Record<string, string>>> | null;
  readonly #kinds: KindState[];
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
  /** onChange listeners, called once per burst of changes. */
  readonly #changes: ChangeBatcher;
  /** Looks for the policy CRDs (stop aborts a look in flight: it may otherwise wait 30 s). */
  readonly #probe: ProbeLoop;
  readonly #status: PolicyStatusWriter;
  #stopped = false;
  #started = false;
  #unsubscribeApiChanges: (() => void) | undefined;
  /** Kinds whose absence was logged: each absence is logged once, not at every probe. */
  readonly #missingLogged = new Set<PolicyKind>();
  #syncedResolve!: () => void;
  /** Resolves when namespaces are listed and each policy kind is either listed or known missing. */
  readonly synced: Promise<void>;
  #answeredResolve!: () => void;
  /**
   * Resolves when namespaces are listed and each policy kind is listed or has answered "not served"
   * at least once (not yet confirmed: its objects are held until it is, see unknownReason). Enough to
   * start judging: what a policy could decide is kept until the policies are known.
   */
  readonly answered: Promise<void>;
  readonly stats = { crdMissing: 0, statusPatches: 0, statusSkipped: 0, statusConflicts: 0, changes: 0 };

  constructor(o: PolicyStoreOptions, scope: PolicyStoreScope = {}) {
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
    this.answered = new Promise((r) => {
      this.#answeredResolve = r;
    });
    const clusterPolicies = scope.clusterPolicies !== false;
    const kinds: Array<{ resource: ResourceRef; kind: PolicyKind; namespace?: string }> = clusterPolicies
      ? [
          { resource: TTL_POLICIES, kind: 'TTLPolicy' },
          { resource: CLUSTER_TTL_POLICIES, kind: 'ClusterTTLPolicy' },
        ]
      : scope.namespaces?.length
        ? scope.namespaces.map((namespace) => ({ resource: TTL_POLICIES, kind: 'TTLPolicy', namespace }))
        : [{ resource: TTL_POLICIES, kind: 'TTLPolicy' }];
    this.#kinds = kinds.map((k) => ({
      ...k,
      kind: k.kind as PolicyKind,
      crd: new OptionalResource<true>({
        clock: o.clock,
        absence: CRD_GONE,
        // Outside the QPS budget: a tiny periodic probe must not take tokens from deletions.
        look: (signal) =>
          o.http
            .request('list', 'GET', collectionPath(k.resource, k.namespace), {
              query: { limit: 1 },
              timeoutMs: 30_000,
              signal,
              unlimited: true,
            })
            .then(
              () => true as const,
              (err: unknown) => {
                if (isApiError(err, 404)) return null;
                throw err;
              },
            ),
      }),
      reflector: null,
      errorsSeen: 0,
      settled: false,
      notServedSeen: false,
      mark: -1,
    }));
    this.#probe = new ProbeLoop({
      clock: o.clock,
      intervalMs: this.#o.discoveryIntervalMs,
      round: (signal) => this.#probeRound(signal),
      // Never an unhandled rejection: a bug in discovery must not take the controller down.
      onError: (err) => this.#log.error({ err: summarizeError(err) }, 'policy CRD discovery failed'),
    });
    this.#changes = new ChangeBatcher({
      clock: o.clock,
      logger: o.logger,
      debounceMs: this.#o.debounceMs,
      maxDelayMs: this.#o.maxDelayMs,
      stats: this.stats,
    });
    this.#status = new PolicyStatusWriter({
      http: o.http,
      clock: o.clock,
      logger: o.logger,
      target: (ref) => this.#entries.get(ref),
      stats: this.stats,
    });
    this.#namespaces = !clusterPolicies
      ? null
      : new Reflector({
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
    this.#namespaces?.start();
    void this.#namespaces?.synced.then(() => this.#checkSynced());
    this.#probe.start();
    this.#unsubscribeApiChanges = this.#o.apiChanges?.onChange(() => void this.#probe.wake());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#changes.stop();
    this.#unsubscribeApiChanges?.();
    await this.#probe.stop();
    await Promise.all([this.#namespaces?.stop(), ...this.#kinds.map((k) => k.reflector?.stop())]);
  }

  /** Registers a listener, called (debounced) after any policy or relevant namespace-label change. */
  onChange(cb: (change: PolicyChange) => void): () => void {
    return this.#changes.listen(cb);
  }

  /** Every usable policy (valid, or holding), in specificity order. */
  policies(): readonly Policy[] {
    this.#rebuild();
    return this.#all!;
  }

  /** The labels of a namespace, or undefined when it is not (yet) in the cache. */
  namespaceLabels(ns: string): Readonly<Record<string, string>> | undefined {
    return this.#namespaces?.store.get(ns);
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
    if (this.#namespaces && !this.#namespaces.hasSynced) return 'namespaces are not listed yet';
    for (const k of this.#kinds) {
      if (!k.settled)
        return `${k.resource.plural}.${k.resource.group}${k.namespace ? ` in ${k.namespace}` : ''} are not listed yet`;
      if (k.crd.uncertain !== null) return `${k.resource.plural}.${k.resource.group} ${k.crd.uncertain}`;
    }
    return null;
  }

  /** The winning policy for an object, as resolveTtl wants it; null when no policy selects it. */
  policyFor(obj: ObjectSummary): PolicyTtl | null {
    const w = this.#decide(obj);
    if (w === null) return null;
    if ('hold' in w) return { ref: w.ref, hold: w.hold };
    const out = toPolicyTtl(w.policy);
    const cap = this.capFor(obj);
    if (cap !== null) out.cap = cap;
    return out;
  }

  /**
   * The cluster maximum over an object (src/rules/caps.ts): the strictest of the ClusterTTLPolicies
   * that list its kind and surely select it. One whose selection is unknown does not cap (yet): a
   * missing cap only keeps longer.
   */
  capFor(obj: ObjectSummary): TtlCap | null {
    const ns = (n: string) => this.namespaceLabels(n);
    const specs = this.#candidates(obj).filter(
      (p) =>
        p.scope === 'cluster' &&
        !p.blocking &&
        (p.maxTtl ?? p.maxTtlSucceeded ?? p.maxTtlFailed) !== undefined &&
        selection(obj, p, ns).state === 'yes',
    );
    return specs.length === 0 ? null : combineCaps(specs);
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

  /** The annotation keys usable policies group by (`groupBy: annotation:<key>`): summaries keep them. */
  groupAnnotationKeys(): Set<string> {
    return groupAnnotationKeys(this.policies().flatMap((p) => [p.history, p.keepLatest]));
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
   * Writes status.matchedObjects, status.errors (default: the policy's parse errors),
   * observedGeneration and the Valid condition when something differs from the cached status; see
   * PolicyStatusWriter.write. Resolves true when a PATCH was sent and accepted.
   */
  updateStatus(ref: string, s: { matchedObjects: number; errors?: readonly string[] }): Promise<boolean> {
    return this.#status.write(ref, s.matchedObjects, () => s.errors ?? this.errorsOf(ref) ?? []);
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
    this.#changes.add(true, undefined);
  }

  #namespaceChanged(ns: string): void {
    this.#rebuild();
    // Labels matter only to namespaceSelectors; without one, a namespace event changes no verdict.
    if (this.#usesNamespaceSelector) this.#changes.add(false, ns);
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

  #checkSynced(): void {
    const nsSynced = this.#namespaces?.hasSynced ?? true;
    if (nsSynced && this.#kinds.every((k) => k.settled)) this.#syncedResolve();
    if (nsSynced && this.#kinds.every((k) => k.settled || k.notServedSeen)) this.#answeredResolve();
    const known = this.unknownReason() === null;
    if (known !== this.#wasKnown) {
      this.#wasKnown = known;
      this.#log.info(
        { known, reason: this.unknownReason() ?? undefined },
        known ? 'policies known' : 'policies not known: objects they could decide are kept',
      );
      this.#changes.add(true, undefined); // re-judge: held objects may go now, or must be held
    }
  }

  // --- CRD discovery -----------------------------------------------------------------------------

  /**
   * Probes each policy kind with a one-item list: 404 = CRD not installed (kind off once confirmed,
   * probe again every discoveryIntervalMs); 2xx = start (or keep) its reflector. While a reflector
   * runs, the probe only runs again after the reflector reported an error, which is how a deleted
   * CRD shows.
   */
  async #probeRound(signal: AbortSignal): Promise<ProbeRound> {
    const round = { failed: false, uncertain: false };
    for (const k of this.#kinds) {
      if (this.#stopped) return round;
      if (k.crd.presence === 'present' && k.reflector && k.reflector.stats.errors === k.errorsSeen) continue;
      const changes = this.#o.apiChanges;
      if (
        changes &&
        k.crd.presence === 'absent' &&
        !changes.changedSince(k.resource.group, k.mark) &&
        !changes.settling(k.resource.group)
      )
        continue; // confirmed missing and nothing of kttl.dev changed since: no request
      if (changes) k.mark = changes.mark();
      const r = await k.crd.look(signal);
      if (this.#stopped) return round;
      switch (r.state) {
        case 'present':
          if (k.reflector) k.errorsSeen = k.reflector.stats.errors;
          else this.#startKind(k, r.was);
          break;
        case 'absent':
          // Confirmed: dropping a kind's policies hands their objects to weaker ones.
          await this.#kindMissing(k, r.was !== 'absent');
          if (changes?.settling(k.resource.group)) round.uncertain = true; // discovery may lag
          break;
        case 'unconfirmed':
          round.uncertain = true;
          k.notServedSeen = true;
          break;
        case 'error':
          round.failed = true;
          this.#log.warn(
            { kind: k.kind, err: summarizeError(r.error) },
            'cannot tell whether the policy CRD is installed; retrying',
          );
          break;
      }
    }
    this.#logMissing();
    this.#checkSynced();
    return round;
  }

  #startKind(k: KindState, was: Presence): void {
    if (was === 'absent') this.#log.info({ kind: k.kind }, 'policy CRD installed; watching it');
    const reflector = new Reflector<Entry>({
      http: this.#o.http,
      resource: k.resource,
      ...(k.namespace ? { namespace: k.namespace } : {}),
      clock: this.#o.clock,
      logger: this.#log.child({ kind: k.kind, ...(k.namespace ? { namespace: k.namespace } : {}) }),
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

  /** `news`: the kind was not known missing before. */
  async #kindMissing(k: KindState, news: boolean): Promise<void> {
    const wasWatching = k.reflector !== null;
    if (k.reflector) {
      const r = k.reflector;
      k.reflector = null;
      await r.stop();
      for (const e of r.store.values()) this.#remove(e);
      this.#log.info({ kind: k.kind }, 'policy CRD removed; its policies are off');
    }
    if (news) {
      this.stats.crdMissing++;
      this.#o.onCrdMissing?.(k.kind);
      if (wasWatching) this.#policiesChanged();
      // The kind is known to have no policies: nothing to wait for.
    }
    k.settled = true;
  }

  /** One info line when CRDs are found missing (not at every probe). */
  #logMissing(): void {
    const missing = this.#kinds.filter((k) => k.crd.presence === 'absent');
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
