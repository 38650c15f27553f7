// The protobuf decoders (src/kube/protobuf/) against an independent writer
// (test/unit/kube/protobuf-writer.ts): whatever a Job or Pod holds, with unknown fields of every
// wire type wherever the real encoding has fields the reader skips, the summary the rules judge is
// the one the JSON of the same object gives. test/integration/protobuf.test.ts does the same with
// the real API server's encoding.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  decodeList,
  decodeWatchEvent,
  FrameSplitter,
  protobufKind,
  statusText,
} from '../../../src/kube/protobuf/k8s.ts';
import { ProtobufError, Reader } from '../../../src/kube/protobuf/wire.ts';
import { summarizeObject } from '../../../src/rules/summary.ts';
import {
  encodeEvent,
  encodeJob,
  encodeList,
  encodePod,
  envelope,
  frame,
  type Noise,
  type UnknownField,
  Writer,
  writeUnknown,
} from './protobuf-writer.ts';

const JOB = protobufKind('batch', 'v1', 'Job')!;
const POD = protobufKind('', 'v1', 'Pod')!;
const JOB_TYPE = { apiVersion: 'batch/v1', kind: 'Job' };
const POD_TYPE = { apiVersion: 'v1', kind: 'Pod' };

// Whole seconds between 1970 and 2100, as the API server writes metav1.Time.
const time = fc
  .integer({ min: 0, max: 4_102_444_800 })
  .map((s) => `${new Date(s * 1000).toISOString().slice(0, 19)}Z`);
