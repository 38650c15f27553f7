// The webhook's admission decision (src/webhook/mutate.ts): table-driven cases for each rule, then
// properties over arbitrary AdmissionReviews (never throws, always allowed, uid echoed, patches that
// apply strictly), the enforce: max invariant, the "after finish" equivalence with the controller,
// and idempotence (reinvocation).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { toPolicyTtl } from '../../../src/policy/match.ts';
import { type Policy, parsePolicy } from '../../../src/policy/schema.ts';
import { formatDuration, parseDuration } from '../../../src/rules/duration.ts';
import { toSummary } from '../../../src/rules/summary.ts';
import { resolveTtl } from '../../../src/rules/ttl.ts';
import type { Outcome } from '../../../src/rules/types.ts';
import { escapePointer, type MutateContext, mutate } from '../../../src/webhook/mutate.ts';
import { applyPatch } from './json-patch.ts';

const RUNS = 10_000;

let uidSeq = 0;
function policy(spec: Record<string, unknown>, meta: { name?: string; namespace?: string } = {}): Policy {
  const namespace = meta.namespace === undefined ? 'team-a' : meta.namespace;
  const kind = namespace === '' ? 'ClusterTTLPolicy' : 'TTLPolicy';
  const r = parsePolicy({
    apiVersion: 'kttl.dev/v1alpha1',
    kind,
    metadata: {
      name: meta.name ?? 'short-lived',
      ...(namespace === '' ? {} : { namespace }),
      uid: `uid-${++uidSeq}`,
    },
    spec: { resources: [{ apiVersion: 'batch/v1', kind: 'Job' }], ...spec },
  });
  if (r.ok) return r.policy;
  if (r.holding) return r.holding;
  throw new Error(`bad test policy: ${r.errors.join('; ')}`);
}

const NS_LABELS: Record<string, Record<string, string>> = {
  'team-a': { team: 'a' },
  'team-b': { team: 'b' },
};

function ctx(policies: Policy[], labels = NS_LABELS): MutateContext {
  return { policies, namespaceLabels: (ns) => labels[ns] };
}

interface ObjOpts {
  kind?: 'Job' | 'Pod' | 'Workflow';
  namespace?: string;
  ttl?: unknown;
  annotations?: unknown;
  labels?: Record<string, string>;
  spec?: unknown;
}

const TYPES = {
  Job: { group: 'batch', version: 'v1', kind: 'Job', apiVersion: 'batch/v1' },
  Pod: { group: '', version: 'v1', kind: 'Pod', apiVersion: 'v1' },
  Workflow: {
    group: 'argoproj.io',
    version: 'v1alpha1',
    kind: 'Workflow',
    apiVersion: 'argoproj.io/v1alpha1',
  },
} as const;

function object(o: ObjOpts = {}): Record<string, unknown> {
  const t = TYPES[o.kind ?? 'Job'];
  const metadata: Record<string, unknown> = { name: 'j1', namespace: o.namespace ?? 'team-a' };
  if (o.labels) metadata.labels = o.labels;
  if (o.annotations !== undefined) metadata.annotations = o.annotations;
  const spec =
    o.spec !== undefined
      ? o.spec
      : t.kind === 'Job'
        ? {
            ...(o.ttl !== undefined ? { ttlSecondsAfterFinished: o.ttl } : {}),
            template: { spec: { containers: [{ name: 'main', image: 'busybox' }], restartPolicy: 'Never' } },
          }
        : { containers: [{ name: 'main', image: 'busybox' }] };
  return { apiVersion: t.apiVersion, kind: t.kind, metadata, ...(spec === undefined ? {} : { spec }) };
}

function review(obj: unknown, o: { operation?: string; subResource?: string; uid?: string } = {}) {
  const m = (obj as { kind?: string; metadata?: { namespace?: string } }) ?? {};
  const t = TYPES[(m.kind as keyof typeof TYPES) ?? 'Job'] ?? TYPES.Job;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: o.uid ?? '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: t.group, version: t.version, kind: t.kind },
      resource: { group: t.group, version: t.version, resource: `${t.kind.toLowerCase()}s` },
      ...(o.subResource ? { subResource: o.subResource } : {}),
      namespace: m.metadata?.namespace,
      operation: o.operation ?? 'CREATE',
      userInfo: { username: 'admin' },
      object: obj,
      dryRun: false,
    },
  };
}

interface Outcome200 {
  ops: Array<{ op: string; path: string; value: unknown }>;
  patched: Record<string, unknown>;
  warnings: string[];
  uid: string;
}

