// A slow API server: test/testbed/fault-proxy.ts adds 2 s to every request of kttl's (the built
// binary) for 60 s while finished Jobs keep coming due. No timeout may cascade into relists, the
// lateness may grow by at most the added latency, and memory stays flat.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ChildController, scrape, spawnController } from '../testbed/controller.ts';
import { type FaultProxy, startFaultProxy } from '../testbed/fault-proxy.ts';
import { controllerKubeconfigPath } from '../testbed/identities.ts';
import { JobObserver } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  createJob,
  jobManifest,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const LATENCY_MS = 2000;
/** The issue asks for 2 minutes; 60 s keeps CI time down and is 30× the latency. */
const SLOW_MS = 60_000;
const TTL_S = 2;

describe('slow API server', () => {
  let tb: Testbed;
  let c: Clients;
  let proxy: FaultProxy;
  let kttl: ChildController | undefined;
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    proxy = await startFaultProxy(tb);
  });
  after(async () => {
    await kttl?.stop('SIGKILL');
    await proxy?.stop();
  });

  test(`${LATENCY_MS / 1000} s added to every request for ${SLOW_MS / 1000} s: no relist storm, lateness grows by at most the latency, memory flat`, async () => {
    const ns = await newNamespace(c, 'slow');
    const observer = await JobObserver.start(tb, ns);
    kttl = await spawnController(tb, [`--namespaces=${ns}`, '--leader-elect=false'], 'slow', {
      kubeconfig: proxy.kubeconfig(controllerKubeconfigPath(tb)),
    });
    let n = 0;
    const create = async (phase: string) => {
      const name = `${phase}-${n++}`;
      await createJob(c, { name, namespace: ns, annotations: { 'kttl.dev/ttl': `${TTL_S}s` } });
      return name;
    };
    const lateness = async (names: string[]) => {
      const out: number[] = [];
      for (const name of names) {
        const j = await observer.waitFor(name, 'deleted', 90_000);
        out.push((j.deletionSeenMs! - (j.finishMs! + TTL_S * 1000)) / 1000);
      }
      return out;
    };
    const rssMb = async () => scrape(await kttl!.metrics(), 'process_resident_memory_bytes') / 2 ** 20;
    try {
      await create('live-ttl').then((name) =>
        c.batch.patchNamespacedJob({
          name,
          namespace: ns,
          body: [{ op: 'replace', path: '/metadata/annotations/kttl.dev~1ttl', value: '1h' }],
        }),
      );
      const baseline: string[] = [];
      for (let i = 0; i < 5; i++) {
        baseline.push(await create('base'));
        await sleep(1000);
      }
      const baseLate = await lateness(baseline);
      const rssBefore = await rssMb();

      proxy.resetStats();
      proxy.setFault({ delayMs: LATENCY_MS });
      const t0 = Date.now();
      const slow: string[] = [];
      const rss: number[] = [];
      while (Date.now() - t0 < SLOW_MS - 10_000) {
        slow.push(await create('slow'));
        await sleep(2500);
        if (slow.length % 4 === 0) rss.push(await rssMb());
      }
      const slowLate = await lateness(slow);
      await sleep(Math.max(0, t0 + SLOW_MS - Date.now()));
      const stats = proxy.stats();
      const lists = proxy.log().filter((e) => e.verb === 'list');
      const listPaths = [...new Set(lists.map((e) => e.path))];
      const relists = lists.filter((e) => /\/(jobs|pods)$/.test(e.path)).length;
      proxy.setFault(null);
      const rssAfter = await rssMb();
      const afterJobs = [await create('after'), await create('after')];
      const afterLate = await lateness(afterJobs);
      const errors = scrape(await kttl.metrics(), 'kttl_api_requests_total', { code: '0' });
      const max = (xs: number[]) => Math.max(...xs);
      console.log(
        `# slow API (+${LATENCY_MS} ms, ${SLOW_MS / 1000} s): ${stats.requests} requests (${stats.lists} lists: ${relists} of Jobs or Pods, the others ${JSON.stringify(listPaths)}; ${stats.watches} watches, ${stats.byVerb.delete ?? 0} DELETEs for ${slow.length} Jobs), ${errors} unanswered; lateness max ${max(baseLate).toFixed(2)} s before, ${max(slowLate).toFixed(2)} s during (mean ${(slowLate.reduce((a, b) => a + b, 0) / slowLate.length).toFixed(2)}), ${max(afterLate).toFixed(2)} s after; RSS ${rssBefore.toFixed(1)} → ${rss.map((x) => x.toFixed(1)).join(', ')} → ${rssAfter.toFixed(1)} MB`,
      );
      // Nothing timed out, so nothing was relisted: at most a re-watch whose server timeout came.
      assert.equal(relists, 0, 'no relist of Jobs or Pods during the slow minute');
      // The periodic reads (discovery of optional kinds) stay periodic.
      assert.ok(stats.lists <= 10, `${stats.lists} lists in the slow minute`);
      assert.equal(errors, 0, 'no request timed out');
      assert.ok(stats.watches <= 6, `${stats.watches} watch requests`);
      // Lateness grows by at most the latency (+1 s: the finish time has 1 s resolution, and the
      // machine is shared).
      assert.ok(max(slowLate) <= max(baseLate) + LATENCY_MS / 1000 + 1, `lateness ${max(slowLate)} s`);
      assert.ok(
        slowLate.every((x) => x >= -0.05),
        'never early',
      );
      assert.ok(max(afterLate) <= max(baseLate) + 1, `lateness after ${max(afterLate)} s`);
      assert.ok(rssAfter - rssBefore < 40, `RSS grew ${rssAfter - rssBefore} MB`);
      assert.equal(observer.jobs.get('live-ttl-0')?.deletionSeenMs, undefined, 'the live Job kept');
    } finally {
      proxy.setFault(null);
      observer.stop();
      await kttl.stop();
      kttl = undefined;
    }
  });
});
