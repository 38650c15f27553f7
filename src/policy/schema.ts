// TTLPolicy / ClusterTTLPolicy as read from the API, validated defensively. The CRD schema in
// deploy/crds/ already rejects most mistakes at admission, but the controller cannot rely on it
// (CRD installed from an older file, objects stored before a schema change, a hand-made list), so
// everything is checked again here and parsePolicy never throws: a malformed policy becomes a list
// of one-line errors for its status and for `kttl explain`, never a crash or a deletion.
import { z } from 'zod';
import { parseDuration } from '../rules/duration.ts';
import {
  type FinishMatcher,
  type FinishRule,
  finishRuleError,
  groupOf,
  hasFixedFinish,
} from '../rules/finish.ts';
import { parseGroupBy } from '../rules/history.ts';
import { type DeletionLimit, parseDeletionLimit } from '../rules/safety.ts';
import type { ArchiveMode, GroupLimit, PropagationPolicy } from '../rules/types.ts';
import { type LabelSelector, validateLabelSelector } from './selectors.ts';

export const POLICY_GROUP = 'kttl.dev';
export const POLICY_VERSION = 'v1alpha1';
export const POLICY_API_VERSION = `${POLICY_GROUP}/${POLICY_VERSION}`;

export type PolicyKind = 'TTLPolicy' | 'ClusterTTLPolicy';
export type PolicyScope = 'namespace' | 'cluster';
export type Enforce = 'none' | 'max';

/** One `spec.resources[]` entry. */
export interface PolicyResource {
  /** As written, e.g. `batch/v1`; only the group takes part in matching (see match.ts). */
  apiVersion: string;
  /** The API group of apiVersion ('' for the core group). */
  group: string;
  kind: string;
  finished?: FinishRule;
}

/** A parsed policy. Frozen: the store hands the same object to every caller. */
export interface Policy {
  /** `TTLPolicy/ns/name` or `ClusterTTLPolicy/name`. */
  ref: string;
  kind: PolicyKind;
  scope: PolicyScope;
  /** Only for TTLPolicy. */
  namespace?: string;
  name: string;
  uid: string;
  /** metadata.generation (0 when absent), for status.observedGeneration. */
  generation: number;
  resources: readonly PolicyResource[];
  selector?: LabelSelector;
  /** Only for ClusterTTLPolicy. */
  namespaceSelector?: LabelSelector;
  ttl?: string;
  ttlSucceeded?: string;
  ttlFailed?: string;
  propagationPolicy?: PropagationPolicy;
  dryRun: boolean;
  /** Overrides `kttl run --archive` for the objects it matches (docs/archive.md). */
  archive?: ArchiveMode;
  priority: number;
  enforce: Enforce;
  /** Retention (docs/policies.md, src/rules/retention.ts): newest N per outcome per group kept. */
  history?: GroupLimit;
  /** The newest N per outcome per group outlive their TTL. */
  keepLatest?: GroupLimit;
  /** The pods of a finished object go after this (src/rules/pods.ts). */
  ttlPods?: string;
  /** ClusterTTLPolicy only: the cap over every other source (src/rules/caps.ts). */
  maxTtl?: string;
  maxTtlSucceeded?: string;
  maxTtlFailed?: string;
  /** ClusterTTLPolicy only: whether kttl.dev/keep escapes the cap (default true). */
  allowKeep?: boolean;
  /** `maxDeletions` (the blast-radius brake, src/controller/brake.ts). */
  maxDeletions?: DeletionLimit;
  /** `noticeBefore`, seconds: a DeletionScheduled Event that long before expiry. */
  noticeBeforeSeconds?: number;
  /** The `kttl.dev/resume` annotation (`kttl resume`): a change resumes a tripped brake. */
  resumeToken?: string;
  /**
   * Set only on a policy that is kept although invalid: its TTL values do not parse but everything
   * else does. It still takes part in matching, and its bad value reaches resolveTtl, which returns
   * 'invalid' (object kept, Warning Event): a typo in the most specific policy must never hand its
   * objects over to a weaker policy with a shorter TTL.
   */
  invalid?: readonly string[];
  /**
   * Set only on the store's stand-in for an ignored policy (it could not be parsed): it ranks like
   * a policy that may select anything in its scope, and holds what it ranks first for (store.ts).
   */
  blocking?: readonly string[];
}

export type PolicyParseResult =
  | { ok: true; policy: Policy }
  | {
      ok: false;
      errors: string[];
      /** Present when only TTL values are bad: the policy still holds the objects it selects. */
      holding?: Policy;
    };

