// A namespace-only install (docs/operations.md "Namespace-only install"): the chart rendered with
// scope=namespace holds only namespaced objects (Roles and RoleBindings, no ClusterRole); its
// ServiceAccount, Roles and RoleBindings are applied to the real control plane and the built kttl
// runs with the chart's own `kttl run` arguments as that ServiceAccount, through a counting proxy
// (test/testbed/fault-proxy.ts). The full smoke passes — finished Jobs with a TTL deleted, a
// TTLPolicy honoured (status written), an invalid TTL kept with a Warning — while every request it
// makes stays inside its namespaces (or is discovery/version) and none is refused (0 × 403).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { BIN, buildCli } from '../testbed/cli.ts';
import { applyObjects as apply, tokenKubeconfig } from '../testbed/clients.ts';
import { type ChildController, scrape, spawnController } from '../testbed/controller.ts';
import { type FaultProxy, startFaultProxy } from '../testbed/fault-proxy.ts';
import { type K8sObject, loadDocs } from '../testbed/identities.ts';
import { jobExists, waitForJobDeletion } from '../testbed/jobs.ts';
import { binaries, REPO_ROOT, type Testbed } from '../testbed/testbed.ts';
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

const run = promisify(execFile);
const TEAM_ADMIN = 'team-admin';
const CHART = join(REPO_ROOT, 'deploy/helm/kttl');
const helm = binaries().helm;
const skip = existsSync(helm) ? false : `helm missing at ${helm}: run \`bash hack/testbed/build --helm\``;

/** Requests that need no namespace: discovery and /version (granted to every authenticated user). */
const DISCOVERY = /^\/(version|api|apis)(\/[^/]+(\/[^/]+)?)?\/?$/;

interface Seen {
  method: string;
  path: string;
  status: number;
}

