// The kinds added with the kind registry (src/rules/kinds.ts) — JobSet, Volcano Job, Kubeflow
// Trainer TrainJob — on the real control plane, with their operators' CRDs (test/fixtures/crds/:
// names, versions and status schemas as upstream ships them) and the status their operators write.
// Each is watched as a built-in kind (no policy names it), under the chart's least-privilege role
// (deploy/rbac/rbac.yaml). A Volcano Job is kind `Job` like batch's: kttl must keep them apart.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUILTIN_KINDS } from '../../src/rules/kinds.ts';
import { type InProcess, metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { jobExists, waitForJobDeletion } from '../testbed/jobs.ts';
import { REPO_ROOT, type Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  installPolicyCrds,
  jobManifest,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const FIXTURES = join(REPO_ROOT, 'test/fixtures/crds');
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
/** A metav1.Condition as the operators write it (their CRDs require reason and message). */
const condition = (type: string, status: string, reason: string) => ({
  type,
  status,
  reason,
  message: `${type} (kttl test)`,
  lastTransitionTime: now(),
});

interface Kind {
  group: string;
  version: string;
  kind: string;
  plural: string;
  spec: Record<string, unknown>;
}

const registry = (group: string, kind: string, spec: Record<string, unknown>): Kind => {
  const k = BUILTIN_KINDS.find((x) => x.group === group && x.kind === kind);
  if (!k) throw new Error(`${group}/${kind} is not in the registry`);
  return { group, version: k.version, kind, plural: k.plural, spec };
};

const container = { name: 'main', image: 'busybox', command: ['true'] };
const JOBSET = registry('jobset.x-k8s.io', 'JobSet', {
  replicatedJobs: [
    {
      name: 'workers',
      replicas: 1,
      template: { spec: { template: { spec: { containers: [container], restartPolicy: 'Never' } } } },
    },
  ],
});
const VCJOB = registry('batch.volcano.sh', 'Job', {
  schedulerName: 'volcano',
  minAvailable: 1,
  tasks: [
    { name: 'worker', replicas: 1, template: { spec: { containers: [container], restartPolicy: 'Never' } } },
  ],
});
const TRAINJOB = registry('trainer.kubeflow.org', 'TrainJob', {
  runtimeRef: { name: 'torch-distributed' },
  trainer: { image: 'busybox', command: ['true'] },
});

/** An object per name, and the status its operator writes; `gone`: finished, so deleted after its TTL. */
interface Case {
  kind: Kind;
  name: string;
  status: () => Record<string, unknown>;
  gone: boolean;
}

const CASES: Case[] = [
  // JobSet: kubernetes-sigs/jobset pkg/controllers (Completed / Failed conditions, terminalState).
  {
    kind: JOBSET,
    name: 'completed',
    status: () => ({
      conditions: [
        condition('StartupPolicyCompleted', 'True', 'AllReplicatedJobsStarted'),
        condition('Completed', 'True', 'AllJobsCompleted'),
      ],
      terminalState: 'Completed',
      restarts: 0,
    }),
    gone: true,
  },
  {
    kind: JOBSET,
    name: 'failed',
    status: () => ({
      conditions: [condition('Failed', 'True', 'FailedJobs')],
      terminalState: 'Failed',
      restarts: 2,
    }),
    gone: true,
  },
  {
    kind: JOBSET,
    name: 'suspended',
    status: () => ({ conditions: [condition('Suspended', 'True', 'SuspendedJobs')], restarts: 0 }),
    gone: false,
  },
  {
    kind: JOBSET,
    name: 'starting',
    status: () => ({
      conditions: [condition('StartupPolicyInProgress', 'True', 'InOrderStartupPolicyInProgress')],
      restarts: 0,
    }),
    gone: false,
  },
  // Volcano Job: status.state.phase, as volcano-sh/volcano pkg/controllers/job/state writes it.
  {
    kind: VCJOB,
    name: 'completed',
    status: () => ({
      state: { phase: 'Completed', lastTransitionTime: now() },
      succeeded: 1,
      minAvailable: 1,
    }),
    gone: true,
  },
  {
    kind: VCJOB,
    name: 'terminated',
    status: () => ({
      state: { phase: 'Terminated', reason: 'PodEvictedEvent', lastTransitionTime: now() },
      minAvailable: 1,
    }),
    gone: true,
  },
  {
    kind: VCJOB,
    name: 'failed',
    status: () => ({ state: { phase: 'Failed', lastTransitionTime: now() }, failed: 1, retryCount: 3 }),
    gone: true,
  },
  {
    // `vcctl job resume` takes an Aborted Job back to Restarting: not finished.
    kind: VCJOB,
    name: 'aborted',
    status: () => ({ state: { phase: 'Aborted', lastTransitionTime: now() }, minAvailable: 1 }),
    gone: false,
  },
  {
    kind: VCJOB,
    name: 'running',
    status: () => ({ state: { phase: 'Running', lastTransitionTime: now() }, running: 1, minAvailable: 1 }),
    gone: false,
  },
  // TrainJob: kubeflow/trainer (Complete / Failed conditions; Suspended is resumable).
  {
    kind: TRAINJOB,
    name: 'complete',
    status: () => ({ conditions: [condition('Complete', 'True', 'JobsCompleted')] }),
    gone: true,
  },
  {
    kind: TRAINJOB,
    name: 'deadline',
    status: () => ({ conditions: [condition('Failed', 'True', 'DeadlineExceeded')] }),
    gone: true,
  },
  {
    kind: TRAINJOB,
    name: 'suspended',
    status: () => ({ conditions: [condition('Suspended', 'True', 'Suspended')] }),
    gone: false,
  },
];

const KINDS = [JOBSET, VCJOB, TRAINJOB];
const resource = (k: Kind) => `${k.plural}.${k.group}`;

describe('built-in kinds added with the registry: JobSet, Volcano Job, TrainJob', () => {
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
    // Leave the control plane as found: the next file's controllers need not watch these kinds.
    await tb?.kubectl(['delete', '--ignore-not-found', '-f', FIXTURES]);
  });

  async function kttl(ns: string, extra: Parameters<typeof runOptions>[1] = {}): Promise<InProcess> {
    const k = await startInProcess(tb, runOptions([ns], { discoveryIntervalMs: 1000, ...extra }));
    running.push(k);
    return k;
  }
  async function installCrds(): Promise<void> {
    await tb.kubectl(['apply', '-f', FIXTURES]);
    await tb.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      ...KINDS.map((k) => `crd/${resource(k)}`),
    ]);
  }
  /** Creates the object with a 1 s TTL, then sets its status through the status subresource. */
  async function create(
    ns: string,
    kind: Kind,
    name: string,
    status?: Record<string, unknown>,
  ): Promise<void> {
    const obj = {
      apiVersion: `${kind.group}/${kind.version}`,
      kind: kind.kind,
      metadata: { name, namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } },
      spec: kind.spec,
    };
    await tb.kubectl(['create', '-f', '-'], JSON.stringify(obj));
    if (status)
      await tb.kubectl([
        '-n',
        ns,
        'patch',
        resource(kind),
        name,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status }),
      ]);
  }
  async function names(ns: string, kind: Kind): Promise<string[]> {
    const out = await tb.kubectl(['-n', ns, 'get', resource(kind), '-o', 'name', '--ignore-not-found']);
    return out
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(l.indexOf('/') + 1));
  }

  test('watched without a policy once their CRDs are installed: finished ones go after their TTL, interim ones stay', async () => {
    const ns = await newNamespace(c, 'bk');
    const k = await kttl(ns);
    await installCrds();
    for (const cs of CASES) await create(ns, cs.kind, cs.name, cs.status());
    const gone = CASES.filter((cs) => cs.gone);
    await waitFor(
      `${gone.map((cs) => `${cs.kind.kind}/${cs.name}`).join(', ')} deleted`,
      async () => {
        for (const kind of KINDS) {
          const left = await names(ns, kind);
          if (gone.some((cs) => cs.kind === kind && left.includes(cs.name))) return false;
        }
        return true;
      },
      60_000,
      250,
    );
    await sleep(3000); // three TTLs more: the interim ones would have gone by now
    for (const kind of KINDS) {
      const kept = CASES.filter((cs) => cs.kind === kind && !cs.gone).map((cs) => cs.name);
      assert.deepEqual((await names(ns, kind)).sort(), kept.sort(), `${resource(kind)} kept`);
    }
    assert.equal(await metricValue(k.registry, 'kttl_deletions_total', { kind: 'JobSet' }), 2);
    assert.equal(await metricValue(k.registry, 'kttl_deletions_total', { kind: 'TrainJob' }), 2);
    assert.equal(await metricValue(k.registry, 'kttl_deletions_total'), gone.length);
    assert.equal(
      await metricValue(k.registry, 'kttl_deletions_total', { kind: 'JobSet', outcome: 'failed' }),
      1,
    );
  });

  test('a Volcano Job and a batch Job of the same name in one namespace are told apart', async () => {
    const ns = await newNamespace(c, 'vcj');
    await installCrds();
    const k = await kttl(ns);
    // "a": the batch Job never finishes (suspended), the Volcano Job has completed.
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'a', namespace: ns, suspend: true, annotations: { 'kttl.dev/ttl': '1s' } }),
    });
    await create(ns, VCJOB, 'a', { state: { phase: 'Completed', lastTransitionTime: now() } });
    // "b": the batch Job completes, the Volcano Job still runs.
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'b', namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } }),
    });
    await create(ns, VCJOB, 'b', { state: { phase: 'Running', lastTransitionTime: now() } });
    // "c": the Volcano Job has aborted (resumable), its batch namesake has completed.
    await create(ns, VCJOB, 'c', { state: { phase: 'Aborted', lastTransitionTime: now() } });
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'c', namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } }),
    });
    await waitFor('Volcano Job a deleted', async () => !(await names(ns, VCJOB)).includes('a'), 30_000, 250);
    await waitForJobDeletion(c, ns, 'b', 30_000);
    await waitForJobDeletion(c, ns, 'c', 30_000);
    await sleep(3000);
    const a = await jobExists(c, ns, 'a');
    assert.ok(a.exists && !a.deleting, 'the unfinished batch Job "a" is kept');
    assert.deepEqual((await names(ns, VCJOB)).sort(), ['b', 'c'], 'the unfinished Volcano Jobs are kept');
    // Deleted: Volcano's "a" (Background), batch's "b" and "c" (Foreground, upstream's default).
    assert.equal(await metricValue(k.registry, 'kttl_deletions_total'), 3);
    assert.equal(await metricValue(k.registry, 'kttl_deletions_total', { outcome: 'succeeded' }), 3);
  });

  test('--builtin-kinds=false: none of them is watched', async () => {
    const ns = await newNamespace(c, 'nobk');
    await installCrds();
    await kttl(ns, { builtinKinds: false });
    for (const cs of CASES.filter((x) => x.gone)) await create(ns, cs.kind, cs.name, cs.status());
    await sleep(4000); // four TTLs and several discovery rounds
    for (const kind of KINDS) {
      const want = CASES.filter((cs) => cs.kind === kind && cs.gone).map((cs) => cs.name);
      assert.deepEqual((await names(ns, kind)).sort(), want.sort(), `${resource(kind)} all kept`);
    }
  });
});
