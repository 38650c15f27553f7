// Policy authority (docs/operations.md "Policy authority"): the chart's ValidatingAdmissionPolicy —
// applied from its rendered output deploy/manifests/base/policy-authority.yaml (generated from the
// chart, checked up to date by test/unit/deploy/generated.test.ts), no webhook running — refuses a
// TTLPolicy / ClusterTTLPolicy whose author may not delete every kind it names. Authors are
// impersonated users (kubectl --as) with RBAC made here, on the real API server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loadDocs } from '../testbed/identities.ts';
import { REPO_ROOT, type Testbed } from '../testbed/testbed.ts';
import { clientsFor, installPolicyCrds, newNamespace, useTestbed, waitFor } from '../testbed/use.ts';

const run = promisify(execFile);
const MANIFEST = join(REPO_ROOT, 'deploy/manifests/base/policy-authority.yaml');
const RULE = /may only name kinds its author may delete/;

interface Answer {
  ok: boolean;
  out: string;
}

describe('policy authority: a policy cannot reach past its author (ValidatingAdmissionPolicy)', () => {
  let tb: Testbed;
  let ns: string;
  const tag = `pa-${process.pid}`;
  const cluster: string[] = [];

  /** kubectl as an impersonated user (the admin kubeconfig may impersonate). */
  async function as(user: string, args: string[], stdin?: object): Promise<Answer> {
    const p = run(tb.bins.kubectl, [`--kubeconfig=${tb.state.kubeconfig}`, `--as=${user}`, ...args]);
    if (stdin) p.child.stdin?.end(JSON.stringify(stdin));
    try {
      return { ok: true, out: (await p).stdout.trim() };
    } catch (err) {
      return { ok: false, out: String((err as { stderr?: string }).stderr ?? err).trim() };
    }
  }

  const policy = (name: string, kinds: Array<[string, string]>, extra: object = {}) => ({
    apiVersion: 'kttl.dev/v1alpha1',
    kind: 'TTLPolicy',
    metadata: { name, namespace: ns },
    spec: { resources: kinds.map(([apiVersion, kind]) => ({ apiVersion, kind })), ttl: '1h', ...extra },
  });
  const clusterPolicy = (name: string) => ({
    apiVersion: 'kttl.dev/v1alpha1',
    kind: 'ClusterTTLPolicy',
    metadata: { name },
    spec: { resources: [{ apiVersion: 'batch/v1', kind: 'Job' }], ttl: '1h' },
  });

  before(async () => {
    tb = await useTestbed();
    await installPolicyCrds(tb, join(REPO_ROOT, 'deploy/manifests/base/crds.yaml'));
    ns = await newNamespace(clientsFor(tb), 'authority');
    const docs = loadDocs(MANIFEST);
    assert.deepEqual(
      docs.map((d) => d.kind).filter((x) => x.startsWith('Validating')),
      ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'],
      'the chart renders the policy and its binding',
    );
    for (const d of docs)
      cluster.push(`${d.kind.toLowerCase()}.${d.apiVersion.split('/')[0]}/${d.metadata.name}`);
    await tb.kubectl(['apply', '-f', MANIFEST]);
    // RBAC: everyone here may write TTLPolicies in ns; alice may delete Jobs there; bob nothing;
    // carol is the namespace's admin (built-in `admin`) and may create ClusterTTLPolicies; dave may
    // delete Jobs cluster-wide and create ClusterTTLPolicies.
    const k = (args: string[]) => tb.kubectl(args);
    await k([
      '-n',
      ns,
      'create',
      'role',
      'policy-writer',
      '--verb=get,create,update,patch',
      '--resource=ttlpolicies.kttl.dev',
    ]);
    await k([
      '-n',
      ns,
      'create',
      'rolebinding',
      'policy-writer',
      '--role=policy-writer',
      '--user=alice',
      '--user=bob',
      '--user=carol',
    ]);
    await k(['-n', ns, 'create', 'role', 'job-deleter', '--verb=delete', '--resource=jobs.batch']);
    await k(['-n', ns, 'create', 'rolebinding', 'job-deleter', '--role=job-deleter', '--user=alice']);
    await k(['-n', ns, 'create', 'rolebinding', 'admin', '--clusterrole=admin', '--user=carol']);
    await k([
      'create',
      'clusterrole',
      `${tag}-cluster-policies`,
      '--verb=create',
      '--resource=clusterttlpolicies.kttl.dev',
    ]);
    await k([
      'create',
      'clusterrolebinding',
      `${tag}-cluster-policies`,
      `--clusterrole=${tag}-cluster-policies`,
      '--user=carol',
      '--user=dave',
    ]);
    await k(['create', 'clusterrole', `${tag}-job-deleter`, '--verb=delete', '--resource=jobs.batch']);
    await k([
      'create',
      'clusterrolebinding',
      `${tag}-job-deleter`,
      `--clusterrole=${tag}-job-deleter`,
      '--user=dave',
    ]);
    for (const n of ['cluster-policies', 'job-deleter'])
      cluster.push(`clusterrole/${tag}-${n}`, `clusterrolebinding/${tag}-${n}`);
    cluster.push(`clusterttlpolicy/${tag}-dave`);
    // The API server picks a new policy up within a second or so: wait until bob is refused.
    await waitFor(
      'the admission policy in force',
      async () => {
        const r = await as(
          'bob',
          ['create', '--dry-run=server', '-f', '-'],
          policy('probe', [['batch/v1', 'Job']]),
        );
        return !r.ok && RULE.test(r.out);
      },
      30_000,
      250,
    );
  });

  after(async () => {
    for (const o of cluster.reverse()) await tb.kubectl(['delete', '--ignore-not-found', o]).catch(() => '');
  });

  test('an author who may delete the kinds it names: created, and updated', async () => {
    const r = await as('alice', ['create', '-f', '-'], policy('jobs', [['batch/v1', 'Job']]));
    assert.ok(r.ok, r.out);
    const u = await as('alice', [
      '-n',
      ns,
      'patch',
      'ttlpolicy',
      'jobs',
      '--type=merge',
      '-p',
      '{"spec":{"ttl":"2h"}}',
    ]);
    assert.ok(u.ok, u.out);
    console.log(`# alice (may delete jobs in ${ns}): ${r.out}; ${u.out}`);
  });

  test('an author who may not: refused, naming the verb, the resource and the namespace', async () => {
    const r = await as('bob', ['create', '-f', '-'], policy('bobs', [['batch/v1', 'Job']]));
    assert.equal(r.ok, false);
    assert.match(
      r.out,
      new RegExp(`user bob may not delete jobs\\.batch in namespace ${ns}: a TTLPolicy ${RULE.source}`),
    );
    console.log(`# ${r.out}`);
    const pods = await as('alice', ['create', '-f', '-'], policy('pods', [['v1', 'Pod']]));
    assert.equal(pods.ok, false);
    assert.match(pods.out, new RegExp(`user alice may not delete pods in namespace ${ns}:`));
    const got = await tb.kubectl(['-n', ns, 'get', 'ttlpolicies', '-o', 'name']);
    assert.doesNotMatch(got, /bobs|\/pods/, 'nothing refused was stored');
  });

  test('an update that adds a kind its author may not delete: refused, the stored policy unchanged', async () => {
    const add = JSON.stringify({
      spec: {
        resources: [
          { apiVersion: 'batch/v1', kind: 'Job' },
          { apiVersion: 'v1', kind: 'Pod' },
        ],
      },
    });
    const r = await as('alice', ['-n', ns, 'patch', 'ttlpolicy', 'jobs', '--type=merge', '-p', add]);
    assert.equal(r.ok, false);
    assert.match(
      r.out,
      new RegExp(`user alice may not delete pods in namespace ${ns}: a TTLPolicy ${RULE.source}`),
    );
    console.log(`# ${r.out}`);
    const stored = JSON.parse(await tb.kubectl(['-n', ns, 'get', 'ttlpolicy', 'jobs', '-o', 'json']));
    assert.deepEqual(stored.spec.resources, [{ apiVersion: 'batch/v1', kind: 'Job' }]);
    // bob may not delete Jobs, so he may not edit the spec of a policy naming them either…
    const bobTtl = await as('bob', [
      '-n',
      ns,
      'patch',
      'ttlpolicy',
      'jobs',
      '--type=merge',
      '-p',
      '{"spec":{"ttl":"1s"}}',
    ]);
    assert.equal(bobTtl.ok, false);
    assert.match(bobTtl.out, /user bob may not delete jobs\.batch/);
    // …but a metadata-only edit (a label) names nothing new and is not checked.
    const label = await as('bob', ['-n', ns, 'label', 'ttlpolicy', 'jobs', 'team=a']);
    assert.ok(label.ok, label.out);
  });

  test('a ClusterTTLPolicy by a namespace admin: refused (cluster-wide delete needed); by a cluster-wide deleter: created', async () => {
    const r = await as('carol', ['create', '-f', '-'], clusterPolicy(`${tag}-carol`));
    assert.equal(r.ok, false);
    assert.match(
      r.out,
      new RegExp(`user carol may not delete jobs\\.batch cluster-wide: a ClusterTTLPolicy ${RULE.source}`),
    );
    console.log(`# ${r.out}`);
    // The same admin names Jobs in her own namespace freely.
    const own = await as(
      'carol',
      ['create', '-f', '-'],
      policy('carols', [
        ['batch/v1', 'Job'],
        ['v1', 'Pod'],
      ]),
    );
    assert.ok(own.ok, own.out);
    const d = await as('dave', ['create', '-f', '-'], clusterPolicy(`${tag}-dave`));
    assert.ok(d.ok, d.out);
  });

  test('a custom kind with no known resource name is refused, never guessed', async () => {
    const r = await as('carol', ['create', '-f', '-'], policy('builds', [['example.com/v1', 'Build']]));
    assert.equal(r.ok, false);
    assert.match(
      r.out,
      /kind example\.com\/Build has no resource name known to kttl's policy-authority check/,
    );
    assert.match(r.out, /controller\.kinds/);
    console.log(`# ${r.out}`);
  });
});