export function policyRef(kind: PolicyKind, namespace: string | undefined, name: string): string {
  return kind === 'TTLPolicy' ? `TTLPolicy/${namespace ?? ''}/${name}` : `ClusterTTLPolicy/${name}`;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const MAX_ERRORS = 20;
const MAX_ERROR_LENGTH = 300;

// apiVersion `group/version` or `version` (core); group a DNS subdomain, version a DNS label.
const API_VERSION =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const KIND = /^[A-Za-z][A-Za-z0-9]*$/;

// Optional fields accept null as absent: the API server prunes nulls of non-nullable fields, so a
// null can only come from a hand-made object, and it means "not set" there too.
const str = () => z.string().nullish();

const matcherSchema = z.object({
  condition: z
    .object({
      type: z.string().min(1, 'must not be empty'),
      status: z.enum(['True', 'False', 'Unknown']).nullish(),
    })
    .nullish(),
  field: str(),
  values: z.array(z.string()).nullish(),
});

const resourceSchema = z.object({
  apiVersion: z
    .string()
    .regex(API_VERSION, 'must be "group/version" (e.g. "batch/v1") or "v1" for the core group'),
  kind: z.string().max(63).regex(KIND, 'must be a kind name such as "Job"'),
  finished: z
    .object({
      succeeded: matcherSchema.nullish(),
      failed: matcherSchema.nullish(),
      timeField: str(),
    })
    .nullish(),
});

const groupLimitSchema = z.object({
  succeeded: z.number().int().min(0).max(INT32_MAX).nullish(),
  failed: z.number().int().min(0).max(INT32_MAX).nullish(),
  groupBy: str(),
});

const policySchema = z.object({
  apiVersion: str(),
  kind: str(),
  metadata: z.object({
    name: z.string().min(1, 'must not be empty'),
    namespace: str(),
    uid: z.string().min(1, 'must not be empty'),
    generation: z.number().int().nonnegative().nullish(),
    annotations: z.record(z.string(), z.string()).nullish(),
  }),
  spec: z.object({
    resources: z.array(resourceSchema).min(1, 'must name at least one kind'),
    // Selectors are checked by validateLabelSelector (own error messages, prototype-safe maps).
    selector: z.unknown().optional(),
    namespaceSelector: z.unknown().optional(),
    ttl: str(),
    ttlSucceeded: str(),
    ttlFailed: str(),
    propagationPolicy: z.enum(['Foreground', 'Background', 'Orphan']).nullish(),
    dryRun: z.boolean().nullish(),
    archive: z.enum(['off', 'best-effort', 'required']).nullish(),
    priority: z.number().int().min(INT32_MIN).max(INT32_MAX).nullish(),
    enforce: z.enum(['none', 'max']).nullish(),
    history: groupLimitSchema.nullish(),
    keepLatest: groupLimitSchema.nullish(),
    ttlPods: str(),
    maxTtl: str(),
    maxTtlSucceeded: str(),
    maxTtlFailed: str(),
    allowKeep: z.boolean().nullish(),
    maxDeletions: str(),
    noticeBefore: str(),
  }),
});

type RawMatcher = z.infer<typeof matcherSchema>;

/** history, keepLatest, ttlPods and the ClusterTTLPolicy caps (issue 18): a bad value ignores the policy. */
function parseRetention(
  spec: z.infer<typeof policySchema>['spec'],
  kind: PolicyKind,
  policy: Policy,
  errors: string[],
): void {
  for (const field of ['history', 'keepLatest'] as const) {
    const v = spec[field];
    if (v == null) continue;
    const g = parseGroupBy(v.groupBy ?? 'owner');
    if (!g.ok) {
      errors.push(`spec.${field}.groupBy: ${g.error}`);
      continue;
    }
    const limit: GroupLimit = { groupBy: g.groupBy };
    if (v.succeeded != null) limit.succeeded = v.succeeded;
    if (v.failed != null) limit.failed = v.failed;
    policy[field] = limit;
  }
  for (const field of ['ttlPods', 'maxTtl', 'maxTtlSucceeded', 'maxTtlFailed'] as const) {
    const v = spec[field];
    if (v == null) continue;
    if (field !== 'ttlPods' && kind !== 'ClusterTTLPolicy') {
      errors.push(`spec.${field}: only a ClusterTTLPolicy sets a cluster maximum`);
      continue;
    }
    const d = parseDuration(v);
    if (d.ok) policy[field] = v;
    else errors.push(`spec.${field}: ${d.error}`);
  }
  if (spec.allowKeep != null) {
    if (kind !== 'ClusterTTLPolicy') errors.push('spec.allowKeep: only a ClusterTTLPolicy has one');
    else policy.allowKeep = spec.allowKeep;
  }
}

function pathText(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s === '' ? String(p) : `.${String(p)}`;
  }
  return s;
}

