// The retention rules (src/rules/retention.ts, expires.ts, caps.ts, history.ts, pods.ts) through the
// one verdict (src/rules/verdict.ts): what decides, for random objects, policies, caps and ranks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { combineCaps } from '../../../src/rules/caps.ts';
import { parseExpires } from '../../../src/rules/expires.ts';
import { parseGroupBy, rankAmong } from '../../../src/rules/history.ts';
import type { Finish, Outcome, PolicyTtl, TtlDecision } from '../../../src/rules/types.ts';
import { verdictOf } from '../../../src/rules/verdict.ts';
import { jobSummary } from '../../fixtures/object-summary.ts';

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const DAY = 86_400;

function finished(outcome: Outcome, agoS: number): Finish {
  return { outcome, atMs: NOW - agoS * 1000, timeSource: 'condition', reason: 'condition Complete=True' };
}

const owner = { apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: 'cj', controller: true };

describe('kttl.dev/expires', () => {
  test('RFC 3339 times read as Date reads them; a date is 00:00 UTC', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('2000-01-01T00:00:00Z'),
          max: new Date('2090-01-01T00:00:00Z'),
          noInvalidDate: true,
        }),
        (d) => {
          const iso = d.toISOString();
          const r = parseExpires(iso, NOW);
          assert.deepEqual(r, { ok: true, atMs: d.getTime() });
          const day = iso.slice(0, 10);
          assert.deepEqual(parseExpires(day, NOW), { ok: true, atMs: Date.parse(`${day}T00:00:00Z`) });
        },
      ),
    );
    assert.deepEqual(parseExpires('2026-12-31T18:00:00+02:00', NOW), {
      ok: true,
      atMs: Date.UTC(2026, 11, 31, 16),
    });
  });

  test('anything else is invalid, never a time', () => {
    for (const bad of [
      'tomorrow',
      '2026-02-30',
      '2026-13-01',
      '2026-12-31 18:00',
      '1h',
      '',
      '2026-12-31T25:00:00Z',
      '9999-01-01',
    ])
      assert.equal(parseExpires(bad, NOW).ok, false, bad);
    fc.assert(
      fc.property(fc.string(), (s) => {
        const r = parseExpires(s, NOW);
        if (r.ok) assert.match(s, /^\d{4}-\d{2}-\d{2}/);
      }),
    );
  });

  test('an unfinished object goes at that time; without it, never; kttl.dev/keep still wins; a bad date keeps', () => {
    const at = new Date(NOW + 5000).toISOString();
    const v = verdictOf(jobSummary({ annotations: { 'kttl.dev/expires': at } }), ctx(null));
    assert.equal(v.decision?.action, 'ttl');
    assert.equal(v.decision?.source, 'expires');
    assert.equal(v.judgement.state, 'pending');
    assert.equal(v.judgement.expireAtMs, NOW + 5000);
    assert.deepEqual(
      v.blockers.map((b) => b.what),
      ['pending'],
    );
    const late = verdictOf(jobSummary({ annotations: { 'kttl.dev/expires': at } }), {
      ...ctx(null),
      nowMs: NOW + 6000,
    });
    assert.equal(late.judgement.state, 'expired');
    const kept = verdictOf(jobSummary({ annotations: { 'kttl.dev/expires': at, 'kttl.dev/keep': 'true' } }), {
      ...ctx(null),
      nowMs: NOW + 6000,
    });
    assert.equal(kept.judgement.state, 'not-finished');
    const bad = verdictOf(jobSummary({ annotations: { 'kttl.dev/expires': 'next friday' } }), ctx(null));
    assert.equal(bad.byOutcome.succeeded.action, 'invalid');
    assert.notEqual(bad.judgement.state, 'expired');
    const badDone = verdictOf(
      jobSummary({
        annotations: { 'kttl.dev/expires': 'next friday', 'kttl.dev/ttl': '0' },
        finish: finished('succeeded', 10),
      }),
      ctx(null),
    );
    assert.equal(badDone.judgement.state, 'invalid');
  });
});

