import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  chooseFinishRule,
  choosePolicy,
  comparePolicies,
  finishRuleKey,
  finishRulesOf,
  matchPolicies,
  mismatch,
  selection,
  toPolicyTtl,
} from '../../../src/policy/match.ts';
import { type Policy, type PolicyKind, parsePolicy } from '../../../src/policy/schema.ts';
import { resolveTtl } from '../../../src/rules/ttl.ts';
import type { ObjectSummary } from '../../../src/rules/types.ts';
import { jobSummary } from '../../fixtures/object-summary.ts';

const RUNS = 10_000;

interface P {
  kind?: PolicyKind;
  name: string;
  namespace?: string;
  resources?: Array<Record<string, unknown>>;
  selector?: unknown;
  namespaceSelector?: unknown;
  priority?: number;
  ttl?: string;
  ttlSucceeded?: string;
  ttlFailed?: string;
  extra?: Record<string, unknown>;
}

let uidSeq = 0;
function policy(p: P): Policy {
  const kind = p.kind ?? (p.namespace ? 'TTLPolicy' : 'ClusterTTLPolicy');
  const r = parsePolicy({
    apiVersion: 'kttl.dev/v1alpha1',
    kind,
    metadata: { name: p.name, namespace: p.namespace, uid: `uid-${++uidSeq}` },
    spec: {
      resources: p.resources ?? [{ apiVersion: 'batch/v1', kind: 'Job' }],
      selector: p.selector,
      namespaceSelector: p.namespaceSelector,
      priority: p.priority,
      ttl: p.ttl,
      ttlSucceeded: p.ttlSucceeded,
      ttlFailed: p.ttlFailed,
      ...p.extra,
    },
  });
  if (r.ok) return r.policy;
  if (r.holding) return r.holding;
  throw new Error(`bad test policy: ${r.errors.join('; ')}`);
}

function obj(o: Partial<ObjectSummary> = {}): ObjectSummary {
  return jobSummary({ namespace: 'team-a', ...o });
}

const NS_LABELS: Record<string, Record<string, string>> = {
  'team-a': { team: 'a', env: 'prod' },
  'team-b': { team: 'b', env: 'dev' },
  bare: {},
};
const nsLabels = (ns: string) => NS_LABELS[ns];