/** mutate → decoded patch, the patched object (strict apply), warnings. Asserts the invariants. */
function run(rv: unknown, c: MutateContext): Outcome200 {
  const r = mutate(rv, c);
  assert.equal(r.status, 200, r.status === 400 ? r.message : '');
  if (r.status !== 200) throw new Error('unreachable');
  const res = r.response.response;
  assert.equal(r.response.apiVersion, 'admission.k8s.io/v1');
  assert.equal(r.response.kind, 'AdmissionReview');
  assert.equal(res.allowed, true);
  assert.equal(r.internalError, undefined);
  const obj = (rv as { request: { object: Record<string, unknown> } }).request.object;
  let ops: Outcome200['ops'] = [];
  if (res.patch !== undefined) {
    assert.equal(res.patchType, 'JSONPatch');
    ops = JSON.parse(Buffer.from(res.patch, 'base64').toString('utf8'));
    assert.ok(ops.length > 0, 'an empty patch is not sent');
  } else {
    assert.equal(res.patchType, undefined);
  }
  return {
    ops,
    patched: applyPatch(obj, ops) as Record<string, unknown>,
    warnings: res.warnings ?? [],
    uid: res.uid,
  };
}

const ann = (o: Record<string, unknown>) =>
  ((o.metadata as Record<string, unknown>).annotations ?? {}) as Record<string, string>;
const field = (o: Record<string, unknown>) =>
  (o.spec as Record<string, unknown> | undefined)?.ttlSecondsAfterFinished;

describe("mutate: CREATE without a TTL gets the policy's", () => {
  test('a Job gets .spec.ttlSecondsAfterFinished from a policy that gives ttl', () => {
    const r = run(review(object()), ctx([policy({ ttl: '1h' })]));
    assert.deepEqual(r.ops, [{ op: 'add', path: '/spec/ttlSecondsAfterFinished', value: 3600 }]);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
  });

  test('a Job under outcome-specific TTLs gets the annotations (one field cannot hold two outcomes)', () => {
    const r = run(review(object()), ctx([policy({ ttl: '1h', ttlSucceeded: '10m', ttlFailed: '7d' })]));
    assert.deepEqual(r.ops, [
      {
        op: 'add',
        path: '/metadata/annotations',
        value: { 'kttl.dev/ttl': '1h', 'kttl.dev/ttl-succeeded': '10m', 'kttl.dev/ttl-failed': '1w' },
      },
    ]);
    assert.equal(field(r.patched), undefined);
  });

  test('annotations are added one by one, with JSON-pointer escaping, when the object has some', () => {
    const r = run(
      review(object({ annotations: { 'example.com/x~y': 'keep me' } })),
      ctx([policy({ ttlFailed: '2d' })]),
    );
    assert.deepEqual(r.ops, [{ op: 'add', path: '/metadata/annotations/kttl.dev~1ttl-failed', value: '2d' }]);
    assert.deepEqual(ann(r.patched), { 'example.com/x~y': 'keep me', 'kttl.dev/ttl-failed': '2d' });
    assert.equal(escapePointer('a~/b'), 'a~0~1b');
  });

  test('annotations: null is replaced by a map', () => {
    const r = run(review(object({ kind: 'Pod', annotations: null })), ctx([podPolicy({ ttl: '90m' })]));
    assert.deepEqual(r.ops, [
      { op: 'add', path: '/metadata/annotations', value: { 'kttl.dev/ttl': '1h30m' } },
    ]);
  });

  test('a Pod and a custom kind get the kttl.dev/ttl annotation', () => {
    const r = run(review(object({ kind: 'Pod' })), ctx([podPolicy({ ttl: '5m' })]));
    assert.deepEqual(ann(r.patched), { 'kttl.dev/ttl': '5m' });
    const wf = policy({ ttl: '3h', resources: [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'Workflow' }] });
    const r2 = run(review(object({ kind: 'Workflow', spec: { entrypoint: 'main' } })), ctx([wf]));
    assert.deepEqual(ann(r2.patched), { 'kttl.dev/ttl': '3h' });
  });

  test('a Job without spec gets one (the API server rejects it later anyway; the patch still applies)', () => {
    const r = run(review({ ...object(), spec: undefined }), ctx([policy({ ttl: '1h' })]));
    assert.deepEqual(r.ops, [{ op: 'add', path: '/spec', value: { ttlSecondsAfterFinished: 3600 } }]);
  });

  test('the most specific policy wins (namespaced over cluster), and namespaceSelector uses the labels', () => {
    const cluster = policy(
      { ttl: '1d', namespaceSelector: { matchLabels: { team: 'a' } } },
      { namespace: '', name: 'c' },
    );
    const ns = policy({ ttl: '2h' });
    assert.equal(field(run(review(object()), ctx([cluster, ns])).patched), 7200);
    assert.equal(field(run(review(object()), ctx([cluster])).patched), 86400);
    // Namespace not known to the cache: a namespaceSelector selects nothing.
    assert.deepEqual(run(review(object({ namespace: 'team-c' })), ctx([cluster])).ops, []);
    assert.deepEqual(run(review(object({ namespace: 'team-b' })), ctx([cluster])).ops, []);
  });

  test('label selector: only selected objects', () => {
    const p = policy({ ttl: '1h', selector: { matchLabels: { tier: 'batch' } } });
    assert.deepEqual(run(review(object()), ctx([p])).ops, []);
    assert.equal(field(run(review(object({ labels: { tier: 'batch' } })), ctx([p])).patched), 3600);
  });

  test('no policy, another namespace, another kind: allowed unchanged', () => {
    assert.deepEqual(run(review(object()), ctx([])).ops, []);
    assert.deepEqual(run(review(object({ namespace: 'team-b' })), ctx([policy({ ttl: '1h' })])).ops, []);
    assert.deepEqual(run(review(object({ kind: 'Pod' })), ctx([policy({ ttl: '1h' })])).ops, []);
  });

  test('a dryRun policy sets nothing and says what it would set', () => {
    const r = run(review(object()), ctx([policy({ ttl: '1h', dryRun: true })]));
    assert.deepEqual(r.ops, []);
    assert.deepEqual(r.warnings, [
      'kttl: would set ttlSecondsAfterFinished 3600 from TTLPolicy/team-a/short-lived (dryRun: not set)',
    ]);
  });

  test('a policy with a propagationPolicy is left to the controller (no stamp, no warning)', () => {
    const r = run(review(object()), ctx([policy({ ttl: '1h', propagationPolicy: 'Orphan' })]));
    assert.deepEqual(r.ops, []);
    assert.deepEqual(r.warnings, []);
  });

  test('a policy with invalid TTL values (holding) sets nothing and warns', () => {
    const p = policy({ ttl: '5 minutes' });
    assert.ok(p.invalid);
    const r = run(review(object()), ctx([p]));
    assert.deepEqual(r.ops, []);
    assert.equal(r.warnings.length, 1);
    assert.match(
      r.warnings[0]!,
      /^kttl: TTLPolicy\/team-a\/short-lived has invalid TTL values .*no TTL set from it$/,
    );
  });

  test('a policy that gives no TTL value sets nothing', () => {
    assert.deepEqual(run(review(object()), ctx([policy({ priority: 3 })])).ops, []);
  });
});

