// Which kind a spelling names, found as the controller finds kinds (src/controller/kinds.ts): the
// built-in kinds of the registry (src/rules/kinds.ts), else a kind a TTLPolicy/ClusterTTLPolicy
// names in spec.resources[] (docs/policies.md), each looked up through API discovery
// (src/kube/discovery.ts) for the version it is served at and its plural. Names are matched as
// kubectl matches them: kind, plural, singular or short name, optionally `.group` or
// `.version.group`, case-insensitive. A name several kinds share means the built-in one, first in
// the registry (`jobs` is batch's Job, as kubectl prefers built-in groups); the others need a group.
import { discoverKind } from '../../kube/discovery.ts';
import { isApiError } from '../../kube/errors.ts';
import type { RawObject } from '../../kube/objects.ts';
import { JOBS, PODS, type ResourceRef } from '../../kube/resources.ts';
import { parsePolicy } from '../../policy/schema.ts';
import { BUILTIN_KINDS, type BuiltinKind } from '../../rules/kinds.ts';
import type { PropagationPolicy } from '../../rules/types.ts';
import { UserError } from '../errors.ts';
import { type Cluster, listObjects } from './cluster.ts';
import type { KindInfo, KindReading, KindSpelling, ObjectRef, RefSpelling } from './refs.ts';

/** A kind a spelling may name, with every name it answers to (lower-case). */
export interface KindCandidate {
  group: string;
  kind: string;
  /** Unknown for a policy-named kind until discovery answers. */
  plural?: string;
  singular: string;
  shortNames: readonly string[];
  builtin?: Readonly<BuiltinKind>;
  /** For a policy-named kind: the version its policies write, and whether one gives a finish rule. */
  named?: NamedKind;
}

/** A kind named in some policy's spec.resources[]. */
export interface NamedKind {
  group: string;
  kind: string;
  /** The version of the first policy naming it (discovery prefers it, as the controller's). */
  version: string;
  /** Some policy gives it a `finished` rule (without one, and not built in, it is never finished). */
  finishRule: boolean;
  /** The policies naming it (`ClusterTTLPolicy/x`), for messages. */
  policies: readonly string[];
}

/** Where the resolver learns the policy-named kinds; asked only for a name no built-in kind has. */
export interface PolicyKinds {
  namedKinds(): Promise<NamedKinds>;
}

export interface NamedKinds {
  kinds: readonly NamedKind[];
  /** Why some policies could not be read (their kinds are then unknown to the CLI), if so. */
  unread?: string;
}

export const NO_POLICY_KINDS: PolicyKinds = { namedKinds: async () => ({ kinds: [] }) };

function namesOf(c: KindCandidate): string[] {
  return [c.kind.toLowerCase(), c.singular, ...(c.plural ? [c.plural] : []), ...c.shortNames];
}

function builtinCandidate(k: Readonly<BuiltinKind>): KindCandidate {
  return {
    group: k.group,
    kind: k.kind,
    plural: k.plural,
    singular: k.kind.toLowerCase(),
    shortNames: k.shortNames,
    builtin: k,
  };
}

/** The registry's kinds, in its order. */
export const BUILTIN_CANDIDATES: readonly KindCandidate[] = BUILTIN_KINDS.map(builtinCandidate);

export interface KindMatch {
  candidate: KindCandidate;
  /** The version the spelling asks for, if any. */
  version?: string;
}

function readingMatches(c: KindCandidate, r: KindReading): boolean {
  return (r.group === undefined || r.group === c.group) && namesOf(c).includes(r.name);
}

/**
 * The kinds a spelling can mean among `candidates`: the matches of its first reading that has any
 * (kubectl's order: `name.version.group` before `name.group`). Pure.
 */
export function matchSpelling(s: KindSpelling, candidates: readonly KindCandidate[]): KindMatch[] {
  for (const r of s.readings) {
    const hits = candidates.filter((c) => readingMatches(c, r));
    if (hits.length > 0)
      return hits.map((candidate) => (r.version ? { candidate, version: r.version } : { candidate }));
  }
  return [];
}

/**
 * The one kind among the matches: the first built-in one (registry order), else the only one.
 * Several non-built-in matches are ambiguous: a user error naming the spellings that tell them apart.
 */
