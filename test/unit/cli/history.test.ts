// `kttl history` and `kttl logs` without a cluster: the archive API's JSON shapes (docs/archive.md)
// into selectors, tables and the record's text; which archived log a flag set names; failures as
// one line (src/cli/shared/history-*.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { describeFailure, UserError } from '../../../src/cli/errors.ts';
import type { Cluster } from '../../../src/cli/shared/cluster.ts';
import { archiveFailure, NOT_AVAILABLE } from '../../../src/cli/shared/history-api.ts';
import {
  builtinRecordKind,
  chooseLog,
  type DeletedObject,
  type DeletedObjectSummary,
  guessedRecordKind,
  listQuery,
  liveLogsCommand,
  newestFirst,
  selectRecords,
} from '../../../src/cli/shared/history-model.ts';
import {
  historyListDoc,
  historyRows,
  historyTable,
  recordText,
} from '../../../src/cli/shared/history-render.ts';
import { parseKindSpelling } from '../../../src/cli/shared/refs.ts';
import { ApiError } from '../../../src/kube/errors.ts';

const NOW = Date.parse('2026-12-02T03:00:00Z');

function summary(
  name: string,
  deletedAt: string,
  o: Partial<DeletedObjectSummary> & { kind?: string; apiVersion?: string; uid?: string } = {},
): DeletedObjectSummary {
  const kind = o.kind ?? 'Job';
  const uid = o.uid ?? `${name}-0000-uid`;
  return {
    apiVersion: 'archive.kttl.dev/v1alpha1',
    kind: 'DeletedObject',
    metadata: {
      name: `${kind.toLowerCase()}.${name}.${uid.slice(0, 8)}`,
      namespace: o.metadata?.namespace ?? 'team-a',
      uid,
      creationTimestamp: deletedAt,
      labels: {},
    },
    object: { apiVersion: o.apiVersion ?? 'batch/v1', kind, name, uid, resourceVersion: '42' },
    cluster: 'default',
    outcome: o.outcome ?? 'succeeded',
    finishedAt: o.finishedAt === undefined ? '2026-12-02T02:00:00Z' : o.finishedAt,
    deletedAt,
    ttl: o.ttl ?? { seconds: 3600, source: 'annotation' },
    state: o.state ?? 'deleted',
  };
}

const record: DeletedObject = {
  ...summary('train-42', '2026-12-02T02:50:00Z', { outcome: 'failed', uid: '5f3c2a1b-aaaa-bbbb' }),
  finishTimeSource: 'condition',
  reason: 'TTL 1h (annotation kttl.dev/ttl-failed=1h) expired',
  ttl: { seconds: 3600, source: 'annotation', detail: 'annotation kttl.dev/ttl-failed=1h' },
  ownerReferences: [],
  logs: [
    { pod: 'train-42-abc', container: 'main', containerType: 'regular', truncated: true, bytes: 2048 },
    { pod: 'train-42-abc', container: 'setup', containerType: 'init', truncated: false, bytes: 10 },
  ],
  events: [
    {
      involvedKind: 'Job',
      involvedName: 'train-42',
      type: 'Warning',
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached\nthe specified backoff limit',
      count: 1,
      firstTime: '2026-12-02T01:49:00Z',
      lastTime: '2026-12-02T01:50:00Z',
      source: 'job-controller',
    },
  ],
  captureErrors: [],
};

