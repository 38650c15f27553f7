// Smoke tests that prove the testbed is a real control plane: the real Job controller makes pods,
// kwok plays the kubelet, the real garbage collector cascades a Foreground delete.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { readVersions, type Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  jobManifest,
  newNamespace,
  TEST_LABELS,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

describe('testbed', () => {
  let tb: Testbed;
  let c: Clients;
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
  });

  test('kube-apiserver reports the pinned release', async () => {
    const version = JSON.parse(await tb.rawGet('/version')) as { gitVersion: string };
    assert.equal(version.gitVersion, readVersions().kubernetes);
  });

  test('a Job gets pods from the Job controller, kwok succeeds them, the Job becomes Complete', async () => {
    const ns = await newNamespace(c, 'smoke');
    await c.batch.createNamespacedJob({ namespace: ns, body: jobManifest({ name: 'ok', namespace: ns }) });
    await waitForJob(c, ns, 'ok', 'Complete');
    const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=ok' });
    assert.equal(pods.items.length, 1);
    assert.equal(pods.items[0]?.status?.phase, 'Succeeded');
    assert.ok(pods.items[0]?.spec?.nodeName?.startsWith('kwok-node-'), 'pod was bound by the real scheduler');
  });

  test('a Job whose pod fails becomes Failed', async () => {
    const ns = await newNamespace(c, 'smoke');
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'bad', namespace: ns, podLabels: { [TEST_LABELS.fail]: 'true' } }),
    });
    await waitForJob(c, ns, 'bad', 'Failed');
    const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=bad' });
    assert.equal(pods.items[0]?.status?.phase, 'Failed');
  });

  test('a Foreground delete of a Job removes its pods through the garbage collector', async () => {
    const ns = await newNamespace(c, 'smoke');
    await c.batch.createNamespacedJob({ namespace: ns, body: jobManifest({ name: 'gc', namespace: ns }) });
    await waitForJob(c, ns, 'gc', 'Complete');
    assert.equal((await c.core.listNamespacedPod({ namespace: ns })).items.length, 1);
    await c.batch.deleteNamespacedJob({ name: 'gc', namespace: ns, propagationPolicy: 'Foreground' });
    await waitForJob(c, ns, 'gc', 'gone');
    await waitFor(
      'pods gone',
      async () => (await c.core.listNamespacedPod({ namespace: ns })).items.length === 0,
      30_000,
    );
  });

  test('a bare pod labelled to succeed reaches Succeeded; an unlabelled one keeps running', async () => {
    const ns = await newNamespace(c, 'smoke');
    const pod = (name: string, labels: Record<string, string>) => ({
      metadata: { name, labels },
      spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
    });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('done', { [TEST_LABELS.succeed]: 'true' }) });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('runs', {}) });
    await waitFor(
      'bare pod Succeeded',
      async () =>
        (await c.core.readNamespacedPod({ name: 'done', namespace: ns })).status?.phase === 'Succeeded',
      30_000,
    );
    const runs = await c.core.readNamespacedPod({ name: 'runs', namespace: ns });
    assert.equal(runs.status?.phase, 'Running');
  });
});
