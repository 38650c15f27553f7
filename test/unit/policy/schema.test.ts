import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type PolicyKind, parsePolicy } from '../../../src/policy/schema.ts';

const RUNS = 10_000;

type Raw = Record<string, unknown>;

function raw(kind: PolicyKind, spec: Raw, meta: Raw = {}): Raw {
  return {
    apiVersion: 'kttl.dev/v1alpha1',
    kind,
    metadata: {
      name: 'p',
      uid: 'uid-1',
      generation: 3,
      ...(kind === 'TTLPolicy' ? { namespace: 'team-a' } : {}),
      ...meta,
    },
    spec,
  };
}

const JOBS = [{ apiVersion: 'batch/v1', kind: 'Job' }];

function errorsOf(r: ReturnType<typeof parsePolicy>): string[] {
  assert.equal(r.ok, false, 'expected errors');
  return r.ok ? [] : r.errors;
}

describe('parsePolicy: valid', () => {
  test('the example of docs/policies.md', () => {
    const r = parsePolicy(
      raw('TTLPolicy', {
        resources: [
          { apiVersion: 'batch/v1', kind: 'Job' },
          {
            apiVersion: 'example.com/v1',
            kind: 'Build',
            finished: {
              succeeded: { condition: { type: 'Succeeded', status: 'True' } },
              failed: { field: '.status.phase', values: ['Failed', 'Error'] },
            },
          },
        ],
        selector: { matchLabels: { team: 'a' } },
        ttl: '1h',
        ttlSucceeded: '10m',
        ttlFailed: '7d',
        propagationPolicy: 'Background',
        dryRun: false,
        priority: 0,
        enforce: 'none',
      }),
    );
    assert.ok(r.ok, JSON.stringify(r));
    const p = r.policy;
    assert.equal(p.ref, 'TTLPolicy/team-a/p');
    assert.equal(p.scope, 'namespace');
    assert.equal(p.namespace, 'team-a');
    assert.equal(p.uid, 'uid-1');
    assert.equal(p.generation, 3);
    assert.deepEqual(
      p.resources.map((x) => [x.group, x.kind]),
      [
        ['batch', 'Job'],
        ['example.com', 'Build'],
      ],
    );
    assert.deepEqual(p.resources[1]?.finished, {
      succeeded: { condition: { type: 'Succeeded', status: 'True' } },
      failed: { field: '.status.phase', values: ['Failed', 'Error'] },
    });
    assert.deepEqual({ ...p.selector?.matchLabels }, { team: 'a' });
    assert.deepEqual([p.ttl, p.ttlSucceeded, p.ttlFailed], ['1h', '10m', '7d']);
    assert.equal(p.propagationPolicy, 'Background');
    assert.equal(p.invalid, undefined);
    assert.ok(
      Object.isFrozen(p) && Object.isFrozen(p.resources) && Object.isFrozen(p.resources[1]?.finished),
    );
  });

  test('defaults: dryRun false, priority 0, enforce none; optional fields absent', () => {
    const r = parsePolicy(raw('ClusterTTLPolicy', { resources: JOBS }));
    assert.ok(r.ok);
    assert.equal(r.policy.ref, 'ClusterTTLPolicy/p');
    assert.equal(r.policy.scope, 'cluster');
    assert.equal(r.policy.namespace, undefined);
    assert.equal(r.policy.dryRun, false);
    assert.equal(r.policy.priority, 0);
    assert.equal(r.policy.enforce, 'none');
    for (const k of [
      'ttl',
      'ttlSucceeded',
      'ttlFailed',
      'propagationPolicy',
      'selector',
      'namespaceSelector',
    ]) {
      assert.ok(!(k in r.policy), k);
    }
  });

  test('nulls mean absent; unknown fields are ignored', () => {
    const r = parsePolicy(
      raw('ClusterTTLPolicy', {
        resources: JOBS,
        ttl: null,
        selector: null,
        extra: { a: 1 },
        priority: null,
      }),
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.policy.ttl, undefined);
  });

  test('ClusterTTLPolicy namespaceSelector; kind taken from the hint when the object has none', () => {
    const { kind: _k, ...noKind } = raw('ClusterTTLPolicy', {
      resources: JOBS,
      namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] },
      priority: -5,
      enforce: 'max',
      dryRun: true,
    });
    const r = parsePolicy(noKind, 'ClusterTTLPolicy');
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.policy.namespaceSelector?.matchExpressions, [
      { key: 'env', operator: 'In', values: ['dev'] },
    ]);
    assert.equal(r.policy.priority, -5);
    assert.equal(r.policy.enforce, 'max');
    assert.equal(r.policy.dryRun, true);
  });

  test('core group kinds and a condition matcher without status', () => {
    const r = parsePolicy(
      raw('ClusterTTLPolicy', {
        resources: [
          { apiVersion: 'v1', kind: 'Pod' },
          { apiVersion: 'tekton.dev/v1', kind: 'TaskRun' },
          {
            apiVersion: 'x.io/v2beta1',
            kind: 'Thing',
            finished: { failed: { condition: { type: 'Broken' } } },
          },
        ],
      }),
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.policy.resources[0]?.group, '');
    assert.deepEqual(r.policy.resources[2]?.finished, { failed: { condition: { type: 'Broken' } } });
  });
});

