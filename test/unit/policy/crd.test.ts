// The CRD files in deploy/crds/ (the single source) against the controller's own rules: the
// duration pattern must never refuse a value parseDuration accepts, and what it lets through that
// parseDuration refuses must be only the range/fraction/length cases the controller reports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { parse } from 'yaml';
import { parseDuration } from '../../../src/rules/duration.ts';
import { parsePath } from '../../../src/rules/finish.ts';

const RUNS = 20_000;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

type Schema = {
  type?: string;
  description?: string;
  pattern?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  default?: unknown;
  required?: string[];
};
interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; shortNames: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: object };
      additionalPrinterColumns: Array<{ name: string; jsonPath: string }>;
      schema: { openAPIV3Schema: Schema };
    }>;
  };
}

function load(file: string): Crd {
  return parse(readFileSync(join(ROOT, 'deploy/crds', file), 'utf8')) as Crd;
}

const namespaced = load('kttl.dev_ttlpolicies.yaml');
const cluster = load('kttl.dev_clusterttlpolicies.yaml');

function specOf(crd: Crd): Record<string, Schema> {
  return crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!.properties!;
}

const durationPattern = new RegExp(specOf(namespaced).ttl!.pattern!);

/** Rejections of parseDuration the pattern cannot express (range, exactness, length). */
const SEMANTIC = /longer than the maximum|not a whole number of seconds|longer than 128 characters/;

function checkAgreement(text: string): void {
  const byPattern = durationPattern.test(text);
  const byParser = parseDuration(text);
  if (byParser.ok) {
    assert.ok(byPattern, `pattern refuses ${JSON.stringify(text)}, which parseDuration accepts`);
  } else if (byPattern) {
    assert.match(byParser.error, SEMANTIC, `pattern accepts ${JSON.stringify(text)}: ${byParser.error}`);
  }
}

