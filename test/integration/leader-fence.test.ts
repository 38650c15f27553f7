// The split-brain window: the built binary leads, is paused (SIGSTOP) past its lease while its
// finished Jobs come due, another identity takes the expired lease, then it is resumed (SIGCONT).
// No DELETE may leave the resumed process: its lease ran out on its own monotonic clock
// (src/kube/leader-election.ts) and every DELETE is fenced on it (src/kube/deleter.ts).
// Nothing else deletes in the namespace, so a Job gone is a DELETE the paused process sent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { type ChildController, scrape, spawnController } from '../testbed/controller.ts';
import { KTTL_NAMESPACE, LEASE_NAME } from '../testbed/identities.ts';
import { jobExists, jobFinishMs } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  jobManifest,
  jobState,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const LEASE_S = 4;
const TTL_S = 8;

describe('leader fence: a leader paused past its lease', () => {
  let tb: Testbed;
  let c: Clients;
  let leases: k8s.CoordinationV1Api;
  const children: ChildController[] = [];
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    leases = c.kc.makeApiClient(k8s.CoordinationV1Api);
  });
  after(async () => {
    for (const ch of children) {
      if (ch.proc.exitCode === null) ch.proc.kill('SIGCONT');
      await ch.stop('SIGKILL');
    }
    // The rival's hour-long lease would hold off the leaders of later test files.
    await tb.kubectl(['-n', KTTL_NAMESPACE, 'delete', 'lease', LEASE_NAME, '--ignore-not-found']);
  });

  async function createJobs(ns: string, prefix: string, n: number, ttl: string): Promise<string[]> {
    const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    await Promise.all(
      names.map((name) =>
        c.batch.createNamespacedJob({
          namespace: ns,
          body: jobManifest({ name, namespace: ns, annotations: { 'kttl.dev/ttl': ttl } }),
        }),
      ),
    );
    return names;
  }

  test('SIGSTOP past the lease, lease taken by another identity, SIGCONT: no DELETE sent', async () => {
    const ns = await newNamespace(c, 'fence');
    await tb.kubectl(['-n', KTTL_NAMESPACE, 'delete', 'lease', LEASE_NAME, '--ignore-not-found']);
    const a = await spawnController(
      tb,
      [
        `--namespaces=${ns}`,
        `--leader-elect-resource-namespace=${KTTL_NAMESPACE}`,
        `--leader-elect-resource-name=${LEASE_NAME}`,
        `--leader-elect-lease-duration=${LEASE_S}s`,
        '--leader-elect-renew-deadline=3s',
        '--leader-elect-retry-period=1s',
      ],
      'fence-a',
    );
    children.push(a);
    await waitFor('a leads', async () => scrape(await a.metrics(), 'kttl_leader') === 1, 20_000, 100);

    // Control: while it holds the lease it does delete (so the survivors below mean something).
    const [control] = await createJobs(ns, 'control', 1, '0s');
    await waitFor(
      'the leader deletes a due Job',
      async () => {
        const s = await jobExists(c, ns, control!);
        return !s.exists || s.deleting;
      },
      30_000,
      100,
    );

    const due = await createJobs(ns, 'due', 10, `${TTL_S}s`);
    for (const name of due)
      await waitFor(`${name} finished`, async () => (await jobState(c, ns, name)) !== 'running', 30_000, 100);
    const expireAt = Math.max(...(await Promise.all(due.map((n) => jobFinishMs(c, ns, n))))) + TTL_S * 1000;
    await sleep(500); // its watch has delivered the finished Jobs
    const lease0 = await leases.readNamespacedLease({ name: LEASE_NAME, namespace: KTTL_NAMESPACE });
    const identity = lease0.spec?.holderIdentity;
    assert.ok(identity, 'a holds the lease');

    a.proc.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const firstExpiry =
      Math.min(...(await Promise.all(due.map((n) => jobFinishMs(c, ns, n))))) + TTL_S * 1000;
    assert.ok(firstExpiry > stoppedAt + 1000, 'the Jobs come due only after the pause began');

    // Another replica would take the lease once its record has not changed for its duration.
    await sleep(LEASE_S * 1000 + 1500);
    const stale = await leases.readNamespacedLease({ name: LEASE_NAME, namespace: KTTL_NAMESPACE });
    assert.equal(stale.spec?.holderIdentity, identity, 'nobody else touched the lease');
    const now = new k8s.V1MicroTime();
    await leases.replaceNamespacedLease({
      name: LEASE_NAME,
      namespace: KTTL_NAMESPACE,
      body: {
        ...stale,
        spec: {
          ...stale.spec,
          holderIdentity: 'rival',
          leaseDurationSeconds: 3600,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: (stale.spec?.leaseTransitions ?? 0) + 1,
        },
      },
    });
    const takenAt = Date.now();
    await sleep(Math.max(0, expireAt + 1000 - Date.now())); // every Job's TTL ran out during the pause

    a.proc.kill('SIGCONT');
    const resumedAt = Date.now();
    console.log(
      `# paused ${((resumedAt - stoppedAt) / 1000).toFixed(1)} s (lease ${LEASE_S} s); lease taken ${((takenAt - stoppedAt) / 1000).toFixed(1)} s into the pause; ${due.length} Jobs due`,
    );
    // It must give up leadership (and exit, as a lost leader does) without deleting.
    await waitFor('a exits after losing the lease', async () => a.proc.exitCode !== null, 10_000, 100);
    await sleep(1000); // any DELETE it sent has been applied by now
    const gone = (await Promise.all(due.map((n) => jobExists(c, ns, n)))).filter(
      (s) => !s.exists || s.deleting,
    ).length;
    const deletedLines = a.logLines().filter((l) => l.msg === 'deleted: TTL expired');
    console.log(
      `# DELETEs sent after the lease expired: ${gone} (Jobs gone of ${due.length}); log says deleted: ${deletedLines.length - 1}`,
    );
    assert.equal(gone, 0, 'no Job deleted by the paused process after its lease expired');
    assert.equal(deletedLines.length, 1, 'only the control Job was ever deleted');
    assert.notEqual(a.proc.exitCode, 0, 'a lost leader exits non-zero');
    const final = await leases.readNamespacedLease({ name: LEASE_NAME, namespace: KTTL_NAMESPACE });
    assert.equal(final.spec?.holderIdentity, 'rival', 'the resumed process did not take the lease back');
  });
});
