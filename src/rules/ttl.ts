// Where an object's TTL comes from (docs/rules.md), first match wins:
//   1. kttl.dev/keep  2. hook delete policy  3. kttl.dev/ttl* annotations
//   4. Jobs: .spec.ttlSecondsAfterFinished  5. the matched policy  else: none.
// A value that cannot be used is never skipped over: it yields an 'invalid' decision, which keeps
// the object (and raises a Warning Event), because a typo must never lead to a deletion.

import { formatDuration, MAX_TTL_SECONDS, parseDuration } from './duration.ts';
import { groupOf } from './finish.ts';
import { parseHookPolicy } from './hooks.ts';
import { annotationOverLimit } from './summary.ts';
import {
  ANNOTATIONS,
  MAX_ANNOTATION_BYTES,
  type ObjectSummary,
  type Outcome,
  type PolicyTtl,
  type TtlDecision,
  type TtlSource,
} from './types.ts';

export interface ResolveOptions {
  /** The policy already matched to the object, if any. */
  policy: PolicyTtl | null;
  /** Whether `helm.sh/hook-delete-policy` is honoured (on by default; a flag turns it off). */
  helmHooks: boolean;
}

const NATIVE_FIELD = '.spec.ttlSecondsAfterFinished';

function annotation(obj: ObjectSummary, key: string): string | undefined {
  return Object.hasOwn(obj.annotations, key) ? obj.annotations[key] : undefined;
}

/** Shown in messages: long values are cut so an Event stays readable. */
function shown(value: string): string {
  return JSON.stringify(cut(value));
}

