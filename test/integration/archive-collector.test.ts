// The archive's collector on the real control plane, as kttl's least-privilege ServiceAccount
// (deploy/rbac/rbac.yaml): pod logs come through the API server's pods/log path from kwok's kubelet
// server (files given by Logs/ClusterLogs objects, test/testbed/pod-logs.ts), Events are those the
// real job-controller and scheduler wrote. Request counts are the ones src/archive/collector.ts states.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import {
  type Collected,
  type CollectOptions,
  type CollectTarget,
  collect,
  EVENT_LISTS_PER_UID_MAX,
} from '../../src/archive/collector.ts';
import { systemClock } from '../../src/clock.ts';
import { KubeHttp, type Verb } from '../../src/kube/http.ts';
import { controllerKubeconfigPath } from '../testbed/identities.ts';
import { deleteNamespaceLogs, setNamespaceLogs, setPodLogs, writeContainerLog } from '../testbed/pod-logs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  kubeConfigFromFile,
  newNamespace,
  TEST_LABELS,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

/** `n` lines of exactly 50 bytes each (with the newline): `<tag> line 0001 xxx…`. */
function lines(tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    `${tag} line ${String(i + 1).padStart(4, '0')} `.padEnd(49, 'x'),
  );
}
const joined = (ls: string[]) => ls.map((l) => `${l}\n`).join('');

