// Throttling and failing answers between kttl and a real API server: a storm of 429s with
// Retry-After (injected by test/testbed/fault-proxy.ts), then 50 % 500s; and the API server's own
// API Priority and Fairness squeezing kttl's ServiceAccount. kttl must honour Retry-After, back off
// per object, stay within its QPS budget, delete everything due soon after, and touch nothing else.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { applyObjects } from '../testbed/clients.ts';
import { metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { answerShare, type FaultLogEntry, type FaultProxy, startFaultProxy } from '../testbed/fault-proxy.ts';
import { CONTROLLER_SA, controllerKubeconfigPath, KTTL_NAMESPACE } from '../testbed/identities.ts';
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

const QPS = 20;
const BURST = 30;

/** The busiest window of `windowMs` of kttl's budgeted requests (Events have their own budget): how many, and of which verbs. */
function maxInWindow(log: FaultLogEntry[], windowMs: number): { n: number; verbs: Record<string, number> } {
  const es = log.filter((e) => !e.path.includes('/events')).sort((a, b) => a.at - b.at);
  let best = 0;
  let bestLo = 0;
  let lo = 0;
  for (let hi = 0; hi < es.length; hi++) {
    while (es[hi]!.at - es[lo]!.at >= windowMs) lo++;
    if (hi - lo + 1 > best) {
      best = hi - lo + 1;
      bestLo = lo;
    }
  }
  const verbs: Record<string, number> = {};
  for (const e of es.slice(bestLo, bestLo + best)) verbs[e.verb] = (verbs[e.verb] ?? 0) + 1;
  return { n: best, verbs };
}

function log429(log: FaultLogEntry[]): FaultLogEntry[] {
  return log.filter((e) => e.status === 429);
}

/** DELETE times per object path, in order. */
function deletesByPath(log: FaultLogEntry[]): Map<string, FaultLogEntry[]> {
  const m = new Map<string, FaultLogEntry[]>();
  for (const e of log) if (e.verb === 'delete') m.set(e.path, [...(m.get(e.path) ?? []), e]);
  return m;
}

async function createDueAndLive(
  c: Clients,
  ns: string,
  due: number,
): Promise<{ due: string[]; live: string[] }> {
  const names = Array.from({ length: due }, (_, i) => `due-${i}`);
  for (const name of names)
    await createJob(c, { name, namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } });
  // Kept: a TTL far away, and an unfinished Job with TTL 0.
  await createJob(c, { name: 'live-ttl', namespace: ns, annotations: { 'kttl.dev/ttl': '1h' } });
  await createJob(c, {
    name: 'live-running',
    namespace: ns,
    suspend: true,
    annotations: { 'kttl.dev/ttl': '0s' },
  });
  return { due: names, live: ['live-ttl', 'live-running'] };
}

