import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  bisectingProbeDelayMs,
  ClockSkewEstimator,
  type ClockSkewOptions,
} from '../../../src/kube/clock-skew.ts';
import { microTime } from '../../../src/kube/leader-election.ts';

/** The fake monotonic clock of each estimator made here (ms; equal to "true" local time). */
const monos = new WeakMap<ClockSkewEstimator, { now: number }>();

function make(o: ClockSkewOptions = {}): ClockSkewEstimator {
  const box = { now: 0 };
  const est = new ClockSkewEstimator({ ...o, monotonic: () => box.now });
  monos.set(est, box);
  return est;
}

/**
 * A server whose clock is `offsetMs` ahead of ours answers a request sent at `sent` (monotonic)
 * after `rttMs`; the local wall clock reads `wallStepMs` off the monotonic one.
 */
function sample(est: ClockSkewEstimator, offsetMs: number, sent: number, rttMs: number, wallStepMs = 0) {
  const serverAt = sent + rttMs / 2 + offsetMs; // the instant the server read its clock
  const date = new Date(Math.floor(serverAt / 1000) * 1000).toUTCString(); // Date: 1 s resolution
  monos.get(est)!.now = sent + rttMs;
  return est.observe(sent + wallStepMs, sent + rttMs + wallStepMs, date);
}

/** The server's true time now minus kttl's judgement of it (≥ 0: never early). */
function margin(est: ClockSkewEstimator, offsetMs: number, wallStepMs = 0): number {
  const now = monos.get(est)!.now;
  return now + offsetMs - est.serverNowForExpiry(now + wallStepMs);
}

test('no samples: the local clock is used', () => {
  const est = make();
  assert.equal(est.estimate(), null);
  assert.equal(est.serverNowForExpiry(1234), 1234);
});

test('the true offset always lies inside the estimated interval, and the interval narrows', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 1, maxLength: 40 }),
      (offset, phases) => {
        const est = make();
        let t = 1_700_000_000_000;
        for (const p of phases) {
          t += 1000 + p;
          sample(est, offset, t, 4);
        }
        const e = est.estimate()!;
        assert.ok(e.lowMs <= offset && offset <= e.highMs, `offset ${offset} in [${e.lowMs}, ${e.highMs}]`);
        // Conservative: judged "server now" is never ahead of the real server clock.
        assert.ok(margin(est, offset) >= 0);
      },
    ),
    { numRuns: 2000 },
  );
});

test('samples spread over the second narrow the bound to about one round trip', () => {
  const est = make();
  const offset = -600_000 + 137; // 10 minutes behind, plus a bit
  let t = 1_700_000_000_000;
  for (let i = 0; i < 30; i++) {
    t += 1000 + 37 * i;
    sample(est, offset, t, 4);
  }
  const e = est.estimate()!;
  // The agreed low is the 3rd-best answer's (a quorum), so a little wider than the intersection.
  assert.ok(e.highMs - e.lowMs <= 250, `interval ${e.highMs - e.lowMs} ms`);
  assert.ok(Math.abs(e.offsetMs - offset) <= 50);
});

test('a server clock stepped ahead is followed once most recent answers agree', () => {
  const est = make();
  let t = 1_700_000_000_000;
  for (let i = 0; i < 10; i++) {
    t += 1100;
    sample(est, 0, t, 4);
  }
  for (let i = 0; i < 15; i++) {
    t += 1100;
    sample(est, 300_000, t, 4);
  }
  const e = est.estimate()!;
  assert.ok(e.lowMs <= 300_000 && 300_000 <= e.highMs, `follows the new offset: [${e.lowMs}, ${e.highMs}]`);
});

