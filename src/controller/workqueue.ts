// A work queue with client-go's guarantees (k8s.io/client-go/util/workqueue):
// - FIFO among keys that are ready;
// - de-duplicated: a key added many times before a worker takes it is processed once;
// - never handed to two workers at once: a key added while it is being processed is marked dirty
//   and queued again only when done(key) is called;
// - addAfter keeps the earliest pending time of a key; addRateLimited backs off per key
//   (ItemExponentialFailureRateLimiter: 5 ms doubling to 1000 s) until forget(key);
// - a server's Retry-After (addRateLimited's minDelayMs) holds the key until then, even when it is
//   added again meanwhile (a watch event re-judging it must not send the request sooner).

import type { Clock } from '../clock.ts';
import { ExpiryScheduler } from './expiry-scheduler.ts';

export interface WorkQueueOptions {
  clock: Clock;
  /** First back-off of addRateLimited; client-go's default controller rate limiter uses 5 ms. */
  baseDelayMs?: number;
  /** Back-off cap; client-go uses 1000 s. */
  maxDelayMs?: number;
}

export const DEFAULT_BASE_DELAY_MS = 5;
export const DEFAULT_MAX_DELAY_MS = 1000 * 1000;

export class WorkQueue<K = string> {
  readonly #clock: Clock;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;

  /** Ready keys in order; each key appears at most once (it is in #dirty while queued). */
  #queue: K[] = [];
  #head = 0;
  /** Keys that need processing: queued, or re-added while being processed. */
  #dirty = new Set<K>();
  /** Keys handed to a worker and not yet done. */
  #processing = new Set<K>();
  /** Workers blocked in get(), oldest first. */
  #waiters: Array<(key: K | undefined) => void> = [];
  /** Per-key failure counts for addRateLimited. */
  #failures = new Map<K, number>();
  /** Keys waiting for their addAfter time. */
  readonly #delayed: ExpiryScheduler<K>;
  /** Keys a server asked us to leave alone until then (Retry-After), clock ms. */
  #notBefore = new Map<K, number>();
  #shuttingDown = false;

  constructor(options: WorkQueueOptions) {
    this.#clock = options.clock;
    this.#baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.#maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.#delayed = new ExpiryScheduler<K>({ clock: options.clock, onDue: (key) => this.add(key) });
  }

  /** Keys ready to be handed out (not counting keys being processed or waiting for a delay). */
  get len(): number {
    return this.#queue.length - this.#head;
  }

  /** Keys waiting for an addAfter / addRateLimited time. */
  get delayedLen(): number {
    return this.#delayed.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  add(key: K): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    const notBefore = this.#notBefore.get(key);
    if (notBefore !== undefined) {
      if (notBefore > this.#clock.now()) {
        this.#delayed.schedule(key, notBefore);
        return;
      }
      this.#notBefore.delete(key);
    }
    this.#dirty.add(key);
    // Being processed: done() queues it again, so no worker picks it up concurrently.
    if (this.#processing.has(key)) return;
    this.#queue.push(key);
    this.#dispatch();
  }

  /** Adds key once delayMs has passed; if it is already waiting, the earlier of the two times wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const atMs = Math.max(this.#clock.now() + delayMs, this.#notBefore.get(key) ?? 0);
    const pending = this.#delayed.dueAtMs(key);
    if (pending === undefined || atMs < pending) this.#delayed.schedule(key, atMs);
  }

  /**
   * Adds key after its next back-off delay (base·2^failures, capped at maxDelayMs if given) and
   * counts a failure; minDelayMs (a server's Retry-After) is a floor over the capped delay.
   */
  addRateLimited(key: K, maxDelayMs?: number, minDelayMs?: number): void {
    const delay = this.#nextBackoff(key);
    const capped = maxDelayMs === undefined ? delay : Math.min(delay, maxDelayMs);
    if (minDelayMs !== undefined && minDelayMs > 0) this.#notBefore.set(key, this.#clock.now() + minDelayMs);
    this.addAfter(key, minDelayMs === undefined ? capped : Math.max(capped, minDelayMs));
  }

  /** Resets key's back-off: call after it was processed successfully. */
  forget(key: K): void {
    this.#failures.delete(key);
    this.#notBefore.delete(key);
  }

  /**
   * Adds every key now that is waiting out a failure back-off (their failure counts stay): after an
   * outage the keys that failed during it need not wait out back-offs as long as the outage.
   * Returns how many were re-added.
   */
  retryBackedOffNow(): number {
    let n = 0;
    for (const key of this.#failures.keys()) {
      if (this.#delayed.cancel(key)) {
        this.add(key);
        n++;
      }
    }
    return n;
  }

  /** How many times key went through addRateLimited since the last forget. */
  numRequeues(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /**
   * The next ready key, waiting if none is; undefined once shutDown() was called.
   * The caller owns the key until it calls done(key).
   */
  get(): Promise<K | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    if (this.len > 0) return Promise.resolve(this.#take());
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks key processed; if it was added meanwhile, it is queued again now. */
  done(key: K): void {
    // Only a key a worker holds: a stray done() must not queue a duplicate of a dirty key.
    if (!this.#processing.delete(key)) return;
    const notBefore = this.#notBefore.get(key);
    if (this.#dirty.has(key) && notBefore !== undefined && notBefore > this.#clock.now()) {
      // Added while being processed, but the server asked to wait (Retry-After): not before then.
      this.#dirty.delete(key);
      this.#delayed.schedule(key, notBefore);
      return;
    }
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#queue.push(key);
      this.#dispatch();
    }
  }

  /**
   * Stops handing out keys: waiting and later get() calls resolve to undefined, adds are ignored and
   * delayed keys dropped. Unlike client-go's Get, queued keys are not drained — a controller that
   * is stopping (e.g. lost its lease) should not start new deletions.
   */
  shutDown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.#delayed.stop();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve(undefined);
  }

  #nextBackoff(key: K): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    // 2 ** failures becomes Infinity for huge counts; the cap still applies.
    return Math.min(this.#baseDelayMs * 2 ** failures, this.#maxDelayMs);
  }

  /** Hands ready keys to blocked workers, oldest worker first. */
  #dispatch(): void {
    while (this.#waiters.length > 0 && this.len > 0) {
      const resolve = this.#waiters.shift()!;
      resolve(this.#take());
    }
  }

  /** Dequeues the next key and marks it as processing (before the worker even resumes). */
  #take(): K {
    const key = this.#queue[this.#head]!;
    this.#queue[this.#head] = undefined as K; // let it be collected
    this.#head++;
    // Amortised O(1) dequeue: drop the consumed prefix once it is most of the array.
    if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    } else if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }
}
