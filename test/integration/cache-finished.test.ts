// Issue 21 item 1 on the real control plane: the watch cache keeps finished objects only (and
// unfinished ones with kttl.dev/expires, the one rule that deletes them: src/rules/cache.ts), and
// Pods are watched with status.phase field selectors so running Pods are never sent in full — a
// second, metadata-only watch still finds a running Pod that carries kttl.dev/expires.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type InProcess, metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { type FaultProxy, type FaultRequest, startFaultProxy } from '../testbed/fault-proxy.ts';
import { controllerKubeconfigPath } from '../testbed/identities.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  createJob,
  installPolicyCrds,
  newNamespace,
  sleep,
  TEST_LABELS,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

// Far, and valid: within the maximum TTL (src/rules/duration.ts), or the object would be kept for a bad value.
const FAR = '2040-01-01';

describe('cache only what can be deleted', () => {
  let tb: Testbed;
  let c: Clients;
  let proxy: FaultProxy;
  let kttl: InProcess | undefined;
  const podRequests: FaultRequest[] = [];
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    // Installed, the policy CRDs are known at once; absent, kttl keeps everything for the ~15 s it
    // takes to confirm they are gone (src/kube/optional-resource.ts), which the timings below would show.
    await installPolicyCrds(tb);
    proxy = await startFaultProxy(tb);
    proxy.setFault({
      hold: (r) => {
        if (r.path.endsWith('/pods')) podRequests.push(r);
      },
    });
  });
  after(async () => {
    await kttl?.stop();
    await proxy?.stop();
  });

  const pod = (name: string, labels: Record<string, string>, annotations: Record<string, string> = {}) => ({
    metadata: { name, labels, annotations },
    spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
  });
  const phaseOf = async (ns: string, name: string) =>
    (await c.core.readNamespacedPod({ name, namespace: ns }).catch(() => undefined))?.status?.phase;
  const gone = async (ns: string, name: string) => {
    const p = await c.core.readNamespacedPod({ name, namespace: ns }).catch(() => undefined);
    return p === undefined || !!p.metadata?.deletionTimestamp;
  };

  test('running Jobs and Pods are not cached; finished ones and those with kttl.dev/expires are; a running Pod with kttl.dev/expires goes then, one that finishes goes after its TTL', async () => {
    const ns = await newNamespace(c, 'cache');
    kttl = await startInProcess(
      tb,
      runOptions([ns]),
      undefined,
      undefined,
      proxy.kubeconfig(controllerKubeconfigPath(tb)),
    );
    const tracked = async (kind: string) => metricValue(kttl!.registry, 'kttl_tracked_objects', { kind });

    // Unfinished: 8 suspended Jobs and 6 running bare Pods without kttl.dev/expires, one of each with it.
    for (let i = 0; i < 8; i++) await createJob(c, { name: `suspended-${i}`, namespace: ns, suspend: true });
    await createJob(c, {
      name: 'suspended-expires',
      namespace: ns,
      suspend: true,
      annotations: { 'kttl.dev/expires': FAR },
    });
    for (let i = 0; i < 6; i++)
      await c.core.createNamespacedPod({ namespace: ns, body: pod(`running-${i}`, {}) });
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('running-expires', {}, { 'kttl.dev/expires': FAR }),
    });
    // Finished: 2 Jobs and 2 bare Pods with a long TTL.
    for (const name of ['done-0', 'done-1'])
      await createJob(c, { name, namespace: ns, annotations: { 'kttl.dev/ttl': '1h' } });
    for (const name of ['pod-done-0', 'pod-done-1'])
      await c.core.createNamespacedPod({
        namespace: ns,
        body: pod(name, { [TEST_LABELS.succeed]: 'true' }, { 'kttl.dev/ttl': '1h' }),
      });
    await waitForJob(c, ns, 'done-0', 'Complete');
    await waitForJob(c, ns, 'done-1', 'Complete');
    await waitFor(
      'pods running or done',
      async () => {
        const phases = await Promise.all(
          ['running-0', 'running-5', 'running-expires', 'pod-done-0', 'pod-done-1'].map((n) =>
            phaseOf(ns, n),
          ),
        );
        return phases.join() === 'Running,Running,Running,Succeeded,Succeeded';
      },
      60_000,
    );
    await waitFor(
      'the caches hold what can be deleted',
      async () => (await tracked('Job')) === 3 && (await tracked('Pod')) === 3,
      30_000,
    );
    await sleep(2000);
    const jobsCached = await tracked('Job');
    const podsCached = await tracked('Pod');
    console.log(`# cached: ${jobsCached} of 11 Jobs (9 unfinished), ${podsCached} of 9 Pods (7 running)`);
    assert.equal(jobsCached, 3, 'the 2 finished Jobs and the unfinished one with kttl.dev/expires');
    assert.equal(podsCached, 3, 'the 2 finished Pods and the running one with kttl.dev/expires');

    // The Pod watches ask the API server to filter by phase: running Pods are never sent in full.
    const selectors = new Set(podRequests.map((r) => r.query.get('fieldSelector') ?? ''));
    assert.ok(
      [...selectors].some((s) => s.includes('status.phase!=Running') && s.includes('status.phase!=Pending')),
      `a Pod watch for finished Pods: ${[...selectors].join(' | ')}`,
    );
    assert.ok(
      [...selectors].some((s) => s.includes('status.phase!=Succeeded') && s.includes('status.phase!=Failed')),
      `a Pod watch for unfinished ones: ${[...selectors].join(' | ')}`,
    );
    assert.ok(![...selectors].includes(''), 'no Pod request without a phase selector');

    // kttl.dev/expires deletes a running Pod (seen through the metadata-only watch) at that time.
    const at = new Date(Date.now() + 4000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('expires-soon', {}, { 'kttl.dev/expires': at }),
    });
    await waitFor(
      'expires-soon running',
      async () => (await phaseOf(ns, 'expires-soon')) === 'Running',
      30_000,
    );
    assert.equal(await gone(ns, 'expires-soon'), false, 'kept until its time');
    await waitFor('expires-soon deleted', () => gone(ns, 'expires-soon'), 30_000);
    const late = (Date.now() - Date.parse(at)) / 1000;
    console.log(`# running Pod with kttl.dev/expires deleted ${late.toFixed(1)} s after its time`);
    assert.ok(late > -1, 'not before its time');
    // Counted once the DELETE's answer is in (the test may see the deletionTimestamp first).
    await waitFor(
      'the deletion counted as unfinished',
      async () =>
        (await metricValue(kttl!.registry, 'kttl_deletions_total', {
          kind: 'Pod',
          outcome: 'unfinished',
        })) === 1,
      5000,
    );

    // A running Pod cached by its kttl.dev/expires finishes: it moves from the metadata watch to the
    // finished one, and its TTL (earlier than the expiry) counts from its finish.
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('moves', {}, { 'kttl.dev/expires': FAR, 'kttl.dev/ttl': '3s' }),
    });
    await waitFor('moves running', async () => (await phaseOf(ns, 'moves')) === 'Running', 30_000);
    await sleep(1500);
    assert.equal(await gone(ns, 'moves'), false, 'kept while running');
    await c.core.patchNamespacedPod({
      name: 'moves',
      namespace: ns,
      body: [{ op: 'add', path: '/metadata/labels', value: { [TEST_LABELS.succeed]: 'true' } }], // it has none
    });
    await waitFor('moves succeeded', async () => (await phaseOf(ns, 'moves')) !== 'Running', 30_000);
    const finishedAt = Date.now();
    await waitFor('moves deleted', () => gone(ns, 'moves'), 30_000);
    const after = (Date.now() - finishedAt) / 1000;
    console.log(
      `# Pod moved from the unfinished watch to the finished one, deleted ${after.toFixed(1)} s after it finished (TTL 3 s)`,
    );
    assert.ok(after >= 1.5, `deleted ${after} s after its finish: its 3 s TTL counts from the finish`);
    // Everything else lives: the running Pods and unfinished Jobs were never judged due.
    for (let i = 0; i < 6; i++) assert.equal(await gone(ns, `running-${i}`), false);
    for (const name of ['pod-done-0', 'pod-done-1', 'running-expires'])
      assert.equal(await gone(ns, name), false);
    const jobs = await c.batch.listNamespacedJob({ namespace: ns });
    assert.equal(jobs.items.filter((j) => !j.metadata?.deletionTimestamp).length, 11);
  });
});
