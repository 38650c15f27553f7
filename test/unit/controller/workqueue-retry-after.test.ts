// The work queue honours a server's Retry-After (addRateLimited's minDelayMs) against every other
// way a key comes back: add(), addAfter(), a re-add while processing, retryBackedOffNow().
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../../src/clock.ts';
import { WorkQueue } from '../../../src/controller/workqueue.ts';

async function drain(queue: WorkQueue<string>): Promise<string[]> {
  const out: string[] = [];
  while (queue.len > 0) {
    const key = (await queue.get())!;
    out.push(key);
    queue.done(key);
  }
  return out;
}

describe('WorkQueue and Retry-After', () => {
  test('minDelayMs is a floor over the back-off and its cap', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue<string>({ clock });
    queue.addRateLimited('a', 10_000, 2000);
    clock.advance(1999);
    assert.equal(queue.len, 0);
    clock.advance(1);
    assert.deepEqual(await drain(queue), ['a']);
    // A long back-off capped by maxDelayMs still waits for the larger Retry-After.
    for (let i = 0; i < 30; i++) queue.addRateLimited('b', 10_000);
    clock.advance(10_000);
    await drain(queue);
    queue.addRateLimited('b', 10_000, 30_000);
    clock.advance(29_999);
    assert.equal(queue.len, 0);
    clock.advance(1);
    assert.deepEqual(await drain(queue), ['b']);
  });

  test('add(), addAfter(0), a re-add while processing and retryBackedOffNow() do not hand the key out before Retry-After', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue<string>({ clock });
    queue.add('a');
    const key = (await queue.get())!;
    queue.add('a'); // a watch event while it is being processed
    queue.addRateLimited('a', 10_000, 2000); // the DELETE was answered 429, Retry-After: 2
    queue.done(key);
    assert.equal(queue.len, 0, 'not re-queued by done()');
    queue.add('a');
    queue.addAfter('a', 0);
    queue.addAfter('a', 500);
    assert.equal(queue.retryBackedOffNow(), 1);
    assert.equal(queue.len, 0, 'still held');
    clock.advance(1999);
    assert.equal(queue.len, 0);
    clock.advance(1);
    assert.deepEqual(await drain(queue), ['a']);
    queue.forget('a');
    queue.add('a');
    assert.deepEqual(await drain(queue), ['a'], 'forget() ends the hold');
  });

  test('property: a key is never handed out before the latest Retry-After it was given', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('add' as const) }),
            fc.record({ op: fc.constant('after' as const), ms: fc.nat(3000) }),
            fc.record({ op: fc.constant('limited' as const), ms: fc.nat(5000) }),
            fc.record({ op: fc.constant('retryNow' as const) }),
            fc.record({ op: fc.constant('advance' as const), ms: fc.nat(2000) }),
            fc.record({ op: fc.constant('take' as const) }),
          ),
          { maxLength: 60 },
        ),
        async (ops) => {
          const clock = new FakeClock();
          const queue = new WorkQueue<string>({ clock });
          let notBefore = 0;
          let held: string | undefined;
          for (const o of ops) {
            if (o.op === 'add') queue.add('k');
            else if (o.op === 'after') queue.addAfter('k', o.ms);
            // A Retry-After arrives as the answer to the request of a key being processed.
            else if (o.op === 'limited') {
              if (held === undefined) continue;
              queue.addRateLimited('k', 10_000, o.ms);
              if (o.ms > 0) notBefore = Math.max(notBefore, clock.now() + o.ms);
            } else if (o.op === 'retryNow') queue.retryBackedOffNow();
            else if (o.op === 'advance') clock.advance(o.ms);
            else if (held !== undefined) {
              queue.done(held);
              held = undefined;
            } else if (queue.len > 0) {
              held = (await queue.get())!;
              assert.ok(
                clock.now() >= notBefore,
                `handed out at ${clock.now()}, Retry-After until ${notBefore}`,
              );
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
