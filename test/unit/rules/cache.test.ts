// What the watch cache drops (src/rules/cache.ts) must be what the one verdict would never delete:
// an unfinished object without kttl.dev/expires is judged to live whatever else it carries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { finishedUnderAnyRule, worthCaching } from '../../../src/rules/cache.ts';
import { ANNOTATIONS, type Finish, type PolicyTtl } from '../../../src/rules/types.ts';
import { verdictOf } from '../../../src/rules/verdict.ts';
import { jobSummary } from '../../fixtures/object-summary.ts';

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const value = fc.oneof(
  fc.constantFrom(
    '0s',
    '1s',
    '1h',
    '30d',
    'true',
    'false',
    'hook-succeeded',
    'hook-failed',
    '2026-01-01',
    '',
  ),
  fc.string({ maxLength: 12 }),
);
const annotations = fc.dictionary(fc.constantFrom(...Object.values(ANNOTATIONS)), value, { maxKeys: 6 });
const policy: fc.Arbitrary<PolicyTtl | null> = fc.option(
  fc.record(
    {
      ref: fc.constant('TTLPolicy/ns/p'),
      ttl: fc.constantFrom('0s', '1s', '1h'),
      ttlSucceeded: fc.constantFrom('0s', '2h'),
      ttlFailed: fc.constantFrom('0s', '3h'),
      dryRun: fc.boolean(),
    },
    { requiredKeys: ['ref'] },
  ),
  { nil: null },
);
const finish: fc.Arbitrary<Finish> = fc.record({
  outcome: fc.constantFrom('succeeded' as const, 'failed' as const),
  atMs: fc.integer({ min: NOW - 86_400_000, max: NOW }),
  timeSource: fc.constant('condition' as const),
  reason: fc.constant('condition Complete=True'),
});

test('an object the cache drops is one the verdict keeps, at any time, under any policy', () => {
  fc.assert(
    fc.property(
      annotations,
      policy,
      fc.option(fc.integer({ min: 0, max: 86_400 }), { nil: null }),
      fc.integer({ min: NOW - 86_400_000, max: NOW + 400 * 86_400_000 }),
      fc.boolean(),
      (ann, pol, nativeTtl, nowMs, helmHooks) => {
        const obj = jobSummary({ annotations: ann, nativeTtlSeconds: nativeTtl, creationMs: NOW - 1000 });
        const v = verdictOf(obj, { nowMs, policy: pol, helmHooks, nativeJobs: 'handle' });
        const acts = v.judgement.state === 'pending' || v.judgement.state === 'expired';
        if (!worthCaching(obj)) {
          assert.equal(acts, false, `dropped but judged ${v.judgement.state}`);
          assert.equal(v.decision, null);
        }
        if (acts) assert.equal(worthCaching(obj), true);
      },
    ),
    { numRuns: 2000 },
  );
});

test('finished objects and unfinished ones with kttl.dev/expires are kept; the rest dropped', () => {
  fc.assert(
    fc.property(annotations, fc.option(finish, { nil: null }), (ann, fin) => {
      const obj = jobSummary({ annotations: ann, finish: fin });
      assert.equal(worthCaching(obj), fin !== null || Object.hasOwn(ann, ANNOTATIONS.expires));
    }),
  );
  // A custom kind finished under one of its policies' rules only.
  const custom = jobSummary({ apiVersion: 'example.com/v1', kind: 'Build', finishes: { a: null } });
  assert.equal(finishedUnderAnyRule(custom), false);
  assert.equal(worthCaching(custom), false);
  const f: Finish = { outcome: 'failed', atMs: NOW, timeSource: 'field', reason: '.status.phase=Failed' };
  assert.equal(worthCaching({ ...custom, finishes: { a: null, b: f } }), true);
});
