import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { FakeClock } from '../../../src/clock.ts';
import { WorkQueue } from '../../../src/controller/workqueue.ts';

function setup() {
  const clock = new FakeClock();
  const queue = new WorkQueue<string>({ clock });
  return { clock, queue };
}

/** The keys a get() has resolved to so far, without waiting. */
async function settled<T>(p: Promise<T>): Promise<{ done: boolean; value?: T }> {
  let state: { done: boolean; value?: T } = { done: false };
  void p.then((value) => {
    state = { done: true, value };
  });
  await tick();
  return state;
}

/** Takes every ready key (and marks each done), in order. */
async function drain(queue: WorkQueue<string>): Promise<string[]> {
  const out: string[] = [];
  while (queue.len > 0) {
    const key = (await queue.get())!;
    out.push(key);
    queue.done(key);
  }
  return out;
}

describe('WorkQueue', () => {
  test('hands keys out first in, first out', async () => {
    const { queue } = setup();
    for (const k of ['a', 'b', 'c']) queue.add(k);
    assert.equal(queue.len, 3);
    assert.equal(await queue.get(), 'a');
    assert.equal(await queue.get(), 'b');
    assert.equal(await queue.get(), 'c');
    assert.equal(queue.len, 0);
  });

  test('a key added many times before processing is processed once', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    queue.add('a');
    assert.equal(queue.len, 2);
    assert.deepEqual(await drain(queue), ['a', 'b']);
  });

  test('get() waits for a key and resolves when one is added; waiters are served in order', async () => {
    const { queue } = setup();
    const first = queue.get();
    const second = queue.get();
    assert.equal((await settled(first)).done, false);
    queue.add('x');
    queue.add('y');
    assert.equal(await first, 'x');
    assert.equal(await second, 'y');
  });

  test('a key re-added while processing is not handed out again until done()', async () => {
    const { queue } = setup();
    queue.add('a');
    const key = await queue.get();
    assert.equal(key, 'a');
    queue.add('a');
    queue.add('a');
    assert.equal(queue.len, 0, 'dirty, not queued, while a worker holds it');
    const other = queue.get();
    assert.equal((await settled(other)).done, false);
    queue.done('a');
    assert.equal(await other, 'a', 'queued again, once, on done()');
    queue.done('a');
    assert.equal(queue.len, 0);
  });

  test('done() without re-add does not re-queue; a stray done() is harmless', async () => {
    const { queue } = setup();
    queue.add('a');
    queue.done('a'); // not being processed: must not queue a duplicate
    assert.equal(queue.len, 1);
    const key = (await queue.get())!;
    queue.done(key);
    queue.done(key);
    assert.equal(queue.len, 0);
  });

  test('addAfter() makes the key ready only when the delay has passed', async () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 1000);
    assert.equal(queue.len, 0);
    assert.equal(queue.delayedLen, 1);
    clock.advance(999);
    assert.equal(queue.len, 0);
    clock.advance(1);
    assert.equal(queue.len, 1);
    assert.equal(queue.delayedLen, 0);
    assert.equal(await queue.get(), 'a');
  });

  test('addAfter() keeps the earliest pending time of a key', async () => {
    const { clock, queue } = setup();
    queue.addAfter('a', 1000);
    queue.addAfter('a', 100); // earlier: wins
    queue.addAfter('a', 5000); // later: ignored
    clock.advance(100);
    assert.deepEqual(await drain(queue), ['a']);
    clock.advance(10_000);
    assert.equal(queue.len, 0, 'not added again at the later times');
  });

  test('addAfter() with no delay adds at once', () => {
    const { queue } = setup();
    queue.addAfter('a', 0);
    queue.addAfter('b', -5);
    assert.equal(queue.len, 2);
  });

  test('delayed keys become ready in due order, then FIFO', async () => {
    const { clock, queue } = setup();
    queue.addAfter('late', 300);
    queue.addAfter('early', 100);
    queue.add('now');
    clock.advance(1000);
    assert.deepEqual(await drain(queue), ['now', 'early', 'late']);
  });

  test('addRateLimited() backs off per key: 5 ms doubling, capped at 1000 s; forget() resets', async () => {
    const { clock, queue } = setup();
    const expected = [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560];
    for (const [i, delay] of expected.entries()) {
      assert.equal(queue.numRequeues('a'), i);
      queue.addRateLimited('a');
      clock.advance(delay - 1);
      assert.equal(queue.len, 0, `not before ${delay} ms`);
      clock.advance(1);
      assert.deepEqual(await drain(queue), ['a'], `after ${delay} ms`);
    }
    // The other key has its own count.
    assert.equal(queue.numRequeues('b'), 0);
    // 5 ms · 2^18 > 1000 s: capped from there on.
    for (let i = expected.length; i < 40; i++) queue.addRateLimited('a');
    assert.equal(queue.numRequeues('a'), 40);
    clock.advance(1000 * 1000);
    assert.deepEqual(await drain(queue), ['a']);
    queue.addRateLimited('a');
    clock.advance(1000 * 1000 - 1);
    assert.equal(queue.len, 0);
    clock.advance(1);
    assert.deepEqual(await drain(queue), ['a']);
    queue.forget('a');
    assert.equal(queue.numRequeues('a'), 0);
    queue.addRateLimited('a');
    clock.advance(5);
    assert.deepEqual(await drain(queue), ['a']);
  });

  test('retryBackedOffNow() re-adds the keys waiting out a failure back-off, and only those', async () => {
    const { clock, queue } = setup();
    // 'failed' fails 12 times in a row (each retry delivered): its next back-off is 5 ms · 2^11 ≈ 10 s.
    for (let i = 0; i < 11; i++) {
      queue.addRateLimited('failed');
      clock.advance(20_000);
      assert.deepEqual(await drain(queue), ['failed']);
    }
    queue.addRateLimited('failed');
    queue.addAfter('scheduled', 60_000); // a plain delay: not a failure, stays
    queue.addRateLimited('forgotten');
    queue.forget('forgotten'); // processed fine meanwhile: no longer a failing key
    clock.advance(5);
    assert.deepEqual(await drain(queue), ['forgotten']);
    assert.equal(queue.retryBackedOffNow(), 1);
    assert.deepEqual(await drain(queue), ['failed']);
    assert.equal(queue.numRequeues('failed'), 12, 'the failure count stays');
    assert.equal(queue.retryBackedOffNow(), 0, 'nothing left waiting on a back-off');
    clock.advance(60_000);
    assert.deepEqual(await drain(queue), ['scheduled']);
  });

  test('the back-off never overflows for huge failure counts', async () => {
    const { clock, queue } = setup();
    for (let i = 0; i < 2000; i++) queue.addRateLimited('a');
    clock.advance(1000 * 1000);
    assert.deepEqual(await drain(queue), ['a']);
  });

  test('back-off delays are configurable', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue<string>({ clock, baseDelayMs: 100, maxDelayMs: 250 });
    queue.addRateLimited('a');
    queue.addRateLimited('a'); // 200 ms, but the 100 ms one is earlier and kept
    clock.advance(100);
    assert.deepEqual(await drain(queue), ['a']);
    queue.addRateLimited('a'); // 250 (capped from 400)
    clock.advance(249);
    assert.equal(queue.len, 0);
    clock.advance(1);
    assert.equal(queue.len, 1);
  });

  test('shutDown() releases waiting workers, ignores adds and drops delayed keys', async () => {
    const { clock, queue } = setup();
    const waiting = queue.get();
    queue.addAfter('d', 1000);
    queue.shutDown();
    assert.equal(await waiting, undefined);
    assert.equal(queue.shuttingDown, true);
    assert.equal(clock.pendingTimers(), 0);
    queue.add('a');
    queue.addAfter('b', 10);
    assert.equal(queue.len, 0);
    assert.equal(await queue.get(), undefined);
    queue.shutDown(); // idempotent
  });

  test('a worker may still call done() after shutDown()', async () => {
    const { queue } = setup();
    queue.add('a');
    const key = (await queue.get())!;
    queue.add('a');
    queue.shutDown();
    queue.done(key);
    assert.equal(queue.len, 0);
  });

  test('many keys go through without the queue growing', async () => {
    const { queue } = setup();
    const N = 20_000;
    for (let i = 0; i < N; i++) queue.add(`k${i}`);
    for (let i = 0; i < N; i++) {
      const key = await queue.get();
      assert.equal(key, `k${i}`);
      queue.done(key!);
      if (i % 3 === 0) queue.add(`again${i}`);
    }
    assert.equal(queue.len, Math.ceil(N / 3));
  });

  test('property: concurrent workers never hold one key at once, and every add is processed after it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.nat(15), fc.nat(3)), { minLength: 1, maxLength: 300, size: 'max' }),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 50 }),
        async (workers, adds, workTicks) => {
          const queue = new WorkQueue<number>({ clock: new FakeClock() });
          const holding = new Set<number>();
          let step = 0;
          const lastAdd = new Map<number, number>();
          const lastStart = new Map<number, number>();
          const doubleHanded: number[] = [];
          let active = 0;
          let j = 0;

          const worker = async () => {
            for (;;) {
              const key = await queue.get();
              if (key === undefined) return;
              // Recorded, not thrown: a throwing worker would stop and leave the run hanging.
              if (holding.has(key)) doubleHanded.push(key);
              holding.add(key);
              active++;
              lastStart.set(key, ++step);
              for (let t = workTicks[j++ % workTicks.length]!; t > 0; t--) await tick();
              holding.delete(key);
              active--;
              queue.done(key);
            }
          };
          const running = Array.from({ length: workers }, worker);

          for (const [key, pause] of adds) {
            lastAdd.set(key, ++step);
            queue.add(key);
            for (let t = pause; t > 0; t--) await tick();
          }
          while (queue.len > 0 || active > 0) await tick();
          queue.shutDown();
          await Promise.all(running);

          assert.deepEqual(doubleHanded, [], 'keys handed to two workers at once');
          for (const [key, addedAt] of lastAdd) {
            assert.ok((lastStart.get(key) ?? 0) > addedAt, `key ${key} processed after its last add`);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
