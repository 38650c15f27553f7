// The blast-radius brake (docs/operations.md "Safety rails"): a gate in front of every DELETE. The
// verdict (src/rules/verdict.ts) still decides *whether* an object goes; the brake only decides
// *whether now*. Each brake allows at most N deletions in any sliding window of D; the one that
// would exceed it trips the brake: that deletion and every later one under it are paused (the
// objects are kept, nothing is lost) until an operator resumes (`kttl resume`, which changes an
// annotation) or the limit is raised. Pure: no I/O, an injected clock, callbacks for what to tell.
import type { DeletionLimit } from '../rules/safety.ts';

/** The brake of `--max-deletions`, which every deletion passes (its `policy` label). */
export const GLOBAL_BRAKE = '*';

export interface PolicyBrake {
  /** The policy's `maxDeletions`; none: only the global brake applies. */
  limit?: DeletionLimit;
  /** The policy's `kttl.dev/resume` annotation: a change while tripped resumes. */
  resumeToken?: string;
}

export interface BrakeTrip {
  /** GLOBAL_BRAKE or a policy ref (`TTLPolicy/ns/name`, `ClusterTTLPolicy/name`). */
  brake: string;
  limit: DeletionLimit;
  /** Deletions counted in the window when it tripped (= the limit). */
  deleted: number;
}

export interface DeletionBrakeOptions {
  clock: { now(): number };
  /** `--max-deletions`; absent: no global brake. */
  global?: DeletionLimit;
  /** A policy's limit and resume token, by ref (the policy that decided the object). */
  policy: (ref: string) => PolicyBrake | undefined;
  onTrip?: (trip: BrakeTrip) => void;
  /** The brake let go (resumed or limit raised): these work-queue keys were waiting. */
  onRelease?: (brake: string, keys: string[], why: 'resumed' | 'limit raised') => void;
  /** How many deletions a brake holds now (the gauge kttl_deletions_paused{policy}). */
  onPaused?: (brake: string, waiting: number) => void;
}

interface BrakeState {
  /** Times (clock ms) of counted deletions, oldest first, from `head` on. */
  times: number[];
  uids: string[];
  head: number;
  /** uids counted in the window (a deletion tried again after a conflict is not counted twice). */
  counted: Set<string>;
  tripped?: { limit: DeletionLimit; token: string | undefined };
  /** Waiting deletions: uid → work-queue key. */
  paused: Map<string, string>;
  /** Approved by a resume: passes this brake without counting. */
  approved: Set<string>;
}

export class DeletionBrake {
  readonly #o: DeletionBrakeOptions;
  readonly #brakes = new Map<string, BrakeState>();
  /** The global brake's resume token (the Lease's annotation), as last read. */
  #globalToken: string | undefined;

  constructor(o: DeletionBrakeOptions) {
    this.#o = o;
  }

