// `kttl delete`: named objects and --finished, propagation, the refusals (unfinished, no
// confirmation), dry run, --older-than, progress.
// Run as the BUILT bundle (dist/kttl.mjs) in a child process against the real control plane.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertError, kttl, ok, parseTable, useCliTestbed } from '../testbed/cli.ts';
import { createJob, jobGone } from '../testbed/jobs.ts';
import { type Clients, newNamespace, sleep, TEST_LABELS, waitFor, waitForJob } from '../testbed/use.ts';

let c: Clients;

before(async () => {
  ({ c } = await useCliTestbed());
});

/** A ConfigMap owned by `owner` (blockOwnerDeletion) and held by a finalizer. */
async function blockingDependent(
  ns: string,
  name: string,
  owner: { apiVersion: string; kind: string; name: string; uid: string },
): Promise<void> {
  await c.core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: {
        name,
        finalizers: ['kttl.test/hold'],
        ownerReferences: [{ ...owner, blockOwnerDeletion: true }],
      },
    },
  });
}

async function release(ns: string, name: string): Promise<void> {
  await c.core.patchNamespacedConfigMap({
    name,
    namespace: ns,
    body: [{ op: 'remove', path: '/metadata/finalizers' }],
  });
}

describe('kttl delete', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-del');
  });

  test('named finished Jobs: deleted with --yes; Foreground for Jobs, Background for Pods', async () => {
    await createJob(c, { name: 'done', namespace: ns });
    await createJob(c, { name: 'held', namespace: ns });
    await waitForJob(c, ns, 'done', 'Complete');
    await waitForJob(c, ns, 'held', 'Complete');
    // A dependent that blocks its owner's Foreground deletion until its own finalizer goes.
    const held = await c.batch.readNamespacedJob({ name: 'held', namespace: ns });
    await blockingDependent(ns, 'held-dep', {
      apiVersion: 'batch/v1',
      kind: 'Job',
      name: 'held',
      uid: held.metadata!.uid!,
    });
    const r = ok(await kttl(['delete', 'job/done', 'job/held', '--yes', '-n', ns]));
    assert.equal(r.stdout, 'job.batch "done" deleted\njob.batch "held" deleted\n');
    await waitFor('done gone', () => jobGone(c, ns, 'done'), 30_000);
    // Foreground: the Job waits for its dependents, marked with the foregroundDeletion finalizer.
    await sleep(1000);
    const waiting = await c.batch.readNamespacedJob({ name: 'held', namespace: ns });
    assert.ok(waiting.metadata?.deletionTimestamp, 'marked for deletion');
    assert.deepEqual(waiting.metadata?.finalizers, ['foregroundDeletion']);
    await release(ns, 'held-dep');
    await waitFor('held gone', () => jobGone(c, ns, 'held'), 30_000);

    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'bare', labels: { [TEST_LABELS.succeed]: 'true' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    await waitFor(
      'bare pod Succeeded',
      async () =>
        (await c.core.readNamespacedPod({ name: 'bare', namespace: ns })).status?.phase === 'Succeeded',
      30_000,
    );
    const bare = await c.core.readNamespacedPod({ name: 'bare', namespace: ns });
    await blockingDependent(ns, 'bare-dep', {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'bare',
      uid: bare.metadata!.uid!,
    });
    assert.equal(ok(await kttl(['delete', 'pod/bare', '-y', '-n', ns])).stdout, 'pod "bare" deleted\n');
    // Background: the Pod goes at once although its dependent is still held.
    await waitFor(
      'bare pod gone',
      async () => {
        try {
          await c.core.readNamespacedPod({ name: 'bare', namespace: ns });
          return false;
        } catch (err) {
          return (err as { code?: number }).code === 404;
        }
      },
      30_000,
    );
    const dep = await c.core.readNamespacedConfigMap({ name: 'bare-dep', namespace: ns });
    assert.deepEqual(dep.metadata?.finalizers, ['kttl.test/hold'], 'the dependent is still there');
    await release(ns, 'bare-dep');
  });

  test('an unfinished object: refused unless named and --force (exit 1, nothing deleted)', async () => {
    await createJob(c, { name: 'busy', namespace: ns, podLabels: { [TEST_LABELS.run]: 'true' } });
    await createJob(c, { name: 'busy2', namespace: ns, podLabels: { [TEST_LABELS.run]: 'true' } });
    assertError(
      await kttl(['delete', 'job/busy', '--yes', '-n', ns]),
      1,
      'error: job/busy has not finished (Running): pass --force to delete it anyway',
    );
    assertError(
      await kttl(['delete', 'job/busy', 'job/busy2', '--yes', '-n', ns]),
      1,
      'error: 2 objects have not finished (job/busy, job/busy2): pass --force to delete them anyway',
    );
    // --finished never touches a running object, --force or not.
    ok(await kttl(['delete', '--finished', '--force', '--yes', '-n', ns]));
    assert.equal(await jobGone(c, ns, 'busy'), false);
    assert.equal(await jobGone(c, ns, 'busy2'), false);
    const r = ok(await kttl(['delete', 'job/busy', '--force', '--yes', '-n', ns]));
    assert.equal(r.stdout, 'job.batch "busy" deleted\n');
    await waitFor('busy gone', () => jobGone(c, ns, 'busy'), 30_000);
    assert.equal(await jobGone(c, ns, 'busy2'), false);
  });

  test('without --yes and without a terminal: refuses, deletes nothing', async () => {
    await createJob(c, { name: 'ask', namespace: ns });
    await waitForJob(c, ns, 'ask', 'Complete');
    assertError(
      await kttl(['delete', 'job/ask', '-n', ns]),
      1,
      'error: refusing to delete 1 object without confirmation: stdin is not a terminal (pass --yes)',
    );
    assert.equal(await jobGone(c, ns, 'ask'), false);
    assertError(
      await kttl(['delete', 'job/missing', '--yes', '-n', ns]),
      1,
      `error: jobs.batch "missing" not found in namespace "${ns}"`,
    );
    assertError(
      await kttl(['delete', '-n', ns]),
      1,
      'error: name objects to delete (KIND/NAME...) or pass --finished',
    );
    assertError(
      await kttl(['delete', 'job/ask', '--finished', '-n', ns]),
      1,
      'error: name objects (KIND/NAME) or use --finished, not both',
    );
    assertError(
      await kttl(['delete', '--finished', '--older-than', '2 days', '-n', ns]),
      1,
      'error: --older-than: invalid duration "2 days": must not contain spaces (write e.g. "1h30m")',
    );
  });

  test('--finished: dry run, --older-than, keep skipped, running untouched', async () => {
    const ns2 = await newNamespace(c, 'cli-fin');
    await createJob(c, { name: 'a', namespace: ns2 });
    await createJob(c, { name: 'b', namespace: ns2, podLabels: { [TEST_LABELS.fail]: 'true' } });
    await createJob(c, { name: 'k', namespace: ns2, annotations: { 'kttl.dev/keep': 'true' } });
    await createJob(c, { name: 'r', namespace: ns2, podLabels: { [TEST_LABELS.run]: 'true' } });
    await waitForJob(c, ns2, 'a', 'Complete');
    await waitForJob(c, ns2, 'b', 'Failed');
    await waitForJob(c, ns2, 'k', 'Complete');

    const dry = ok(await kttl(['delete', '--finished', '--dry-run', '-n', ns2]));
    const t = parseTable(dry.stdout.split('\n').slice(0, -2).join('\n'));
    assert.deepEqual([...t.rows.keys()], ['a', 'b']);
    assert.match(dry.stdout, /^dry run: would delete 2 objects; nothing was deleted$/m);
    assert.equal(dry.stderr.trim(), 'skipping 1 object marked kttl.dev/keep=true (name it to delete it)');
    assert.equal((await c.batch.listNamespacedJob({ namespace: ns2 })).items.length, 4);

    const young = ok(await kttl(['delete', '--finished', '--older-than', '1h', '--yes', '-n', ns2]));
    assert.equal(
      young.stdout.trim(),
      `No finished jobs older than 1h found in namespace "${ns2}": nothing to delete.`,
    );

    const r = ok(await kttl(['delete', 'jobs', '--finished', '--older-than', '0', '--yes', '-n', ns2]));
    assert.equal(r.stdout, 'job.batch "a" deleted\njob.batch "b" deleted\n');
    await waitFor(
      'a and b gone',
      async () => (await jobGone(c, ns2, 'a')) && (await jobGone(c, ns2, 'b')),
      30_000,
    );
    assert.equal(await jobGone(c, ns2, 'k'), false, 'kept');
    assert.equal(await jobGone(c, ns2, 'r'), false, 'running');

    // Pods of the running Job are untouched; the finished one of the kept Job goes with `pods --finished`.
    const pr = ok(await kttl(['delete', 'pods', '--finished', '--yes', '-n', ns2]));
    assert.match(pr.stdout, /^pod "k-\w+" deleted\n$/);
    const pods = await c.core.listNamespacedPod({ namespace: ns2, labelSelector: 'job-name=r' });
    assert.equal(pods.items.length, 1);
  });

  test('more than 10 objects: a progress line and a summary', async () => {
    const ns3 = await newNamespace(c, 'cli-many');
    const names = Array.from({ length: 12 }, (_, i) => `m${i}`);
    await Promise.all(names.map((name) => createJob(c, { name, namespace: ns3 })));
    await Promise.all(names.map((name) => waitForJob(c, ns3, name, 'Complete', 60_000)));
    const r = ok(await kttl(['delete', '--finished', '--yes', '-n', ns3]));
    assert.match(r.stdout, /^deleted 12 of 12 objects in \d+\.\d s\n$/);
    assert.match(r.stderr, /deleting: 12\/12\n$/);
    assert.doesNotMatch(r.stdout, /job\.batch "m0" deleted/, 'no line per object');
    await waitFor(
      'all gone',
      async () => (await c.batch.listNamespacedJob({ namespace: ns3 })).items.length === 0,
      60_000,
    );
  });
});
