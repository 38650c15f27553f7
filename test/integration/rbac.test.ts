// Least-privilege RBAC on the real control plane (docs/operations.md "Permissions"): the built
// controller runs as a ServiceAccount bound to exactly the chart's rules — taken from the rendered
// manifests in deploy/manifests/base (generated from the chart, checked up to date by
// test/unit/deploy/generated.test.ts and chart.test.ts) — with the chart's own `kttl run` arguments.
// The smoke passes with zero 403s; a kind outside the role gives one clear error naming the verb and
// the resource while the process keeps running, and is picked up once the permission is granted.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyObjects as apply, tokenKubeconfig } from '../testbed/clients.ts';
import {
  type LogLine as BaseLogLine,
  type ChildController,
  scrape,
  spawnController,
} from '../testbed/controller.ts';
import {
  CONTROLLER_SA,
  chartRunArgs,
  controllerKubeconfigPath,
  type K8sObject,
  KTTL_NAMESPACE,
  LEASE_NAME,
  loadDocs,
} from '../testbed/identities.ts';
import { jobExists, waitForJobDeletion } from '../testbed/jobs.ts';
import { REPO_ROOT, type Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  installPolicyCrds,
  jobManifest,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

const MANIFESTS = join(REPO_ROOT, 'deploy/manifests/base');
const BUNDLE = join(REPO_ROOT, 'dist/kttl.mjs');

interface RoleRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

/**
 * The chart's controller identity (ServiceAccount, ClusterRole + binding, lease Role + binding),
 * moved into `ns`: namespaced objects go to `ns`, cluster-scoped names get `-suffix` (several tests
 * share one API server). The rules are not touched.
 */
function chartIdentity(
  ns: string,
  suffix: string,
): { objects: K8sObject[]; sa: string; clusterRole: K8sObject } {
  const docs = [
    ...loadDocs(join(MANIFESTS, 'serviceaccount.yaml')),
    ...loadDocs(join(MANIFESTS, 'rbac.yaml')),
  ];
  const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding']);
  const objects = docs.map((d) => {
    const o = structuredClone(d);
    if (clusterScoped.has(o.kind)) o.metadata.name = `${o.metadata.name}-${suffix}`;
    else o.metadata.namespace = ns;
    const roleRef = o.roleRef as { kind: string; name: string } | undefined;
    if (roleRef?.kind === 'ClusterRole') roleRef.name = `${roleRef.name}-${suffix}`;
    for (const s of (o.subjects as Array<{ namespace?: string }> | undefined) ?? []) s.namespace = ns;
    return o;
  });
  const sa = objects.find((o) => o.kind === 'ServiceAccount');
  const clusterRole = objects.find((o) => o.kind === 'ClusterRole');
  assert.ok(sa && clusterRole, 'the rendered manifests hold a ServiceAccount and a ClusterRole');
  assert.deepEqual(clusterRole.rules, docs.find((d) => d.kind === 'ClusterRole')!.rules, 'rules untouched');
  return { objects, sa: sa.metadata.name, clusterRole };
}

interface Access {
  verb: string;
  group?: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/**
 * Whether the ServiceAccount may do it, by the API server's authorizer (a SubjectAccessReview: exact
 * group/resource, no discovery needed, so kinds whose CRD is not installed can be asked about too).
 */
async function canI(tb: Testbed, ns: string, sa: string, a: Access): Promise<boolean> {
  const review = {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: `system:serviceaccount:${ns}:${sa}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      resourceAttributes: { group: '', ...a },
    },
  };
  const out = JSON.parse(await tb.kubectl(['create', '-f', '-', '-o', 'json'], JSON.stringify(review))) as {
    status?: { allowed?: boolean };
  };
  return out.status?.allowed === true;
}

const show = (a: Access) =>
  `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.group ? `.${a.group}` : ''}` +
  `${a.name ? ` ${a.name}` : ''} in ${a.namespace ?? 'all namespaces'}`;

/** kttl's log lines about a watch carry the resource and group. */
interface LogLine extends BaseLogLine {
  resource?: string;
  group?: string;
}

function grants(rules: RoleRule[], group: string, resource: string, verb: string): boolean {
  return rules.some(
    (r) =>
      (r.apiGroups ?? []).includes(group) && (r.resources ?? []).includes(resource) && r.verbs.includes(verb),
  );
}

/**
 * The kinds the controller logged "forbidden: cannot list/watch" for. Policies are read cluster-wide,
 * so a policy another test left behind can name a kind outside the role (e.g. example.com/Build);
 * what matters is that nothing the role covers is ever refused.
 */
function refusedKinds(lines: LogLine[]): Array<{ group: string; resource: string }> {
  const out = new Map<string, { group: string; resource: string }>();
  for (const l of lines)
    if (typeof l.msg === 'string' && l.msg.startsWith('forbidden: cannot list/watch') && l.resource)
      out.set(`${l.resource}.${l.group ?? ''}`, { group: l.group ?? '', resource: l.resource });
  return [...out.values()];
}

/** Every log line that mentions a refusal is about one of `outside` (kinds outside the role). */
function assertOnlyOutsideRefused(lines: LogLine[], rules: RoleRule[]): string[] {
  const outside = refusedKinds(lines);
  for (const k of outside)
    assert.ok(
      !grants(rules, k.group, k.resource, 'list'),
      `${k.resource}.${k.group} is in the role but was refused`,
    );
  for (const l of lines) {
    const text = JSON.stringify(l);
    if (!/forbidden|\b403\b/i.test(text)) continue;
    assert.ok(
      outside.some((k) => text.includes(k.group ? `${k.group}` : k.resource)),
      `a refusal outside list/watch of a kind outside the role: ${text}`,
    );
  }
  return outside.map((k) => `${k.resource}.${k.group}`);
}

function policy(ns: string, name: string, spec: object): object {
  return { apiVersion: 'kttl.dev/v1alpha1', kind: 'TTLPolicy', metadata: { name, namespace: ns }, spec };
}

describe('least-privilege RBAC: the controller as the chart ServiceAccount', () => {
  let tb: Testbed;
  let c: Clients;
  const procs: ChildController[] = [];
  const clusterObjects: string[] = [];
  const suffix = `rbac-${process.pid}`;

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    if (!existsSync(BUNDLE)) execFileSync(process.execPath, ['scripts/build.ts'], { cwd: REPO_ROOT });
    // The policy CRDs as the chart renders them.
    await installPolicyCrds(tb, join(MANIFESTS, 'crds.yaml'));
  });

  after(async () => {
    for (const p of procs) await p.stop();
    for (const o of clusterObjects)
      await tb.kubectl(['delete', '--ignore-not-found', o]).catch(() => undefined);
  });

  async function install(ns: string, tag: string) {
    const id = chartIdentity(ns, `${suffix}-${tag}`);
    await apply(tb, id.objects);
    for (const o of id.objects)
      if (!o.metadata.namespace) clusterObjects.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
    return id;
  }

  test('the identity every other integration test runs kttl with is the chart ServiceAccount with exactly its role', {
    skip: process.env.KTTL_TEST_IDENTITY === 'admin' ? 'KTTL_TEST_IDENTITY=admin' : false,
  }, async () => {
    const kubeconfig = controllerKubeconfigPath(tb);
    const as = (args: string[]) =>
      new Promise<string>((resolve) =>
        execFile(tb.bins.kubectl, [`--kubeconfig=${kubeconfig}`, ...args], (_err, stdout) =>
          resolve(stdout.trim()),
        ),
      );
    assert.equal(
      await as(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']),
      `system:serviceaccount:${KTTL_NAMESPACE}:${CONTROLLER_SA}`,
    );
    const want = loadDocs(join(REPO_ROOT, 'deploy/rbac/rbac.yaml')).find((d) => d.kind === 'ClusterRole')!;
    const onServer = JSON.parse(await tb.kubectl(['get', 'clusterrole', want.metadata.name, '-o', 'json']));
    assert.deepEqual(onServer.rules, want.rules, 'the ClusterRole on the server is the rendered one');
    // Every ClusterRoleBinding naming the ServiceAccount: the chart's, and the one for TEST_KINDS.
    const bindings = (
      JSON.parse(await tb.kubectl(['get', 'clusterrolebindings', '-o', 'json'])) as {
        items: Array<{
          metadata: { name: string };
          subjects?: Array<{ kind: string; name: string; namespace?: string }>;
        }>;
      }
    ).items
      .filter((b) =>
        (b.subjects ?? []).some(
          (s) => s.kind === 'ServiceAccount' && s.name === CONTROLLER_SA && s.namespace === KTTL_NAMESPACE,
        ),
      )
      .map((b) => b.metadata.name)
      .sort();
    assert.deepEqual(bindings, ['kttl', 'kttl-test-kinds']);
    const checks: Array<[string[], 'yes' | 'no']> = [
      [['delete', 'jobs.batch', '-A'], 'yes'],
      [['delete', 'pods', '-A'], 'yes'],
      [['create', 'jobs.batch', '-A'], 'no'],
      [['update', 'jobs.batch', '-A'], 'no'],
      [['get', 'secrets', '-A'], 'no'],
      [['delete', 'nodes'], 'no'],
      [['update', 'leases.coordination.k8s.io/other', '-n', KTTL_NAMESPACE], 'no'],
      [['update', `leases.coordination.k8s.io/${LEASE_NAME}`, '-n', KTTL_NAMESPACE], 'yes'],
    ];
    for (const [args, answer] of checks)
      assert.equal(await as(['auth', 'can-i', ...args]), answer, `can-i ${args.join(' ')}`);
    console.log(
      `# the suite's kttl identity: system:serviceaccount:${KTTL_NAMESPACE}:${CONTROLLER_SA}, bindings ${bindings.join(', ')}, ${checks.length} can-i checks as intended`,
    );
  });

  test('the smoke passes under exactly the chart role; nothing the role covers is refused', async () => {
    const ns = await newNamespace(c, 'rbac');
    const { sa, clusterRole } = await install(ns, 'smoke');
    console.log(
      `# ClusterRole: ${(clusterRole.rules as RoleRule[]).length} rules from deploy/rbac/rules.yaml`,
    );

    // What the identity may and may not do, as the API server's authorizer sees it.
    const may: Access[] = [
      { verb: 'delete', group: 'batch', resource: 'jobs' },
      { verb: 'get', group: 'batch', resource: 'jobs', namespace: ns },
      { verb: 'watch', resource: 'pods' },
      { verb: 'delete', group: 'argoproj.io', resource: 'workflows' },
      { verb: 'list', group: 'sparkoperator.k8s.io', resource: 'sparkapplications' },
      { verb: 'patch', group: 'kttl.dev', resource: 'ttlpolicies', subresource: 'status', namespace: ns },
      { verb: 'watch', group: 'kttl.dev', resource: 'clusterttlpolicies' },
      { verb: 'list', resource: 'namespaces' },
      { verb: 'create', resource: 'events', namespace: ns },
      { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: ns },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: ns, name: 'kttl' },
      // The archive (on in the chart's default): a Job's pods, their logs, the object's Events.
      { verb: 'list', resource: 'pods', namespace: ns },
      { verb: 'get', resource: 'pods', subresource: 'log', namespace: ns },
      { verb: 'list', resource: 'events', namespace: ns },
    ];
    const mayNot: Access[] = [
      { verb: 'create', group: 'batch', resource: 'jobs', namespace: ns },
      { verb: 'update', group: 'batch', resource: 'jobs', namespace: ns },
      { verb: 'patch', resource: 'pods', namespace: ns },
      { verb: 'get', resource: 'secrets', namespace: ns },
      { verb: 'list', resource: 'secrets' },
      { verb: 'create', resource: 'pods', subresource: 'exec', namespace: ns },
      { verb: 'list', resource: 'configmaps' },
      { verb: 'delete', group: 'apps', resource: 'deployments', namespace: ns },
      { verb: 'delete', group: 'example.com', resource: 'builds', namespace: ns },
      { verb: 'patch', group: 'kttl.dev', resource: 'ttlpolicies', namespace: ns },
      { verb: 'delete', group: 'kttl.dev', resource: 'ttlpolicies', namespace: ns },
      { verb: 'delete', resource: 'namespaces' },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: ns, name: 'other' },
      { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system' },
    ];
    for (const a of may) assert.equal(await canI(tb, ns, sa, a), true, `may ${show(a)}`);
    for (const a of mayNot) assert.equal(await canI(tb, ns, sa, a), false, `may not ${show(a)}`);
    console.log(`# SubjectAccessReview: ${may.length} allowed, ${mayNot.length} refused, as expected`);

    const kubeconfig = await tokenKubeconfig(tb, ns, sa);
    const args = [...chartRunArgs(ns, join(tb.state.dir, `${ns}.db`)), `--namespaces=${ns}`];
    // Ready needs every watch synced; a policy left by another test naming a kind outside the role
    // keeps that one unsynced, so wait for health and leadership instead.
    const k = await spawnController(tb, args, 'rbac-smoke', {
      kubeconfig,
      wait: '/healthz',
      forbiddenExpected: true, // asserted below: only kinds outside the role are refused
    });
    procs.push(k);
    await waitFor('leader', async () => scrape(await k.metrics(), 'kttl_leader') === 1, 20_000, 200);

    // A policy: read (list/watch) and its status written (patch on /status) by the leader.
    await apply(tb, [
      policy(ns, 'short', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        selector: { matchLabels: { 'rbac-test': 'policy' } },
        ttl: '1s',
      }),
    ]);
    const status = await waitFor(
      'policy status written',
      async () => {
        const p = JSON.parse(await tb.kubectl(['-n', ns, 'get', 'ttlpolicy', 'short', '-o', 'json'])) as {
          status?: { observedGeneration?: number; conditions?: Array<{ type: string; status: string }> };
        };
        const valid = p.status?.conditions?.find((x) => x.type === 'Valid');
        return valid?.status === 'True' ? p.status : undefined;
      },
      45_000,
      250,
    );
    assert.equal(status?.observedGeneration, 1);

    const create = (name: string, o: Partial<Parameters<typeof jobManifest>[0]> = {}) =>
      c.batch.createNamespacedJob({ namespace: ns, body: jobManifest({ name, namespace: ns, ...o }) });
    await create('annotated', { annotations: { 'kttl.dev/ttl': '1s' } });
    await create('by-policy', { labels: { 'rbac-test': 'policy' } });
    await create('no-ttl');
    await create('bad-ttl', { annotations: { 'kttl.dev/ttl': '5 minutes' } });

    await waitForJobDeletion(c, ns, 'annotated', 30_000);
    await waitForJobDeletion(c, ns, 'by-policy', 30_000);
    const event = await waitFor(
      'Warning event for the invalid TTL',
      async () => {
        const list = await c.core.listNamespacedEvent({
          namespace: ns,
          fieldSelector: 'involvedObject.name=bad-ttl,reason=InvalidTTL',
        });
        return list.items.find((e) => e.type === 'Warning');
      },
      20_000,
      200,
    );
    assert.match(event?.message ?? '', /5 minutes/);
    await waitForJob(c, ns, 'no-ttl', 'Complete');
    await waitForJob(c, ns, 'bad-ttl', 'Complete');
    await sleep(2000);
    for (const name of ['no-ttl', 'bad-ttl']) {
      const s = await jobExists(c, ns, name);
      assert.ok(s.exists && !s.deleting, `${name} kept`);
    }

    const m = await k.metrics();
    const forbidden = scrape(m, 'kttl_api_requests_total', { code: '403' });
    const deletes = scrape(m, 'kttl_api_requests_total', { verb: 'delete' });
    const requests = scrape(m, 'kttl_api_requests_total');
    console.log(
      `# as ${sa}: ${scrape(m, 'kttl_deletions_total')} deletions, ${requests} API requests, ${forbidden} refused (403)`,
    );
    assert.equal(scrape(m, 'kttl_deletions_total', { dry_run: 'false' }), 2);
    assert.equal(deletes, 2);
    assert.equal(scrape(m, 'kttl_invalid_ttl_total'), 1);
    const rules = clusterRole.rules as RoleRule[];
    const outside = assertOnlyOutsideRefused(k.logLines<LogLine>(), rules);
    if (outside.length === 0) {
      assert.equal(forbidden, 0, 'no request refused under the chart role');
      assert.equal(await k.health('/readyz'), 200);
    } else {
      console.log(
        `# refused only kinds outside the role, named by policies other tests left: ${outside.join(', ')}`,
      );
    }
    const lease = JSON.parse(await tb.kubectl(['-n', ns, 'get', 'lease', 'kttl', '-o', 'json'])) as {
      spec: { holderIdentity?: string };
    };
    assert.ok(lease.spec.holderIdentity, 'the Lease in its own namespace is held');
    await k.stop();
    assert.equal(k.proc.exitCode, 0, 'clean exit on SIGTERM');
  });

  test('a kind outside the role: one clear error naming verb and resource, no crash loop', async () => {
    const ns = await newNamespace(c, 'rbac-deny');
    const { sa } = await install(ns, 'deny');
    const group = 'rbac.kttl.test';
    const crdName = `widgets.${group}`;
    clusterObjects.push(`crd/${crdName}`);
    await apply(tb, [
      {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: crdName },
        spec: {
          group,
          scope: 'Namespaced',
          names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            },
          ],
        },
      },
      policy(ns, 'widgets', {
        resources: [
          {
            apiVersion: `${group}/v1`,
            kind: 'Widget',
            finished: { succeeded: { field: '.status.phase', values: ['Done'] } },
          },
        ],
        ttl: '1s',
      }),
    ]);
    await tb.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${crdName}`]);
    assert.equal(
      await canI(tb, ns, sa, { verb: 'list', group, resource: 'widgets' }),
      false,
      'the role does not cover widgets',
    );

    const kubeconfig = await tokenKubeconfig(tb, ns, sa);
    const args = [
      ...chartRunArgs(ns, join(tb.state.dir, `${ns}.db`)),
      `--namespaces=${ns}`,
      `--kinds=${group}/Widget`,
    ];
    const k = await spawnController(tb, args, 'rbac-deny', {
      kubeconfig,
      wait: '/healthz',
      forbiddenExpected: true, // the refusal is the test
    });
    procs.push(k);
    const isWidgetRefusal = (l: LogLine) =>
      typeof l.msg === 'string' && l.msg.startsWith('forbidden:') && l.msg.includes(crdName);
    const line = await waitFor(
      'the forbidden error in the log',
      async () => k.logLines<LogLine>().find(isWidgetRefusal),
      30_000,
      200,
    );
    console.log(`# log: ${line?.msg}`);
    assert.equal(line?.level, 50, 'logged at error level');
    assert.match(line?.msg ?? '', /^forbidden: cannot list\/watch widgets\.rbac\.kttl\.test\b/);
    assert.match(line?.msg ?? '', /grant list and watch/);
    assert.equal(k.logLines<LogLine>().filter(isWidgetRefusal).length, 1, 'said once, not at every retry');

    // Everything else keeps working, and the process stays up (no crash loop).
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: jobManifest({ name: 'still-works', namespace: ns, annotations: { 'kttl.dev/ttl': '1s' } }),
    });
    await waitForJobDeletion(c, ns, 'still-works', 30_000);
    await sleep(3000);
    assert.equal(k.proc.exitCode, null, 'still running');
    assert.equal(k.proc.signalCode, null, 'still running');
    assert.equal(await k.health('/healthz'), 200, '/healthz 200: the kubelet does not restart it');
    const ready = await k.health('/readyz');
    const m = await k.metrics();
    const refused = scrape(m, 'kttl_api_requests_total', { code: '403' });
    console.log(
      `# after the error: process up, /healthz 200, /readyz ${ready}, ${refused} requests refused (403)`,
    );
    assert.ok(refused >= 1);
    assert.equal(scrape(m, 'kttl_leader'), 1);

    // Granting the permission later is enough: the watch retries (with back-off) without a restart.
    clusterObjects.push(`clusterrole/${suffix}-widgets`, `clusterrolebinding/${suffix}-widgets`);
    await apply(tb, [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: `${suffix}-widgets` },
        rules: [{ apiGroups: [group], resources: ['widgets'], verbs: ['get', 'list', 'watch', 'delete'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: `${suffix}-widgets` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${suffix}-widgets` },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
      },
      {
        apiVersion: `${group}/v1`,
        kind: 'Widget',
        metadata: { name: 'done', namespace: ns },
        status: { phase: 'Done' },
      },
    ]);
    const t0 = Date.now();
    await waitFor(
      'the widget deleted once granted',
      async () => !(await tb.kubectl(['-n', ns, 'get', crdName, '-o', 'name'])).includes('/done'),
      90_000,
      500,
    );
    console.log(
      `# granted: the Widget was deleted ${((Date.now() - t0) / 1000).toFixed(1)} s later, same process`,
    );
    assert.equal(k.proc.exitCode, null);
    const others = refusedKinds(k.logLines<LogLine>()).filter((x) => x.group !== group);
    if (others.length === 0)
      await waitFor(
        'ready once every watch syncs',
        async () => (await k.health('/readyz')) === 200,
        10_000,
        200,
      );
  });
});
