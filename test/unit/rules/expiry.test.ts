import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MAX_TTL_SECONDS } from '../../../src/rules/duration.ts';
import { expireAtMs, type Judgement, judge, timeLeftMs } from '../../../src/rules/expiry.ts';
import { jobFinish } from '../../../src/rules/finish.ts';
import { toSummary } from '../../../src/rules/summary.ts';
import { resolveTtl } from '../../../src/rules/ttl.ts';
import type { ObjectSummary, TtlDecision } from '../../../src/rules/types.ts';
import { jobSummary } from '../../fixtures/object-summary.ts';

const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);
const SEC = 1000;

/**
 * Upstream's `newJob(completionTime, failedTime, ttl)` builder (ttlafterfinished_controller_test.go),
 * as a RAW object: a Complete and/or Failed condition with status True at the given times.
 */
function newJob(
  completionMs: number | null,
  failedMs: number | null,
  ttl: number | null,
  extraConditions: Array<{ type: string; status: string; lastTransitionTime: string }> = [],
): unknown {
  const conditions = [...extraConditions];
  if (completionMs !== null) {
    conditions.push({
      type: 'Complete',
      status: 'True',
      lastTransitionTime: new Date(completionMs).toISOString(),
    });
  }
  if (failedMs !== null) {
    conditions.push({ type: 'Failed', status: 'True', lastTransitionTime: new Date(failedMs).toISOString() });
  }
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'foobar',
      namespace: 'default',
      uid: 'u',
      resourceVersion: '1',
      creationTimestamp: '2026-01-01T00:00:00Z',
    },
    spec: {
      ...(ttl === null ? {} : { ttlSecondsAfterFinished: ttl }),
      selector: { matchLabels: { foo: 'bar' } },
    },
    status: { conditions },
  };
}

/** The whole pure pipeline, as the controller runs it: finish → summary → TTL → judgement. */
function judgeRaw(
  raw: unknown,
  now: number,
): { summary: ObjectSummary; decision: TtlDecision | null; j: Judgement } {
  const summary = toSummary(raw, jobFinish(raw));
  const finish = summary.finish;
  const decision =
    finish === null ? null : resolveTtl(summary, finish.outcome, { policy: null, helmHooks: true });
  const j = judge(summary, decision ?? { action: 'none', source: 'none', detail: '' }, now);
  return { summary, decision, j };
}

