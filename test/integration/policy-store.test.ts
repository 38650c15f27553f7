// Policies on the real control plane: the CRDs from deploy/crds/ (the single source) make the API
// server refuse bad policies; PolicyStore follows policies and namespace labels through list+watch,
// survives the CRDs being absent (and picks them up when installed), and writes status.
// Cluster policies here only ever select objects carrying this run's label, so nothing another
// test file creates can match them; they are deleted at the end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { systemClock } from '../../src/clock.ts';
import { ApiError } from '../../src/kube/errors.ts';
import { KubeHttp } from '../../src/kube/http.ts';
import { collectionPath, objectPath } from '../../src/kube/resources.ts';
import {
  CLUSTER_TTL_POLICIES,
  type PolicyChange,
  PolicyStore,
  TTL_POLICIES,
} from '../../src/policy/store.ts';
import type { ObjectSummary } from '../../src/rules/types.ts';
import { jobSummary } from '../fixtures/object-summary.ts';
import { controllerKubeConfig } from '../testbed/controller.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  installPolicyCrds,
  kubeConfigFor,
  newNamespace,
  POLICY_CRDS,
  ttlPolicy,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const RUN = `r${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
/** Object label every policy here selects on: no other test's objects carry it. */
const RUN_LABEL = { 'kttl.test/policy-run': RUN };

async function crdsInstalled(tb: Testbed): Promise<boolean> {
  const out = await tb.kubectl(['get', 'crd', '-o', 'name']);
  return POLICY_CRDS.some((n) =>
    out.includes(n.replace('crd/', 'customresourcedefinition.apiextensions.k8s.io/')),
  );
}

async function deleteCrds(tb: Testbed): Promise<void> {
  await tb.kubectl(['delete', '--ignore-not-found', '--wait=true', '--timeout=60s', ...POLICY_CRDS]);
}

function job(namespace: string, labels: Record<string, string> = RUN_LABEL): ObjectSummary {
  return jobSummary({ namespace, labels });
}

function clusterPolicy(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'kttl.dev/v1alpha1', kind: 'ClusterTTLPolicy', metadata: { name }, spec };
}

const JOBS = [{ apiVersion: 'batch/v1', kind: 'Job' }];

describe('policies on the real API server', () => {
  let tb: Testbed;
  let c: Clients;
  /** The test's own writes (cluster-admin). */
  let http: KubeHttp;
  /** The stores' client: kttl's controller identity (the chart's least-privilege role). */
  let storeHttp: KubeHttp;
  let store: PolicyStore;
  const logs: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  /** Every onChange, with the policies' ttl at that moment (by ref): which change brought what. */
  const changes: Array<PolicyChange & { ttls: ReadonlyMap<string, string | undefined> }> = [];
  const clusterNames: string[] = [];

  const create = (body: { metadata: { name: string; namespace?: string } }, ref = TTL_POLICIES) =>
    http.request<{ metadata: { name: string; uid: string; generation: number } }>(
      'create',
      'POST',
      collectionPath(ref, body.metadata.namespace),
      { body },
    );
  const createCluster = (name: string, spec: Record<string, unknown>) => {
    clusterNames.push(name);
    return create(clusterPolicy(name, spec), CLUSTER_TTL_POLICIES);
  };

  async function rejected(
    body: { metadata: { name: string; namespace?: string } },
    ...fragments: string[]
  ): Promise<void> {
    await assert.rejects(create(body), (err: unknown) => {
      assert.ok(err instanceof ApiError, String(err));
      assert.equal(err.code, 422, err.message);
      for (const f of fragments)
        assert.ok(err.message.includes(f), `${JSON.stringify(err.message)} lacks ${f}`);
      return true;
    });
  }

  /** Waits for an onChange notification satisfying `pred` after `since` notifications. */
  async function changeAfter(
    since: number,
    pred: (c: (typeof changes)[number]) => boolean,
  ): Promise<PolicyChange> {
    return await waitFor('onChange', async () => changes.slice(since).find(pred), 15_000, 20);
  }

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    http = new KubeHttp({ kubeConfig: kubeConfigFor(tb), clock: systemClock });
    storeHttp = new KubeHttp({ kubeConfig: controllerKubeConfig(tb), clock: systemClock });
    // Start without the CRDs (another file of this run may have installed them).
    if (await crdsInstalled(tb)) await deleteCrds(tb);
  });

  after(async () => {
    await store?.stop();
    for (const name of clusterNames) {
      await http
        .request('delete', 'DELETE', objectPath(CLUSTER_TTL_POLICIES, '', name))
        .catch(() => undefined);
    }
    await http.close();
    await storeHttp.close();
  });

  test('CRDs not installed: synced anyway, policies off, logged once and counted', async () => {
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) },
    );
    const missing: string[] = [];
    store = new PolicyStore({
      http: storeHttp,
      clock: systemClock,
      logger,
      discoveryIntervalMs: 500, // production: 30 s
      minWatchTimeoutSeconds: 30,
      onCrdMissing: (kind) => missing.push(kind),
    });
    store.onChange((ch) =>
      changes.push({ ...ch, ttls: new Map(store.policies().map((p) => [p.ref, p.ttl])) }),
    );
    store.start();
    await store.synced;
    assert.deepEqual(store.policies(), []);
    assert.equal(store.policyFor(job('default')), null);
    assert.equal(store.stats.crdMissing, 2);
    assert.deepEqual(missing.sort(), ['ClusterTTLPolicy', 'TTLPolicy']);
    await new Promise((r) => setTimeout(r, 1600)); // three more probes
    const lines = logs.filter((l) => l.msg === 'policy CRDs not installed; policies off');
    assert.equal(lines.length, 1, 'logged once, not at every probe');
    assert.equal(lines[0]?.level, 30, 'info level');
    assert.equal(store.stats.crdMissing, 2, 'counted once per kind');
  });

  test('CRDs installed later are picked up', async () => {
    await installPolicyCrds(tb);
    const ns = await newNamespace(c, 'pol');
    const since = changes.length;
    await create(ttlPolicy(ns, 'early', { resources: JOBS, ttl: '1h' }));
    await waitFor(
      'store sees the policy',
      async () => store.policies().some((p) => p.ref === `TTLPolicy/${ns}/early`),
      15_000,
      50,
    );
    await changeAfter(since, (ch) => ch.policies);
    assert.ok(logs.some((l) => l.msg === 'policy CRD installed; watching it'));
    assert.equal(store.policyFor(job(ns))?.ref, `TTLPolicy/${ns}/early`);
  });

  describe('the API server validates policies with the CRD schema', () => {
    let ns: string;
    before(async () => {
      ns = await newNamespace(c, 'pol');
    });

    test('refuses ttl "5 minutes"', () =>
      rejected(ttlPolicy(ns, 'a', { resources: JOBS, ttl: '5 minutes' }), 'spec.ttl', 'should match'));
    test('refuses a negative ttlFailed', () =>
      rejected(ttlPolicy(ns, 'a', { resources: JOBS, ttlFailed: '-5m' }), 'spec.ttlFailed'));
    test('refuses a unit-less ttlSucceeded', () =>
      rejected(ttlPolicy(ns, 'a', { resources: JOBS, ttlSucceeded: '90' }), 'spec.ttlSucceeded'));
    test('refuses a number as ttl', () =>
      rejected(ttlPolicy(ns, 'a', { resources: JOBS, ttl: 3600 }), 'spec.ttl'));
    test('refuses an unknown propagationPolicy', () =>
      rejected(
        ttlPolicy(ns, 'a', { resources: JOBS, propagationPolicy: 'Cascade' }),
        'spec.propagationPolicy',
        'Unsupported value',
      ));
    test('refuses an unknown enforce', () =>
      rejected(ttlPolicy(ns, 'a', { resources: JOBS, enforce: 'min' }), 'spec.enforce'));
    test('refuses a policy without resources, and a resource without kind', async () => {
      await rejected(ttlPolicy(ns, 'a', { ttl: '1h' }), 'spec.resources');
      await rejected(ttlPolicy(ns, 'a', { resources: [{ apiVersion: 'batch/v1' }] }), 'kind');
    });
    test('refuses a matcher with both condition and field (CEL)', () =>
      rejected(
        ttlPolicy(ns, 'a', {
          resources: [
            {
              apiVersion: 'x.io/v1',
              kind: 'Build',
              finished: { failed: { condition: { type: 'F' }, field: '.status.phase', values: ['x'] } },
            },
          ],
        }),
        'needs exactly one of condition or field',
      ));
    test('refuses a bad field path and empty values', async () => {
      const build = (m: unknown) =>
        ttlPolicy(ns, 'a', {
          resources: [{ apiVersion: 'x.io/v1', kind: 'Build', finished: { failed: m } }],
        });
      await rejected(build({ field: 'status.phase', values: ['x'] }), 'field');
      await rejected(build({ field: '.status.phase', values: [] }), 'values');
    });
    test('refuses finished on a Job (CEL)', () =>
      rejected(
        ttlPolicy(ns, 'a', {
          resources: [
            { apiVersion: 'batch/v1', kind: 'Job', finished: { failed: { condition: { type: 'F' } } } },
          ],
        }),
        'finished is not allowed for batch Jobs',
      ));
    test('refuses In without values (CEL) and an unknown operator', async () => {
      await rejected(
        ttlPolicy(ns, 'a', {
          resources: JOBS,
          selector: { matchExpressions: [{ key: 'a', operator: 'In' }] },
        }),
        'In and NotIn need values',
      );
      await rejected(
        ttlPolicy(ns, 'a', {
          resources: JOBS,
          selector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
        }),
        'operator',
      );
    });
    test('refuses one apiVersion+kind twice', () =>
      rejected(ttlPolicy(ns, 'a', { resources: [...JOBS, ...JOBS] }), 'Duplicate value'));

    test('accepts a valid policy and fills in the defaults', async () => {
      const created = await create(
        ttlPolicy(ns, 'ok', {
          resources: [
            ...JOBS,
            {
              apiVersion: 'x.io/v1',
              kind: 'Build',
              finished: { succeeded: { condition: { type: 'Done' } } },
            },
          ],
          selector: { matchLabels: RUN_LABEL },
          ttl: '1h30m',
          ttlSucceeded: ' +.5m ', // everything parseDuration accepts, the pattern accepts
          ttlFailed: '4d',
          propagationPolicy: 'Background',
        }),
      );
      const spec = (created as unknown as { spec: Record<string, unknown> }).spec;
      assert.equal(spec.dryRun, false);
      assert.equal(spec.priority, 0);
      assert.equal(spec.enforce, 'none');
      assert.deepEqual((spec.resources as Array<{ finished?: unknown }>)[1]?.finished, {
        succeeded: { condition: { type: 'Done', status: 'True' } },
      });
      const table = await tb.kubectl(['get', 'ttlp', '-n', ns, 'ok']);
      assert.match(table, /NAME\s+TTL\s+SUCCEEDED\s+FAILED\s+MATCHED\s+AGE/);
      assert.match(table, /ok\s+1h30m\s+\+\.5m\s+4d/);
    });

    test('accepts what only the controller can refuse (3551w); the store reports it and it holds its objects', async () => {
      await create(
        ttlPolicy(ns, 'too-long', {
          resources: JOBS,
          ttl: '3551w',
          priority: 10,
          selector: { matchLabels: RUN_LABEL },
        }),
      );
      const ref = `TTLPolicy/${ns}/too-long`;
      const errors = await waitFor(
        'store reports it invalid',
        async () => {
          const e = store.errorsOf(ref);
          return e !== undefined && e.length > 0 ? e : undefined;
        },
        15_000,
        50,
      );
      assert.match(errors[0] ?? '', /spec\.ttl: invalid duration "3551w": longer than the maximum/);
      assert.ok(store.invalid().some((i) => i.ref === ref));
      // It outranks "ok" and hands its bad value on (resolveTtl: invalid, object kept, Warning
      // Event) instead of dropping out and letting "ok" delete the objects it meant to keep longer.
      const ex = store.explain(job(ns));
      assert.deepEqual(
        ex.ranked.map((r) => r.policy.ref),
        [ref, `TTLPolicy/${ns}/ok`],
      );
      assert.match(ex.ranked[0]?.reason ?? '', /TTL values are invalid, so matching objects are kept/);
      assert.equal(store.policyFor(job(ns))?.ttl, '3551w');
      // Status errors default to the parse errors.
      assert.equal(await store.updateStatus(ref, { matchedObjects: 0 }), true);
      const { status } = await http.request<{
        status: { errors: string[]; conditions: Array<{ status: string }> };
      }>('get', 'GET', objectPath(TTL_POLICIES, ns, 'too-long'));
      assert.deepEqual(status.errors, errors);
      assert.equal(status.conditions[0]?.status, 'False');
    });
  });

  test('the store sees create, update and delete, and fires onChange for each', async () => {
    const ns = await newNamespace(c, 'pol');
    const ref = `TTLPolicy/${ns}/p`;
    let since = changes.length;
    await create(ttlPolicy(ns, 'p', { resources: JOBS, ttl: '1h', selector: { matchLabels: RUN_LABEL } }));
    // The change that brought it (a late notification of an earlier test's policies may come first).
    await changeAfter(since, (ch) => ch.policies && ch.ttls.get(ref) === '1h');
    assert.equal(store.policyFor(job(ns))?.ttl, '1h');

    since = changes.length;
    await http.request('patch', 'PATCH', objectPath(TTL_POLICIES, ns, 'p'), {
      body: { spec: { ttl: '2h', dryRun: true } },
      contentType: 'application/merge-patch+json',
    });
    await changeAfter(since, (ch) => ch.policies && ch.ttls.get(ref) === '2h');
    assert.deepEqual(store.policyFor(job(ns)), { ref, ttl: '2h', dryRun: true });
    assert.equal(store.policyFor(job(ns, {})), null, 'selector: objects without the label are not selected');

    since = changes.length;
    await http.request('delete', 'DELETE', objectPath(TTL_POLICIES, ns, 'p'));
    await changeAfter(since, (ch) => ch.policies && !ch.ttls.has(ref));
    assert.equal(store.policyFor(job(ns)), null);
    assert.ok(!store.policies().some((p) => p.ref === ref));
  });

  test('a namespaced policy beats a cluster policy, whatever the priority; explain says why', async () => {
    const ns1 = await newNamespace(c, 'pol');
    const ns2 = await newNamespace(c, 'pol');
    const cluster = `kttl-test-${RUN}-wide`;
    await createCluster(cluster, {
      resources: JOBS,
      ttl: '1d',
      priority: 1000,
      selector: { matchLabels: RUN_LABEL },
    });
    await create(
      ttlPolicy(ns1, 'local', { resources: JOBS, ttl: '5m', selector: { matchLabels: RUN_LABEL } }),
    );
    await waitFor(
      'both policies in the store',
      async () =>
        store.policyFor(job(ns1))?.ref === `TTLPolicy/${ns1}/local` && store.policyFor(job(ns2)) !== null,
      15_000,
      50,
    );
    assert.deepEqual(store.policyFor(job(ns1)), { ref: `TTLPolicy/${ns1}/local`, ttl: '5m', dryRun: false });
    assert.equal(store.policyFor(job(ns2))?.ref, `ClusterTTLPolicy/${cluster}`);
    const ex = store.explain(job(ns1));
    assert.deepEqual(
      ex.ranked.map((r) => r.reason),
      [
        'chosen: most specific of 2 matching policies (namespaced TTLPolicy, priority 0)',
        `below TTLPolicy/${ns1}/local: a namespaced policy beats a cluster policy`,
      ],
    );
  });

  test('namespaceSelector follows namespace label changes', async () => {
    const ns = await newNamespace(c, 'pol');
    const name = `kttl-test-${RUN}-nssel`;
    const o = job(ns, { ...RUN_LABEL, nssel: 'yes' });
    const added = changes.length;
    await createCluster(name, {
      resources: JOBS,
      ttl: '10m',
      priority: 2000, // above the other cluster policy of this run, so it wins when it matches
      namespaceSelector: { matchLabels: { [`kttl.test/${RUN}`]: 'on' } },
      selector: { matchLabels: { nssel: 'yes' } },
    });
    await waitFor(
      'policy in the store',
      async () => store.policies().some((p) => p.name === name),
      15_000,
      50,
    );
    await changeAfter(added, (x) => x.policies); // so the label change below is a burst of its own
    assert.notEqual(store.policyFor(o)?.ref, `ClusterTTLPolicy/${name}`);
    assert.match(
      store.explain(o).notMatching.find((m) => m.policy.name === name)?.reason ?? '',
      /namespaceSelector does not match namespace/,
    );

    let since = changes.length;
    await tb.kubectl(['label', 'namespace', ns, `kttl.test/${RUN}=on`]);
    const ch = await changeAfter(since, (x) => x.namespaces.includes(ns));
    assert.equal(ch.policies, false, 'a label change is not a policy change');
    assert.equal(store.policyFor(o)?.ref, `ClusterTTLPolicy/${name}`);

    since = changes.length;
    await tb.kubectl(['label', 'namespace', ns, `kttl.test/${RUN}-`]);
    await changeAfter(since, (x) => x.namespaces.includes(ns));
    assert.notEqual(store.policyFor(o)?.ref, `ClusterTTLPolicy/${name}`);
  });

  test('status: PATCHed through the subresource, only when it changes, without an onChange', async () => {
    const ns = await newNamespace(c, 'pol');
    const ref = `TTLPolicy/${ns}/st`;
    const added = changes.length;
    const created = await create(
      ttlPolicy(ns, 'st', { resources: JOBS, ttl: '1h', selector: { matchLabels: RUN_LABEL } }),
    );
    await waitFor('policy in the store', async () => store.errorsOf(ref) !== undefined, 15_000, 50);
    await changeAfter(added, (x) => x.policies); // the add's own notification is out of the way
    const since = changes.length;
    const patches = store.stats.statusPatches;

    assert.equal(await store.updateStatus(ref, { matchedObjects: 3, errors: [] }), true);
    // Same values again, at once and concurrently: no further PATCH.
    const again = await Promise.all([
      store.updateStatus(ref, { matchedObjects: 3, errors: [] }),
      store.updateStatus(ref, { matchedObjects: 3, errors: [] }),
    ]);
    assert.deepEqual(again, [false, false]);
    assert.equal(store.stats.statusPatches, patches + 1);

    const read = async () =>
      (
        await http.request<{ status: Record<string, unknown> }>(
          'get',
          'GET',
          objectPath(TTL_POLICIES, ns, 'st'),
        )
      ).status;
    let status = await read();
    assert.equal(status.matchedObjects, 3);
    assert.deepEqual(status.errors, []);
    assert.equal(status.observedGeneration, created.metadata.generation);
    const [cond] = status.conditions as Array<Record<string, unknown>>;
    assert.equal(cond?.type, 'Valid');
    assert.equal(cond?.status, 'True');
    assert.equal(cond?.reason, 'Valid');
    assert.match(
      (await tb.kubectl(['get', 'ttlp', '-n', ns, 'st'])).split('\n')[1] ?? '',
      /^st\s+1h\s+3\s+\S+$/,
    );

    // After the watch event too, equal values are still a no-op.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await store.updateStatus(ref, { matchedObjects: 3, errors: [] }), false);

    assert.equal(await store.updateStatus(ref, { matchedObjects: 0, errors: ['boom: one', 'two'] }), true);
    status = await read();
    assert.equal(status.matchedObjects, 0);
    assert.deepEqual(status.errors, ['boom: one', 'two']);
    const [c2] = status.conditions as Array<Record<string, unknown>>;
    assert.deepEqual([c2?.status, c2?.reason, c2?.message], ['False', 'InvalidSpec', 'boom: one; two']);

    await new Promise((r) => setTimeout(r, 300));
    assert.ok(
      !changes.slice(since).some((ch) => ch.policies),
      'status writes are not policy changes (no re-judge loop)',
    );
    // The spec is untouched by the status writes (they go through /status only).
    const obj = await http.request<{ spec: { ttl: string } }>(
      'get',
      'GET',
      objectPath(TTL_POLICIES, ns, 'st'),
    );
    assert.equal(obj.spec.ttl, '1h');

    // A change the store has not seen (a second store, stopped so its cache is frozen): the cached
    // resourceVersion is stale, the PATCH conflicts, the store reads the object and retries once.
    const frozen = new PolicyStore({
      http: storeHttp,
      clock: systemClock,
      logger: pino({ level: 'silent' }),
    });
    frozen.start();
    await frozen.synced;
    await frozen.stop();
    await http.request('patch', 'PATCH', objectPath(TTL_POLICIES, ns, 'st'), {
      body: { spec: { ttl: '3h' } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal(await frozen.updateStatus(ref, { matchedObjects: 7, errors: [] }), true);
    assert.equal(frozen.stats.statusConflicts, 1);
    assert.equal((await read()).matchedObjects, 7);

    // A policy that is gone: nothing to write, no error.
    await http.request('delete', 'DELETE', objectPath(TTL_POLICIES, ns, 'st'));
    await waitFor('policy gone from the store', async () => store.errorsOf(ref) === undefined, 15_000, 50);
    assert.equal(await store.updateStatus(ref, { matchedObjects: 1, errors: [] }), false);
  });

  test('CRDs removed while running: policies dropped, kinds off again; reinstalled: back', async () => {
    const ns = await newNamespace(c, 'pol');
    await create(ttlPolicy(ns, 'x', { resources: JOBS, ttl: '1h', selector: { matchLabels: RUN_LABEL } }));
    await waitFor('policy in the store', async () => store.policyFor(job(ns)) !== null, 15_000, 50);
    const missingBefore = store.stats.crdMissing;
    await deleteCrds(tb);
    await waitFor('policies dropped', async () => store.policies().length === 0, 30_000, 100);
    assert.equal(store.policyFor(job(ns)), null);
    await waitFor('kinds off', async () => store.stats.crdMissing === missingBefore + 2, 30_000, 100);
    await installPolicyCrds(tb);
    await create(ttlPolicy(ns, 'y', { resources: JOBS, ttl: '2h', selector: { matchLabels: RUN_LABEL } }));
    await waitFor('store back', async () => store.policyFor(job(ns))?.ttl === '2h', 30_000, 100);
  });
});