function podPolicy(spec: Record<string, unknown>): Policy {
  return policy({ resources: [{ apiVersion: 'v1', kind: 'Pod' }], ...spec }, { name: 'pods' });
}

describe('mutate: an object with its own TTL', () => {
  test('is left alone (field, annotation, outcome annotation)', () => {
    const p = policy({ ttl: '1h' });
    for (const o of [
      object({ ttl: 604800 }),
      object({ ttl: 0 }),
      object({ annotations: { 'kttl.dev/ttl': '7d' } }),
      object({ annotations: { 'kttl.dev/ttl-failed': '7d' } }),
    ]) {
      const r = run(review(o), ctx([p]));
      assert.deepEqual(r.ops, []);
      assert.deepEqual(r.warnings, []);
    }
  });

  test('enforce: max lowers a longer native field, with the warning', () => {
    const r = run(review(object({ ttl: 604800 })), ctx([policy({ ttl: '1h', enforce: 'max' })]));
    assert.deepEqual(r.ops, [{ op: 'replace', path: '/spec/ttlSecondsAfterFinished', value: 3600 }]);
    assert.deepEqual(r.warnings, [
      'kttl: ttlSecondsAfterFinished lowered from 604800 to 3600 by TTLPolicy/team-a/short-lived (enforce: max)',
    ]);
  });

  test('enforce: max leaves a shorter or equal TTL alone', () => {
    for (const ttl of [0, 60, 3600]) {
      const r = run(review(object({ ttl })), ctx([policy({ ttl: '1h', enforce: 'max' })]));
      assert.deepEqual(r.ops, []);
      assert.deepEqual(r.warnings, []);
    }
  });

  test('enforce: max lowers kttl.dev/ttl', () => {
    const r = run(
      review(object({ kind: 'Pod', annotations: { 'kttl.dev/ttl': '168h', other: 'x' } })),
      ctx([podPolicy({ ttl: '1h', enforce: 'max' })]),
    );
    assert.deepEqual(r.ops, [{ op: 'replace', path: '/metadata/annotations/kttl.dev~1ttl', value: '1h' }]);
    assert.deepEqual(r.warnings, [
      'kttl: annotation kttl.dev/ttl lowered from "168h" to 1h by TTLPolicy/team-a/pods (enforce: max)',
    ]);
  });

  test('enforce: max per outcome: the field serves both outcomes, each with its own maximum', () => {
    const r = run(
      review(object({ ttl: 604800 })),
      ctx([policy({ ttlSucceeded: '1h', ttlFailed: '2h', enforce: 'max' })]),
    );
    assert.equal(field(r.patched), 7200);
    assert.deepEqual(ann(r.patched), { 'kttl.dev/ttl-succeeded': '1h' });
    assert.equal(r.warnings.length, 2);
  });

  test('enforce: max when only one outcome is too long: that outcome gets its own annotation', () => {
    const r = run(
      review(object({ annotations: { 'kttl.dev/ttl': '3h' } })),
      ctx([policy({ ttlSucceeded: '1h', enforce: 'max' })]),
    );
    assert.deepEqual(ann(r.patched), { 'kttl.dev/ttl': '3h', 'kttl.dev/ttl-succeeded': '1h' });
    assert.deepEqual(r.warnings, [
      'kttl: TTL of succeeded Jobs lowered from kttl.dev/ttl "3h" to 1h (annotation kttl.dev/ttl-succeeded) by TTLPolicy/team-a/short-lived (enforce: max)',
    ]);
  });

  test('enforce: max lowers an outcome annotation that is too long, not the others', () => {
    const r = run(
      review(object({ annotations: { 'kttl.dev/ttl-failed': '30d', 'kttl.dev/ttl-succeeded': '5m' } })),
      ctx([policy({ ttl: '1d', enforce: 'max' })]),
    );
    assert.deepEqual(r.ops, [
      { op: 'replace', path: '/metadata/annotations/kttl.dev~1ttl-failed', value: '1d' },
    ]);
  });

  test('enforce: max with dryRun warns what it would lower and changes nothing', () => {
    const r = run(
      review(object({ ttl: 604800 })),
      ctx([policy({ ttl: '1h', enforce: 'max', dryRun: true })]),
    );
    assert.deepEqual(r.ops, []);
    assert.deepEqual(r.warnings, [
      'kttl: ttlSecondsAfterFinished would be lowered from 604800 to 3600 by TTLPolicy/team-a/short-lived (enforce: max, dryRun: not changed)',
    ]);
  });

  test('kttl.dev/keep=true is exempt; under enforce: max a warning says so', () => {
    const keep = { 'kttl.dev/keep': 'true' };
    assert.deepEqual(run(review(object({ annotations: keep })), ctx([policy({ ttl: '1h' })])).warnings, []);
    const r = run(
      review(object({ annotations: keep, ttl: 999999 })),
      ctx([policy({ ttl: '1h', enforce: 'max' })]),
    );
    assert.deepEqual(r.ops, []);
    assert.deepEqual(r.warnings, [
      'kttl: kttl.dev/keep=true exempts this Job from TTLPolicy/team-a/short-lived (enforce: max); not changed',
    ]);
    // keep=false is no exemption.
    const r2 = run(
      review(object({ annotations: { 'kttl.dev/keep': 'false' } })),
      ctx([policy({ ttl: '1h' })]),
    );
    assert.equal(field(r2.patched), 3600);
  });

  test('invalid values are not touched but get a warning, with or without a policy', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [
        object({ annotations: { 'kttl.dev/ttl': '5 minutes' } }),
        /^kttl: annotation kttl\.dev\/ttl: invalid duration "5 minutes": must not contain spaces/,
      ],
      [
        object({ annotations: { 'kttl.dev/ttl-failed': '-1h' } }),
        /annotation kttl\.dev\/ttl-failed: invalid duration "-1h": must not be negative/,
      ],
      [
        object({ ttl: -5 }),
        /^kttl: \.spec\.ttlSecondsAfterFinished: -5 is not a whole number of seconds from 0 to 2147483647/,
      ],
      [object({ ttl: '3600' }), /ttlSecondsAfterFinished: "3600" is not a whole number/],
      [
        object({ annotations: { 'kttl.dev/keep': 'yes' } }),
        /^kttl: annotation kttl\.dev\/keep: invalid value "yes"/,
      ],
      [object({ annotations: { 'kttl.dev/ttl': '1h\u00e9' } }), /\\u00e9/],
    ];
    for (const [o, re] of cases) {
      for (const policies of [[], [policy({ ttl: '1h', enforce: 'max' })]]) {
        const r = run(review(o), ctx(policies));
        assert.deepEqual(r.ops, [], JSON.stringify(o));
        assert.equal(r.warnings.length, 1, JSON.stringify(r.warnings));
        assert.match(r.warnings[0]!, re);
        assert.match(r.warnings[0]!, /kept until it is fixed$/);
        assert.match(r.warnings[0]!, /^[\x20-\x7e]+$/, 'warnings are printable ASCII');
      }
    }
  });
});