describe('throttling and failing answers', () => {
  let tb: Testbed;
  let c: Clients;
  let proxy: FaultProxy;
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    proxy = await startFaultProxy(tb);
  });
  after(async () => {
    await proxy?.stop();
  });

  test('100 % of DELETEs 429 (Retry-After: 2) for 30 s, then 50 % 500s for 20 s: Retry-After honoured, per-object back-off, within budget, all due deleted within 30 s after, nothing else', async () => {
    const ns = await newNamespace(c, 'thr');
    const observer = await JobObserver.start(tb, ns);
    const kttl = await startInProcess(
      tb,
      runOptions([ns], { kubeApiQps: QPS, kubeApiBurst: BURST }),
      undefined,
      undefined,
      proxy.kubeconfig(controllerKubeconfigPath(tb)),
    );
    try {
      proxy.resetStats();
      const storm = answerShare({
        share: 1,
        status: 429,
        retryAfterSeconds: 2,
        when: (r) => r.verb === 'delete',
      });
      proxy.setFault(storm);
      const t0 = Date.now();
      const jobs = await createDueAndLive(c, ns, 20);
      for (const name of jobs.due) await observer.waitFor(name, 'finished', 60_000);
      await sleep(Math.max(0, t0 + 30_000 - Date.now()));
      const t429 = Date.now();
      const errors = answerShare({ share: 0.5, status: 500, when: (r) => r.verb === 'delete' });
      proxy.setFault(errors);
      await sleep(20_000);
      proxy.setFault(null);
      const tEnd = Date.now();
      await waitFor(
        'every due Job deleted',
        async () => jobs.due.every((n) => observer.jobs.get(n)?.deletionSeenMs !== undefined),
        60_000,
        100,
      );
      const lastDeletion = Math.max(...jobs.due.map((n) => observer.jobs.get(n)!.deletionSeenMs!));
      const afterStorm = Math.max(0, lastDeletion - tEnd) / 1000;
      const log = proxy.log();
      const byPath = deletesByPath(log);
      // Retry-After: no DELETE of one object sooner than 2 s after its previous 429.
      let minGap429 = Number.POSITIVE_INFINITY;
      let max500Phase = 0;
      for (const entries of byPath.values()) {
        for (let i = 1; i < entries.length; i++)
          if (entries[i - 1]!.status === 429)
            minGap429 = Math.min(minGap429, entries[i]!.at - entries[i - 1]!.at);
        max500Phase = Math.max(max500Phase, entries.filter((e) => e.at >= t429 && e.at < tEnd).length);
      }
      const w1 = maxInWindow(log, 1000);
      const w10 = maxInWindow(log, 10_000);
      const deletesIn429 = log.filter((e) => e.verb === 'delete' && e.at < t429).length;
      console.log(
        `# 429 phase: ${storm.answered} DELETEs answered 429 (${deletesIn429} sent in 30 s for ${jobs.due.length} Jobs), min gap after a 429 ${minGap429} ms; 500 phase: ${errors.answered}/${errors.chosen} answered 500, at most ${max500Phase} DELETEs of one object; busiest 1 s: ${w1.n} requests ${JSON.stringify(w1.verbs)}, 10 s: ${w10.n} (budget ${QPS}/s, burst ${BURST}); last due Job deleted ${afterStorm.toFixed(1)} s after the storm`,
      );
      assert.ok(storm.answered >= jobs.due.length, `every due Job met the storm (${storm.answered} 429s)`);
      assert.ok(minGap429 >= 1900, `a DELETE retried ${minGap429} ms after a 429 with Retry-After: 2`);
      // Honouring Retry-After bounds the 429 phase's DELETEs: ≤ 16 per object in 30 s.
      assert.ok(deletesIn429 <= jobs.due.length * 16, `${deletesIn429} DELETEs in the 429 phase`);
      assert.ok(w1.n <= BURST + QPS, `${w1.n} requests in 1 s`);
      assert.ok(w10.n <= BURST + QPS * 10, `${w10.n} requests in 10 s`);
      assert.ok(afterStorm <= 30, `deleted ${afterStorm} s after the storm`);
      for (const name of jobs.live) {
        assert.ok(!byPath.has(`/apis/batch/v1/namespaces/${ns}/jobs/${name}`), `${name} never sent a DELETE`);
        assert.equal(observer.jobs.get(name)?.deletionSeenMs, undefined, `${name} kept`);
      }
      assert.equal(await metricValue(kttl.registry, 'kttl_deletions_total'), jobs.due.length);
    } finally {
      proxy.setFault(null);
      observer.stop();
      await kttl.stop();
    }
  });

  test("API Priority and Fairness squeezing kttl's ServiceAccount (3 seats, no borrowing, Reject): 429s from the real server, all due deleted, nothing else", async () => {
    const ns = await newNamespace(c, 'apf');
    const name = `kttl-squeeze-${process.pid}`;
    await applyObjects(tb, [
      {
        apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
        kind: 'PriorityLevelConfiguration',
        metadata: { name },
        spec: {
          type: 'Limited',
          // 1 share of ~600 seats: 3 seats, none lent, none borrowed (borrowing is unlimited by default).
          limited: {
            nominalConcurrencyShares: 1,
            lendablePercent: 0,
            borrowingLimitPercent: 0,
            limitResponse: { type: 'Reject' },
          },
        },
      },
      {
        apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
        kind: 'FlowSchema',
        metadata: { name },
        spec: {
          priorityLevelConfiguration: { name },
          matchingPrecedence: 100,
          distinguisherMethod: { type: 'ByUser' },
          rules: [
            {
              subjects: [
                {
                  kind: 'ServiceAccount',
                  serviceAccount: { name: CONTROLLER_SA, namespace: KTTL_NAMESPACE },
                },
              ],
              resourceRules: [
                { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true },
              ],
            },
          ],
        },
      },
    ]);
    const observer = await JobObserver.start(tb, ns);
    // Every due Job finished before kttl starts: all 40 come due at once, 20 workers at a time.
    const jobs = await createDueAndLive(c, ns, 40);
    for (const n of jobs.due) await observer.waitFor(n, 'finished', 60_000);
    await sleep(1000);
    proxy.resetStats();
    const t0 = Date.now();
    const kttl = await startInProcess(
      tb,
      // More workers than the level's seats, and a budget well above what it admits.
      runOptions([ns], { kubeApiQps: 100, kubeApiBurst: 100, workers: 20 }),
      undefined,
      undefined,
      proxy.kubeconfig(controllerKubeconfigPath(tb)),
    );
    try {
      await waitFor(
        'every due Job deleted',
        async () => jobs.due.every((n) => observer.jobs.get(n)?.deletionSeenMs !== undefined),
        120_000,
        100,
      );
      const took = (Date.now() - t0) / 1000;
      const retryAfters = [...new Set(log429(proxy.log()).map((e) => e.retryAfter))];
      const log = proxy.log();
      const throttled = log429(log);
      const byPath = deletesByPath(log);
      let minGap429 = Number.POSITIVE_INFINITY;
      for (const entries of byPath.values())
        for (let i = 1; i < entries.length; i++)
          if (entries[i - 1]!.status === 429)
            minGap429 = Math.min(minGap429, entries[i]!.at - entries[i - 1]!.at);
      console.log(
        `# APF: ${throttled.length} requests answered 429 by the API server (${throttled.filter((e) => e.verb === 'delete').length} DELETEs), Retry-After ${JSON.stringify(retryAfters)}, min gap after a 429 ${Number.isFinite(minGap429) ? `${minGap429} ms` : 'n/a'}; 40 due Jobs deleted ${took.toFixed(1)} s after kttl started`,
      );
      assert.ok(throttled.length >= 1, 'the squeeze answered 429 at least once');
      if (Number.isFinite(minGap429))
        assert.ok(minGap429 >= 900, `retried ${minGap429} ms after the server's 429`);
      for (const n of jobs.live) {
        assert.ok(!byPath.has(`/apis/batch/v1/namespaces/${ns}/jobs/${n}`), `${n} never sent a DELETE`);
        assert.equal(observer.jobs.get(n)?.deletionSeenMs, undefined, `${n} kept`);
      }
      assert.equal(await metricValue(kttl.registry, 'kttl_deletions_total'), jobs.due.length);
    } finally {
      observer.stop();
      await kttl.stop();
      await tb.kubectl([
        'delete',
        '--ignore-not-found',
        `flowschema/${name}`,
        `prioritylevelconfiguration/${name}`,
      ]);
    }
  });
});
