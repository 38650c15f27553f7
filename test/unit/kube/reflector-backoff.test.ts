// The reflector's waits between requests (src/kube/reflector.ts, WatchBackoff): empty watches and
// repeated 410s back off like errors do, and a healthy watch resets both.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { backoffDelay, WatchBackoff } from '../../../src/kube/reflector.ts';

/** The reflector's defaults; random 0.5 is a jitter factor of exactly 1. */
function make(random: () => number = () => 0.5) {
  return new WatchBackoff({ initialMs: 500, maxMs: 30_000, random, minHealthyWatchMs: 1000 });
}

describe('WatchBackoff', () => {
  test('watches that end at once with no events back off 0.5, 1, 2, 4 … s, capped at 30 s', () => {
    const b = make();
    const waits = Array.from({ length: 10 }, () => b.watchEnded(0, 3));
    assert.deepEqual(waits, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
  });

  test('a watch that delivered an event or lived 1 s resets the count; a long silent one is no failure', () => {
    const b = make();
    b.watchEnded(0, 0);
    b.watchEnded(0, 999);
    assert.equal(b.failures, 2);
    assert.equal(b.watchEnded(1, 5), 0, 'one event: healthy');
    assert.equal(b.failures, 0);
    assert.equal(b.watchEnded(0, 0), 500, 'the back-off starts over');
    assert.equal(b.watchEnded(0, 1000), 0, 'a silent watch that lived 1 s (a server timeout) is healthy');
    assert.equal(b.watchEnded(0, 0), 500);
  });

  test('errors and empty watches share one count of failures in a row', () => {
    const b = make();
    assert.equal(b.error(), 500);
    assert.equal(b.watchEnded(0, 0), 1000);
    assert.equal(b.error(), 2000);
  });

  test('the first 410 relists at once, the next ones in a row back off, until a healthy watch', () => {
    const b = make();
    const waits = Array.from({ length: 8 }, () => b.gone());
    assert.deepEqual(waits, [0, 500, 1000, 2000, 4000, 8000, 16_000, 30_000]);
    b.watchEnded(0, 60_000);
    assert.equal(b.gone(), 0, 'reset after a watch that lived');
    assert.equal(b.gone(), 500);
  });

  test('jitter stays within [0.5, 1.5] × the base, the base capped at 30 s', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, r) => {
          const d = backoffDelay(n, { initialMs: 500, maxMs: 30_000, random: () => r });
          const base = Math.min(30_000, 500 * 2 ** (n - 1));
          return d >= base * 0.5 && d <= base * 1.5;
        },
      ),
    );
  });

  test('whatever the jitter, a stream of empty watches makes at most 6 watch requests in 10 s', () => {
    // The bound the integration test (test/integration/watch-faults.test.ts) asserts per reflector.
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
          minLength: 20,
          maxLength: 20,
        }),
        (rs) => {
          let i = 0;
          const b = make(() => rs[i++ % rs.length]!);
          let t = 0;
          let requests = 0;
          while (t < 10_000) {
            requests++; // a watch starts at t and ends at once
            t += b.watchEnded(0, 0);
          }
          return requests <= 6;
        },
      ),
    );
  });
});
