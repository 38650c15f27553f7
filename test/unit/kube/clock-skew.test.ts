import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bisectingProbeDelayMs, ClockSkewEstimator } from '../../../src/kube/clock-skew.ts';
import { microTime } from '../../../src/kube/leader-election.ts';

/** A server whose clock is `offsetMs` ahead of ours answers a request sent at `sent` after `rttMs`. */
function sample(est: ClockSkewEstimator, offsetMs: number, sent: number, rttMs: number): void {
  const serverAt = sent + rttMs / 2 + offsetMs; // the instant the server read its clock
  const date = new Date(Math.floor(serverAt / 1000) * 1000).toUTCString(); // Date: 1 s resolution
  est.observe(sent, sent + rttMs, date);
}

test('no samples: the local clock is used', () => {
  const est = new ClockSkewEstimator();
  assert.equal(est.estimate(), null);
  assert.equal(est.serverNowForExpiry(1234), 1234);
});

test('the true offset always lies inside the estimated interval, and the interval narrows', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 1, maxLength: 40 }),
      (offset, phases) => {
        const est = new ClockSkewEstimator();
        let t = 1_700_000_000_000;
        for (const p of phases) {
          t += 1000 + p;
          sample(est, offset, t, 4);
        }
        const e = est.estimate()!;
        assert.ok(e.lowMs <= offset && offset <= e.highMs, `offset ${offset} in [${e.lowMs}, ${e.highMs}]`);
        // Conservative: judged "server now" is never ahead of the real server clock.
        assert.ok(est.serverNowForExpiry(t) <= t + offset);
      },
    ),
    { numRuns: 2000 },
  );
});

test('samples spread over the second narrow the bound to about one round trip', () => {
  const est = new ClockSkewEstimator();
  const offset = -600_000 + 137; // 10 minutes behind, plus a bit
  let t = 1_700_000_000_000;
  for (let i = 0; i < 30; i++) {
    t += 1000 + 37 * i;
    sample(est, offset, t, 4);
  }
  const e = est.estimate()!;
  assert.ok(e.highMs - e.lowMs <= 150, `interval ${e.highMs - e.lowMs} ms`);
  assert.ok(Math.abs(e.offsetMs - offset) <= 50);
});

test('a clock step drops contradicting older samples', () => {
  const est = new ClockSkewEstimator();
  let t = 1_700_000_000_000;
  for (let i = 0; i < 10; i++) {
    t += 1100;
    sample(est, 0, t, 4);
  }
  for (let i = 0; i < 10; i++) {
    t += 1100;
    sample(est, 300_000, t, 4);
  }
  const e = est.estimate()!;
  assert.ok(e.lowMs <= 300_000 && 300_000 <= e.highMs, `follows the new offset: [${e.lowMs}, ${e.highMs}]`);
});

test('listeners hear each move of the low bound, and only those', () => {
  const est = new ClockSkewEstimator();
  const lows: number[] = [];
  est.onLowBoundChange(() => lows.push(est.estimate()!.lowMs));
  let t = 1_700_000_000_000;
  for (let i = 0; i < 30; i++) {
    t += 1000 + 37 * i;
    sample(est, 250, t, 4);
  }
  assert.ok(lows.length >= 2 && lows.length < 30, `${lows.length} moves for 30 samples`);
  for (let i = 1; i < lows.length; i++) assert.ok(lows[i]! > lows[i - 1]!, 'a narrowing bound only rises');
  assert.equal(lows.at(-1), est.estimate()!.lowMs);
  const before = lows.length;
  est.observe(t + 2000, t + 2004, 'not a date');
  assert.equal(lows.length, before, 'an ignored sample moves nothing');
});

test('bisecting probes narrow the interval to about a round trip in a dozen probes, the offset always inside', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      fc.integer({ min: 0, max: 20 }),
      fc.integer({ min: 0, max: 999 }),
      (offset, rtt, phase) => {
        const est = new ClockSkewEstimator();
        let t = 1_700_000_000_000 + phase;
        sample(est, offset, t, rtt);
        for (let i = 0; i < 12; i++) {
          const delay = bisectingProbeDelayMs(est.estimate()!, t + rtt, rtt);
          assert.ok(delay >= 50 && delay < 1050, `delay ${delay}`);
          t += rtt + delay;
          sample(est, offset, t, rtt);
          const e = est.estimate()!;
          assert.ok(e.lowMs <= offset && offset <= e.highMs, `offset ${offset} in [${e.lowMs}, ${e.highMs}]`);
        }
        const e = est.estimate()!;
        assert.ok(e.highMs - e.lowMs <= rtt + 2, `width ${e.highMs - e.lowMs} ms for a ${rtt} ms round trip`);
      },
    ),
    { numRuns: 10_000 },
  );
});

test('a burst of ordinary answers does not push out the well-timed ones; samples past the horizon are forgotten', () => {
  const est = new ClockSkewEstimator({ horizonMs: 60_000, bucketMs: 10_000 });
  const offset = 1234;
  let t = 1_700_000_000_000;
  sample(est, offset, t, 2);
  for (let i = 0; i < 12; i++) {
    t += 2 + bisectingProbeDelayMs(est.estimate()!, t + 2, 2);
    sample(est, offset, t, 2);
  }
  const narrow = est.estimate()!.highMs - est.estimate()!.lowMs;
  assert.ok(narrow <= 4, `narrowed to ${narrow} ms`);
  // 2,000 answers, 20 a second, all in the same phase of the second (the worst case: no news).
  const phase0 = t;
  for (let i = 0; i < 2000; i++) sample(est, offset, phase0 + 1000 + i * 50 - ((i * 50) % 1000), 2);
  // …they span 100 s: past the 60 s horizon the bisected samples are gone, the width is theirs.
  const after = est.estimate()!;
  assert.ok(after.lowMs <= offset && offset <= after.highMs);
  assert.ok(after.samples <= 7, `${after.samples} buckets kept for a 60 s horizon`);
  const mid = new ClockSkewEstimator({ horizonMs: 600_000 });
  let u = 1_700_000_000_000;
  sample(mid, offset, u, 2);
  for (let i = 0; i < 12; i++) {
    u += 2 + bisectingProbeDelayMs(mid.estimate()!, u + 2, 2);
    sample(mid, offset, u, 2);
  }
  for (let i = 0; i < 2000; i++) sample(mid, offset, u + 1000 * (1 + Math.floor(i / 20)), 2);
  const kept = mid.estimate()!;
  assert.ok(
    kept.highMs - kept.lowMs <= 4,
    `inside the horizon the bisected width holds: ${kept.highMs - kept.lowMs} ms`,
  );
});

test('garbage Date headers and inverted times are ignored', () => {
  const est = new ClockSkewEstimator();
  est.observe(10, 20, 'not a date');
  est.observe(30, 20, new Date().toUTCString());
  assert.equal(est.estimate(), null);
});

test('MicroTime has exactly six fractional digits', () => {
  assert.equal(microTime(Date.UTC(2026, 10, 24, 1, 2, 3, 45)), '2026-11-24T01:02:03.045000Z');
});
