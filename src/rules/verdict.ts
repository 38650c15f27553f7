// THE verdict on one object: is it finished, with which outcome and since when, every TTL source
// with its value and whether it won, was shadowed or is invalid, the decision, the expiry and what
// blocks deletion. The controller (src/controller/controller.ts), the CLI's rows and `explain`
// (src/cli/shared/rows.ts, src/cli/commands/explain.ts) and the webhook (src/webhook/mutate.ts)
// all judge through this one pure function, so they cannot disagree.
import { formatDuration } from './duration.ts';
import { type Judgement, judge } from './expiry.ts';
import { chosenFinish, type FinishChoice, groupOf, hasFixedFinish } from './finish.ts';
import { type PodsFirst, podsFirst } from './pods.ts';
import { type GroupRule, retain } from './retention.ts';
import { decideFrom, decisionOf, readTtlSources, type TtlSourceReading } from './ttl.ts';
import type { ArchiveMode, Finish, ObjectSummary, Outcome, PolicyTtl, TtlDecision } from './types.ts';

export interface VerdictContext {
  /** Epoch ms on the API server's clock. */
  nowMs: number;
  /** The policy matched to the object (src/policy/store.ts policyFor), or null. */
  policy: PolicyTtl | null;
  /** Which finish rule judges a custom kind (src/policy/store.ts finishChoiceFor); default built-in. */
  finishChoice?: FinishChoice;
  /** Whether `helm.sh/hook-delete-policy` counts (`--helm-hooks`). */
  helmHooks: boolean;
  /** `--native-jobs=leave`: a Job whose TTL is its native field is left to the native controller. */
  nativeJobs: 'handle' | 'leave';
  /** `kttl run --archive`: whether a record is kept before deleting (a policy's `archive` wins). */
  archive?: ArchiveMode;
  /**
   * A finish that carries no time ('firstSeen'): when the caller first saw the object finished
   * (the controller remembers it). Called with null when the object is not finished, so the caller
   * can forget the time. Without it such an object is judged 'no-finish-time'.
   */
  firstSeen?: (finish: Finish | null) => number | undefined;
  /**
   * history / keepLatest (src/rules/history.ts): the object's 0-based rank (0 = newest) among the
   * finished objects of its group with its outcome; undefined when not ranked (no limit applies).
   * The controller keeps the ranks (src/controller/groups.ts), the CLI ranks what it listed.
   */
  rank?: (rule: GroupRule, outcome: Outcome, finish: Finish) => number | undefined;
}

/** How one TTL source fares for one outcome. */
export type SourceVerdict =
  | 'not set'
  | 'ignored'
  | 'does not apply'
  | 'held'
  | 'wins'
  | 'shadowed'
  | 'invalid';

export interface SourceResult {
  reading: TtlSourceReading;
  /** Per outcome considered (the finished one, or both while running). */
  results: Array<{ outcome: Outcome; verdict: SourceVerdict; decision: TtlDecision | null }>;
}

export type Status = 'Running' | 'Succeeded' | 'Failed';

export interface Verdict {
  /** The finish that counts (the chosen rule's; a first-seen time filled in); null: not finished. */
  finish: Finish | null;
  /** Why no finish rule may judge the object (conflicting rules, a policy's reach unknown…). */
  finishBlocked?: string;
  /** Rules conflict and at least one of them says finished: worth a Warning. */
  finishConflict?: boolean;
  status: Status;
  /** The outcomes considered: the one it finished with, or both while it runs. */
  outcomes: Outcome[];
  /** The decision for each outcome (what it would be if it finished so). */
  byOutcome: Record<Outcome, TtlDecision>;
  /** The decision for the outcome it finished with; null while it runs. */
  decision: TtlDecision | null;
  /** Every TTL source, in precedence order. */
  sources: SourceResult[];
  /** The index in `sources` of the winner per outcome (null: none applies). */
  winners: Record<Outcome, number | null>;
  judgement: Judgement;
  /** What keeps it from being deleted right now; empty once it is due. */
  blockers: Blocker[];
  /** Whether a record is archived before it is deleted: the matched policy's `archive`, else the flag's. */
  archive: ArchiveMode;
  /** Pods first (ttlPods / kttl.dev/ttl-pods): when its pods go, the object staying (src/rules/pods.ts). */
  pods: PodsFirst;
}

export interface Blocker {
  what:
    | 'being-deleted'
    | 'finish-blocked'
    | 'not-finished'
    | 'finalizers'
    | 'keep'
    | 'invalid'
    | 'no-ttl'
    | 'no-finish-time'
    | 'pending';
  /** One line; renderers may word `pending` with their own duration format (leftMs). */
  text: string;
}

const OUTCOMES: readonly Outcome[] = ['succeeded', 'failed'];

function isJobPod(obj: ObjectSummary): boolean {
  return (
    obj.kind === 'Pod' &&
    obj.apiVersion === 'v1' &&
    obj.owners.some((r) => r.kind === 'Job' && r.controller && groupOf(r.apiVersion) === 'batch')
  );
}

/** Rules that replace the TTL precedence's decision for some objects. */
function overrides(obj: ObjectSummary, decision: TtlDecision, ctx: VerdictContext): TtlDecision {
  // Pods of a Job go with their Job (its Foreground delete removes them) unless a policy names them.
  if (ctx.policy === null && isJobPod(obj))
    return {
      action: 'none',
      source: 'none',
      detail: 'a Pod of a Job: deleted with its Job (no policy names Pods)',
    };
  if (
    ctx.nativeJobs === 'leave' &&
    decision.action === 'ttl' &&
    decision.source === 'field' &&
    obj.kind === 'Job' &&
    groupOf(obj.apiVersion) === 'batch'
  )
    return {
      action: 'none',
      source: 'none',
      detail: 'left to the native ttl-after-finished controller (--native-jobs=leave)',
    };
  return decision;
}

