// The core controller on the real control plane (native ttl-after-finished controller off):
// upstream semantics for Jobs, one precondition-guarded DELETE, nothing deleted that should live.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { JobObserver, jobExists, jobFinishMs, waitForJobDeletion } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  jobManifest,
  newNamespace,
  sleep,
  TEST_LABELS,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

const latenesses: number[] = [];
const observers = new Map<string, JobObserver>();

/** A fresh namespace with a JobObserver watching it. */
async function observedNamespace(tb: Testbed, c: Clients): Promise<string> {
  const ns = await newNamespace(c, 'ctl');
  observers.set(ns, await JobObserver.start(tb, ns));
  return ns;
}

describe('controller: Jobs', () => {
  let tb: Testbed;
  let c: Clients;
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
  });
  after(() => {
    for (const o of observers.values()) o.stop();
    if (latenesses.length) {
      const sorted = [...latenesses].sort((a, b) => a - b);
      console.log(
        `# measured lateness (deletion seen − (lastTransitionTime + TTL)), n=${sorted.length}: min ${sorted[0]!.toFixed(3)} s, max ${sorted.at(-1)!.toFixed(3)} s`,
      );
    }
  });

  /** Asserts the Job is deleted within 1 s of its expiry (finish time + ttl) and returns the lateness. */
  async function expectDeletedOnTime(ns: string, name: string, ttlSeconds: number): Promise<number> {
    const observer = observers.get(ns);
    assert.ok(observer, `no JobObserver for ${ns}`);
    const { finishMs } = await observer.waitFor(name, 'finished');
    const { deletionSeenMs } = await observer.waitFor(name, 'deleted', (ttlSeconds + 20) * 1000);
    const lateness = (deletionSeenMs! - (finishMs! + ttlSeconds * 1000)) / 1000;
    latenesses.push(lateness);
    assert.ok(lateness >= -0.05, `deleted ${(-lateness).toFixed(3)} s BEFORE expiry`);
    // lastTransitionTime has 1 s precision, so seen − expiry includes up to 1 s of truncation.
    assert.ok(lateness < 2, `deleted ${lateness.toFixed(3)} s after expiry`);
    return lateness;
  }

  test('TTL 0: deleted at once, Foreground, and its pods cascade away', async () => {
    const ns = await observedNamespace(tb, c);
    const kttl = await startInProcess(tb, runOptions([ns]));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'zero', namespace: ns, ttlSecondsAfterFinished: 0 }),
      });
      await expectDeletedOnTime(ns, 'zero', 0);
      await waitFor('job gone', async () => !(await jobExists(c, ns, 'zero')).exists, 30_000);
      await waitFor(
        'pods gone',
        async () => (await c.core.listNamespacedPod({ namespace: ns })).items.length === 0,
        30_000,
      );
      assert.equal(
        await metricValue(kttl.registry, 'kttl_deletions_total', {
          kind: 'Job',
          outcome: 'succeeded',
          source: 'field',
          dry_run: 'false',
        }),
        1,
      );
      // One request per deletion: exactly one DELETE, no GET.
      assert.equal(await metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'delete' }), 1);
      assert.equal(
        (await metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'get' })) -
          (await probeGets(kttl.registry)),
        0,
      );
    } finally {
      await kttl.stop();
    }
  });

  test('a TTL of a few seconds (annotation and native field, success and failure) is honoured within 1 s', async () => {
    const ns = await observedNamespace(tb, c);
    const kttl = await startInProcess(tb, runOptions([ns]));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'field3', namespace: ns, ttlSecondsAfterFinished: 3 }),
      });
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'annot2', namespace: ns, annotations: { 'kttl.dev/ttl': '2s' } }),
      });
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({
          name: 'failed2',
          namespace: ns,
          annotations: { 'kttl.dev/ttl-failed': '2s', 'kttl.dev/ttl': '1h' },
          podLabels: { [TEST_LABELS.fail]: 'true' },
        }),
      });
      await Promise.all([
        expectDeletedOnTime(ns, 'field3', 3),
        expectDeletedOnTime(ns, 'annot2', 2),
        expectDeletedOnTime(ns, 'failed2', 2),
      ]);
      assert.equal(
        await metricValue(kttl.registry, 'kttl_deletions_total', { outcome: 'failed', source: 'annotation' }),
        1,
      );
    } finally {
      await kttl.stop();
    }
  });

  test('kept: no TTL, unfinished with TTL 0, kttl.dev/keep, and a TTL not yet expired', async () => {
    const ns = await observedNamespace(tb, c);
    const kttl = await startInProcess(tb, runOptions([ns]));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'no-ttl', namespace: ns }),
      });
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({
          name: 'running',
          namespace: ns,
          ttlSecondsAfterFinished: 0,
          podLabels: { [TEST_LABELS.run]: 'true' },
        }),
      });
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({
          name: 'keep',
          namespace: ns,
          ttlSecondsAfterFinished: 0,
          annotations: { 'kttl.dev/keep': 'true' },
        }),
      });
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'later', namespace: ns, annotations: { 'kttl.dev/ttl': '1h' } }),
      });
      await waitForJob(c, ns, 'no-ttl', 'Complete');
      await waitForJob(c, ns, 'keep', 'Complete');
      await waitForJob(c, ns, 'later', 'Complete');
      await waitFor(
        'running pod Running',
        async () =>
          (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=running' })).items[0]
            ?.status?.phase === 'Running',
        30_000,
      );
      await sleep(4000);
      for (const name of ['no-ttl', 'running', 'keep', 'later']) {
        const s = await jobExists(c, ns, name);
        assert.ok(s.exists && !s.deleting, `${name} must be kept`);
      }
      assert.equal(await metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'delete' }), 0);
    } finally {
      await kttl.stop();
    }
  });

  test('a finalizer is honoured: deletionTimestamp set, object stays until the finalizer is removed', async () => {
    const ns = await observedNamespace(tb, c);
    const kttl = await startInProcess(tb, runOptions([ns]));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({
          name: 'fin',
          namespace: ns,
          ttlSecondsAfterFinished: 1,
          finalizers: ['kttl.test/hold'],
        }),
      });
      await waitForJobDeletion(c, ns, 'fin', 30_000);
      await sleep(2000);
      const held = await c.batch.readNamespacedJob({ name: 'fin', namespace: ns });
      assert.ok(held.metadata?.deletionTimestamp, 'marked for deletion');
      assert.deepEqual(
        held.metadata?.finalizers?.filter((f) => f === 'kttl.test/hold'),
        ['kttl.test/hold'],
        'our finalizer untouched',
      );
      assert.equal(
        await metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'delete' }),
        1,
        'no second delete while it waits',
      );
      await tb.kubectl([
        '-n',
        ns,
        'patch',
        'job',
        'fin',
        '--type=json',
        '-p',
        JSON.stringify([
          {
            op: 'remove',
            path: `/metadata/finalizers/${held.metadata!.finalizers!.indexOf('kttl.test/hold')}`,
          },
        ]),
      ]);
      await waitFor(
        'job gone after finalizer removed',
        async () => !(await jobExists(c, ns, 'fin')).exists,
        30_000,
      );
    } finally {
      await kttl.stop();
    }
  });

  test('a TTL set on an already finished Job deletes it; an extended TTL is honoured', async () => {
    const ns = await observedNamespace(tb, c);
    const kttl = await startInProcess(tb, runOptions([ns]));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'late-ttl', namespace: ns }),
      });
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'extended', namespace: ns, annotations: { 'kttl.dev/ttl': '3s' } }),
      });
      await waitForJob(c, ns, 'late-ttl', 'Complete');
      await waitForJob(c, ns, 'extended', 'Complete');
      // Extend before expiry: 3 s → 8 s.
      await tb.kubectl(['-n', ns, 'annotate', '--overwrite', 'job', 'extended', 'kttl.dev/ttl=8s']);
      await sleep(1000);
      await tb.kubectl([
        '-n',
        ns,
        'patch',
        'job',
        'late-ttl',
        '-p',
        '{"spec":{"ttlSecondsAfterFinished":0}}',
      ]);
      await waitForJobDeletion(c, ns, 'late-ttl', 10_000);
      const finish = await jobFinishMs(c, ns, 'extended');
      await waitFor('past the old expiry', async () => Date.now() > finish + 4500, 10_000);
      assert.ok(
        (await jobExists(c, ns, 'extended')).exists && !(await jobExists(c, ns, 'extended')).deleting,
        'kept past the old expiry',
      );
      await expectDeletedOnTime(ns, 'extended', 8);
    } finally {
      await kttl.stop();
    }
  });

  test('TTL extended inside the window between judging and deleting: the precondition refuses, the Job is kept', async () => {
    const ns = await observedNamespace(tb, c);
    let extended = false;
    const kttl = await startInProcess(tb, runOptions([ns]), async (obj) => {
      if (obj.name !== 'race' || extended) return;
      extended = true;
      await tb.kubectl(['-n', ns, 'annotate', '--overwrite', 'job', 'race', 'kttl.dev/ttl=1h']);
    });
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'race', namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } }),
      });
      await waitFor('the window was hit', async () => extended, 30_000);
      await waitFor(
        'conflict counted',
        async () => (await metricValue(kttl.registry, 'kttl_delete_conflicts_total')) === 1,
        10_000,
      );
      await sleep(2000);
      const s = await jobExists(c, ns, 'race');
      assert.ok(s.exists && !s.deleting, 'kept');
      assert.equal(await metricValue(kttl.registry, 'kttl_deletions_total'), 0);
    } finally {
      await kttl.stop();
    }
  });

  test('replaced by a new Job of the same name inside the window: the new one is judged on its own and kept', async () => {
    const ns = await observedNamespace(tb, c);
    let replaced = '';
    const kttl = await startInProcess(tb, runOptions([ns]), async (obj) => {
      if (obj.name !== 'twin' || replaced) return;
      await c.batch.deleteNamespacedJob({ name: 'twin', namespace: ns, propagationPolicy: 'Background' });
      await waitFor('old twin gone', async () => !(await jobExists(c, ns, 'twin')).exists, 10_000);
      const fresh = await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({
          name: 'twin',
          namespace: ns,
          ttlSecondsAfterFinished: 0,
          podLabels: { [TEST_LABELS.run]: 'true' },
        }),
      });
      replaced = fresh.metadata!.uid!;
    });
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'twin', namespace: ns, ttlSecondsAfterFinished: 1 }),
      });
      await waitFor('replaced inside the window', async () => replaced !== '', 30_000);
      await sleep(3000);
      const s = await jobExists(c, ns, 'twin');
      assert.equal(s.uid, replaced, 'the new Job exists');
      assert.ok(!s.deleting, 'the new Job is not being deleted');
      assert.equal(
        await metricValue(kttl.registry, 'kttl_deletions_total'),
        0,
        'nothing was deleted by kttl',
      );
    } finally {
      await kttl.stop();
    }
  });

  test('an invalid TTL keeps the Job and raises one Warning Event naming the value', async () => {
    const ns = await observedNamespace(tb, c);
    const kttl = await startInProcess(tb, runOptions([ns]));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({
          name: 'typo',
          namespace: ns,
          ttlSecondsAfterFinished: 0,
          annotations: { 'kttl.dev/ttl': '5 minutes' },
        }),
      });
      await waitForJob(c, ns, 'typo', 'Complete');
      const ev = await waitFor(
        'Warning event',
        async () => {
          const list = await c.core.listNamespacedEvent({
            namespace: ns,
            fieldSelector: 'involvedObject.name=typo,reason=InvalidTTL',
          });
          return list.items[0];
        },
        15_000,
      );
      assert.equal(ev.type, 'Warning');
      assert.match(ev.message ?? '', /5 minutes/);
      await sleep(2000);
      assert.ok((await jobExists(c, ns, 'typo')).exists);
      assert.equal(await metricValue(kttl.registry, 'kttl_invalid_ttl_total'), 1);
    } finally {
      await kttl.stop();
    }
  });

  test('dry-run deletes nothing and counts what it would delete', async () => {
    const ns = await observedNamespace(tb, c);
    const kttl = await startInProcess(tb, runOptions([ns], { dryRun: true }));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'dry', namespace: ns, ttlSecondsAfterFinished: 0 }),
      });
      await waitFor(
        'counted as would-delete',
        async () => (await metricValue(kttl.registry, 'kttl_deletions_total', { dry_run: 'true' })) === 1,
        20_000,
      );
      await sleep(1500);
      assert.ok((await jobExists(c, ns, 'dry')).exists);
      assert.equal(await metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'delete' }), 0);
    } finally {
      await kttl.stop();
    }
  });

  test('a Normal event is recorded on the Job before it is deleted', async () => {
    const ns = await observedNamespace(tb, c);
    const kttl = await startInProcess(tb, runOptions([ns]));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'evented', namespace: ns, ttlSecondsAfterFinished: 0 }),
      });
      await waitForJobDeletion(c, ns, 'evented');
      const ev = await waitFor(
        'TTLExpired event',
        async () =>
          (
            await c.core.listNamespacedEvent({
              namespace: ns,
              fieldSelector: 'involvedObject.name=evented,reason=TTLExpired',
            })
          ).items[0],
        10_000,
      );
      assert.equal(ev.type, 'Normal');
      assert.match(ev.message ?? '', /Foreground/);
    } finally {
      await kttl.stop();
    }
  });

  test('idle, kttl sends only a few requests a minute (no polling loop eats the budget)', async () => {
    // Guards against the bug seen once in development: a probe timer of NaN ms became a 1-ms loop
    // of LISTs (~1,200 requests a minute) that spent the whole QPS budget.
    const ns = await newNamespace(c, 'idle');
    const kttl = await startInProcess(tb, runOptions([ns]));
    try {
      await sleep(8_000); // past the start-up: syncs, watches, the clock-skew bisection
      const before = await metricValue(kttl.registry, 'kttl_api_requests_total');
      await sleep(30_000);
      const sent = (await metricValue(kttl.registry, 'kttl_api_requests_total')) - before;
      console.log(`# idle: ${sent} requests in 30 s (skew probes, discovery of kinds not installed)`);
      // Expected: ~2 clock probes, and ~10 discovery requests per 30 s poll for each optional kind not
      // installed (up to two polls in the window). The bug sent ~600.
      assert.ok(sent <= 45, `${sent} requests in 30 s idle`);
    } finally {
      await kttl.stop();
    }
  });
});

/** GETs of /version made by the clock-skew probe (the only GETs a healthy run makes). */
async function probeGets(registry: import('prom-client').Registry): Promise<number> {
  return metricValue(registry, 'kttl_api_requests_total', { verb: 'get' });
}
