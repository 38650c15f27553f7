// The retention rules over the TTL precedence (src/rules/ttl.ts decideFrom), in this order
// (docs/rules.md, docs/decisions.md "Retention precedence"):
//   a policy hold keeps, whatever follows;
//   kttl.dev/keep keeps — unless a ClusterTTLPolicy cap says allowKeep: false;
//   an invalid kttl.dev/expires keeps (Warning), as an invalid TTL value does;
//   an invalid TTL value keeps;
//   unfinished: only kttl.dev/expires may delete (a person wrote a date);
//   history: beyond the newest N of its group and outcome → deleted now;
//   keepLatest: among the newest N → kept past its TTL;
//   cap: nothing (TTL, no TTL, keepLatest) keeps it longer than the cluster maximum;
//   kttl.dev/expires: deleted at that time if that is earlier than the above.
import { formatDuration } from './duration.ts';
import { parseExpires } from './expires.ts';
import { beyondHistory, type GroupRule, groupText, protectedLatest } from './history.ts';
import { annotationOverLimit } from './summary.ts';
import {
  ANNOTATIONS,
  type Finish,
  MAX_ANNOTATION_BYTES,
  type ObjectSummary,
  type Outcome,
  type PolicyTtl,
  type TtlDecision,
} from './types.ts';

export type { GroupRule };

export interface RetentionInput {
  obj: ObjectSummary;
  /** The finish that counts (null: not finished). */
  finish: Finish | null;
  outcome: Outcome;
  /** The TTL precedence's decision for this outcome. */
  base: TtlDecision;
  policy: PolicyTtl | null;
  nowMs: number;
  /** The object's 0-based rank (0 = newest) in its group for that rule and its outcome; undefined: not ranked. */
  rank?: (rule: GroupRule) => number | undefined;
}

type TtlD = Extract<TtlDecision, { action: 'ttl' }>;

/** The kttl.dev/expires reading: absent, invalid (a decision that keeps), or its time. */
export function readExpires(
  obj: ObjectSummary,
  nowMs: number,
):
  | { state: 'absent' }
  | { state: 'invalid'; decision: TtlDecision }
  | { state: 'at'; atMs: number; value: string } {
  const key = ANNOTATIONS.expires;
  if (!Object.hasOwn(obj.annotations, key)) return { state: 'absent' };
  const value = obj.annotations[key]!;
  const invalid = (message: string) => ({
    state: 'invalid' as const,
    decision: { action: 'invalid' as const, source: 'expires' as const, key, value, message },
  });
  const noted =
    obj.oversized !== undefined && Object.hasOwn(obj.oversized, key) ? obj.oversized[key] : undefined;
  const bytes = noted ?? annotationOverLimit(value);
  if (bytes !== null)
    return invalid(
      `annotation ${key} is ${bytes} bytes, longer than the ${MAX_ANNOTATION_BYTES}-byte limit: kept`,
    );
  const r = parseExpires(value, nowMs);
  if (!r.ok) return invalid(`annotation ${key}: ${r.error}`);
  return { state: 'at', atMs: r.atMs, value };
}

function options(d: TtlD, base: TtlDecision, policy: PolicyTtl | null): TtlD {
  const from = base.action === 'ttl' ? base : policy;
  if (from?.propagationPolicy !== undefined) d.propagationPolicy = from.propagationPolicy;
  if (from?.dryRun !== undefined) d.dryRun = from.dryRun;
  return d;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

export function retain(i: RetentionInput): TtlDecision {
  const { obj, finish, outcome, base, policy } = i;
  if (policy?.hold !== undefined) return base;
  const cap = policy?.cap?.[outcome];
  const capped = (why: string): TtlD =>
    options(
      {
        action: 'ttl',
        source: 'cap',
        seconds: cap!.seconds,
        detail: `capped by ${cap!.ref} ${cap!.field}: ${why}`,
      },
      base,
      policy,
    );
  if (base.action === 'keep' && base.source === 'keep') {
    if (cap !== undefined && policy?.cap?.allowKeep === false)
      return capped(`${ANNOTATIONS.keep} is not allowed to escape it (allowKeep: false)`);
    return base;
  }
  const expires = readExpires(obj, i.nowMs);
  if (expires.state === 'invalid') return expires.decision;
  if (base.action === 'invalid') return base;
  const expiresDecision = (atMs: number, value: string): TtlD =>
    options(
      {
        action: 'ttl',
        source: 'expires',
        seconds: finish?.atMs != null ? Math.max(0, Math.ceil((atMs - finish.atMs) / 1000)) : 0,
        expireAtMs: atMs,
        detail: `annotation ${ANNOTATIONS.expires}=${value.slice(0, 64)} (at ${iso(atMs)}, finished or not)`,
      },
      base,
      policy,
    );
  if (finish === null) return expires.state === 'at' ? expiresDecision(expires.atMs, expires.value) : base;

  const history = policy?.history;
  const historyLimit = history?.[outcome];
  if (history !== undefined && historyLimit !== undefined) {
    const rank = i.rank?.('history');
    if (rank !== undefined && beyondHistory(rank, historyLimit))
      return options(
        {
          action: 'ttl',
          source: 'history',
          seconds: 0,
          detail: `history: ${outcome} #${rank + 1} of ${groupText(obj, history.groupBy)}, beyond the newest ${historyLimit} kept by policy ${policy!.ref}`,
        },
        base,
        policy,
      );
  }

  let d: TtlDecision = base;
  const latest = policy?.keepLatest;
  const latestLimit = latest?.[outcome];
  if (latest !== undefined && latestLimit !== undefined && base.action !== 'keep') {
    const rank = i.rank?.('keepLatest');
    if (rank !== undefined && protectedLatest(rank, latestLimit))
      d = {
        action: 'keep',
        source: 'keepLatest',
        detail: `keepLatest: the newest ${outcome === 'failed' ? 'failure' : 'success'} #${rank + 1} of ${latestLimit} of ${groupText(obj, latest.groupBy)} (policy ${policy!.ref}), kept until a newer one ${outcome}`,
      };
  }

  if (cap !== undefined) {
    if (d.action === 'ttl' && d.expireAtMs === undefined && d.seconds > cap.seconds)
      d = capped(`${d.detail} would keep it ${formatDuration(d.seconds)}`);
    else if (d.action === 'none')
      d = capped(`${d.detail.startsWith('no TTL') ? 'no TTL of its own' : d.detail}`);
    else if (d.action === 'keep' && d.source === 'keepLatest') d = capped(d.detail);
  }

  if (expires.state === 'at') {
    const e = expiresDecision(expires.atMs, expires.value);
    if (d.action !== 'ttl' || finish.atMs === null) return e;
    const dueAt = d.expireAtMs ?? finish.atMs + d.seconds * 1000;
    if (expires.atMs < dueAt) return e;
  }
  return d;
}
