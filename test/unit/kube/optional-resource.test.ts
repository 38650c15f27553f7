// The optional-resource probe (src/kube/optional-resource.ts) on a fake clock: when "not served"
// counts as absent (the policy CRDs: 3 answers over at least 15 s, docs/decisions.md), and the
// loop's cadence (interval, back-off after errors, 2 s while uncertain, wake, stop).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as flush } from 'node:timers/promises';
import fc from 'fast-check';
import { FakeClock } from '../../../src/clock.ts';
import {
  type AbsenceRule,
  nextProbeDelayMs,
  OptionalResource,
  type Presence,
  ProbeLoop,
  type ProbeRound,
} from '../../../src/kube/optional-resource.ts';

const CRD_GONE: AbsenceRule = { answers: 3, overMs: 15_000 };

type Answer = 'served' | 'not-served' | 'error';

function resource(clock: FakeClock, answers: Answer[], absence?: AbsenceRule) {
  let i = 0;
  return new OptionalResource<string>({
    clock,
    ...(absence ? { absence } : {}),
    look: async () => {
      const a = answers[i++];
      if (a === 'served') return 'v1';
      if (a === 'not-served') return null;
      throw new Error('connection refused');
    },
  });
}

describe('OptionalResource', () => {
  test('a 404 counts as gone only after 3 answers in a row over at least 15 s; an error restarts the count', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            answer: fc.constantFrom<Answer>('served', 'not-served', 'not-served', 'error'),
            gapMs: fc.integer({ min: 0, max: 12_000 }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        async (steps) => {
          const clock = new FakeClock();
          const r = resource(
            clock,
            steps.map((s) => s.answer),
            CRD_GONE,
          );
          // The model: presence, and the run of "not served" answers (count, first time).
          let presence: Presence = 'unknown';
          let run = 0;
          let since = 0;
          for (const s of steps) {
            clock.advance(s.gapMs);
            const was: Presence = presence;
            const got = await r.look();
            assert.equal(got.was, was);
            if (s.answer === 'served') {
              presence = 'present';
              run = 0;
              assert.equal(got.state, 'present');
              assert.equal(r.uncertain, null);
            } else if (s.answer === 'error') {
              run = 0;
              assert.equal(got.state, 'error');
              if (was === 'present')
                assert.match(r.uncertain ?? '', /^cannot be read \(connection refused\)$/);
            } else {
              if (run === 0) since = clock.now();
              run++;
              const confirmed: boolean = was === 'absent' || (run >= 3 && clock.now() - since >= 15_000);
              if (confirmed) presence = 'absent';
              assert.equal(got.state, confirmed ? 'absent' : 'unconfirmed');
              if (confirmed) assert.equal(r.uncertain, null);
              else
                assert.match(
                  r.uncertain ?? '',
                  /^answer 404 \(\d+ times? since .*\); not yet confirmed gone$/,
                );
            }
            assert.equal(r.presence, presence);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('ten 404s within 14 s are not proof; the next one after 15 s is', async () => {
    const clock = new FakeClock();
    const r = resource(clock, Array(12).fill('not-served'), CRD_GONE);
    for (let i = 0; i < 10; i++) {
      assert.equal((await r.look()).state, 'unconfirmed');
      clock.advance(1_400);
    }
    assert.equal(r.presence, 'unknown');
    clock.advance(1_000);
    assert.deepEqual(await r.look(), { state: 'absent', was: 'unknown' });
    assert.deepEqual(await r.look(), { state: 'absent', was: 'absent' }, 'then at once: no news');
  });

  test('by default the first "not served" counts (custom kinds: nothing is dropped)', async () => {
    const clock = new FakeClock();
    const r = resource(clock, ['not-served', 'not-served', 'served']);
    assert.deepEqual(await r.look(), { state: 'absent', was: 'unknown' });
    assert.deepEqual(await r.look(), { state: 'absent', was: 'absent' });
    assert.deepEqual(await r.look(), { state: 'present', value: 'v1', was: 'absent' });
  });
});

describe('ProbeLoop', () => {
  test('the delay: the interval when well; 1, 2, 4 … s after errors, up to the interval; at most 2 s while uncertain', () => {
    assert.equal(nextProbeDelayMs(30_000, 0, false), 30_000);
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 20].map((n) => nextProbeDelayMs(30_000, n, false)),
      [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000],
    );
    assert.equal(nextProbeDelayMs(30_000, 0, true), 2000);
    assert.equal(nextProbeDelayMs(30_000, 1, true), 1000);
    assert.equal(nextProbeDelayMs(500, 3, false), 500, 'never later than the interval');
  });

  /** A loop whose rounds answer from `plan` (then: all well) and record when they ran. */
  function loop(clock: FakeClock, plan: ProbeRound[], intervalMs = 30_000) {
    const ran: number[] = [];
    const start = clock.now();
    const errors: unknown[] = [];
    const l = new ProbeLoop({
      clock,
      intervalMs,
      round: async () => {
        ran.push(clock.now() - start);
        const r = plan.shift() ?? { failed: false, uncertain: false };
        if ('throw' in r) throw new Error('a bug');
        return r;
      },
      onError: (err) => errors.push(err),
    });
    return { l, ran, errors };
  }

  async function advance(clock: FakeClock, ms: number, step = 500) {
    for (let t = 0; t < ms; t += step) {
      await flush();
      clock.advance(Math.min(step, ms - t));
    }
    await flush();
  }

  test('rounds at start, then every interval; sooner after failures and while uncertain', async () => {
    const clock = new FakeClock();
    const { l, ran } = loop(clock, [
      { failed: true, uncertain: false },
      { failed: true, uncertain: false },
      { failed: false, uncertain: true },
      { failed: false, uncertain: false },
    ]);
    l.start();
    await advance(clock, 70_000);
    assert.deepEqual(ran, [0, 1000, 3000, 5000, 35_000, 65_000]);
    await l.stop();
  });

  test('a round that throws is reported and the loop goes on, with back-off', async () => {
    const clock = new FakeClock();
    const { l, ran, errors } = loop(clock, [{ throw: true } as unknown as ProbeRound]);
    l.start();
    await advance(clock, 31_000);
    assert.deepEqual(ran, [0, 1000, 31_000]);
    assert.equal(errors.length, 1);
    await l.stop();
  });

  test('wake: a round now, or right after the one under way; resolves when it is done', async () => {
    const clock = new FakeClock();
    let release: (() => void) | undefined;
    const ran: number[] = [];
    const l = new ProbeLoop({
      clock,
      intervalMs: 30_000,
      round: async () => {
        ran.push(clock.now());
        if (ran.length === 2) await new Promise<void>((r) => (release = r));
        return { failed: false, uncertain: false };
      },
      onError: () => {},
    });
    assert.equal(
      await Promise.race([l.wake().then(() => 'resolved'), flush().then(() => 'pending')]),
      'resolved',
      'before start: nothing to wait for',
    );
    l.start();
    await advance(clock, 10_000);
    assert.equal(ran.length, 1);
    let woke = false;
    const w = l.wake().then(() => (woke = true));
    await flush();
    assert.equal(ran.length, 2, 'the sleep was cut short');
    const w2 = l.wake(); // during round 2: round 3 follows at once
    release?.();
    await w;
    assert.ok(woke);
    await w2;
    assert.equal(ran.length, 3);
    assert.equal(ran[2], ran[1], 'no sleep between');
    await l.stop();
  });

  test('stop aborts the round under way and resolves when it has returned; no round after', async () => {
    const clock = new FakeClock();
    let aborted = false;
    let rounds = 0;
    const l = new ProbeLoop({
      clock,
      intervalMs: 1000,
      round: (signal) => {
        rounds++;
        return new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve({ failed: true, uncertain: false });
          }),
        );
      },
      onError: () => {},
    });
    l.start();
    await flush();
    await l.stop();
    assert.ok(aborted);
    await advance(clock, 5000);
    assert.equal(rounds, 1);
    assert.equal(clock.pendingTimers(), 0);
  });
});
