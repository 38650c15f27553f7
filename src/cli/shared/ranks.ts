// history / keepLatest ranks for the CLI (list, plan, explain): the controller's own group index
// (src/controller/groups.ts) and memberships (src/rules/history.ts), over the objects listed. A
// listing narrowed by a label selector ranks among what it listed: a lower bound of the real rank.
import { GroupIndex } from '../../controller/groups.ts';
import { groupOf } from '../../rules/finish.ts';
import { membershipsOf } from '../../rules/history.ts';
import { kindKeyOf } from '../../rules/kinds.ts';
import type { ObjectSummary } from '../../rules/types.ts';
import { type JudgeContext, verdictFor } from './rows.ts';

/** ctx with the ranks of `objs` (one kind or several; groups never span kinds). */
export function withRanks(ctx: JudgeContext, objs: readonly ObjectSummary[]): JudgeContext {
  const index = new GroupIndex();
  let any = false;
  for (const obj of objs) {
    const policy = ctx.policies.policyFor(obj);
    if (policy?.history === undefined && policy?.keepLatest === undefined) continue;
    const kindId = kindKeyOf(groupOf(obj.apiVersion), obj.kind);
    const v = verdictFor(obj, ctx);
    index.set(obj.uid, obj.uid, membershipsOf(kindId, obj, v.finish, policy));
    any = true;
  }
  return any ? { ...ctx, rankOf: (obj, rule) => index.rank(obj.uid, rule) } : ctx;
}

/** Whether judging this object needs its group's siblings (explain lists them). */
export function needsRanks(obj: ObjectSummary, ctx: JudgeContext): boolean {
  const p = ctx.policies.policyFor(obj);
  return p?.history !== undefined || p?.keepLatest !== undefined;
}