describe('TestTimeLeft (upstream ttlafterfinished_controller_test.go)', () => {
  // The first nine rows are upstream's TestTimeLeft table (read from kubernetes/kubernetes);
  // the later rows ("10s ago, 10s TTL" = expired exactly at expireAt, "10s ago, 5s TTL" = overdue,
  // interim conditions) are reproduced from the brief and the upstream code's `*t <= 0` rule.
  // Upstream's "Error case ... should not be cleaned up" is our not-finished / no-ttl.
  type Row = {
    name: string;
    completion?: number;
    failed?: number;
    ttl?: number;
    interim?: Array<{ type: string; status: string; lastTransitionTime: string }>;
    state: Judgement['state'];
    leftMs?: number;
    expireAtMs?: number;
  };
  const iso = (ms: number) => new Date(ms).toISOString();
  const rows: Row[] = [
    { name: 'Error case: Job unfinished', ttl: 100, state: 'not-finished' },
    { name: 'Error case: Job completed now, no TTL', completion: NOW, state: 'no-ttl' },
    {
      name: 'Job completed now, 0s TTL',
      completion: NOW,
      ttl: 0,
      state: 'expired',
      leftMs: 0,
      expireAtMs: NOW,
    },
    {
      name: 'Job completed now, 10s TTL',
      completion: NOW,
      ttl: 10,
      state: 'pending',
      leftMs: 10 * SEC,
      expireAtMs: NOW + 10 * SEC,
    },
    {
      name: 'Job completed 10s ago, 15s TTL',
      completion: NOW - 10 * SEC,
      ttl: 15,
      state: 'pending',
      leftMs: 5 * SEC,
      expireAtMs: NOW + 5 * SEC,
    },
    { name: 'Error case: Job failed now, no TTL', failed: NOW, state: 'no-ttl' },
    { name: 'Job failed now, 0s TTL', failed: NOW, ttl: 0, state: 'expired', leftMs: 0, expireAtMs: NOW },
    {
      name: 'Job failed now, 10s TTL',
      failed: NOW,
      ttl: 10,
      state: 'pending',
      leftMs: 10 * SEC,
      expireAtMs: NOW + 10 * SEC,
    },
    {
      name: 'Job failed 10s ago, 15s TTL',
      failed: NOW - 10 * SEC,
      ttl: 15,
      state: 'pending',
      leftMs: 5 * SEC,
      expireAtMs: NOW + 5 * SEC,
    },
    {
      name: 'Job completed 10s ago, 10s TTL',
      completion: NOW - 10 * SEC,
      ttl: 10,
      state: 'expired',
      leftMs: 0,
      expireAtMs: NOW,
    },
    {
      name: 'Job completed 10s ago, 5s TTL',
      completion: NOW - 10 * SEC,
      ttl: 5,
      state: 'expired',
      leftMs: -5 * SEC,
      expireAtMs: NOW - 5 * SEC,
    },
    {
      name: 'Job failed 10s ago, 10s TTL',
      failed: NOW - 10 * SEC,
      ttl: 10,
      state: 'expired',
      leftMs: 0,
      expireAtMs: NOW,
    },
    {
      name: 'Job failed 10s ago, 5s TTL',
      failed: NOW - 10 * SEC,
      ttl: 5,
      state: 'expired',
      leftMs: -5 * SEC,
      expireAtMs: NOW - 5 * SEC,
    },
    {
      name: 'Job with only SuccessCriteriaMet (interim), 0s TTL: not finished',
      ttl: 0,
      interim: [{ type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: iso(NOW - 60 * SEC) }],
      state: 'not-finished',
    },
    {
      name: 'Job with only FailureTarget (interim), 0s TTL: not finished',
      ttl: 0,
      interim: [{ type: 'FailureTarget', status: 'True', lastTransitionTime: iso(NOW - 60 * SEC) }],
      state: 'not-finished',
    },
    {
      name: 'SuccessCriteriaMet 60s ago then Complete 5s ago, 10s TTL: counts from Complete',
      completion: NOW - 5 * SEC,
      ttl: 10,
      interim: [{ type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: iso(NOW - 60 * SEC) }],
      state: 'pending',
      leftMs: 5 * SEC,
      expireAtMs: NOW + 5 * SEC,
    },
    {
      name: 'FailureTarget 60s ago then Failed 5s ago, 10s TTL: counts from Failed',
      failed: NOW - 5 * SEC,
      ttl: 10,
      interim: [{ type: 'FailureTarget', status: 'True', lastTransitionTime: iso(NOW - 60 * SEC) }],
      state: 'pending',
      leftMs: 5 * SEC,
      expireAtMs: NOW + 5 * SEC,
    },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const raw = newJob(r.completion ?? null, r.failed ?? null, r.ttl ?? null, r.interim ?? []);
      const { j } = judgeRaw(raw, NOW);
      assert.equal(j.state, r.state);
      assert.equal(j.leftMs, r.leftMs);
      assert.equal(j.expireAtMs, r.expireAtMs);
    });
  }
});

describe('TestNeedsCleanup (upstream needsCleanup: finished and has a TTL)', () => {
  // Reproduced from memory of upstream's needsCleanup semantics (TTL set && IsJobFinished).
  const cases: Array<[string, unknown, boolean]> = [
    ['finished (Complete) with TTL', newJob(NOW, null, 0), true],
    ['finished (Failed) with TTL', newJob(null, NOW, 0), true],
    ['finished without TTL', newJob(NOW, null, null), false],
    ['unfinished with TTL', newJob(null, null, 0), false],
    [
      'SuccessCriteriaMet only, with TTL',
      newJob(null, null, 0, [
        { type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: new Date(NOW).toISOString() },
      ]),
      false,
    ],
    [
      'FailureTarget only, with TTL',
      newJob(null, null, 0, [
        { type: 'FailureTarget', status: 'True', lastTransitionTime: new Date(NOW).toISOString() },
      ]),
      false,
    ],
    [
      'Complete=False with TTL',
      newJob(null, null, 0, [
        { type: 'Complete', status: 'False', lastTransitionTime: new Date(NOW).toISOString() },
      ]),
      false,
    ],
  ];
  for (const [name, raw, needs] of cases) {
    test(name, () => {
      const { summary, decision } = judgeRaw(raw, NOW);
      const needsCleanup = summary.finish !== null && decision !== null && decision.action === 'ttl';
      assert.equal(needsCleanup, needs);
    });
  }
});

