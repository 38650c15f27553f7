// The chaos soak's accounting (bench/chaos-ledger.ts): what counts as early, should-live, left,
// and which lateness is "outside a fault" once a fault's window lasts until its backlog drained.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { backlogAt, drainedAt, evaluate, type LedgerEntry, percentile } from '../../../bench/chaos-ledger.ts';

/** 10 Jobs/s due from t=0 for 120 s, each deleted 100 ms after expiry — except those due in a fault
 *  from 40 s to 50 s, which are deleted when the fault ends, then drained at 20/s. */
function stream(): { entries: LedgerEntry[]; drainEndMs: number } {
  const entries: LedgerEntry[] = [];
  let nextFreeMs = 50_000;
  let drainEndMs = 0;
  for (let i = 0; i < 1200; i++) {
    const expiryMs = i * 100;
    let deletedMs = expiryMs + 100;
    if (deletedMs >= 40_000 && nextFreeMs > expiryMs) {
      // queued behind the fault's backlog: one deletion per 50 ms from the fault's end
      deletedMs = Math.max(nextFreeMs, expiryMs + 100);
      nextFreeMs = deletedMs + 50;
      drainEndMs = deletedMs;
    }
    entries.push({ name: `j${i}`, kind: 'ttl', finishMs: expiryMs, expiryMs, deletedMs });
  }
  return { entries, drainEndMs };
}

test('a fault window lasts until its backlog is drained; lateness outside it is the steady state', () => {
  const { entries, drainEndMs } = stream();
  const w = { kind: 'partition', startMs: 40_000, endMs: 50_000 };
  assert.ok(backlogAt(entries, 49_000) >= 90, 'the fault leaves a backlog');
  assert.ok(backlogAt(entries, 20_000) <= 1, 'the steady state holds about one');
  const drained = drainedAt(entries, w, 10, 200_000);
  assert.ok(
    drained > 50_000 && drained <= drainEndMs + 250,
    `drained at ${drained}, last queued ${drainEndMs}`,
  );
  const a = evaluate(entries, [w], { backlogThreshold: 10, endMs: 200_000 });
  assert.equal(a.deletedEarly, 0);
  assert.equal(a.leftAtEnd, 0);
  // A backlog of one second of arrivals left when the window closes: under a second late at most.
  assert.equal(a.latenessOutsideFaults.p50, 0.1, 'outside: the steady 100 ms');
  assert.ok(a.latenessOutsideFaults.max < 1, `outside max ${a.latenessOutsideFaults.max}`);
  assert.ok(a.latenessInsideFaults.max > 5, 'inside: the backlog');
  assert.equal(a.latenessOutsideFaults.n + a.latenessInsideFaults.n, entries.length);
  // The fixed 20 s grace of the first soak would have counted backlog lateness as outside.
  const short = evaluate(entries, [{ ...w }], { backlogThreshold: 10_000, endMs: 200_000 });
  assert.ok(short.latenessOutsideFaults.max > 1);
});

test('early, should-live and left are counted; extended Jobs may go only between expiry and extension', () => {
  const entries: LedgerEntry[] = [
    { name: 'early', kind: 'ttl', expiryMs: 10_000, deletedMs: 9_000 },
    { name: 'left', kind: 'ttl', expiryMs: 10_000, alive: true },
    { name: 'gone-unseen', kind: 'ttl', expiryMs: 10_000 },
    { name: 'unfinished', kind: 'unfinished', deletedMs: 5_000 },
    { name: 'ext-ok', kind: 'extended', expiryMs: 10_000, extendedMs: 15_000, deletedMs: 12_000 },
    { name: 'ext-bad', kind: 'extended', expiryMs: 10_000, extendedMs: 15_000, deletedMs: 16_000 },
    { name: 'gap', kind: 'ttl', expiryMs: 10_000, deletedMs: 12_000, gapFromMs: 8_000 },
    { name: 'uncertain', kind: 'unfinished', uncertain: true, deletedMs: 1 },
  ];
  const a = evaluate(entries, [], { backlogThreshold: 10, endMs: 20_000 });
  assert.equal(a.deletedEarly, 1);
  assert.equal(a.leftAtEnd, 1);
  assert.equal(a.deletedThatShouldLive, 2);
  assert.equal(a.deletedInsideALedgerGapAroundExpiry, 1);
  assert.equal(a.uncertainFinish, 1);
  assert.deepEqual(a.bad.length, 4);
});

test('percentile is the nearest-rank percentile', () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1 }),
      fc.integer({ min: 1, max: 100 }),
      (xs, p) => {
        const s = [...xs].sort((a, b) => a - b);
        const v = percentile(xs, p);
        const below = s.filter((x) => x <= v).length;
        assert.ok(below >= Math.ceil((p / 100) * s.length));
        assert.equal(percentile(xs, 100), s.at(-1));
      },
    ),
  );
});
