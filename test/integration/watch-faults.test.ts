// Faults between kttl and the API server, injected by the testbed's TLS proxy
// (test/testbed/fault-proxy.ts): watches that end at once, watches answered 410, a continue token
// that expires between two pages of a list. The API server behind the proxy is real, and so is
// the expired token (etcd compacted between the pages).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Agent, fetch } from 'undici';
import { systemClock } from '../../src/clock.ts';
import { startApp } from '../../src/controller/app.ts';
import { KubeHttp } from '../../src/kube/http.ts';
import { Reflector } from '../../src/kube/reflector.ts';
import { JOBS } from '../../src/kube/resources.ts';
import { controllerKubeConfig, metricValue, runOptions } from '../testbed/controller.ts';
import { compactEtcd } from '../testbed/etcd.ts';
import { dateShift, type FaultProxy, type FaultRequest, startFaultProxy } from '../testbed/fault-proxy.ts';
import { controllerKubeconfigPath } from '../testbed/identities.ts';
import { waitForJobDeletion } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  installPolicyCrds,
  jobManifest,
  kubeConfigFromFile,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const silent = pino({ level: 'silent' });

/** After an API server restart its authorizer refuses everyone until its caches fill. */
async function untilAuthorized(ns: string): Promise<void> {
  const direct = new KubeHttp({ kubeConfig: controllerKubeConfig(await useTestbed()), clock: systemClock });
  try {
    await waitFor(
      'the controller identity authorized again',
      async () => {
        await direct.request('list', 'GET', `/apis/batch/v1/namespaces/${ns}/jobs`, { query: { limit: 1 } });
        return true;
      },
      60_000,
      200,
    );
  } finally {
    await direct.close();
  }
}

/** The Status an API server sends for a resourceVersion etcd has compacted. */
const GONE_EVENT = `${JSON.stringify({
  type: 'ERROR',
  object: {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'too old resource version: 1 (2)',
    reason: 'Expired',
    code: 410,
  },
})}\n`;

/** A watch's identity: its path and selectors (several reflectors may watch one path). */
function watchKey(req: FaultRequest): string {
  return `${req.path}?${req.query.get('labelSelector') ?? ''}&${req.query.get('fieldSelector') ?? ''}`;
}