function sourceVerdict(
  reading: TtlSourceReading,
  index: number,
  winner: number | null,
  single: TtlDecision | null,
): SourceVerdict {
  switch (reading.read.state) {
    case 'absent':
      return 'not set';
    case 'disabled':
      return 'ignored';
    case 'held':
      return 'held';
  }
  if (index === winner) return 'wins';
  if (single === null) return 'does not apply';
  if (single.action === 'invalid') return 'invalid';
  return 'shadowed';
}

export function verdictOf(obj: ObjectSummary, ctx: VerdictContext): Verdict {
  // Jobs and Pods finish by fixed rules; a custom kind by the rule chosen for this very object.
  const choice: FinishChoice =
    ctx.finishChoice === undefined || hasFixedFinish(groupOf(obj.apiVersion), obj.kind)
      ? { kind: 'builtin' }
      : ctx.finishChoice;
  const chosen = chosenFinish(obj.finish, obj.finishes, choice);
  let finish = chosen.finish;
  const seen = ctx.firstSeen?.(finish);
  if (finish !== null && finish.atMs === null && finish.timeSource === 'firstSeen' && seen !== undefined)
    finish = { ...finish, atMs: seen };

  const readings = readTtlSources(obj, { policy: ctx.policy, helmHooks: ctx.helmHooks });
  const byOutcome = {} as Record<Outcome, TtlDecision>;
  const winners = {} as Record<Outcome, number | null>;
  for (const o of OUTCOMES) {
    const { decision, winner } = decideFrom(readings, o, ctx.policy);
    const f = finish;
    const d = retain({
      obj,
      finish: f !== null && f.outcome === o ? f : null,
      outcome: o,
      base: overrides(obj, decision, ctx),
      policy: ctx.policy,
      nowMs: ctx.nowMs,
      rank: (rule) => (f !== null && f.outcome === o ? ctx.rank?.(rule, o, f) : undefined),
    });
    byOutcome[o] = d;
    winners[o] = d === decision ? winner : null;
  }
  const outcomes: Outcome[] = finish === null ? [...OUTCOMES] : [finish.outcome];
  const sources: SourceResult[] = readings.map((reading, i) => ({
    reading,
    results: outcomes.map((o) => {
      const single = decisionOf(reading, o, ctx.policy);
      return { outcome: o, verdict: sourceVerdict(reading, i, winners[o], single), decision: single };
    }),
  }));

  // Unfinished: only kttl.dev/expires decides (the same for both outcomes); a bad one is invalid (warned).
  const expires = byOutcome.succeeded;
  const decision =
    finish !== null
      ? byOutcome[finish.outcome]
      : expires.source === 'expires' && (expires.action === 'ttl' || expires.action === 'invalid')
        ? expires
        : null;
  const judged = finish === obj.finish ? obj : { ...obj, finish };
  const judgement = judge(judged, decision ?? byOutcome.succeeded, ctx.nowMs);

  const v: Verdict = {
    finish,
    status: finish === null ? 'Running' : finish.outcome === 'succeeded' ? 'Succeeded' : 'Failed',
    outcomes,
    byOutcome,
    decision,
    sources,
    winners,
    judgement,
    blockers: blockersOf(obj, finish, decision, judgement, chosen.blocked),
    archive: ctx.policy?.archive ?? ctx.archive ?? 'off',
    pods: podsFirst(obj, finish, ctx.policy),
  };
  if (chosen.blocked !== undefined) v.finishBlocked = chosen.blocked;
  if (choice.kind === 'conflict' && Object.values(obj.finishes ?? {}).some((f) => f !== null))
    v.finishConflict = true;
  return v;
}

function blockersOf(
  obj: ObjectSummary,
  finish: Finish | null,
  d: TtlDecision | null,
  j: Judgement,
  finishBlocked: string | undefined,
): Blocker[] {
  const out: Blocker[] = [];
  const add = (what: Blocker['what'], text: string) => out.push({ what, text });
  if (obj.deletionMs !== null)
    add(
      'being-deleted',
      `already being deleted (deletionTimestamp ${new Date(obj.deletionMs).toISOString().replace(/\.\d{3}Z$/, 'Z')})`,
    );
  if (finishBlocked !== undefined) add('finish-blocked', `no finish rule may judge it: ${finishBlocked}`);
  else if (finish === null && !(d?.action === 'ttl' && d.expireAtMs !== undefined))
    add('not-finished', 'not finished (Running): an unfinished object is never deleted, whatever its TTL');
  if (obj.finalizers.length > 0)
    add(
      'finalizers',
      `finalizers ${obj.finalizers.join(', ')}: the object stays until they are removed (kttl never removes finalizers)`,
    );
  if (d?.action === 'keep') add('keep', `keep: ${d.detail}`);
  if (d?.action === 'invalid') add('invalid', `invalid value: ${d.message}`);
  if (d?.action === 'none') add('no-ttl', d.detail.startsWith('no TTL') ? 'no TTL applies' : d.detail);
  if (j.state === 'no-finish-time' && finish?.timeSource === 'condition')
    add(
      'no-finish-time',
      `finished but the ${finish.reason} condition has no lastTransitionTime: kept, as upstream does`,
    );
  if (j.state === 'pending')
    add('pending', `TTL not expired yet: ${formatDuration(Math.ceil((j.leftMs ?? 0) / 1000))} left`);
  return out;
}
