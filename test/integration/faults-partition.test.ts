// A network partition between kttl and the API server (test/testbed/fault-proxy.ts: new
// connections never answered, open ones frozen without a FIN, and left dead after the partition),
// while the real server moves on: TTLs extended, Jobs replaced under the same name, Jobs created
// and expired. kttl's cache is stale when the partition heals; it must notice its frozen watches,
// reconnect, delete what is due and nothing that changed. The leader loses its lease meanwhile and
// a restarted process takes it again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { systemClock } from '../../src/clock.ts';
import { KubeHttp } from '../../src/kube/http.ts';
import { Reflector } from '../../src/kube/reflector.ts';
import { JOBS } from '../../src/kube/resources.ts';
import {
  type ChildController,
  runOptions,
  scrape,
  spawnController,
  startInProcess,
} from '../testbed/controller.ts';
import { type FaultProxy, startFaultProxy } from '../testbed/fault-proxy.ts';
import { controllerKubeconfigPath, KTTL_NAMESPACE, LEASE_NAME } from '../testbed/identities.ts';
import { JobObserver } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  createJob,
  jobManifest,
  kubeConfigFromFile,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const PARTITION_MS = 60_000;
const silent = pino({ level: 'silent' });

describe('network partition', () => {
  let tb: Testbed;
  let c: Clients;
  let proxy: FaultProxy;
  const children: ChildController[] = [];
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    proxy = await startFaultProxy(tb);
  });
  after(async () => {
    for (const ch of children) await ch.stop('SIGKILL');
    await proxy?.stop();
  });

  test('a frozen watch that no outage reveals is cut after watchIdleTimeoutMs and resumed; what happened meanwhile is seen', async () => {
    const ns = await newNamespace(c, 'idle');
    const http = new KubeHttp({
      kubeConfig: kubeConfigFromFile(proxy.kubeconfig(controllerKubeconfigPath(tb))),
      clock: systemClock,
    });
    const r = new Reflector({
      http,
      resource: JOBS,
      namespace: ns,
      clock: systemClock,
      logger: silent,
      watchIdleTimeoutMs: 5000,
      transform: (raw) => raw.metadata?.name ?? null,
      handler: { upsert: () => undefined, remove: () => undefined },
    });
    try {
      r.start();
      await r.synced;
      const synced = { ...r.stats };
      proxy.partition();
      await createJob(c, { name: 'meanwhile', namespace: ns, suspend: true });
      await sleep(3000);
      proxy.heal(); // the frozen connection stays dead; nothing else tells the reflector
      const t0 = Date.now();
      await waitFor('seen after the heal', async () => r.store.has(`${ns}/meanwhile`), 30_000, 50);
      const took = (Date.now() - t0) / 1000;
      console.log(
        `# frozen watch, idle bound 5 s: cut ${r.stats.idleWatches}×, the Job created during the partition seen ${took.toFixed(1)} s after the heal; stats ${JSON.stringify(r.stats)}`,
      );
      assert.ok(r.stats.idleWatches >= 1, 'cut for silence');
      assert.equal(
        r.stats.lists + r.stats.watchLists,
        synced.lists + synced.watchLists,
        'resumed from its resourceVersion, no relist',
      );
      assert.ok(took <= 10, `seen ${took} s after the heal`);
    } finally {
      proxy.heal();
      await r.stop();
      await http.close();
    }
  });

  test('60 s partition with a stale cache: extended and replaced Jobs kept, due ones deleted within 30 s after, lease lost and retaken by a restarted process', async () => {
    const ns = await newNamespace(c, 'part');
    const nsLe = await newNamespace(c, 'part-le');
    const observer = await JobObserver.start(tb, ns);
    const observerLe = await JobObserver.start(tb, nsLe);
    const kttl = await startInProcess(
      tb,
      runOptions([ns]),
      undefined,
      undefined,
      proxy.kubeconfig(controllerKubeconfigPath(tb)),
    );
    await tb.kubectl(['-n', KTTL_NAMESPACE, 'delete', 'lease', LEASE_NAME, '--ignore-not-found']);
    const le = [
      `--namespaces=${nsLe}`,
      `--leader-elect-resource-namespace=${KTTL_NAMESPACE}`,
      `--leader-elect-resource-name=${LEASE_NAME}`,
      '--leader-elect-lease-duration=15s',
      '--leader-elect-renew-deadline=10s',
      '--leader-elect-retry-period=2s',
    ];
    const kubeconfig = proxy.kubeconfig(controllerKubeconfigPath(tb));
    const leader = await spawnController(tb, le, 'partition-a', { kubeconfig });
    children.push(leader);
    let stopped = false;
    try {
      await waitFor('a leads', async () => scrape(await leader.metrics(), 'kttl_leader') === 1, 30_000, 200);
      const create = async (namespace: string, name: string, ttl: string, suspend = false) =>
        c.batch.createNamespacedJob({
          namespace,
          body: jobManifest({ name, namespace, suspend, annotations: { 'kttl.dev/ttl': ttl } }),
        });
      const names = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}-${i}`);
      const extended = names('ext', 3);
      const replaced = names('rec', 3);
      const due = names('due', 5);
      const dueLe = names('due', 5);
      // Due 25 s after they finish: inside the partition, which starts about 10 s after.
      for (const n of [...extended, ...replaced, ...due]) await create(ns, n, '25s');
      for (const n of dueLe) await create(nsLe, n, '25s');
      await create(ns, 'live', '1h');
      for (const n of [...extended, ...replaced, ...due]) await observer.waitFor(n, 'finished', 60_000);
      for (const n of dueLe) await observerLe.waitFor(n, 'finished', 60_000);
      // kttl has seen them finished (its cache is what the partition freezes).
      await sleep(2000);

      const listsBefore = kttl.app.controller
        .reflectorStats()
        .reduce((n, s) => n + s.lists + s.watchLists + s.relistsAfterGone, 0);
      const partitionedAt = Date.now();
      proxy.partition();
      await sleep(3000);
      // The real server moves on.
      for (const n of extended)
        await c.batch.patchNamespacedJob({
          name: n,
          namespace: ns,
          body: [{ op: 'replace', path: '/metadata/annotations/kttl.dev~1ttl', value: '1h' }],
        });
      const newUids = new Map<string, string>();
      for (const n of replaced) {
        await c.batch.deleteNamespacedJob({ name: n, namespace: ns, propagationPolicy: 'Background' });
        await waitFor(
          `${n} gone`,
          async () =>
            !(await c.batch.readNamespacedJob({ name: n, namespace: ns }).then(
              () => true,
              () => false,
            )),
          30_000,
          100,
        );
        const made = await c.batch.createNamespacedJob({
          namespace: ns,
          body: jobManifest({ name: n, namespace: ns, suspend: true, annotations: { 'kttl.dev/ttl': '0s' } }),
        });
        newUids.set(n, made.metadata!.uid!);
      }
      // Created, finished and expired while kttl cannot see them.
      const unseen = names('new', 3);
      for (const n of unseen) await create(ns, n, '1s');

      // The leader cannot renew: it stops leading and exits (a pod would be restarted).
      const exited = await waitFor(
        'the leader exits',
        async () =>
          leader.proc.exitCode !== null || leader.proc.signalCode !== null ? Date.now() : undefined,
        PARTITION_MS - 5000,
        200,
      );
      const lostAfter = (exited - partitionedAt) / 1000;
      // What the old leader said from the partition on, in seconds after its start.
      const said = leader
        .logLines<{ time?: number; msg?: string }>()
        .filter((l) => (l.time ?? 0) >= partitionedAt)
        .map((l) => `${(((l.time ?? 0) - partitionedAt) / 1000).toFixed(1)} s ${l.msg}`);
      console.log(`# the old leader during the partition:\n#   ${said.join('\n#   ')}`);
      const stoppedLeading = leader
        .logLines<{ time?: number; msg?: string }>()
        .find(
          (l) =>
            (l.time ?? 0) >= partitionedAt && /within the renew deadline|stopped leading/i.test(l.msg ?? ''),
        );
      await sleep(Math.max(0, partitionedAt + PARTITION_MS - Date.now()));
      const healedAt = Date.now();
      proxy.heal();
      // The restarted process: its predecessor's lease must expire first.
      const restarted = await spawnController(tb, le, 'partition-b', { kubeconfig, wait: '/healthz' });
      children.push(restarted);
      await waitFor(
        'b leads',
        async () => scrape(await restarted.metrics(), 'kttl_leader') === 1,
        60_000,
        200,
      );
      const leadsAfter = (Date.now() - healedAt) / 1000;

      const allDeleted = (o: JobObserver, ns_: string[]) =>
        ns_.every((n) => o.jobs.get(n)?.deletionSeenMs !== undefined);
      await waitFor('due Jobs deleted', async () => allDeleted(observer, [...due, ...unseen]), 60_000, 100);
      const inProcessAfter =
        (Math.max(...[...due, ...unseen].map((n) => observer.jobs.get(n)!.deletionSeenMs!)) - healedAt) /
        1000;
      await waitFor('due Jobs of the leader deleted', async () => allDeleted(observerLe, dueLe), 60_000, 100);
      const leAfter =
        (Math.max(...dueLe.map((n) => observerLe.jobs.get(n)!.deletionSeenMs!)) - healedAt) / 1000;
      const stats = kttl.app.controller.reflectorStats();
      const restartedWatches = stats.reduce((n, s) => n + s.restartedWatches, 0);
      const idleWatches = stats.reduce((n, s) => n + s.idleWatches, 0);
      const relists =
        stats.reduce((n, s) => n + s.lists + s.watchLists + s.relistsAfterGone, 0) - listsBefore;
      console.log(
        `# partition ${PARTITION_MS / 1000} s: in-process kttl (stale cache) deleted the 5 due + 3 unseen Jobs ${inProcessAfter.toFixed(1)} s after the heal; frozen watches ended at the outage's end ${restartedWatches}×, cut for silence ${idleWatches}×, relists ${relists}; leader lost its lease and exited ${lostAfter.toFixed(1)} s into the partition (renew deadline 10 s), restarted process led ${leadsAfter.toFixed(1)} s after the heal (lease 15 s) and deleted its 5 due Jobs ${leAfter.toFixed(1)} s after`,
      );
      assert.ok(inProcessAfter <= 30, `deleted ${inProcessAfter} s after the heal`);
      assert.ok(leAfter <= 30, `leader's Jobs deleted ${leAfter} s after the heal`);
      assert.ok(restartedWatches + idleWatches >= 1, 'the frozen watches were noticed');
      // It stops deleting at the renew deadline (the fence: src/kube/leader-election.ts); the exit
      // follows once its shutdown's requests into the partition have timed out.
      const stoppedAfter = stoppedLeading?.time ? (stoppedLeading.time - partitionedAt) / 1000 : Number.NaN;
      console.log(
        `# stopped leading ${stoppedAfter.toFixed(1)} s into the partition, exited ${lostAfter.toFixed(1)} s`,
      );
      assert.ok(stoppedAfter <= 10 + 3, `stopped leading ${stoppedAfter} s into the partition`);
      assert.ok(lostAfter <= 10 + 15, `the leader exited ${lostAfter} s into the partition`);
      assert.notEqual(leader.proc.exitCode, 0, 'exited non-zero on losing the lease');
      for (const n of extended) {
        assert.equal(observer.jobs.get(n)?.deletionSeenMs, undefined, `${n} (TTL extended) kept`);
        assert.equal(
          (await c.batch.readNamespacedJob({ name: n, namespace: ns })).metadata?.annotations?.[
            'kttl.dev/ttl'
          ],
          '1h',
        );
      }
      for (const n of replaced) {
        const j = observer.jobs.get(n);
        assert.equal(j?.uid, newUids.get(n), `${n}: the new Job is the one observed`);
        assert.equal(j?.deletionSeenMs, undefined, `${n} (replaced, unfinished) kept`);
      }
      assert.equal(observer.jobs.get('live')?.deletionSeenMs, undefined, 'live kept');
      stopped = true;
      await kttl.stop();
      await restarted.stop();
    } finally {
      proxy.heal();
      observer.stop();
      observerLe.stop();
      if (!stopped) await kttl.stop().catch(() => undefined);
    }
  });
});