describe('watch faults behind the fault proxy', () => {
  let tb: Testbed;
  let c: Clients;
  let proxy: FaultProxy;
  let kubeconfig: string;
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    proxy = await startFaultProxy(tb);
    kubeconfig = proxy.kubeconfig(controllerKubeconfigPath(tb));
  });
  after(async () => {
    await proxy?.stop();
    // A test here restarts the API server: let kube-controller-manager's informers come back (a new
    // namespace gets its default ServiceAccount again) before the next file needs them.
    const t0 = Date.now();
    await newNamespace(clientsFor(await useTestbed()), 'settle', 120_000);
    console.log(`# control plane settled ${((Date.now() - t0) / 1000).toFixed(1)} s after the last test`);
  });

  test('the proxy forwards requests with their token to the API server; a shifted Date header arrives shifted', async () => {
    const token = /token: ([^}\s]+)/.exec(readFileSync(kubeconfig, 'utf8'))?.[1];
    assert.ok(token);
    const dispatcher = new Agent({ connect: { ca: readFileSync(tb.state.pki.caCert) } });
    const get = async (path: string) => {
      const res = await fetch(`${proxy.url}${path}`, {
        headers: { authorization: `Bearer ${token}` },
        dispatcher,
      });
      return { res, body: (await res.json()) as { kind?: string } };
    };
    proxy.resetStats();
    // The controller's role may list Jobs: the API server's answer, not the proxy's.
    const first = await get('/apis/batch/v1/namespaces/kttl/jobs?limit=1');
    assert.equal(first.res.status, 200);
    assert.equal(first.body.kind, 'JobList');
    const shift = dateShift({ byMs: 3_600_000, count: 1 });
    proxy.setFault(shift);
    const shifted = await get('/apis/batch/v1/namespaces/kttl/jobs?limit=1');
    const skew = Date.parse(shifted.res.headers.get('date') ?? '') - Date.now();
    assert.ok(Math.abs(skew - 3_600_000) < 5_000, `Date shifted by +1 h (${skew} ms)`);
    const next = await get('/apis/batch/v1/namespaces/kttl/jobs?limit=1');
    const after = Date.parse(next.res.headers.get('date') ?? '') - Date.now();
    assert.ok(Math.abs(after) < 5_000, `only one answer shifted (next one ${after} ms)`);
    assert.equal(shift.shifted, 1);
    proxy.setFault(null);
    assert.deepEqual(proxy.stats(), { requests: 3, byVerb: { list: 3 }, watches: 0, lists: 3 });
    await dispatcher.close();
  });

  test('a proxy that ends every watch at once: at most 6 watch requests per watch in 10 s, and deletions resume once it stops', async () => {
    await installPolicyCrds(tb);
    const ns = await newNamespace(c, 'wf');
    const registry = new Registry();
    const app = await startApp(runOptions([ns]), {
      kubeConfig: kubeConfigFromFile(kubeconfig),
      clock: systemClock,
      logger: silent,
      registry,
    });
    try {
      await app.controller.waitForSync();
      const perWatch = new Map<string, number>();
      proxy.resetStats();
      proxy.setFault({
        endWatchesAtOnce: true,
        rewriteHeaders(req) {
          if (req.verb === 'watch') perWatch.set(watchKey(req), (perWatch.get(watchKey(req)) ?? 0) + 1);
        },
      });
      const t0 = Date.now();
      // Finishes while kttl cannot watch: seen, and deleted, only after the fault is gone.
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'due', namespace: ns, annotations: { 'kttl.dev/ttl': '0s' } }),
      });
      await sleep(10_000 - (Date.now() - t0));
      const stats = proxy.stats();
      const counts = [...perWatch.values()];
      proxy.setFault(null);
      const cleared = Date.now();
      await waitForJobDeletion(c, ns, 'due', 40_000);
      const recoveredMs = Date.now() - cleared;
      console.log(
        `# ${perWatch.size} watches ended at once for 10 s: ${stats.watches} watch requests (max ${Math.max(...counts)} per watch), ${stats.requests} requests in all; due Job deleted ${recoveredMs} ms after the fault cleared`,
      );
      assert.ok(perWatch.size >= 3, `the fault hit kttl's watches (${perWatch.size})`);
      for (const [key, n] of perWatch) assert.ok(n <= 6, `${key}: ${n} watch requests in 10 s`);
      assert.equal(await metricValue(registry, 'kttl_api_requests_total', { code: '403' }), 0);
    } finally {
      await app.stop();
    }
  });

  test('every watch answered 410: the relists back off (at most 6 lists in 6 s), and watching resumes once it stops', async () => {
    const ns = await newNamespace(c, 'wf');
    const http = new KubeHttp({ kubeConfig: kubeConfigFromFile(kubeconfig), clock: systemClock });
    const r = new Reflector({
      http,
      resource: JOBS,
      namespace: ns,
      clock: systemClock,
      logger: silent,
      watchList: false,
      transform: (raw) => raw.metadata?.name ?? null,
      handler: { upsert: () => undefined, remove: () => undefined },
    });
    let lists = 0;
    proxy.setFault({
      respond: (req) =>
        req.verb === 'watch' && req.path.includes(`/namespaces/${ns}/`)
          ? { status: 200, body: GONE_EVENT }
          : undefined,
      rewriteHeaders(req) {
        if (req.verb === 'list' && req.path.includes(`/namespaces/${ns}/`)) lists++;
      },
    });
    try {
      const t0 = Date.now();
      r.start();
      await sleep(6000 - (Date.now() - t0));
      const listsIn6s = lists;
      const relists = r.stats.relistsAfterGone;
      proxy.setFault(null);
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'after', namespace: ns, suspend: true }),
      });
      await waitFor('Job seen once watches work again', async () => r.store.has(`${ns}/after`), 30_000);
      console.log(
        `# every watch 410 for 6 s: ${listsIn6s} lists, ${relists} relists; stats ${JSON.stringify(r.stats)}`,
      );
      assert.ok(listsIn6s >= 3, `relisted after the 410s (${listsIn6s} lists)`);
      assert.ok(listsIn6s <= 6, `${listsIn6s} lists in 6 s`);
    } finally {
      proxy.setFault(null);
      await r.stop();
      await http.close();
    }
  });

  test('a continue token that expires between two pages (etcd compacted, API server restarted): ONE unpaginated list follows, the cache is complete', async () => {
    const ns = await newNamespace(c, 'wf');
    for (let i = 0; i < 6; i++)
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: `pre${i}`, namespace: ns, suspend: true }),
      });
    const http = new KubeHttp({ kubeConfig: kubeConfigFromFile(kubeconfig), clock: systemClock });
    const r = new Reflector({
      http,
      resource: JOBS,
      namespace: ns,
      clock: systemClock,
      logger: silent,
      watchList: false,
      pageSize: 2,
      transform: (raw) => raw.metadata?.name ?? null,
      handler: { upsert: () => undefined, remove: () => undefined },
    });
    const lists: Array<{ limit: string | null; continued: boolean; status: number }> = [];
    let compactedAt = '';
    proxy.setFault({
      async hold(req) {
        if (
          req.verb !== 'list' ||
          !req.path.includes(`/namespaces/${ns}/`) ||
          !req.query.get('continue') ||
          compactedAt
        )
          return;
        // Between page 1 and page 2: one object gone from page 1, one new, then etcd forgets the
        // revision the continue token holds.
        await c.batch.deleteNamespacedJob({ name: 'pre0', namespace: ns });
        await c.batch.createNamespacedJob({
          namespace: ns,
          body: jobManifest({ name: 'late', namespace: ns, suspend: true }),
        });
        compactedAt = await compactEtcd(tb);
        // kube-apiserver serves continue pages from its watch cache's snapshot, which outlives an
        // etcd compaction made behind its back; restarted, it has no snapshot and asks etcd.
        await tb.stopApiserver();
        await tb.startApiserver();
        await untilAuthorized(ns);
      },
      rewriteHeaders(req, status) {
        if (req.verb === 'list' && req.path.includes(`/namespaces/${ns}/`))
          lists.push({ limit: req.query.get('limit'), continued: !!req.query.get('continue'), status });
      },
    });
    try {
      r.start();
      await r.synced;
      console.log(
        `# etcd compacted at ${compactedAt}; lists ${JSON.stringify(lists)}; stats ${JSON.stringify(r.stats)}`,
      );
      assert.ok(compactedAt, 'etcd was compacted between two pages');
      const expired = lists.findIndex((l) => l.continued && l.status === 410);
      assert.ok(expired > 0, 'the API server answered the continue request 410');
      assert.deepEqual(
        lists.slice(expired + 1),
        [{ limit: null, continued: false, status: 200 }],
        'ONE unpaginated list after it',
      );
      assert.equal(r.stats.fullListFallbacks, 1);
      assert.deepEqual(
        [...r.store.keys()].sort(),
        ['late', 'pre1', 'pre2', 'pre3', 'pre4', 'pre5'].map((n) => `${ns}/${n}`),
      );
    } finally {
      proxy.setFault(null);
      await r.stop();
      await http.close();
    }
  });
});