function cut(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}…` : value;
}

/** How many unknown hook items a message lists: a value of thousands must not make a huge Event. */
const MAX_LISTED = 3;

/**
 * A value over MAX_ANNOTATION_BYTES is invalid, so it keeps the object like any other invalid
 * value, and is never parsed. toSummary (src/rules/summary.ts) has cut it and noted its size; a
 * summary built another way is measured here.
 */
function oversized(
  obj: ObjectSummary,
  key: string,
  value: string,
  source: 'keep' | 'hook' | 'annotation',
): SourceRead | null {
  const noted =
    obj.oversized !== undefined && Object.hasOwn(obj.oversized, key) ? obj.oversized[key] : undefined;
  const bytes = noted ?? annotationOverLimit(value);
  if (bytes === null) return null;
  return invalid(
    source,
    key,
    value,
    `annotation ${key} is ${bytes} bytes, longer than the ${MAX_ANNOTATION_BYTES}-byte limit: kept (it starts ${shown(value)})`,
  );
}

/**
 * One TTL source as the object (or its policy) sets it, read once: the precedence below, `kttl
 * explain` (src/rules/verdict.ts) and the webhook (src/webhook/mutate.ts) all use these readings.
 */
export interface TtlSourceReading {
  /** Its place in the precedence: 1 keep, 2 hook, 3 kttl.dev/ttl*, 4 native field, 5 policy. */
  rule: 1 | 2 | 3 | 4 | 5;
  source: Exclude<TtlSource, 'none'>;
  /** The annotation key, field path, or `policy` for the matched policy. */
  key: string;
  /** For messages and `explain`: `annotation kttl.dev/ttl`, `field .spec.ttlSecondsAfterFinished`, `policy TTLPolicy/ns/x`. */
  where: string;
  /** The value as written (a policy's as `ttl=1h ttlFailed=7d`); undefined when not set. */
  value: string | undefined;
  read: SourceRead;
}

export type SourceRead =
  | { state: 'absent' }
  /** Set, but switched off (helm.sh/hook-delete-policy with --helm-hooks=false). */
  | { state: 'disabled'; why: string }
  /** Set to a value that cannot be used: it blocks deletion (never skipped over). */
  | { state: 'invalid'; decision: Extract<TtlDecision, { action: 'invalid' }> }
  /** kttl.dev/keep: "true" keeps, "false" is ignored. */
  | { state: 'keep'; keeps: boolean }
  /** A hook delete policy: which outcomes it deletes right after. */
  | { state: 'hook'; succeeded: boolean; failed: boolean }
  /** A duration for one outcome, or for both (outcome null). */
  | { state: 'ttl'; seconds: number; outcome: Outcome | null }
  /** The matched policy: its seconds per field, or a hold (no policy may decide yet). */
  | { state: 'policy'; seconds: { ttl?: number; ttlSucceeded?: number; ttlFailed?: number } }
  | { state: 'held'; why: string };

function absentOr(value: string | undefined, read: () => SourceRead): SourceRead {
  return value === undefined ? { state: 'absent' } : read();
}

function keepReading(obj: ObjectSummary): TtlSourceReading {
  const key = ANNOTATIONS.keep;
  const value = annotation(obj, key);
  return {
    rule: 1,
    source: 'keep',
    key,
    where: `annotation ${key}`,
    value,
    read: absentOr(value, () => {
      const v = value!;
      const tooLong = oversized(obj, key, v, 'keep');
      if (tooLong !== null) return tooLong;
      // Only the exact value "true" keeps, "false" is ignored, anything else is a typo that must
      // not delete ("True", "yes", " true"): invalid, which keeps too, with a warning.
      if (v === 'true' || v === 'false') return { state: 'keep', keeps: v === 'true' };
      return invalid('keep', key, v, `annotation ${key}: invalid value ${shown(v)} (use "true" or "false")`);
    }),
  };
}

function hookReading(obj: ObjectSummary, key: string, enabled: boolean): TtlSourceReading {
  const value = annotation(obj, key);
  return {
    rule: 2,
    source: 'hook',
    key,
    where: `annotation ${key}`,
    value,
    read: absentOr(value, () => {
      const v = value!;
      if (!enabled) return { state: 'disabled', why: 'ignored (--helm-hooks=false)' };
      const tooLong = oversized(obj, key, v, 'hook');
      if (tooLong !== null) return tooLong;
      const policy = parseHookPolicy(v);
      const unknown = policy.unknown;
      if (unknown.length > 0) {
        const more = unknown.length > MAX_LISTED ? ` and ${unknown.length - MAX_LISTED} more` : '';
        return invalid(
          'hook',
          key,
          v,
          `annotation ${key}: unknown value${unknown.length > 1 ? 's' : ''} ` +
            `${unknown.slice(0, MAX_LISTED).map(shown).join(', ')}${more} (use hook-succeeded, hook-failed or before-hook-creation)`,
        );
      }
      return { state: 'hook', succeeded: policy.succeeded, failed: policy.failed };
    }),
  };
}

function ttlAnnotationReading(obj: ObjectSummary, key: string, outcome: Outcome | null): TtlSourceReading {
  const value = annotation(obj, key);
  return {
    rule: 3,
    source: 'annotation',
    key,
    where: `annotation ${key}`,
    value,
    read: absentOr(value, () => {
      const v = value!;
      const tooLong = oversized(obj, key, v, 'annotation');
      if (tooLong !== null) return tooLong;
      const r = parseDuration(v);
      if (!r.ok) return invalid('annotation', key, v, `annotation ${key}: ${r.error}`);
      return { state: 'ttl', seconds: r.seconds, outcome };
    }),
  };
}

function fieldReading(obj: ObjectSummary): TtlSourceReading {
  const native = obj.nativeTtlSeconds;
  if (obj.nativeTtlInvalid !== undefined && native === null) {
    const text = obj.nativeTtlInvalid;
    return {
      rule: 4,
      source: 'field',
      key: NATIVE_FIELD,
      where: `field ${NATIVE_FIELD}`,
      value: text,
      read: invalid(
        'field',
        NATIVE_FIELD,
        text,
        `field ${NATIVE_FIELD}: ${text} is not a whole number of seconds from 0 to ${MAX_TTL_SECONDS}`,
      ),
    };
  }
  const value = native === null ? undefined : String(native);
  return {
    rule: 4,
    source: 'field',
    key: NATIVE_FIELD,
    where: `field ${NATIVE_FIELD}`,
    value,
    read: absentOr(value, () => {
      const n = native!;
      if (!Number.isInteger(n) || n < 0 || n > MAX_TTL_SECONDS) {
        return invalid(
          'field',
          NATIVE_FIELD,
          String(n),
          `field ${NATIVE_FIELD}: ${n} is not a whole number of seconds from 0 to ${MAX_TTL_SECONDS}`,
        );
      }
      return { state: 'ttl', seconds: n, outcome: null };
    }),
  };
}

const POLICY_FIELDS = ['ttlSucceeded', 'ttlFailed', 'ttl'] as const;

function policyReading(policy: PolicyTtl | null): TtlSourceReading {
  const given = policy === null ? [] : POLICY_FIELDS.filter((f) => policy[f] !== undefined);
  const value =
    policy === null
      ? undefined
      : policy.hold !== undefined
        ? 'held'
        : (['ttl', 'ttlSucceeded', 'ttlFailed'] as const)
            .filter((f) => policy[f] !== undefined)
            .map((f) => `${f}=${policy[f]}`)
            .join(' ');
  const read = (): SourceRead => {
    const p = policy!;
    if (p.hold !== undefined) return { state: 'held', why: p.hold };
    // Same rules as the annotations: any invalid value present blocks deletion.
    const seconds: { ttl?: number; ttlSucceeded?: number; ttlFailed?: number } = {};
    for (const field of given) {
      const v = p[field];
      const r = typeof v === 'string' ? parseDuration(v) : { ok: false as const, error: 'not a string' };
      if (!r.ok)
        return invalid('policy', `${p.ref} spec.${field}`, String(v), `policy ${p.ref} ${field}: ${r.error}`);
      seconds[field] = r.seconds;
    }
    return { state: 'policy', seconds };
  };
  return {
    rule: 5,
    source: 'policy',
    key: 'policy',
    where: policy ? `policy ${policy.ref}` : 'policy',
    value,
    read: policy === null || value === undefined ? { state: 'absent' } : read(),
  };
}

function invalid(
  source: Exclude<TtlSource, 'none'>,
  key: string,
  value: string,
  message: string,
): SourceRead {
  return { state: 'invalid', decision: { action: 'invalid', source, key, value, message } };
}

/**
 * Every TTL source of an object, in precedence order: keep, the kots and helm hooks, the three
 * kttl.dev/ttl* annotations (outcome-specific ones first), for Jobs the native field, the policy.
 */
export function readTtlSources(obj: ObjectSummary, opts: ResolveOptions): TtlSourceReading[] {
  const list = [
    keepReading(obj),
    hookReading(obj, ANNOTATIONS.kotsHook, true),
    hookReading(obj, ANNOTATIONS.helmHook, opts.helmHooks),
    ttlAnnotationReading(obj, ANNOTATIONS.ttlSucceeded, 'succeeded'),
    ttlAnnotationReading(obj, ANNOTATIONS.ttlFailed, 'failed'),
    ttlAnnotationReading(obj, ANNOTATIONS.ttl, null),
  ];
  // toSummary sets the native field only for batch Jobs; explain lists the row for every Job.
  if (
    obj.nativeTtlSeconds !== null ||
    obj.nativeTtlInvalid !== undefined ||
    (obj.kind === 'Job' && groupOf(obj.apiVersion) === 'batch')
  )
    list.push(fieldReading(obj));
  list.push(policyReading(opts.policy));
  return list;
}

/** What one source alone gives for an outcome (null: it does not apply to that outcome). */
export function decisionOf(
  reading: TtlSourceReading,
  outcome: Outcome,
  policy: PolicyTtl | null,
): TtlDecision | null {
  const r = reading.read;
  switch (r.state) {
    case 'absent':
    case 'disabled':
      return null;
    case 'invalid':
      return r.decision;
    case 'keep':
      return r.keeps ? { action: 'keep', source: 'keep', detail: `annotation ${reading.key}=true` } : null;
    case 'hook':
      return (outcome === 'succeeded' ? r.succeeded : r.failed)
        ? { action: 'ttl', source: 'hook', seconds: 0, detail: `hook ${reading.key}=${cut(reading.value!)}` }
        : null;
    case 'ttl':
      return r.outcome === null || r.outcome === outcome
        ? {
            action: 'ttl',
            source: reading.source as 'annotation' | 'field',
            seconds: r.seconds,
            detail: `${reading.source === 'field' ? 'field' : 'annotation'} ${reading.key}=${reading.source === 'field' ? reading.value : cut(reading.value!)}`,
          }
        : null;
    case 'held':
      return { action: 'none', source: 'none', detail: `kept: ${r.why}` };
    case 'policy': {
      const p = policy!;
      // The outcome-specific value wins over ttl.
      for (const field of [outcome === 'succeeded' ? 'ttlSucceeded' : 'ttlFailed', 'ttl'] as const) {
        const s = r.seconds[field];
        if (s === undefined) continue;
        const d: TtlDecision = {
          action: 'ttl',
          source: 'policy',
          seconds: s,
          detail: `policy ${p.ref} ${field}=${p[field]}`,
        };
        if (p.propagationPolicy !== undefined) d.propagationPolicy = p.propagationPolicy;
        if (p.dryRun !== undefined) d.dryRun = p.dryRun;
        return d;
      }
      return null;
    }
  }
}

/** THE precedence: the decision for an outcome and which reading gave it (null: none did). */
export function decideFrom(
  readings: readonly TtlSourceReading[],
  outcome: Outcome,
  policy: PolicyTtl | null,
): { decision: TtlDecision; winner: number | null } {
  // Rule by rule, first match wins. Within a rule every value present is validated first: an
  // invalid one blocks deletion even when another would apply (a typo in ttl-failed must not let
  // ttl delete a failed object early). Within rule 3 the outcome-specific annotation is listed
  // before kttl.dev/ttl, so the first applying one is the right one.
  for (let i = 0; i < readings.length; ) {
    const rule = readings[i]!.rule;
    let end = i;
    while (end < readings.length && readings[end]!.rule === rule) end++;
    for (let j = i; j < end; j++) {
      const r = readings[j]!.read;
      if (r.state === 'invalid') return { decision: r.decision, winner: j };
    }
    for (let j = i; j < end; j++) {
      const d = decisionOf(readings[j]!, outcome, policy);
      if (d !== null) return { decision: d, winner: j };
    }
    i = end;
  }
  return {
    decision: {
      action: 'none',
      source: 'none',
      detail: 'no TTL: no annotation, native field or policy applies',
    },
    winner: null,
  };
}

/**
 * The TTL decision for an object that finished with `outcome`. A policy hold (src/policy/store.ts)
 * keeps the object, but only where the object has no TTL of its own.
 */
export function resolveTtl(obj: ObjectSummary, outcome: Outcome, opts: ResolveOptions): TtlDecision {
  return decideFrom(readTtlSources(obj, opts), outcome, opts.policy).decision;
}

/** One line for logs and `kttl explain`: `ttl 1h30m (annotation kttl.dev/ttl=90m)`. */
export function describeDecision(d: TtlDecision): string {
  switch (d.action) {
    case 'keep':
      return `keep (${d.detail})`;
    case 'none':
      return d.detail;
    case 'invalid':
      return `invalid: ${d.message}`;
    case 'ttl':
      return `ttl ${formatDuration(d.seconds)} (${d.detail})`;
  }
}
