// Estimates (API server clock − local clock) from the `Date` header of ordinary responses, so
// expiry is judged on the server's clock (the one that wrote lastTransitionTime) at no extra cost.
//
// A Date header has 1 s resolution: the server's clock read some instant t during the request, and
// showed D ≤ t < D + 1 s. Locally that instant lies in [sent, received], so each answer bounds the
// offset to [D − received, D + 1000 − sent]. Intersecting recent answers narrows the bound to about
// one round trip. If the bounds stop overlapping (a clock was stepped), only newer samples are kept.

export interface SkewEstimate {
  /** Best estimate (midpoint) of server − local, ms. */
  offsetMs: number;
  /** The interval the offset is known to lie in. */
  lowMs: number;
  highMs: number;
  samples: number;
}

interface Sample {
  low: number;
  high: number;
}

export class ClockSkewEstimator {
  readonly #window: number;
  #samples: Sample[] = [];
  #lowMs: number | undefined;
  readonly #listeners: Array<() => void> = [];

  constructor(window = 64) {
    this.#window = window;
  }

  /** Feed one response: local send/receive times (ms) and its Date header. */
  observe(sentMs: number, receivedMs: number, dateHeader: string): void {
    const d = Date.parse(dateHeader);
    if (!Number.isFinite(d) || receivedMs < sentMs) return;
    const s = { low: d - receivedMs, high: d + 1000 - sentMs };
    this.#samples.push(s);
    if (this.#samples.length > this.#window) this.#samples.shift();
    // Drop older samples that contradict the newest one (a clock step); keep the consistent tail.
    let low = s.low;
    let high = s.high;
    for (let i = this.#samples.length - 2; i >= 0; i--) {
      const o = this.#samples[i]!;
      const nl = Math.max(low, o.low);
      const nh = Math.min(high, o.high);
      if (nl > nh) {
        this.#samples = this.#samples.slice(i + 1);
        break;
      }
      low = nl;
      high = nh;
    }
    const newLow = this.estimate()?.lowMs;
    if (newLow !== this.#lowMs) {
      this.#lowMs = newLow;
      for (const fn of this.#listeners) fn();
    }
  }

  /**
   * Calls fn whenever the low bound (the one expiry is judged by) moves: whoever converted server
   * times to local timers must re-arm them. A first wide estimate narrows within seconds of start.
   */
  onLowBoundChange(fn: () => void): void {
    this.#listeners.push(fn);
  }

  estimate(): SkewEstimate | null {
    if (this.#samples.length === 0) return null;
    let low = -Infinity;
    let high = Infinity;
    for (const s of this.#samples) {
      low = Math.max(low, s.low);
      high = Math.min(high, s.high);
    }
    return { offsetMs: (low + high) / 2, lowMs: low, highMs: high, samples: this.#samples.length };
  }

  /**
   * The API server's time now, judged conservatively for deleting: the LOW end of the interval,
   * so an object is never deleted before its expiry on the server's clock (at worst a little after).
   */
  serverNowForExpiry(localNowMs: number): number {
    const e = this.estimate();
    return e ? localNowMs + e.lowMs : localNowMs;
  }
}
