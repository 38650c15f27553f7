// Where an object's TTL comes from: SPEC section 2, first match wins.
//   1. kttl.dev/keep  2. hook delete policy  3. kttl.dev/ttl* annotations
//   4. Jobs: .spec.ttlSecondsAfterFinished  5. the matched policy  else: none.
// A value that cannot be used is never skipped over: it yields an 'invalid' decision, which keeps
// the object (and raises a Warning Event), because a typo must never lead to a deletion.

import { formatDuration, MAX_TTL_SECONDS, parseDuration } from './duration.ts';
import { parseHookPolicy } from './hooks.ts';
import { annotationOverLimit } from './summary.ts';
import {
  ANNOTATIONS,
  MAX_ANNOTATION_BYTES,
  type ObjectSummary,
  type Outcome,
  type PolicyTtl,
  type TtlDecision,
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
): TtlDecision | null {
  const noted =
    obj.oversized !== undefined && Object.hasOwn(obj.oversized, key) ? obj.oversized[key] : undefined;
  const bytes = noted ?? annotationOverLimit(value);
  if (bytes === null) return null;
  return {
    action: 'invalid',
    source,
    key,
    value,
    message: `annotation ${key} is ${bytes} bytes, longer than the ${MAX_ANNOTATION_BYTES}-byte limit: kept (it starts ${shown(value)})`,
  };
}

export function resolveTtl(obj: ObjectSummary, outcome: Outcome, opts: ResolveOptions): TtlDecision {
  // 1. keep: only the exact value "true" keeps, "false" is ignored, anything else is a typo that
  // must not delete ("True", "yes", " true"): invalid, which keeps too, with a warning.
  const keep = annotation(obj, ANNOTATIONS.keep);
  const keepTooLong = keep === undefined ? null : oversized(obj, ANNOTATIONS.keep, keep, 'keep');
  if (keepTooLong !== null) return keepTooLong;
  if (keep === 'true')
    return { action: 'keep', source: 'keep', detail: `annotation ${ANNOTATIONS.keep}=true` };
  if (keep !== undefined && keep !== 'false') {
    return {
      action: 'invalid',
      source: 'keep',
      key: ANNOTATIONS.keep,
      value: keep,
      message: `annotation ${ANNOTATIONS.keep}: invalid value ${shown(keep)} (use "true" or "false")`,
    };
  }

  // 2. hook delete policies. Both annotations count (union) when both are present; helm's only
  // when enabled. An unknown value anywhere is invalid: nothing is deleted. A policy that does not
  // list this outcome (hook-succeeded on a failed object, or only before-hook-creation) falls
  // through to the next sources: the hook only speeds up deletion for its outcome, it does not
  // pin the object forever.
  const hookKeys: string[] = [ANNOTATIONS.kotsHook];
  if (opts.helmHooks) hookKeys.push(ANNOTATIONS.helmHook);
  let hookMatch: { key: string; value: string } | null = null;
  for (const key of hookKeys) {
    const value = annotation(obj, key);
    if (value === undefined) continue;
    const tooLong = oversized(obj, key, value, 'hook');
    if (tooLong !== null) return tooLong;
    const policy = parseHookPolicy(value);
    const unknown = policy.unknown;
    if (unknown.length > 0) {
      const more = unknown.length > MAX_LISTED ? ` and ${unknown.length - MAX_LISTED} more` : '';
      return {
        action: 'invalid',
        source: 'hook',
        key,
        value,
        message:
          `annotation ${key}: unknown value${unknown.length > 1 ? 's' : ''} ` +
          `${unknown.slice(0, MAX_LISTED).map(shown).join(', ')}${more} (use hook-succeeded, hook-failed or before-hook-creation)`,
      };
    }
    if (hookMatch === null && (outcome === 'succeeded' ? policy.succeeded : policy.failed)) {
      hookMatch = { key, value };
    }
  }
  if (hookMatch !== null) {
    return {
      action: 'ttl',
      source: 'hook',
      seconds: 0,
      detail: `hook ${hookMatch.key}=${cut(hookMatch.value)}`,
    };
  }

  // 3. kttl.dev/ttl* annotations. All present ones are validated first: an invalid one blocks
  // deletion even when another would apply (a typo in ttl-failed must not let ttl delete a
  // failed object early).
  const specificKey = outcome === 'succeeded' ? ANNOTATIONS.ttlSucceeded : ANNOTATIONS.ttlFailed;
  const annotationKeys = [ANNOTATIONS.ttlSucceeded, ANNOTATIONS.ttlFailed, ANNOTATIONS.ttl];
  const parsed = new Map<string, number>();
  for (const key of annotationKeys) {
    const value = annotation(obj, key);
    if (value === undefined) continue;
    const tooLong = oversized(obj, key, value, 'annotation');
    if (tooLong !== null) return tooLong;
    const r = parseDuration(value);
    if (!r.ok) {
      return {
        action: 'invalid',
        source: 'annotation',
        key,
        value,
        message: `annotation ${key}: ${r.error}`,
      };
    }
    parsed.set(key, r.seconds);
  }
  for (const key of [specificKey, ANNOTATIONS.ttl]) {
    const seconds = parsed.get(key);
    if (seconds !== undefined) {
      return {
        action: 'ttl',
        source: 'annotation',
        seconds,
        detail: `annotation ${key}=${cut(annotation(obj, key)!)}`,
      };
    }
  }

  // 4. Jobs: the native field (toSummary sets it only for batch Jobs).
  const native = obj.nativeTtlSeconds;
  if (native !== null) {
    if (!Number.isInteger(native) || native < 0 || native > MAX_TTL_SECONDS) {
      return {
        action: 'invalid',
        source: 'field',
        key: NATIVE_FIELD,
        value: String(native),
        message: `field ${NATIVE_FIELD}: ${native} is not a whole number of seconds from 0 to ${MAX_TTL_SECONDS}`,
      };
    }
    return { action: 'ttl', source: 'field', seconds: native, detail: `field ${NATIVE_FIELD}=${native}` };
  }

  // 5. The matched policy: same rules as the annotations (outcome-specific wins over ttl; any
  // invalid value present blocks deletion).
  const policy = opts.policy;
  if (policy?.hold !== undefined) return { action: 'none', source: 'none', detail: `kept: ${policy.hold}` };
  if (policy !== null) {
    const fields = ['ttlSucceeded', 'ttlFailed', 'ttl'] as const;
    const seconds = new Map<string, number>();
    for (const field of fields) {
      const value = policy[field];
      if (value === undefined) continue;
      const r =
        typeof value === 'string' ? parseDuration(value) : { ok: false as const, error: 'not a string' };
      if (!r.ok) {
        return {
          action: 'invalid',
          source: 'policy',
          key: `${policy.ref} spec.${field}`,
          value: String(value),
          message: `policy ${policy.ref} ${field}: ${r.error}`,
        };
      }
      seconds.set(field, r.seconds);
    }
    for (const field of [outcome === 'succeeded' ? 'ttlSucceeded' : 'ttlFailed', 'ttl'] as const) {
      const s = seconds.get(field);
      if (s === undefined) continue;
      const decision: TtlDecision = {
        action: 'ttl',
        source: 'policy',
        seconds: s,
        detail: `policy ${policy.ref} ${field}=${policy[field]}`,
      };
      if (policy.propagationPolicy !== undefined) decision.propagationPolicy = policy.propagationPolicy;
      if (policy.dryRun !== undefined) decision.dryRun = policy.dryRun;
      return decision;
    }
  }

  return { action: 'none', source: 'none', detail: 'no TTL: no annotation, native field or policy applies' };
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