describe('kinds of records', () => {
  test('a built-in kind is known offline, with its group', () => {
    const k = builtinRecordKind(parseKindSpelling('jobs'))!;
    assert.equal(k.kind, 'Job');
    assert.equal(k.group, 'batch');
    assert.ok(k.matches(summary('a', '2026-12-02T02:00:00Z').object));
    // Volcano's Job has the same kind name in another group: not a batch Job.
    assert.ok(
      !k.matches({
        apiVersion: 'batch.volcano.sh/v1alpha1',
        kind: 'Job',
        name: 'a',
        uid: 'u',
        resourceVersion: '1',
      }),
    );
    assert.equal(builtinRecordKind(parseKindSpelling('wf'))!.kind, 'Workflow');
    assert.equal(builtinRecordKind(parseKindSpelling('widgets.example.com')), null);
  });

  test('an unknown kind matches by its kind name or plural, and its group when given', () => {
    const w = { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w1', uid: 'u', resourceVersion: '1' };
    const p = { apiVersion: 'example.com/v1', kind: 'Policy', name: 'p', uid: 'u', resourceVersion: '1' };
    for (const t of ['widget', 'widgets', 'Widget', 'widgets.example.com', 'example.com/widget'])
      assert.ok(guessedRecordKind(parseKindSpelling(t)).matches(w), t);
    assert.ok(!guessedRecordKind(parseKindSpelling('widgets.other.io')).matches(w));
    assert.ok(guessedRecordKind(parseKindSpelling('policies')).matches(p));
    assert.equal(guessedRecordKind(parseKindSpelling('widgets')).kind, undefined);
  });
});

describe('the list request', () => {
  test('field selectors of the API: object.kind, object.name, outcome, deletedAfter; the label selector as given', () => {
    const kind = builtinRecordKind(parseKindSpelling('job'))!;
    assert.deepEqual(
      listQuery({
        kind,
        name: 'train-42',
        outcome: 'failed',
        deletedAfterMs: Date.parse('2026-12-01T03:00:00.500Z'),
        labelSelector: 'team=a',
      }),
      {
        fieldSelector:
          'object.kind=Job,object.name=train-42,outcome=failed,deletedAfter=2026-12-01T03:00:00Z',
        labelSelector: 'team=a',
      },
    );
    assert.deepEqual(listQuery({}), {});
    // A kind matched here (no exact kind name) is not sent.
    assert.deepEqual(listQuery({ kind: guessedRecordKind(parseKindSpelling('widgets')) }), {});
  });

  test('records newest first, once each, narrowed by kind group and name', () => {
    const a = summary('a', '2026-12-02T01:00:00Z');
    const b = summary('b', '2026-12-02T02:00:00Z');
    const v = summary('v', '2026-12-02T02:30:00Z', { apiVersion: 'batch.volcano.sh/v1alpha1' });
    const kind = builtinRecordKind(parseKindSpelling('jobs'))!;
    assert.deepEqual(
      selectRecords([a, b, v, b], { kind }).map((x) => x.object.name),
      ['b', 'a'],
    );
    assert.deepEqual(
      selectRecords([a, b, v], { name: 'a' }).map((x) => x.object.name),
      ['a'],
    );
  });

  test('newestFirst is a total order: sorted lists have non-increasing deletedAt', () => {
    const arb = fc.array(
      fc.record({
        name: fc.constantFrom('a', 'b', 'c'),
        ns: fc.constantFrom('x', 'y'),
        at: fc.integer({ min: 0, max: 10 }),
      }),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(arb, (xs) => {
        const items = xs.map((x) =>
          summary(x.name, new Date(NOW - x.at * 60_000).toISOString(), {
            metadata: { namespace: x.ns, name: '' },
          }),
        );
        const sorted = [...items].sort(newestFirst);
        for (let i = 1; i < sorted.length; i++)
          assert.ok(Date.parse(sorted[i - 1]!.deletedAt) >= Date.parse(sorted[i]!.deletedAt));
        assert.deepEqual([...items].reverse().sort(newestFirst), sorted);
      }),
    );
  });
});

describe('the table', () => {
  const items = [
    summary('train-42', '2026-12-02T02:50:00Z', {
      outcome: 'failed',
      ttl: { seconds: 604800, source: 'annotation' },
    }),
    summary('nightly', '2026-12-02T02:00:00Z', { finishedAt: null, ttl: { seconds: 600, source: 'field' } }),
  ];

  test('columns NAME KIND OUTCOME FINISHED DELETED TTL SOURCE; ages on the given clock', () => {
    const { head, rows } = historyRows(items, { namespace: 'team-a', wide: false, nowMs: NOW });
    assert.deepEqual(head, ['NAME', 'KIND', 'OUTCOME', 'FINISHED', 'DELETED', 'TTL SOURCE']);
    assert.deepEqual(rows, [
      ['train-42', 'Job', 'Failed', '60m', '10m', 'annotation'],
      ['nightly', 'Job', 'Succeeded', '-', '60m', 'field'],
    ]);
    const text = historyTable(items, { namespace: 'team-a', wide: false, nowMs: NOW }).split('\n');
    assert.match(text[0]!, /^NAME {7}KIND {3}OUTCOME {5}FINISHED {3}DELETED {3}TTL SOURCE$/);
    assert.match(text[1]!, /^train-42 +Job +Failed +60m +10m +annotation$/);
  });

  test('-A adds NAMESPACE first; wide adds TTL, state, cluster, uid and the record name', () => {
    const { head, rows } = historyRows(items, { namespace: undefined, wide: true, nowMs: NOW });
    assert.deepEqual(head, [
      'NAMESPACE',
      'NAME',
      'KIND',
      'OUTCOME',
      'FINISHED',
      'DELETED',
      'TTL SOURCE',
      'TTL',
      'STATE',
      'CLUSTER',
      'UID',
      'RECORD',
    ]);
    assert.deepEqual(rows[0]!.slice(0, 1), ['team-a']);
    assert.deepEqual(rows[0]!.slice(7), [
      '1w',
      'deleted',
      'default',
      'train-42-0000-uid',
      'job.train-42.train-42',
    ]);
  });

  test('-o json: the API list kind with every item', () => {
    const doc = historyListDoc(items);
    assert.equal(doc.kind, 'DeletedObjectList');
    assert.equal(doc.apiVersion, 'archive.kttl.dev/v1alpha1');
    assert.equal(doc.items.length, 2);
  });
});

describe('one record, as explain lays it out', () => {
  test('identity, outcome, finish and its source, TTL and source, deletion, logs, Events', () => {
    const t = recordText(record, { nowMs: NOW, refText: 'job/train-42' });
    const lines = t.split('\n');
    assert.equal(lines[0], 'Job team-a/train-42  (job/train-42, uid 5f3c2a1b-aaaa-bbbb, deleted)');
    assert.match(
      t,
      /^Record: {5}job\.train-42\.5f3c2a1b \(cluster default, batch\/v1, resourceVersion 42\)$/m,
    );
    assert.match(t, /^Outcome: {4}Failed$/m);
    assert.match(
      t,
      /^Finished: {3}2026-12-02T02:00:00Z \(60m ago\), from the lastTransitionTime of its finish condition$/m,
    );
    assert.match(t, /^TTL: {8}1h from annotation \(annotation kttl\.dev\/ttl-failed=1h\)$/m);
    assert.match(t, /^Deleted: {4}2026-12-02T02:50:00Z \(10m ago\)$/m);
    assert.match(t, /^Reason: {5}TTL 1h/m);
    assert.match(t, /^Logs \(kttl logs job\/train-42 -n team-a \[-c CONTAINER\] \[--pod POD\]\):$/m);
    assert.match(t, /^ {2}train-42-abc +main +regular +2\.0Ki +truncated: the last lines only$/m);
    assert.match(t, /^ {2}train-42-abc +setup +init +10B +-$/m);
    assert.match(
      t,
      /^ {2}70m +Warning +BackoffLimitExceeded +job\/train-42 +Job has reached the specified backoff limit$/m,
    );
  });

  test('times to the second, as the API server writes them', () => {
    const t = recordText(
      { ...record, deletedAt: '2026-12-02T02:50:00.750Z' },
      { nowMs: NOW, refText: 'job/train-42' },
    );
    assert.match(t, /^Deleted: {4}2026-12-02T02:50:00Z \(9m59s ago\)$/m);
  });

  test('a pending record and one without logs or Events say so', () => {
    const t = recordText(
      { ...record, state: 'pending', logs: [], events: [], captureErrors: ['events: forbidden'] },
      { nowMs: NOW, refText: 'job/train-42' },
    );
    assert.match(t, /\(pending: recorded before the DELETE, not yet confirmed\)/);
    assert.match(t, /^Logs: {7}none archived$/m);
    assert.match(t, /^Events: {5}none archived$/m);
    assert.match(t, /^Not captured: events: forbidden$/m);
  });
});

describe('which archived log', () => {
  const two: DeletedObject = {
    ...record,
    logs: [
      { pod: 'p1', container: 'main', containerType: 'regular', truncated: false, bytes: 1 },
      { pod: 'p1', container: 'side', containerType: 'regular', truncated: false, bytes: 1 },
      { pod: 'p2', container: 'main', containerType: 'regular', truncated: false, bytes: 1 },
      { pod: 'p3', container: 'only', containerType: 'regular', truncated: false, bytes: 1 },
    ],
  };

  test('the only pod and container without flags; one to choose otherwise, naming the choices', () => {
    const one: DeletedObject = { ...record, logs: [record.logs![0]!] };
    assert.equal(chooseLog(one, {}, 'job/x').container, 'main');
    assert.throws(
      () => chooseLog(two, {}, 'job/x'),
      /job\/x had 3 pods: choose one with --pod \(p1, p2, p3\)/,
    );
    assert.throws(
      () => chooseLog(two, { pod: 'p1' }, 'job/x'),
      /pod p1 of job\/x had 2 containers: choose one with -c \(main, side\)/,
    );
    assert.deepEqual(chooseLog(two, { pod: 'p1', container: 'side' }, 'job/x').container, 'side');
    // A container only one pod had names its pod.
    assert.equal(chooseLog(two, { container: 'only' }, 'job/x').pod, 'p3');
    assert.throws(
      () => chooseLog(two, { pod: 'p9' }, 'job/x'),
      /no archived logs of pod "p9" \(pods: p1, p2, p3\)/,
    );
    assert.throws(
      () => chooseLog(two, { pod: 'p2', container: 'nope' }, 'job/x'),
      /pod p2 of job\/x has no archived container "nope" \(containers: main\)/,
    );
    assert.throws(() => chooseLog({ ...record, logs: [] }, {}, 'job/x'), UserError);
  });

  test("an object that still exists: kubectl logs for Jobs and Pods, its pods' logs for other kinds", () => {
    assert.equal(
      liveLogsCommand({ kind: 'Job', group: 'batch' }, 'x', 'a', 'main'),
      'kubectl logs job/x -n a -c main',
    );
    assert.equal(liveLogsCommand({ kind: 'Pod', group: '' }, 'x', 'a'), 'kubectl logs pod/x -n a');
    assert.match(
      liveLogsCommand({ kind: 'Workflow', group: 'argoproj.io' }, 'x', 'a'),
      /kubectl get pods -n a/,
    );
  });
});

describe('failures, one line each', () => {
  const c = { server: 'https://127.0.0.1:6443' } as Cluster;
  const status = (code: number, reason: string, message: string) =>
    new ApiError(
      'list',
      '/apis/archive.kttl.dev/v1alpha1/namespaces/b/deletedobjects',
      code,
      reason,
      message,
    );

  test('403 names the verb and the resource (exit 2)', () => {
    const d = describeFailure(
      archiveFailure(
        status(403, 'Forbidden', 'deletedobjects.archive.kttl.dev is forbidden: User "alice" cannot list …'),
        c,
        'list',
        'b',
      ),
    );
    assert.deepEqual(d, {
      code: 2,
      line: 'error: forbidden: cannot list deletedobjects.archive.kttl.dev in namespace "b"',
    });
    const log = describeFailure(
      archiveFailure(status(403, 'Forbidden', 'x'), c, 'get', 'b', { name: 'n', subresource: 'log' }),
    );
    assert.equal(
      log.line,
      'error: forbidden: cannot get deletedobjects/log.archive.kttl.dev in namespace "b"',
    );
  });

  test('404 of the group: the archive API is not available (exit 2); of a record: not found (exit 1)', () => {
    const group = describeFailure(
      archiveFailure(
        status(404, 'NotFound', 'the server could not find the requested resource'),
        c,
        'list',
        'b',
      ),
    );
    assert.deepEqual(group, {
      code: 2,
      line: `error: ${NOT_AVAILABLE}`,
    });
    assert.match(
      NOT_AVAILABLE,
      /^the archive API \(archive\.kttl\.dev\) is not available: is kttl run serving it and the APIService registered\?$/,
    );
    const rec = describeFailure(
      archiveFailure(
        status(404, 'NotFound', 'deletedobjects.archive.kttl.dev "job.x.1" not found'),
        c,
        'get',
        'b',
        { name: 'job.x.1' },
      ),
    );
    assert.deepEqual(rec, {
      code: 1,
      line: 'error: deletedobjects.archive.kttl.dev "job.x.1" not found in namespace "b"',
    });
    const gone = describeFailure(
      archiveFailure(
        status(404, 'NotFound', 'the server could not find the requested resource'),
        c,
        'get',
        'b',
        { name: 'job.x.1' },
      ),
    );
    assert.equal(gone.code, 2);
  });

  test('503: registered, not answering; 400: the server says why (a user error)', () => {
    const d = describeFailure(
      archiveFailure(status(503, 'ServiceUnavailable', 'service unavailable'), c, 'list', 'b'),
    );
    assert.equal(d.code, 2);
    assert.match(
      d.line,
      /the archive API \(archive\.kttl\.dev\) is registered but not answering: service unavailable/,
    );
    const store = describeFailure(
      archiveFailure(
        status(503, 'ServiceUnavailable', 'archive store: connect ECONNREFUSED 10.0.0.5:5432'),
        c,
        'list',
        'b',
      ),
    );
    assert.deepEqual(store, {
      code: 2,
      line: 'error: the archive API (archive.kttl.dev) cannot read its store: connect ECONNREFUSED 10.0.0.5:5432',
    });
    const b = describeFailure(
      archiveFailure(status(400, 'BadRequest', 'unknown field selector "foo"'), c, 'list', 'b'),
    );
    assert.deepEqual(b, { code: 1, line: 'error: unknown field selector "foo"' });
  });
});