function issueText(issue: z.core.$ZodIssue): string {
  const where = pathText(issue.path);
  // zod says "expected string, received undefined" for a missing field; say it plainly.
  const message =
    issue.code === 'invalid_type' && /received undefined$/.test(issue.message)
      ? 'is required'
      : issue.message.replace(/^Invalid input: /, '');
  return where === '' ? message : `${where}: ${message}`;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > MAX_ERROR_LENGTH ? `${flat.slice(0, MAX_ERROR_LENGTH)}…` : flat;
}

function finish(errors: string[]): { ok: false; errors: string[] } {
  const lines = errors.slice(0, MAX_ERRORS).map(oneLine);
  if (errors.length > MAX_ERRORS) lines.push(`… and ${errors.length - MAX_ERRORS} more errors`);
  return { ok: false, errors: lines };
}

function toMatcher(m: RawMatcher, where: string, errors: string[]): FinishMatcher | undefined {
  const hasCondition = m.condition != null;
  const hasField = m.field != null;
  if (hasCondition === hasField) {
    errors.push(`${where}: needs exactly one of condition or field`);
    return undefined;
  }
  if (m.condition != null) {
    if (m.values != null) errors.push(`${where}.values: only goes with field, not condition`);
    const condition: { type: string; status?: string } = { type: m.condition.type };
    if (m.condition.status != null) condition.status = m.condition.status;
    return { condition };
  }
  return { field: m.field as string, values: m.values ?? [] };
}