const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 8 }));
const ANNOTATION_KEYS = [
  'kttl.dev/ttl',
  'kttl.dev/ttl-succeeded',
  'kttl.dev/ttl-failed',
  'kttl.dev/keep',
  'kttl.dev/expires',
  'helm.sh/hook-delete-policy',
  'team',
];
const annotations = fc.dictionary(
  fc.oneof(fc.constantFrom(...ANNOTATION_KEYS), fc.string({ maxLength: 10 })),
  fc.oneof(fc.constantFrom('0s', '30s', '1h', 'true', '2026-01-01T00:00:00Z'), text),
  { maxKeys: 5 },
);
const labels = fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), text, { maxKeys: 4 });
const owner = fc.record(
  {
    apiVersion: fc.constantFrom('batch/v1', 'apps/v1', 'example.com/v1'),
    kind: fc.constantFrom('Job', 'CronJob', 'ReplicaSet', 'Workflow'),
    name: fc.string({ minLength: 1, maxLength: 12 }),
    uid: fc.uuid(),
    controller: fc.boolean(),
  },
  { requiredKeys: ['apiVersion', 'kind', 'name', 'uid'] },
);
const metadata = fc.record(
  {
    name: fc.string({ minLength: 1, maxLength: 20 }),
    namespace: fc.string({ minLength: 1, maxLength: 12 }),
    uid: fc.uuid(),
    resourceVersion: fc.integer({ min: 1 }).map(String),
    creationTimestamp: time,
    deletionTimestamp: time,
    labels,
    annotations,
    ownerReferences: fc.array(owner, { maxLength: 2 }),
    finalizers: fc.array(
      fc.constantFrom('batch.kubernetes.io/job-tracking', 'kttl.dev/x', 'foregroundDeletion'),
      {
        maxLength: 2,
      },
    ),
  },
  { requiredKeys: ['name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp'] },
);
const condition = fc.record(
  {
    type: fc.constantFrom('Complete', 'Failed', 'SuccessCriteriaMet', 'FailureTarget', 'Suspended'),
    status: fc.constantFrom('True', 'False', 'Unknown'),
    lastProbeTime: time,
    lastTransitionTime: time,
  },
  { requiredKeys: ['type', 'status'] },
);
const job = fc.record(
  {
    metadata,
    spec: fc.record(
      { ttlSecondsAfterFinished: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
      { requiredKeys: [] },
    ),
    status: fc.record({ conditions: fc.array(condition, { maxLength: 3 }) }, { requiredKeys: [] }),
  },
  { requiredKeys: ['metadata'] },
);
const containerStatus = fc.record(
  {
    state: fc.oneof(
      fc.constant({ running: {} }),
      fc.record({ terminated: fc.record({ finishedAt: time }, { requiredKeys: [] }) }),
    ),
  },
  { requiredKeys: [] },
);
const pod = fc.record({
  metadata,
  status: fc.record(
    {
      phase: fc.constantFrom('Pending', 'Running', 'Succeeded', 'Failed', 'Unknown', ''),
      containerStatuses: fc.array(containerStatus, { maxLength: 3 }),
      initContainerStatuses: fc.array(containerStatus, { maxLength: 2 }),
      ephemeralContainerStatuses: fc.array(containerStatus, { maxLength: 1 }),
    },
    { requiredKeys: [] },
  ),
});

const unknownField: fc.Arbitrary<UnknownField> = fc.letrec<{ f: UnknownField }>((tie) => ({
  f: fc.oneof(
    { depthSize: 'small' },
    fc.record({
      field: fc.integer({ min: 100, max: 2 ** 29 - 1 }),
      wire: fc.constant(0 as const),
      value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    }),
    fc.record({
      field: fc.integer({ min: 100, max: 5000 }),
      wire: fc.constant(1 as const),
      value: fc.bigInt(),
    }),
    fc.record({
      field: fc.integer({ min: 100, max: 5000 }),
      wire: fc.constant(2 as const),
      value: fc.uint8Array({ maxLength: 40 }),
    }),
    fc.record({
      field: fc.integer({ min: 100, max: 5000 }),
      wire: fc.constant(3 as const),
      inner: fc.array(tie('f'), { maxLength: 2 }),
    }),
    fc.record({ field: fc.integer({ min: 100, max: 5000 }), wire: fc.constant(5 as const), value: fc.nat() }),
  ),
})).f;
/** Unknown fields to write at each point the writer offers (the same list every time: cheap). */
const noise: fc.Arbitrary<Noise> = fc.array(unknownField, { maxLength: 3 }).map((fields) => (w: Writer) => {
  for (const f of fields) writeUnknown(w, f);
});

/** What the API server's JSON would say: the object through JSON (as a watch line is parsed). */
const asJson = (o: unknown) => JSON.parse(JSON.stringify(o));

test('a Job decoded from a list gives the summary of its JSON', () => {
  fc.assert(
    fc.property(fc.array(job, { minLength: 1, maxLength: 4 }), noise, fc.string(), (jobs, n, cont) => {
      const body = encodeList(
        'batch/v1',
        'JobList',
        jobs.map((j) => encodeJob(j, n)),
        { resourceVersion: '42', continue: cont },
      );
      const list = decodeList(JOB, body);
      assert.equal(list.metadata.resourceVersion, '42');
      assert.equal(list.metadata.continue, cont);
      assert.equal(list.items.length, jobs.length);
      for (const [i, j] of jobs.entries())
        assert.deepEqual(summarizeObject(list.items[i], JOB_TYPE), summarizeObject(asJson(j), JOB_TYPE));
    }),
    { numRuns: 300 },
  );
});

test('a Pod decoded from a watch frame gives the summary of its JSON, apiVersion and kind from the envelope', () => {
  fc.assert(
    fc.property(pod, noise, fc.constantFrom('ADDED', 'MODIFIED', 'DELETED'), (p, n, type) => {
      const ev = decodeWatchEvent(POD, encodeEvent(type, envelope('v1', 'Pod', encodePod(p, n))));
      assert.equal(ev.type, type);
      assert.equal(ev.object.apiVersion, 'v1');
      assert.equal(ev.object.kind, 'Pod');
      assert.deepEqual(summarizeObject(ev.object, POD_TYPE), summarizeObject(asJson(p), POD_TYPE));
    }),
    { numRuns: 300 },
  );
});

test('the Job fields the rules read come out as the JSON has them', () => {
  const j = {
    metadata: {
      name: 'pi',
      namespace: 'default',
      uid: 'u-1',
      resourceVersion: '7',
      creationTimestamp: '2026-12-03T08:00:00Z',
      annotations: { 'kttl.dev/ttl': '30s' },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'c', uid: 'u-0', controller: true }],
    },
    spec: { ttlSecondsAfterFinished: -5 },
    status: {
      conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: '2026-12-03T08:01:02Z' }],
    },
  };
  const [got] = decodeList(JOB, encodeList('batch/v1', 'JobList', [encodeJob(j)], {})).items;
  assert.deepEqual(got, j);
});