describe('namespace-only install (scope: namespace): Roles only, requests only inside its namespaces', {
  skip,
}, () => {
  let tb: Testbed;
  let c: Clients;
  let proxy: FaultProxy;
  let k: ChildController | undefined;
  const cluster: string[] = [];

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    if (!existsSync(BIN)) buildCli();
    await installPolicyCrds(tb, join(REPO_ROOT, 'deploy/manifests/base/crds.yaml'));
    proxy = await startFaultProxy(tb);
    // What a cluster admin installs once: the CRDs (above) and the policy roles aggregated to admin.
    const roles = loadDocs(join(REPO_ROOT, 'deploy/manifests/base/policy-authority.yaml')).filter(
      (d) => d.kind === 'ClusterRole',
    );
    assert.equal(roles.length, 2, 'the policy view and edit roles');
    for (const r of roles) r.metadata.name = `${r.metadata.name}-${process.pid}`;
    await apply(tb, roles);
    for (const r of roles) cluster.push(`clusterrole/${r.metadata.name}`);
  });

  after(async () => {
    await k?.stop().catch(() => undefined);
    await proxy?.stop();
    for (const o of cluster) await tb.kubectl(['delete', '--ignore-not-found', o]).catch(() => '');
  });

  test('render, apply, run the smoke as the ServiceAccount: 0 refused, nothing outside its namespaces', async () => {
    const home = await newNamespace(c, 'nsscope');
    const other = await newNamespace(c, 'nsscope-b');
    const outside = await newNamespace(c, 'nsscope-out');
    const { stdout } = await run(
      helm,
      [
        'template',
        'kttl',
        CHART,
        '--namespace',
        home,
        '--set',
        'scope=namespace',
        '--set',
        'webhook.enabled=false',
        '--set',
        'archive.api.enabled=false',
        '--set',
        `controller.namespaces={${home},${other}}`,
        // The built-in custom kinds' CRDs are not installed here: the namespace admin holds no rights
        // on them, and Kubernetes refuses a Role granting what its creator does not hold.
        '--set',
        'controller.builtinKinds=false',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    const docs = parseAllDocuments(stdout)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((d): d is K8sObject => !!d?.kind);
    const kinds = docs.map((d) => d.kind);
    assert.ok(
      !kinds.some((x) => /^Cluster|Webhook|APIService|Namespace$/.test(x)),
      `no cluster-scoped object: ${kinds}`,
    );
    const identity = docs.filter((d) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(d.kind));
    const roles = identity
      .filter((d) => d.kind === 'Role')
      .map((d) => `${d.metadata.namespace}/${d.metadata.name}`);
    assert.deepEqual(roles.sort(), [`${home}/kttl`, `${home}/kttl-leader-election`, `${other}/kttl`].sort());
    // Applied by the namespaces' admin (built-in `admin` in both, impersonated): no cluster-wide
    // right is needed, given the policy roles a cluster admin installed once (base/policy-authority.yaml).
    for (const ns of [home, other])
      await tb.kubectl([
        '-n',
        ns,
        'create',
        'rolebinding',
        'team-admin',
        '--clusterrole=admin',
        `--user=${TEAM_ADMIN}`,
      ]);
    await waitFor(
      'admin aggregates the TTLPolicy roles',
      async () =>
        (
          await tb
            .kubectl([
              'auth',
              'can-i',
              'patch',
              'ttlpolicies.kttl.dev',
              '--subresource=status',
              '-n',
              home,
              `--as=${TEAM_ADMIN}`,
            ])
            .catch(() => 'no')
        ).trim() === 'yes',
      20_000,
      200,
    );
    await tb.kubectl(
      [`--as=${TEAM_ADMIN}`, 'apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: identity }),
    );
    console.log(
      `# rendered: ${kinds.join(', ')}; ${identity.length} (ServiceAccount, Roles, RoleBindings) applied as ${TEAM_ADMIN}, admin of the two namespaces only`,
    );

    // The chart's own arguments, for a local process (the archive's SQLite file in the state dir).
    const dep = docs.find((d) => d.kind === 'Deployment');
    const spec = dep?.spec as { template: { spec: { containers: Array<{ args: string[] }> } } };
    const args = spec.template.spec.containers[0]!.args;
    assert.equal(args[0], 'run');
    assert.ok(args.includes(`--namespaces=${home},${other}`) && args.includes('--cluster-policies=false'));
    const runArgs = args
      .slice(1)
      .filter((a) => !/^--(metrics-bind-address|health-probe-bind-address)=/.test(a))
      .map((a) => a.replace('$(KTTL_POD_NAMESPACE)', home))
      .map((a) => (a.startsWith('--archive-dsn=') ? `--archive-dsn=${join(tb.state.dir, `${home}.db`)}` : a));

    // Every answer the proxy passes on: method, path, status.
    const seen: Seen[] = [];
    proxy.setFault({
      rewriteHeaders: (req, status) => {
        seen.push({ method: req.method, path: req.path, status });
      },
    });
    const kubeconfig = proxy.kubeconfig(await tokenKubeconfig(tb, home, 'kttl'));
    k = await spawnController(tb, runArgs, 'namespace-scope', { kubeconfig });
    await waitFor('leader', async () => scrape(await k!.metrics(), 'kttl_leader') === 1, 20_000, 200);

    // A TTLPolicy in the other watched namespace: read and its status written by the leader.
    await apply(tb, [
      {
        apiVersion: 'kttl.dev/v1alpha1',
        kind: 'TTLPolicy',
        metadata: { name: 'short', namespace: other },
        spec: {
          resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
          selector: { matchLabels: { app: 'p' } },
          ttl: '1s',
        },
      },
    ]);
    await waitFor(
      'policy status Valid',
      async () => {
        const p = JSON.parse(await tb.kubectl(['-n', other, 'get', 'ttlpolicy', 'short', '-o', 'json']));
        return p.status?.conditions?.some(
          (x: { type: string; status: string }) => x.type === 'Valid' && x.status === 'True',
        );
      },
      45_000,
      250,
    );
    const create = (ns: string, name: string, o: Partial<Parameters<typeof jobManifest>[0]> = {}) =>
      c.batch.createNamespacedJob({ namespace: ns, body: jobManifest({ name, namespace: ns, ...o }) });
    await create(home, 'annotated', { annotations: { 'kttl.dev/ttl': '1s' } });
    await create(other, 'by-policy', { labels: { app: 'p' } });
    await create(home, 'no-ttl');
    await create(home, 'bad-ttl', { annotations: { 'kttl.dev/ttl': '5 minutes' } });
    await create(outside, 'not-watched', { annotations: { 'kttl.dev/ttl': '1s' } });
    await waitForJobDeletion(c, home, 'annotated', 30_000);
    await waitForJobDeletion(c, other, 'by-policy', 30_000);
    await waitFor(
      'Warning event for the invalid TTL',
      async () =>
        (
          await c.core.listNamespacedEvent({
            namespace: home,
            fieldSelector: 'involvedObject.name=bad-ttl,reason=InvalidTTL',
          })
        ).items.length > 0,
      20_000,
      200,
    );
    await waitForJob(c, outside, 'not-watched', 'Complete');
    await waitForJob(c, home, 'no-ttl', 'Complete');
    await sleep(2000);
    for (const [ns, name] of [
      [home, 'no-ttl'],
      [home, 'bad-ttl'],
      [outside, 'not-watched'],
    ] as const) {
      const s = await jobExists(c, ns, name);
      assert.ok(s.exists && !s.deleting, `${ns}/${name} kept`);
    }
    const lease = JSON.parse(await tb.kubectl(['-n', home, 'get', 'lease', 'kttl', '-o', 'json']));
    assert.ok(lease.spec.holderIdentity, 'the Lease in its own namespace is held');

    const m = await k.metrics();
    assert.equal(scrape(m, 'kttl_deletions_total', { dry_run: 'false' }), 2);
    assert.equal(scrape(m, 'kttl_api_requests_total', { code: '403' }), 0, 'kttl counted no refusal');
    await k.stop(); // also fails on any 403 kttl counted
    assert.equal(k.proc.exitCode, 0, 'clean exit on SIGTERM');
    proxy.setFault(null);

    const mine = new RegExp(`^/(api/v1|apis/[^/]+/[^/]+)/namespaces/(${home}|${other})/`);
    const strays = seen.filter((s) => !mine.test(s.path) && !DISCOVERY.test(s.path));
    const refused = seen.filter((s) => s.status === 403);
    const paths = new Set(seen.map((s) => `${s.method} ${s.path.replace(/\/[^/]+$/, '/…')}`));
    console.log(
      `# through the proxy: ${seen.length} requests, ${refused.length} refused (403), ${strays.length} outside ${home}/${other} and discovery; ${paths.size} distinct request shapes`,
    );
    assert.deepEqual(
      strays.map((s) => `${s.method} ${s.path} ${s.status}`),
      [],
      'no request outside its namespaces',
    );
    assert.deepEqual(
      refused.map((s) => `${s.method} ${s.path}`),
      [],
      'no request refused',
    );
    assert.ok(
      seen.some((s) => s.method === 'DELETE' && s.path.startsWith(`/apis/batch/v1/namespaces/${home}/jobs/`)),
    );
    assert.ok(seen.some((s) => s.path === `/apis/kttl.dev/v1alpha1/namespaces/${other}/ttlpolicies`));
  });

  test('the kustomize overlay deploy/manifests/namespace moves whole into another namespace', async () => {
    const dir = mkdtempSync(join(tb.state.dir, 'kustomize-'));
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `namespace: team-x\nresources:\n  - ${relative(dir, join(REPO_ROOT, 'deploy/manifests/namespace'))}\n`,
    );
    const docs = parseAllDocuments(await tb.kubectl(['kustomize', dir]))
      .map((d) => d.toJS() as K8sObject | null)
      .filter((d): d is K8sObject => !!d?.kind);
    assert.ok(docs.length >= 6, `${docs.length} objects`);
    for (const d of docs) assert.equal(d.metadata.namespace, 'team-x', `${d.kind}/${d.metadata.name}`);
    for (const b of docs.filter((d) => d.kind === 'RoleBinding'))
      assert.deepEqual(
        (b.subjects as Array<{ namespace: string }>).map((x) => x.namespace),
        ['team-x'],
      );
    const dep = docs.find((d) => d.kind === 'Deployment')!;
    const args = (dep.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec
      .containers[0]!.args;
    // Its own namespace from the downward API: watched, and the Lease's.
    assert.ok(args.includes('--namespaces=$(KTTL_POD_NAMESPACE)'), args.join(' '));
    assert.ok(args.includes('--leader-elect-resource-namespace=$(KTTL_POD_NAMESPACE)'));
    assert.ok(args.includes('--cluster-policies=false'));
    console.log(`# kustomize namespace: team-x → ${docs.map((d) => d.kind).join(', ')}, all in team-x`);
  });

  test('the chart refuses scope=namespace with a cluster-scoped feature on, naming the value to set', async () => {
    const r = await run(helm, ['template', 'kttl', CHART, '--set', 'scope=namespace']).then(
      () => '',
      (err: { stderr?: string }) => String(err.stderr),
    );
    assert.match(r, /scope: namespace needs webhook\.enabled=false/);
  });
});
