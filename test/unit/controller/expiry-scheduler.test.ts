import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type Clock, FakeClock, MAX_TIMER_DELAY_MS, type TimerHandle } from '../../../src/clock.ts';
import { ExpiryScheduler } from '../../../src/controller/expiry-scheduler.ts';

const T0 = Date.UTC(2026, 0, 1);
const DAY = 24 * 3600 * 1000;

function setup<K = string>(clock = new FakeClock(T0)) {
  const delivered: Array<{ key: K; at: number }> = [];
  const scheduler = new ExpiryScheduler<K>({
    clock,
    onDue: (key) => delivered.push({ key, at: clock.now() }),
  });
  return { clock, scheduler, delivered, keys: () => delivered.map((d) => d.key) };
}

/** A clock whose longer timers fire `earlyMs` before they were asked to, like a jittery platform. */
class EarlyClock implements Clock {
  readonly inner: FakeClock;
  readonly #earlyMs: number;
  constructor(inner: FakeClock, earlyMs: number) {
    this.inner = inner;
    this.#earlyMs = earlyMs;
  }
  now(): number {
    return this.inner.now();
  }
  setTimer(fn: () => void, delayMs: number): TimerHandle {
    return this.inner.setTimer(fn, delayMs > this.#earlyMs ? delayMs - this.#earlyMs : delayMs);
  }
  clearTimer(handle: TimerHandle): void {
    this.inner.clearTimer(handle);
  }
}

describe('ExpiryScheduler', () => {
  test('delivers keys in due-time order, each at its time', () => {
    const { clock, scheduler, delivered } = setup();
    scheduler.schedule('c', T0 + 300);
    scheduler.schedule('a', T0 + 100);
    scheduler.schedule('b', T0 + 200);
    assert.equal(scheduler.size, 3);
    assert.equal(scheduler.nextDueMs(), T0 + 100);
    clock.advance(99);
    assert.deepEqual(delivered, []);
    clock.advance(1000);
    assert.deepEqual(delivered, [
      { key: 'a', at: T0 + 100 },
      { key: 'b', at: T0 + 200 },
      { key: 'c', at: T0 + 300 },
    ]);
    assert.equal(scheduler.size, 0);
    assert.equal(scheduler.nextDueMs(), undefined);
    assert.equal(clock.pendingTimers(), 0);
  });

  test('keys due at the same time come in the order they were scheduled', () => {
    const { clock, scheduler, keys } = setup();
    for (const k of ['x', 'y', 'z', 'w']) scheduler.schedule(k, T0 + 50);
    clock.advance(50);
    assert.deepEqual(keys(), ['x', 'y', 'z', 'w']);
  });

  test('re-scheduling later replaces the earlier time', () => {
    const { clock, scheduler, delivered } = setup();
    scheduler.schedule('a', T0 + 100);
    scheduler.schedule('a', T0 + 500);
    assert.equal(scheduler.size, 1);
    assert.equal(scheduler.dueAtMs('a'), T0 + 500);
    clock.advance(499);
    assert.deepEqual(delivered, []);
    assert.ok(clock.pendingTimers() <= 1);
    clock.advance(10_000);
    assert.deepEqual(delivered, [{ key: 'a', at: T0 + 500 }]);
  });

  test('re-scheduling earlier replaces the later time', () => {
    const { clock, scheduler, delivered } = setup();
    scheduler.schedule('a', T0 + 500);
    scheduler.schedule('a', T0 + 100);
    assert.equal(scheduler.nextDueMs(), T0 + 100);
    clock.advance(10_000);
    assert.deepEqual(delivered, [{ key: 'a', at: T0 + 100 }]);
  });

  test('a key re-scheduled after delivery is delivered again, once per schedule', () => {
    const { clock, scheduler, keys } = setup();
    scheduler.schedule('a', T0 + 10);
    clock.advance(10);
    scheduler.schedule('a', T0 + 20);
    clock.advance(100);
    assert.deepEqual(keys(), ['a', 'a']);
  });

  test('cancel forgets the key', () => {
    const { clock, scheduler, keys } = setup();
    scheduler.schedule('a', T0 + 100);
    scheduler.schedule('b', T0 + 200);
    assert.equal(scheduler.cancel('a'), true);
    assert.equal(scheduler.cancel('a'), false);
    assert.equal(scheduler.has('a'), false);
    assert.equal(scheduler.has('b'), true);
    assert.equal(scheduler.nextDueMs(), T0 + 200);
    clock.advance(1000);
    assert.deepEqual(keys(), ['b']);
  });

  test('cancelling the last key clears the timer', () => {
    const { clock, scheduler } = setup();
    scheduler.schedule('a', T0 + 100);
    assert.equal(clock.pendingTimers(), 1);
    scheduler.cancel('a');
    assert.equal(clock.pendingTimers(), 0);
  });

  test('a time already past is delivered on the next tick, not synchronously', () => {
    const { clock, scheduler, keys } = setup();
    scheduler.schedule('late', T0 - 5000);
    assert.deepEqual(keys(), []);
    clock.advance(0);
    assert.deepEqual(keys(), ['late']);
  });

  test('a timer that fires early delivers nothing early and re-arms', () => {
    const inner = new FakeClock(T0);
    const clock = new EarlyClock(inner, 5);
    const delivered: number[] = [];
    const scheduler = new ExpiryScheduler({ clock, onDue: () => delivered.push(clock.now()) });
    scheduler.schedule('a', T0 + 100);
    inner.advance(95); // the timer fires here, 5 ms early
    assert.deepEqual(delivered, []);
    assert.equal(inner.pendingTimers(), 1);
    inner.advance(4);
    assert.deepEqual(delivered, []);
    inner.advance(1);
    assert.deepEqual(delivered, [T0 + 100]);
  });

  test('rearm() after the clock moves against the timer: delivered at the new time, not the old', () => {
    // A clock reading another machine's time (local + offset), like the controller's server clock.
    const inner = new FakeClock(T0);
    let offsetMs = -900;
    const serverClock: Clock = {
      now: () => inner.now() + offsetMs,
      setTimer: (fn, d) => inner.setTimer(fn, d),
      clearTimer: (h) => inner.clearTimer(h),
    };
    const delivered: number[] = [];
    const scheduler = new ExpiryScheduler({ clock: serverClock, onDue: () => delivered.push(inner.now()) });
    scheduler.schedule('a', T0 + 1000); // armed for local T0 + 1900
    scheduler.schedule('b', T0 + 3000);
    offsetMs = -50; // the estimate narrowed: 'a' is due at local T0 + 1050
    scheduler.rearm();
    inner.advance(1049);
    assert.deepEqual(delivered, []);
    inner.advance(1);
    assert.deepEqual(delivered, [T0 + 1050]);
    offsetMs = -400; // the other way: the old timer fires early, delivers nothing, re-arms
    inner.advance(2000);
    assert.deepEqual(delivered, [T0 + 1050]);
    inner.advance(350);
    assert.deepEqual(delivered, [T0 + 1050, T0 + 3400]);
    assert.equal(inner.pendingTimers(), 0);
    scheduler.rearm(); // nothing scheduled: no timer
    assert.equal(inner.pendingTimers(), 0);
  });

  test('onDue throwing is reported and delivery goes on', () => {
    const clock = new FakeClock(T0);
    const delivered: string[] = [];
    const errors: Array<[unknown, string]> = [];
    const scheduler = new ExpiryScheduler<string>({
      clock,
      onDue: (key) => {
        delivered.push(key);
        if (key === 'bad') throw new Error('boom');
      },
      onError: (err, key) => errors.push([err, key]),
    });
    scheduler.schedule('bad', T0 + 10);
    scheduler.schedule('good', T0 + 10);
    scheduler.schedule('later', T0 + 20);
    clock.advance(100);
    assert.deepEqual(delivered, ['bad', 'good', 'later']);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.[1], 'bad');
    assert.match(String(errors[0]?.[0]), /boom/);
    scheduler.schedule('after', T0 + 200);
    clock.advance(200);
    assert.deepEqual(delivered, ['bad', 'good', 'later', 'after']);
  });

  test('onDue may re-schedule keys; one due now waits for the next tick', () => {
    const clock = new FakeClock(T0);
    const delivered: Array<[string, number]> = [];
    let again = true;
    const scheduler = new ExpiryScheduler<string>({
      clock,
      onDue: (key) => {
        delivered.push([key, clock.now()]);
        if (key === 'a' && again) {
          again = false;
          assert.equal(scheduler.has('a'), false);
          scheduler.schedule('a', clock.now()); // due at once, but not within this pass
          scheduler.schedule('b', clock.now() + 50);
        }
      },
    });
    scheduler.schedule('a', T0 + 10);
    scheduler.schedule('c', T0 + 10);
    clock.advance(1000);
    assert.deepEqual(delivered, [
      ['a', T0 + 10],
      ['c', T0 + 10],
      ['a', T0 + 10],
      ['b', T0 + 60],
    ]);
  });

  test('rejects a due time that is not a finite number', () => {
    const { scheduler } = setup();
    assert.throws(() => scheduler.schedule('a', Number.NaN), RangeError);
    assert.throws(() => scheduler.schedule('a', Number.POSITIVE_INFINITY), RangeError);
    assert.equal(scheduler.size, 0);
  });

  test('a 68-year delay re-arms past the platform maximum and fires only at its time', () => {
    const { clock, scheduler, delivered } = setup();
    const ttlMs = 2_147_483_647 * 1000; // max ttlSecondsAfterFinished
    scheduler.schedule('job', T0 + ttlMs);
    assert.equal(clock.pendingTimers(), 1);
    clock.advance(MAX_TIMER_DELAY_MS); // ~24.8 days: the capped timer fires, nothing is due
    assert.deepEqual(delivered, []);
    assert.equal(clock.pendingTimers(), 1);
    clock.advance(30 * DAY);
    assert.deepEqual(delivered, []);
    clock.advance(ttlMs - MAX_TIMER_DELAY_MS - 30 * DAY - 1);
    assert.deepEqual(delivered, []);
    assert.equal(scheduler.has('job'), true);
    clock.advance(1);
    assert.deepEqual(delivered, [{ key: 'job', at: T0 + ttlMs }]);
    assert.equal(clock.pendingTimers(), 0);
  });

  test('100,000 keys in random order are delivered in order with at most one timer', () => {
    const clock = new FakeClock(T0);
    let maxTimers = 0;
    let count = 0;
    let lastAt = Number.NEGATIVE_INFINITY;
    const seen = new Set<number>();
    const due = new Map<number, number>();
    const scheduler = new ExpiryScheduler<number>({
      clock,
      onDue: (key) => {
        maxTimers = Math.max(maxTimers, clock.pendingTimers());
        assert.equal(clock.now(), due.get(key), `key ${key} delivered at its time`);
        assert.ok(clock.now() >= lastAt, 'non-decreasing due times');
        assert.ok(!seen.has(key), `key ${key} delivered once`);
        seen.add(key);
        lastAt = clock.now();
        count++;
      },
    });
    const rnd = mulberry32(42);
    const N = 100_000;
    // Spread over 60 days, so some delays exceed the platform timer maximum too.
    for (let key = 0; key < N; key++) {
      const at = T0 + 1 + Math.floor(rnd() * 60 * DAY);
      due.set(key, at);
      scheduler.schedule(key, at);
      maxTimers = Math.max(maxTimers, clock.pendingTimers());
    }
    // Re-schedule a tenth (both directions) and cancel another tenth: exercises lazy deletion.
    for (let key = 0; key < N / 10; key++) {
      const at = T0 + 1 + Math.floor(rnd() * 60 * DAY);
      due.set(key, at);
      scheduler.schedule(key, at);
    }
    for (let key = N / 10; key < N / 5; key++) {
      scheduler.cancel(key);
      due.delete(key);
    }
    assert.equal(scheduler.size, N - N / 10);
    const start = performance.now();
    clock.advance(61 * DAY);
    const elapsed = performance.now() - start;
    assert.equal(count, N - N / 10);
    assert.equal(maxTimers <= 1, true, `max pending timers ${maxTimers}`);
    assert.equal(clock.pendingTimers(), 0);
    assert.ok(elapsed < 10_000, `delivery took ${elapsed} ms`);
  });

  test('stop() clears the timer and every key; later schedules are ignored', () => {
    const { clock, scheduler, delivered } = setup();
    scheduler.schedule('a', T0 + 100);
    scheduler.schedule('b', T0 + 200);
    scheduler.stop();
    assert.equal(clock.pendingTimers(), 0);
    assert.equal(scheduler.size, 0);
    assert.equal(scheduler.stopped, true);
    scheduler.schedule('c', T0 + 300);
    assert.equal(clock.pendingTimers(), 0);
    clock.advance(1000);
    assert.deepEqual(delivered, []);
  });

  test('stop() from inside onDue ends the pass', () => {
    const clock = new FakeClock(T0);
    const delivered: string[] = [];
    const scheduler: ExpiryScheduler<string> = new ExpiryScheduler<string>({
      clock,
      onDue: (key) => {
        delivered.push(key);
        scheduler.stop();
      },
    });
    scheduler.schedule('a', T0 + 1);
    scheduler.schedule('b', T0 + 1);
    clock.advance(10);
    assert.deepEqual(delivered, ['a']);
    assert.equal(clock.pendingTimers(), 0);
  });

  for (const [name, advanceWeight] of [
    ['random schedule / cancel / advance', 100],
    // Rare advances let stale entries pile up past the compaction threshold.
    ['long runs of re-scheduling between advances', 1],
  ] as const) {
    test(`property: matches a simple model under ${name}`, () => {
      type Op =
        | { op: 'schedule'; key: number; offset: number }
        | { op: 'cancel'; key: number }
        | { op: 'advance'; ms: number };
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        {
          weight: 300,
          arbitrary: fc.record({
            op: fc.constant('schedule' as const),
            key: fc.nat(40),
            offset: fc.integer({ min: -50, max: 500 }),
          }),
        },
        { weight: 100, arbitrary: fc.record({ op: fc.constant('cancel' as const), key: fc.nat(40) }) },
        {
          weight: advanceWeight,
          arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.nat(200) }),
        },
      );
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 4000, size: 'max' }), (ops) => {
          const { clock, scheduler, delivered } = setup<number>();
          // The model: key -> [due time, schedule sequence].
          const model = new Map<number, [number, number]>();
          const expected: Array<{ key: number; at: number }> = [];
          let seq = 0;
          const runModel = (target: number) => {
            const due = [...model]
              .filter(([, [at]]) => at <= target)
              .sort((x, y) => x[1][0] - y[1][0] || x[1][1] - y[1][1]);
            let now = clock.now();
            for (const [key, [at]] of due) {
              now = Math.max(now, at);
              expected.push({ key, at: now });
              model.delete(key);
            }
          };
          for (const o of [...ops, { op: 'advance', ms: 1000 } as const]) {
            if (o.op === 'schedule') {
              const at = clock.now() + o.offset;
              scheduler.schedule(o.key, at);
              model.set(o.key, [at, ++seq]);
            } else if (o.op === 'cancel') {
              assert.equal(scheduler.cancel(o.key), model.delete(o.key));
            } else {
              runModel(clock.now() + o.ms);
              clock.advance(o.ms);
            }
            assert.equal(scheduler.size, model.size);
            assert.ok(clock.pendingTimers() <= 1);
            const next = Math.min(...[...model.values()].map(([at]) => at));
            assert.equal(scheduler.nextDueMs(), model.size ? next : undefined);
          }
          assert.deepEqual(delivered, expected);
        }),
        { numRuns: 40 },
      );
    });
  }
});

/** Small seeded PRNG, so the large test is reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