describe('parsePolicy: invalid', () => {
  // [name, kind, spec, metadata overrides, an expected error fragment]
  const cases: Array<[string, PolicyKind, Raw, Raw, string]> = [
    ['no resources', 'TTLPolicy', {}, {}, 'spec.resources: is required'],
    ['empty resources', 'TTLPolicy', { resources: [] }, {}, 'spec.resources: must name at least one kind'],
    [
      'resource without kind',
      'TTLPolicy',
      { resources: [{ apiVersion: 'batch/v1' }] },
      {},
      'spec.resources[0].kind: is required',
    ],
    [
      'bad apiVersion',
      'TTLPolicy',
      { resources: [{ apiVersion: 'batch/v1/x', kind: 'Job' }] },
      {},
      'spec.resources[0].apiVersion: must be "group/version"',
    ],
    [
      'bad kind',
      'TTLPolicy',
      { resources: [{ apiVersion: 'v1', kind: 'pod s' }] },
      {},
      'spec.resources[0].kind: must be a kind name',
    ],
    [
      'one kind twice under two versions',
      'TTLPolicy',
      {
        resources: [
          { apiVersion: 'x.io/v1', kind: 'A' },
          { apiVersion: 'x.io/v2', kind: 'A' },
        ],
      },
      {},
      'spec.resources[1]: A in group "x.io" is already listed at spec.resources[0]',
    ],
    [
      'duration with spaces',
      'TTLPolicy',
      { resources: JOBS, ttl: '5 minutes' },
      {},
      'spec.ttl: invalid duration "5 minutes": must not contain spaces',
    ],
    [
      'negative',
      'TTLPolicy',
      { resources: JOBS, ttlFailed: '-1h' },
      {},
      'spec.ttlFailed: invalid duration "-1h": must not be negative',
    ],
    [
      'unit-less',
      'TTLPolicy',
      { resources: JOBS, ttlSucceeded: '90' },
      {},
      'spec.ttlSucceeded: invalid duration "90": missing unit',
    ],
    ['overflow', 'TTLPolicy', { resources: JOBS, ttl: '3551w' }, {}, 'longer than the maximum'],
    [
      'ttl not a string',
      'TTLPolicy',
      { resources: JOBS, ttl: 3600 },
      {},
      'spec.ttl: expected string, received number',
    ],
    [
      'unknown propagationPolicy',
      'TTLPolicy',
      { resources: JOBS, propagationPolicy: 'Cascade' },
      {},
      'spec.propagationPolicy: Invalid option',
    ],
    ['priority fraction', 'TTLPolicy', { resources: JOBS, priority: 1.5 }, {}, 'spec.priority'],
    ['priority out of int32', 'TTLPolicy', { resources: JOBS, priority: 2 ** 31 }, {}, 'spec.priority'],
    ['unknown enforce', 'TTLPolicy', { resources: JOBS, enforce: 'min' }, {}, 'spec.enforce'],
    ['dryRun string', 'TTLPolicy', { resources: JOBS, dryRun: 'true' }, {}, 'spec.dryRun: expected boolean'],
    [
      'matcher with both condition and field',
      'TTLPolicy',
      {
        resources: [
          {
            apiVersion: 'x.io/v1',
            kind: 'A',
            finished: { failed: { condition: { type: 'F' }, field: '.s', values: ['x'] } },
          },
        ],
      },
      {},
      'spec.resources[0].finished.failed: needs exactly one of condition or field',
    ],
    [
      'matcher with neither',
      'TTLPolicy',
      { resources: [{ apiVersion: 'x.io/v1', kind: 'A', finished: { failed: {} } }] },
      {},
      'needs exactly one of condition or field',
    ],
    [
      'bad field path',
      'TTLPolicy',
      {
        resources: [
          {
            apiVersion: 'x.io/v1',
            kind: 'A',
            finished: { failed: { field: 'status.phase', values: ['F'] } },
          },
        ],
      },
      {},
      'spec.resources[0].finished.failed.field: invalid field path "status.phase": must start with "."',
    ],
    [
      'field without values',
      'TTLPolicy',
      { resources: [{ apiVersion: 'x.io/v1', kind: 'A', finished: { failed: { field: '.status.phase' } } }] },
      {},
      'spec.resources[0].finished.failed.values must not be empty',
    ],
    [
      'finished with no outcome',
      'TTLPolicy',
      { resources: [{ apiVersion: 'x.io/v1', kind: 'A', finished: { timeField: '.status.t' } }] },
      {},
      'spec.resources[0].finished: finish rule has neither succeeded nor failed',
    ],
    [
      'bad timeField',
      'TTLPolicy',
      {
        resources: [
          {
            apiVersion: 'x.io/v1',
            kind: 'A',
            finished: { failed: { condition: { type: 'F' } }, timeField: '.a..b' },
          },
        ],
      },
      {},
      'spec.resources[0].finished.timeField: invalid field path ".a..b": empty segment',
    ],
    [
      'bad condition status',
      'TTLPolicy',
      {
        resources: [
          {
            apiVersion: 'x.io/v1',
            kind: 'A',
            finished: { failed: { condition: { type: 'F', status: 'yes' } } },
          },
        ],
      },
      {},
      'spec.resources[0].finished.failed.condition.status',
    ],
    [
      'finished for a Job',
      'TTLPolicy',
      {
        resources: [
          { apiVersion: 'batch/v1', kind: 'Job', finished: { failed: { condition: { type: 'F' } } } },
        ],
      },
      {},
      'spec.resources[0].finished: not allowed for batch Job',
    ],
    [
      'bad selector',
      'TTLPolicy',
      { resources: JOBS, selector: { matchLabels: { 'a b': 'x' } } },
      {},
      'spec.selector.matchLabels["a b"]: invalid label key',
    ],
    [
      'namespaceSelector on a TTLPolicy',
      'TTLPolicy',
      { resources: JOBS, namespaceSelector: {} },
      {},
      'spec.namespaceSelector: only a ClusterTTLPolicy has one',
    ],
    [
      'bad namespaceSelector',
      'ClusterTTLPolicy',
      { resources: JOBS, namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } },
      {},
      'spec.namespaceSelector.matchExpressions[0].values: must not be empty for operator In',
    ],
    [
      'TTLPolicy without namespace',
      'TTLPolicy',
      { resources: JOBS },
      { namespace: undefined },
      'metadata.namespace: is required',
    ],
    [
      'ClusterTTLPolicy with namespace',
      'ClusterTTLPolicy',
      { resources: JOBS },
      { namespace: 'x' },
      'metadata.namespace: must be empty',
    ],
    ['no name', 'TTLPolicy', { resources: JOBS }, { name: undefined }, 'metadata.name: is required'],
    ['no uid', 'TTLPolicy', { resources: JOBS }, { uid: '' }, 'metadata.uid: must not be empty'],
  ];
  for (const [name, kind, spec, meta, fragment] of cases) {
    test(name, () => {
      const errors = errorsOf(parsePolicy(raw(kind, spec, meta)));
      assert.ok(
        errors.some((e) => e.includes(fragment)),
        `${JSON.stringify(errors)} lacks ${JSON.stringify(fragment)}`,
      );
      for (const e of errors) assert.ok(!e.includes('\n') && e.length <= 301, `one line: ${e}`);
    });
  }

  test('wrong kinds and shapes', () => {
    assert.deepEqual(errorsOf(parsePolicy(null)), ['expected object, received null']);
    assert.deepEqual(errorsOf(parsePolicy({ ...raw('TTLPolicy', { resources: JOBS }), kind: 'Job' })), [
      'kind: "Job" is not TTLPolicy or ClusterTTLPolicy',
    ]);
    assert.deepEqual(errorsOf(parsePolicy(raw('TTLPolicy', { resources: JOBS }), 'ClusterTTLPolicy')), [
      'kind: TTLPolicy where ClusterTTLPolicy was expected',
    ]);
    const { kind: _k, ...noKind } = raw('TTLPolicy', { resources: JOBS });
    assert.deepEqual(errorsOf(parsePolicy(noKind)), ['kind: is required (TTLPolicy or ClusterTTLPolicy)']);
    assert.ok(
      errorsOf(
        parsePolicy({ ...raw('TTLPolicy', { resources: JOBS }), apiVersion: 'batch/v1' }),
      )[0]?.includes('is not in group kttl.dev'),
    );
  });

  test('only bad TTL values: the policy is still returned, to hold its objects', () => {
    const r = parsePolicy(
      raw('TTLPolicy', {
        resources: JOBS,
        ttl: '1h',
        ttlFailed: '0.5s',
        selector: { matchLabels: { a: 'b' } },
      }),
    );
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.errors, ['spec.ttlFailed: invalid duration "0.5s": not a whole number of seconds']);
    assert.ok(r.holding);
    assert.equal(r.holding.ttlFailed, '0.5s', 'the bad value is passed on, so resolveTtl reports it');
    assert.deepEqual(r.holding.invalid, r.errors);
    assert.deepEqual({ ...r.holding.selector?.matchLabels }, { a: 'b' });
  });

  test('any other error: no holding policy, and every error is listed', () => {
    const r = parsePolicy(
      raw('TTLPolicy', { resources: JOBS, ttl: 'x', selector: { matchLabels: { 'a b': 'c' } } }),
    );
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.holding, undefined);
    assert.equal(r.errors.length, 2);
  });

  test('many errors are capped', () => {
    const resources = Array.from({ length: 40 }, (_, i) => ({ apiVersion: 'v1', kind: `bad kind ${i}` }));
    const errors = errorsOf(parsePolicy(raw('TTLPolicy', { resources })));
    assert.equal(errors.length, 21);
    assert.equal(errors[20], '… and 20 more errors');
  });
});