export function chooseMatch(s: KindSpelling, matches: readonly KindMatch[]): KindMatch | null {
  if (matches.length === 0) return null;
  const builtin = matches.find((m) => m.candidate.builtin);
  if (builtin) return builtin;
  if (matches.length === 1) return matches[0]!;
  const options = matches.map((m) => qualifiedName(m.candidate)).sort();
  throw new UserError(
    `kind ${JSON.stringify(s.text)} is ambiguous: it names ${options.join(', ')} (write one of them)`,
  );
}

/** `workflows.argoproj.io`, `pods`: the resource with its group, as kubectl writes it. */
export function qualifiedName(c: KindCandidate): string {
  const name = c.plural ?? c.kind.toLowerCase();
  return c.group ? `${name}.${c.group}` : name;
}

/** The shortest name that means this built-in kind: its plural, else plural.group. Pure. */
export function builtinName(k: Readonly<BuiltinKind>): string {
  const first = BUILTIN_KINDS.find((b) => b.plural === k.plural);
  return first === k ? k.plural : qualifiedName(builtinCandidate(k));
}

/** The built-in kinds as the help texts and the docs name them: `jobs, pods, workflows, ...`. */
export function cliKindNames(): string[] {
  return BUILTIN_KINDS.map(builtinName);
}

/** One line: what kinds are known, for the unknown-kind error. Pure. */
export function unknownKindMessage(text: string, named: readonly KindCandidate[], unread?: string): string {
  const policyNamed = named.filter((c) => c.named?.finishRule).map(qualifiedName);
  return `unknown kind ${JSON.stringify(text)} (known: ${cliKindNames().join(', ')}${
    policyNamed.length > 0 ? `; named by policies: ${[...new Set(policyNamed)].sort().join(', ')}` : ''
  }${unread ? `; ${unread}, so the kinds they name are not known here` : ''})`;
}

const POLICY_KINDS = [
  { kind: 'TTLPolicy', plural: 'ttlpolicies', namespaced: true },
  { kind: 'ClusterTTLPolicy', plural: 'clusterttlpolicies', namespaced: false },
] as const;

/**
 * The kinds the cluster's policies name, read once (lazily) with the controller's own validation
 * (src/policy/schema.ts). Policy CRDs that are not installed, or may not be read, name nothing.
 */
export function clusterPolicyKinds(c: Cluster): PolicyKinds {
  let read: Promise<NamedKinds> | undefined;
  return {
    namedKinds: () => {
      read ??= (async () => {
        const raws: Array<{ kind: (typeof POLICY_KINDS)[number]['kind']; raw: RawObject }> = [];
        const forbidden: string[] = [];
        for (const p of POLICY_KINDS) {
          const r: ResourceRef = {
            group: 'kttl.dev',
            version: 'v1alpha1',
            kind: p.kind,
            plural: p.plural,
            namespaced: p.namespaced,
          };
          try {
            for (const raw of await listObjects(c, r, undefined)) raws.push({ kind: p.kind, raw });
          } catch (err) {
            if (isApiError(err, 404)) continue;
            if (isApiError(err, 403)) {
              forbidden.push(`${p.plural}.kttl.dev`);
              continue;
            }
            throw err;
          }
        }
        const kinds = namedKindsOf(raws);
        return forbidden.length > 0
          ? { kinds, unread: `not allowed to list ${forbidden.join(' or ')}` }
          : { kinds };
      })();
      return read;
    },
  };
}

/** The kinds named by these policy objects (valid ones and those held for bad TTL values). Pure. */
export function namedKindsOf(
  raws: ReadonlyArray<{ kind: 'TTLPolicy' | 'ClusterTTLPolicy'; raw: unknown }>,
): NamedKind[] {
  const byKey = new Map<
    string,
    { group: string; kind: string; version: string; rule: boolean; refs: string[] }
  >();
  for (const { kind, raw } of raws) {
    const parsed = parsePolicy(raw, kind);
    const policy = parsed.ok ? parsed.policy : parsed.holding;
    if (!policy) continue;
    for (const r of policy.resources) {
      const key = `${r.group}/${r.kind}`;
      let e = byKey.get(key);
      if (!e) {
        e = { group: r.group, kind: r.kind, version: r.apiVersion.split('/').at(-1)!, rule: false, refs: [] };
        byKey.set(key, e);
      }
      if (r.finished !== undefined) e.rule = true;
      e.refs.push(policy.ref);
    }
  }
  return [...byKey.values()].map((e) => ({
    group: e.group,
    kind: e.kind,
    version: e.version,
    finishRule: e.rule,
    policies: e.refs.sort(),
  }));
}

