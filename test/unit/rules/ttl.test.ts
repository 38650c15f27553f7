import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseDuration } from '../../../src/rules/duration.ts';
import { parseHookPolicy } from '../../../src/rules/hooks.ts';
import { describeDecision, resolveTtl } from '../../../src/rules/ttl.ts';
import type { ObjectSummary, Outcome, PolicyTtl, TtlDecision } from '../../../src/rules/types.ts';

function summary(annotations: Record<string, string>, nativeTtlSeconds: number | null = null): ObjectSummary {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    namespace: 'team-a',
    name: 'pi',
    uid: 'u-1',
    resourceVersion: '1',
    creationMs: 0,
    labels: {},
    annotations,
    deletionMs: null,
    finalizers: [],
    owners: [],
    nativeTtlSeconds,
    finish: { outcome: 'succeeded', atMs: 1000, timeSource: 'condition', reason: 'condition Complete=True' },
  };
}

const NO_OPTS = { policy: null, helmHooks: true };

describe('resolveTtl: named cases', () => {
  const policy: PolicyTtl = {
    ref: 'TTLPolicy/team-a/short-lived',
    ttl: '1h',
    ttlSucceeded: '10m',
    ttlFailed: '7d',
    propagationPolicy: 'Background',
    dryRun: true,
  };
  const cases: Array<
    [string, Record<string, string>, number | null, Outcome, PolicyTtl | null, boolean, TtlDecision]
  > = [
    [
      'nothing',
      {},
      null,
      'succeeded',
      null,
      true,
      { action: 'none', source: 'none', detail: 'no TTL: no annotation, native field or policy applies' },
    ],
    [
      'keep',
      { 'kttl.dev/keep': 'true', 'kttl.dev/ttl': '0' },
      0,
      'failed',
      policy,
      true,
      { action: 'keep', source: 'keep', detail: 'annotation kttl.dev/keep=true' },
    ],
    [
      'keep typo',
      { 'kttl.dev/keep': 'True', 'kttl.dev/ttl': '0' },
      null,
      'succeeded',
      null,
      true,
      {
        action: 'invalid',
        source: 'keep',
        key: 'kttl.dev/keep',
        value: 'True',
        message: 'annotation kttl.dev/keep: invalid value "True" (use "true" or "false")',
      },
    ],
    [
      'keep=false is ignored',
      { 'kttl.dev/keep': 'false', 'kttl.dev/ttl': '5m' },
      null,
      'succeeded',
      null,
      true,
      { action: 'ttl', source: 'annotation', seconds: 300, detail: 'annotation kttl.dev/ttl=5m' },
    ],
    [
      'kots hook',
      { 'kots.io/hook-delete-policy': 'hook-succeeded', 'kttl.dev/ttl': '5m' },
      null,
      'succeeded',
      null,
      true,
      { action: 'ttl', source: 'hook', seconds: 0, detail: 'hook kots.io/hook-delete-policy=hook-succeeded' },
    ],
    [
      'hook-succeeded on a failed object falls through',
      { 'kots.io/hook-delete-policy': 'hook-succeeded', 'kttl.dev/ttl-failed': '7d' },
      null,
      'failed',
      null,
      true,
      { action: 'ttl', source: 'annotation', seconds: 604800, detail: 'annotation kttl.dev/ttl-failed=7d' },
    ],
    [
      'helm and kots: union',
      {
        'kots.io/hook-delete-policy': 'hook-succeeded',
        'helm.sh/hook-delete-policy': 'before-hook-creation, hook-failed',
      },
      null,
      'failed',
      null,
      true,
      {
        action: 'ttl',
        source: 'hook',
        seconds: 0,
        detail: 'hook helm.sh/hook-delete-policy=before-hook-creation, hook-failed',
      },
    ],
    [
      'helm off: helm hook ignored',
      { 'helm.sh/hook-delete-policy': 'hook-failed' },
      100,
      'failed',
      null,
      false,
      { action: 'ttl', source: 'field', seconds: 100, detail: 'field .spec.ttlSecondsAfterFinished=100' },
    ],
    [
      'helm off: even an unknown helm value is ignored',
      { 'helm.sh/hook-delete-policy': 'bogus' },
      null,
      'failed',
      null,
      false,
      { action: 'none', source: 'none', detail: 'no TTL: no annotation, native field or policy applies' },
    ],
    [
      'unknown hook value: invalid, even when another item matches',
      { 'kots.io/hook-delete-policy': 'hook-succeeded,hook-sucess' },
      null,
      'succeeded',
      null,
      true,
      {
        action: 'invalid',
        source: 'hook',
        key: 'kots.io/hook-delete-policy',
        value: 'hook-succeeded,hook-sucess',
        message:
          'annotation kots.io/hook-delete-policy: unknown value "hook-sucess" (use hook-succeeded, hook-failed or before-hook-creation)',
      },
    ],
    [
      'invalid ttl-failed blocks a valid ttl on a succeeded object',
      { 'kttl.dev/ttl': '1h', 'kttl.dev/ttl-failed': '7days' },
      null,
      'succeeded',
      null,
      true,
      {
        action: 'invalid',
        source: 'annotation',
        key: 'kttl.dev/ttl-failed',
        value: '7days',
        message:
          'annotation kttl.dev/ttl-failed: invalid duration "7days": unknown unit "days" (use s, m, h, d or w)',
      },
    ],
    [
      'ttl-succeeded wins over ttl',
      { 'kttl.dev/ttl': '1h', 'kttl.dev/ttl-succeeded': '90s' },
      5,
      'succeeded',
      policy,
      true,
      { action: 'ttl', source: 'annotation', seconds: 90, detail: 'annotation kttl.dev/ttl-succeeded=90s' },
    ],
    [
      'annotation wins over native field',
      { 'kttl.dev/ttl': '0' },
      100,
      'failed',
      null,
      true,
      { action: 'ttl', source: 'annotation', seconds: 0, detail: 'annotation kttl.dev/ttl=0' },
    ],
    [
      'native field wins over policy',
      {},
      100,
      'succeeded',
      policy,
      true,
      { action: 'ttl', source: 'field', seconds: 100, detail: 'field .spec.ttlSecondsAfterFinished=100' },
    ],
    [
      'native field 0',
      {},
      0,
      'succeeded',
      null,
      true,
      { action: 'ttl', source: 'field', seconds: 0, detail: 'field .spec.ttlSecondsAfterFinished=0' },
    ],
    [
      'policy ttlSucceeded carries propagationPolicy and dryRun',
      {},
      null,
      'succeeded',
      policy,
      true,
      {
        action: 'ttl',
        source: 'policy',
        seconds: 600,
        detail: 'policy TTLPolicy/team-a/short-lived ttlSucceeded=10m',
        propagationPolicy: 'Background',
        dryRun: true,
      },
    ],
    [
      'policy ttl when no outcome-specific one',
      {},
      null,
      'failed',
      { ref: 'ClusterTTLPolicy/default', ttl: '1h', ttlSucceeded: '10m' },
      true,
      { action: 'ttl', source: 'policy', seconds: 3600, detail: 'policy ClusterTTLPolicy/default ttl=1h' },
    ],
    [
      'policy invalid value',
      {},
      null,
      'succeeded',
      { ref: 'TTLPolicy/team-a/x', ttl: '1h', ttlFailed: '-1h' },
      true,
      {
        action: 'invalid',
        source: 'policy',
        key: 'TTLPolicy/team-a/x spec.ttlFailed',
        value: '-1h',
        message: 'policy TTLPolicy/team-a/x ttlFailed: invalid duration "-1h": must not be negative',
      },
    ],
    [
      'policy without TTL fields',
      {},
      null,
      'succeeded',
      { ref: 'ClusterTTLPolicy/p', dryRun: true },
      true,
      { action: 'none', source: 'none', detail: 'no TTL: no annotation, native field or policy applies' },
    ],
    [
      'native field out of range is invalid, never a TTL',
      {},
      -5,
      'succeeded',
      null,
      true,
      {
        action: 'invalid',
        source: 'field',
        key: '.spec.ttlSecondsAfterFinished',
        value: '-5',
        message:
          'field .spec.ttlSecondsAfterFinished: -5 is not a whole number of seconds from 0 to 2147483647',
      },
    ],
  ];
  for (const [name, annotations, native, outcome, pol, helmHooks, want] of cases) {
    test(name, () => {
      assert.deepEqual(resolveTtl(summary(annotations, native), outcome, { policy: pol, helmHooks }), want);
    });
  }

  test('annotation lookups ignore the prototype', () => {
    const d = resolveTtl(summary(JSON.parse('{"__proto__":{"kttl.dev/ttl":"0"}}')), 'succeeded', NO_OPTS);
    assert.equal(d.action, 'none');
  });

  test('describeDecision', () => {
    assert.equal(
      describeDecision({
        action: 'ttl',
        source: 'annotation',
        seconds: 5400,
        detail: 'annotation kttl.dev/ttl=90m',
      }),
      'ttl 1h30m (annotation kttl.dev/ttl=90m)',
    );
    assert.equal(describeDecision({ action: 'keep', source: 'keep', detail: 'x' }), 'keep (x)');
    assert.match(
      describeDecision({ action: 'invalid', source: 'hook', key: 'k', value: 'v', message: 'm' }),
      /^invalid: m$/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Exhaustive precedence table. Every combination of the dimensions below; the expected winner is
// derived from docs/rules.md by an independent, declarative oracle.

type Keep = 'absent' | 'true' | 'false' | 'bogus';
type Hook = 'none' | 'matching' | 'non-matching' | 'only-before-hook-creation' | 'unknown';
type HookKey = 'kots' | 'helm' | 'both';
type General = 'none' | 'valid' | 'invalid';
type Specific = 'none' | 'valid-this' | 'invalid-this' | 'valid-other' | 'invalid-other' | 'both-valid';
type Pol = 'none' | 'ttl' | 'specific-this' | 'specific-other' | 'specific-other+ttl' | 'invalid' | 'empty';

const KEEPS: Keep[] = ['absent', 'true', 'false', 'bogus'];
const HOOKS: Hook[] = ['none', 'matching', 'non-matching', 'only-before-hook-creation', 'unknown'];
const HOOK_KEYS: HookKey[] = ['kots', 'helm', 'both'];
const GENERALS: General[] = ['none', 'valid', 'invalid'];
const SPECIFICS: Specific[] = [
  'none',
  'valid-this',
  'invalid-this',
  'valid-other',
  'invalid-other',
  'both-valid',
];
const NATIVES: Array<number | null> = [null, 100];
const POLICIES: Pol[] = [
  'none',
  'ttl',
  'specific-this',
  'specific-other',
  'specific-other+ttl',
  'invalid',
  'empty',
];
const OUTCOMES: Outcome[] = ['succeeded', 'failed'];

// Distinct second counts so the winning value identifies its source.
const S = {
  general: 60,
  specificThis: 120,
  specificOther: 180,
  native: 100,
  polTtl: 3600,
  polThis: 7200,
  polOther: 10800,
};

interface Combo {
  keep: Keep;
  hook: Hook;
  hookKey: HookKey;
  helmHooks: boolean;
  general: General;
  specific: Specific;
  native: number | null;
  pol: Pol;
  outcome: Outcome;
}

function build(c: Combo): { obj: ObjectSummary; policy: PolicyTtl | null } {
  const a: Record<string, string> = {};
  if (c.keep !== 'absent') a['kttl.dev/keep'] = c.keep === 'bogus' ? 'yes' : c.keep;
  const mine = c.outcome === 'succeeded' ? 'hook-succeeded' : 'hook-failed';
  const theirs = c.outcome === 'succeeded' ? 'hook-failed' : 'hook-succeeded';
  const hookValue = {
    none: undefined,
    matching: ` before-hook-creation , ${mine}`,
    'non-matching': `${theirs},before-hook-creation`,
    'only-before-hook-creation': 'before-hook-creation',
    unknown: `${mine},hook-sucess`,
  }[c.hook];
  if (hookValue !== undefined) {
    if (c.hookKey !== 'helm') a['kots.io/hook-delete-policy'] = hookValue;
    if (c.hookKey !== 'kots') a['helm.sh/hook-delete-policy'] = hookValue;
  }
  if (c.general === 'valid') a['kttl.dev/ttl'] = '1m';
  if (c.general === 'invalid') a['kttl.dev/ttl'] = '1 minute';
  const thisKey = c.outcome === 'succeeded' ? 'kttl.dev/ttl-succeeded' : 'kttl.dev/ttl-failed';
  const otherKey = c.outcome === 'succeeded' ? 'kttl.dev/ttl-failed' : 'kttl.dev/ttl-succeeded';
  if (c.specific === 'valid-this' || c.specific === 'both-valid') a[thisKey] = '2m';
  if (c.specific === 'invalid-this') a[thisKey] = '2min';
  if (c.specific === 'valid-other' || c.specific === 'both-valid') a[otherKey] = '3m';
  if (c.specific === 'invalid-other') a[otherKey] = '-3m';
  const thisField = c.outcome === 'succeeded' ? 'ttlSucceeded' : 'ttlFailed';
  const otherField = c.outcome === 'succeeded' ? 'ttlFailed' : 'ttlSucceeded';
  const ref = 'TTLPolicy/team-a/p';
  const policy: PolicyTtl | null = {
    none: null,
    ttl: { ref, ttl: '1h', propagationPolicy: 'Orphan' as const },
    'specific-this': { ref, ttl: '1h', [thisField]: '2h', dryRun: true },
    'specific-other': { ref, [otherField]: '3h' },
    'specific-other+ttl': { ref, ttl: '1h', [otherField]: '3h' },
    invalid: { ref, ttl: '1h', [otherField]: 'forever' },
    empty: { ref, propagationPolicy: 'Foreground' as const },
  }[c.pol];
  return { obj: summary(a, c.native), policy };
}

type Expected = { action: TtlDecision['action']; source: TtlDecision['source']; seconds?: number };

function oracle(c: Combo): Expected {
  if (c.keep === 'true') return { action: 'keep', source: 'keep' };
  if (c.keep === 'bogus') return { action: 'invalid', source: 'keep' };
  const hookSeen = c.hook !== 'none' && (c.hookKey !== 'helm' || c.helmHooks);
  if (hookSeen && c.hook === 'unknown') return { action: 'invalid', source: 'hook' };
  if (hookSeen && c.hook === 'matching') return { action: 'ttl', source: 'hook', seconds: 0 };
  const anyInvalid =
    c.general === 'invalid' || c.specific === 'invalid-this' || c.specific === 'invalid-other';
  if (anyInvalid) return { action: 'invalid', source: 'annotation' };
  if (c.specific === 'valid-this' || c.specific === 'both-valid') {
    return { action: 'ttl', source: 'annotation', seconds: S.specificThis };
  }
  if (c.general === 'valid') return { action: 'ttl', source: 'annotation', seconds: S.general };
  if (c.native !== null) return { action: 'ttl', source: 'field', seconds: S.native };
  switch (c.pol) {
    case 'none':
    case 'empty':
    case 'specific-other':
      return { action: 'none', source: 'none' };
    case 'invalid':
      return { action: 'invalid', source: 'policy' };
    case 'specific-this':
      return { action: 'ttl', source: 'policy', seconds: S.polThis };
    case 'ttl':
    case 'specific-other+ttl':
      return { action: 'ttl', source: 'policy', seconds: S.polTtl };
  }
}

function* combos(): Generator<Combo> {
  for (const keep of KEEPS)
    for (const hook of HOOKS)
      for (const hookKey of hook === 'none' ? (['kots'] as HookKey[]) : HOOK_KEYS)
        for (const helmHooks of [true, false])
          for (const general of GENERALS)
            for (const specific of SPECIFICS)
              for (const native of NATIVES)
                for (const pol of POLICIES)
                  for (const outcome of OUTCOMES)
                    yield { keep, hook, hookKey, helmHooks, general, specific, native, pol, outcome };
}

describe('resolveTtl: exhaustive precedence table', () => {
  test('every combination picks the winning source of docs/rules.md', () => {
    let n = 0;
    const seen = new Set<string>();
    for (const c of combos()) {
      n++;
      const { obj, policy } = build(c);
      const got = resolveTtl(obj, c.outcome, { policy, helmHooks: c.helmHooks });
      const want = oracle(c);
      const label = JSON.stringify(c);
      assert.equal(got.action, want.action, label);
      assert.equal(got.source, want.source, label);
      seen.add(`${want.action}/${want.source}`);
      if (got.action === 'ttl') {
        assert.equal(got.seconds, want.seconds, label);
        assert.ok(got.detail.length > 0);
        if (got.source === 'policy') {
          assert.equal(got.propagationPolicy, policy?.propagationPolicy, label);
          assert.equal(got.dryRun, policy?.dryRun, label);
        } else {
          assert.equal(got.propagationPolicy, undefined, label);
          assert.equal(got.dryRun, undefined, label);
        }
      }
      if (got.action === 'invalid') {
        assert.ok(got.message.length > 0 && got.key.length > 0, label);
        assert.ok(got.message.includes(got.key.split(' ')[0] ?? '?'), `message names the key: ${label}`);
      }
    }
    // 4 keeps × (1 + 4 hooks × 3 keys) × 2 × 3 × 6 × 2 × 7 × 2 combinations
    assert.equal(n, 4 * (1 + 4 * 3) * 2 * 3 * 6 * 2 * 7 * 2);
    // the table really exercises every outcome of the precedence
    assert.deepEqual([...seen].sort(), [
      'invalid/annotation',
      'invalid/hook',
      'invalid/keep',
      'invalid/policy',
      'keep/keep',
      'none/none',
      'ttl/annotation',
      'ttl/field',
      'ttl/hook',
      'ttl/policy',
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over arbitrary annotation strings.

const KEYS = [
  'kttl.dev/keep',
  'kttl.dev/ttl',
  'kttl.dev/ttl-succeeded',
  'kttl.dev/ttl-failed',
  'kots.io/hook-delete-policy',
  'helm.sh/hook-delete-policy',
] as const;

const value = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    'true',
    'false',
    'True',
    '0',
    '90s',
    '1h30m',
    '4d',
    '-5m',
    '1.5s',
    '90',
    'hook-succeeded',
    'hook-failed',
    'before-hook-creation',
    'hook-succeeded,hook-failed',
    '',
  ),
  fc.string({ unit: fc.constantFrom(...'0123456789.smhdw-+ ,'.split('')), maxLength: 10 }),
);
const annotationsArb = fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 6 });
const policyArb = fc.option(
  fc.record(
    { ref: fc.constant('ClusterTTLPolicy/p'), ttl: value, ttlSucceeded: value, ttlFailed: value },
    { requiredKeys: ['ref'] },
  ),
  { nil: null },
);

describe('resolveTtl properties', () => {
  test('never throws; never returns a TTL from an invalid value; ttl values round-trip', () => {
    fc.assert(
      fc.property(
        annotationsArb,
        fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: null }),
        policyArb,
        fc.constantFrom<Outcome>('succeeded', 'failed'),
        fc.boolean(),
        (annotations, native, policy, outcome, helmHooks) => {
          const d = resolveTtl(summary(annotations, native), outcome, { policy, helmHooks });
          if (d.action !== 'ttl') return;
          assert.ok(Number.isInteger(d.seconds) && d.seconds >= 0);
          // a TTL is only ever returned when nothing above it, nor any sibling ttl annotation, is invalid
          const keep = annotations['kttl.dev/keep'];
          assert.ok(keep === undefined || keep === 'false', `keep=${keep}`);
          const hookKeys = helmHooks
            ? ['kots.io/hook-delete-policy', 'helm.sh/hook-delete-policy']
            : ['kots.io/hook-delete-policy'];
          for (const k of hookKeys) {
            const v = annotations[k];
            if (v !== undefined) assert.deepEqual(parseHookPolicy(v).unknown, [], `${k}=${v}`);
          }
          if (d.source === 'hook') {
            assert.equal(d.seconds, 0);
            return;
          }
          for (const k of ['kttl.dev/ttl', 'kttl.dev/ttl-succeeded', 'kttl.dev/ttl-failed']) {
            const v = annotations[k];
            if (v !== undefined)
              assert.ok(parseDuration(v).ok, `${k}=${v} is invalid but got ${JSON.stringify(d)}`);
          }
          if (d.source === 'annotation') {
            const specific =
              annotations[outcome === 'succeeded' ? 'kttl.dev/ttl-succeeded' : 'kttl.dev/ttl-failed'];
            const used = specific ?? annotations['kttl.dev/ttl'];
            assert.ok(used !== undefined);
            assert.deepEqual(parseDuration(used), { ok: true, seconds: d.seconds });
            return;
          }
          if (d.source === 'field') {
            assert.equal(d.seconds, native);
            return;
          }
          assert.equal(d.source, 'policy');
          assert.ok(policy !== null);
          for (const f of ['ttl', 'ttlSucceeded', 'ttlFailed'] as const) {
            const v = policy[f];
            if (v !== undefined) assert.ok(parseDuration(v).ok, `policy ${f}=${v}`);
          }
          const used = policy[outcome === 'succeeded' ? 'ttlSucceeded' : 'ttlFailed'] ?? policy.ttl;
          assert.ok(used !== undefined);
          assert.deepEqual(parseDuration(used), { ok: true, seconds: d.seconds });
        },
      ),
      { numRuns: 10_000 },
    );
  });

  test('an invalid decision always names a key and the value actually present', () => {
    fc.assert(
      fc.property(
        annotationsArb,
        policyArb,
        fc.constantFrom<Outcome>('succeeded', 'failed'),
        (annotations, policy, outcome) => {
          const d = resolveTtl(summary(annotations), outcome, { policy, helmHooks: true });
          if (d.action !== 'invalid') return;
          if (d.source === 'policy') {
            assert.ok(policy !== null);
            const field = d.key.split(' spec.')[1] as 'ttl' | 'ttlSucceeded' | 'ttlFailed';
            assert.equal(policy[field], d.value);
          } else {
            assert.equal(annotations[d.key], d.value);
          }
        },
      ),
      { numRuns: 10_000 },
    );
  });
});