describe('matchPolicies', () => {
  // [name, object overrides, policy, expected match]
  const cases: Array<[string, Partial<ObjectSummary>, P, boolean]> = [
    ['cluster policy, no selectors: any namespace', { namespace: 'team-b' }, { name: 'c' }, true],
    ['kind and group match', {}, { name: 'c' }, true],
    ['other version of the same group/kind matches', { apiVersion: 'batch/v1beta1' }, { name: 'c' }, true],
    ['other kind', { kind: 'CronJob' }, { name: 'c' }, false],
    ['same kind, other group', { apiVersion: 'x.io/v1' }, { name: 'c' }, false],
    ['kind is case-sensitive', { kind: 'job' }, { name: 'c' }, false],
    [
      'core group: v1 Pod',
      { apiVersion: 'v1', kind: 'Pod' },
      { name: 'c', resources: [{ apiVersion: 'v1', kind: 'Pod' }] },
      true,
    ],
    [
      'core Pod is not a Pod of another group',
      { apiVersion: 'x.io/v1', kind: 'Pod' },
      { name: 'c', resources: [{ apiVersion: 'v1', kind: 'Pod' }] },
      false,
    ],
    [
      'second resources entry',
      { apiVersion: 'x.io/v2', kind: 'Build' },
      {
        name: 'c',
        resources: [
          { apiVersion: 'batch/v1', kind: 'Job' },
          { apiVersion: 'x.io/v1', kind: 'Build' },
        ],
      },
      true,
    ],
    ['namespaced policy: own namespace', {}, { name: 'n', namespace: 'team-a' }, true],
    [
      'namespaced policy: other namespace',
      { namespace: 'team-b' },
      { name: 'n', namespace: 'team-a' },
      false,
    ],
    [
      'namespaced policy: cluster-scoped object',
      { namespace: '', apiVersion: 'x.io/v1', kind: 'Thing' },
      { name: 'n', namespace: 'team-a', resources: [{ apiVersion: 'x.io/v1', kind: 'Thing' }] },
      false,
    ],
    [
      'selector matches',
      { labels: { app: 'x' } },
      { name: 'c', selector: { matchLabels: { app: 'x' } } },
      true,
    ],
    [
      'selector does not match',
      { labels: { app: 'y' } },
      { name: 'c', selector: { matchLabels: { app: 'x' } } },
      false,
    ],
    [
      'namespaced policy with selector',
      { labels: { app: 'x' } },
      {
        name: 'n',
        namespace: 'team-a',
        selector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] },
      },
      true,
    ],
    [
      'namespaceSelector matches the namespace labels',
      { namespace: 'team-a' },
      { name: 'c', namespaceSelector: { matchLabels: { env: 'prod' } } },
      true,
    ],
    [
      'namespaceSelector does not match',
      { namespace: 'team-b' },
      { name: 'c', namespaceSelector: { matchLabels: { env: 'prod' } } },
      false,
    ],
    [
      'namespaceSelector NotIn on a namespace without the label',
      { namespace: 'bare' },
      {
        name: 'c',
        namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
      },
      true,
    ],
    [
      'namespaceSelector: unknown namespace does not match',
      { namespace: 'ghost' },
      { name: 'c', namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] } },
      false,
    ],
    [
      'empty namespaceSelector: unknown namespace matches',
      { namespace: 'ghost' },
      { name: 'c', namespaceSelector: {} },
      true,
    ],
    [
      'namespaceSelector: cluster-scoped object never matches',
      { namespace: '', apiVersion: 'x.io/v1', kind: 'Thing' },
      {
        name: 'c',
        resources: [{ apiVersion: 'x.io/v1', kind: 'Thing' }],
        namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] },
      },
      false,
    ],
    [
      'no namespaceSelector: cluster-scoped object matches',
      { namespace: '', apiVersion: 'x.io/v1', kind: 'Thing' },
      { name: 'c', resources: [{ apiVersion: 'x.io/v1', kind: 'Thing' }] },
      true,
    ],
    [
      'namespaceSelector AND selector: both hold',
      { namespace: 'team-a', labels: { app: 'x' } },
      {
        name: 'c',
        namespaceSelector: { matchLabels: { team: 'a' } },
        selector: { matchLabels: { app: 'x' } },
      },
      true,
    ],
    [
      'namespaceSelector AND selector: selector fails',
      { namespace: 'team-a', labels: { app: 'y' } },
      {
        name: 'c',
        namespaceSelector: { matchLabels: { team: 'a' } },
        selector: { matchLabels: { app: 'x' } },
      },
      false,
    ],
    [
      'namespaceSelector is on namespace labels, not object labels',
      { namespace: 'team-b', labels: { team: 'a' } },
      { name: 'c', namespaceSelector: { matchLabels: { team: 'a' } } },
      false,
    ],
  ];
  for (const [name, o, p, want] of cases) {
    test(name, () => {
      const pol = policy(p);
      const got = matchPolicies(obj(o), [pol], nsLabels);
      assert.equal(got.length === 1, want, String(mismatch(obj(o), pol, nsLabels)));
      // mismatch explains exactly the non-matches.
      assert.equal(mismatch(obj(o), pol, nsLabels) === null, want);
    });
  }

  test('keeps the input order and drops non-matches', () => {
    const a = policy({ name: 'a' });
    const b = policy({ name: 'b', namespace: 'team-b' });
    const c = policy({ name: 'c', namespace: 'team-a' });
    assert.deepEqual(
      matchPolicies(obj(), [a, b, c], nsLabels).map((p) => p.ref),
      ['ClusterTTLPolicy/a', 'TTLPolicy/team-a/c'],
    );
  });
});

