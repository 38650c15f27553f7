// Beside the native ttl-after-finished controller (kube-controller-manager restarted with it on):
// --native-jobs=leave leaves field-only Jobs to it; =handle races it safely (preconditions: no
// object is deleted twice).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { jobExists } from '../testbed/jobs.ts';
import { BASE_CONTROLLERS, NATIVE_TTL_CONTROLLER, type Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  jobManifest,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

describe('beside the native TTL controller', () => {
  let tb: Testbed;
  let c: Clients;
  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    await tb.restartControllerManager([...BASE_CONTROLLERS, NATIVE_TTL_CONTROLLER]);
  });
  after(async () => {
    await tb.restartControllerManager([...BASE_CONTROLLERS]);
  });

  const goneOrDeleting = async (ns: string, name: string) => {
    const s = await jobExists(c, ns, name);
    return !s.exists || s.deleting;
  };

  test('--native-jobs=leave: field-only Jobs are the native controller’s; annotated ones are kttl’s', async () => {
    const ns = await newNamespace(c, 'native');
    const kttl = await startInProcess(tb, runOptions([ns], { nativeJobs: 'leave' }));
    try {
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'field', namespace: ns, ttlSecondsAfterFinished: 1 }),
      });
      await c.batch.createNamespacedJob({
        namespace: ns,
        body: jobManifest({ name: 'annotated', namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } }),
      });
      await waitFor(
        'both deleted',
        async () => (await goneOrDeleting(ns, 'field')) && (await goneOrDeleting(ns, 'annotated')),
        30_000,
      );
      await sleep(1000);
      assert.equal(
        await metricValue(kttl.registry, 'kttl_deletions_total', { source: 'annotation' }),
        1,
        'kttl deleted the annotated Job',
      );
      assert.equal(
        await metricValue(kttl.registry, 'kttl_deletions_total', { source: 'field' }),
        0,
        'and left the field-only Job to the native controller',
      );
      assert.equal(await metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'delete' }), 1);
    } finally {
      await kttl.stop();
    }
  });

  test('--native-jobs=handle: both may try, the preconditions make every Job deleted exactly once', async () => {
    const ns = await newNamespace(c, 'native');
    const kttl = await startInProcess(tb, runOptions([ns], { nativeJobs: 'handle' }));
    try {
      const names = Array.from({ length: 10 }, (_, i) => `race-${i}`);
      for (const name of names)
        await c.batch.createNamespacedJob({
          namespace: ns,
          body: jobManifest({ name, namespace: ns, ttlSecondsAfterFinished: 2 }),
        });
      await waitFor(
        'all deleted',
        async () => (await Promise.all(names.map((n) => goneOrDeleting(ns, n)))).every(Boolean),
        60_000,
      );
      await sleep(1500);
      const byKttl = await metricValue(kttl.registry, 'kttl_deletions_total');
      const conflicts = await metricValue(kttl.registry, 'kttl_delete_conflicts_total');
      const codes = {
        ok: await metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'delete', code: '200' }),
        gone: await metricValue(kttl.registry, 'kttl_api_requests_total', { verb: 'delete', code: '404' }),
        conflict: await metricValue(kttl.registry, 'kttl_api_requests_total', {
          verb: 'delete',
          code: '409',
        }),
      };
      console.log(
        `# handle mode: kttl deleted ${byKttl}/10, the native controller the rest; kttl DELETE answers ${JSON.stringify(codes)}, conflicts re-judged ${conflicts}`,
      );
      assert.equal(codes.ok, byKttl, 'every accepted kttl DELETE is one deletion');
      assert.ok(byKttl <= 10);
    } finally {
      await kttl.stop();
    }
  });
});
