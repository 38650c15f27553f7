// Clock-skew holes (docs/reliability.md, "Clock skew"), on the real control plane through the
// fault proxy (test/testbed/fault-proxy.ts): one answer whose Date is an hour ahead must not make
// kttl delete Jobs 10 minutes from expiry; every answer shifted for a while is followed, but only
// once several answers agree.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { type InProcess, metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { dateShift, startFaultProxy } from '../testbed/fault-proxy.ts';
import { controllerKubeconfigPath } from '../testbed/identities.ts';
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
  waitForJob,
} from '../testbed/use.ts';

const HOUR = 3_600_000;

describe('clock skew', () => {
  let tb: Testbed;
  let c: Clients;
  let proxy: Awaited<ReturnType<typeof startFaultProxy>>;
  const running: InProcess[] = [];
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    proxy = await startFaultProxy(tb);
  });
  afterEach(async () => {
    proxy.setFault(null);
    for (const k of running.splice(0)) await k.stop();
  });
  after(async () => {
    await proxy.stop();
  });

  /** 30 finished Jobs with 10 minutes of TTL left, and one with 2 h left. */
  async function jobs(ns: string): Promise<string[]> {
    const names = Array.from({ length: 30 }, (_, i) => `ten-${i}`);
    await Promise.all(
      names.map((name) =>
        c.batch.createNamespacedJob({
          namespace: ns,
          body: jobManifest({ name, namespace: ns, annotations: { 'kttl.dev/ttl': '10m' } }),
        }),
      ),
    );
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'two-hours', namespace: ns, annotations: { 'kttl.dev/ttl': '2h' } }),
    });
    await Promise.all([...names, 'two-hours'].map((n) => waitForJob(c, ns, n, 'Complete')));
    return names;
  }
  const alive = async (ns: string, names: string[]) =>
    (await Promise.all(names.map((n) => jobExists(c, ns, n)))).filter((j) => j.exists && !j.deleting).length;
  async function kttl(ns: string): Promise<InProcess> {
    const k = await startInProcess(
      tb,
      runOptions([ns]),
      undefined,
      undefined,
      proxy.kubeconfig(controllerKubeconfigPath(tb)),
    );
    running.push(k);
    // The start-up probes agree on the true offset first.
    await waitFor(
      'skew estimated',
      async () => (await metricValue(k.registry, 'kttl_clock_skew_seconds')) !== 0 || true,
      5000,
    );
    await sleep(3000);
    return k;
  }

  test('the Date of one answer an hour ahead: no Job 10 minutes from expiry is deleted', async () => {
    const ns = await newNamespace(c, 'skew-one');
    const names = await jobs(ns);
    const k = await kttl(ns);
    assert.equal(await alive(ns, names), 30);
    // One 2xx answer (the next probe or lease renewal) says the server is an hour ahead.
    const shift = dateShift({ byMs: HOUR, count: 1, when: (_req, status) => status >= 200 && status < 300 });
    proxy.setFault({ rewriteHeaders: shift.rewriteHeaders });
    await waitFor('one answer shifted', async () => shift.shifted === 1, 30_000, 100);
    await sleep(5000); // answers keep coming (probes, lease renewals): time enough to act on it
    const rejected = await metricValue(k.registry, 'kttl_clock_skew_rejected_total');
    const skew = await metricValue(k.registry, 'kttl_clock_skew_seconds');
    const left = await alive(ns, names);
    console.log(
      `# one answer +1 h: ${30 - left}/30 Jobs deleted, rejected ${rejected}, estimate ${skew.toFixed(3)} s`,
    );
    assert.equal(left, 30, `${30 - left} Jobs with 10 min of TTL left were deleted`);
    assert.ok(Math.abs(skew) < 2, `estimate ${skew} s`);
    assert.equal(rejected, 1);
  });

  test('every answer an hour ahead for a while: followed only after several answers agree', async () => {
    const ns = await newNamespace(c, 'skew-all');
    const names = await jobs(ns);
    const k = await kttl(ns);
    let shiftedWhenFollowed = -1;
    const shift = dateShift({ byMs: HOUR, forMs: 90_000 });
    proxy.setFault({ rewriteHeaders: shift.rewriteHeaders });
    const t0 = Date.now();
    await waitFor(
      'estimate follows',
      async () => {
        const skew = await metricValue(k.registry, 'kttl_clock_skew_seconds');
        if (skew > 3000 && shiftedWhenFollowed < 0) shiftedWhenFollowed = shift.shifted;
        return shiftedWhenFollowed >= 0;
      },
      90_000,
      20,
    );
    const followedMs = Date.now() - t0;
    await waitFor('the 10-minute Jobs deleted', async () => (await alive(ns, names)) === 0, 30_000);
    const rejected = await metricValue(k.registry, 'kttl_clock_skew_rejected_total');
    console.log(
      `# all answers +1 h: followed after ${followedMs} ms and ~${shiftedWhenFollowed} shifted answers (${rejected} held first)`,
    );
    // Agreement: the first answers were held (counted), the estimate moved only after several.
    assert.ok(rejected >= 2, `${rejected} answers held before following`);
    assert.ok(shiftedWhenFollowed >= 3, `followed after ${shiftedWhenFollowed} shifted answers`);
    assert.equal(await alive(ns, ['two-hours']), 1, 'the Job with 2 h left is kept');
  });
});
