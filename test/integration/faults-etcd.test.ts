// etcd killed (SIGKILL) mid-drain and started again on its data: the API server answers 5xx or
// times out meanwhile. The same guarantees as the API server's restart (resilience.test.ts): every
// due Job deleted after, none that should live, no DELETE accepted twice beyond an unknown outcome.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { killAndRestartEtcd } from '../testbed/etcd.ts';
import { createJob, jobExists } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { type Clients, clientsFor, jobManifest, newNamespace, useTestbed, waitFor } from '../testbed/use.ts';

const DOWN_MS = 8000;

describe('etcd restart', () => {
  let tb: Testbed;
  let c: Clients;
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
  });
  after(async () => {
    // Let kube-controller-manager's informers come back before the next file needs them.
    const t0 = Date.now();
    await newNamespace(clientsFor(await useTestbed()), 'settle', 120_000);
    console.log(`# control plane settled ${((Date.now() - t0) / 1000).toFixed(1)} s after the last test`);
  });

  test(`etcd killed mid-drain, down ${DOWN_MS / 1000} s: every due Job deleted after, none that should live`, async () => {
    const ns = await newNamespace(c, 'etcd');
    const kttl = await startInProcess(tb, runOptions([ns], { kubeApiQps: 5, kubeApiBurst: 1 }));
    try {
      const due = Array.from({ length: 20 }, (_, i) => `due-${i}`);
      for (const name of due)
        await createJob(c, { name, namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } });
      await createJob(c, { name: 'live', namespace: ns, annotations: { 'kttl.dev/ttl': '1h' } });
      await createJob(c, {
        name: 'running',
        namespace: ns,
        suspend: true,
        annotations: { 'kttl.dev/ttl': '0s' },
      });
      await waitFor(
        'some deleted',
        async () => (await metricValue(kttl.registry, 'kttl_deletions_total')) >= 2,
        60_000,
      );
      const atKill = await metricValue(kttl.registry, 'kttl_deletions_total');
      await killAndRestartEtcd(tb, DOWN_MS);
      const t0 = Date.now();
      await waitFor(
        'all due deleted',
        async () => {
          const s = await Promise.all(due.map((n) => jobExists(c, ns, n)));
          return s.every((x) => !x.exists || x.deleting);
        },
        120_000,
        200,
      );
      const took = (Date.now() - t0) / 1000;
      const deletes = async (code: string) =>
        metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'delete', code });
      const codes = ['200', '202', '404', '409', '0', '500', '503', '504', '429'];
      const byCode = Object.fromEntries(
        await Promise.all(codes.map(async (k) => [k, await deletes(k)])),
      ) as Record<string, number>;
      console.log(
        `# etcd down ${DOWN_MS / 1000} s with ${atKill}/20 deleted: the rest deleted ${took.toFixed(1)} s after etcd was back; DELETEs by answer ${JSON.stringify(byCode)}; stats ${JSON.stringify(kttl.app.controller.reflectorStats())}`,
      );
      assert.ok((await jobExists(c, ns, 'live')).exists, 'the live Job is kept');
      assert.ok((await jobExists(c, ns, 'running')).exists, 'the unfinished Job is kept');
      // An answer lost (0) or failed (5xx) may still have been carried out: at most one more
      // accepted DELETE each; every other repeat was refused by a precondition (409) or found gone.
      const accepted = byCode['200']! + byCode['202']!;
      const unknown = byCode['0']! + byCode['500']! + byCode['503']! + byCode['504']!;
      assert.ok(accepted >= due.length - unknown, `${accepted} accepted DELETEs for ${due.length} Jobs`);
      assert.ok(accepted <= due.length + unknown, `${accepted} accepted DELETEs for ${due.length} Jobs`);
      assert.ok(took <= 30, `the rest deleted ${took} s after etcd was back`);
    } finally {
      await kttl.stop({ forbiddenExpected: true });
    }
  });
});