describe('mutate: what it does not touch', () => {
  test('UPDATE, DELETE, CONNECT: allowed unchanged', () => {
    for (const operation of ['UPDATE', 'DELETE', 'CONNECT']) {
      const r = run(review(object(), { operation }), ctx([policy({ ttl: '1h' })]));
      assert.deepEqual(r.ops, []);
    }
  });

  test('a CREATE on a subresource (pods/eviction, pods/binding): allowed unchanged', () => {
    const r = run(
      review(object({ kind: 'Pod' }), { subResource: 'eviction' }),
      ctx([podPolicy({ ttl: '1h' })]),
    );
    assert.deepEqual(r.ops, []);
  });

  test("request.kind absent: the object's apiVersion/kind are used; request.namespace wins over metadata", () => {
    const rv = review(object({ namespace: 'elsewhere' }));
    delete (rv.request as Record<string, unknown>).kind;
    rv.request.namespace = 'team-a';
    assert.equal(field(run(rv, ctx([policy({ ttl: '1h' })])).patched), 3600);
    const rv2 = review(object());
    delete (rv2.request as Record<string, unknown>).kind;
    (rv2.request.object as Record<string, unknown>).kind = undefined;
    assert.deepEqual(run(JSON.parse(JSON.stringify(rv2)), ctx([policy({ ttl: '1h' })])).ops, []);
  });
});