describe('CRDs', () => {
  test('names, scope, version, status subresource, printer columns', () => {
    for (const [crd, kind, plural, short, scope] of [
      [namespaced, 'TTLPolicy', 'ttlpolicies', 'ttlp', 'Namespaced'],
      [cluster, 'ClusterTTLPolicy', 'clusterttlpolicies', 'cttlp', 'Cluster'],
    ] as const) {
      assert.equal(crd.metadata.name, `${plural}.kttl.dev`);
      assert.equal(crd.spec.group, 'kttl.dev');
      assert.equal(crd.spec.scope, scope);
      assert.equal(crd.spec.names.kind, kind);
      assert.deepEqual(crd.spec.names.shortNames, [short]);
      assert.equal(crd.spec.versions.length, 1);
      const v = crd.spec.versions[0]!;
      assert.equal(v.name, 'v1alpha1');
      assert.ok(v.served && v.storage);
      assert.deepEqual(v.subresources, { status: {} });
      const columns = v.additionalPrinterColumns.map((c) => c.name);
      for (const c of ['TTL', 'Succeeded', 'Failed', 'Matched', 'Age']) assert.ok(columns.includes(c), c);
    }
  });

  test('the two spec schemas differ only by namespaceSelector (the selector schema) and the cluster caps', () => {
    const a = specOf(namespaced);
    const { namespaceSelector, maxTtl, maxTtlSucceeded, maxTtlFailed, allowKeep, ...b } = specOf(cluster);
    // The caps are durations like ttl (src/rules/caps.ts); allowKeep defaults to true.
    for (const cap of [maxTtl, maxTtlSucceeded, maxTtlFailed]) assert.equal(cap!.pattern, a.ttl!.pattern);
    assert.equal(allowKeep!.default, true);
    assert.equal(a.ttlPods!.pattern, a.ttl!.pattern);
    assert.deepEqual(b, a);
    const { description: _d1, ...nsSel } = namespaceSelector!;
    const { description: _d2, ...sel } = a.selector!;
    assert.deepEqual(nsSel, sel);
    assert.equal(a.namespaceSelector, undefined);
  });

  test('the three duration fields share one pattern; enums and defaults', () => {
    const s = specOf(namespaced);
    assert.equal(s.ttlSucceeded!.pattern, s.ttl!.pattern);
    assert.equal(s.ttlFailed!.pattern, s.ttl!.pattern);
    assert.deepEqual(s.propagationPolicy!.enum, ['Foreground', 'Background', 'Orphan']);
    assert.deepEqual(s.enforce!.enum, ['none', 'max']);
    assert.equal(s.enforce!.default, 'none');
    assert.equal(s.dryRun!.default, false);
    assert.equal(s.priority!.default, 0);
  });

  test('the field-path pattern is parsePath', () => {
    const fieldPattern = new RegExp(
      specOf(namespaced).resources!.items!.properties!.finished!.properties!.succeeded!.properties!.field!
        .pattern!,
    );
    const alphabet = fc.constantFrom(...'.abcZ09_-/[] $*'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 20 }), (p) => {
        assert.equal(fieldPattern.test(p), parsePath(p).ok, JSON.stringify(p));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('duration pattern vs parseDuration', () => {
  const cases = [
    '0',
    '+0',
    '0s',
    '90s',
    '5m',
    '3h',
    '4d',
    '2w',
    '1h30m',
    '1.5h',
    '.5m',
    '1.m',
    '+5m',
    ' 5m ',
    '\t7d\n',
    '\u00a01h\u3000',
    '1m1m',
    '007s',
    '2147483647s',
    // refused by both
    '',
    ' ',
    '5 minutes',
    '1h 30m',
    '-5m',
    '-0',
    '90',
    '00',
    '5ms',
    '1H',
    '1y',
    'abc',
    '+',
    '.',
    '.s',
    '1h.',
    '1e3s',
    '５m',
    '0.0',
    '+-1s',
    '1h\u00851m',
    // accepted by the pattern, refused by parseDuration (the controller reports them)
    '2147483648s',
    '3551w',
    '1.5s',
    '0.1s',
    `${'1'.repeat(130)}s`,
  ];
  for (const text of cases) test(JSON.stringify(text), () => checkAgreement(text));

  test('the whitespace class is exactly what String.prototype.trim removes', () => {
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      const ws = ch.trim() === '';
      assert.equal(durationPattern.test(`5m${ch}`), ws, `trailing U+${c.toString(16)}`);
      // Leading: "+", digits and "." start a valid duration themselves.
      if (!/[+0-9.]/.test(ch))
        assert.equal(durationPattern.test(`${ch}5m`), ws, `leading U+${c.toString(16)}`);
    }
  });

  test('property: generated near-grammar strings', () => {
    const alphabet = fc.constantFrom(...'0123456789.+-smhdwSMHyu \t\u00a0'.split(''));
    fc.assert(fc.property(fc.string({ unit: alphabet, maxLength: 16 }), checkAgreement), { numRuns: RUNS });
  });

  test('property: generated well-formed sums', () => {
    const num = fc.oneof(
      fc.nat({ max: 10_000_000 }).map(String),
      fc.tuple(fc.nat({ max: 9999 }), fc.stringMatching(/^[0-9]{0,4}$/)).map(([i, f]) => `${i}.${f}`),
      fc.stringMatching(/^[0-9]{1,4}$/).map((f) => `.${f}`),
    );
    const part = fc.tuple(num, fc.constantFrom('s', 'm', 'h', 'd', 'w')).map(([n, u]) => n + u);
    const ws = fc.constantFrom('', ' ', '\t', '\n', '\u2028');
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), ws, ws, fc.boolean(), (ps, a, b, plus) =>
        checkAgreement(`${a}${plus ? '+' : ''}${ps.join('')}${b}`),
      ),
      { numRuns: RUNS },
    );
  });

  test('property: arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), checkAgreement), { numRuns: RUNS });
  });
});