function ctx(policy: PolicyTtl | null, rank?: number) {
  return {
    nowMs: NOW,
    policy,
    helmHooks: true,
    nativeJobs: 'handle' as const,
    ...(rank === undefined ? {} : { rank: () => rank }),
  };
}

const outcomeArb = fc.constantFrom<Outcome>('succeeded', 'failed');
const secondsArb = fc.integer({ min: 0, max: 400 * DAY });

describe('cluster caps', () => {
  test('no TTL, no source and no keepLatest keeps a finished object longer than the cap', () => {
    fc.assert(
      fc.property(
        outcomeArb,
        fc.option(secondsArb, { nil: undefined }),
        fc.option(secondsArb, { nil: undefined }),
        secondsArb,
        fc.integer({ min: 0, max: 5 }),
        fc.boolean(),
        (outcome, own, policyTtl, capS, rank, keepLatest) => {
          const cap = combineCaps([{ ref: 'ClusterTTLPolicy/max', maxTtl: `${capS}s` }])!;
          const policy: PolicyTtl = {
            ref: 'TTLPolicy/ns/p',
            ...(policyTtl === undefined ? {} : { ttl: `${policyTtl}s` }),
            ...(keepLatest
              ? { keepLatest: { failed: 3, succeeded: 3, groupBy: { by: 'owner' as const } } }
              : {}),
            cap,
          };
          const obj = jobSummary({
            owners: [owner],
            finish: finished(outcome, 0),
            annotations: own === undefined ? {} : { 'kttl.dev/ttl': `${own}s` },
          });
          const v = verdictOf(obj, ctx(policy, rank));
          const d = v.decision as TtlDecision;
          assert.equal(d.action, 'ttl', JSON.stringify(d));
          if (d.action !== 'ttl') return;
          assert.ok(d.seconds <= capS, JSON.stringify(d));
          const longest = Math.max(own ?? Number.POSITIVE_INFINITY, 0);
          if (d.source === 'cap') assert.match(d.detail, /^capped by ClusterTTLPolicy\/max maxTtl=/);
          else assert.ok((own ?? policyTtl)! <= capS && longest >= 0);
        },
      ),
    );
  });

  test('kttl.dev/keep escapes the cap unless allowKeep: false; the strictest cap wins per outcome', () => {
    const obj = jobSummary({ annotations: { 'kttl.dev/keep': 'true' }, finish: finished('failed', 0) });
    const loose = combineCaps([{ ref: 'ClusterTTLPolicy/a', maxTtl: '1d' }])!;
    assert.equal(verdictOf(obj, ctx({ ref: 'ClusterTTLPolicy/a', cap: loose })).decision?.action, 'keep');
    const strict = combineCaps([
      { ref: 'ClusterTTLPolicy/a', maxTtl: '1d' },
      { ref: 'ClusterTTLPolicy/b', maxTtlFailed: '2h', maxTtl: '30d', allowKeep: false },
    ])!;
    assert.deepEqual(strict.failed, { seconds: 7200, ref: 'ClusterTTLPolicy/b', field: 'maxTtlFailed=2h' });
    assert.deepEqual(strict.succeeded, { seconds: DAY, ref: 'ClusterTTLPolicy/a', field: 'maxTtl=1d' });
    const d = verdictOf(obj, ctx({ ref: 'ClusterTTLPolicy/a', cap: strict })).decision;
    assert.equal(d?.action === 'ttl' && d.source === 'cap' && d.seconds, 7200);
  });

  test('an invalid value still keeps under a cap, and a held policy decides nothing', () => {
    const cap = combineCaps([{ ref: 'ClusterTTLPolicy/a', maxTtl: '1h' }])!;
    const bad = jobSummary({
      annotations: { 'kttl.dev/ttl': '1 hour' },
      finish: finished('succeeded', 9999),
    });
    assert.equal(verdictOf(bad, ctx({ ref: 'ClusterTTLPolicy/a', cap })).decision?.action, 'invalid');
    const held = verdictOf(
      jobSummary({ finish: finished('succeeded', 9999) }),
      ctx({ ref: '(policies)', hold: 'not known', cap }),
    );
    assert.equal(held.judgement.state, 'no-ttl');
  });
});

