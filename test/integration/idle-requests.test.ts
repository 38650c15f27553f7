// An idle controller makes no request beyond its watches and its Lease (issue "Performance, second
// round", item 4): kinds it waits for are learnt from the metadata-only CRD/APIService watch
// (src/kube/api-changes.ts), not by polling discovery every 30 s, and the clock-skew probe keeps
// quiet while the Lease renewals give it samples (src/kube/clock-skew-probe.ts). Every request goes
// through the fault proxy (test/testbed/fault-proxy.ts), which records them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { systemClock } from '../../src/clock.ts';
import { metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { type FaultProxy, type FaultRequest, startFaultProxy } from '../testbed/fault-proxy.ts';
import { controllerKubeconfigPath, KTTL_NAMESPACE } from '../testbed/identities.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  clientsFor,
  installCrd,
  installPolicyCrds,
  newNamespace,
  sleep,
  ttlPolicy,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const IDLE_MS = 36_000; // longer than the 30 s discovery interval and two 17.3 s skew-probe periods

describe('an idle controller', () => {
  let tb: Testbed;
  let proxy: FaultProxy;
  before(async () => {
    tb = await useTestbed();
    await installPolicyCrds(tb);
    proxy = await startFaultProxy(tb);
  });
  after(async () => {
    await proxy?.stop();
  });

  test('sends nothing but watches and Lease renewals, and still finds a kind installed later within seconds', async () => {
    const ns = await newNamespace(clientsFor(tb), 'idle');
    // A kind no other test installs: a policy names it, so the controller waits for it.
    const group = `idle${randomBytes(3).toString('hex')}.example.com`;
    await tb.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify(
        ttlPolicy(ns, 'widgets', {
          resources: [
            {
              apiVersion: `${group}/v1`,
              kind: 'Widget',
              finished: { succeeded: { field: '.status.phase', values: ['Done'] } },
            },
          ],
          ttl: '1h',
        }),
      ),
    );
    const seen: FaultRequest[] = [];
    proxy.setFault({ hold: (req) => void seen.push(req) });
    const k = await startInProcess(
      tb,
      // The chart's Lease (its Role allows only that one): renewals every 2 s are answers with a
      // Date header. It must lead (a lease left by an earlier test's kill -9 expires within 15 s),
      // so the leader's policy status pass runs in the idle window too: it must find nothing to write.
      runOptions([ns], { leaderElect: true, leaderElectNamespace: KTTL_NAMESPACE, leaderElectName: 'kttl' }),
      undefined,
      systemClock,
      proxy.kubeconfig(controllerKubeconfigPath(tb)),
    );
    try {
      await waitFor(
        'policy kind wanted',
        async () => k.app.policyStore?.policies().some((p) => p.namespace === ns) === true,
        20_000,
        100,
      );
      await waitFor(
        'it leads',
        async () => (await metricValue(k.registry, 'kttl_leader')) === 1,
        30_000,
        200,
      );
      // Start-up: lists, the first discovery pass and the skew probe's quick bisection (its first 30 s).
      await sleep(31_000);
      const versionProbes = seen.filter((r) => r.path === '/version').length;
      console.log(`# start-up: ${seen.length} requests, ${versionProbes} clock-skew probes (GET /version)`);
      seen.length = 0;
      await sleep(IDLE_MS);
      const idle = [...seen];
      const lease = idle.filter((r) => r.path.startsWith('/apis/coordination.k8s.io/'));
      const watches = idle.filter((r) => r.verb === 'watch');
      const other = idle.filter((r) => !lease.includes(r) && !watches.includes(r));
      console.log(
        `# idle ${IDLE_MS / 1000} s: ${idle.length} requests — ${lease.length} Lease, ${watches.length} watches (re)opened, ${other.length} other${other.length ? `: ${other.map((r) => `${r.method} ${r.path}`).join(', ')}` : ''}`,
      );
      assert.ok(lease.length > 0, 'the Lease was renewed (the proxy saw the traffic)');
      assert.deepEqual(
        other.map((r) => `${r.method} ${r.path}`),
        [],
        'no request beyond watches and the Lease',
      );

      assert.equal(k.app.controller.hasKind(group, 'Widget'), false);
      const t0 = Date.now();
      await installCrd(tb, group, 'Widget', 'widgets', 'v1');
      await waitFor('Widget watched', async () => k.app.controller.hasKind(group, 'Widget'), 20_000, 100);
      console.log(
        `# a CRD installed while idle: its kind watched ${((Date.now() - t0) / 1000).toFixed(1)} s later`,
      );
    } finally {
      proxy.setFault(null);
      // Widgets are not in the chart's RBAC (a policy's kind needs controller.kinds): its watch is refused.
      await k.stop({ forbiddenExpected: true });
      await tb.kubectl(['delete', 'crd', `widgets.${group}`, '--wait=false']).catch(() => undefined);
    }
  });
});
