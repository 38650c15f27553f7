import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jobFinish } from '../../../src/rules/finish.ts';
import { toSummary } from '../../../src/rules/summary.ts';
import type { Finish } from '../../../src/rules/types.ts';

const CREATED = '2026-08-01T12:00:00Z';
const CREATED_MS = Date.UTC(2026, 7, 1, 12);
const FINISHED_MS = Date.UTC(2026, 7, 1, 13);

function rawJob(extra: { spec?: Record<string, unknown>; metadata?: Record<string, unknown> } = {}) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'pi',
      namespace: 'team-a',
      uid: 'u-1',
      resourceVersion: '42',
      creationTimestamp: CREATED,
      labels: { app: 'pi', team: 'a' },
      annotations: {
        'kttl.dev/ttl': '1h',
        'kttl.dev/keep': 'false',
        'helm.sh/hook-delete-policy': 'hook-succeeded',
        'kubectl.kubernetes.io/last-applied-configuration': '{"huge":"x"}',
        'batch.kubernetes.io/job-tracking': '',
      },
      finalizers: ['foregroundDeletion', 7],
      ownerReferences: [
        {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          name: 'nightly',
          uid: 'c-1',
          controller: true,
          blockOwnerDeletion: true,
        },
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'cm-1' },
        { kind: 'Broken' },
      ],
      managedFields: [{ manager: 'kubectl' }],
      ...extra.metadata,
    },
    spec: {
      ttlSecondsAfterFinished: 100,
      template: { spec: { containers: [{ image: 'perl' }] } },
      ...extra.spec,
    },
    status: { conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: new Date(FINISHED_MS) }] },
  };
}

describe('toSummary', () => {
  test('keeps only the fields the rules need', () => {
    const raw = rawJob();
    const s = toSummary(raw, jobFinish(raw));
    assert.deepEqual(s, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      namespace: 'team-a',
      name: 'pi',
      uid: 'u-1',
      resourceVersion: '42',
      creationMs: CREATED_MS,
      labels: { app: 'pi', team: 'a' },
      annotations: {
        'kttl.dev/ttl': '1h',
        'kttl.dev/keep': 'false',
        'helm.sh/hook-delete-policy': 'hook-succeeded',
      },
      deletionMs: null,
      finalizers: ['foregroundDeletion'],
      owners: [
        { apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: 'c-1', controller: true },
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', uid: 'cm-1', controller: false },
      ],
      nativeTtlSeconds: 100,
      finish: {
        outcome: 'succeeded',
        atMs: FINISHED_MS,
        timeSource: 'condition',
        reason: 'condition Complete=True',
      },
    });
  });

  test('shares no object with the raw one', () => {
    const raw = rawJob();
    const finish = jobFinish(raw);
    const s = toSummary(raw, finish);
    assert.notEqual(s.labels, raw.metadata.labels);
    assert.notEqual(s.finalizers, raw.metadata.finalizers);
    assert.notEqual(s.finish, finish);
    raw.metadata.labels.app = 'changed';
    raw.metadata.finalizers.push('x');
    (raw.metadata.ownerReferences[0] as { name: string }).name = 'changed';
    assert.equal(s.labels.app, 'pi');
    assert.deepEqual(s.finalizers, ['foregroundDeletion']);
    assert.equal(s.owners[0]?.name, 'nightly');
  });

  test('timestamps as Date or string; deletionTimestamp', () => {
    const raw = rawJob({
      metadata: { creationTimestamp: new Date(CREATED_MS), deletionTimestamp: '2026-08-02T00:00:00Z' },
    });
    const s = toSummary(raw, null);
    assert.equal(s.creationMs, CREATED_MS);
    assert.equal(s.deletionMs, Date.UTC(2026, 7, 2));
    assert.equal(s.finish, null);
  });

  const ttlCases: Array<[string, unknown, number | null]> = [
    ['absent', undefined, null],
    ['zero', 0, 0],
    ['max int32', 2147483647, 2147483647],
    ['negative', -1, null],
    ['fraction', 1.5, null],
    ['string', '100', null],
    ['above int32', 2147483648, null],
    ['null', null, null],
  ];
  for (const [name, v, want] of ttlCases) {
    test(`nativeTtlSeconds: ${name}`, () => {
      assert.equal(toSummary(rawJob({ spec: { ttlSecondsAfterFinished: v } }), null).nativeTtlSeconds, want);
    });
  }

  test('nativeTtlSeconds only for batch Jobs', () => {
    const crd = { ...rawJob(), apiVersion: 'example.com/v1' };
    assert.equal(toSummary(crd, null).nativeTtlSeconds, null);
    const podLike = { ...rawJob(), apiVersion: 'v1', kind: 'Pod' };
    assert.equal(toSummary(podLike, null).nativeTtlSeconds, null);
  });

  test('list items without apiVersion/kind take them from the type argument', () => {
    const { apiVersion: _a, kind: _k, ...item } = rawJob();
    const s = toSummary(item, null, { apiVersion: 'batch/v1', kind: 'Job' });
    assert.equal(s.kind, 'Job');
    assert.equal(s.apiVersion, 'batch/v1');
    assert.equal(s.nativeTtlSeconds, 100);
    assert.equal(toSummary(item, null).nativeTtlSeconds, null);
  });

  test('cluster-scoped and sparse objects', () => {
    const s = toSummary({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }, null);
    assert.equal(s.namespace, '');
    assert.equal(s.creationMs, 0);
    assert.deepEqual(s.labels, {});
    assert.deepEqual(s.annotations, {});
    assert.deepEqual(s.owners, []);
    const empty = toSummary(null, null);
    assert.equal(empty.name, '');
  });

  test('non-string label values are dropped; prototype keys stay plain keys', () => {
    const raw = rawJob({ metadata: { labels: JSON.parse('{"a":"1","b":2,"__proto__":"p"}') } });
    const s = toSummary(raw, null);
    assert.deepEqual(Object.keys(s.labels).sort(), ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(s.labels), Object.prototype);
  });

  test('finish is copied', () => {
    const f: Finish = {
      outcome: 'failed',
      atMs: null,
      timeSource: 'firstSeen',
      reason: '.status.phase=Failed',
    };
    const s = toSummary(rawJob(), f);
    assert.deepEqual(s.finish, f);
    assert.notEqual(s.finish, f);
  });
});
