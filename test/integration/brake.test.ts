// The blast-radius brake on the real control plane (docs/operations.md "Safety rails"): a policy
// that suddenly matches many finished Jobs deletes exactly its maxDeletions, pauses the rest (kept,
// a Warning Event on the policy, kttl_deletions_paused), and `kttl resume` (the built CLI, an
// annotation on the policy) lets them go; steady deletions under --max-deletions never trip it,
// while a burst trips it and `kttl resume` on the controller's Lease lets it go.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { parseDeletionLimit } from '../../src/rules/safety.ts';
import { assertError, buildCli, kttl, ok } from '../testbed/cli.ts';
import { type InProcess, metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { createFinishedJobs } from '../testbed/finished-jobs.ts';
import { KTTL_NAMESPACE } from '../testbed/identities.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  installPolicyCrds,
  newNamespace,
  sleep,
  ttlPolicy,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

/** The burst: KTTL_BRAKE_JOBS finished Jobs (default 2,000), a quarter of them allowed. */
const N = Number(process.env.KTTL_BRAKE_JOBS ?? 2000);
const LIMIT = N / 4;

async function liveJobs(c: Clients, namespace: string): Promise<number> {
  const list = await c.batch.listNamespacedJob({ namespace });
  return list.items.filter((j) => !j.metadata?.deletionTimestamp).length;
}

async function events(c: Clients, namespace: string, kind: string, name: string) {
  const list = await c.core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  });
  return list.items;
}

