import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type BrakeTrip,
  DeletionBrake,
  GLOBAL_BRAKE,
  type PolicyBrake,
} from '../../../src/controller/brake.ts';
import { type DeletionLimit, noticeAtMs, parseDeletionLimit } from '../../../src/rules/safety.ts';

function limit(text: string): DeletionLimit {
  const r = parseDeletionLimit(text);
  assert.ok(r.ok, text);
  return r.value;
}

function setup(o: { global?: string; policies?: Record<string, PolicyBrake> } = {}) {
  let now = 1_000_000;
  const trips: BrakeTrip[] = [];
  const released: Array<{ brake: string; keys: string[]; why: string }> = [];
  const paused = new Map<string, number>();
  const policies = o.policies ?? {};
  const brake = new DeletionBrake({
    clock: { now: () => now },
    ...(o.global ? { global: limit(o.global) } : {}),
    policy: (ref) => policies[ref],
    onTrip: (t) => trips.push(t),
    onRelease: (b, keys, why) => released.push({ brake: b, keys, why }),
    onPaused: (b, n) => paused.set(b, n),
  });
  return { brake, trips, released, paused, policies, advance: (ms: number) => (now += ms) };
}

describe('parseDeletionLimit', () => {
  test('N/D', () => {
    assert.deepEqual(parseDeletionLimit('500/10m'), {
      ok: true,
      value: { limit: 500, windowMs: 600_000, text: '500/10m' },
    });
    for (const bad of ['500', '0/1m', '-1/1m', '5/0s', '5/abc', 'x/1m', '1.5/1m', '5/10'])
      assert.equal(parseDeletionLimit(bad).ok, false, bad);
  });
});

describe('noticeAtMs', () => {
  test('only for TTLs longer than the notice', () => {
    assert.equal(noticeAtMs(100_000, 60, 30), 70_000);
    assert.equal(noticeAtMs(100_000, 30, 30), undefined);
    assert.equal(noticeAtMs(100_000, 10, 30), undefined);
    assert.equal(noticeAtMs(100_000, 60, undefined), undefined);
    assert.equal(noticeAtMs(100_000, 60, 0), undefined);
  });
});

describe('DeletionBrake', () => {
  test('a burst: exactly the limit goes, the rest pause, one trip; resume lets the waiting go', () => {
    const { brake, trips, released, paused } = setup({ global: '5/10m' });
    const admitted = Array.from({ length: 20 }, (_, i) => brake.admit(`u${i}`, `k${i}`)).filter(Boolean);
    assert.equal(admitted.length, 5);
    assert.equal(trips.length, 1);
    assert.equal(trips[0]!.deleted, 5);
    assert.equal(paused.get(GLOBAL_BRAKE), 15);
    // Nothing goes by itself, not even after the window.
    assert.equal(brake.admit('u19', 'k19'), false);
    brake.setGlobalToken(undefined, true); // the baseline read
    brake.setGlobalToken('2026-12-02T10:00:00Z');
    assert.equal(released.length, 1);
    assert.equal(released[0]!.keys.length, 15);
    assert.equal(paused.get(GLOBAL_BRAKE), 0);
    // The waiting are approved (not counted); new ones count in a fresh window.
    for (let i = 5; i < 20; i++) assert.equal(brake.admit(`u${i}`, `k${i}`), true);
    const fresh = Array.from({ length: 8 }, (_, i) => brake.admit(`n${i}`, `n${i}`)).filter(Boolean);
    assert.equal(fresh.length, 5);
    assert.equal(trips.length, 2);
  });

  test('the same object tried again (a 409) is counted once', () => {
    const { brake } = setup({ global: '2/1m' });
    assert.equal(brake.admit('a', 'a'), true);
    assert.equal(brake.admit('a', 'a'), true);
    assert.equal(brake.admit('b', 'b'), true);
    assert.equal(brake.admit('c', 'c'), false);
  });

  test('a policy brake holds only its own objects; raising maxDeletions lets go', () => {
    const policies: Record<string, PolicyBrake> = { 'TTLPolicy/a/p': { limit: limit('3/1h') } };
    const { brake, released, trips } = setup({ policies });
    const got = Array.from({ length: 6 }, (_, i) => brake.admit(`p${i}`, `p${i}`, 'TTLPolicy/a/p'));
    assert.deepEqual(got, [true, true, true, false, false, false]);
    assert.equal(trips[0]!.brake, 'TTLPolicy/a/p');
    // Objects of another policy, or decided by their own annotation, pass.
    assert.equal(brake.admit('x', 'x', 'TTLPolicy/a/other'), true);
    assert.equal(brake.admit('y', 'y'), true);
    policies['TTLPolicy/a/p'] = { limit: limit('5/1h') };
    brake.recheck();
    assert.equal(released[0]!.why, 'limit raised');
    assert.deepEqual(released[0]!.keys, ['p3', 'p4', 'p5']);
    assert.deepEqual(
      [
        brake.admit('p3', 'p3', 'TTLPolicy/a/p'),
        brake.admit('p4', 'p4', 'TTLPolicy/a/p'),
        brake.admit('p5', 'p5', 'TTLPolicy/a/p'),
      ],
      [true, true, false],
    );
  });

  test('a policy annotation change resumes', () => {
    const policies: Record<string, PolicyBrake> = {
      'ClusterTTLPolicy/c': { limit: limit('1/1h'), resumeToken: 'old' },
    };
    const { brake, released } = setup({ policies });
    assert.equal(brake.admit('a', 'a', 'ClusterTTLPolicy/c'), true);
    assert.equal(brake.admit('b', 'b', 'ClusterTTLPolicy/c'), false);
    brake.recheck();
    assert.equal(released.length, 0, 'same token: still paused');
    policies['ClusterTTLPolicy/c'] = { limit: limit('1/1h'), resumeToken: 'new' };
    brake.recheck();
    assert.equal(released[0]!.why, 'resumed');
    assert.equal(brake.admit('b', 'b', 'ClusterTTLPolicy/c'), true);
  });

  test('property: never more than N counted deletions in any window; a steady rate at or below N/D never trips', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 60 }),
        fc.array(fc.integer({ min: 0, max: 20_000 }), { maxLength: 200 }),
        (n, windowS, gaps) => {
          const { brake, advance } = setup({ global: `${n}/${windowS}s` });
          let t = 0;
          const times: number[] = [];
          gaps.forEach((g, i) => {
            advance(g);
            t += g;
            if (brake.admit(`u${i}`, `k${i}`)) times.push(t);
          });
          for (let i = 0; i + n < times.length; i++) assert.ok(times[i + n]! - times[i]! >= windowS * 1000);
        },
      ),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 60 }), (n, windowS) => {
        const { brake, advance, trips } = setup({ global: `${n}/${windowS}s` });
        const gap = Math.ceil((windowS * 1000) / n);
        for (let i = 0; i < 5 * n; i++) {
          assert.equal(brake.admit(`u${i}`, `k${i}`), true);
          advance(gap);
        }
        assert.equal(trips.length, 0);
      }),
    );
  });

  test('forget drops a waiting deletion from the gauge', () => {
    const { brake, paused } = setup({ global: '1/1m' });
    brake.admit('a', 'a');
    brake.admit('b', 'b');
    assert.equal(paused.get(GLOBAL_BRAKE), 1);
    brake.forget('b');
    assert.equal(paused.get(GLOBAL_BRAKE), 0);
  });
});