test('a watch ERROR frame gives its Status; an error body gives the JSON text toApiError reads', () => {
  const status = new Writer()
    .string(2, 'Failure')
    .string(3, 'too old resource version: 1 (5)')
    .string(4, 'Expired')
    .int(6, 410)
    .finish();
  const ev = decodeWatchEvent(JOB, encodeEvent('ERROR', envelope('v1', 'Status', status)));
  assert.equal(ev.type, 'ERROR');
  assert.equal(ev.object.code, 410);
  assert.equal(ev.object.reason, 'Expired');
  assert.deepEqual(JSON.parse(statusText(envelope('v1', 'Status', status))!), {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: 'too old resource version: 1 (5)',
    reason: 'Expired',
    code: 410,
  });
  assert.equal(statusText(new TextEncoder().encode('{"kind":"Status"}')), null);
});

test('a list of another kind is refused, not misread', () => {
  assert.throws(() => decodeList(JOB, encodeList('v1', 'PodList', [], {})), ProtobufError);
  assert.throws(() => decodeList(JOB, new TextEncoder().encode('{"items":[]}')), ProtobufError);
});

test('frames come out whole wherever the stream is cut', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (payloads, cuts) => {
        const stream = Buffer.concat(payloads.map(frame));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const splitter = new FrameSplitter();
        const got: Buffer[] = [];
        let from = 0;
        for (const to of [...points, stream.length]) {
          for (const f of splitter.push(stream.subarray(from, to))) got.push(Buffer.from(f));
          from = to;
        }
        assert.deepEqual(
          got.map((b) => b.toString('hex')),
          payloads.map((p) => Buffer.from(p).toString('hex')),
        );
        assert.equal(splitter.pendingBytes, 0);
      },
    ),
  );
});

test('a frame longer than the bound ends the stream instead of buffering it', () => {
  const splitter = new FrameSplitter(1024);
  assert.throws(() => splitter.push(Uint8Array.from([0, 0, 0x04, 0x01, 1, 2])), /over 1024/);
});

test('varints decode as the reference writer encodes them', () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.maxSafeInteger(), (i32, i64) => {
      const w = new Writer().int(1, i32).int(2, i64).int(3, -i64);
      const r = new Reader(w.finish());
      r.tag();
      assert.equal(r.int32(), i32);
      r.tag();
      assert.equal(r.int64(), i64);
      r.tag();
      assert.equal(r.int64(), -i64 || 0);
      assert.ok(r.done);
    }),
  );
});

test('a truncated or corrupt object throws a ProtobufError, never a wrong object', () => {
  fc.assert(
    fc.property(job, fc.nat(), (j, at) => {
      const body = encodeList('batch/v1', 'JobList', [encodeJob(j)], { resourceVersion: '1' });
      const cut = body.subarray(0, 6 + (at % (body.length - 6)));
      try {
        const list = decodeList(JOB, cut);
        // The list is one length-delimited field: a cut inside it cannot decode. Cut before it,
        // the list is empty; after it (the trailing contentType), whole.
        if (list.items.length > 0) assert.deepEqual(list.items, decodeList(JOB, body).items);
      } catch (err) {
        assert.ok(err instanceof ProtobufError, String(err));
      }
    }),
  );
});
