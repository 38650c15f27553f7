// Which policies apply to an object, and which one wins (docs/policies.md). Pure functions:
// the store feeds them its cache, `kttl explain` prints the ranking.
import { BUILTIN_CHOICE, type FinishChoice, type FinishRule, groupOf } from '../rules/finish.ts';
import type { ObjectSummary, PolicyTtl } from '../rules/types.ts';
import type { Policy, PolicyResource } from './schema.ts';
import { isEmptySelector, matchesLabelSelector } from './selectors.ts';

/**
 * The resources entry of `policy` for this apiVersion/kind, if any. Matching is by API group and
 * kind; the version is ignored, because one object is served at every version of its kind and the
 * controller may watch a different version than the one the policy names (`batch/v1` vs
 * `batch/v1beta1`, a CRD's `v1` vs `v1beta1`).
 */
export function resourceEntry(policy: Policy, apiVersion: string, kind: string): PolicyResource | undefined {
  const group = groupOf(apiVersion);
  return policy.resources.find((r) => r.kind === kind && r.group === group);
}

/**
 * Whether a policy selects an object: yes; no (with why); or unknown — the answer depends on the
 * labels of a namespace not (yet) in the cache. Unknown must never count as "no": a weaker policy
 * would then win in the gap (see docs/decisions.md, "Policy gaps keep").
 */
export type Selection =
  | { state: 'yes' }
  | { state: 'no'; reason: string }
  | { state: 'unknown'; reason: string };

const YES: Selection = Object.freeze({ state: 'yes' });

export function selection(
  obj: Pick<ObjectSummary, 'apiVersion' | 'kind' | 'namespace' | 'labels'>,
  policy: Policy,
  namespaceLabels: (ns: string) => Readonly<Record<string, string>> | undefined,
): Selection {
  const no = (reason: string): Selection => ({ state: 'no', reason });
  if (!resourceEntry(policy, obj.apiVersion, obj.kind)) {
    return no(`does not list ${obj.kind} in group ${JSON.stringify(groupOf(obj.apiVersion))}`);
  }
  if (policy.scope === 'namespace') {
    // A TTLPolicy applies only in its own namespace (never to cluster-scoped objects).
    if (obj.namespace !== policy.namespace) return no(`applies only in namespace ${policy.namespace}`);
  } else if (!isEmptySelector(policy.namespaceSelector)) {
    // A cluster-scoped object has no namespace labels: a non-empty namespaceSelector never selects
    // it (not selecting is the safe side for a tool that deletes).
    if (obj.namespace === '') return no('has a namespaceSelector and the object is cluster-scoped');
    const labels = namespaceLabels(obj.namespace);
    if (labels === undefined) {
      // The store re-judges when the namespace arrives; until then nothing weaker may decide.
      return { state: 'unknown', reason: `namespace ${obj.namespace} is not known (yet)` };
    }
    if (!matchesLabelSelector(policy.namespaceSelector, labels)) {
      return no(`namespaceSelector does not match namespace ${obj.namespace}`);
    }
  }
  if (!matchesLabelSelector(policy.selector, obj.labels)) return no('selector does not match the labels');
  return YES;
}

/** Why a policy does not apply to an object, or null when it does (unknown counts as not applying). */
export function mismatch(
  obj: Pick<ObjectSummary, 'apiVersion' | 'kind' | 'namespace' | 'labels'>,
  policy: Policy,
  namespaceLabels: (ns: string) => Readonly<Record<string, string>> | undefined,
): string | null {
  const s = selection(obj, policy, namespaceLabels);
  return s.state === 'yes' ? null : s.reason;
}

/** The policies that apply to `obj` (in the order given). */
export function matchPolicies(
  obj: ObjectSummary,
  policies: readonly Policy[],
  namespaceLabels: (ns: string) => Readonly<Record<string, string>> | undefined,
): Policy[] {
  return policies.filter((p) => mismatch(obj, p, namespaceLabels) === null);
}

/** Plain code-unit order: locale-independent, so every replica ranks alike. */
function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Specificity order, most specific first: namespaced before cluster, then higher priority, then
 * name ascending. ref and uid only break ties that cannot occur among one object's candidates
 * (two policies of one name and scope), so the order is total and a sort is deterministic.
 */
export function comparePolicies(a: Policy, b: Policy): number {
  if (a.scope !== b.scope) return a.scope === 'namespace' ? -1 : 1;
  if (a.priority !== b.priority) return b.priority - a.priority;
  return cmpStr(a.name, b.name) || cmpStr(a.ref, b.ref) || cmpStr(a.uid, b.uid);
}

function describe(p: Policy): string {
  const scope = p.scope === 'namespace' ? 'namespaced TTLPolicy' : 'ClusterTTLPolicy';
  return `${scope}, priority ${p.priority}`;
}

