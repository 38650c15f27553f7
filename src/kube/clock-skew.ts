// Estimates (API server clock − local clock) from the `Date` header of ordinary responses, so
// expiry is judged on the server's clock (the one that wrote lastTransitionTime) at no extra cost.
//
// A Date header has 1 s resolution: the server's clock read some instant t during the request, and
// showed D ≤ t < D + 1 s. Locally that instant lies in [sent, received], so each answer bounds the
// offset to [D − received, D + 1000 − sent]. Intersecting recent answers narrows the bound to about
// one round trip. If the bounds stop overlapping (a clock was stepped), only newer samples are kept.
// Samples older than a horizon (5 min) are forgotten, so slow drift between the clocks is followed.

export interface SkewEstimate {
  /** Best estimate (midpoint) of server − local, ms. */
  readonly offsetMs: number;
  /** The interval the offset is known to lie in. */
  readonly lowMs: number;
  readonly highMs: number;
  /** Buckets of samples in the horizon. */
  readonly samples: number;
}

interface Bucket {
  /** receivedMs / bucketMs, floored: which stretch of local time the samples came in. */
  index: number;
  /** Intersection of the bounds of the samples in it (itself a valid bound). */
  low: number;
  high: number;
}

export interface ClockSkewOptions {
  /** How long a sample counts (bounds how far clock drift can go unnoticed). Default 5 min. */
  horizonMs?: number;
  /** Samples arriving within one bucket are merged (memory and estimate() stay O(horizon/bucket)). */
  bucketMs?: number;
}

/**
 * Samples are kept by time, not by count: a burst of ordinary responses (a drain sends 20/s) must not
 * push out the few well-timed ones that narrowed the interval. Each 10 s bucket holds the
 * intersection of its samples; buckets older than the horizon are dropped.
 */
export class ClockSkewEstimator {
  readonly #horizonMs: number;
  readonly #bucketMs: number;
  #buckets: Bucket[] = [];
  /** The intersection of all buckets, kept current by observe() (read on every expiry judgement). */
  #estimate: SkewEstimate | null = null;
  readonly #listeners: Array<() => void> = [];

  constructor(o: ClockSkewOptions = {}) {
    this.#horizonMs = o.horizonMs ?? 5 * 60_000;
    this.#bucketMs = o.bucketMs ?? 10_000;
  }

  /** Feed one response: local send/receive times (ms) and its Date header. */
  observe(sentMs: number, receivedMs: number, dateHeader: string): void {
    const d = Date.parse(dateHeader);
    if (!Number.isFinite(d) || receivedMs < sentMs) return;
    const sample = { low: d - receivedMs, high: d + 1000 - sentMs };
    const index = Math.floor(receivedMs / this.#bucketMs);
    const oldest = index - Math.ceil(this.#horizonMs / this.#bucketMs);
    if ((this.#buckets[0]?.index ?? Infinity) <= oldest)
      this.#buckets = this.#buckets.filter((b) => b.index > oldest);
    // Intersect with the buckets, newest first; at the first one that contradicts the sample (a
    // clock step), drop it and everything older: the consistent tail is kept.
    let { low, high } = sample;
    for (let i = this.#buckets.length - 1; i >= 0; i--) {
      const b = this.#buckets[i]!;
      const nl = Math.max(low, b.low);
      const nh = Math.min(high, b.high);
      if (nl > nh) {
        this.#buckets = this.#buckets.slice(i + 1);
        break;
      }
      low = nl;
      high = nh;
    }
    const last = this.#buckets.at(-1);
    if (last && last.index === index) {
      last.low = Math.max(last.low, sample.low);
      last.high = Math.min(last.high, sample.high);
    } else {
      this.#buckets.push({ index, ...sample });
    }
    // [low, high] is now the intersection of every bucket kept, the sample included.
    const moved = this.#estimate?.lowMs !== low;
    this.#estimate = { offsetMs: (low + high) / 2, lowMs: low, highMs: high, samples: this.#buckets.length };
    if (moved) for (const fn of this.#listeners) fn();
  }

  /**
   * Calls fn whenever the low bound (the one expiry is judged by) moves: whoever converted server
   * times to local timers must re-arm them. A first wide estimate narrows within seconds of start.
   */
  onLowBoundChange(fn: () => void): void {
    this.#listeners.push(fn);
  }

  estimate(): SkewEstimate | null {
    return this.#estimate;
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

/**
 * When to send the next clock probe so that its answer halves the interval: the server's clock
 * should read a whole second just as the request arrives, if the offset were the interval's
 * midpoint. The Date header then says on which side of the midpoint the offset lies (a later
 * second: at least mid; the earlier one: at most mid). About ten probes narrow 1 s to a round trip.
 * `rttMs` (the last probe's round trip) aims at the arrival, half of it after the send.
 * Returns a delay ≥ minDelayMs (and < minDelayMs + 1 s).
 */
export function bisectingProbeDelayMs(
  e: SkewEstimate,
  localNowMs: number,
  rttMs = 0,
  minDelayMs = 50,
): number {
  const mid = (e.lowMs + e.highMs) / 2;
  const earliest = localNowMs + minDelayMs;
  const second = Math.ceil((earliest + rttMs / 2 + mid) / 1000) * 1000;
  return second - mid - rttMs / 2 - localNowMs;
}