describe('history and keepLatest', () => {
  const limitArb = fc.integer({ min: 0, max: 5 });
  test('history: beyond the newest N → deleted now, whatever its TTL (keep and invalid values aside); within: its TTL', () => {
    fc.assert(
      fc.property(
        outcomeArb,
        limitArb,
        fc.integer({ min: 0, max: 10 }),
        fc.option(secondsArb, { nil: undefined }),
        (outcome, n, rank, own) => {
          const policy: PolicyTtl = {
            ref: 'TTLPolicy/ns/h',
            ttl: '30d',
            history: { [outcome]: n, groupBy: { by: 'owner' } },
          };
          const obj = jobSummary({
            owners: [owner],
            finish: finished(outcome, 60),
            annotations: own === undefined ? {} : { 'kttl.dev/ttl': `${own}s` },
          });
          const v = verdictOf(obj, ctx(policy, rank));
          if (rank >= n) {
            assert.equal(v.decision?.action === 'ttl' && v.decision.source, 'history');
            assert.equal(v.judgement.state, 'expired');
          } else {
            assert.notEqual(v.decision?.action === 'ttl' && v.decision.source, 'history');
          }
          const kept = verdictOf({ ...obj, annotations: { 'kttl.dev/keep': 'true' } }, ctx(policy, rank));
          assert.equal(kept.judgement.state, 'keep');
        },
      ),
    );
  });

  test('keepLatest: the newest N are kept past their TTL, the others go by their TTL; a newer finish ends it', () => {
    fc.assert(
      fc.property(outcomeArb, limitArb, fc.integer({ min: 0, max: 10 }), (outcome, n, rank) => {
        const policy: PolicyTtl = {
          ref: 'TTLPolicy/ns/k',
          ttl: '1m',
          keepLatest: { [outcome]: n, groupBy: { by: 'owner' } },
        };
        const obj = jobSummary({ owners: [owner], finish: finished(outcome, 3600) });
        const v = verdictOf(obj, ctx(policy, rank));
        if (rank < n) {
          assert.equal(v.decision?.action === 'keep' && v.decision.source, 'keepLatest');
          assert.equal(v.judgement.state, 'keep');
        } else assert.equal(v.judgement.state, 'expired');
      }),
    );
  });

  test('groupBy and the ranking (latest finish time, then the greater name)', () => {
    assert.deepEqual(parseGroupBy('owner'), { ok: true, groupBy: { by: 'owner' } });
    assert.deepEqual(parseGroupBy('label:app.kubernetes.io/name'), {
      ok: true,
      groupBy: { by: 'label', key: 'app.kubernetes.io/name' },
    });
    assert.equal(parseGroupBy('label:').ok, false);
    assert.equal(parseGroupBy('namespace').ok, false);
    const members = [
      { atMs: 10, name: 'a' },
      { atMs: 20, name: 'b' },
      { atMs: 20, name: 'c' },
    ];
    assert.deepEqual(
      members.map((m) => rankAmong(m, members)),
      [2, 1, 0],
    );
  });
});

describe('pods first', () => {
  test('only for a finished object; the annotation wins over the policy; a bad value keeps the pods', () => {
    const policy: PolicyTtl = { ref: 'TTLPolicy/ns/p', ttl: '7d', ttlPods: '1h' };
    assert.equal(verdictOf(jobSummary(), ctx(policy)).pods.state, 'none');
    const f = finished('failed', 60);
    const v = verdictOf(jobSummary({ finish: f }), ctx(policy));
    assert.deepEqual(v.pods.state === 'at' && [v.pods.atMs, v.pods.seconds], [f.atMs! + 3600_000, 3600]);
    const a = verdictOf(jobSummary({ finish: f, annotations: { 'kttl.dev/ttl-pods': '0' } }), ctx(policy));
    assert.equal(a.pods.state === 'at' && a.pods.atMs, f.atMs);
    const bad = verdictOf(
      jobSummary({ finish: f, annotations: { 'kttl.dev/ttl-pods': 'soon' } }),
      ctx(policy),
    );
    assert.equal(bad.pods.state, 'invalid');
    assert.equal(bad.judgement.state, 'pending'); // the object's own TTL is untouched
  });
});
