// Bounds the number of API requests in flight, so a burst of expiries (say 10,000 Jobs created by
// one CronJob storm) queues here instead of opening 10,000 sockets at once.

export class Semaphore {
  readonly #limit: number;
  #inUse = 0;
  /** Blocked acquirers, oldest first. */
  #waiters: Array<() => void> = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  get limit(): number {
    return this.#limit;
  }

  /** Permits currently held. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Callers waiting in acquire(). */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Resolves with a release function once a permit is free (FIFO). Release is idempotent. */
  acquire(): Promise<() => void> {
    if (this.#inUse < this.#limit) {
      this.#inUse++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve) => this.#waiters.push(() => resolve(this.#releaser())));
  }

  /** Runs fn while holding a permit; the permit is released however fn ends. */
  async run<T>(fn: () => T | Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      // Releasing twice would let one more caller in than the limit allows.
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      // Hand the permit straight to the next waiter, so a newcomer cannot overtake it.
      if (next) next();
      else this.#inUse--;
    };
  }
}

/** Returns a runner that lets at most n calls of it be in flight at once, the rest waiting in order. */
export function limitConcurrency(n: number): <T>(fn: () => T | Promise<T>) => Promise<T> {
  const semaphore = new Semaphore(n);
  return (fn) => semaphore.run(fn);
}
