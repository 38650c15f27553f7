// Issue 4 on the real control plane: Pods, outcome-specific TTLs, KOTS/Helm hooks, policies, and
// custom resources of the built-in kinds (CRDs shaped like their operators', status set as they do).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type InProcess, metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { jobExists } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  crdManifest as crd,
  installPolicyCrds,
  jobManifest,
  newNamespace,
  sleep,
  TEST_LABELS,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

async function podExists(c: Clients, ns: string, name: string): Promise<boolean> {
  try {
    const p = await c.core.readNamespacedPod({ name, namespace: ns });
    return !p.metadata?.deletionTimestamp;
  } catch {
    return false;
  }
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Each built-in kind: its CRD and the status its operator writes when the run succeeds. */
const BUILTIN_CASES = [
  {
    group: 'argoproj.io',
    version: 'v1alpha1',
    kind: 'Workflow',
    plural: 'workflows',
    status: () => ({ phase: 'Succeeded', finishedAt: now() }),
  },
  {
    group: 'tekton.dev',
    version: 'v1',
    kind: 'PipelineRun',
    plural: 'pipelineruns',
    status: () => ({
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded', lastTransitionTime: now() }],
    }),
  },
  {
    group: 'tekton.dev',
    version: 'v1',
    kind: 'TaskRun',
    plural: 'taskruns',
    status: () => ({
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded', lastTransitionTime: now() }],
    }),
  },
  ...['PyTorchJob', 'TFJob', 'MPIJob', 'XGBoostJob'].map((kind) => ({
    group: 'kubeflow.org',
    version: 'v1',
    kind,
    plural: `${kind.toLowerCase()}s`,
    status: () => ({
      conditions: [
        { type: 'Created', status: 'True', lastTransitionTime: now() },
        { type: 'Succeeded', status: 'True', reason: `${kind}Succeeded`, lastTransitionTime: now() },
      ],
    }),
  })),
  {
    group: 'ray.io',
    version: 'v1',
    kind: 'RayJob',
    plural: 'rayjobs',
    status: () => ({ jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Complete', endTime: now() }),
  },
  {
    group: 'sparkoperator.k8s.io',
    version: 'v1beta2',
    kind: 'SparkApplication',
    plural: 'sparkapplications',
    status: () => ({ applicationState: { state: 'COMPLETED' }, terminationTime: now() }),
  },
];

describe('beyond Jobs', () => {
  let tb: Testbed;
  let c: Clients;
  const running: InProcess[] = [];
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    await installPolicyCrds(tb);
  });
  after(async () => {
    for (const k of running) await k.stop();
  });
  async function kttl(ns: string, extra: Parameters<typeof runOptions>[1] = {}): Promise<InProcess> {
    const k = await startInProcess(tb, runOptions([ns], { discoveryIntervalMs: 1000, ...extra }));
    running.push(k);
    return k;
  }

  test('Pods: a finished bare Pod with a TTL goes (Background); a running one and the Pod of a Job stay', async () => {
    const ns = await newNamespace(c, 'pods');
    const k = await kttl(ns);
    const pod = (name: string, labels: Record<string, string>, annotations: Record<string, string>) => ({
      metadata: { name, labels, annotations },
      spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
    });
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('done', { [TEST_LABELS.succeed]: 'true' }, { 'kttl.dev/ttl': '1s' }),
    });
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('failed', { [TEST_LABELS.fail]: 'true' }, { 'kttl.dev/ttl-failed': '1s' }),
    });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('runs', {}, { 'kttl.dev/ttl': '0' }) });
    const job = jobManifest({ name: 'owner', namespace: ns });
    job.spec!.template.metadata = { annotations: { 'kttl.dev/ttl': '0' } };
    await c.batch.createNamespacedJob({ namespace: ns, body: job });
    await waitFor(
      'bare pods deleted',
      async () => !(await podExists(c, ns, 'done')) && !(await podExists(c, ns, 'failed')),
      30_000,
    );
    await waitForJob(c, ns, 'owner', 'Complete');
    await sleep(3000);
    assert.ok(await podExists(c, ns, 'runs'), 'the running pod stays');
    const jobPods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=owner' });
    assert.equal(jobPods.items.length, 1, 'the Job’s pod is left to its Job');
    assert.equal(await metricValue(k.registry, 'kttl_deletions_total', { kind: 'Pod' }), 2);
  });

  test('outcome-specific TTLs: the failed Job is kept 7 days, the succeeded one goes after 1 s', async () => {
    const ns = await newNamespace(c, 'outcome');
    await kttl(ns);
    const annotations = { 'kttl.dev/ttl-succeeded': '1s', 'kttl.dev/ttl-failed': '7d' };
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'ok', namespace: ns, annotations }),
    });
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({
        name: 'bad',
        namespace: ns,
        annotations,
        podLabels: { [TEST_LABELS.fail]: 'true' },
      }),
    });
    await waitFor(
      'ok deleted',
      async () => {
        const s = await jobExists(c, ns, 'ok');
        return !s.exists || s.deleting;
      },
      30_000,
    );
    await waitForJob(c, ns, 'bad', 'Failed');
    await sleep(2500);
    assert.ok((await jobExists(c, ns, 'bad')).exists, 'the failed Job is kept');
  });

  test('hook delete policies: KOTS hook-succeeded on a failed Job stays; Helm hooks honoured unless turned off', async () => {
    const ns = await newNamespace(c, 'hooks');
    const ns2 = await newNamespace(c, 'hooks');
    await kttl(ns);
    await kttl(ns2, { helmHooks: false });
    const kots = { 'kots.io/hook-delete-policy': 'hook-succeeded' };
    const helm = { 'helm.sh/hook-delete-policy': ' before-hook-creation , hook-succeeded ' };
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'kots-ok', namespace: ns, annotations: kots }),
    });
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({
        name: 'kots-fail',
        namespace: ns,
        annotations: kots,
        podLabels: { [TEST_LABELS.fail]: 'true' },
      }),
    });
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'helm-ok', namespace: ns, annotations: helm }),
    });
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({
        name: 'bogus',
        namespace: ns,
        annotations: { 'kots.io/hook-delete-policy': 'hook-sucseeded' },
      }),
    });
    await c.batch.createNamespacedJob({
      namespace: ns2,
      body: jobManifest({ name: 'helm-off', namespace: ns2, annotations: helm }),
    });
    const gone = async (n: string, name: string) => {
      const s = await jobExists(c, n, name);
      return !s.exists || s.deleting;
    };
    await waitFor(
      'hook-succeeded Jobs deleted',
      async () => (await gone(ns, 'kots-ok')) && (await gone(ns, 'helm-ok')),
      30_000,
    );
    await waitForJob(c, ns, 'kots-fail', 'Failed');
    await waitForJob(c, ns2, 'helm-off', 'Complete');
    await sleep(2500);
    assert.ok(!(await gone(ns, 'kots-fail')), 'a failed Job with only hook-succeeded stays');
    assert.ok(!(await gone(ns, 'bogus')), 'an unknown hook value deletes nothing');
    assert.ok(!(await gone(ns2, 'helm-off')), '--helm-hooks=false ignores helm.sh/hook-delete-policy');
    const ev = await waitFor(
      'Warning for the bogus hook value',
      async () =>
        (
          await c.core.listNamespacedEvent({
            namespace: ns,
            fieldSelector: 'involvedObject.name=bogus,reason=InvalidTTL',
          })
        ).items[0],
      10_000,
    );
    assert.match(ev.message ?? '', /hook-sucseeded/);
  });

  test('policies: added after the Jobs finished they apply; deleting the policy stops what it alone caused', async () => {
    const ns = await newNamespace(c, 'policy');
    const k = await kttl(ns);
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'early', namespace: ns, labels: { team: 'a' } }),
    });
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'other-team', namespace: ns, labels: { team: 'b' } }),
    });
    await waitForJob(c, ns, 'early', 'Complete');
    await sleep(1500);
    assert.ok((await jobExists(c, ns, 'early')).exists, 'no TTL yet');
    const policy = (name: string, spec: object) =>
      JSON.stringify({
        apiVersion: 'kttl.dev/v1alpha1',
        kind: 'TTLPolicy',
        metadata: { name, namespace: ns },
        spec,
      });
    await tb.kubectl(
      ['apply', '-f', '-'],
      policy('short', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        selector: { matchLabels: { team: 'a' } },
        ttlSucceeded: '2s',
      }),
    );
    await waitFor(
      'early deleted by the policy',
      async () => {
        const s = await jobExists(c, ns, 'early');
        return !s.exists || s.deleting;
      },
      20_000,
    );
    assert.equal(await metricValue(k.registry, 'kttl_deletions_total', { source: 'policy' }), 1);
    assert.ok((await jobExists(c, ns, 'other-team')).exists, 'the selector leaves team b alone');
    // A policy with a long TTL, removed before it expires: the Job it alone would delete stays.
    await tb.kubectl(
      ['apply', '-f', '-'],
      policy('slow', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        selector: { matchLabels: { team: 'b' } },
        ttl: '6s',
        priority: 1,
      }),
    );
    await sleep(1500);
    await tb.kubectl(['-n', ns, 'delete', 'ttlpolicy', 'slow']);
    await sleep(7000);
    assert.ok((await jobExists(c, ns, 'other-team')).exists, 'kept after its only policy was deleted');
    const status = JSON.parse(await tb.kubectl(['-n', ns, 'get', 'ttlpolicy', 'short', '-o', 'json'])) as {
      status?: { matchedObjects?: number };
    };
    assert.equal(typeof status.status?.matchedObjects, 'number', 'status reports matched objects');
  });

  test('custom resources of every built-in kind, their CRDs installed after kttl started, are deleted after their TTL', async () => {
    const ns = await newNamespace(c, 'crs');
    const k = await kttl(ns);
    for (const cs of BUILTIN_CASES)
      await tb.kubectl(['apply', '-f', '-'], crd(cs.group, cs.kind, cs.plural, cs.version));
    for (const cs of BUILTIN_CASES)
      await tb.kubectl([
        'wait',
        '--for=condition=Established',
        '--timeout=60s',
        `crd/${cs.plural}.${cs.group}`,
      ]);
    for (const cs of BUILTIN_CASES) {
      const base = {
        apiVersion: `${cs.group}/${cs.version}`,
        kind: cs.kind,
        metadata: { namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } },
        spec: {},
      };
      await tb.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({ ...base, metadata: { ...base.metadata, name: 'done' } }),
      );
      await tb.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({ ...base, metadata: { ...base.metadata, name: 'running' } }),
      );
      await tb.kubectl([
        '-n',
        ns,
        'patch',
        `${cs.plural}.${cs.group}`,
        'done',
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: cs.status() }),
      ]);
    }
    for (const cs of BUILTIN_CASES) {
      const res = `${cs.plural}.${cs.group}`;
      await waitFor(
        `${cs.kind} done deleted`,
        async () => !(await tb.kubectl(['-n', ns, 'get', res, '-o', 'name'])).includes('/done'),
        30_000,
        250,
      );
      assert.match(
        await tb.kubectl(['-n', ns, 'get', res, '-o', 'name']),
        /\/running/,
        `${cs.kind} still running is kept`,
      );
    }
    assert.equal(await metricValue(k.registry, 'kttl_deletions_total'), BUILTIN_CASES.length);
  });

  test('a custom kind named by a policy with its own finish rule', async () => {
    const ns = await newNamespace(c, 'build');
    await tb.kubectl(['apply', '-f', '-'], crd('example.com', 'Build', 'builds', 'v1'));
    await tb.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/builds.example.com']);
    await kttl(ns);
    await tb.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kttl.dev/v1alpha1',
        kind: 'TTLPolicy',
        metadata: { name: 'builds', namespace: ns },
        spec: {
          resources: [
            {
              apiVersion: 'example.com/v1',
              kind: 'Build',
              finished: {
                succeeded: { condition: { type: 'Succeeded', status: 'True' } },
                failed: { field: '.status.phase', values: ['Failed', 'Error'] },
              },
            },
          ],
          ttlFailed: '1s',
          ttlSucceeded: '1h',
        },
      }),
    );
    for (const name of ['broken', 'fine'])
      await tb.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'example.com/v1',
          kind: 'Build',
          metadata: { name, namespace: ns },
          spec: {},
        }),
      );
    await tb.kubectl([
      '-n',
      ns,
      'patch',
      'builds.example.com',
      'broken',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Error"}}',
    ]);
    await tb.kubectl([
      '-n',
      ns,
      'patch',
      'builds.example.com',
      'fine',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: { conditions: [{ type: 'Succeeded', status: 'True', lastTransitionTime: now() }] },
      }),
    ]);
    await waitFor(
      'failed Build deleted',
      async () =>
        !(await tb.kubectl(['-n', ns, 'get', 'builds.example.com', '-o', 'name'])).includes('/broken'),
      30_000,
      250,
    );
    await sleep(2000);
    assert.match(await tb.kubectl(['-n', ns, 'get', 'builds.example.com', '-o', 'name']), /\/fine/);
  });
});