test('listeners hear each move of the low bound, and only those', () => {
  const est = make();
  const lows: number[] = [];
  est.onLowBoundChange(() => lows.push(est.estimate()!.lowMs));
  let t = 1_700_000_000_000;
  for (let i = 0; i < 30; i++) {
    t += 1000 + 37 * i;
    sample(est, 250, t, 4);
  }
  assert.ok(lows.length >= 2 && lows.length < 30, `${lows.length} moves for 30 samples`);
  // Before agreement the bound may only fall (to the lowest answer); once agreed it only rises.
  const firstRise = lows.findIndex((l, i) => i > 0 && l > lows[i - 1]!);
  for (let i = Math.max(1, firstRise); i < lows.length; i++)
    assert.ok(lows[i]! > lows[i - 1]!, 'a narrowing bound only rises');
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
        const est = make();
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
        // Lateness (how far the agreed low lags the truth) is what expiry pays; it lags the
        // intersection by up to two answers (the quorum): in the worst bit pattern most of the first second (the app keeps probing while it is wide).
        assert.ok(
          offset - e.lowMs < rtt + 1000,
          `lateness ${offset - e.lowMs} ms for a ${rtt} ms round trip`,
        );
      },
    ),
    { numRuns: 10_000 },
  );
});

test('a burst of ordinary answers does not push out the well-timed ones; samples past the horizon are forgotten', () => {
  const est = make({ horizonMs: 60_000, windowMs: 60_000 });
  const offset = 1234;
  let t = 1_700_000_000_000;
  sample(est, offset, t, 2);
  for (let i = 0; i < 12; i++) {
    t += 2 + bisectingProbeDelayMs(est.estimate()!, t + 2, 2);
    sample(est, offset, t, 2);
  }
  const narrow = est.estimate()!.highMs - est.estimate()!.lowMs;
  assert.ok(narrow <= 30, `narrowed to ${narrow} ms`);
  // 2,000 answers, 20 a second, all in the same phase of the second (the worst case: no news).
  const phase0 = t;
  for (let i = 0; i < 2000; i++) sample(est, offset, phase0 + 1000 + i * 50 - ((i * 50) % 1000), 2);
  // …they span 100 s: past the 60 s horizon the bisected samples are gone, the width is theirs.
  const after = est.estimate()!;
  assert.ok(after.lowMs <= offset && offset <= after.highMs);
  assert.ok(after.samples <= 61, `${after.samples} buckets kept for a 60 s horizon`);
  const mid = make({ horizonMs: 600_000 });
  let u = 1_700_000_000_000;
  sample(mid, offset, u, 2);
  for (let i = 0; i < 12; i++) {
    u += 2 + bisectingProbeDelayMs(mid.estimate()!, u + 2, 2);
    sample(mid, offset, u, 2);
  }
  for (let i = 0; i < 2000; i++) sample(mid, offset, u + 1000 * (1 + Math.floor(i / 20)), 2);
  const kept = mid.estimate()!;
  assert.ok(
    kept.highMs - kept.lowMs <= 30,
    `inside the horizon the bisected width holds: ${kept.highMs - kept.lowMs} ms`,
  );
});

test('garbage Date headers and inverted times are ignored', () => {
  const est = make();
  est.observe(10, 20, 'not a date');
  est.observe(30, 20, new Date().toUTCString());
  assert.equal(est.estimate(), null);
});

test('MicroTime has exactly six fractional digits', () => {
  assert.equal(microTime(Date.UTC(2026, 10, 24, 1, 2, 3, 45)), '2026-11-24T01:02:03.045000Z');
});

/** An honest stream: answers at random phases, 0.3–3 s apart, the server `offset` ahead. */
const honestGaps = fc.array(fc.integer({ min: 300, max: 3000 }), { minLength: 4, maxLength: 60 });

