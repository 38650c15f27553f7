// The clock is injected everywhere time matters, so expiry and back-off are testable without waiting.

export interface TimerHandle {
  /** Opaque; only passed back to clearTimer. */
  readonly id: unknown;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Like setTimeout, but never asked for more than MAX_TIMER_DELAY_MS (callers re-arm). */
  setTimer(fn: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** Node's timers hold at most 2^31-1 ms (~24.8 days); a longer delay fires at once. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, delayMs) {
    const t = setTimeout(fn, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS));
    return { id: t };
  },
  clearTimer(handle) {
    clearTimeout(handle.id as NodeJS.Timeout);
  },
};

/** A clock for tests: time moves only when advance() is called; due timers run in order. */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    if (delayMs > MAX_TIMER_DELAY_MS)
      throw new Error(`timer delay ${delayMs} ms exceeds the platform maximum`);
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, delayMs), fn });
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle.id as number);
  }

  pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by ms, running every timer that falls due on the way, earliest first. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let nextId: number | undefined;
      let next: { at: number; fn: () => void } | undefined;
      for (const [id, t] of this.#timers) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && id < (nextId ?? 0)))) {
          next = t;
          nextId = id;
        }
      }
      if (!next || nextId === undefined) break;
      this.#timers.delete(nextId);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = target;
  }
}
