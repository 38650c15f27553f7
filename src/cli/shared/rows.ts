// The row model every listing command shows: computed from the SAME pure rules the controller
// uses (finishOf → toSummary → resolveTtl → judge), never re-implemented here.
import type { RawObject } from '../../kube/objects.ts';
import { apiVersionOf } from '../../kube/resources.ts';
import { formatDuration } from '../../rules/duration.ts';
import { type Judgement, judge } from '../../rules/expiry.ts';
import { finishOf } from '../../rules/finish.ts';
import { toSummary } from '../../rules/summary.ts';
import { resolveTtl } from '../../rules/ttl.ts';
import type { ObjectSummary, Outcome, TtlDecision } from '../../rules/types.ts';
import type { PolicyProvider } from './policies.ts';
import type { KindInfo } from './refs.ts';
import { humanDuration, isoTime } from './time.ts';

export type Status = 'Running' | 'Succeeded' | 'Failed';

export interface JudgeContext {
  /** Epoch ms on the API server's clock (Cluster.now()). */
  nowMs: number;
  policies: PolicyProvider;
  helmHooks: boolean;
}

export interface Row {
  kind: KindInfo;
  summary: ObjectSummary;
  status: Status;
  /** The decision for the outcome it finished with; for a running object, what it would be per outcome. */
  decision: TtlDecision | null;
  ifSucceeded: TtlDecision;
  ifFailed: TtlDecision;
  judgement: Judgement;
  /** Display cells. */
  ttl: string;
  source: string;
  expiresIn: string;
  /** Sort key: expireAt, else +Infinity. */
  sortMs: number;
}

/** What the rules decide for one outcome, with the policy the provider matches. */
export function decide(obj: ObjectSummary, outcome: Outcome, ctx: JudgeContext): TtlDecision {
  return resolveTtl(obj, outcome, { policy: ctx.policies.policyFor(obj), helmHooks: ctx.helmHooks });
}

export function summarize(kind: KindInfo, raw: RawObject): ObjectSummary {
  const type = { apiVersion: apiVersionOf(kind.resource), kind: kind.resource.kind };
  return toSummary(raw, finishOf(raw, null, type), type);
}

/** The TTL cell of a decision: `2h`, `-`, or the offending value of an invalid one. */
export function ttlCell(d: TtlDecision): string {
  switch (d.action) {
    case 'ttl':
      return formatDuration(d.seconds);
    case 'invalid':
      return d.value.length > 24 ? `${JSON.stringify(d.value.slice(0, 24))}…` : JSON.stringify(d.value);
    default:
      return '-';
  }
}

/** The SOURCE cell: annotation / field / hook / policy / keep / none, or `invalid`. */
export function sourceCell(d: TtlDecision): string {
  return d.action === 'invalid' ? 'invalid' : d.source;
}

function sameDecision(a: TtlDecision, b: TtlDecision): boolean {
  return ttlCell(a) === ttlCell(b) && sourceCell(a) === sourceCell(b);
}

export function expiresCell(j: Judgement): string {
  switch (j.state) {
    case 'being-deleted':
      return 'deleting';
    case 'not-finished':
    case 'no-ttl':
      return '-';
    case 'keep':
      return 'kept';
    case 'invalid':
      return 'invalid';
    case 'no-finish-time':
      return 'unknown';
    case 'expired':
      return 'now';
    case 'pending':
      return humanDuration(j.leftMs ?? 0);
  }
}