test('one outlier answer (any size, any place in the stream) never makes expiry earlier than the truth', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      honestGaps,
      fc.nat(),
      fc.integer({ min: 1000, max: 7_200_000 }),
      (offset, gaps, at, liesBy) => {
        const est = make();
        const k = at % gaps.length;
        let t = 1_700_000_000_000;
        const verdicts: string[] = [];
        for (let i = 0; i < gaps.length; i++) {
          t += gaps[i]!;
          verdicts.push(sample(est, i === k ? offset + liesBy : offset, t, 4));
          // (Before any honest answer the local clock is all there is: an outlier first is judged later.)
          if (i > 0 || k > 0)
            assert.ok(margin(est, offset) >= 0, `early by ${-margin(est, offset)} ms after answer ${i}`);
        }
        // The estimate still contains the truth afterwards.
        const e = est.estimate()!;
        assert.ok(e.lowMs <= offset, `low ${e.lowMs} > ${offset}`);
        // An outlier ahead of an established estimate is reported as rejected.
        if (k >= 3 && liesBy >= 2000) assert.equal(verdicts[k], 'rejected');
      },
    ),
    { numRuns: 3000 },
  );
});

test('the +1 h outlier of the reproduction: the low bound does not move forward', () => {
  const est = make();
  let t = 1_700_000_000_000;
  for (let i = 0; i < 20; i++) {
    t += 1300;
    sample(est, 0, t, 4);
  }
  const before = est.estimate()!.lowMs;
  t += 1300;
  assert.equal(sample(est, 3_600_000, t, 4), 'rejected');
  assert.ok(est.estimate()!.lowMs <= before, 'not forward');
  for (let i = 0; i < 20; i++) {
    t += 1300;
    sample(est, 0, t, 4);
  }
  assert.ok(est.estimate()!.lowMs <= 0 && margin(est, 0) >= 0);
});

test('a step of the local wall clock (monotonic unchanged) changes nothing', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -3_600_000, max: 3_600_000 }),
      honestGaps,
      fc.nat(),
      fc.integer({ min: -7_200_000, max: 7_200_000 }),
      (offset, gaps, at, step) => {
        const plain = make();
        const stepped = make();
        // After the first answer (before it, the local wall clock is all there is to go by).
        const k = 1 + (at % (gaps.length - 1));
        let t = 1_700_000_000_000;
        for (let i = 0; i < gaps.length; i++) {
          t += gaps[i]!;
          const w = i >= k ? step : 0;
          sample(plain, offset, t, 4);
          sample(stepped, offset, t, 4, w);
          // kttl's judgement of the server's time now is the same with or without the step.
          assert.equal(stepped.serverNowForExpiry(t + 4 + w), plain.serverNowForExpiry(t + 4));
        }
      },
    ),
    { numRuns: 1000 },
  );
});

test('a sustained shift ahead (every answer for a minute) is followed only after agreement', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2000, max: 3_600_000 }),
      fc.integer({ min: 500, max: 2000 }),
      (shift, gap) => {
        const est = make();
        let t = 1_700_000_000_000;
        for (let i = 0; i < 60; i++) {
          t += gap;
          sample(est, 0, t, 4);
        }
        const before = est.estimate()!.lowMs;
        let followedAfter = -1;
        for (let i = 0; t < 1_700_000_000_000 + 60 * gap + 60_000; i++) {
          t += gap;
          sample(est, shift, t, 4);
          if (followedAfter < 0 && est.estimate()!.lowMs > before + 1000) followedAfter = i + 1;
        }
        assert.ok(followedAfter >= 3, `followed after ${followedAfter} answers`);
        assert.ok(est.estimate()!.lowMs > shift - 1100, `low ${est.estimate()!.lowMs} follows ${shift}`);
        assert.ok(margin(est, shift) >= 0);
      },
    ),
    { numRuns: 300 },
  );
});

test('a server stepped behind is followed at once (later deletions are the safe direction)', () => {
  const est = make();
  let t = 1_700_000_000_000;
  for (let i = 0; i < 30; i++) {
    t += 1100;
    sample(est, 0, t, 4);
  }
  t += 1100;
  sample(est, -600_000, t, 4);
  assert.ok(est.estimate()!.lowMs <= -600_000, `low ${est.estimate()!.lowMs}`);
  for (let i = 0; i < 10; i++) {
    t += 1100;
    sample(est, -600_000, t, 4);
    assert.ok(margin(est, -600_000) >= 0, 'never early while the old answers still count');
  }
});