  /**
   * May this deletion go now? `policyRef`: the policy whose TTL decided it (its `maxDeletions`
   * applies beside the global one). True: counted, send the DELETE. False: paused; the key is
   * handed back through onRelease when the brake lets go.
   */
  admit(uid: string, key: string, policyRef?: string): boolean {
    const now = this.#o.clock.now();
    const applicable: Array<{ id: string; limit: DeletionLimit; token: string | undefined }> = [];
    const p = policyRef === undefined ? undefined : this.#o.policy(policyRef);
    if (policyRef !== undefined && p?.limit)
      applicable.push({ id: policyRef, limit: p.limit, token: p.resumeToken });
    if (this.#o.global)
      applicable.push({ id: GLOBAL_BRAKE, limit: this.#o.global, token: this.#globalToken });
    // Judged afresh: whatever held it before no longer does unless it says so again below.
    this.#unpause(uid);
    for (const a of applicable) {
      const st = this.#state(a.id);
      this.#checkRelease(a.id, st, a.limit, a.token);
      if (st.approved.has(uid)) continue;
      this.#prune(st, a.limit.windowMs, now);
      if (st.counted.has(uid)) continue;
      if (st.tripped || st.times.length - st.head >= a.limit.limit) {
        if (!st.tripped) {
          st.tripped = { limit: a.limit, token: a.token };
          this.#o.onTrip?.({ brake: a.id, limit: a.limit, deleted: st.times.length - st.head });
        }
        st.paused.set(uid, key);
        this.#o.onPaused?.(a.id, st.paused.size);
        return false;
      }
    }
    for (const a of applicable) {
      const st = this.#state(a.id);
      if (st.approved.has(uid) || st.counted.has(uid)) continue;
      st.times.push(now);
      st.uids.push(uid);
      st.counted.add(uid);
    }
    return true;
  }

  /** The object is gone (or no longer due): it waits under no brake. */
  forget(uid: string): void {
    this.#unpause(uid);
    for (const st of this.#brakes.values()) st.approved.delete(uid);
  }

  /**
   * The global brake's resume token as read from the Lease (src/controller/lease-resume.ts).
   * `baseline`: the first read after the brake tripped without a known token: it is what the
   * token was at the trip, not a resume.
   */
  setGlobalToken(token: string | undefined, baseline = false): void {
    this.#globalToken = token;
    const st = this.#brakes.get(GLOBAL_BRAKE);
    if (!st?.tripped || !this.#o.global) return;
    if (baseline) st.tripped.token = token;
    else this.#checkRelease(GLOBAL_BRAKE, st, this.#o.global, token);
  }

  /** Whether a brake holds deletions now. */
  isTripped(brake: string): boolean {
    return this.#brakes.get(brake)?.tripped !== undefined;
  }

  waiting(brake: string): number {
    return this.#brakes.get(brake)?.paused.size ?? 0;
  }

  /** Policy brakes may have been resumed or raised (a policy changed): check each tripped one. */
  recheck(): void {
    for (const [id, st] of this.#brakes) {
      if (!st.tripped || id === GLOBAL_BRAKE) continue;
      const p = this.#o.policy(id);
      if (!p?.limit) this.#release(id, st, 'limit raised');
      else this.#checkRelease(id, st, p.limit, p.resumeToken);
    }
  }

  #checkRelease(id: string, st: BrakeState, limit: DeletionLimit, token: string | undefined): void {
    if (!st.tripped) return;
    if (token !== st.tripped.token) {
      // Resumed: what waits now was looked at and let go; the window starts again.
      for (const uid of st.paused.keys()) st.approved.add(uid);
      st.times = [];
      st.uids = [];
      st.head = 0;
      st.counted.clear();
      this.#release(id, st, 'resumed');
    } else if (raised(limit, st.tripped.limit)) {
      this.#release(id, st, 'limit raised');
    }
  }

  #release(id: string, st: BrakeState, why: 'resumed' | 'limit raised'): void {
    st.tripped = undefined;
    const keys = [...st.paused.values()];
    st.paused.clear();
    this.#o.onPaused?.(id, 0);
    this.#o.onRelease?.(id, keys, why);
  }

  #unpause(uid: string): void {
    for (const [id, st] of this.#brakes) if (st.paused.delete(uid)) this.#o.onPaused?.(id, st.paused.size);
  }

  #state(id: string): BrakeState {
    let st = this.#brakes.get(id);
    if (!st) {
      st = { times: [], uids: [], head: 0, counted: new Set(), paused: new Map(), approved: new Set() };
      this.#brakes.set(id, st);
    }
    return st;
  }

  /** Drops deletions older than the window; compacts the arrays now and then. */
  #prune(st: BrakeState, windowMs: number, now: number): void {
    while (st.head < st.times.length && st.times[st.head]! <= now - windowMs) {
      st.counted.delete(st.uids[st.head]!);
      st.head++;
    }
    if (st.head > 1024 && st.head * 2 > st.times.length) {
      st.times = st.times.slice(st.head);
      st.uids = st.uids.slice(st.head);
      st.head = 0;
    }
  }
}

/** A limit that allows more than the one a brake tripped at: a higher rate, or more in a shorter window. */
function raised(now: DeletionLimit, at: DeletionLimit): boolean {
  return now.limit > at.limit || (now.limit === at.limit && now.windowMs < at.windowMs);
}