export function evaluate(kind: KindInfo, obj: ObjectSummary, ctx: JudgeContext): Row {
  const ifSucceeded = decide(obj, 'succeeded', ctx);
  const ifFailed = decide(obj, 'failed', ctx);
  const finish = obj.finish;
  const decision = finish === null ? null : finish.outcome === 'succeeded' ? ifSucceeded : ifFailed;
  // judge() answers 'not-finished' first for a running object, whatever decision it is given.
  const judgement = judge(obj, decision ?? ifSucceeded, ctx.nowMs);
  let ttl: string;
  let source: string;
  if (decision !== null) {
    ttl = ttlCell(decision);
    source = sourceCell(decision);
  } else if (sameDecision(ifSucceeded, ifFailed)) {
    ttl = ttlCell(ifSucceeded);
    source = sourceCell(ifSucceeded);
  } else {
    // Running, with outcome-specific TTLs: `succeeded/failed`.
    ttl = `${ttlCell(ifSucceeded)}/${ttlCell(ifFailed)}`;
    source =
      sourceCell(ifSucceeded) === sourceCell(ifFailed)
        ? sourceCell(ifSucceeded)
        : `${sourceCell(ifSucceeded)}/${sourceCell(ifFailed)}`;
  }
  return {
    kind,
    summary: obj,
    status: finish === null ? 'Running' : finish.outcome === 'succeeded' ? 'Succeeded' : 'Failed',
    decision,
    ifSucceeded,
    ifFailed,
    judgement,
    ttl,
    source,
    expiresIn: expiresCell(judgement),
    sortMs: judgement.expireAtMs ?? Number.POSITIVE_INFINITY,
  };
}

/** By expiry (soonest first), then namespace, kind and name. */
export function byExpiry(a: Row, b: Row): number {
  if (a.sortMs !== b.sortMs) return a.sortMs < b.sortMs ? -1 : 1;
  return (
    a.summary.namespace.localeCompare(b.summary.namespace) ||
    a.kind.resource.kind.localeCompare(b.kind.resource.kind) ||
    a.summary.name.localeCompare(b.summary.name)
  );
}

/** The FINISHED cell: age of the finish, like kubectl's AGE. */
export function finishedCell(row: Row, nowMs: number): string {
  const f = row.summary.finish;
  if (f === null) return '-';
  if (f.atMs === null) return 'unknown';
  return humanDuration(nowMs - f.atMs);
}

function decisionJson(d: TtlDecision) {
  switch (d.action) {
    case 'ttl':
      return {
        action: d.action,
        source: d.source,
        ttl: formatDuration(d.seconds),
        ttlSeconds: d.seconds,
        detail: d.detail,
      };
    case 'invalid':
      return { action: d.action, source: d.source, key: d.key, value: d.value, message: d.message };
    default:
      return { action: d.action, source: d.source, detail: d.detail };
  }
}

/** The machine-readable row (`-o json` / `-o yaml`). Times are RFC 3339, durations whole seconds. */
export function rowJson(row: Row, nowMs: number) {
  const s = row.summary;
  const f = s.finish;
  const j = row.judgement;
  return {
    apiVersion: s.apiVersion,
    kind: s.kind,
    namespace: s.namespace,
    name: s.name,
    uid: s.uid,
    status: row.status,
    outcome: f?.outcome ?? null,
    finishedAt: f?.atMs != null ? isoTime(f.atMs) : null,
    finishTimeSource: f?.timeSource ?? null,
    finishedAgoSeconds: f?.atMs != null ? Math.floor((nowMs - f.atMs) / 1000) : null,
    ttl: row.ttl,
    ttlSeconds: row.decision?.action === 'ttl' ? row.decision.seconds : null,
    source: row.source,
    state: j.state,
    expiresIn: row.expiresIn,
    expiresAt: j.expireAtMs !== undefined ? isoTime(j.expireAtMs) : null,
    expiresInSeconds: j.leftMs !== undefined ? Math.ceil(j.leftMs / 1000) : null,
    decision: row.decision ? decisionJson(row.decision) : null,
    ifSucceeded: row.decision ? undefined : decisionJson(row.ifSucceeded),
    ifFailed: row.decision ? undefined : decisionJson(row.ifFailed),
    finalizers: s.finalizers.length > 0 ? [...s.finalizers] : undefined,
    deleting: s.deletionMs !== null ? true : undefined,
  };
}
