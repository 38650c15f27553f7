// Retention beyond one TTL (issue 18, docs/policies.md) on the real control plane: history keeps the
// newest N of a CronJob's Jobs, keepLatest keeps the newest failure past its TTL, kttl.dev/expires
// deletes an unfinished Job (a bad date keeps it, with a Warning Event), a ClusterTTLPolicy maxTtl
// caps a namespaced 30d, ttlPods deletes the pods and keeps the Job, and a restart in the middle of
// a history trim deletes no more than the limit allows. Past finish times are written through the
// Job's status subresource: the Jobs name another manager (spec.managedBy), so the job controller
// leaves their status alone and nothing has to wait a day.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ObjectSummary } from '../../src/rules/types.ts';
import { buildCli, runCli } from '../testbed/cli.ts';
import { type InProcess, metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { JobObserver, jobExists } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  installPolicyCrds,
  jobManifest,
  newNamespace,
  sleep,
  ttlPolicy,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

const MANAGER = 'kttl.test/manual';
const H = 3600_000;

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface PastJob {
  name: string;
  outcome: 'Complete' | 'Failed';
  finishedMs: number;
  owner?: { apiVersion: string; kind: string; name: string; uid: string };
  annotations?: Record<string, string>;
}

/** A Job finished at `finishedMs` (any time in the past), written through /status. */
let testbed: Testbed | undefined;
/** The run's testbed, for the module-level helpers. */
const bed = (): Testbed => testbed!;

async function pastJob(c: Clients, ns: string, j: PastJob): Promise<void> {
  const body = jobManifest({ name: j.name, namespace: ns, annotations: j.annotations });
  (body.spec as { managedBy?: string }).managedBy = MANAGER;
  if (j.owner) body.metadata!.ownerReferences = [{ ...j.owner, controller: true, blockOwnerDeletion: false }];
  await c.batch.createNamespacedJob({ namespace: ns, body });
  const at = iso(j.finishedMs);
  const start = iso(j.finishedMs - 1000);
  const status =
    j.outcome === 'Complete'
      ? {
          startTime: start,
          completionTime: at,
          succeeded: 1,
          conditions: [
            { type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: at, lastProbeTime: at },
            { type: 'Complete', status: 'True', lastTransitionTime: at, lastProbeTime: at },
          ],
        }
      : {
          startTime: start,
          failed: 1,
          conditions: [
            {
              type: 'FailureTarget',
              status: 'True',
              lastTransitionTime: at,
              lastProbeTime: at,
              reason: 'BackoffLimitExceeded',
            },
            {
              type: 'Failed',
              status: 'True',
              lastTransitionTime: at,
              lastProbeTime: at,
              reason: 'BackoffLimitExceeded',
            },
          ],
        };
  await bed().kubectl([
    '-n',
    ns,
    'patch',
    'job',
    j.name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

async function exists(c: Clients, ns: string, name: string): Promise<boolean> {
  return (await jobExists(c, ns, name)).exists;
}

async function existing(c: Clients, ns: string): Promise<string[]> {
  const list = await c.batch.listNamespacedJob({ namespace: ns });
  return list.items
    .filter((j) => !j.metadata?.deletionTimestamp)
    .map((j) => j.metadata!.name!)
    .sort();
}

/** A suspended CronJob (it never runs) whose own history limits are out of the way. */
async function cronJob(c: Clients, ns: string, name: string) {
  const cj = await c.batch.createNamespacedCronJob({
    namespace: ns,
    body: {
      metadata: { name },
      spec: {
        schedule: '0 0 1 1 *',
        suspend: true,
        successfulJobsHistoryLimit: 100,
        failedJobsHistoryLimit: 100,
        jobTemplate: { spec: jobManifest({ name, namespace: ns }).spec! },
      },
    },
  });
  return { apiVersion: 'batch/v1', kind: 'CronJob', name, uid: cj.metadata!.uid! };
}

async function policy(tb: Testbed, obj: object): Promise<void> {
  await tb.kubectl(['apply', '-f', '-'], JSON.stringify(obj));
}

describe('retention beyond one TTL', () => {
  let tb: Testbed;
  let c: Clients;
  const ns: Record<string, string> = {};
  let kttl: InProcess | undefined;
  const capLabel = `cap-${process.pid}`;

  before(async () => {
    tb = await useTestbed();
    testbed = tb;
    c = clientsFor(tb);
    await installPolicyCrds(tb);
    for (const k of ['history', 'annot', 'latest', 'expires', 'cap', 'pods'])
      ns[k] = await newNamespace(c, `ret-${k}`);
    await tb.kubectl(['label', 'namespace', ns.cap!, `kttl.test/cap=${capLabel}`]);
    buildCli();
  });

  after(async () => {
    await kttl?.stop();
    await tb.kubectl(['delete', 'clusterttlpolicy', `max-${capLabel}`, '--ignore-not-found']);
  });

  /** One controller for the namespaces above, started by the first test that needs it. */
  async function start(): Promise<InProcess> {
    kttl ??= await startInProcess(tb, runOptions(Object.values(ns)));
    return kttl;
  }

  test('history {succeeded: 3}: of a CronJob’s 10 finished Jobs exactly the newest 3 stay; explain names the rule', async () => {
    const n = ns.history!;
    const owner = await cronJob(c, n, 'nightly');
    await policy(
      tb,
      ttlPolicy(n, 'runs', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        ttl: '30d',
        history: { succeeded: 3 },
      }),
    );
    const now = Date.now();
    // Finish times not in name order, and two equal ones (the greater name is the newer).
    const ages = [9, 3, 7, 1, 5, 2, 8, 2, 6, 4];
    for (let i = 0; i < 10; i++)
      await pastJob(c, n, {
        name: `nightly-${i}`,
        outcome: 'Complete',
        finishedMs: now - ages[i]! * H,
        owner,
      });
    // One failure: history counts per outcome, so it stays (its TTL is 30d).
    await pastJob(c, n, { name: 'nightly-failed', outcome: 'Failed', finishedMs: now - 10 * H, owner });
    // Before any controller runs, the CLI ranks them as the controller will.
    const listed = await runCli(['list', 'jobs', '-n', n, '-o', 'json'], tb.kubeconfigPath);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = (
      JSON.parse(listed.stdout) as { items: Array<{ name: string; source: string; state: string }> }
    ).items;
    const trimmed = rows.filter((r) => r.source === 'history');
    assert.deepEqual(trimmed.map((r) => r.name).sort(), [
      'nightly-0',
      'nightly-1',
      'nightly-2',
      'nightly-4',
      'nightly-6',
      'nightly-8',
      'nightly-9',
    ]);
    assert.ok(trimmed.every((r) => r.state === 'expired'));
    const why = await runCli(['explain', 'job/nightly-0', '-n', n], tb.kubeconfigPath);
    assert.match(
      why.stdout,
      /Why: +Rule history decides: history: succeeded #10 of owner CronJob\/nightly, beyond the newest 3 kept by policy TTLPolicy\/\S+\/runs: deleted now, whatever its TTL\./,
    );
    await start();
    const newest = ['nightly-3', 'nightly-5', 'nightly-7']; // 1 h, then 2 h twice ("7" > "5")
    await waitFor('the trim', async () => (await existing(c, n)).length === 4, 30_000);
    assert.deepEqual(await existing(c, n), [...newest, 'nightly-failed'].sort());
    await sleep(2000);
    assert.deepEqual(await existing(c, n), [...newest, 'nightly-failed'].sort());
    // A newer run finishes: the oldest of the three goes.
    await pastJob(c, n, { name: 'nightly-10', outcome: 'Complete', finishedMs: Date.now() - 60_000, owner });
    await waitFor('nightly-5 trimmed', async () => !(await exists(c, n, 'nightly-5')), 30_000);
    assert.deepEqual(await existing(c, n), ['nightly-10', 'nightly-3', 'nightly-7', 'nightly-failed']);
    const r = await runCli(['explain', 'job/nightly-7', '-n', n], tb.kubeconfigPath);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Decision: +ttl 4w2d \(policy TTLPolicy\/\S+\/runs ttl=30d\)/);
  });

  test('history {failed: 1, groupBy: annotation:<key>}: the newest failure of each annotation value stays', async () => {
    const n = ns.annot!;
    await start(); // already running: the policy below makes it read its kinds again with the key
    const key = 'kttl.test/pipeline';
    await policy(
      tb,
      ttlPolicy(n, 'by-pipeline', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        ttl: '30d',
        history: { failed: 1, groupBy: `annotation:${key}` },
      }),
    );
    const now = Date.now();
    for (const [name, value, ageH] of [
      ['a-3', 'a', 3],
      ['a-2', 'a', 2],
      ['a-1', 'a', 1],
      ['b-5', 'b', 5],
    ] as const)
      await pastJob(c, n, {
        name,
        outcome: 'Failed',
        finishedMs: now - ageH * H,
        annotations: { [key]: value },
      });
    await pastJob(c, n, { name: 'none-9', outcome: 'Failed', finishedMs: now - 9 * H });
    await waitFor(
      'the two older failures of pipeline a deleted',
      async () => (await existing(c, n)).join() === 'a-1,b-5,none-9',
      30_000,
    );
    await sleep(2000);
    assert.deepEqual(await existing(c, n), ['a-1', 'b-5', 'none-9'], 'one per value; no value, no group');
  });

  test('keepLatest {failed: 1}: the newest failure outlives its TTL until a newer one fails', async () => {
    const n = ns.latest!;
    const owner = await cronJob(c, n, 'pipeline');
    await policy(
      tb,
      ttlPolicy(n, 'latest', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        ttl: '1m',
        keepLatest: { failed: 1 },
      }),
    );
    const now = Date.now();
    await pastJob(c, n, { name: 'fail-old', outcome: 'Failed', finishedMs: now - 3 * H, owner });
    await pastJob(c, n, { name: 'fail-1', outcome: 'Failed', finishedMs: now - 2 * H, owner });
    await pastJob(c, n, { name: 'ok-1', outcome: 'Complete', finishedMs: now - 2 * H, owner });
    await start();
    await waitFor(
      'fail-old and ok-1 deleted',
      async () => (await existing(c, n)).join() === 'fail-1',
      30_000,
    );
    const r = await runCli(['explain', 'job/fail-1', '-n', n], tb.kubeconfigPath);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /Rule keepLatest decides: keepLatest: the newest failure #1 of 1 of owner CronJob\/pipeline/,
    );
    // A newer failure: fail-1 goes (its TTL ran out long ago), the new one is kept past its own.
    await pastJob(c, n, { name: 'fail-2', outcome: 'Failed', finishedMs: Date.now() - 2 * 60_000, owner });
    await waitFor('fail-1 deleted', async () => !(await exists(c, n, 'fail-1')), 30_000);
    await sleep(2000);
    assert.deepEqual(await existing(c, n), ['fail-2']);
  });

  test('kttl.dev/expires in 5 s deletes an unfinished Job; a bad date keeps it and warns', async () => {
    const n = ns.expires!;
    const k = await start();
    const observer = await JobObserver.start(tb, n);
    try {
      const at = Date.now() + 5000;
      for (const [name, value] of [
        ['dated', new Date(at).toISOString()],
        ['typo', 'next friday'],
      ] as const) {
        const body = jobManifest({ name, namespace: n, annotations: { 'kttl.dev/expires': value } });
        (body.spec as { managedBy?: string }).managedBy = MANAGER; // never runs: unfinished throughout
        await c.batch.createNamespacedJob({ namespace: n, body });
      }
      const { deletionSeenMs } = await observer.waitFor('dated', 'deleted', 20_000);
      assert.ok(deletionSeenMs! >= at - 50, `deleted ${at - deletionSeenMs!} ms before its date`);
      assert.ok(deletionSeenMs! < at + 5000, `deleted ${deletionSeenMs! - at} ms late`);
      assert.equal(
        await metricValue(k.registry, 'kttl_deletions_total', { outcome: 'unfinished', source: 'expires' }),
        1,
      );
      const ev = await waitFor(
        'Warning event',
        async () =>
          (
            await c.core.listNamespacedEvent({
              namespace: n,
              fieldSelector: 'involvedObject.name=typo,reason=InvalidTTL',
            })
          ).items[0],
        15_000,
      );
      assert.equal(ev.type, 'Warning');
      assert.match(ev.message ?? '', /kttl\.dev\/expires.*next friday/);
      assert.ok(await exists(c, n, 'typo'));
      assert.equal(observer.jobs.get('typo')?.deletionSeenMs, undefined);
    } finally {
      observer.stop();
    }
  });

  test('a namespaced 30d under a ClusterTTLPolicy maxTtl: 1d goes after 1 d, and explain says why', async () => {
    const n = ns.cap!;
    await policy(tb, {
      apiVersion: 'kttl.dev/v1alpha1',
      kind: 'ClusterTTLPolicy',
      metadata: { name: `max-${capLabel}` },
      spec: {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        namespaceSelector: { matchLabels: { 'kttl.test/cap': capLabel } },
        maxTtl: '1d',
      },
    });
    await policy(
      tb,
      ttlPolicy(n, 'month', { resources: [{ apiVersion: 'batch/v1', kind: 'Job' }], ttl: '30d' }),
    );
    const now = Date.now();
    await pastJob(c, n, { name: 'day-old', outcome: 'Complete', finishedMs: now - 25 * H });
    await pastJob(c, n, { name: 'fresh', outcome: 'Complete', finishedMs: now - 23 * H });
    await start();
    await waitFor('day-old deleted', async () => !(await exists(c, n, 'day-old')), 30_000);
    await sleep(1000);
    assert.ok(await exists(c, n, 'fresh'));
    const r = await runCli(['explain', 'job/fresh', '-n', n], tb.kubeconfigPath);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `Decision: +ttl 1d \\(capped by ClusterTTLPolicy/max-${capLabel} maxTtl=1d: policy TTLPolicy/${n}/month ttl=30d would keep it 4w2d\\)`,
      ),
    );
    assert.match(r.stdout, /Deletion: +at \S+/);
  });

  test('ttlPods deletes the pods of a finished Job and keeps the Job', async () => {
    const n = ns.pods!;
    await policy(
      tb,
      ttlPolicy(n, 'pods', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        ttl: '1h',
        ttlPods: '2s',
      }),
    );
    await start();
    await c.batch.createNamespacedJob({
      namespace: n,
      body: jobManifest({ name: 'work', namespace: n }),
    });
    await waitForJob(c, n, 'work', 'Complete');
    const pods = async () =>
      (await c.core.listNamespacedPod({ namespace: n, labelSelector: 'job-name=work' })).items.filter(
        (p) => !p.metadata?.deletionTimestamp,
      );
    assert.ok((await pods()).length >= 1, 'the finished Job has its pod');
    await waitFor('its pods deleted', async () => (await pods()).length === 0, 30_000);
    await sleep(1000);
    assert.ok(await exists(c, n, 'work'), 'the Job stays until its own TTL');
    const r = await runCli(['explain', 'job/work', '-n', n], tb.kubeconfigPath);
    assert.match(r.stdout, /Pods: +pods first: its finished pods go at .*policy TTLPolicy\/\S+ ttlPods=2s/);
  });

  test('a restart in the middle of a history trim deletes no more than the limit allows', async () => {
    const n = await newNamespace(c, 'ret-restart');
    const owner = await cronJob(c, n, 'batch');
    await policy(
      tb,
      ttlPolicy(n, 'runs', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        history: { succeeded: 3 },
      }),
    );
    const now = Date.now();
    for (let i = 0; i < 10; i++)
      await pastJob(c, n, { name: `batch-${i}`, outcome: 'Complete', finishedMs: now - (20 - i) * H, owner });
    // Watch how many stay at every moment: never fewer than 3.
    const observer = await JobObserver.start(tb, n);
    let fewest = 10;
    const tally = setInterval(() => {
      const alive = [...observer.jobs.values()].filter((j) => j.deletionSeenMs === undefined).length;
      if (observer.jobs.size >= 10) fewest = Math.min(fewest, alive);
    }, 5);
    // The first controller stops after two deletions, mid-trim (its third DELETE never leaves).
    let sent = 0;
    let stalled: () => void = () => {};
    const stall = new Promise<void>((resolve) => {
      stalled = resolve;
    });
    const first = await startInProcess(tb, runOptions([n]), async (_obj: ObjectSummary) => {
      if (++sent > 2) {
        stalled();
        await new Promise(() => {}); // held until the process stops
      }
    });
    await stall;
    const stopping = first.stop();
    // Meanwhile two newer runs finish: batch-7..9 are no longer the newest 3.
    await pastJob(c, n, { name: 'batch-10', outcome: 'Complete', finishedMs: Date.now() - 2 * H, owner });
    await pastJob(c, n, { name: 'batch-11', outcome: 'Complete', finishedMs: Date.now() - H, owner });
    const second = await startInProcess(tb, runOptions([n]));
    try {
      await waitFor('the trim ends', async () => (await existing(c, n)).length === 3, 30_000);
      await sleep(2000);
      assert.deepEqual(await existing(c, n), ['batch-10', 'batch-11', 'batch-9']);
      assert.ok(fewest >= 3, `only ${fewest} Jobs were left at one point`);
    } finally {
      clearInterval(tally);
      observer.stop();
      await second.stop();
      await Promise.race([stopping, sleep(5000)]);
    }
  });
});
