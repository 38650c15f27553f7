import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  formatLabelSelector,
  type LabelSelector,
  type LabelSelectorRequirement,
  labelKeyError,
  labelValueError,
  matchesLabelSelector,
  validateLabelSelector,
} from '../../../src/policy/selectors.ts';

const RUNS = 10_000;

describe('matchesLabelSelector', () => {
  const labels = { team: 'a', env: 'prod', 'example.com/tier': 'gold' };
  // [name, selector, expected match against `labels`]
  const cases: Array<[string, LabelSelector | undefined, boolean]> = [
    ['absent selector matches everything', undefined, true],
    ['empty selector matches everything', {}, true],
    ['empty lists match everything', { matchLabels: {}, matchExpressions: [] }, true],
    ['matchLabels equal', { matchLabels: { team: 'a' } }, true],
    ['matchLabels all pairs', { matchLabels: { team: 'a', env: 'prod' } }, true],
    ['matchLabels one pair differs', { matchLabels: { team: 'a', env: 'dev' } }, false],
    ['matchLabels key absent', { matchLabels: { owner: 'x' } }, false],
    ['matchLabels empty value vs absent key', { matchLabels: { owner: '' } }, false],
    ['prefixed key', { matchLabels: { 'example.com/tier': 'gold' } }, true],
    ['In hit', { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'prod'] }] }, true],
    ['In miss', { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] }, false],
    ['In key absent', { matchExpressions: [{ key: 'owner', operator: 'In', values: ['x'] }] }, false],
    ['NotIn hit', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, false],
    ['NotIn miss', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] }, true],
    ['NotIn key absent', { matchExpressions: [{ key: 'owner', operator: 'NotIn', values: ['x'] }] }, true],
    ['Exists present', { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, true],
    ['Exists absent', { matchExpressions: [{ key: 'owner', operator: 'Exists' }] }, false],
    ['DoesNotExist present', { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, false],
    ['DoesNotExist absent', { matchExpressions: [{ key: 'owner', operator: 'DoesNotExist' }] }, true],
    [
      'matchLabels AND matchExpressions: both hold',
      { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'env', operator: 'Exists' }] },
      true,
    ],
    [
      'matchLabels AND matchExpressions: expression fails',
      { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] },
      false,
    ],
    [
      'matchLabels AND matchExpressions: labels fail',
      { matchLabels: { team: 'b' }, matchExpressions: [{ key: 'env', operator: 'Exists' }] },
      false,
    ],
    [
      'all expressions must hold',
      {
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod'] },
          { key: 'team', operator: 'NotIn', values: ['a'] },
        ],
      },
      false,
    ],
    [
      'In with no values matches nothing',
      { matchExpressions: [{ key: 'env', operator: 'In', values: [] }] },
      false,
    ],
    [
      'NotIn with no values matches nothing (invalid upstream)',
      { matchExpressions: [{ key: 'owner', operator: 'NotIn', values: [] }] },
      false,
    ],
    [
      'unknown operator matches nothing',
      { matchExpressions: [{ key: 'env', operator: 'Gt' as never, values: ['1'] }] },
      false,
    ],
    [
      'prototype key is not a label',
      { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] },
      false,
    ],
    [
      'prototype key DoesNotExist',
      { matchExpressions: [{ key: 'toString', operator: 'DoesNotExist' }] },
      true,
    ],
    ['prototype key in matchLabels', { matchLabels: { constructor: 'x' } }, false],
  ];
  for (const [name, selector, want] of cases) {
    test(name, () => assert.equal(matchesLabelSelector(selector, labels), want));
  }

  test('empty labels: only absent-key requirements match', () => {
    assert.equal(
      matchesLabelSelector({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, {}),
      true,
    );
    assert.equal(
      matchesLabelSelector({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, {}),
      true,
    );
    assert.equal(matchesLabelSelector({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, {}), false);
    assert.equal(matchesLabelSelector({ matchLabels: { a: '' } }, {}), false);
  });
});

describe('matchesLabelSelector properties', () => {
  const key = fc.constantFrom('a', 'b', 'c', 'x.io/d');
  const value = fc.constantFrom('', '1', '2', '3');
  const labelsArb = fc.dictionary(key, value, { maxKeys: 4 });
  const values = fc.uniqueArray(value, { minLength: 1, maxLength: 3 });
  const req: fc.Arbitrary<LabelSelectorRequirement> = fc.oneof(
    fc.record({ key, operator: fc.constantFrom('In' as const, 'NotIn' as const), values }),
    fc.record({ key, operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
  );

  // The textbook definition, written independently.
  function reference(r: LabelSelectorRequirement, labels: Record<string, string>): boolean {
    const v = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
    switch (r.operator) {
      case 'In':
        return v !== undefined && (r.values ?? []).includes(v);
      case 'NotIn':
        return v === undefined || !(r.values ?? []).includes(v);
      case 'Exists':
        return v !== undefined;
      case 'DoesNotExist':
        return v === undefined;
    }
  }

  test('a selector is the conjunction of its parts', () => {
    fc.assert(
      fc.property(
        fc.dictionary(key, value, { maxKeys: 3 }),
        fc.array(req, { maxLength: 4 }),
        labelsArb,
        (ml, exprs, labels) => {
          const want =
            Object.entries(ml).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v) &&
            exprs.every((r) => reference(r, labels));
          assert.equal(matchesLabelSelector({ matchLabels: ml, matchExpressions: exprs }, labels), want);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('matchLabels {k: v} is the same as k In (v); NotIn is the negation of In; DoesNotExist of Exists', () => {
    fc.assert(
      fc.property(key, value, values, labelsArb, (k, v, vs, labels) => {
        assert.equal(
          matchesLabelSelector({ matchLabels: { [k]: v } }, labels),
          matchesLabelSelector({ matchExpressions: [{ key: k, operator: 'In', values: [v] }] }, labels),
        );
        assert.equal(
          matchesLabelSelector({ matchExpressions: [{ key: k, operator: 'NotIn', values: vs }] }, labels),
          !matchesLabelSelector({ matchExpressions: [{ key: k, operator: 'In', values: vs }] }, labels),
        );
        assert.equal(
          matchesLabelSelector({ matchExpressions: [{ key: k, operator: 'DoesNotExist' }] }, labels),
          !matchesLabelSelector({ matchExpressions: [{ key: k, operator: 'Exists' }] }, labels),
        );
      }),
      { numRuns: RUNS },
    );
  });

  test('validation never throws on arbitrary JSON, and every error is a string', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (raw) => {
        const r = validateLabelSelector(raw);
        if (!r.ok) assert.ok(r.errors.length > 0 && r.errors.every((e) => typeof e === 'string'));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('validateLabelSelector', () => {
  test('accepts a standard selector and copies it into prototype-free maps', () => {
    const r = validateLabelSelector({
      matchLabels: { team: 'a', 'app.kubernetes.io/name': 'x', empty: '' },
      matchExpressions: [
        { key: 'env', operator: 'In', values: ['a', 'b'] },
        { key: 'legacy', operator: 'DoesNotExist' },
        { key: 'x', operator: 'Exists', values: [] },
      ],
      unknownField: 1,
    });
    assert.ok(r.ok);
    assert.equal(Object.getPrototypeOf(r.selector.matchLabels), null);
    assert.deepEqual({ ...r.selector.matchLabels }, { team: 'a', 'app.kubernetes.io/name': 'x', empty: '' });
    assert.deepEqual(r.selector.matchExpressions, [
      { key: 'env', operator: 'In', values: ['a', 'b'] },
      { key: 'legacy', operator: 'DoesNotExist' },
      { key: 'x', operator: 'Exists' },
    ]);
    assert.equal(
      formatLabelSelector(r.selector),
      'team=a,app.kubernetes.io/name=x,empty=,env in (a,b),!legacy,x',
    );
  });

  test('keeps a __proto__ label key as data', () => {
    const r = validateLabelSelector(JSON.parse('{"matchLabels":{"__proto__":"x"}}'));
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.errors[0]?.includes('invalid label key "__proto__"'));
  });

  const bad: Array<[string, unknown, string]> = [
    ['not an object', 'team=a', 'selector: must be an object'],
    ['list', [], 'selector: must be an object'],
    ['matchLabels not a map', { matchLabels: ['a'] }, 'selector.matchLabels: must be a map of strings'],
    ['matchLabels value not a string', { matchLabels: { a: 1 } }, 'value must be a string'],
    ['bad key', { matchLabels: { 'a b': 'x' } }, 'invalid label key "a b"'],
    ['bad prefix', { matchLabels: { 'Example.com/a': 'x' } }, 'prefix must be a DNS subdomain'],
    ['empty name after prefix', { matchLabels: { 'example.com/': 'x' } }, 'invalid label key'],
    ['long name', { matchLabels: { ['a'.repeat(64)]: 'x' } }, 'invalid label key'],
    ['bad value', { matchLabels: { a: 'x y' } }, 'invalid label value "x y"'],
    ['long value', { matchLabels: { a: 'v'.repeat(64) } }, 'invalid label value'],
    ['matchExpressions not a list', { matchExpressions: {} }, 'matchExpressions: must be a list'],
    ['expression not an object', { matchExpressions: ['a'] }, 'matchExpressions[0]: must be an object'],
    [
      'missing key',
      { matchExpressions: [{ operator: 'Exists' }] },
      'matchExpressions[0].key: must be a string',
    ],
    [
      'bad operator',
      { matchExpressions: [{ key: 'a', operator: 'in', values: ['x'] }] },
      'operator: must be one of',
    ],
    [
      'In without values',
      { matchExpressions: [{ key: 'a', operator: 'In' }] },
      'must not be empty for operator In',
    ],
    [
      'NotIn empty values',
      { matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] },
      'must not be empty',
    ],
    [
      'Exists with values',
      { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
      'must be empty for operator Exists',
    ],
    [
      'values not strings',
      { matchExpressions: [{ key: 'a', operator: 'In', values: [1] }] },
      'must be a list of strings',
    ],
  ];
  for (const [name, raw, fragment] of bad) {
    test(`rejects: ${name}`, () => {
      const r = validateLabelSelector(raw);
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.errors.some((e) => e.includes(fragment)), JSON.stringify(!r.ok && r.errors));
    });
  }

  test('label key and value rules', () => {
    for (const k of ['a', 'A-b_c.d', 'example.com/x', 'a.b-c/D9', '9'])
      assert.equal(labelKeyError(k), null, k);
    for (const k of ['', '-a', 'a-', '/a', 'a/b/c', 'UPPER.com/a'])
      assert.notEqual(labelKeyError(k), null, k);
    for (const v of ['', 'a', 'a.b_c-d', '0']) assert.equal(labelValueError(v), null, v);
    for (const v of ['-a', 'a b', '_']) assert.notEqual(labelValueError(v), null, v);
  });
});
