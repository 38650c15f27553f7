// Is an object finished, with which outcome, and since when? Pure functions over RAW objects:
// plain JSON as received from the API server. Timestamps may be ISO strings (watch events) or
// Date objects (client-node deserializes list results), so every time goes through toEpochMs.

import { BUILTIN_KINDS, builtinKind, kindKeyOf } from './kinds.ts';
import type { Finish, Outcome } from './types.ts';

/** How a custom resource reports a finish: a condition, or a field holding one of some values. */
export type FinishMatcher =
  | {
      /** A `.status.conditions[]` entry with this type and status (status defaults to "True"). */
      condition: { type: string; status?: string };
    }
  | {
      /** A simple dotted path such as `.status.phase`, and the values that mean this outcome. */
      field: string;
      values: string[];
    };

/** The `finished:` block of a policy resource entry (docs/policies.md). */
export interface FinishRule {
  succeeded?: FinishMatcher;
  failed?: FinishMatcher;
  /** Dotted path to a timestamp used as the finish time when the matcher has none of its own. */
  timeField?: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An own property only: never the prototype's (`constructor`, `__proto__`, ...). */
function own(o: unknown, key: string): unknown {
  return isObj(o) && Object.hasOwn(o, key) ? o[key] : undefined;
}

// RFC 3339 as Kubernetes writes metav1.Time / metav1.MicroTime. Stricter than Date.parse, which
// accepts things like "March 7" or "2024".
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
/** Go's zero time.Time (0001-01-01T00:00:00Z), which upstream treats as "no time". */
const GO_ZERO_TIME_MS = -62135596800000;

/**
 * Epoch milliseconds of a Kubernetes timestamp given as an RFC 3339 string or a Date; null for
 * anything else (missing, unparsable, an invalid Date, Go's zero time). Numbers are not accepted:
 * the API never sends times as numbers, and guessing seconds vs milliseconds is unsafe.
 */
export function toEpochMs(v: unknown): number | null {
  let ms: number;
  if (v instanceof Date) {
    ms = v.getTime();
  } else if (typeof v === 'string') {
    if (!RFC3339.test(v)) return null;
    ms = Date.parse(v);
  } else {
    return null;
  }
  if (!Number.isFinite(ms) || ms === GO_ZERO_TIME_MS) return null;
  return ms;
}

function conditions(raw: unknown): unknown[] {
  const list = own(own(raw, 'status'), 'conditions');
  return Array.isArray(list) ? list : [];
}

/**
 * batch/v1 Job, exactly as upstream `jobFinishTime` / `IsJobFinished`
 * (kubernetes pkg/controller/ttlafterfinished, pkg/controller/job/util): the FIRST condition of
 * type `Complete` or `Failed` with status "True". The interim `SuccessCriteriaMet` and
 * `FailureTarget` conditions do not count (the Job is still terminating its pods), and neither
 * `status.completionTime` nor the active/succeeded/failed counters are read.
 * atMs is that condition's lastTransitionTime, or null when missing: upstream treats that as an
 * error and never deletes; so must the caller (timeSource stays 'condition', not 'firstSeen').
 */
export function jobFinish(raw: unknown): Finish | null {
  for (const c of conditions(raw)) {
    const type = own(c, 'type');
    if ((type === 'Complete' || type === 'Failed') && own(c, 'status') === 'True') {
      return {
        outcome: type === 'Complete' ? 'succeeded' : 'failed',
        atMs: toEpochMs(own(c, 'lastTransitionTime')),
        timeSource: 'condition',
        reason: `condition ${type}=True`,
      };
    }
  }
  return null;
}

const POD_STATUS_LISTS = ['containerStatuses', 'initContainerStatuses', 'ephemeralContainerStatuses'];

/**
 * v1 Pod: `.status.phase` Succeeded or Failed. A Pod has no finish condition, so the finish time
 * is the latest `state.terminated.finishedAt` over all its container statuses (regular, init,
 * ephemeral). When there is none (e.g. a Pod failed by the kubelet before any container ran, or
 * evicted), atMs is null with timeSource 'firstSeen': the controller substitutes the time it first
 * saw the Pod finished.
 */
export function podFinish(raw: unknown): Finish | null {
  const status = own(raw, 'status');
  const phase = own(status, 'phase');
  if (phase !== 'Succeeded' && phase !== 'Failed') return null;
  let latest: number | null = null;
  for (const listName of POD_STATUS_LISTS) {
    const list = own(status, listName);
    if (!Array.isArray(list)) continue;
    for (const cs of list) {
      const ms = toEpochMs(own(own(own(cs, 'state'), 'terminated'), 'finishedAt'));
      if (ms !== null && (latest === null || ms > latest)) latest = ms;
    }
  }
  return {
    outcome: phase === 'Succeeded' ? 'succeeded' : 'failed',
    atMs: latest,
    timeSource: latest === null ? 'firstSeen' : 'containerFinishedAt',
    reason: `.status.phase=${phase}`,
  };
}

const PATH_SEGMENT = /^[A-Za-z0-9_-]+$/;
const MAX_PATH_LENGTH = 256;

/**
 * Parses a simple dotted path: `.status.phase`, `.status.applicationState.state`. Each segment is
 * letters, digits, `_` or `-`; no indexing, no quoting, no wildcards.
 */
export function parsePath(path: string): { ok: true; segments: string[] } | { ok: false; error: string } {
  const bad = (why: string) => ({
    ok: false as const,
    error: `invalid field path ${JSON.stringify(path)}: ${why}`,
  });
  if (typeof path !== 'string' || path === '') return bad('empty');
  if (path.length > MAX_PATH_LENGTH) return bad(`longer than ${MAX_PATH_LENGTH} characters`);
  if (!path.startsWith('.')) return bad('must start with "." (e.g. ".status.phase")');
  const segments = path.slice(1).split('.');
  for (const seg of segments) {
    if (seg === '') return bad('empty segment');
    if (!PATH_SEGMENT.test(seg))
      return bad(`segment ${JSON.stringify(seg)} may hold only letters, digits, "_" and "-"`);
  }
  return { ok: true, segments };
}

/**
 * Reads a simple dotted path (see parsePath) from a plain object, following own properties only.
 * Returns undefined when the path is malformed or any step is missing or not an object.
 */
export function readPath(obj: unknown, path: string): unknown {
  const parsed = parsePath(path);
  if (!parsed.ok) return undefined;
  let cur: unknown = obj;
  for (const seg of parsed.segments) {
    cur = own(cur, seg);
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** A problem with a policy's finish rule (malformed path, empty values...), or null if usable. */
export function finishRuleError(rule: FinishRule): string | null {
  if (rule.succeeded === undefined && rule.failed === undefined) {
    return 'finish rule has neither succeeded nor failed';
  }
  for (const [name, m] of [
    ['succeeded', rule.succeeded],
    ['failed', rule.failed],
  ] as const) {
    if (m === undefined) continue;
    if ('condition' in m) {
      if (typeof m.condition?.type !== 'string' || m.condition.type === '') {
        return `finished.${name}.condition.type must be a non-empty string`;
      }
    } else {
      const p = parsePath(m.field);
      if (!p.ok) return `finished.${name}.field: ${p.error}`;
      if (!Array.isArray(m.values) || m.values.length === 0)
        return `finished.${name}.values must not be empty`;
    }
  }
  if (rule.timeField !== undefined) {
    const p = parsePath(rule.timeField);
    if (!p.ok) return `finished.timeField: ${p.error}`;
  }
  return null;
}

type Match = { atMs: number | null; timeSource: Finish['timeSource']; reason: string };

function match(raw: unknown, m: FinishMatcher, timeField: string | undefined): Match | null {
  const fallbackTime = (): Pick<Match, 'atMs' | 'timeSource'> => {
    const t = timeField === undefined ? null : toEpochMs(readPath(raw, timeField));
    return t === null ? { atMs: null, timeSource: 'firstSeen' } : { atMs: t, timeSource: 'field' };
  };
  if ('condition' in m) {
    const want = m.condition.status ?? 'True';
    for (const c of conditions(raw)) {
      if (own(c, 'type') === m.condition.type && own(c, 'status') === want) {
        const t = toEpochMs(own(c, 'lastTransitionTime'));
        const time = t === null ? fallbackTime() : { atMs: t, timeSource: 'condition' as const };
        return { ...time, reason: `condition ${m.condition.type}=${want}` };
      }
    }
    return null;
  }
  const v = readPath(raw, m.field);
  // Strings as such; numbers and booleans by their JSON text (`values: ["true"]`). Nothing else.
  const text =
    typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  if (text === undefined || !m.values.includes(text)) return null;
  return { ...fallbackTime(), reason: `${m.field}=${text}` };
}

/**
 * A custom resource against a finish rule. A condition matcher takes the condition's
 * lastTransitionTime (timeSource 'condition'), falling back to `rule.timeField`; a field matcher
 * takes `rule.timeField` (timeSource 'field'). Without a usable time: atMs null, 'firstSeen'.
 * A malformed path never matches (validate rules with finishRuleError).
 */
export function customFinish(raw: unknown, rule: FinishRule): Finish | null {
  // If both outcomes match, failed wins: an object that reports a failure in any way must not be
  // cleaned up on the (usually shorter) success TTL, which would destroy the evidence a failure
  // TTL exists to keep; and a spurious "failed" at worst keeps an object longer.
  const order: Array<[Outcome, FinishMatcher | undefined]> = [
    ['failed', rule.failed],
    ['succeeded', rule.succeeded],
  ];
  for (const [outcome, m] of order) {
    if (m === undefined) continue;
    const hit = match(raw, m, rule.timeField);
    if (hit !== null) return { outcome, ...hit };
  }
  return null;
}

/**
 * The built-in finish rules of custom kinds, keyed `group/Kind`: a view of the kind registry
 * (src/rules/kinds.ts), where each rule is written with its caveats.
 */
export const BUILTIN_FINISH_RULES: Readonly<Record<string, Readonly<FinishRule>>> = Object.freeze(
  Object.fromEntries(
    BUILTIN_KINDS.flatMap((k) => ('rule' in k.finish ? [[kindKeyOf(k.group, k.kind), k.finish.rule]] : [])),
  ),
);

/**
 * Which finish rule judges an object (src/policy/match.ts chooseFinishRule): the built-in one (or
 * the fixed Job/Pod rule); one that policies selecting the object give (keyed by finishRuleKey);
 * or none can be used — conflicting rules, or policies whose reach is not known yet — and the
 * object counts as not finished, so it is kept.
 */
export type FinishChoice =
  | { kind: 'builtin' }
  | { kind: 'policy'; key: string; refs: readonly string[] }
  | { kind: 'conflict'; refs: readonly string[]; reason: string }
  | { kind: 'unknown'; reason: string };

export const BUILTIN_CHOICE: FinishChoice = Object.freeze({ kind: 'builtin' });

/** An object's finish under each policy rule of its kind, keyed by rule (computed at ingest). */
export type RuleFinishes = Readonly<Record<string, Finish | null>>;

/**
 * The finish that counts for an object: its built-in finish, or the one its chosen policy rule
 * gave at ingest. A rule the object was not evaluated under (its kind is being re-read after a
 * policy change) gives no finish: kept until the re-read, never judged by the wrong rule.
 */
export function chosenFinish(
  builtin: Finish | null,
  byRule: RuleFinishes | undefined,
  choice: FinishChoice,
): { finish: Finish | null; blocked?: string } {
  switch (choice.kind) {
    case 'builtin':
      return { finish: builtin };
    case 'policy': {
      if (byRule === undefined || !Object.hasOwn(byRule, choice.key))
        return {
          finish: null,
          blocked: `the finish rule of ${choice.refs.join(', ')} is being applied (kind re-read)`,
        };
      return { finish: byRule[choice.key] ?? null };
    }
    case 'conflict':
    case 'unknown':
      return { finish: null, blocked: choice.reason };
  }
}

/** The group of an apiVersion: `batch/v1` → `batch`, `v1` → `` (the core group). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** The built-in finish rule for a kind, if any. */
export function builtinFinishRule(apiVersion: string, kind: string): Readonly<FinishRule> | null {
  const key = `${groupOf(apiVersion)}/${kind}`;
  return Object.hasOwn(BUILTIN_FINISH_RULES, key) ? (BUILTIN_FINISH_RULES[key] ?? null) : null;
}

/** batch Jobs and core Pods finish by kttl's fixed rules; no policy rule applies to them. */
export function hasFixedFinish(group: string, kind: string): boolean {
  const k = builtinKind(group, kind);
  return k !== undefined && 'fixed' in k.finish;
}

/**
 * The finish of any object: batch Jobs and core Pods by their fixed rules, anything else by the
 * given rule (a policy's), else the built-in rule for its kind; null when not finished or no rule.
 * `apiVersion`/`kind` may be passed for list items, which the API server sends without them.
 */
export function finishOf(
  raw: unknown,
  rule?: FinishRule | null,
  type?: { apiVersion: string; kind: string },
): Finish | null {
  const apiVersion = type?.apiVersion ?? own(raw, 'apiVersion');
  const kind = type?.kind ?? own(raw, 'kind');
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return null;
  const builtin = builtinKind(groupOf(apiVersion), kind);
  if (builtin !== undefined && 'fixed' in builtin.finish)
    return builtin.finish.fixed === 'job' ? jobFinish(raw) : podFinish(raw);
  const r = rule ?? builtinFinishRule(apiVersion, kind);
  return r === null ? null : customFinish(raw, r);
}
