// Estimates (API server clock − local clock) from the `Date` header of ordinary 2xx answers, so
// expiry is judged on the server's clock (the one that wrote lastTransitionTime) at no extra cost.
//
// A Date header has 1 s resolution: the server's clock read some instant t during the request, and
// showed D ≤ t < D + 1 s. Locally that instant lies in [sent, received], so each answer bounds the
// offset to [D − received, D + 1000 − sent]. Offsets are kept against the MONOTONIC clock (only the
// round trip is taken from the wall readings), so a step of the local wall clock changes nothing.
//
// Robustness (docs/decisions.md, "Clock skew"): the low bound, which expiry is judged by, rises only
// on agreement — a point covered by most recent buckets, and QUORUM buckets (distinct seconds) of
// that cluster saying the offset is at least that much. An answer saying the server is BEHIND the
// estimate (later deletions) lowers it at once and holds it down while it is recent. Samples older
// than a horizon (5 min) are forgotten, so slow drift between the clocks is followed.

export interface SkewEstimate {
  /** Best estimate (midpoint) of server − local wall clock, ms (as of the last answer). */
  readonly offsetMs: number;
  /** The interval the offset is known to lie in (lowMs is the agreed, conservative bound). */
  readonly lowMs: number;
  readonly highMs: number;
  /** Buckets of samples in the horizon. */
  readonly samples: number;
}

/** What observe() did with an answer: `rejected` = it disagreed (server ahead) and waits for agreement. */
export type SkewVerdict = 'ignored' | 'applied' | 'rejected';

interface Bucket {
  /** monotonic receivedMs / bucketMs, floored: which stretch of local time the samples came in. */
  index: number;
  /** Bounds on server − monotonic: the intersection of the bucket's samples (their hull if they disagree). */
  low: number;
  high: number;
}

export interface ClockSkewOptions {
  /** How long a sample counts (bounds how far clock drift can go unnoticed). Default 5 min. */
  horizonMs?: number;
  /** Samples arriving within one bucket are merged; agreement needs distinct buckets. Default 250 ms. */
  bucketMs?: number;
  /** Agreement is judged over the last 2·quorum−1 buckets of this recent stretch. Default 60 s. */
  windowMs?: number;
  /** Buckets that must agree before the low bound rises. Default 3. */
  quorum?: number;
  /** Local monotonic ms (default performance.now()). */
  monotonic?: () => number;
}

/** An answer taking longer than this says little about the clocks (and may span a wall-clock step). */
const MAX_RTT_MS = 60_000;

/**
 * Samples are kept by time, not by count: a burst of ordinary responses (a drain sends 20/s) must not
 * push out the few well-timed ones that narrowed the interval. Each bucket holds the intersection of
 * its samples; buckets older than the horizon are dropped. The estimate is recomputed per answer
 * (O(buckets)), never per expiry judgement.
 */
export class ClockSkewEstimator {
  readonly #horizonMs: number;
  readonly #bucketMs: number;
  readonly #windowMs: number;
  readonly #quorum: number;
  readonly #mono: () => number;
  #buckets: Bucket[] = [];
  /** The agreed low bound on server − monotonic (undefined: no answer yet, the local clock is used). */
  #low: number | undefined;
  #high: number | undefined;
  #estimate: SkewEstimate | null = null;
  readonly #listeners: Array<() => void> = [];
  /** Monotonic time of the last sample taken (-Infinity: none). */
  #lastSampleMono = -Infinity;

  constructor(o: ClockSkewOptions = {}) {
    this.#horizonMs = o.horizonMs ?? 5 * 60_000;
    this.#bucketMs = o.bucketMs ?? 250;
    this.#windowMs = o.windowMs ?? 60_000;
    this.#quorum = o.quorum ?? 3;
    this.#mono = o.monotonic ?? (() => performance.now());
  }

  /** How long ago the last answer was taken as a sample (Infinity: never). */
  msSinceLastSample(): number {
    return this.#mono() - this.#lastSampleMono;
  }