describe('choosePolicy', () => {
  test('no candidates', () => {
    assert.deepEqual(choosePolicy([]), { winner: null, ranked: [] });
  });

  test('one candidate', () => {
    const p = policy({ name: 'only' });
    const r = choosePolicy([p]);
    assert.equal(r.winner, p);
    assert.equal(r.ranked[0]?.reason, 'chosen: the only matching policy (ClusterTTLPolicy, priority 0)');
  });

  // [name, candidates, expected order (refs), expected reasons]
  const cases: Array<[string, P[], string[], string[]]> = [
    [
      'namespaced beats cluster, even with a lower priority',
      [
        { name: 'c', priority: 100 },
        { name: 'n', namespace: 'team-a', priority: -1 },
      ],
      ['TTLPolicy/team-a/n', 'ClusterTTLPolicy/c'],
      [
        'chosen: most specific of 2 matching policies (namespaced TTLPolicy, priority -1)',
        'below TTLPolicy/team-a/n: a namespaced policy beats a cluster policy',
      ],
    ],
    [
      'higher priority wins within a scope',
      [
        { name: 'a', priority: 1 },
        { name: 'b', priority: 5 },
        { name: 'c', priority: -3 },
      ],
      ['ClusterTTLPolicy/b', 'ClusterTTLPolicy/a', 'ClusterTTLPolicy/c'],
      [
        'chosen: most specific of 3 matching policies (ClusterTTLPolicy, priority 5)',
        'below ClusterTTLPolicy/b: lower priority (1 < 5)',
        'below ClusterTTLPolicy/a: lower priority (-3 < 1)',
      ],
    ],
    [
      'same priority: name ascending (code-unit order: upper case before lower case)',
      [{ name: 'b' }, { name: 'a' }, { name: 'B' }, { name: 'a-2' }],
      ['ClusterTTLPolicy/B', 'ClusterTTLPolicy/a', 'ClusterTTLPolicy/a-2', 'ClusterTTLPolicy/b'],
      [
        'chosen: most specific of 4 matching policies (ClusterTTLPolicy, priority 0)',
        'below ClusterTTLPolicy/B: same scope and priority (0); name "a" sorts after "B"',
        'below ClusterTTLPolicy/a: same scope and priority (0); name "a-2" sorts after "a"',
        'below ClusterTTLPolicy/a-2: same scope and priority (0); name "b" sorts after "a-2"',
      ],
    ],
    [
      'scope, then priority, then name',
      [
        { name: 'z', priority: 1 },
        { name: 'y', namespace: 'team-a' },
        { name: 'x', namespace: 'team-a', priority: 2 },
        { name: 'a', priority: 1 },
      ],
      ['TTLPolicy/team-a/x', 'TTLPolicy/team-a/y', 'ClusterTTLPolicy/a', 'ClusterTTLPolicy/z'],
      [
        'chosen: most specific of 4 matching policies (namespaced TTLPolicy, priority 2)',
        'below TTLPolicy/team-a/x: lower priority (0 < 2)',
        'below TTLPolicy/team-a/y: a namespaced policy beats a cluster policy',
        'below ClusterTTLPolicy/a: same scope and priority (1); name "z" sorts after "a"',
      ],
    ],
    [
      'a namespaced and a cluster policy of one name',
      [{ name: 'same' }, { name: 'same', namespace: 'team-a' }],
      ['TTLPolicy/team-a/same', 'ClusterTTLPolicy/same'],
      [
        'chosen: most specific of 2 matching policies (namespaced TTLPolicy, priority 0)',
        'below TTLPolicy/team-a/same: a namespaced policy beats a cluster policy',
      ],
    ],
  ];
  for (const [name, ps, order, reasons] of cases) {
    test(name, () => {
      const r = choosePolicy(ps.map(policy));
      assert.deepEqual(
        r.ranked.map((x) => x.policy.ref),
        order,
      );
      assert.equal(r.winner?.ref, order[0]);
      assert.deepEqual(
        r.ranked.map((x) => x.reason),
        reasons,
      );
    });
  }

  test('an invalid (holding) winner says that its objects are kept', () => {
    const bad = policy({ name: 'bad', namespace: 'team-a', ttl: '0.5s' });
    assert.ok(bad.invalid);
    const r = choosePolicy([policy({ name: 'ok', ttl: '1h' }), bad]);
    assert.equal(r.winner, bad);
    assert.match(r.ranked[0]!.reason, /TTL values are invalid, so matching objects are kept/);
    // And resolveTtl turns its bad value into an 'invalid' decision: kept, never handed to "ok".
    const d = resolveTtl(obj(), 'succeeded', { policy: toPolicyTtl(bad), helmHooks: true });
    assert.equal(d.action, 'invalid');
    assert.ok(d.action === 'invalid' && d.message.includes('TTLPolicy/team-a/bad'));
  });
});