function whyBelow(p: Policy, above: Policy): string {
  if (p.scope !== above.scope) return `below ${above.ref}: a namespaced policy beats a cluster policy`;
  if (p.priority !== above.priority) {
    return `below ${above.ref}: lower priority (${p.priority} < ${above.priority})`;
  }
  if (p.name !== above.name) {
    return `below ${above.ref}: same scope and priority (${p.priority}); name "${p.name}" sorts after "${above.name}"`;
  }
  return `below ${above.ref}: same scope, priority and name; ordered by reference and uid`;
}

export interface Ranking {
  winner: Policy | null;
  ranked: Array<{ policy: Policy; reason: string }>;
}

/**
 * Ranks the candidates by specificity; the first wins. Each reason says why the policy is where it
 * is (the winner: why it won; the others: what puts them below the one just above).
 */
export function choosePolicy(candidates: readonly Policy[]): Ranking {
  const sorted = [...candidates].sort(comparePolicies);
  const ranked = sorted.map((policy, i) => {
    let reason: string;
    if (i === 0) {
      reason =
        sorted.length === 1
          ? `chosen: the only matching policy (${describe(policy)})`
          : `chosen: most specific of ${sorted.length} matching policies (${describe(policy)})`;
      if (policy.invalid) reason += `; its TTL values are invalid, so matching objects are kept`;
    } else {
      reason = whyBelow(policy, sorted[i - 1]!);
    }
    return { policy, reason };
  });
  return { winner: sorted[0] ?? null, ranked };
}

/** What resolveTtl needs from the winning policy. A holding (invalid) policy passes its bad values on. */
export function toPolicyTtl(policy: Policy): PolicyTtl {
  const out: PolicyTtl = { ref: policy.ref, dryRun: policy.dryRun };
  if (policy.ttl !== undefined) out.ttl = policy.ttl;
  if (policy.ttlSucceeded !== undefined) out.ttlSucceeded = policy.ttlSucceeded;
  if (policy.ttlFailed !== undefined) out.ttlFailed = policy.ttlFailed;
  if (policy.propagationPolicy !== undefined) out.propagationPolicy = policy.propagationPolicy;
  if (policy.archive !== undefined) out.archive = policy.archive;
  if (policy.history !== undefined) out.history = policy.history;
  if (policy.keepLatest !== undefined) out.keepLatest = policy.keepLatest;
  if (policy.ttlPods !== undefined) out.ttlPods = policy.ttlPods;
  return out;
}

/** A finish rule's identity: equal rules written with their keys in another order are one rule. */
export function finishRuleKey(rule: FinishRule): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : typeof v === 'object' && v !== null
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
          )
        : v;
  return JSON.stringify(canon(rule));
}

/** The distinct finish rules the policies give a kind (by group and kind), to evaluate at ingest. */
export function finishRulesOf(
  apiVersion: string,
  kind: string,
  policies: readonly Policy[],
): Array<{ key: string; rule: FinishRule }> {
  const out = new Map<string, FinishRule>();
  for (const policy of policies) {
    const rule = resourceEntry(policy, apiVersion, kind)?.finished;
    if (rule !== undefined) out.set(finishRuleKey(rule), rule);
  }
  return [...out].sort((a, b) => cmpStr(a[0], b[0])).map(([key, rule]) => ({ key, rule }));
}

/**
 * Which finish rule judges one object. A policy's rule applies only to the objects that policy
 * selects (a TTLPolicy: its namespace; a ClusterTTLPolicy: where its selectors reach), never to the
 * whole kind; elsewhere the built-in rule does. Policies that select the object with different
 * rules conflict: the object is kept (an error in explain and in those policies' status). A policy
 * with a rule whose selection cannot be told yet (unknown namespace) makes the choice unknown: kept.
 */
export function chooseFinishRule(
  obj: Pick<ObjectSummary, 'apiVersion' | 'kind' | 'namespace' | 'labels'>,
  policies: readonly Policy[],
  namespaceLabels: (ns: string) => Readonly<Record<string, string>> | undefined,
): FinishChoice {
  let chosen: { key: string; refs: string[] } | null = null;
  const conflicting = new Map<string, string[]>();
  for (const policy of policies) {
    const rule = resourceEntry(policy, obj.apiVersion, obj.kind)?.finished;
    if (rule === undefined) continue;
    const s = selection(obj, policy, namespaceLabels);
    if (s.state === 'no') continue;
    if (s.state === 'unknown')
      return { kind: 'unknown', reason: `${policy.ref} has a finish rule: ${s.reason}` };
    const key = finishRuleKey(rule);
    const refs = conflicting.get(key) ?? [];
    refs.push(policy.ref);
    conflicting.set(key, refs);
    if (chosen === null) chosen = { key, refs };
  }
  if (chosen === null) return BUILTIN_CHOICE;
  if (conflicting.size > 1) {
    const refs = [...conflicting.values()].flat().sort(cmpStr);
    return {
      kind: 'conflict',
      refs,
      reason: `conflicting finish rules for ${obj.kind} from ${refs.join(', ')}: kept until one rule selects it`,
    };
  }
  return { kind: 'policy', key: chosen.key, refs: chosen.refs.sort(cmpStr) };
}