describe('blast-radius brake', () => {
  let tb: Testbed;
  let c: Clients;
  let running: InProcess | undefined;

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    buildCli();
    await installPolicyCrds(tb);
  });
  // A failed test must not leave its controller running (it would keep the file from ending).
  afterEach(async () => {
    const r = running;
    running = undefined;
    await r?.stop();
  });

  test(`a policy that suddenly matches ${N} finished Jobs deletes exactly maxDeletions ${LIMIT}/10m, pauses the rest, resumes on kttl resume`, async () => {
    const ns = await newNamespace(c, 'brake');
    const createdMs = await createFinishedJobs(tb, {
      namespace: ns,
      n: N,
      prefix: 'burst-',
      finishedAtMs: Date.now() - 3_600_000,
      labels: { set: 'burst' },
    });
    console.log(`# ${N} finished Jobs written in ${(createdMs / 1000).toFixed(1)} s`);
    running = await startInProcess(
      tb,
      runOptions([ns], { kubeApiQps: 400, kubeApiBurst: 800, workers: 20, eventQps: 5, eventBurst: 25 }),
    );
    const { registry } = running;
    const ref = `TTLPolicy/${ns}/burst`;
    const deleted = () => metricValue(registry, 'kttl_deletions_total', { dry_run: 'false' });
    const paused = () => metricValue(registry, 'kttl_deletions_paused', { policy: ref });
    await sleep(1000);
    assert.equal(await deleted(), 0, 'no TTL yet: nothing deleted');
    const started = Date.now();
    await c.objects.create(
      ttlPolicy(ns, 'burst', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        selector: { matchLabels: { set: 'burst' } },
        ttl: '1m',
        maxDeletions: `${LIMIT}/10m`,
        // Foreground would leave 2,000 deletions to kube-controller-manager's garbage collector (at
        // its QPS 20, minutes), and later test files' Foreground deletions would wait behind them.
        propagationPolicy: 'Background',
      }),
    );
    await waitFor(
      'the brake to hold the rest',
      async () => (await paused()) === N - LIMIT && (await deleted()) === LIMIT,
      120_000,
      250,
    );
    console.log(
      `# ${LIMIT} deleted and ${N - LIMIT} paused in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    assert.equal(await deleted(), LIMIT, 'exactly the limit deleted');
    await sleep(2000);
    assert.equal(await deleted(), LIMIT, 'and no more while paused');
    assert.equal(await liveJobs(c, ns), N - LIMIT, 'the paused Jobs are all there');
    assert.equal(await metricValue(registry, 'kttl_deletion_brake_tripped', { policy: ref }), 1);
    const warn = await waitFor(
      'the Warning Event on the policy',
      async () => (await events(c, ns, 'TTLPolicy', 'burst')).find((e) => e.reason === 'DeletionsPaused'),
      10_000,
    );
    assert.equal(warn.type, 'Warning');
    assert.match(warn.message ?? '', new RegExp(`${LIMIT} deleted within 10m`));
    assert.match(warn.message ?? '', new RegExp(`kttl resume policy/burst -n ${ns}`));

    assertError(
      await kttl(['resume', 'policy/nope', '-n', ns]),
      1,
      `error: ttlpolicies.kttl.dev "nope" not found in namespace "${ns}"`,
    );
    const r = ok(await kttl(['resume', 'policy/burst', '-n', ns]));
    console.log(
      `# ${warn.type} ${warn.reason}: ${warn.message}\n# $ kttl resume policy/burst -n ${ns}\n# ${r.stdout.trim()}`,
    );
    assert.match(
      r.stdout,
      new RegExp(`^ttlpolicy/burst in namespace "${ns}": resume requested \\(kttl.dev/resume=`),
    );
    await waitFor('every paused Job deleted', async () => (await deleted()) === N, 180_000, 500);
    assert.equal(await paused(), 0);
    assert.equal(await metricValue(registry, 'kttl_deletion_brake_tripped', { policy: ref }), 0);
    await waitFor(
      'the Normal Event DeletionsResumed',
      async () => (await events(c, ns, 'TTLPolicy', 'burst')).find((e) => e.reason === 'DeletionsResumed'),
      10_000,
    );
    await running.stop();
    running = undefined;
  });

  test('steady deletions under --max-deletions 6/2s never trip it; a burst does, and kttl resume on the Lease lets it go', async () => {
    const ns = await newNamespace(c, 'brake-g');
    const limit = parseDeletionLimit('6/2s');
    assert.ok(limit.ok);
    running = await startInProcess(
      tb,
      runOptions([ns], {
        leaderElect: true,
        leaderElectNamespace: KTTL_NAMESPACE,
        leaderElectName: 'kttl',
        safety: { maxDeletions: limit.value },
      }),
    );
    const { registry } = running;
    await waitFor('leadership', async () => (await metricValue(registry, 'kttl_leader')) === 1, 30_000);
    const deleted = () => metricValue(registry, 'kttl_deletions_total', { dry_run: 'false' });
    const since = Date.now();
    // 12 Jobs expiring one a second (at most ~2 in any 2 s): a steady rate well under 6/2s.
    const finishedAtMs = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 12,
      prefix: 'steady-',
      finishedAtMs,
      annotations: (i) => ({ 'kttl.dev/ttl': `${64 + i}s` }),
    });
    await waitFor('the steady Jobs deleted', async () => (await deleted()) === 12, 60_000, 250);
    assert.equal(await metricValue(registry, 'kttl_deletion_brake_tripped', { policy: '*' }), 0);
    assert.equal(await metricValue(registry, 'kttl_deletions_paused', { policy: '*' }), 0);
    const leaseEvents = async () =>
      (await events(c, KTTL_NAMESPACE, 'Lease', 'kttl')).filter(
        (e) => new Date(e.lastTimestamp ?? e.eventTime ?? 0).getTime() >= since - 1000,
      );
    assert.equal((await leaseEvents()).filter((e) => e.reason === 'DeletionsPaused').length, 0);

    // A burst of 15 already expired (their own annotation: the global brake is the one that applies).
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 15,
      prefix: 'burst-',
      finishedAtMs: Date.now() - 3_600_000,
      annotations: () => ({ 'kttl.dev/ttl': '1m' }),
    });
    await waitFor(
      'the global brake to hold',
      async () => (await metricValue(registry, 'kttl_deletions_paused', { policy: '*' })) > 0,
      30_000,
      100,
    );
    await sleep(1500);
    const paused = await metricValue(registry, 'kttl_deletions_paused', { policy: '*' });
    const total = await deleted();
    // The window still holds some steady deletions at most 2 s old: 6 minus those went.
    assert.ok(total - 12 <= 6 && total - 12 + paused === 15, `deleted ${total - 12}, paused ${paused}`);
    const warn = await waitFor(
      'the Warning Event on the Lease',
      async () => (await leaseEvents()).find((e) => e.reason === 'DeletionsPaused'),
      10_000,
    );
    assert.match(warn.message ?? '', /--max-deletions 6\/2s.*kttl resume -n kttl/);
    await sleep(2500); // past the window: paused stays paused
    assert.equal(await deleted(), total);

    const r = ok(await kttl(['resume', '-n', KTTL_NAMESPACE]));
    console.log(
      `# ${warn.type} ${warn.reason}: ${warn.message}\n# $ kttl resume -n kttl\n# ${r.stdout.trim()}`,
    );
    await waitFor('the burst deleted', async () => (await deleted()) === 27, 30_000, 250);
    assert.equal(await metricValue(registry, 'kttl_deletions_paused', { policy: '*' }), 0);
    assert.equal(await liveJobs(c, ns), 0);
    await running.stop();
    running = undefined;
  });
});
