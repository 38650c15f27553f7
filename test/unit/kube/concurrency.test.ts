import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { limitConcurrency, Semaphore } from '../../../src/kube/concurrency.ts';

describe('Semaphore / limitConcurrency', () => {
  test('property: at most n calls in flight; every call runs and returns its own result', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.nat(4), { maxLength: 60, size: 'max' }),
        async (n, durations) => {
          const limit = limitConcurrency(n);
          let inFlight = 0;
          let maxInFlight = 0;
          const results = await Promise.all(
            durations.map((ticks, i) =>
              limit(async () => {
                inFlight++;
                maxInFlight = Math.max(maxInFlight, inFlight);
                for (let t = ticks; t > 0; t--) await tick();
                inFlight--;
                return i;
              }),
            ),
          );
          assert.deepEqual(
            results,
            durations.map((_, i) => i),
          );
          assert.ok(maxInFlight <= n, `${maxInFlight} in flight with a limit of ${n}`);
          // The limit is also reached: the first n start at once when each outlives a tick.
          if (durations.length >= n && durations.slice(0, n).every((d) => d > 0))
            assert.equal(maxInFlight, n);
        },
      ),
      { numRuns: 100 },
    );
  });

  test('fills up to the limit and hands permits out first come, first served', async () => {
    const sem = new Semaphore(2);
    const r1 = await sem.acquire();
    const r2 = await sem.acquire();
    assert.equal(sem.inUse, 2);
    const order: string[] = [];
    const a = sem.acquire().then((r) => {
      order.push('a');
      return r;
    });
    const b = sem.acquire().then((r) => {
      order.push('b');
      return r;
    });
    await tick();
    assert.deepEqual(order, []);
    assert.equal(sem.waiting, 2);
    // The permit goes straight to the first waiter, not back to the pool: a newcomer finds none free.
    r1();
    assert.equal(sem.inUse, 2);
    assert.equal(sem.waiting, 1);
    await tick();
    assert.deepEqual(order, ['a']);
    r2();
    await tick();
    assert.deepEqual(order, ['a', 'b']);
    (await a)();
    (await b)();
    assert.equal(sem.inUse, 0);
    assert.equal(sem.waiting, 0);
  });

  test('releasing twice frees one permit only', async () => {
    const sem = new Semaphore(1);
    const release = await sem.acquire();
    const waiting = sem.acquire();
    release();
    release();
    const r = await waiting;
    assert.equal(sem.inUse, 1);
    const third = sem.acquire();
    await tick();
    assert.equal(sem.waiting, 1, 'the double release did not make room for a second holder');
    r();
    (await third)();
    assert.equal(sem.inUse, 0);
  });

  test('run() releases the permit when the function throws', async () => {
    const sem = new Semaphore(1);
    await assert.rejects(
      sem.run(() => {
        throw new Error('boom');
      }),
      /boom/,
    );
    await assert.rejects(
      sem.run(async () => Promise.reject(new Error('async boom'))),
      /async boom/,
    );
    assert.equal(sem.inUse, 0);
    assert.equal(await sem.run(() => 42), 42);
  });

  test('rejects a limit that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new Semaphore(bad), RangeError);
    assert.equal(new Semaphore(3).limit, 3);
  });
});
