// History limits and keepLatest (docs/policies.md): among the finished objects of one group, rank
// them newest first — latest finish time, then the greater name (CronJob names grow with time) —
// and keep only the newest N (history) or protect the newest N past their TTL (keepLatest).
// Pure: the controller keeps ranks incrementally (src/controller/groups.ts), the CLI ranks what it
// listed (rankAmong), and both feed the rank into the one verdict (src/rules/verdict.ts).
import type { Finish, GroupBy, GroupLimit, ObjectSummary, Outcome, PolicyTtl } from './types.ts';

export type GroupRule = 'history' | 'keepLatest';

/** One group an object belongs to, with the group's limit for the object's outcome. */
export interface Membership {
  rule: GroupRule;
  /** Unique per rule, policy, kind, namespace and group value. */
  group: string;
  outcome: Outcome;
  atMs: number;
  name: string;
  limit: number;
}

/** What the ranking needs of one finished object. */
export interface Ranked {
  atMs: number;
  name: string;
}

/** < 0 when `a` is newer than `b` (sorts newest first); 0 only for equal time and name. */
export function newerFirst(a: Ranked, b: Ranked): number {
  if (a.atMs !== b.atMs) return b.atMs - a.atMs;
  return a.name < b.name ? 1 : a.name > b.name ? -1 : 0;
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Parses `owner`, `label:<key>`, `annotation:<key>`. */
export function parseGroupBy(text: string): { ok: true; groupBy: GroupBy } | { ok: false; error: string } {
  if (text === 'owner') return { ok: true, groupBy: { by: 'owner' } };
  const colon = text.indexOf(':');
  const by = colon < 0 ? text : text.slice(0, colon);
  const key = colon < 0 ? '' : text.slice(colon + 1);
  if ((by === 'label' || by === 'annotation') && LABEL_KEY.test(key) && key.length <= 317)
    return { ok: true, groupBy: { by, key } };
  return {
    ok: false,
    error: `${JSON.stringify(text.slice(0, 64))} is not owner, label:<key> or annotation:<key>`,
  };
}

/** The annotation keys these limits group by: the summaries must keep them (src/rules/summary.ts). */
export function groupAnnotationKeys(limits: Iterable<GroupLimit | undefined>): Set<string> {
  const keys = new Set<string>();
  for (const l of limits) if (l?.groupBy.by === 'annotation') keys.add(l.groupBy.key);
  return keys;
}

export function formatGroupBy(g: GroupBy): string {
  return g.by === 'owner' ? 'owner' : `${g.by}:${g.key}`;
}

/**
 * The group an object belongs to under `groupBy`, as a value unique within its namespace and kind;
 * null when it has none (no controlling owner, no such label): then no limit applies to it.
 */
export function groupValue(obj: ObjectSummary, groupBy: GroupBy): string | null {
  if (groupBy.by === 'owner') {
    const owner = obj.owners.find((r) => r.controller);
    return owner ? `owner:${owner.uid}` : null;
  }
  const map = groupBy.by === 'label' ? obj.labels : obj.annotations;
  return Object.hasOwn(map, groupBy.key) ? `${groupBy.by}:${groupBy.key}=${map[groupBy.key]}` : null;
}

/** Human text of the group for explain: `owner CronJob/nightly`, `label app=x`. */
export function groupText(obj: ObjectSummary, groupBy: GroupBy): string {
  if (groupBy.by === 'owner') {
    const owner = obj.owners.find((r) => r.controller);
    return owner ? `owner ${owner.kind}/${owner.name}` : 'no controlling owner';
  }
  const map = groupBy.by === 'label' ? obj.labels : obj.annotations;
  return `${groupBy.by} ${groupBy.key}=${map[groupBy.key] ?? ''}`;
}

/** The limit for an outcome, or undefined when the policy sets none for it. */
export function limitFor(limit: GroupLimit | undefined, outcome: Outcome): number | undefined {
  return limit?.[outcome];
}

/** The 0-based rank (0 = newest) of `self` among `members` (which may include it). */
export function rankAmong(self: Ranked, members: Iterable<Ranked>): number {
  let rank = 0;
  for (const m of members) if (newerFirst(m, self) < 0) rank++;
  return rank;
}

/** History: an object at rank >= N is beyond the limit (deleted now). */
export function beyondHistory(rank: number, limit: number): boolean {
  return rank >= limit;
}

/** keepLatest: an object at rank < N is protected. */
export function protectedLatest(rank: number, limit: number): boolean {
  return rank < limit;
}

/** The groups an object belongs to: finished with a finish time, not being deleted, in a group. */
export function membershipsOf(
  kindId: string,
  obj: ObjectSummary,
  finish: Finish | null,
  policy: PolicyTtl | null,
): Membership[] {
  if (policy === null || policy.hold !== undefined || finish === null || finish.atMs === null) return [];
  if (obj.deletionMs !== null) return [];
  const out: Membership[] = [];
  for (const rule of ['history', 'keepLatest'] as const) {
    const limit = policy[rule];
    const n = limit?.[finish.outcome];
    if (limit === undefined || n === undefined) continue;
    const value = groupValue(obj, limit.groupBy);
    if (value === null) continue;
    out.push({
      rule,
      group: `${policy.ref}|${kindId}|${obj.namespace}|${value}`,
      outcome: finish.outcome,
      atMs: finish.atMs,
      name: obj.name,
      limit: n,
    });
  }
  return out;
}