function obj(over: Partial<ObjectSummary> = {}): ObjectSummary {
  return jobSummary({
    name: 'n',
    finish: { outcome: 'succeeded', atMs: NOW, timeSource: 'condition', reason: 'condition Complete=True' },
    ...over,
  });
}
const ttl = (seconds: number): TtlDecision => ({ action: 'ttl', source: 'annotation', seconds, detail: 'd' });

describe('judge', () => {
  const cases: Array<[string, ObjectSummary, TtlDecision, Judgement]> = [
    ['being deleted (even if expired)', obj({ deletionMs: NOW - 1 }), ttl(0), { state: 'being-deleted' }],
    [
      'being deleted and not finished',
      obj({ deletionMs: NOW, finish: null }),
      ttl(0),
      { state: 'being-deleted' },
    ],
    ['not finished, TTL 0', obj({ finish: null }), ttl(0), { state: 'not-finished' }],
    ['keep', obj(), { action: 'keep', source: 'keep', detail: 'k' }, { state: 'keep' }],
    [
      'invalid',
      obj(),
      { action: 'invalid', source: 'annotation', key: 'k', value: 'v', message: 'm' },
      { state: 'invalid' },
    ],
    ['none', obj(), { action: 'none', source: 'none', detail: '' }, { state: 'no-ttl' }],
    [
      'Job condition without a time: never expires',
      obj({ finish: { outcome: 'succeeded', atMs: null, timeSource: 'condition', reason: 'r' } }),
      ttl(0),
      { state: 'no-finish-time' },
    ],
    [
      'firstSeen not stamped yet',
      obj({ finish: { outcome: 'failed', atMs: null, timeSource: 'firstSeen', reason: 'r' } }),
      ttl(0),
      { state: 'no-finish-time' },
    ],
    [
      'expireAt == now: expired (upstream <=)',
      obj({ finish: { outcome: 'failed', atMs: NOW - 10 * SEC, timeSource: 'condition', reason: 'r' } }),
      ttl(10),
      { state: 'expired', expireAtMs: NOW, leftMs: 0 },
    ],
    [
      'one ms before expiry: pending',
      obj({ finish: { outcome: 'failed', atMs: NOW - 10 * SEC + 1, timeSource: 'condition', reason: 'r' } }),
      ttl(10),
      { state: 'pending', expireAtMs: NOW + 1, leftMs: 1 },
    ],
    [
      'finish in the future (skew): only deferred, even with TTL 0',
      obj({ finish: { outcome: 'succeeded', atMs: NOW + 30 * SEC, timeSource: 'condition', reason: 'r' } }),
      ttl(0),
      { state: 'pending', expireAtMs: NOW + 30 * SEC, leftMs: 30 * SEC, finishInFuture: true },
    ],
    [
      'maximum TTL: no overflow, pending for ~68 years',
      obj(),
      ttl(MAX_TTL_SECONDS),
      { state: 'pending', expireAtMs: NOW + MAX_TTL_SECONDS * SEC, leftMs: MAX_TTL_SECONDS * SEC },
    ],
  ];
  for (const [name, o, d, want] of cases) {
    test(name, () => assert.deepEqual(judge(o, d, NOW), want));
  }

  test('expireAtMs / timeLeftMs', () => {
    assert.equal(expireAtMs(NOW, 0), NOW);
    assert.equal(expireAtMs(NOW, 90), NOW + 90_000);
    assert.equal(timeLeftMs(NOW + 5, NOW), 5);
    assert.equal(timeLeftMs(NOW - 5, NOW), -5);
  });

  test('property: expired exactly when finish + ttl <= now; never expired when unfinished or being deleted', () => {
    const t = fc.integer({ min: 0, max: 4_000_000_000_000 });
    fc.assert(
      fc.property(t, fc.integer({ min: 0, max: MAX_TTL_SECONDS }), t, (finishAt, seconds, now) => {
        const o = obj({
          finish: { outcome: 'failed', atMs: finishAt, timeSource: 'condition', reason: 'r' },
        });
        const j = judge(o, ttl(seconds), now);
        assert.equal(j.state === 'expired', finishAt + seconds * 1000 <= now);
        assert.equal(j.state === 'expired' || j.state === 'pending', true);
        assert.equal(j.leftMs, finishAt + seconds * 1000 - now);
        assert.equal(judge(obj({ finish: null }), ttl(seconds), now).state, 'not-finished');
        assert.equal(judge({ ...o, deletionMs: now }, ttl(seconds), now).state, 'being-deleted');
      }),
      { numRuns: 5000 },
    );
  });
});