function notServed(s: KindSpelling, what: string): UserError {
  // kubectl's words for the same case (`kubectl get workflows` without Argo): exit 1.
  return new UserError(`the server doesn't have a resource type ${JSON.stringify(s.text)} (${what})`);
}

function info(resource: ResourceRef, singular: string, defaultPropagation: PropagationPolicy): KindInfo {
  return { resource, singular, defaultPropagation };
}

/** Resolves kind spellings against the registry, the policies and discovery (see the top). */
export class KindResolver {
  readonly #c: Cluster;
  readonly #policies: PolicyKinds;
  /** Policy-named kinds with what discovery said about them (null: not served). */
  #named:
    | Promise<{ named: Array<{ candidate: KindCandidate; found: boolean }>; unread?: string }>
    | undefined;
  readonly #discovered = new Map<string, Promise<Awaited<ReturnType<typeof discoverKind>>>>();

  constructor(c: Cluster, policies: PolicyKinds) {
    this.#c = c;
    this.#policies = policies;
  }

  #discover(group: string, kind: string, version?: string) {
    const key = `${group}/${kind}/${version ?? ''}`;
    let p = this.#discovered.get(key);
    if (!p) {
      p = discoverKind(this.#c.http, group, kind, version);
      this.#discovered.set(key, p);
    }
    return p;
  }

  async resolve(s: KindSpelling): Promise<KindInfo> {
    const builtin = chooseMatch(s, matchSpelling(s, BUILTIN_CANDIDATES));
    if (builtin) return this.#builtin(s, builtin);
    const { named, unread } = await this.#namedKinds();
    const m = chooseMatch(
      s,
      matchSpelling(
        s,
        named.map((n) => n.candidate),
      ),
    );
    if (!m)
      throw new UserError(
        unknownKindMessage(
          s.text,
          named.map((n) => n.candidate),
          unread,
        ),
      );
    const n = m.candidate.named!;
    const name = qualifiedName(m.candidate);
    if (!n.finishRule)
      throw new UserError(
        `${name} is named by ${n.policies.join(', ')} without a \`finished\` rule, and kttl has no built-in rule for it: it is never finished, so the controller does not watch it`,
      );
    if (!named.find((x) => x.candidate === m.candidate)!.found)
      throw notServed(
        s,
        `${m.candidate.kind}.${m.candidate.group} is named by ${n.policies.join(', ')} but not installed`,
      );
    const d = await this.#discover(n.group, n.kind, m.version ?? n.version);
    if (!d || (m.version && d.resource.version !== m.version))
      throw notServed(s, `${name} is not served${m.version ? ` at ${m.version}` : ''}`);
    return info(d.resource, d.singular, 'Background');
  }

