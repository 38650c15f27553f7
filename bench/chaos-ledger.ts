// The chaos soak's accounting (bench/chaos.ts), pure so it can be re-run on a saved ledger
// (`node bench/chaos.ts --evaluate bench/results/chaos-ledger-….json.gz`) and unit-tested
// (test/unit/bench/chaos-ledger.test.ts).

export interface LedgerEntry {
  name: string;
  kind: 'ttl' | 'unfinished' | 'extended';
  /** Finished at (lastTransitionTime, whole seconds) and due at, ms. */
  finishMs?: number;
  expiryMs?: number;
  /** The TTL extension was accepted at (extended ones). */
  extendedMs?: number;
  deletedMs?: number;
  /** Seen removed by a relist: deleted at some time in [gapFromMs, deletedMs]. */
  gapFromMs?: number;
  /** Still present when the run ended. */
  alive?: boolean;
  /** Its status write got no clear answer: left out of the accounting. */
  uncertain?: boolean;
}

export interface FaultWindow {
  kind: string;
  startMs: number;
  endMs: number;
  /** kill-leader, kill-both: seconds from the kill until a replica not killed held the lease. */
  failoverS?: number;
}

/** Jobs that are due at `t` and not yet deleted (only those that are meant to be deleted by then). */
export function backlogAt(entries: readonly LedgerEntry[], t: number): number {
  let n = 0;
  for (const e of entries) {
    if (e.uncertain || e.expiryMs === undefined || e.expiryMs > t) continue;
    if (e.kind === 'unfinished') continue;
    if (e.kind === 'extended' && e.extendedMs !== undefined && e.extendedMs <= t) continue;
    if (e.deletedMs === undefined || e.deletedMs > t) n++;
  }
  return n;
}

/**
 * When a fault's effect is over: the first moment after the fault ended at which the backlog of
 * due Jobs is back to at most `threshold` (the steady state holds about rate × lateness). A fault
 * leaves a backlog that the new leader drains at its QPS budget minus the arrival rate; Jobs that
 * come due while it drains queue behind it — they are late because of the fault, not in spite of
 * being outside it. Bounded by `untilMs`.
 */
export function drainedAt(
  entries: readonly LedgerEntry[],
  w: FaultWindow,
  threshold: number,
  untilMs: number,
  stepMs = 250,
): number {
  for (let t = w.endMs; t < untilMs; t += stepMs) if (backlogAt(entries, t) <= threshold) return t;
  return untilMs;
}

export interface Lateness {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface Accounting {
  deletedEarly: number;
  deletedThatShouldLive: number;
  leftAtEnd: number;
  deletedInsideALedgerGapAroundExpiry: number;
  uncertainFinish: number;
  /** Per fault: seconds from its end until the backlog was drained. */
  drainSeconds: Array<{ kind: string; drainS: number }>;
  latenessOutsideFaults: Lateness;
  latenessInsideFaults: Lateness;
  bad: string[];
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const lateness = (xs: number[]): Lateness => ({
  n: xs.length,
  p50: percentile(xs, 50),
  p99: percentile(xs, 99),
  max: percentile(xs, 100),
});

export function evaluate(
  entries: readonly LedgerEntry[],
  windows: readonly FaultWindow[],
  opts: { backlogThreshold: number; endMs: number },
): Accounting {
  // A fault's window: from 1 s before it began until its backlog was drained.
  const spans = windows.map((w) => ({
    kind: w.kind,
    from: w.startMs - 1000,
    to: drainedAt(entries, w, opts.backlogThreshold, opts.endMs),
    endMs: w.endMs,
  }));
  const inFault = (ms: number) => spans.some((s) => ms >= s.from && ms <= s.to);
  let early = 0;
  let shouldLive = 0;
  let left = 0;
  let gap = 0;
  let uncertain = 0;
  const outside: number[] = [];
  const inside: number[] = [];
  const bad: string[] = [];
  for (const e of entries) {
    if (e.uncertain) {
      uncertain++;
      continue;
    }
    if (e.kind === 'unfinished' || (e.kind === 'extended' && e.extendedMs !== undefined)) {
      // An extended Job may be deleted only after its first expiry and before its extension.
      const allowed =
        e.kind === 'extended' &&
        e.deletedMs !== undefined &&
        e.deletedMs <= e.extendedMs! &&
        e.deletedMs >= e.expiryMs!;
      if (e.deletedMs !== undefined && !allowed) {
        shouldLive++;
        bad.push(`${e.name} (${e.kind}) deleted`);
      }
      continue;
    }
    if (e.expiryMs === undefined) continue;
    if (e.deletedMs === undefined) {
      if (e.alive) {
        left++;
        bad.push(`${e.name} left (due ${new Date(e.expiryMs).toISOString()})`);
      }
      continue;
    }
    if (e.deletedMs < e.expiryMs - 50) {
      early++;
      bad.push(`${e.name} deleted ${(e.expiryMs - e.deletedMs) / 1000} s early`);
      continue;
    }
    if ((e.gapFromMs ?? e.deletedMs) < e.expiryMs) {
      gap++;
      continue;
    }
    const late = (e.deletedMs - e.expiryMs) / 1000;
    if (e.gapFromMs === undefined && !inFault(e.expiryMs)) outside.push(late);
    else inside.push(late);
  }
  return {
    deletedEarly: early,
    deletedThatShouldLive: shouldLive,
    leftAtEnd: left,
    deletedInsideALedgerGapAroundExpiry: gap,
    uncertainFinish: uncertain,
    drainSeconds: spans.map((s) => ({ kind: s.kind, drainS: Number(((s.to - s.endMs) / 1000).toFixed(1)) })),
    latenessOutsideFaults: lateness(outside),
    latenessInsideFaults: lateness(inside),
    bad: bad.slice(0, 20),
  };
}
