// The size cap on the annotations kttl reads (MAX_ANNOTATION_BYTES, src/rules/types.ts): a value
// over it is invalid, so the object is kept (never deleted through that value or a lower source),
// the summary keeps only a cut copy, and judging such an object costs microseconds, not the tens
// of milliseconds a 256 KiB hook policy costs to split (bench/annotation-bomb.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { parsePolicy } from '../../../src/policy/schema.ts';
import { toSummary } from '../../../src/rules/summary.ts';
import { describeDecision, resolveTtl } from '../../../src/rules/ttl.ts';
import {
  ANNOTATIONS,
  MAX_ANNOTATION_BYTES,
  type ObjectSummary,
  type Outcome,
  RELEVANT_ANNOTATIONS,
  type TtlSource,
} from '../../../src/rules/types.ts';
import { mutate } from '../../../src/webhook/mutate.ts';

const FINISH = { outcome: 'succeeded', atMs: 1000, timeSource: 'containerFinishedAt', reason: 'r' } as const;
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const NO_POLICY = { policy: null, helmHooks: true };

function rawPod(annotations: Record<string, string>, name = 'p'): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'team-a', uid: `uid-${name}`, resourceVersion: '1', annotations },
  };
}

/** What the watch hands to toSummary: a value parsed from JSON text, as flat as the API sends it. */
function fromWire(raw: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(raw));
}

const summarize = (annotations: Record<string, string>, outcome: Outcome = 'succeeded'): ObjectSummary =>
  toSummary(fromWire(rawPod(annotations)), { ...FINISH, outcome });

/** The order of docs/rules.md: a TTL may only come from a source above the over-long value. */
// The retention sources (src/rules/retention.ts) are not resolveTtl's: ranked after it.
const RANK: Record<TtlSource, number> = {
  keep: 1,
  hook: 2,
  annotation: 3,
  field: 4,
  policy: 5,
  none: 6,
  expires: 7,
  history: 7,
  keepLatest: 7,
  cap: 7,
};
const KEY_RANK: Record<string, number> = {
  [ANNOTATIONS.keep]: 1,
  [ANNOTATIONS.kotsHook]: 2,
  [ANNOTATIONS.helmHook]: 2,
  [ANNOTATIONS.ttl]: 3,
  [ANNOTATIONS.ttlSucceeded]: 3,
  [ANNOTATIONS.ttlFailed]: 3,
};

/** Values each key could carry: valid ones (which would delete at once), invalid ones, empty. */
const SHORT_VALUES = [
  'true',
  'false',
  'True',
  'hook-succeeded',
  'hook-failed',
  'hook-succeeded,hook-failed',
  'before-hook-creation',
  'bogus',
  '0',
  '1s',
  '1h30m',
  '',
];

/** A value just over or far over the cap that would otherwise parse as valid (trailing commas or
 *  spaces) or not (any text), in one- and multi-byte characters. */
const longValue = fc
  .tuple(
    fc.constantFrom(...SHORT_VALUES),
    fc.constantFrom(',', ' ', 'x', 'é', '字', '😀', ', hook-failed'),
    fc.constantFrom(1, 2, 10, 300, 256 * 1024),
  )
  .map(([head, pad, extra]) => {
    let v = head;
    const unit = bytes(pad);
    const need = MAX_ANNOTATION_BYTES - bytes(head) + Math.min(extra, 256 * 1024 - MAX_ANNOTATION_BYTES);
    v += pad.repeat(Math.ceil(Math.max(1, need) / unit));
    return v;
  })
  .filter((v) => bytes(v) > MAX_ANNOTATION_BYTES);

/** The keys resolveTtl reads (kttl.dev/expires and ttl-pods are the verdict's: test/unit/rules/retention.test.ts). */
const TTL_KEYS = RELEVANT_ANNOTATIONS.filter((k) => Object.hasOwn(KEY_RANK, k));

const annotationsArb = fc
  .tuple(
    fc.dictionary(fc.constantFrom(...TTL_KEYS), fc.constantFrom(...SHORT_VALUES), { maxKeys: 6 }),
    fc.uniqueArray(fc.constantFrom(...TTL_KEYS), { minLength: 1, maxLength: 3 }),
    fc.array(longValue, { minLength: 3, maxLength: 3 }),
  )
  .map(([short, longKeys, longValues]) => {
    const out: Record<string, string> = { ...short };
    longKeys.forEach((k, i) => {
      out[k] = longValues[i]!;
    });
    return { annotations: out, longKeys };
  });

/** The other way to a summary (tests, tools): built by hand, the full value inside. */
function handBuilt(annotations: Record<string, string>, outcome: Outcome): ObjectSummary {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    namespace: 'team-a',
    name: 'p',
    uid: 'u',
    resourceVersion: '1',
    creationMs: 0,
    labels: {},
    annotations,
    deletionMs: null,
    finalizers: [],
    owners: [],
    nativeTtlSeconds: null,
    finish: { ...FINISH, outcome },
  };
}