describe('mutate: malformed reviews get a 400 with a one-line message', () => {
  const good = review(object());
  const cases: Array<[string, unknown, RegExp]> = [
    [
      'not an object',
      'hello',
      /the body must be an AdmissionReview object \(admission\.k8s\.io\/v1\), got string/,
    ],
    ['an array', [good], /got an array/],
    ['null', null, /got null/],
    [
      'v1beta1',
      { ...good, apiVersion: 'admission.k8s.io/v1beta1' },
      /apiVersion must be "admission\.k8s\.io\/v1" .*got "admission\.k8s\.io\/v1beta1"/,
    ],
    ['no apiVersion', { ...good, apiVersion: undefined }, /apiVersion must be .* got none/],
    ['wrong kind', { ...good, kind: 'Review' }, /kind must be "AdmissionReview", got "Review"/],
    [
      'no request',
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      /request must be an object .*got none/,
    ],
    ['request is a string', { ...good, request: 'x' }, /request must be an object .*got string/],
    [
      'no uid',
      { ...good, request: { ...good.request, uid: undefined } },
      /request\.uid must be a non-empty string, got none/,
    ],
    [
      'empty uid',
      { ...good, request: { ...good.request, uid: '' } },
      /request\.uid must be a non-empty string, got ""/,
    ],
    [
      'numeric uid',
      { ...good, request: { ...good.request, uid: 7 } },
      /request\.uid must be a non-empty string, got 7$/,
    ],
    [
      'no operation',
      { ...good, request: { ...good.request, operation: undefined } },
      /request\.operation must be a string/,
    ],
    [
      'CREATE without object',
      { ...good, request: { ...good.request, object: undefined } },
      /request\.object must be an object for CREATE, got none/,
    ],
    [
      'CREATE with object null',
      { ...good, request: { ...good.request, object: null } },
      /request\.object must be an object for CREATE, got null/,
    ],
  ];
  for (const [name, input, re] of cases) {
    test(name, () => {
      const r = mutate(JSON.parse(JSON.stringify(input) ?? 'null'), ctx([policy({ ttl: '1h' })]));
      assert.equal(r.status, 400);
      if (r.status !== 400) return;
      assert.match(r.message, /^malformed AdmissionReview: /);
      assert.match(r.message, re);
      assert.doesNotMatch(r.message, /\n/);
    });
  }
});

// ------------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------------

const validDuration = fc.integer({ min: 0, max: 4 * 604800 }).map((s) => (s === 0 ? '0' : formatDuration(s)));
const durationText = fc.oneof(
  { weight: 6, arbitrary: validDuration },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '5 minutes',
      '-1h',
      '1H',
      '',
      '1.5s',
      '10ms',
      'abc',
      '1h\u00e9',
      '9999999999s',
    ),
  },
);
const annotationValue = fc.oneof(
  { weight: 8, arbitrary: durationText },
  { weight: 1, arbitrary: fc.anything() },
);
const keyArb = fc.constantFrom(
  'kttl.dev/ttl',
  'kttl.dev/ttl-succeeded',
  'kttl.dev/ttl-failed',
  'kttl.dev/keep',
  'helm.sh/hook-delete-policy',
  'kots.io/hook-delete-policy',
  'example.com/a~b',
  'x/y/z',
  '__proto__',
  'constructor',
);
const annotationsArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 6, arbitrary: fc.dictionary(keyArb, annotationValue, { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.anything() },
);
const fieldArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 4 * 604800 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, -1, 1.5, '60', 2 ** 31, true) },
);
const specArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fieldArb.map((ttl) =>
      ttl === undefined ? { parallelism: 1 } : { ttlSecondsAfterFinished: ttl },
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(undefined, null, [], 'spec') },
  { weight: 1, arbitrary: fc.anything() },
);
const kindArb = fc.constantFrom<keyof typeof TYPES>('Job', 'Pod', 'Workflow');
const nsArb = fc.constantFrom('team-a', 'team-b', 'team-c', '');
const labelsArb = fc.option(
  fc.dictionary(fc.constantFrom('tier', 'team', 'app'), fc.constantFrom('batch', 'a', 'x')),
  {
    nil: undefined,
  },
);