/** The kinds whose finish is fixed by kttl (finishOf ignores a policy's rule for them). */
function fixedFinish(group: string, kind: string): string | null {
  if (!hasFixedFinish(group, kind)) return null;
  return kind === 'Job'
    ? 'batch Job (finished by its Complete/Failed condition)'
    : 'core Pod (finished by status.phase)';
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/**
 * Validates a TTLPolicy or ClusterTTLPolicy object as returned by the API. `kind` is used when the
 * object carries none (it must agree when it does). Never throws.
 */
export function parsePolicy(raw: unknown, kind?: PolicyKind): PolicyParseResult {
  try {
    return parseUnsafe(raw, kind);
  } catch (err) {
    // Belt and braces: a bug here must cost one policy, not the controller.
    return finish([`internal error while validating the policy: ${String((err as Error)?.message ?? err)}`]);
  }
}

function parseUnsafe(raw: unknown, kindHint: PolicyKind | undefined): PolicyParseResult {
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) return finish(parsed.error.issues.map(issueText));
  const { metadata, spec } = parsed.data;
  const errors: string[] = [];

  // Kind and scope.
  let kind: PolicyKind | undefined = kindHint;
  if (parsed.data.kind != null) {
    if (parsed.data.kind !== 'TTLPolicy' && parsed.data.kind !== 'ClusterTTLPolicy') {
      return finish([`kind: ${JSON.stringify(parsed.data.kind)} is not TTLPolicy or ClusterTTLPolicy`]);
    }
    if (kindHint !== undefined && parsed.data.kind !== kindHint) {
      return finish([`kind: ${parsed.data.kind} where ${kindHint} was expected`]);
    }
    kind = parsed.data.kind;
  }
  if (kind === undefined) return finish(['kind: is required (TTLPolicy or ClusterTTLPolicy)']);
  if (parsed.data.apiVersion != null && groupOf(parsed.data.apiVersion) !== POLICY_GROUP) {
    errors.push(`apiVersion: ${JSON.stringify(parsed.data.apiVersion)} is not in group ${POLICY_GROUP}`);
  }
  const namespace = metadata.namespace ?? '';
  if (kind === 'TTLPolicy' && namespace === '')
    errors.push('metadata.namespace: is required for a TTLPolicy');
  if (kind === 'ClusterTTLPolicy' && namespace !== '') {
    errors.push('metadata.namespace: must be empty for a ClusterTTLPolicy (it is cluster-scoped)');
  }

  // Resources: one entry per group/kind, each finish rule usable.
  const resources: PolicyResource[] = [];
  const seen = new Map<string, number>();
  spec.resources.forEach((r, i) => {
    const where = `spec.resources[${i}]`;
    const group = groupOf(r.apiVersion);
    const key = `${group}/${r.kind}`;
    const first = seen.get(key);
    if (first !== undefined) {
      errors.push(
        `${where}: ${r.kind} in group ${JSON.stringify(group)} is already listed at spec.resources[${first}] (one entry per kind; versions do not count)`,
      );
    } else {
      seen.set(key, i);
    }
    const entry: PolicyResource = { apiVersion: r.apiVersion, group, kind: r.kind };
    if (r.finished != null) {
      const fixed = fixedFinish(group, r.kind);
      if (fixed) errors.push(`${where}.finished: not allowed for ${fixed}`);
      const rule: FinishRule = {};
      const before = errors.length;
      if (r.finished.succeeded != null) {
        rule.succeeded = toMatcher(r.finished.succeeded, `${where}.finished.succeeded`, errors);
      }
      if (r.finished.failed != null) {
        rule.failed = toMatcher(r.finished.failed, `${where}.finished.failed`, errors);
      }
      if (rule.succeeded === undefined) delete rule.succeeded;
      if (rule.failed === undefined) delete rule.failed;
      if (r.finished.timeField != null) rule.timeField = r.finished.timeField;
      if (errors.length === before) {
        const e = finishRuleError(rule);
        if (e) errors.push(`${where}.${e.startsWith('finished.') ? e : `finished: ${e}`}`);
      }
      entry.finished = rule;
    }
    resources.push(entry);
  });

  // Selectors.
  let selector: LabelSelector | undefined;
  if (spec.selector != null) {
    const s = validateLabelSelector(spec.selector, 'spec.selector');
    if (s.ok) selector = s.selector;
    else errors.push(...s.errors);
  }
  let namespaceSelector: LabelSelector | undefined;
  if (spec.namespaceSelector != null) {
    if (kind === 'TTLPolicy') {
      errors.push(
        'spec.namespaceSelector: only a ClusterTTLPolicy has one (a TTLPolicy applies in its namespace)',
      );
    } else {
      const s = validateLabelSelector(spec.namespaceSelector, 'spec.namespaceSelector');
      if (s.ok) namespaceSelector = s.selector;
      else errors.push(...s.errors);
    }
  }

  // TTL values: checked last and separately, so a policy whose only fault is a TTL value can still
  // hold its objects (see Policy.invalid).
  const ttlErrors: string[] = [];
  for (const field of ['ttl', 'ttlSucceeded', 'ttlFailed'] as const) {
    const v = spec[field];
    if (v == null) continue;
    const d = parseDuration(v);
    if (!d.ok) ttlErrors.push(`spec.${field}: ${d.error}`);
  }

  const policy: Policy = {
    ref: policyRef(kind, namespace, metadata.name),
    kind,
    scope: kind === 'TTLPolicy' ? 'namespace' : 'cluster',
    name: metadata.name,
    uid: metadata.uid,
    generation: metadata.generation ?? 0,
    resources,
    dryRun: spec.dryRun ?? false,
    priority: spec.priority ?? 0,
    enforce: spec.enforce ?? 'none',
  };
  if (kind === 'TTLPolicy') policy.namespace = namespace;
  if (selector) policy.selector = selector;
  if (namespaceSelector) policy.namespaceSelector = namespaceSelector;
  if (spec.ttl != null) policy.ttl = spec.ttl;
  if (spec.ttlSucceeded != null) policy.ttlSucceeded = spec.ttlSucceeded;
  if (spec.ttlFailed != null) policy.ttlFailed = spec.ttlFailed;
  if (spec.propagationPolicy != null) policy.propagationPolicy = spec.propagationPolicy;
  if (spec.archive != null) policy.archive = spec.archive;
  parseRetention(spec, kind, policy, errors);
  // Safety rails: a bad value ignores the policy (its stand-in holds what it ranks first for).
  if (spec.maxDeletions != null) {
    const m = parseDeletionLimit(spec.maxDeletions);
    if (m.ok) policy.maxDeletions = m.value;
    else errors.push(`spec.maxDeletions: ${m.error}`);
  }
  if (spec.noticeBefore != null) {
    const d = parseDuration(spec.noticeBefore);
    if (d.ok) policy.noticeBeforeSeconds = d.seconds;
    else errors.push(`spec.noticeBefore: ${d.error}`);
  }
  const resume = metadata.annotations?.['kttl.dev/resume'];
  if (resume != null) policy.resumeToken = resume;

  if (errors.length > 0) return finish([...errors, ...ttlErrors]);
  if (ttlErrors.length > 0) {
    const result = finish(ttlErrors);
    policy.invalid = result.errors;
    return { ...result, holding: deepFreeze(policy) };
  }
  return { ok: true, policy: deepFreeze(policy) };
}