describe('parsePolicy never throws', () => {
  function check(value: unknown): void {
    const r = parsePolicy(value);
    if (r.ok) {
      assert.equal(typeof r.policy.ref, 'string');
    } else {
      assert.ok(r.errors.length > 0);
      for (const e of r.errors) assert.equal(typeof e, 'string');
    }
  }

  test('arbitrary JSON', () => {
    fc.assert(fc.property(fc.jsonValue(), check), { numRuns: RUNS });
  });

  test('arbitrary values (incl. prototype-named keys, undefined, symbols)', () => {
    fc.assert(fc.property(fc.anything({ withObjectString: true, withNullPrototype: true }), check), {
      numRuns: RUNS,
    });
  });

  // Well-formed policies, then the same with one value anywhere in the tree replaced by junk: the
  // property explores near-valid input, where a validator is most likely to trip.
  const labelKey = fc.constantFrom('a', 'b', 'x.io/c');
  const labelValue = fc.constantFrom('1', '2', '');
  const selectorArb = fc.record(
    {
      matchLabels: fc.dictionary(labelKey, labelValue, { maxKeys: 2 }),
      matchExpressions: fc.array(
        fc.oneof(
          fc.record({
            key: labelKey,
            operator: fc.constantFrom('In', 'NotIn'),
            values: fc.array(labelValue, { minLength: 1, maxLength: 2 }),
          }),
          fc.record({ key: labelKey, operator: fc.constantFrom('Exists', 'DoesNotExist') }),
        ),
        { maxLength: 2 },
      ),
    },
    { requiredKeys: [] },
  );
  const matcherArb = fc.oneof(
    fc.record({
      condition: fc.record(
        { type: fc.constantFrom('Done', 'Failed'), status: fc.constantFrom('True', 'False') },
        { requiredKeys: ['type'] },
      ),
    }),
    fc.record({
      field: fc.constantFrom('.status.phase', '.status.a-b.c_d'),
      values: fc.array(fc.string(), { minLength: 1, maxLength: 2 }),
    }),
  );
  const resourcesArb = fc
    .uniqueArray(fc.constantFrom('x.io/A', 'x.io/B', 'y.io/A', 'batch/Job', '/Pod'), {
      minLength: 1,
      maxLength: 4,
    })
    .chain((keys) =>
      fc.tuple(
        ...keys.map((k) => {
          const [group, kind] = k.split('/') as [string, string];
          const apiVersion = group === '' ? 'v1' : `${group}/v1`;
          if (group === 'batch' || group === '') return fc.constant({ apiVersion, kind });
          return fc.record(
            {
              apiVersion: fc.constant(apiVersion),
              kind: fc.constant(kind),
              finished: fc.record(
                { succeeded: matcherArb, failed: matcherArb, timeField: fc.constant('.status.t') },
                { requiredKeys: ['failed'] },
              ),
            },
            { requiredKeys: ['apiVersion', 'kind'] },
          );
        }),
      ),
    );
  const durationArb = fc.oneof(
    fc.constantFrom('0', '1h30m', '4d', '2w', '.5m'),
    fc.nat({ max: 2147483647 }).map((n) => `${n}s`),
  );
  const validPolicyArb = fc.constantFrom<PolicyKind>('TTLPolicy', 'ClusterTTLPolicy').chain((kind) =>
    fc.record({
      apiVersion: fc.constant('kttl.dev/v1alpha1'),
      kind: fc.constant(kind),
      metadata: fc.record({
        name: fc.constantFrom('p', 'q'),
        uid: fc.uuid(),
        generation: fc.nat(),
        ...(kind === 'TTLPolicy' ? { namespace: fc.constantFrom('ns-a', 'ns-b') } : {}),
      }),
      spec: fc.record(
        {
          resources: resourcesArb,
          selector: selectorArb,
          ...(kind === 'ClusterTTLPolicy' ? { namespaceSelector: selectorArb } : {}),
          ttl: durationArb,
          ttlSucceeded: durationArb,
          ttlFailed: durationArb,
          propagationPolicy: fc.constantFrom('Foreground', 'Background', 'Orphan'),
          dryRun: fc.boolean(),
          priority: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
          enforce: fc.constantFrom('none', 'max'),
        },
        { requiredKeys: ['resources'] },
      ),
    }),
  );

  test('generated well-formed policies are valid', () => {
    fc.assert(
      fc.property(validPolicyArb, (p) => {
        const r = parsePolicy(p);
        assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
        assert.equal(r.policy.kind, p.kind);
        assert.equal(r.policy.resources.length, (p.spec.resources as unknown[]).length);
      }),
      { numRuns: RUNS },
    );
  });

  /** Every path to a value in a JSON tree. */
  function paths(v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
    const out = [prefix];
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) out.push(...paths(x, [...prefix, i]));
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
    }
    return out;
  }

  function replaced(v: unknown, path: Array<string | number>, junk: unknown): unknown {
    if (path.length === 0) return junk;
    const [head, ...rest] = path as [string | number, ...Array<string | number>];
    const copy = (Array.isArray(v) ? [...v] : { ...(v as object) }) as Record<string | number, unknown>;
    copy[head] = replaced(copy[head], rest, junk);
    return copy;
  }

  test('one value anywhere replaced by arbitrary JSON (or removed)', () => {
    const junk = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constant(undefined),
      fc.constantFrom('__proto__', -1, 1e308, ''),
    );
    let valid = 0;
    fc.assert(
      fc.property(validPolicyArb, fc.nat(), junk, (p, pick, j) => {
        const all = paths(p);
        const mutated = replaced(p, all[pick % all.length]!, j);
        check(mutated);
        if (parsePolicy(mutated).ok) valid++;
      }),
      { numRuns: RUNS },
    );
    // Both regions are reached: some mutations are harmless, most are caught.
    assert.ok(valid > RUNS / 100 && valid < RUNS, `${valid} of ${RUNS} mutated policies were valid`);
  });
});
