// The group index behind history and keepLatest (src/rules/history.ts): per group and outcome, the
// finished members sorted newest first, kept up to date by the informer events one object at a
// time — an insert or removal is a binary search and a splice, a rank a binary search, so nothing
// scans all objects per event (at 100,000 objects in one group a splice moves ≤ 100,000 pointers).
// The order depends only on (finish time, name), so it is the same after a restart or a relist.
import { newerFirst, type Ranked } from '../rules/history.ts';
import type { Outcome } from '../rules/types.ts';

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

interface Member extends Ranked {
  uid: string;
  /** The work-queue key to re-judge it by. */
  ref: string;
}

export class GroupIndex {
  /** `rule|group|outcome` → members, newest first. */
  readonly #lists = new Map<string, Member[]>();
  /** uid → its memberships (at most one per rule). */
  readonly #of = new Map<string, Membership[]>();

  get size(): number {
    return this.#of.size;
  }

  /** The 0-based rank (0 = newest) of an object in its group for `rule`; undefined: not a member. */
  rank(uid: string, rule: GroupRule): number | undefined {
    const m = this.#of.get(uid)?.find((x) => x.rule === rule);
    if (m === undefined) return undefined;
    const list = this.#lists.get(listKey(m));
    return list === undefined ? undefined : lowerBound(list, m);
  }

  /**
   * Sets an object's memberships (empty: none). Returns whether they changed, and the refs of the
   * other members whose side of a limit may have moved (to re-judge).
   */
  set(uid: string, ref: string, next: readonly Membership[]): { changed: boolean; rejudge: string[] } {
    const prev = this.#of.get(uid) ?? [];
    if (sameMemberships(prev, next)) return { changed: false, rejudge: [] };
    const rejudge = new Set<string>();
    for (const m of prev) this.#removeFrom(m, uid, rejudge);
    for (const m of next) this.#insert(m, uid, ref, rejudge);
    if (next.length === 0) this.#of.delete(uid);
    else this.#of.set(uid, [...next]);
    rejudge.delete(ref);
    return { changed: true, rejudge: [...rejudge] };
  }

  remove(uid: string): string[] {
    return this.set(uid, '', []).rejudge;
  }

  #insert(m: Membership, uid: string, ref: string, rejudge: Set<string>): void {
    const key = listKey(m);
    let list = this.#lists.get(key);
    if (list === undefined) {
      list = [];
      this.#lists.set(key, list);
    }
    const at = lowerBound(list, m);
    list.splice(at, 0, { uid, ref, atMs: m.atMs, name: m.name });
    // Everything at or after `at` moved one older: the member now at the limit crossed it.
    if (at <= m.limit) boundary(list, m.limit, rejudge);
  }

  #removeFrom(m: Membership, uid: string, rejudge: Set<string>): void {
    const key = listKey(m);
    const list = this.#lists.get(key);
    if (list === undefined) return;
    for (let i = lowerBound(list, m); i < list.length && newerFirst(list[i]!, m) === 0; i++) {
      if (list[i]!.uid !== uid) continue;
      list.splice(i, 1);
      // Everything after moved one newer: the member now just inside the limit crossed it.
      if (i <= m.limit) boundary(list, m.limit, rejudge);
      break;
    }
    if (list.length === 0) this.#lists.delete(key);
  }
}

function listKey(m: Membership): string {
  return `${m.rule}|${m.group}|${m.outcome}`;
}

/** The first index whose member is not newer than `r`: the number of members newer than it. */
function lowerBound(list: readonly Member[], r: Ranked): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (newerFirst(list[mid]!, r) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function boundary(list: readonly Member[], limit: number, out: Set<string>): void {
  for (const i of [limit - 1, limit]) {
    const m = i >= 0 ? list[i] : undefined;
    if (m !== undefined) out.add(m.ref);
  }
}

function sameMemberships(a: readonly Membership[], b: readonly Membership[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return (
      x.rule === y.rule &&
      x.group === y.group &&
      x.outcome === y.outcome &&
      x.atMs === y.atMs &&
      x.name === y.name &&
      x.limit === y.limit
    );
  });
}
