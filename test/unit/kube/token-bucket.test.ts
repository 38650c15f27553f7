import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { FakeClock } from '../../../src/clock.ts';
import { TokenBucket } from '../../../src/kube/token-bucket.ts';

/** kube-controller-manager's --kube-api-qps 20 --kube-api-burst 30. */
function setup(qps = 20, burst = 30) {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ qps, burst, clock });
  return { clock, bucket };
}

/** Starts n take() calls and records, in order of resolution, each caller's index and the time. */
function takeMany(bucket: TokenBucket, clock: FakeClock, n: number) {
  const got: Array<{ i: number; at: number }> = [];
  for (let i = 0; i < n; i++) void bucket.take().then(() => got.push({ i, at: clock.now() }));
  return got;
}

describe('TokenBucket', () => {
  test('a full bucket lets a burst of 30 through at once, then 20 per second', async () => {
    const { clock, bucket } = setup();
    const got = takeMany(bucket, clock, 70);
    await tick();
    assert.equal(got.length, 30, 'the burst goes at once');
    assert.equal(bucket.waiting, 40);
    clock.advance(49);
    await tick();
    assert.equal(got.length, 30, 'no token before 50 ms');
    clock.advance(1);
    await tick();
    assert.equal(got.length, 31);
    for (let s = 2; s <= 40; s++) {
      clock.advance(50);
      await tick();
      assert.equal(got.length, 30 + s, `one token every 50 ms (step ${s})`);
      assert.ok(clock.pendingTimers() <= 1);
    }
    assert.equal(bucket.waiting, 0);
    assert.equal(clock.pendingTimers(), 0);
    // Served in call order.
    assert.deepEqual(
      got.map((g) => g.i),
      Array.from({ length: 70 }, (_, i) => i),
    );
  });

  test('tryTake(): 30 at once, then false until a token accrues', () => {
    const { clock, bucket } = setup();
    for (let i = 0; i < 30; i++) assert.equal(bucket.tryTake(), true, `token ${i}`);
    assert.equal(bucket.tryTake(), false);
    clock.advance(49);
    assert.equal(bucket.tryTake(), false);
    clock.advance(1);
    assert.equal(bucket.tryTake(), true);
    assert.equal(bucket.tryTake(), false);
    clock.advance(1000);
    for (let i = 0; i < 20; i++) assert.equal(bucket.tryTake(), true);
    assert.equal(bucket.tryTake(), false);
  });

  test('a long idle spell refills only up to the burst', () => {
    const { clock, bucket } = setup();
    for (let i = 0; i < 30; i++) bucket.tryTake();
    clock.advance(3600 * 1000);
    assert.equal(bucket.available(), 30);
    let n = 0;
    while (bucket.tryTake()) n++;
    assert.equal(n, 30);
  });

  test('tryTake() does not jump the queue of waiting callers', async () => {
    const { clock, bucket } = setup(10, 1);
    assert.equal(bucket.tryTake(), true);
    const got = takeMany(bucket, clock, 1);
    clock.advance(99);
    assert.equal(bucket.tryTake(), false);
    clock.advance(1);
    await tick();
    assert.equal(got.length, 1);
  });

  test('qps <= 0 is unlimited and uses no timers', async () => {
    for (const qps of [0, -1]) {
      const { clock, bucket } = setup(qps, 0);
      assert.equal(bucket.unlimited, true);
      for (let i = 0; i < 10_000; i++) assert.equal(bucket.tryTake(), true);
      await Promise.all(Array.from({ length: 1000 }, () => bucket.take()));
      assert.equal(clock.pendingTimers(), 0);
    }
  });

  test('rejects a burst below 1 when rate limited', () => {
    const clock = new FakeClock();
    assert.throws(() => new TokenBucket({ qps: 5, burst: 0, clock }), RangeError);
  });

  test('an aborted take() rejects and gives up its place without using a token', async () => {
    const { clock, bucket } = setup(10, 1);
    bucket.tryTake();
    const ac = new AbortController();
    const aborted = bucket.take(ac.signal);
    const got = takeMany(bucket, clock, 1);
    ac.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);
    assert.equal(bucket.waiting, 1);
    clock.advance(100);
    await tick();
    assert.equal(got.length, 1, 'the next caller got the token at 100 ms');
    assert.equal(clock.pendingTimers(), 0);
  });

  test('aborting the only waiter clears the timer; an already aborted signal rejects at once', async () => {
    const { clock, bucket } = setup(10, 1);
    bucket.tryTake();
    const ac = new AbortController();
    const p = bucket.take(ac.signal);
    assert.equal(clock.pendingTimers(), 1);
    ac.abort();
    await assert.rejects(p);
    assert.equal(clock.pendingTimers(), 0);
    await assert.rejects(bucket.take(AbortSignal.abort(new Error('early'))), /early/);
    clock.advance(100);
    assert.equal(bucket.tryTake(), true, 'no token was used by the aborted calls');
    assert.equal(bucket.tryTake(), false);
  });

  test('a tiny rate that needs more than the platform timer maximum still works', async () => {
    const { clock, bucket } = setup(1e-7, 1); // one token every 10^10 ms (~116 days)
    bucket.tryTake();
    const got = takeMany(bucket, clock, 1);
    clock.advance(1e10 - 1);
    await tick();
    assert.equal(got.length, 0);
    // Re-armed timers round up to whole ms, so it may come a few ms late, never early.
    clock.advance(10);
    await tick();
    assert.equal(got.length, 1);
  });

  test('property: never more than burst + qps·t granted by time t; all served, in call order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.tuple(fc.nat(5), fc.nat(300)), { minLength: 1, maxLength: 40, size: 'max' }),
        async (qps, burst, plan) => {
          const { clock, bucket } = setup(qps, burst);
          const start = clock.now();
          const got: number[] = [];
          let next = 0;
          const checkRate = () => {
            const bound = burst + (qps * (clock.now() - start)) / 1000;
            assert.ok(got.length <= bound + 1e-9, `${got.length} granted by ${clock.now() - start} ms`);
          };
          for (const [calls, waitMs] of plan) {
            for (let c = 0; c < calls; c++) {
              const i = next++;
              void bucket.take().then(() => got.push(i));
            }
            await tick();
            checkRate();
            clock.advance(waitMs);
            await tick();
            checkRate();
            assert.ok(clock.pendingTimers() <= 1);
          }
          // Enough time for every waiter.
          clock.advance(Math.ceil((next * 1000) / qps) + 1000);
          await tick();
          assert.deepEqual(
            got,
            Array.from({ length: next }, (_, i) => i),
          );
          assert.equal(clock.pendingTimers(), 0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
