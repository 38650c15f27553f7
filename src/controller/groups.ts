// The group index behind history and keepLatest (src/rules/history.ts): per group and outcome, the
// finished members sorted newest first, kept up to date by the informer events one object at a
// time — an insert, removal or rank touches one chunk of ≤ 1,024 members and the chunk sizes before
// it (SortedMembers), so nothing scans all objects per event.
// The order depends only on (finish time, name), so it is the same after a restart or a relist.
import { type GroupRule, type Membership, newerFirst, type Ranked } from '../rules/history.ts';

export type { GroupRule, Membership } from '../rules/history.ts';

interface Member extends Ranked {
  uid: string;
  /** The work-queue key to re-judge it by. */
  ref: string;
}

/**
 * Members sorted newest first, in chunks of at most CHUNK_MAX: an insert or removal moves at most
 * one chunk (not the whole group), a rank sums the sizes of the chunks before — at 100,000 members
 * in one group, ~200 chunk sizes and a splice of ≤ 1,024 pointers.
 */
class SortedMembers {
  readonly #chunks: Member[][] = [];
  size = 0;

  /** The number of members newer than `r` (its rank if it is one). */
  rankOf(r: Ranked): number {
    let n = 0;
    for (const c of this.#chunks) {
      if (newerFirst(c[c.length - 1]!, r) < 0) {
        n += c.length;
        continue;
      }
      return n + lowerBound(c, r);
    }
    return n;
  }

  /** The member at a rank. */
  at(rank: number): Member | undefined {
    if (rank < 0) return undefined;
    for (const c of this.#chunks) {
      if (rank < c.length) return c[rank];
      rank -= c.length;
    }
    return undefined;
  }

  /** Inserts and returns its rank. */
  insert(m: Member): number {
    let n = 0;
    let i = 0;
    // The first chunk whose last member is not newer than m (or the last chunk).
    while (i < this.#chunks.length - 1 && newerFirst(this.#chunks[i]![this.#chunks[i]!.length - 1]!, m) < 0)
      n += this.#chunks[i++]!.length;
    if (this.#chunks.length === 0) this.#chunks.push([]);
    const c = this.#chunks[i]!;
    const at = lowerBound(c, m);
    c.splice(at, 0, m);
    if (c.length > CHUNK_MAX) this.#chunks.splice(i + 1, 0, c.splice(c.length >> 1));
    this.size++;
    return n + at;
  }

  /** Removes the member with this uid and ranking; its rank, or -1 when absent. */
  remove(r: Ranked, uid: string): number {
    let n = 0;
    for (let i = 0; i < this.#chunks.length; i++) {
      const c = this.#chunks[i]!;
      if (newerFirst(c[c.length - 1]!, r) < 0) {
        n += c.length;
        continue;
      }
      for (let j = lowerBound(c, r); j < c.length && newerFirst(c[j]!, r) === 0; j++) {
        if (c[j]!.uid !== uid) continue;
        c.splice(j, 1);
        if (c.length === 0) this.#chunks.splice(i, 1);
        this.size--;
        return n + j;
      }
      // Equal rankings may continue into the next chunk.
      n += c.length;
    }
    return -1;
  }
}

/** Chunk size bound (src/controller/groups.ts SortedMembers). */
const CHUNK_MAX = 1024;

export class GroupIndex {
  /** `rule|group|outcome` → members, newest first. */
  readonly #lists = new Map<string, SortedMembers>();
  /** uid → its memberships (at most one per rule). */
  readonly #of = new Map<string, Membership[]>();

  get size(): number {
    return this.#of.size;
  }

  /** The 0-based rank (0 = newest) of an object in its group for `rule`; undefined: not a member. */
  rank(uid: string, rule: GroupRule): number | undefined {
    const m = this.#of.get(uid)?.find((x) => x.rule === rule);
    if (m === undefined) return undefined;
    return this.#lists.get(listKey(m))?.rankOf(m);
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
      list = new SortedMembers();
      this.#lists.set(key, list);
    }
    const at = list.insert({ uid, ref, atMs: m.atMs, name: m.name });
    // Everything at or after `at` moved one older: the member now at the limit crossed it.
    if (at <= m.limit) boundary(list, m.limit, rejudge);
  }

  #removeFrom(m: Membership, uid: string, rejudge: Set<string>): void {
    const key = listKey(m);
    const list = this.#lists.get(key);
    if (list === undefined) return;
    const at = list.remove(m, uid);
    // Everything after moved one newer: the member now just inside the limit crossed it.
    if (at >= 0 && at <= m.limit) boundary(list, m.limit, rejudge);
    if (list.size === 0) this.#lists.delete(key);
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

function boundary(list: SortedMembers, limit: number, out: Set<string>): void {
  for (const i of [limit - 1, limit]) {
    const m = list.at(i);
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
