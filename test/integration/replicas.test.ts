// The built binary as a real process: restart mid-drain (kill -9) loses nothing; two replicas
// elect one leader, only it deletes, and the other takes over when it dies.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ChildController, scrape, spawnController } from '../testbed/controller.ts';
import { KTTL_NAMESPACE, LEASE_NAME } from '../testbed/identities.ts';
import { jobExists } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  jobManifest,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

describe('controller process: restarts and replicas', () => {
  let tb: Testbed;
  let c: Clients;
  const children: ChildController[] = [];
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
  });
  after(async () => {
    for (const ch of children) await ch.stop('SIGKILL');
  });

  async function createJobs(
    ns: string,
    prefix: string,
    n: number,
    annotations: Record<string, string>,
  ): Promise<string[]> {
    const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    await Promise.all(
      names.map((name) =>
        c.batch.createNamespacedJob({
          namespace: ns,
          body: jobManifest({ name, namespace: ns, annotations }),
        }),
      ),
    );
    return names;
  }

  async function countGoneOrDeleting(ns: string, names: string[]): Promise<number> {
    const states = await Promise.all(names.map((n) => jobExists(c, ns, n)));
    return states.filter((s) => !s.exists || s.deleting).length;
  }

  test('kill -9 mid-drain, restart: every due Job is deleted, none that should live', async () => {
    const ns = await newNamespace(c, 'restart');
    const due = await createJobs(ns, 'due', 30, { 'kttl.dev/ttl': '2s' });
    const live = await createJobs(ns, 'live', 3, { 'kttl.dev/ttl': '1h' });
    const first = await spawnController(
      tb,
      [`--namespaces=${ns}`, '--leader-elect=false', '--kube-api-qps=5', '--kube-api-burst=1'],
      'restart-a',
    );
    children.push(first);
    await waitFor('a few deletions', async () => (await countGoneOrDeleting(ns, due)) >= 3, 60_000, 100);
    await first.stop('SIGKILL');
    const atKill = await countGoneOrDeleting(ns, due);
    console.log(`# killed with ${atKill}/30 deleted`);
    assert.ok(atKill < 30, 'killed mid-drain');
    const second = await spawnController(tb, [`--namespaces=${ns}`, '--leader-elect=false'], 'restart-b');
    children.push(second);
    const t0 = Date.now();
    await waitFor(
      'all due deleted after restart',
      async () => (await countGoneOrDeleting(ns, due)) === 30,
      60_000,
      100,
    );
    console.log(
      `# restarted controller deleted the remaining ${30 - atKill} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    for (const name of live) assert.ok((await jobExists(c, ns, name)).exists, `${name} must live`);
    await second.stop();
  });

  test('two replicas: one leader deletes; kill -9 the leader and the other takes over within the lease', async () => {
    const ns = await newNamespace(c, 'replicas');
    // The chart's Lease (namespace kttl, name kttl): its lease Role allows get/update of that one
    // only. A Lease left by an earlier run on this testbed would hold off the first leader.
    await tb.kubectl(['-n', KTTL_NAMESPACE, 'delete', 'lease', LEASE_NAME, '--ignore-not-found']);
    const le = [
      `--namespaces=${ns}`,
      `--leader-elect-resource-namespace=${KTTL_NAMESPACE}`,
      `--leader-elect-resource-name=${LEASE_NAME}`,
      '--leader-elect-lease-duration=4s',
      '--leader-elect-renew-deadline=3s',
      '--leader-elect-retry-period=1s',
    ];
    const a = await spawnController(tb, le, 'replica-a');
    children.push(a);
    await waitFor('a leads', async () => scrape(await a.metrics(), 'kttl_leader') === 1, 20_000);
    const b = await spawnController(tb, le, 'replica-b');
    children.push(b);
    await sleep(2500);
    assert.equal(scrape(await b.metrics(), 'kttl_leader'), 0, 'b follows');

    const wave1 = await createJobs(ns, 'w1', 10, { 'kttl.dev/ttl': '1s' });
    const live = await createJobs(ns, 'live', 3, {});
    await waitFor('wave 1 deleted', async () => (await countGoneOrDeleting(ns, wave1)) === 10, 60_000, 100);
    await sleep(1000);
    const aDeletes = scrape(await a.metrics(), 'kttl_deletions_total');
    const bDeletes = scrape(await b.metrics(), 'kttl_deletions_total');
    assert.equal(aDeletes, 10, 'the leader deleted all of wave 1');
    assert.equal(bDeletes, 0, 'the follower deleted nothing');
    assert.equal(
      scrape(await b.metrics(), 'kttl_api_requests_total', { verb: 'delete' }),
      0,
      'the follower sent no DELETE',
    );

    const killedAt = Date.now();
    await a.stop('SIGKILL');
    await waitFor('b takes over', async () => scrape(await b.metrics(), 'kttl_leader') === 1, 20_000, 100);
    const takeover = (Date.now() - killedAt) / 1000;
    console.log(
      `# failover: b became leader ${takeover.toFixed(1)} s after the leader was killed (lease 4 s)`,
    );
    assert.ok(takeover <= 4 + 2 + 1, `takeover within lease + retry (${takeover} s)`);

    const wave2 = await createJobs(ns, 'w2', 10, { 'kttl.dev/ttl': '1s' });
    await waitFor('wave 2 deleted', async () => (await countGoneOrDeleting(ns, wave2)) === 10, 60_000, 100);
    assert.equal(scrape(await b.metrics(), 'kttl_deletions_total'), 10, 'the new leader deleted wave 2');
    assert.equal(scrape(await b.metrics(), 'kttl_delete_conflicts_total'), 0, 'no double deletes');
    for (const name of live) assert.ok((await jobExists(c, ns, name)).exists, `${name} must live`);
    await b.stop();
  });
});