/** Policy specs; the settings that make the webhook stand aside (dryRun, propagationPolicy) are rarer. */
const policySpecArb = fc
  .record({
    ttl: fc.option(validDuration, { nil: undefined }),
    ttlSucceeded: fc.option(validDuration, { nil: undefined, freq: 3 }),
    ttlFailed: fc.option(validDuration, { nil: undefined, freq: 3 }),
    enforce: fc.constantFrom(undefined, 'none', 'max', 'max'),
    dryRun: fc.constantFrom(undefined, undefined, false, true),
    propagationPolicy: fc.constantFrom(undefined, undefined, undefined, undefined, 'Foreground', 'Orphan'),
    priority: fc.option(fc.integer({ min: -2, max: 2 }), { nil: undefined }),
    selector: fc.constantFrom(undefined, undefined, undefined, { matchLabels: { tier: 'batch' } }),
  })
  .map(
    (spec) =>
      Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)) as Record<string, unknown>,
  );
const policyArb = fc
  .tuple(
    policySpecArb,
    fc.constantFrom('team-a', 'team-b', ''),
    fc.subarray(
      [
        { apiVersion: 'batch/v1', kind: 'Job' },
        { apiVersion: 'v1', kind: 'Pod' },
        { apiVersion: 'argoproj.io/v1alpha1', kind: 'Workflow' },
      ],
      { minLength: 1 },
    ),
    fc.constantFrom('p1', 'p2', 'p3'),
    fc.boolean(),
  )
  .map(([spec, namespace, resources, name, nsSel]) =>
    policy(
      {
        ...spec,
        resources,
        ...(namespace === '' && nsSel ? { namespaceSelector: { matchLabels: { team: 'a' } } } : {}),
      },
      { namespace, name },
    ),
  );
const policiesArb = fc.array(policyArb, { maxLength: 4 });

const objectArb = fc
  .record({
    kind: kindArb,
    namespace: nsArb,
    annotations: annotationsArb,
    labels: labelsArb,
    spec: specArb,
  })
  .map((o) => object({ ...o, spec: o.spec }));

