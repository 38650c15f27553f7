// Calls onDue(key) when a key's time comes. Built for 100,000+ keys: a binary min-heap with lazy
// deletion (re-scheduling or cancelling only bumps a per-key sequence number; stale heap entries are
// skipped when they surface and swept out in bulk when they outnumber live ones) and a single
// platform timer armed for the earliest due time, so the event loop never holds more than one timer.

import { type Clock, MAX_TIMER_DELAY_MS, type TimerHandle } from '../clock.ts';

export interface ExpirySchedulerOptions<K> {
  clock: Clock;
  /** Called once per schedule() when its time has come. May schedule or cancel keys itself. */
  onDue: (key: K) => void;
  /** Receives anything onDue throws (without it, errors are dropped); delivery goes on regardless. */
  onError?: (err: unknown, key: K) => void;
}

interface Entry<K> {
  atMs: number;
  /** Unique per schedule() call: the version of the key, and the tie-break for equal times (FIFO). */
  seq: number;
  key: K;
}

/** Compaction is not worth it for small heaps; above this, it runs when stale entries exceed half. */
const COMPACT_MIN_HEAP = 1024;

export class ExpiryScheduler<K = string> {
  readonly #clock: Clock;
  readonly #onDue: (key: K) => void;
  readonly #onError: ((err: unknown, key: K) => void) | undefined;

  #heap: Entry<K>[] = [];
  /** The live version of each scheduled key; a heap entry whose seq differs is stale. */
  #live = new Map<K, Entry<K>>();
  #seq = 0;

  #timer: TimerHandle | undefined;
  /** When the armed timer will fire (now + the possibly capped delay). */
  #timerAtMs = Number.POSITIVE_INFINITY;
  #firing = false;
  #stopped = false;

  constructor(options: ExpirySchedulerOptions<K>) {
    this.#clock = options.clock;
    this.#onDue = options.onDue;
    this.#onError = options.onError;
  }

  /** Number of keys waiting (stale heap entries are not counted). */
  get size(): number {
    return this.#live.size;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  has(key: K): boolean {
    return this.#live.has(key);
  }

  /** The time the key is scheduled for, or undefined. */
  dueAtMs(key: K): number | undefined {
    return this.#live.get(key)?.atMs;
  }

  /**
   * Schedules key for atMs (epoch ms), replacing any earlier schedule of it — later or earlier.
   * A time already past is delivered on the next timer tick, never synchronously. Ignored after stop().
   */
  schedule(key: K, atMs: number): void {
    if (!Number.isFinite(atMs)) throw new RangeError(`invalid due time ${atMs}`);
    if (this.#stopped) return;
    const entry: Entry<K> = { atMs, seq: ++this.#seq, key };
    this.#live.set(key, entry);
    this.#push(entry);
    this.#maybeCompact();
    // Only an earlier time than the armed one needs a new timer; a later one is found when it fires.
    if (!this.#firing && atMs < this.#timerAtMs) this.#arm();
  }

  /** Forgets key; returns whether it was scheduled. */
  cancel(key: K): boolean {
    if (!this.#live.delete(key)) return false;
    if (this.#live.size === 0 && !this.#firing) {
      // Nothing left: drop the heap and the timer, so an idle scheduler holds no timer.
      this.#heap = [];
      this.#disarm();
    } else {
      this.#maybeCompact();
    }
    return true;
  }

  /** The earliest due time among scheduled keys, or undefined when none. */
  nextDueMs(): number | undefined {
    return this.#peekLive()?.atMs;
  }

  /**
   * The clock's now moved relative to the platform timer (e.g. the clock is the API server's, and
   * its skew estimate changed): arm the timer again for the earliest key. Order is unaffected.
   */
  rearm(): void {
    if (!this.#firing && !this.#stopped && this.#live.size > 0) this.#arm();
  }

  /** Clears the timer and every key. Final: later schedule() calls are ignored. */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
    this.#heap = [];
    this.#live.clear();
  }

  #arm(): void {
    this.#disarm();
    const next = this.#peekLive();
    if (!next || this.#stopped) return;
    const now = this.#clock.now();
    // Node's timers overflow past 2^31-1 ms and fire at once; cap, and re-arm when it fires early.
    const delay = Math.min(Math.max(0, next.atMs - now), MAX_TIMER_DELAY_MS);
    this.#timerAtMs = now + delay;
    this.#timer = this.#clock.setTimer(() => this.#fire(), delay);
  }

  #disarm(): void {
    if (this.#timer) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAtMs = Number.POSITIVE_INFINITY;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAtMs = Number.POSITIVE_INFINITY;
    if (this.#stopped) return;
    // Judge against clock.now(), not the timer's intended time: a timer firing early delivers nothing.
    const now = this.#clock.now();
    // Keys scheduled by onDue during this pass wait for the next tick, so a callback that keeps
    // re-scheduling at "now" cannot spin the event loop forever.
    const passSeq = this.#seq;
    const deferred: Entry<K>[] = [];
    this.#firing = true;
    try {
      for (;;) {
        const top = this.#heap[0];
        if (!top || top.atMs > now) break;
        this.#pop();
        if (this.#live.get(top.key) !== top) continue; // stale
        if (top.seq > passSeq) {
          deferred.push(top);
          continue;
        }
        this.#live.delete(top.key); // before onDue, so it may re-schedule the key
        try {
          this.#onDue(top.key);
        } catch (err) {
          this.#reportError(err, top.key);
        }
        if (this.#stopped) return;
      }
    } finally {
      this.#firing = false;
    }
    for (const entry of deferred) if (this.#live.get(entry.key) === entry) this.#push(entry);
    if (this.#live.size === 0) this.#heap = [];
    else this.#maybeCompact();
    this.#arm();
  }

  #reportError(err: unknown, key: K): void {
    if (!this.#onError) return;
    try {
      this.#onError(err, key);
    } catch {
      // An error handler that throws must not stop delivery either.
    }
  }

  /** The earliest live entry; pops stale entries off the top on the way. */
  #peekLive(): Entry<K> | undefined {
    for (;;) {
      const top = this.#heap[0];
      if (!top) return undefined;
      if (this.#live.get(top.key) === top) return top;
      this.#pop();
    }
  }

  #maybeCompact(): void {
    const heap = this.#heap;
    if (heap.length < COMPACT_MIN_HEAP || heap.length <= 2 * this.#live.size) return;
    const kept = heap.filter((e) => this.#live.get(e.key) === e);
    // Bottom-up heapify: O(n), cheaper than n pushes.
    for (let i = (kept.length >> 1) - 1; i >= 0; i--) siftDown(kept, i);
    this.#heap = kept;
  }

  #push(entry: Entry<K>): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!less(entry, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    heap[0] = last;
    siftDown(heap, 0);
  }
}

function less<K>(a: Entry<K>, b: Entry<K>): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}

function siftDown<K>(heap: Entry<K>[], start: number): void {
  const n = heap.length;
  const item = heap[start]!;
  let i = start;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    let c = l;
    if (r < n && less(heap[r]!, heap[l]!)) c = r;
    const child = heap[c]!;
    if (!less(child, item)) break;
    heap[i] = child;
    i = c;
  }
  heap[i] = item;
}