describe('choosePolicy properties', () => {
  const policyArb = fc
    .record({
      namespaced: fc.boolean(),
      name: fc.constantFrom('a', 'b', 'c', 'B', 'a-1', 'z'),
      priority: fc.integer({ min: -3, max: 3 }),
    })
    .map((x) =>
      policy({ name: x.name, namespace: x.namespaced ? 'team-a' : undefined, priority: x.priority }),
    );
  const candidatesArb = fc.array(policyArb, { maxLength: 8 });

  test('deterministic and order-independent: any shuffle gives the same winner and ranking', () => {
    fc.assert(
      fc.property(
        candidatesArb.chain((ps) =>
          fc.tuple(fc.constant(ps), fc.shuffledSubarray(ps, { minLength: ps.length })),
        ),
        ([ps, shuffled]) => {
          const a = choosePolicy(ps);
          const b = choosePolicy(shuffled);
          const again = choosePolicy(ps);
          assert.equal(a.winner, b.winner);
          assert.deepEqual(
            a.ranked.map((x) => [x.policy.uid, x.reason]),
            b.ranked.map((x) => [x.policy.uid, x.reason]),
          );
          assert.deepEqual(a, again);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('the winner is the most specific: no candidate compares before it', () => {
    fc.assert(
      fc.property(candidatesArb, (ps) => {
        const { winner, ranked } = choosePolicy(ps);
        assert.equal(ranked.length, ps.length);
        if (ps.length === 0) return assert.equal(winner, null);
        assert.ok(winner);
        for (const p of ps) {
          assert.ok(comparePolicies(winner, p) <= 0);
          // The specificity rule, stated directly.
          if (p.scope !== winner.scope) assert.equal(winner.scope, 'namespace');
          else if (p.priority !== winner.priority) assert.ok(winner.priority > p.priority);
          else assert.ok(winner.name <= p.name);
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('comparePolicies is a total order (antisymmetric, transitive)', () => {
    fc.assert(
      fc.property(policyArb, policyArb, policyArb, (a, b, c) => {
        assert.equal(Math.sign(comparePolicies(a, b)), -Math.sign(comparePolicies(b, a)));
        if (a !== b) assert.notEqual(comparePolicies(a, b), 0);
        if (comparePolicies(a, b) <= 0 && comparePolicies(b, c) <= 0) assert.ok(comparePolicies(a, c) <= 0);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('toPolicyTtl', () => {
  test('carries the TTLs, propagation and dry-run, nothing else', () => {
    const p = policy({
      name: 'p',
      namespace: 'ns',
      ttl: '1h',
      ttlFailed: '7d',
      extra: { propagationPolicy: 'Orphan', dryRun: true },
    });
    assert.deepEqual(toPolicyTtl(p), {
      ref: 'TTLPolicy/ns/p',
      ttl: '1h',
      ttlFailed: '7d',
      propagationPolicy: 'Orphan',
      dryRun: true,
    });
    assert.deepEqual(toPolicyTtl(policy({ name: 'q' })), { ref: 'ClusterTTLPolicy/q', dryRun: false });
  });

  test('resolveTtl reads it: outcome-specific over ttl', () => {
    const p = toPolicyTtl(policy({ name: 'p', ttl: '1h', ttlFailed: '7d' }));
    const failed = resolveTtl(obj(), 'failed', { policy: p, helmHooks: true });
    const succeeded = resolveTtl(obj(), 'succeeded', { policy: p, helmHooks: true });
    assert.ok(failed.action === 'ttl' && failed.seconds === 7 * 86400 && failed.source === 'policy');
    assert.ok(succeeded.action === 'ttl' && succeeded.seconds === 3600);
  });
});

describe('finish rules are scoped like TTLs', () => {
  const build = (name: string, type: string, ns?: string, priority?: number, selector?: unknown) =>
    policy({
      name,
      namespace: ns,
      priority,
      selector,
      resources: [
        { apiVersion: 'x.io/v1', kind: 'Build', finished: { succeeded: { condition: { type } } } },
        { apiVersion: 'batch/v1', kind: 'Job' },
      ],
    });
  const buildObj = (o: Partial<ObjectSummary> = {}) => obj({ apiVersion: 'x.io/v1', kind: 'Build', ...o });
  const noLabels = () => undefined;

  test('finishRulesOf: the distinct rules of a kind, whatever the version or key order', () => {
    assert.deepEqual(finishRulesOf('x.io/v1', 'Build', []), []);
    assert.deepEqual(finishRulesOf('batch/v1', 'Job', [build('a', 'Done')]), []);
    const rules = finishRulesOf('x.io/v1beta1', 'Build', [
      build('a', 'Done'),
      build('b', 'Done'),
      build('c', 'Other'),
    ]);
    assert.equal(rules.length, 2);
    assert.equal(
      finishRuleKey({ succeeded: { condition: { type: 'T', status: 'True' } } }),
      finishRuleKey({ succeeded: { condition: { status: 'True', type: 'T' } } }),
    );
  });

  test("a TTLPolicy's rule judges only objects in its namespace that it selects", () => {
    const evil = build('evil', 'Anything', 'evil', 0, { matchLabels: { none: 'x' } });
    // The reproduced hole: another namespace, or its own namespace unselected: the built-in rule.
    assert.deepEqual(chooseFinishRule(buildObj({ namespace: 'team-a' }), [evil], noLabels), {
      kind: 'builtin',
    });
    assert.deepEqual(chooseFinishRule(buildObj({ namespace: 'evil' }), [evil], noLabels), {
      kind: 'builtin',
    });
    const own = chooseFinishRule(buildObj({ namespace: 'evil', labels: { none: 'x' } }), [evil], noLabels);
    assert.equal(own.kind, 'policy');
  });

  test('different rules selecting one object conflict (kept); equal rules do not', () => {
    const c = chooseFinishRule(buildObj(), [build('a', 'Done'), build('n', 'Other', 'team-a')], noLabels);
    assert.equal(c.kind, 'conflict');
    assert.ok(c.kind === 'conflict' && c.refs.length === 2 && /conflicting finish rules/.test(c.reason));
    const same = chooseFinishRule(buildObj(), [build('a', 'Done'), build('n', 'Done', 'team-a')], noLabels);
    assert.ok(same.kind === 'policy' && same.refs.length === 2);
  });

  test('a rule whose namespaceSelector cannot be judged yet makes the choice unknown', () => {
    const p = policy({
      name: 'c',
      namespaceSelector: { matchLabels: { team: 'a' } },
      resources: [
        { apiVersion: 'x.io/v1', kind: 'Build', finished: { succeeded: { condition: { type: 'X' } } } },
      ],
    });
    assert.equal(chooseFinishRule(buildObj({ namespace: 'new-ns' }), [p], noLabels).kind, 'unknown');
    assert.equal(selection(buildObj({ namespace: 'new-ns' }), p, noLabels).state, 'unknown');
  });

  test('property: a TTLPolicy rule never applies outside its namespace or selection', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('team-a', 'team-b', 'evil'),
        fc.constantFrom('team-a', 'team-b', 'evil'),
        fc.dictionary(fc.constantFrom('app', 'team'), fc.constantFrom('x', 'y'), { maxKeys: 2 }),
        fc.dictionary(fc.constantFrom('app', 'team'), fc.constantFrom('x', 'y'), { maxKeys: 2 }),
        (policyNs, objNs, want, labels) => {
          const p = build('p', 'Done', policyNs, 0, { matchLabels: want });
          const o = buildObj({ namespace: objNs, labels });
          const c = chooseFinishRule(o, [p], noLabels);
          const selects = policyNs === objNs && Object.entries(want).every(([k, v]) => labels[k] === v);
          assert.equal(c.kind, selects ? 'policy' : 'builtin');
        },
      ),
      { numRuns: 2000 },
    );
  });
});