  async #builtin(s: KindSpelling, m: KindMatch): Promise<KindInfo> {
    const k = m.candidate.builtin!;
    const singular = k.kind.toLowerCase();
    // Jobs and Pods are always served at v1: no discovery (and no extra request) for them.
    const fixed =
      k.group === 'batch' && k.kind === 'Job' ? JOBS : k.group === '' && k.kind === 'Pod' ? PODS : null;
    if (fixed) {
      if (m.version && m.version !== fixed.version)
        throw notServed(s, `${qualifiedName(m.candidate)} is served at ${fixed.version}`);
      return info(fixed, singular, k.defaultPropagation);
    }
    const d = await this.#discover(k.group, k.kind, m.version ?? k.version);
    if (!d) throw notServed(s, `${qualifiedName(m.candidate)}, from ${k.project}, is not installed`);
    if (m.version && d.resource.version !== m.version)
      throw notServed(s, `${qualifiedName(m.candidate)} is not served at ${m.version}`);
    // The registry's plural; discovery's where it differs (a server's answer is what its URLs take).
    return info(d.resource, singular, k.defaultPropagation);
  }

  #namedKinds() {
    this.#named ??= (async () => {
      const { kinds, unread } = await this.#policies.namedKinds();
      const notBuiltin = kinds.filter(
        (n) => !BUILTIN_CANDIDATES.some((b) => b.group === n.group && b.kind === n.kind),
      );
      const named = await Promise.all(
        notBuiltin.map(async (n) => {
          const d = await this.#discover(n.group, n.kind, n.version);
          const candidate: KindCandidate = {
            group: n.group,
            kind: n.kind,
            singular: d?.singular ?? n.kind.toLowerCase(),
            shortNames: d?.shortNames ?? [],
            named: n,
          };
          if (d) candidate.plural = d.resource.plural;
          return { candidate, found: d !== null };
        }),
      );
      return unread ? { named, unread } : { named };
    })();
    return this.#named;
  }

  /** Each spelling's kind, duplicates dropped (order kept). */
  async resolveAll(spellings: readonly KindSpelling[]): Promise<KindInfo[]> {
    const out: KindInfo[] = [];
    for (const s of spellings) {
      const k = await this.resolve(s);
      if (!out.some((o) => sameKind(o, k))) out.push(k);
    }
    return out;
  }

  async resolveRef(r: RefSpelling): Promise<ObjectRef> {
    return { kind: await this.resolve(r.kind), name: r.name, text: r.text };
  }

  async resolveRefs(refs: readonly RefSpelling[]): Promise<ObjectRef[]> {
    const out: ObjectRef[] = [];
    for (const r of refs) out.push(await this.resolveRef(r));
    return out;
  }
}

export function sameKind(a: KindInfo, b: KindInfo): boolean {
  return a.resource.group === b.resource.group && a.resource.kind === b.resource.kind;
}

/** The resolver for one command: the cluster's discovery and its policies. */
export function kindResolver(c: Cluster, policies: PolicyKinds = clusterPolicyKinds(c)): KindResolver {
  return new KindResolver(c, policies);
}

/** Words wrapped at `width` columns after `indent`. */
function wrap(words: readonly string[], indent: string, width = 100): string {
  const lines: string[] = [];
  let line = indent;
  for (const w of words) {
    if (line.length + w.length + 1 > width && line.trim() !== '') {
      lines.push(line.trimEnd());
      line = indent;
    }
    line += `${w} `;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}

/** The help texts' paragraph on kinds, from the registry. */
export function kindsHelp(): string {
  const builtins = BUILTIN_KINDS.map((k) => {
    const name = builtinName(k);
    const shorts = k.shortNames.length > 0 ? ` (${k.shortNames.join(', ')})` : '';
    return `${name}${shorts},`;
  });
  return `
Kinds: by kind, plural, short name, KIND.GROUP or KIND.VERSION.GROUP (case-insensitive; jobs is
batch's Job, another kind of that name needs its group or short name). Built in:
${wrap(builtins, '  ').replace(/,$/, '')}
and any kind a TTLPolicy or ClusterTTLPolicy names with a \`finished\` rule (widgets.example.com).`;
}

/** The words shell completion offers for a kind or a KIND/ reference. */
export function completionKindWords(): string[] {
  const words = new Set<string>();
  for (const k of BUILTIN_KINDS) {
    words.add(builtinName(k));
    for (const s of k.shortNames) words.add(s);
  }
  for (const k of BUILTIN_KINDS)
    words.add(`${builtinName(k) === k.plural ? k.kind.toLowerCase() : (k.shortNames[0] ?? builtinName(k))}/`);
  return [...words];
}

/** `jobs Foreground, every other kind Background`: the registry's default cascades, for help. */
export function defaultPropagationText(): string {
  const names = cliKindNames();
  const by = new Map<string, string[]>();
  BUILTIN_KINDS.forEach((k, i) => {
    by.set(k.defaultPropagation, [...(by.get(k.defaultPropagation) ?? []), names[i]!]);
  });
  // The most common cascade is "every other kind" (policy-named kinds get Background, as the
  // controller gives them: src/controller/kinds.ts).
  const common = 'Background';
  const rest = [...by].filter(([p]) => p !== common).map(([p, ks]) => `${ks.join(', ')} ${p}`);
  return [...rest, `every other kind ${common}`].join(', ');
}
