// The archive record (src/archive/record.ts), the archive mode of the verdict (policy over flag)
// and the policy field, and the size flags (src/cli/flags.ts parseBytes).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildRecord, withoutManagedFields } from '../../../src/archive/record.ts';
import { parseBytes } from '../../../src/cli/flags.ts';
import { toPolicyTtl } from '../../../src/policy/match.ts';
import { parsePolicy } from '../../../src/policy/schema.ts';
import { BUILTIN_KINDS } from '../../../src/rules/kinds.ts';
import { summarizeObject } from '../../../src/rules/summary.ts';
import { verdictOf } from '../../../src/rules/verdict.ts';

const job = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: {
    name: 'train',
    namespace: 'team-a',
    uid: 'u-1',
    resourceVersion: '42',
    labels: { team: 'a' },
    annotations: { 'kttl.dev/ttl': '1h', note: 'x' },
    ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'o', uid: 'o-1' }],
    managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
  },
  spec: { template: { spec: { containers: [{ name: 'main', env: [{ name: 'A', value: 'b' }] }] } } },
  status: { conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: '2026-12-01T10:00:00Z' }] },
};

describe('archive record', () => {
  test('keeps the object as the API returned it, without managedFields; identity, TTL and times', () => {
    const r = buildRecord({
      cluster: 'prod-eu',
      raw: job,
      apiVersion: 'batch/v1',
      kind: 'Job',
      finish: {
        outcome: 'succeeded',
        atMs: Date.parse('2026-12-01T10:00:00Z'),
        timeSource: 'condition',
        reason: 'condition Complete=True',
      },
      decision: { action: 'ttl', source: 'annotation', seconds: 3600, detail: 'annotation kttl.dev/ttl=1h' },
      deletedAtMs: Date.parse('2026-12-01T11:00:01Z'),
      reason: 'expired',
      logs: [],
      events: [],
      captureErrors: [],
    });
    const { managedFields: _m, ...meta } = job.metadata;
    assert.deepEqual(r.object, { ...job, metadata: meta });
    assert.equal(r.cluster, 'prod-eu');
    assert.deepEqual([r.namespace, r.name, r.uid, r.resourceVersion], ['team-a', 'train', 'u-1', '42']);
    assert.deepEqual(r.annotations, { 'kttl.dev/ttl': '1h', note: 'x' });
    assert.deepEqual(r.labels, { team: 'a' });
    assert.equal(r.ownerReferences.length, 1);
    assert.equal(r.finishedAt, '2026-12-01T10:00:00.000Z');
    assert.equal(r.deletedAt, '2026-12-01T11:00:01.000Z');
    assert.deepEqual(
      [r.ttlSeconds, r.ttlSource, r.ttlDetail],
      [3600, 'annotation', 'annotation kttl.dev/ttl=1h'],
    );
    // Environment values as the spec shows them (docs/archive.md): nothing is resolved or hidden.
    assert.deepEqual((r.object.spec as typeof job.spec).template.spec.containers[0]?.env, [
      { name: 'A', value: 'b' },
    ]);
    // The input is not changed.
    assert.ok('managedFields' in job.metadata);
    assert.equal(withoutManagedFields({ metadata: { name: 'x' } }).metadata !== undefined, true);
  });
});

describe('archive mode', () => {
  const obj = summarizeObject(job, { apiVersion: 'batch/v1', kind: 'Job' });
  const policy = (archive?: string) => {
    const r = parsePolicy({
      apiVersion: 'kttl.dev/v1alpha1',
      kind: 'ClusterTTLPolicy',
      metadata: { name: 'p', uid: 'p-1' },
      spec: {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        ttl: '1d',
        ...(archive ? { archive } : {}),
      },
    });
    return r;
  };
  test('the policy field is parsed, and a bad value makes the policy invalid', () => {
    const ok = policy('required');
    assert.ok(ok.ok && ok.policy.archive === 'required');
    const bad = policy('always');
    assert.equal(bad.ok, false);
  });
  test("the matched policy's archive wins over the flag; without one the flag's; default off", () => {
    const base = {
      nowMs: Date.parse('2026-12-01T12:00:00Z'),
      helmHooks: true,
      nativeJobs: 'handle' as const,
    };
    const p = policy('required');
    assert.ok(p.ok);
    assert.equal(
      verdictOf(obj, { ...base, policy: toPolicyTtl(p.policy), archive: 'off' }).archive,
      'required',
    );
    const q = policy();
    assert.ok(q.ok);
    assert.equal(
      verdictOf(obj, { ...base, policy: toPolicyTtl(q.policy), archive: 'best-effort' }).archive,
      'best-effort',
    );
    assert.equal(verdictOf(obj, { ...base, policy: null }).archive, 'off');
  });
});

test('sizes as Kubernetes quantities', () => {
  assert.equal(parseBytes('256Ki'), 262144);
  assert.equal(parseBytes('10Gi'), 10 * 2 ** 30);
  assert.equal(parseBytes('500M'), 500e6);
  assert.equal(parseBytes('1024'), 1024);
  assert.equal(parseBytes('0'), 0);
  for (const bad of ['', '1.5Gi', '-1', '10GB', 'Ki']) assert.throws(() => parseBytes(bad), /is not a size/);
});

test("the built-in kinds' pod labels are label keys, and every custom kind that runs its pods through other objects names one", () => {
  const KEY =
    /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
  for (const k of BUILTIN_KINDS) if (k.podLabel !== undefined) assert.match(k.podLabel, KEY, k.kind);
  // A JobSet's, a TrainJob's and a PipelineRun's pods belong to Jobs or TaskRuns, not to them.
  for (const kind of ['JobSet', 'TrainJob', 'PipelineRun'])
    assert.ok(BUILTIN_KINDS.find((k) => k.kind === kind)?.podLabel, kind);
});
