// Looking for custom kinds (src/controller/kinds.ts through src/kube/optional-resource.ts) behind the
// fault proxy (test/testbed/fault-proxy.ts): a discovery request that fails is retried with
// back-off, not left until the next policy change.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { systemClock } from '../../src/clock.ts';
import { runOptions, startInProcess } from '../testbed/controller.ts';
import { type FaultProxy, startFaultProxy } from '../testbed/fault-proxy.ts';
import { controllerKubeconfigPath } from '../testbed/identities.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { clientsFor, installCrd, newNamespace, useTestbed, waitFor } from '../testbed/use.ts';

describe('kind discovery behind the fault proxy', () => {
  let tb: Testbed;
  let proxy: FaultProxy;
  before(async () => {
    tb = await useTestbed();
    proxy = await startFaultProxy(tb);
  });
  after(async () => {
    await proxy?.stop();
  });

  test('a discovery answer 503 is retried within seconds (it used to stop discovery until a policy changed)', async () => {
    await installCrd(tb, 'ray.io', 'RayJob', 'rayjobs', 'v1');
    const ns = await newNamespace(clientsFor(tb), 'discovery');
    let refused = 0;
    proxy.setFault({
      respond: (req) => {
        if (req.path !== '/apis/ray.io' || refused >= 2) return undefined;
        refused++;
        return {
          status: 503,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            reason: 'ServiceUnavailable',
            message: 'the server is currently unable to handle the request',
            code: 503,
          }),
        };
      },
    });
    // No policies (no policy change wakes discovery) and a long interval: only the retry can find it.
    const k = await startInProcess(
      tb,
      runOptions([ns], { policies: false, discoveryIntervalMs: 120_000 }),
      undefined,
      systemClock,
      proxy.kubeconfig(controllerKubeconfigPath(tb)),
    );
    try {
      const t0 = Date.now();
      await waitFor('RayJob watched', async () => k.app.controller.hasKind('ray.io', 'RayJob'), 20_000, 100);
      console.log(
        `# RayJob watched ${((Date.now() - t0) / 1000).toFixed(1)} s after start, ${refused} refusals`,
      );
      assert.equal(refused, 2, 'both refusals were seen');
    } finally {
      proxy.setFault(null);
      await k.stop();
    }
  });
});