  /** Feed one 2xx answer: local wall send/receive times (ms) and its Date header. */
  observe(sentMs: number, receivedMs: number, dateHeader: string): SkewVerdict {
    const d = Date.parse(dateHeader);
    const rtt = receivedMs - sentMs;
    if (!Number.isFinite(d) || rtt < 0 || rtt > MAX_RTT_MS) return 'ignored';
    const m = this.#mono();
    this.#lastSampleMono = m;
    const wallMinusMono = receivedMs - m;
    const s = { low: d - m, high: d + 1000 - (m - rtt) };
    const index = Math.floor(m / this.#bucketMs);
    const oldest = index - Math.ceil(this.#horizonMs / this.#bucketMs);
    if ((this.#buckets[0]?.index ?? Infinity) <= oldest)
      this.#buckets = this.#buckets.filter((b) => b.index > oldest);
    // Says the server is ahead of everything known: held (counted by the caller) until others agree.
    const verdict: SkewVerdict = this.#high !== undefined && s.low > this.#high ? 'rejected' : 'applied';
    const last = this.#buckets.at(-1);
    if (last && last.index === index) {
      const nl = Math.max(last.low, s.low);
      const nh = Math.min(last.high, s.high);
      // Two answers of one second that disagree: keep their hull (uninformative, but conservative).
      if (nl <= nh) [last.low, last.high] = [nl, nh];
      else [last.low, last.high] = [Math.min(last.low, s.low), Math.max(last.high, s.high)];
    } else {
      this.#buckets.push({ index, ...s });
    }
    this.#recompute(index, wallMinusMono);
    return verdict;
  }

  #recompute(index: number, wallMinusMono: number): void {
    const q = this.#quorum;
    const firstRecent = index - Math.ceil(this.#windowMs / this.#bucketMs);
    // The last 2·QUORUM−1 buckets of the window vote: a majority of them is at least QUORUM.
    const recent = this.#buckets.filter((b) => b.index > firstRecent).slice(-(2 * q - 1));
    // The point most recent buckets agree on (the lowest such point on a tie: conservative).
    const edges: Array<[number, number]> = [];
    for (const b of recent) edges.push([b.low, 1], [b.high, -1]);
    edges.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    let depth = 0;
    let best = 0;
    let p = 0;
    let pEnd = 0;
    for (const [x, e] of edges) {
      if (depth === best && e < 0 && pEnd === p) pEnd = x; // the max-depth stretch ends here
      depth += e;
      if (depth > best) [best, p, pEnd] = [depth, x, x];
    }
    // The cluster: every bucket in the horizon meeting that stretch (older, narrower ones included).
    const cluster = this.#buckets.filter((b) => b.low <= pEnd && p <= b.high);
    const lows = cluster.map((b) => b.low).sort((a, b) => b - a);
    const highs = cluster.map((b) => b.high).sort((a, b) => a - b);
    // Agreed: QUORUM recent buckets and most of the recent ones. Its low is the quorum-th highest
    // low of the cluster, so fewer than QUORUM lying buckets inside it cannot raise the bound.
    const agreed = best >= q && best * 2 > recent.length;
    // Without agreement the bound only falls: to the lowest recent low (every honest one is ≤ truth).
    let low = agreed ? lows[q - 1]! : Math.min(this.#low ?? wallMinusMono, ...recent.map((b) => b.low));
    // An answer newer than the agreeing ones saying the server is behind holds the bound down (the
    // safe direction: later deletions) until newer answers agree again.
    const newestAgreed = Math.max(-Infinity, ...cluster.map((b) => b.index));
    for (const b of recent) if (b.index > newestAgreed && b.high < low) low = Math.min(low, b.low);
    // The high end and midpoint are the cluster's intersection: they aim the probes and the metric.
    const high = Math.max(low, highs[0]!);
    const mid = Math.max(low, Math.min(high, (Math.max(low, lows[0]!) + high) / 2));
    const moved = this.#low !== low;
    this.#low = low;
    this.#high = high;
    this.#estimate = {
      offsetMs: mid - wallMinusMono,
      lowMs: low - wallMinusMono,
      highMs: high - wallMinusMono,
      samples: this.#buckets.length,
    };
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
   * The API server's time now, judged conservatively for deleting: the agreed LOW bound on the
   * monotonic clock, so an object is never deleted before its expiry on the server's clock (at
   * worst a little after). `localNowMs` (wall) is used only before the first answer.
   */
  serverNowForExpiry(localNowMs: number): number {
    return this.#low === undefined ? localNowMs : this.#mono() + this.#low;
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
  const mid = e.offsetMs; // the intersection's midpoint (lowMs lags it until answers agree)
  const earliest = localNowMs + minDelayMs;
  const second = Math.ceil((earliest + rttMs / 2 + mid) / 1000) * 1000;
  return second - mid - rttMs / 2 - localNowMs;
}
