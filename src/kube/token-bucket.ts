// Client-side rate limit on API requests, like client-go's flowcontrol token bucket
// (kube-controller-manager: --kube-api-qps 20 --kube-api-burst 30). The bucket starts full with
// `burst` tokens and refills at `qps` per second; take() waits its turn, first come first served.

import { type Clock, MAX_TIMER_DELAY_MS, type TimerHandle } from '../clock.ts';

export interface TokenBucketOptions {
  /** Tokens per second; <= 0 means unlimited. */
  qps: number;
  /** Bucket size: how many requests may go at once after a quiet spell. */
  burst: number;
  clock: Clock;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #lastMs: number;
  /** FIFO; only the head's readiness arms the (single) timer. */
  #waiters: Waiter[] = [];
  #timer: TimerHandle | undefined;

  constructor(options: TokenBucketOptions) {
    if (options.qps > 0 && !(options.burst >= 1)) {
      throw new RangeError(`burst must be at least 1 when qps > 0, got ${options.burst}`);
    }
    this.#qps = options.qps;
    this.#burst = options.burst;
    this.#clock = options.clock;
    this.#tokens = options.burst;
    this.#lastMs = options.clock.now();
  }

  get unlimited(): boolean {
    return !(this.#qps > 0);
  }

  /** Callers currently waiting in take(). */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Tokens available now (fractional), for metrics and tests. */
  available(): number {
    if (this.unlimited) return Number.POSITIVE_INFINITY;
    this.#refill();
    return this.#tokens;
  }

  /**
   * Resolves when a token is taken. Waiters are served in call order. An aborted signal rejects
   * with its reason and gives up the place in line without consuming a token.
   */
  take(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.unlimited) return Promise.resolve();
    // Someone already waiting goes first, even if a token has just become available.
    if (this.#waiters.length === 0 && this.#tryConsume()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => this.#abort(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      if (this.#waiters.length === 1) this.#arm();
    });
  }

  /** Takes a token if one is available now and nobody is waiting; never waits. */
  tryTake(): boolean {
    if (this.unlimited) return true;
    if (this.#waiters.length > 0) return false;
    return this.#tryConsume();
  }

  #tryConsume(): boolean {
    this.#refill();
    // No epsilon: a token short by float noise only means one more 1 ms timer, never an early grant.
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #refill(): void {
    const now = this.#clock.now();
    // A clock stepping backwards must not drain the bucket.
    const elapsed = Math.max(0, now - this.#lastMs);
    this.#lastMs = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#qps) / 1000);
  }

  /** One timer, for when the head waiter's token will have accrued. */
  #arm(): void {
    if (this.#timer || this.#waiters.length === 0) return;
    this.#refill();
    const missing = Math.max(0, 1 - this.#tokens);
    // Round up to whole ms and at least 1, so the timer never fires before the token exists; a tiny
    // qps may need more than a platform timer holds, and #fire re-arms if it comes early.
    const delay = Math.min(Math.max(1, Math.ceil((missing * 1000) / this.#qps)), MAX_TIMER_DELAY_MS);
    this.#timer = this.#clock.setTimer(() => this.#fire(), delay);
  }

  #fire(): void {
    this.#timer = undefined;
    for (;;) {
      const head = this.#waiters[0];
      if (!head || !this.#tryConsume()) break;
      this.#waiters.shift();
      this.#release(head);
      head.resolve();
    }
    this.#arm();
  }

  #abort(waiter: Waiter): void {
    const i = this.#waiters.indexOf(waiter);
    if (i < 0) return;
    this.#waiters.splice(i, 1);
    this.#release(waiter);
    waiter.reject(waiter.signal?.reason);
    if (this.#waiters.length === 0 && this.#timer) {
      this.#clock.clearTimer(this.#timer);
      this.#timer = undefined;
    }
  }

  #release(waiter: Waiter): void {
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
  }
}