describe('archive collector (pods/log and Events through the API server)', () => {
  let tb: Testbed;
  let c: Clients;
  let http: KubeHttp;
  const requests: { verb: Verb; code: number }[] = [];
  const clusterLogs: string[] = [];

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    http = new KubeHttp({
      kubeConfig: kubeConfigFromFile(controllerKubeconfigPath(tb)),
      clock: systemClock,
      observer: { response: (verb, code) => requests.push({ verb, code }) },
    });
  });
  after(async () => {
    await http.close();
    for (const name of clusterLogs) await deleteNamespaceLogs(tb, name);
  });

  /** Runs the collector and returns its result with the requests it sent. */
  async function collected(target: CollectTarget, o: CollectOptions): Promise<Collected & { sent: number }> {
    requests.length = 0;
    const r = await collect(http, target, o);
    return { ...r, sent: requests.length };
  }

  async function eventReasons(ns: string, uid: string): Promise<string[]> {
    const list = await c.core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: `involvedObject.uid=${uid}`,
    });
    return list.items.map((e) => e.reason ?? '');
  }

  /** kwok learns of Logs objects through its watch: wait until the API server returns this log. */
  async function waitForLog(ns: string, pod: string, container: string, startsWith: string): Promise<void> {
    const path = `/api/v1/namespaces/${ns}/pods/${pod}/log?container=${container}&limitBytes=100`;
    await waitFor(
      `log of ${pod}/${container}`,
      async () => (await tb.rawGet(path)).startsWith(startsWith),
      15_000,
      200,
    );
  }

  describe('a Job with 2 pods, each with an init container', () => {
    let ns: string;
    let job: CollectTarget;
    let pods: string[];
    const mainLines: Record<string, string[]> = {};

    before(async () => {
      ns = await newNamespace(c, 'collect');
      // Init containers of every pod in the namespace share one file; each pod's main has its own.
      const init = writeContainerLog(tb, ['init: fetching input', 'init: done']);
      clusterLogs.push(await setNamespaceLogs(tb, ns, { setup: init }));
      const created = await c.batch.createNamespacedJob({
        namespace: ns,
        body: {
          metadata: { name: 'train' },
          spec: {
            completions: 2,
            parallelism: 2,
            backoffLimit: 0,
            template: {
              spec: {
                restartPolicy: 'Never',
                initContainers: [{ name: 'setup', image: 'busybox' }],
                containers: [{ name: 'main', image: 'busybox' }],
              },
            },
          },
        },
      });
      job = {
        apiVersion: 'batch/v1',
        kind: 'Job',
        namespace: ns,
        name: 'train',
        uid: created.metadata?.uid ?? '',
      };
      await waitForJob(c, ns, 'train', 'Complete');
      pods = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=train' })).items
        .map((p) => p.metadata?.name ?? '')
        .sort();
      assert.equal(pods.length, 2);
      for (const [i, pod] of pods.entries()) {
        mainLines[pod] = lines(`pod${i}`, 300);
        // The Logs object for a pod wins over the ClusterLogs: name the init container's file too.
        await setPodLogs(tb, ns, pod, { main: writeContainerLog(tb, mainLines[pod]), setup: init });
      }
      for (const [i, pod] of pods.entries()) await waitForLog(ns, pod, 'main', `pod${i} line`);
      // The job-controller's Events are written asynchronously.
      await waitFor(
        'the Job has its Completed Event',
        async () => (await eventReasons(ns, job.uid)).includes('Completed'),
        15_000,
        200,
      );
    });

    test('the last 200 lines of each container, init containers too, and the Events of the Job and its pods', async () => {
      const r = await collected(job, { logs: true });
      assert.deepEqual(r.errors, []);
      assert.deepEqual(
        r.logs.map((l) => [l.pod, l.container, l.containerType, l.truncated, l.error]),
        pods.flatMap((p) => [
          [p, 'setup', 'init', false, undefined],
          [p, 'main', 'regular', true, undefined],
        ]),
      );
      for (const l of r.logs) {
        if (l.container === 'setup') assert.equal(l.text, 'init: fetching input\ninit: done\n');
        else
          assert.equal(
            l.text,
            joined((mainLines[l.pod] ?? []).slice(-200)),
            `${l.pod}: its own last 200 lines`,
          );
      }
      const jobEvents = r.events.filter((e) => e.involvedKind === 'Job').map((e) => [e.reason, e.source]);
      assert.deepEqual(
        jobEvents.filter(([reason]) => reason === 'Completed'),
        [['Completed', 'job-controller']],
      );
      assert.equal(jobEvents.filter(([reason]) => reason === 'SuccessfulCreate').length, 2, 'one per pod');
      for (const pod of pods) {
        const scheduled = r.events.find((e) => e.involvedName === pod && e.reason === 'Scheduled');
        assert.equal(scheduled?.source, 'default-scheduler', `${pod} has its Scheduled Event`);
        assert.ok(scheduled?.firstTime, 'with a time (events.k8s.io eventTime)');
      }
      // 1 pods list + 4 logs (2 pods x 2 containers) + 3 Events lists (the Job, 2 pods).
      assert.equal(r.sent, 8);
      assert.ok(
        requests.every((q) => q.code === 200),
        'no 403: the ServiceAccount has what it needs, and reads nothing else',
      );
    });

    test('exactly as many lines as exist is not truncated; fewer asked for is', async () => {
      const all = await collected(job, { logs: true, logLines: 300 });
      const main = all.logs.filter((l) => l.container === 'main');
      assert.deepEqual(
        main.map((l) => l.truncated),
        [false, false],
      );
      assert.equal(main[0]?.text, joined(mainLines[pods[0] ?? ''] ?? []));
      const five = await collected(job, { logs: true, logLines: 5 });
      const m0 = five.logs.find((l) => l.container === 'main');
      assert.equal(m0?.text, joined((mainLines[pods[0] ?? ''] ?? []).slice(-5)));
      assert.equal(m0?.truncated, true);
    });

    test('past logBytes the end of the log is kept (one more request per such container)', async () => {
      const r = await collected(job, { logs: true, logBytes: 1000 });
      assert.deepEqual(r.errors, []);
      for (const l of r.logs.filter((x) => x.container === 'main')) {
        // 1000 bytes hold the last 20 of those 50-byte lines.
        assert.equal(l.text, joined((mainLines[l.pod] ?? []).slice(-20)));
        assert.equal(l.truncated, true);
      }
      // 1 pods list + (2 + 2) main + 2 setup + 3 Events lists.
      assert.equal(r.sent, 10);
    });

    test('logs off: only the pods list and the Events lists', async () => {
      const r = await collected(job, { logs: false });
      assert.deepEqual(r.logs, []);
      assert.ok(r.events.length >= 5);
      assert.equal(r.sent, 4);
    });
  });

  test('a Pod with no logs configured: an entry with the error, not a failure', async () => {
    const ns = await newNamespace(c, 'collect');
    const pod = await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'silent', labels: { [TEST_LABELS.run]: 'true' } },
        spec: { containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    await waitFor(
      'pod Running',
      async () =>
        (await c.core.readNamespacedPod({ name: 'silent', namespace: ns })).status?.phase === 'Running',
      30_000,
      100,
    );
    const target = {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace: ns,
      name: 'silent',
      uid: pod.metadata?.uid ?? '',
    };
    const r = await collected(target, { logs: true });
    assert.deepEqual(r.errors, [], 'the kubelet has no such log: nothing to retry');
    assert.equal(r.logs.length, 1);
    assert.equal(r.logs[0]?.text, '');
    assert.match(r.logs[0]?.error ?? '', /no logs found for container "main"/);
    assert.ok(r.events.some((e) => e.reason === 'Scheduled' && e.involvedName === 'silent'));
    // GET the pod, its log, its Events.
    assert.equal(r.sent, 3);
    // Given the object as judged, the GET is saved.
    const fresh = JSON.parse(await tb.rawGet(`/api/v1/namespaces/${ns}/pods/silent`)) as Record<
      string,
      unknown
    >;
    const given = await collected(target, { logs: true, object: fresh });
    assert.equal(given.sent, 2);
  });

  test('a pod that never ran: its containers are entries with an error, no log request', async () => {
    const ns = await newNamespace(c, 'collect');
    const pod = await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'nowhere' },
        spec: {
          nodeSelector: { 'kttl.test/no-such-node': 'true' },
          initContainers: [{ name: 'setup', image: 'busybox' }],
          containers: [{ name: 'main', image: 'busybox' }],
        },
      },
    });
    const target = {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace: ns,
      name: 'nowhere',
      uid: pod.metadata?.uid ?? '',
    };
    await waitFor(
      'FailedScheduling Event',
      async () => (await eventReasons(ns, target.uid)).includes('FailedScheduling'),
      15_000,
      200,
    );
    const r = await collected(target, { logs: true });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.logs.map((l) => [l.container, l.containerType, l.error]),
      [
        ['setup', 'init', 'the pod was never scheduled to a node: no container ran'],
        ['main', 'regular', 'the pod was never scheduled to a node: no container ran'],
      ],
    );
    assert.ok(r.events.some((e) => e.reason === 'FailedScheduling' && e.source === 'default-scheduler'));
    assert.equal(r.sent, 2, 'GET the pod, its Events');
  });

  test('another kind: pods by owner reference and by the finish rule label, no duplicate', async () => {
    const ns = await newNamespace(c, 'collect');
    // Any object can own pods; a ConfigMap stands for a custom kind here.
    const owner = await c.core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'wf' } },
    });
    const uid = owner.metadata?.uid ?? '';
    const ownerRef = { apiVersion: 'v1', kind: 'ConfigMap', name: 'wf', uid };
    const label = 'example.com/workflow';
    const mk = (name: string, labels: Record<string, string>, owned: boolean) =>
      c.core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: {
            name,
            labels: { [TEST_LABELS.run]: 'true', ...labels },
            ownerReferences: owned ? [ownerRef] : undefined,
          },
          spec: { containers: [{ name: 'main', image: 'busybox' }] },
        },
      });
    await mk('owned', {}, true);
    await mk('labelled', { [label]: 'wf' }, false);
    await mk('both', { [label]: 'wf' }, true);
    await mk('stranger', { [label]: 'other' }, false);
    const log = writeContainerLog(tb, ['step ran']);
    clusterLogs.push(await setNamespaceLogs(tb, ns, { main: log }));
    await waitFor(
      'pods Running',
      async () =>
        (await c.core.listNamespacedPod({ namespace: ns })).items.every((p) => p.status?.phase === 'Running'),
      30_000,
      100,
    );
    await waitForLog(ns, 'both', 'main', 'step ran');
    const target = { apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: 'wf', uid };
    const r = await collected(target, { logs: true, podLabel: label });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.logs.map((l) => [l.pod, l.text]),
      [
        ['both', 'step ran\n'],
        ['labelled', 'step ran\n'],
        ['owned', 'step ran\n'],
      ],
    );
    // 2 pods lists (all, to match owner references; by label) + 3 logs + 4 Events lists.
    assert.equal(r.sent, 9);
    const ownedOnly = await collected(target, { logs: true });
    assert.deepEqual(
      ownedOnly.logs.map((l) => l.pod),
      ['both', 'owned'],
    );
  });

  /** A running bare pod in `ns` (kwok keeps pods labelled kttlrun running). */
  async function runningPod(
    ns: string,
    name: string,
    containers: string[],
    labels: Record<string, string> = {},
  ) {
    const pod = await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name, labels: { [TEST_LABELS.run]: 'true', ...labels } },
        spec: { containers: containers.map((n) => ({ name: n, image: 'busybox' })) },
      },
    });
    await waitFor(
      `pod ${name} Running`,
      async () => (await c.core.readNamespacedPod({ name, namespace: ns })).status?.phase === 'Running',
      30_000,
      100,
    );
    return pod.metadata?.uid ?? '';
  }

  test('last lines longer than those before them: up to 3 requests, then the start of the last lines', async () => {
    const ns = await newNamespace(c, 'collect');
    const short = Array.from({ length: 100 }, (_, i) => `s${i}`.padEnd(9, '.')); // 10 bytes a line
    const long = (width: number) => Array.from({ length: 10 }, (_, i) => `L${i}`.padEnd(width - 1, '-'));
    const moderate = [...short, ...long(30)];
    const extreme = [...short, ...long(60)];
    clusterLogs.push(
      await setNamespaceLogs(tb, ns, {
        moderate: writeContainerLog(tb, moderate),
        extreme: writeContainerLog(tb, extreme),
      }),
    );
    const uid = await runningPod(ns, 'uneven', ['moderate', 'extreme']);
    await waitForLog(ns, 'uneven', 'moderate', 's0');
    const target = { apiVersion: 'v1', kind: 'Pod', namespace: ns, name: 'uneven', uid };
    const r = await collected(target, { logs: true, logLines: 50, logBytes: 500 });
    assert.deepEqual(r.errors, []);
    const [m, x] = r.logs;
    // 51 lines (710 bytes) do not fit; the 44 that fitted do not either (640); 22 do (420).
    assert.equal(m?.text, joined(moderate.slice(-22)));
    assert.equal(m?.truncated, true);
    // With lines 6x longer at the end even 21 do not fit: the start of those 21, cut at 500 bytes.
    assert.equal(x?.truncated, true);
    assert.equal(x?.text, joined(extreme.slice(-21)).slice(0, 500));
    // GET the pod + 3 + 3 logs + 1 Events list.
    assert.equal(r.sent, 8);
  });

  test('an ephemeral container has its log too', async () => {
    const ns = await newNamespace(c, 'collect');
    clusterLogs.push(
      await setNamespaceLogs(tb, ns, {
        main: writeContainerLog(tb, ['main ran']),
        debug: writeContainerLog(tb, ['debugged']),
      }),
    );
    const uid = await runningPod(ns, 'dbg', ['main']);
    await tb.kubectl([
      'debug',
      '-n',
      ns,
      'dbg',
      '--image=busybox',
      '--container=debug',
      '--profile=general',
      '--attach=false',
    ]);
    // kwok's stages do not write ephemeral container statuses: the test plays the kubelet there.
    await tb.kubectl([
      'patch',
      'pod',
      '-n',
      ns,
      'dbg',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          ephemeralContainerStatuses: [
            {
              name: 'debug',
              image: 'busybox',
              imageID: '',
              ready: false,
              restartCount: 0,
              state: { running: { startedAt: new Date().toISOString() } },
            },
          ],
        },
      }),
    ]);
    await waitForLog(ns, 'dbg', 'debug', 'debugged');
    const r = await collected(
      { apiVersion: 'v1', kind: 'Pod', namespace: ns, name: 'dbg', uid },
      { logs: true },
    );
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.logs.map((l) => [l.container, l.containerType, l.text]),
      [
        ['main', 'regular', 'main ran\n'],
        ['debug', 'ephemeral', 'debugged\n'],
      ],
    );
  });

  test('a Job whose pods carry only the older controller-uid label', async () => {
    const ns = await newNamespace(c, 'collect');
    const jobUid = `00000000-0000-4000-8000-${Date.now().toString(16).padStart(12, '0').slice(-12)}`;
    const podUid = await runningPod(ns, 'legacy', ['main'], { 'controller-uid': jobUid });
    await waitFor(
      'Scheduled Event',
      async () => (await eventReasons(ns, podUid)).includes('Scheduled'),
      15_000,
      200,
    );
    const r = await collected(
      { apiVersion: 'batch/v1', kind: 'Job', namespace: ns, name: 'legacy', uid: jobUid },
      { logs: false },
    );
    assert.deepEqual(r.errors, []);
    assert.ok(r.events.some((e) => e.involvedName === 'legacy' && e.reason === 'Scheduled'));
    // 2 pods lists (the current label, then the older one) + 2 Events lists.
    assert.equal(r.sent, 4);
  });

  test('more than EVENT_LISTS_PER_UID_MAX uids: one Events list of the namespace, filtered', async () => {
    const ns = await newNamespace(c, 'collect');
    const created = await c.batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: 'wide' },
        spec: {
          completions: EVENT_LISTS_PER_UID_MAX,
          parallelism: EVENT_LISTS_PER_UID_MAX,
          backoffLimit: 0,
          template: {
            spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
          },
        },
      },
    });
    const uid = created.metadata?.uid ?? '';
    const strangerUid = await runningPod(ns, 'stranger', ['main']);
    await waitForJob(c, ns, 'wide', 'Complete', 60_000);
    await waitFor(
      'the Job has its Completed Event',
      async () => (await eventReasons(ns, uid)).includes('Completed'),
      15_000,
      200,
    );
    await waitFor(
      'stranger Scheduled',
      async () => (await eventReasons(ns, strangerUid)).length > 0,
      15_000,
      200,
    );
    const r = await collected(
      { apiVersion: 'batch/v1', kind: 'Job', namespace: ns, name: 'wide', uid },
      { logs: false },
    );
    assert.deepEqual(r.errors, []);
    assert.equal(r.sent, 2, '1 pods list + 1 Events list for 9 uids');
    assert.equal(r.events.filter((e) => e.reason === 'Scheduled').length, EVENT_LISTS_PER_UID_MAX);
    assert.ok(r.events.some((e) => e.involvedKind === 'Job' && e.reason === 'Completed'));
    assert.ok(!r.events.some((e) => e.involvedName === 'stranger'), 'Events of other objects are left out');
  });

  test('the API server unreachable: every failure is in errors, nothing thrown', async () => {
    const kc = kubeConfigFromFile(controllerKubeconfigPath(tb));
    const cluster = kc.getCurrentCluster();
    assert.ok(cluster);
    const dead = new k8s.KubeConfig();
    dead.loadFromOptions({
      clusters: [{ ...cluster, server: 'https://127.0.0.1:1' }],
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    const down = new KubeHttp({ kubeConfig: dead, clock: systemClock });
    try {
      const pod = {
        metadata: { name: 'p', namespace: 'x', uid: 'u-pod' },
        spec: { nodeName: 'kwok-node-0', containers: [{ name: 'main' }] },
        status: { containerStatuses: [{ name: 'main', state: { running: {} } }] },
      };
      const r = await collect(
        down,
        { apiVersion: 'v1', kind: 'Pod', namespace: 'x', name: 'p', uid: 'u-pod' },
        { logs: true, object: pod, timeoutMs: 5000 },
      );
      assert.equal(r.logs.length, 1);
      assert.match(r.logs[0]?.error ?? '', /ECONNREFUSED|connect|fetch failed/i);
      assert.equal(r.errors.length, 2, 'the log and the Events');
      const job = await collect(
        down,
        { apiVersion: 'batch/v1', kind: 'Job', namespace: 'x', name: 'j', uid: 'u-job' },
        { logs: true, timeoutMs: 5000 },
      );
      assert.deepEqual(job.logs, []);
      assert.equal(job.errors.length, 2, 'the pods list and the Events');
    } finally {
      await down.close();
    }
  });
});