describe('annotation size cap', () => {
  test('an over-long relevant annotation gives an invalid verdict and never a deletion through it or a lower source', () => {
    const policy = { ref: 'ClusterTTLPolicy/p', ttl: '0' };
    fc.assert(
      fc.property(
        annotationsArb,
        fc.constantFrom<Outcome>('succeeded', 'failed'),
        fc.boolean(),
        fc.boolean(),
        ({ annotations, longKeys }, outcome, helmHooks, viaWire) => {
          const obj = viaWire ? summarize(annotations, outcome) : handBuilt(annotations, outcome);
          const d = resolveTtl(obj, outcome, { policy, helmHooks });
          // helm's annotation is not read at all when --helm-hooks=false.
          const counted = longKeys.filter((k) => helmHooks || k !== ANNOTATIONS.helmHook);
          if (counted.length === 0) return;
          const r = Math.min(...counted.map((k) => KEY_RANK[k]!));
          assert.notEqual(d.action, 'none', JSON.stringify(d));
          if (d.action === 'ttl')
            assert.ok(RANK[d.source] < r, `deleted through ${d.source} at or below an over-long value`);
          // Nothing set above the over-long value: the verdict is invalid.
          const above = Object.keys(annotations).filter(
            (k) =>
              KEY_RANK[k]! < r &&
              (helmHooks || k !== ANNOTATIONS.helmHook) &&
              !(k === ANNOTATIONS.keep && annotations[k] === 'false'),
          );
          if (above.length === 0) {
            assert.equal(d.action, 'invalid', JSON.stringify(d));
            if (d.action === 'invalid' && counted.includes(d.key)) {
              assert.match(
                d.message,
                new RegExp(
                  `^annotation ${d.key} is ${bytes(annotations[d.key]!)} bytes, longer than the 1024-byte limit: kept`,
                ),
              );
              assert.ok(bytes(d.message) < 400, `message of ${bytes(d.message)} bytes`);
            }
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });

  test('the summary keeps at most the cap per value, a cut copy of a longer one and its size', () => {
    fc.assert(
      fc.property(annotationsArb, ({ annotations, longKeys }) => {
        const s = summarize(annotations);
        for (const [k, v] of Object.entries(s.annotations)) {
          assert.ok(bytes(v) <= MAX_ANNOTATION_BYTES, `${k}: ${bytes(v)} bytes kept`);
        }
        for (const k of longKeys) {
          const v = s.annotations[k]!;
          // 64 characters of at most 4 bytes, and "… (N bytes)".
          assert.ok(bytes(v) <= 64 * 4 + 24, `${k}: cut copy of ${bytes(v)} bytes`);
          assert.ok(v.endsWith(`… (${bytes(annotations[k]!)} bytes)`), v);
          assert.equal(s.oversized?.[k], bytes(annotations[k]!));
        }
        for (const [k, v] of Object.entries(annotations)) {
          if (!longKeys.includes(k))
            assert.equal(s.annotations[k], v, 'a value within the cap is kept as is');
        }
      }),
      { numRuns: 2_000 },
    );
  });

  test('the boundary: 1024 bytes are read, 1025 are invalid (bytes, not characters)', () => {
    const at = `1s${' '.repeat(MAX_ANNOTATION_BYTES - 2)}`;
    assert.deepEqual(resolveTtl(summarize({ [ANNOTATIONS.ttl]: at }), 'succeeded', NO_POLICY), {
      action: 'ttl',
      source: 'annotation',
      seconds: 1,
      detail: `annotation kttl.dev/ttl=${at.slice(0, 64)}…`,
    });
    const over = resolveTtl(summarize({ [ANNOTATIONS.ttl]: `${at} ` }), 'succeeded', NO_POLICY);
    assert.equal(over.action, 'invalid');
    // 400 two-byte characters are 800 bytes (read); 600 are 1200 (not).
    const hook = (n: number) => `hook-succeeded,${'é'.repeat(n)}`;
    assert.match(
      describeDecision(resolveTtl(summarize({ [ANNOTATIONS.kotsHook]: hook(400) }), 'succeeded', NO_POLICY)),
      /unknown value/,
    );
    assert.match(
      describeDecision(resolveTtl(summarize({ [ANNOTATIONS.kotsHook]: hook(600) }), 'succeeded', NO_POLICY)),
      /is 1215 bytes, longer than the 1024-byte limit: kept/,
    );
  });

  test('the explain message: the key, its size and the cut start, one short line', () => {
    const v = 'hook-succeeded'.padEnd(262144, ',');
    const d = resolveTtl(summarize({ [ANNOTATIONS.kotsHook]: v }), 'succeeded', NO_POLICY);
    assert.equal(
      describeDecision(d),
      `invalid: annotation kots.io/hook-delete-policy is 262144 bytes, longer than the 1024-byte limit: kept (it starts ${JSON.stringify(`${v.slice(0, 64)}…`)})`,
    );
    assert.equal(d.action === 'invalid' && d.value, `${v.slice(0, 64)}… (262144 bytes)`);
  });

  test('a hook value of many unknown items within the cap lists three of them, not all', () => {
    const v = Array.from({ length: 200 }, (_, i) => `x${i}`).join(',');
    assert.ok(bytes(v) <= MAX_ANNOTATION_BYTES);
    const d = resolveTtl(summarize({ [ANNOTATIONS.kotsHook]: v }), 'succeeded', NO_POLICY);
    assert.equal(
      describeDecision(d),
      'invalid: annotation kots.io/hook-delete-policy: unknown values "x0", "x1", "x2" and 197 more (use hook-succeeded, hook-failed or before-hook-creation)',
    );
  });

  test('judging an object with 256 KiB in each hook and TTL annotation takes microseconds', () => {
    // Valid-looking heads (they would delete at once) padded with commas; no keep annotation, so
    // nothing above the hooks stops the evaluation early.
    const keys = RELEVANT_ANNOTATIONS.filter((k) => k !== ANNOTATIONS.keep);
    const annotations = Object.fromEntries(
      keys.map((k) => [k, (k.includes('hook') ? 'hook-succeeded' : '1s').padEnd(256 * 1024, ',')]),
    );
    const text = JSON.stringify(rawPod(annotations));
    const objs = Array.from({ length: 20 }, () => toSummary(JSON.parse(text), FINISH));
    // Up to 2,000 evaluations, or 1 s: before the cap one took ~10-50 ms (it split 256 KiB).
    const t0 = performance.now();
    let n = 0;
    const actions = new Set<string>();
    while (n < 2000 && performance.now() - t0 < 1000) {
      const o = objs[n % objs.length]!;
      actions.add(resolveTtl(o, n % 2 === 0 ? 'succeeded' : 'failed', NO_POLICY).action);
      n++;
    }
    const perEval = (performance.now() - t0) / n;
    assert.ok(perEval < 0.1, `${perEval.toFixed(3)} ms per evaluation (${n} done)`);
    assert.deepEqual([...actions], ['invalid']);
    // Ingest: the size is counted once, nothing is copied (JSON.parse of 1 MiB included).
    const t1 = performance.now();
    for (let i = 0; i < 20; i++) toSummary(JSON.parse(text), FINISH);
    const perIngest = (performance.now() - t1) / 20;
    assert.ok(perIngest < 30, `${perIngest.toFixed(2)} ms per ingest`);
  });

  test('the summary does not keep the long value alive', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const n = 100;
    // Distinct values, each from its own JSON text, as a watch delivers them.
    const texts = Array.from({ length: n }, (_, i) =>
      JSON.stringify(
        rawPod({ [ANNOTATIONS.kotsHook]: `hook-succeeded${i}`.padEnd(256 * 1024, ',') }, `p${i}`),
      ),
    );
    gc();
    const before = process.memoryUsage().heapUsed;
    const kept = texts.map((t) => toSummary(JSON.parse(t), FINISH));
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    assert.equal(kept.length, n);
    // Kept whole, the values alone are n × 256 KiB = 25 MiB.
    assert.ok(grown < 2 * 1024 * 1024, `${(grown / 1024 / 1024).toFixed(1)} MiB kept for ${n} summaries`);
  });

  test('the webhook agrees: an over-long kttl.dev/ttl is invalid (warned, not lowered by enforce: max)', () => {
    const parsed = parsePolicy({
      apiVersion: 'kttl.dev/v1alpha1',
      kind: 'TTLPolicy',
      metadata: { name: 'max', namespace: 'team-a', uid: 'pu' },
      spec: { resources: [{ apiVersion: 'v1', kind: 'Pod' }], ttl: '30m', enforce: 'max' },
    });
    assert.ok(parsed.ok);
    // parseDuration trims: alone, this reads as 1h, which the controller now refuses.
    const value = `1h${' '.repeat(2000)}`;
    const r = mutate(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'r1',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          namespace: 'team-a',
          operation: 'CREATE',
          userInfo: { username: 'u' },
          object: { ...rawPod({ [ANNOTATIONS.ttl]: value }), spec: { containers: [] } },
        },
      },
      { policies: [parsed.policy], namespaceLabels: () => ({}) },
    );
    assert.equal(r.status, 200);
    if (r.status !== 200) return;
    assert.equal(r.response.response.patch, undefined, 'no patch');
    assert.deepEqual(r.response.response.warnings, [
      'kttl: annotation kttl.dev/ttl is 2002 bytes, longer than the 1024-byte limit; this Pod is kept until it is fixed',
    ]);
    const controller = resolveTtl(summarize({ [ANNOTATIONS.ttl]: value }), 'succeeded', NO_POLICY);
    assert.equal(controller.action, 'invalid');
  });
});
