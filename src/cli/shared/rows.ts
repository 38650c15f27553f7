// The row model every listing command shows: the controller's own verdict (src/rules/verdict.ts)
// on the controller's own summary (src/rules/summary.ts summarizeObject), never re-implemented here.
import type { RawObject } from '../../kube/objects.ts';
import { apiVersionOf } from '../../kube/resources.ts';
import { formatDuration } from '../../rules/duration.ts';
import type { Judgement } from '../../rules/expiry.ts';
import { summarizeObject } from '../../rules/summary.ts';
import type { ObjectSummary, TtlDecision } from '../../rules/types.ts';
import { type Status, type Verdict, verdictOf } from '../../rules/verdict.ts';
import type { PolicyProvider } from './policies.ts';
import type { KindInfo } from './refs.ts';
import { humanDuration, isoTime } from './time.ts';

export type { Status };

export interface JudgeContext {
  /** Epoch ms on the API server's clock (Cluster.now()). */
  nowMs: number;
  policies: PolicyProvider;
  helmHooks: boolean;
  /** As `kttl run --native-jobs` (default handle, as the controller's). */
  nativeJobs?: 'handle' | 'leave';
  /** history / keepLatest: an object's rank in its group among what was listed (src/cli/shared/ranks.ts). */
  rankOf?: (obj: ObjectSummary, rule: 'history' | 'keepLatest') => number | undefined;
}

export interface Row {
  kind: KindInfo;
  summary: ObjectSummary;
  /** The whole verdict, as the controller reaches it. */
  verdict: Verdict;
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

/**
 * The summary the controller would cache: with the finish under each finish rule that policies
 * give the kind (the policy that selects the object chooses among them, as in the controller).
 */
export function summarize(kind: KindInfo, raw: RawObject, policies?: PolicyProvider): ObjectSummary {
  const type = { apiVersion: apiVersionOf(kind.resource), kind: kind.resource.kind };
  return summarizeObject(
    raw,
    type,
    policies?.finishRulesOf?.(type.apiVersion, type.kind) ?? [],
    undefined,
    policies?.groupAnnotationKeys?.(),
  );
}

/** The verdict the controller reaches on this object now (without its first-seen times: such a finish shows as no-finish-time). */
export function verdictFor(obj: ObjectSummary, ctx: JudgeContext): Verdict {
  const choice = ctx.policies.finishChoiceFor?.(obj);
  return verdictOf(obj, {
    nowMs: ctx.nowMs,
    policy: ctx.policies.policyFor(obj),
    ...(choice ? { finishChoice: choice } : {}),
    helmHooks: ctx.helmHooks,
    nativeJobs: ctx.nativeJobs ?? 'handle',
    ...(ctx.rankOf ? { rank: (rule: 'history' | 'keepLatest') => ctx.rankOf?.(obj, rule) } : {}),
  });
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

export function evaluate(kind: KindInfo, objIn: ObjectSummary, ctx: JudgeContext): Row {
  const verdict = verdictFor(objIn, ctx);
  // The finish that counts (a policy's rule may have chosen it): the row shows that one.
  const obj = verdict.finish === objIn.finish ? objIn : { ...objIn, finish: verdict.finish };
  const ifSucceeded = verdict.byOutcome.succeeded;
  const ifFailed = verdict.byOutcome.failed;
  const { decision, judgement } = verdict;
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
    verdict,
    status: verdict.status,
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