/** Well-formed reviews (as the API server sends them), with some noise in the optional parts. */
const reviewArb = fc
  .record({
    obj: objectArb,
    operation: fc.constantFrom('CREATE', 'CREATE', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT'),
    uid: fc.uuid(),
    subResource: fc.constantFrom(undefined, undefined, undefined, 'status', 'eviction'),
    dropKind: fc.boolean(),
    extra: fc.option(fc.dictionary(fc.string(), fc.anything(), { maxKeys: 3 }), { nil: undefined }),
  })
  .map(({ obj, operation, uid, subResource, dropKind, extra }) => {
    const rv = review(obj, { operation, uid, ...(subResource ? { subResource } : {}) });
    if (dropKind) delete (rv.request as Record<string, unknown>).kind;
    if (extra) Object.assign(rv.request, { options: extra });
    // As the server sees it: parsed from JSON.
    return JSON.parse(JSON.stringify(rv)) as ReturnType<typeof review>;
  });

describe('mutate: properties', () => {
  test(`never throws; well-formed reviews are always allowed, uid echoed, patch applies strictly (${RUNS} runs)`, () => {
    let patched = 0;
    let warned = 0;
    fc.assert(
      fc.property(reviewArb, policiesArb, (rv, policies) => {
        const r = run(rv, ctx(policies));
        assert.equal(r.uid, rv.request.uid);
        for (const op of r.ops) {
          assert.ok(op.op === 'add' || op.op === 'replace', `only add/replace, got ${op.op}`);
          assert.match(op.path, /^\/(spec|metadata)(\/|$)/);
        }
        for (const w of r.warnings) {
          assert.match(w, /^kttl: [\x20-\x7e]+$/);
          assert.ok(w.length < 400, w);
        }
        // Nothing outside the TTL fields changes.
        const strip = (o: Record<string, unknown>) => {
          const c = structuredClone(o) as Record<string, unknown>;
          const md = c.metadata as Record<string, unknown>;
          if (md && typeof md.annotations === 'object' && md.annotations !== null) {
            for (const k of ['kttl.dev/ttl', 'kttl.dev/ttl-succeeded', 'kttl.dev/ttl-failed'])
              delete (md.annotations as Record<string, unknown>)[k];
            if (Object.keys(md.annotations).length === 0) delete md.annotations;
          }
          if (md && md.annotations === null) delete md.annotations;
          const spec = c.spec as Record<string, unknown> | undefined;
          if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
            delete spec.ttlSecondsAfterFinished;
            if (Object.keys(spec).length === 0) delete c.spec;
          }
          return c;
        };
        if (r.ops.length > 0) patched++;
        if (r.warnings.length > 0) warned++;
        if (r.ops.length > 0)
          assert.deepEqual(strip(r.patched), strip(rv.request.object as Record<string, unknown>));
        if (rv.request.operation !== 'CREATE' || rv.request.subResource) assert.deepEqual(r.ops, []);
      }),
      { numRuns: RUNS },
    );
    // The generators reach the interesting paths, not only "nothing to do".
    assert.ok(patched > RUNS / 50, `only ${patched} of ${RUNS} reviews were patched`);
    assert.ok(warned > RUNS / 50, `only ${warned} of ${RUNS} reviews were warned`);
  });

  test(`arbitrary input never throws: 200 allowed or 400 with one line (${RUNS} runs)`, () => {
    const mangled = fc.oneof(
      fc.anything(),
      fc.jsonValue(),
      reviewArb.chain((rv) =>
        fc
          .record({
            path: fc.constantFrom(
              ['apiVersion'],
              ['kind'],
              ['request'],
              ['request', 'uid'],
              ['request', 'object'],
              ['request', 'object', 'metadata'],
              ['request', 'kind'],
              ['request', 'operation'],
              ['request', 'namespace'],
            ),
            value: fc.anything(),
          })
          .map(({ path, value }) => {
            const c = structuredClone(rv) as Record<string, unknown>;
            let o: Record<string, unknown> = c;
            for (const k of path.slice(0, -1)) o = (o[k] ?? {}) as Record<string, unknown>;
            o[path[path.length - 1]!] = value;
            return JSON.parse(JSON.stringify(c) ?? 'null');
          }),
      ),
    );
    fc.assert(
      fc.property(mangled, policiesArb, (input, policies) => {
        const r = mutate(input, ctx(policies));
        if (r.status === 400) {
          assert.match(r.message, /^malformed AdmissionReview: [^\n]+$/);
          return;
        }
        assert.equal(r.status, 200);
        assert.equal(r.response.response.allowed, true);
        assert.equal(r.internalError, undefined, r.internalError);
        assert.equal(r.response.response.uid, (input as { request: { uid: string } }).request.uid);
        if (r.response.response.patch) {
          applyPatch(
            (input as { request: { object: unknown } }).request.object,
            JSON.parse(Buffer.from(r.response.response.patch, 'base64').toString()),
          );
        }
      }),
      { numRuns: RUNS },
    );
  });

  /** The policy's TTL for an outcome, as a status-time webhook would set it after the finish. */
  const afterFinish = (p: Policy, o: Outcome): number | undefined => {
    const v = (o === 'succeeded' ? p.ttlSucceeded : p.ttlFailed) ?? p.ttl;
    if (v === undefined) return undefined;
    const d = parseDuration(v);
    return d.ok ? d.seconds : undefined;
  };
  const decisionSeconds = (
    obj: Record<string, unknown>,
    o: Outcome,
    p: Policy | null,
    helmHooks: boolean,
  ) => {
    const t = TYPES[obj.kind as keyof typeof TYPES];
    const d = resolveTtl(toSummary(obj, null, t), o, { policy: p ? toPolicyTtl(p) : null, helmHooks });
    return d.action === 'ttl' ? d.seconds : d.action;
  };

  test(`"after finish" equivalence: a stamped object resolves, per outcome, to the policy's outcome TTL (${RUNS} runs)`, () => {
    // The seeds' second webhook use (set the TTL after the finish, by outcome) is what the controller
    // already does: stamping at CREATE + the controller gives, for every outcome, the TTL that a
    // status-time webhook would have set, and the same as the unstamped object under the policy.
    fc.assert(
      fc.property(
        kindArb,
        policySpecArb,
        labelsArb,
        fc.constantFrom<Outcome>('succeeded', 'failed'),
        fc.boolean(),
        (kind, spec, labels, outcome, helmHooks) => {
          const resources = [{ apiVersion: TYPES[kind].apiVersion, kind }];
          const p = policy({ ...spec, resources });
          const obj = object({ kind, labels, spec: kind === 'Job' ? { parallelism: 1 } : { x: 1 } });
          const r = run(review(obj), ctx([p]));
          const selected = !p.selector || labels?.tier === 'batch';
          const before = decisionSeconds(obj, outcome, selected ? p : null, helmHooks);
          const after = decisionSeconds(r.patched, outcome, selected ? p : null, helmHooks);
          assert.equal(after, before);
          if (selected) assert.equal(after, afterFinish(p, outcome) ?? 'none');
          const acts =
            selected &&
            !p.dryRun &&
            !p.propagationPolicy &&
            (afterFinish(p, 'succeeded') !== undefined || afterFinish(p, 'failed') !== undefined);
          if (acts) {
            // Without the policy at all (kttl controller restarted without policies, or the native
            // controller for a field-only Job), the stamped object still carries its TTL.
            assert.equal(
              decisionSeconds(r.patched, outcome, null, helmHooks),
              afterFinish(p, outcome) ?? 'none',
            );
          } else {
            assert.deepEqual(r.ops, []);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  test(`enforce: max: every outcome ends at or below the maximum; exactly the maximum where it was above, unchanged elsewhere (${RUNS} runs)`, () => {
    const ttlAnnotations = fc.record(
      {
        'kttl.dev/ttl': validDuration,
        'kttl.dev/ttl-succeeded': validDuration,
        'kttl.dev/ttl-failed': validDuration,
      },
      { requiredKeys: [] },
    );
    let lowered = 0;
    fc.assert(
      fc.property(
        kindArb,
        policySpecArb,
        ttlAnnotations,
        fc.option(fc.integer({ min: 0, max: 4 * 604800 }), { nil: undefined }),
        fc.boolean(),
        (kind, spec, annotations, ttl, helmHooks) => {
          const resources = [{ apiVersion: TYPES[kind].apiVersion, kind }];
          const p = policy({ ...spec, enforce: 'max', dryRun: false, resources, selector: undefined });
          const obj = object({
            kind,
            annotations: Object.keys(annotations).length ? annotations : undefined,
            spec:
              kind === 'Job'
                ? ttl === undefined
                  ? { parallelism: 1 }
                  : { ttlSecondsAfterFinished: ttl }
                : { x: 1 },
          });
          const r = run(review(obj), ctx([p]));
          const hasOwn = Object.keys(annotations).length > 0 || (kind === 'Job' && ttl !== undefined);
          for (const o of ['succeeded', 'failed'] as const) {
            const before = decisionSeconds(obj, o, p, helmHooks);
            const after = decisionSeconds(r.patched, o, p, helmHooks);
            const max = afterFinish(p, o);
            if (!hasOwn) {
              assert.equal(after, before);
              continue;
            }
            if (max !== undefined && typeof before === 'number' && before > max)
              assert.equal(after, max, `${o}: lowered to the max`);
            else assert.equal(after, before, `${o}: unchanged`);
          }
          if (hasOwn && r.ops.length === 0) assert.deepEqual(r.warnings, []);
          if (hasOwn && r.ops.length > 0) {
            lowered++;
            assert.ok(r.warnings.length > 0, 'a lowered TTL is always explained');
          }
        },
      ),
      { numRuns: RUNS },
    );
    assert.ok(lowered > RUNS / 10, `only ${lowered} of ${RUNS} objects were lowered`);
  });

  test(`idempotent: the patched object, reviewed again (reinvocation), gets no further patch (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(reviewArb, policiesArb, (rv, policies) => {
        const c = ctx(policies);
        const first = run(rv, c);
        const again = run({ ...rv, request: { ...rv.request, object: first.patched } }, c);
        assert.deepEqual(again.ops, []);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('cluster maximum (ClusterTTLPolicy maxTtl, src/rules/caps.ts)', () => {
  const cap = () =>
    policy(
      { namespaceSelector: { matchLabels: { team: 'a' } }, maxTtl: '1d', allowKeep: false },
      { name: 'max', namespace: '' },
    );
  test('a longer TTL is lowered at admission with a warning naming the cap; a shorter one is untouched', () => {
    const ns = policy({ ttl: '30d' }, { name: 'month' });
    const long = run(review(object({ annotations: { 'kttl.dev/ttl': '30d' } })), ctx([ns, cap()]));
    assert.equal(
      (long.patched.metadata as { annotations: Record<string, string> }).annotations['kttl.dev/ttl'],
      '1d',
    );
    assert.match(
      long.warnings.join('\n'),
      /lowered from "30d" to 1d by the cluster maximum of ClusterTTLPolicy\/max/,
    );
    const field = run(review(object({ ttl: 30 * 86400 })), ctx([ns, cap()]));
    assert.equal((field.patched.spec as { ttlSecondsAfterFinished: number }).ttlSecondsAfterFinished, 86400);
    const short = run(review(object({ annotations: { 'kttl.dev/ttl': '2h' } })), ctx([ns, cap()]));
    assert.deepEqual(short.ops, []);
    const elsewhere = run(
      review(object({ namespace: 'team-b', annotations: { 'kttl.dev/ttl': '30d' } })),
      ctx([cap()]),
    );
    assert.deepEqual(elsewhere.ops, []);
  });

  test('kttl.dev/keep under allowKeep: false is warned about; a bad kttl.dev/expires is warned about', () => {
    const keep = run(review(object({ annotations: { 'kttl.dev/keep': 'true' } })), ctx([cap()]));
    assert.match(
      keep.warnings.join('\n'),
      /does not exempt this Job from the cluster maximum of ClusterTTLPolicy\/max/,
    );
    const bad = run(review(object({ annotations: { 'kttl.dev/expires': 'soon' } })), ctx([]));
    assert.match(bad.warnings.join('\n'), /kttl\.dev\/expires.*"soon"/);
  });
});
