// The archive's read API (src/archive/api/) on the real control plane, through kube-apiserver's
// real aggregation layer: the server runs on this host's loopback, registered as APIService
// v1alpha1.archive.kttl.dev via a network namespace (test/testbed/aggregated.ts). Records are put
// into a SQLite store directly; users are client-certificate identities with the built-in `view`
// ClusterRole in one namespace each, which the archive's aggregated ClusterRole extends as the
// chart's does. Every read goes kubectl → kube-apiserver → aggregator → kttl → SubjectAccessReview.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import pino from 'pino';
import { parse as parseYaml } from 'yaml';
import { type ArchiveApiServer, startArchiveApi } from '../../src/archive/api/server.ts';
import { PostgresArchiveStore } from '../../src/archive/postgres.ts';
import { SqliteArchiveStore } from '../../src/archive/sqlite.ts';
import type { ArchiveRecord } from '../../src/archive/types.ts';
import { systemClock } from '../../src/clock.ts';
import { KubeHttp } from '../../src/kube/http.ts';
import { type AggregatedRegistration, registerArchiveApi } from '../testbed/aggregated.ts';
import { issueClientCert, issueServingCert } from '../testbed/certs.ts';
import {
  archiveRunOptions,
  type InProcess,
  runOptions,
  spawnController,
  startInProcess,
} from '../testbed/controller.ts';
import { PostgresServer, postgresAvailable } from '../testbed/postgres.ts';
import { freePort, httpsStatus } from '../testbed/processes.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { kubeConfigFromFile, useTestbed, waitFor } from '../testbed/use.ts';

const GROUP = 'archive.kttl.dev';
const BASE = `/apis/${GROUP}/v1alpha1`;
const RUN = `${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const NS_A = `arch-a-${RUN}`;
const NS_B = `arch-b-${RUN}`;
const SERVICE_NS = 'kttl-aggregated';
const SERVICE = `archive-${RUN}`;
const MANY = 1000;
const T0 = Date.parse('2026-11-30T12:00:00Z');

// Bytes a log can hold that a careless path would change: no final newline, CRLF, tabs, UTF-8,
// a line that looks like JSON, trailing spaces.
const MAIN_LOG = 'step 1 loss=0.5\r\n\tépoch 2 — ünïcödé ✓\n{"level":"info","msg":"done"}\ntrailing   ';

let seq = 0;
function record(o: Partial<ArchiveRecord> & { namespace: string; i: number }): ArchiveRecord {
  const { i: _i, ...over } = o;
  const n = ++seq;
  const kind = o.kind ?? 'Job';
  const name = o.name ?? `train-${o.i}`;
  const uid = `${n.toString(16).padStart(8, '0')}-0000-4000-8000-${RUN.padEnd(12, '0').slice(0, 12)}`;
  const deletedAt = new Date(T0 - o.i * 1000).toISOString();
  return {
    cluster: 'testbed',
    apiVersion: kind === 'Job' ? 'batch/v1' : 'v1',
    kind,
    name,
    uid,
    resourceVersion: String(1000 + n),
    labels: o.labels ?? { app: 'train', shard: String(o.i % 4) },
    annotations: { 'kttl.dev/ttl': '1h' },
    ownerReferences: [],
    object: {
      apiVersion: kind === 'Job' ? 'batch/v1' : 'v1',
      kind,
      metadata: { name, namespace: o.namespace, uid, managedFields: [{ manager: 'x' }] },
      spec: {},
    },
    outcome: o.outcome ?? (o.i % 3 === 0 ? 'failed' : 'succeeded'),
    finishedAt: new Date(T0 - o.i * 1000 - 3_600_000).toISOString(),
    finishTimeSource: 'condition',
    ttlSeconds: 3600,
    ttlSource: 'annotation',
    ttlDetail: 'annotation kttl.dev/ttl=1h',
    deletedAt,
    reason: 'TTL 1h after succeeded expired',
    logs: o.logs ?? [],
    events: [],
    captureErrors: [],
    ...over,
  } as ArchiveRecord;
}

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, checked field by field
type Doc = Record<string, any>;

interface Out {
  code: number;
  stdout: Buffer;
  stderr: string;
}

let tb: Testbed;
let dir: string;
let kubectlBin: string;
const kubeconfigs: Record<string, string> = {};

function kubectlAs(user: string, args: string[]): Promise<Out> {
  return new Promise((resolve) => {
    execFile(
      kubectlBin,
      [`--kubeconfig=${kubeconfigs[user]}`, ...args],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr: stderr.toString() });
      },
    );
  });
}

async function ok(user: string, args: string[]): Promise<string> {
  const r = await kubectlAs(user, args);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} as ${user}: ${r.stderr}`);
  return r.stdout.toString();
}

function userKubeconfig(user: string, cert: string, key: string): string {
  const file = join(dir, `${user}.kubeconfig`);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: tb, cluster: {server: "${tb.state.server}", certificate-authority: "${tb.state.pki.caCert}"}}]
users: [{name: ${user}, user: {client-certificate: "${cert}", client-key: "${key}"}}]
contexts: [{name: ${user}, context: {cluster: tb, user: ${user}}}]
current-context: ${user}
`,
  );
  return file;
}

describe('archive API through the aggregation layer', () => {
  let store: SqliteArchiveStore;
  let api: ArchiveApiServer;
  let reg: AggregatedRegistration | undefined;
  let http: KubeHttp;
  const users = { alice: `alice-${RUN}`, bob: `bob-${RUN}`, carol: `carol-${RUN}` };
  let aRecords: ArchiveRecord[] = [];
  let withLog: ArchiveRecord;
  let twoPods: ArchiveRecord;

  before(async () => {
    tb = await useTestbed();
    kubectlBin = tb.bins.kubectl;
    dir = mkdtempSync(join(tmpdir(), 'kttl-archive-api-'));
    kubeconfigs.admin = tb.kubeconfigPath;
    for (const [k, name] of Object.entries(users)) {
      const c = issueClientCert(dir, tb.state.pki, k, `/CN=${name}`);
      kubeconfigs[k] = userKubeconfig(k, c.cert, c.key);
    }
    // The chart's aggregated ClusterRole: view (and edit/admin) gain read access to the archive.
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {
        name: `kttl-archive-view-${RUN}`,
        labels: {
          'rbac.authorization.k8s.io/aggregate-to-view': 'true',
          'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
          'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
        },
      },
      rules: [
        { apiGroups: [GROUP], resources: ['deletedobjects'], verbs: ['get', 'list'] },
        { apiGroups: [GROUP], resources: ['deletedobjects/log'], verbs: ['get'] },
      ],
    };
    const binding = (ns: string, user: string) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'archive-viewer', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    });
    const ns = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    await tb.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [ns(NS_A), ns(NS_B), role, binding(NS_A, users.alice), binding(NS_B, users.bob)],
      }),
    );
    // The aggregation controller fills `view` with the new role's rules.
    const deadline = Date.now() + 30_000;
    while (!(await tb.kubectl(['get', 'clusterrole', 'view', '-o', 'json'])).includes('deletedobjects/log')) {
      if (Date.now() > deadline) throw new Error('ClusterRole view never aggregated the archive role');
      await new Promise((r) => setTimeout(r, 200));
    }

    store = new SqliteArchiveStore(join(dir, 'archive.db'));
    await store.open();
    for (let i = 0; i < MANY; i++) {
      const r = record({
        namespace: NS_A,
        i: i + 10,
        ...(i % 10 === 0 ? { kind: 'Pod', name: `pod-${i}` } : {}),
      });
      aRecords.push(r);
    }
    withLog = record({
      namespace: NS_A,
      i: 1,
      name: 'with.log',
      logs: [
        {
          pod: 'with.log-abc',
          container: 'main',
          containerType: 'regular',
          text: MAIN_LOG,
          truncated: false,
        },
        {
          pod: 'with.log-abc',
          container: 'sidecar',
          containerType: 'regular',
          text: 'side\n',
          truncated: true,
        },
        {
          pod: 'with.log-abc',
          container: 'setup',
          containerType: 'init',
          text: '',
          truncated: false,
          error: 'never ran',
        },
      ],
    });
    twoPods = record({
      namespace: NS_A,
      i: 2,
      name: 'retried',
      logs: [
        { pod: 'retried-1', container: 'main', containerType: 'regular', text: 'first\n', truncated: false },
        { pod: 'retried-2', container: 'main', containerType: 'regular', text: 'second\n', truncated: false },
      ],
    });
    aRecords = [withLog, twoPods, ...aRecords];
    for (const r of aRecords) {
      await store.putPending(r);
      await store.markDeleted(r, r.deletedAt);
    }
    for (let i = 0; i < 5; i++) {
      const r = record({ namespace: NS_B, i: i + 5000, name: `b-job-${i}` });
      await store.putPending(r);
      await store.markDeleted(r, r.deletedAt);
    }

    // The server: its serving certificate for the Service's DNS name, signed by the testbed CA
    // (the APIService's caBundle); its own client is the admin kubeconfig.
    const serving = issueServingCert(
      dir,
      tb.state.pki,
      'archive-api',
      'kttl-archive-api',
      `DNS:${SERVICE}.${SERVICE_NS}.svc,IP:127.0.0.1`,
    );
    // The server's own identity: what the chart grants it (system:auth-delegator for
    // SubjectAccessReviews, the reader of kube-system/extension-apiserver-authentication), no more.
    const sa = `archive-api-${RUN}`;
    await tb.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          ns(SERVICE_NS),
          { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: SERVICE_NS } },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRoleBinding',
            metadata: { name: `${sa}-auth-delegator` },
            roleRef: {
              apiGroup: 'rbac.authorization.k8s.io',
              kind: 'ClusterRole',
              name: 'system:auth-delegator',
            },
            subjects: [{ kind: 'ServiceAccount', name: sa, namespace: SERVICE_NS }],
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: `${sa}-auth-reader`, namespace: 'kube-system' },
            roleRef: {
              apiGroup: 'rbac.authorization.k8s.io',
              kind: 'Role',
              name: 'extension-apiserver-authentication-reader',
            },
            subjects: [{ kind: 'ServiceAccount', name: sa, namespace: SERVICE_NS }],
          },
        ],
      }),
    );
    const identity = await tb.serviceAccountKubeconfig(SERVICE_NS, sa, '1h');
    http = new KubeHttp({ kubeConfig: kubeConfigFromFile(identity.path), clock: systemClock });
    api = await startArchiveApi({
      bindAddress: '127.0.0.1:0',
      tls: { certFile: serving.cert, keyFile: serving.key },
      certReloadMs: 200,
      store,
      http,
      logger: pino({ level: 'silent' }),
    });
    reg = await registerArchiveApi(tb, {
      port: api.port,
      serviceNamespace: SERVICE_NS,
      serviceName: SERVICE,
    });
  });

  after(async () => {
    await reg?.unregister();
    await api?.stop();
    await http?.close();
    await store?.close();
    await tb
      .kubectl(['delete', 'namespace', NS_A, NS_B, '--ignore-not-found', '--wait=false'])
      .catch(() => {});
    await tb
      .kubectl(['delete', 'clusterrole', `kttl-archive-view-${RUN}`, '--ignore-not-found'])
      .catch(() => {});
    await tb
      .kubectl(['delete', 'clusterrolebinding', `archive-api-${RUN}-auth-delegator`, '--ignore-not-found'])
      .catch(() => {});
    await tb
      .kubectl([
        '-n',
        'kube-system',
        'delete',
        'rolebinding',
        `archive-api-${RUN}-auth-reader`,
        '--ignore-not-found',
      ])
      .catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('discovery: kubectl api-resources lists deletedobjects', async () => {
    const out = await ok('admin', ['api-resources', `--api-group=${GROUP}`]);
    assert.match(out, /^deletedobjects\s+archive\.kttl\.dev\/v1alpha1\s+true\s+DeletedObject/m);
  });

  test('kubectl explain reads the OpenAPI the aggregator merged', async () => {
    // The aggregator fetches a new APIService's OpenAPI v3 shortly after it turns Available.
    let last = '';
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await kubectlAs('alice', [
        'explain',
        'deletedobjects.ttl',
        `--api-version=${GROUP}/v1alpha1`,
      ]);
      last = r.stdout.toString() + r.stderr;
      if (r.code === 0) break;
      if (Date.now() > deadline) assert.fail(`kubectl explain never worked: ${last}`);
      await new Promise((res) => setTimeout(res, 1000));
    }
    assert.match(last, /KIND:\s+DeletedObject/);
    assert.match(last, /seconds\s+<integer>/);
    assert.match(last, /source\s+<string>/);
  });

  test('kubectl get prints the table columns, newest first', async () => {
    const out = await ok('alice', ['get', 'deletedobjects', '-n', NS_A, '--chunk-size=0']);
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+KIND\s+OUTCOME\s+FINISHED\s+DELETED\s+TTL SOURCE$/);
    assert.equal(lines.length, 1 + aRecords.length);
    const first = lines[1]!.split(/\s+/);
    assert.equal(first[0], `job.with.log.${withLog.uid.slice(0, 8)}`);
    assert.equal(first[1], 'Job');
    assert.equal(first[2], 'succeeded');
    assert.equal(first[5], 'annotation');
    const wide = await ok('alice', ['get', 'deletedobjects', '-n', NS_A, '-o', 'wide', '--chunk-size=250']);
    assert.match(wide.split('\n')[0]!, /TTL SOURCE\s+TTL\s+CLUSTER\s+UID$/);
    assert.match(wide, new RegExp(`1h\\s+testbed\\s+${withLog.uid}`));
  });

  test('each user sees only the namespace RBAC gives them; elsewhere 403 from the API server path', async () => {
    const bob = await ok('bob', ['get', 'deletedobjects', '-n', NS_B, '-o', 'name']);
    assert.equal(bob.trim().split('\n').length, 5);
    assert.ok(bob.split('\n').every((l) => l === '' || l.startsWith(`deletedobject.${GROUP}/job.b-job-`)));

    const cases: Array<[string, string[], RegExp]> = [
      [
        'alice',
        ['-n', NS_B],
        new RegExp(
          `Error from server \\(Forbidden\\): deletedobjects\\.archive\\.kttl\\.dev is forbidden: User "${users.alice}" cannot list resource "deletedobjects" in API group "archive\\.kttl\\.dev" in the namespace "${NS_B}"`,
        ),
      ],
      [
        'alice',
        ['-A'],
        /cannot list resource "deletedobjects" in API group "archive\.kttl\.dev" at the cluster scope/,
      ],
      [
        'bob',
        ['-n', NS_A],
        new RegExp(`User "${users.bob}" cannot list resource "deletedobjects".*"${NS_A}"`),
      ],
      ['carol', ['-n', NS_A], new RegExp(`User "${users.carol}" cannot list`)],
    ];
    for (const [user, args, want] of cases) {
      const r = await kubectlAs(user, ['get', 'deletedobjects', ...args]);
      assert.notEqual(r.code, 0, `${user} ${args.join(' ')} must fail`);
      assert.match(r.stderr, want);
    }
    // A get by name and the log subresource are authorised too.
    const name = `job.with.log.${withLog.uid.slice(0, 8)}`;
    const r = await kubectlAs('bob', [
      'get',
      '--raw',
      `${BASE}/namespaces/${NS_A}/deletedobjects/${name}/log?container=main`,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden|forbidden/);
    const direct = await kubectlAs('bob', ['get', 'deletedobjects', name, '-n', NS_A]);
    assert.match(
      direct.stderr,
      new RegExp(
        `deletedobjects\\.archive\\.kttl\\.dev "${name.replace(/\./g, '\\.')}" is forbidden: User "${users.bob}" cannot get`,
      ),
    );
    // The admin (system:masters) sees every namespace.
    const all = await ok('admin', ['get', 'deletedobjects', '-A', '-o', 'name', '--chunk-size=500']);
    const names = all.trim().split('\n');
    assert.ok(names.length >= aRecords.length + 5);
  });

  test('kubectl get -o yaml: the summary items; by name: the full record without managedFields', async () => {
    const list = parseYaml(
      await ok('alice', ['get', 'deletedobjects', '-n', NS_A, '-o', 'yaml', '--chunk-size=200']),
    ) as {
      items: Array<Doc>;
    };
    assert.equal(list.items.length, aRecords.length);
    const item = list.items[0]!;
    assert.equal(item.apiVersion, `${GROUP}/v1alpha1`);
    assert.equal(item.kind, 'DeletedObject');
    assert.equal(item.metadata.namespace, NS_A);
    assert.equal(item.object.name, 'with.log');
    assert.equal(item.outcome, 'succeeded');
    assert.deepEqual(item.ttl, { seconds: 3600, source: 'annotation' });
    assert.equal(item.state, 'deleted');
    assert.equal(item.manifest, undefined);

    const name = `job.with.log.${withLog.uid.slice(0, 8)}`;
    const full = parseYaml(
      await ok('alice', ['get', 'deletedobjects', name, '-n', NS_A, '-o', 'yaml']),
    ) as Doc;
    assert.equal(full.metadata.name, name);
    assert.equal(full.metadata.uid, withLog.uid);
    assert.equal(full.reason, withLog.reason);
    assert.equal(full.ttl.detail, 'annotation kttl.dev/ttl=1h');
    assert.equal(full.manifest.metadata.managedFields, undefined);
    assert.equal(full.manifest.metadata.uid, withLog.uid);
    assert.deepEqual(
      full.logs.map((l: Record<string, unknown>) => [l.container, l.bytes, l.truncated]),
      [
        ['main', Buffer.byteLength(MAIN_LOG), false],
        ['sidecar', 5, true],
        ['setup', 0, false],
      ],
    );
    // The full uid names it too.
    await ok('alice', ['get', 'deletedobjects', `job.with.log.${withLog.uid}`, '-n', NS_A]);
    const missing = await kubectlAs('alice', ['get', 'deletedobjects', 'job.nope.12345678', '-n', NS_A]);
    assert.match(
      missing.stderr,
      /Error from server \(NotFound\): deletedobjects\.archive\.kttl\.dev "job\.nope\.12345678" not found/,
    );
  });

  test('the log subresource returns the archived bytes exactly', async () => {
    const name = `job.with.log.${withLog.uid.slice(0, 8)}`;
    const path = `${BASE}/namespaces/${NS_A}/deletedobjects/${name}/log`;
    const r = await kubectlAs('alice', ['get', '--raw', `${path}?container=main`]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.equals(Buffer.from(MAIN_LOG, 'utf8')), JSON.stringify(r.stdout.toString()));
    const side = await kubectlAs('alice', ['get', '--raw', `${path}?container=sidecar`]);
    assert.equal(side.stdout.toString(), 'side\n');
    const none = await kubectlAs('alice', ['get', '--raw', path]);
    assert.notEqual(none.code, 0);
    assert.match(
      none.stderr,
      /a container name must be specified for pod with\.log-abc, choose one of: \[main sidecar setup\]/,
    );
    const never = await kubectlAs('alice', ['get', '--raw', `${path}?container=setup`]);
    assert.match(never.stderr, /never ran/);
    const retried = `${BASE}/namespaces/${NS_A}/deletedobjects/job.retried.${twoPods.uid.slice(0, 8)}/log`;
    const which = await kubectlAs('alice', ['get', '--raw', retried]);
    assert.match(which.stderr, /a pod name must be specified .*\[retried-1 retried-2\]/);
    assert.equal(await ok('alice', ['get', '--raw', `${retried}?pod=retried-2`]), 'second\n');
  });

  test('pagination: limit/continue and kubectl --chunk-size walk every record once', async () => {
    const seen: string[] = [];
    let cont = '';
    let pages = 0;
    do {
      const q = `limit=100${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`;
      const page = JSON.parse(
        await ok('alice', ['get', '--raw', `${BASE}/namespaces/${NS_A}/deletedobjects?${q}`]),
      ) as {
        kind: string;
        metadata: { continue?: string };
        items: Array<{ metadata: { name: string } }>;
      };
      assert.equal(page.kind, 'DeletedObjectList');
      assert.ok(page.items.length <= 100);
      seen.push(...page.items.map((i) => i.metadata.name));
      cont = page.metadata.continue ?? '';
      pages++;
    } while (cont);
    assert.equal(pages, Math.ceil(aRecords.length / 100));
    assert.equal(seen.length, aRecords.length);
    assert.equal(new Set(seen).size, aRecords.length);
    const chunked = await ok('alice', [
      'get',
      'deletedobjects',
      '-n',
      NS_A,
      '--chunk-size=100',
      '-o',
      'name',
    ]);
    const names = chunked.trim().split('\n');
    assert.equal(names.length, aRecords.length);
    assert.equal(new Set(names).size, aRecords.length);
    // With a filter the server applies itself (a label selector), pages still end where they should.
    const shard = await ok('alice', [
      'get',
      'deletedobjects',
      '-n',
      NS_A,
      '-l',
      'shard=1',
      '--chunk-size=7',
      '-o',
      'name',
    ]);
    const want = aRecords.filter((r) => r.labels.shard === '1').length;
    assert.equal(shard.trim().split('\n').length, want);
    assert.equal(new Set(shard.trim().split('\n')).size, want);
    const bad = await kubectlAs('alice', [
      'get',
      '--raw',
      `${BASE}/namespaces/${NS_A}/deletedobjects?limit=5&continue=garbage`,
    ]);
    assert.match(bad.stderr, /BadRequest|400|invalid continue/i);
  });

  test('field selectors: object.kind, outcome, deletedAfter/deletedBefore, metadata.name', async () => {
    const count = async (selector: string, extra: string[] = []) => {
      const out = await ok('alice', [
        'get',
        'deletedobjects',
        '-n',
        NS_A,
        `--field-selector=${selector}`,
        '-o',
        'name',
        ...extra,
      ]);
      return out.trim() === '' ? 0 : out.trim().split('\n').length;
    };
    assert.equal(await count('object.kind=Pod'), aRecords.filter((r) => r.kind === 'Pod').length);
    assert.equal(await count('outcome=failed'), aRecords.filter((r) => r.outcome === 'failed').length);
    assert.equal(
      await count('object.kind=Job,outcome!=failed'),
      aRecords.filter((r) => r.kind === 'Job' && r.outcome !== 'failed').length,
    );
    const after = new Date(T0 - 100_000).toISOString();
    assert.equal(
      await count(`deletedAfter=${after}`),
      aRecords.filter((r) => Date.parse(r.deletedAt) >= T0 - 100_000).length,
    );
    const before = new Date(T0 - 50_000).toISOString();
    assert.equal(
      await count(`deletedAfter=${after},deletedBefore=${before}`),
      aRecords.filter((r) => Date.parse(r.deletedAt) >= T0 - 100_000 && Date.parse(r.deletedAt) < T0 - 50_000)
        .length,
    );
    assert.equal(await count(`metadata.name=job.retried.${twoPods.uid.slice(0, 8)}`), 1);
    assert.equal(await count('object.name=with.log'), 1);
    const bad = await kubectlAs('alice', [
      'get',
      'deletedobjects',
      '-n',
      NS_A,
      '--field-selector=spec.nope=1',
    ]);
    assert.match(bad.stderr, /field label not supported: spec\.nope/);
  });

  test('the server authorises each request itself (SubjectAccessReview), not only the API server', async () => {
    // kube-apiserver authorises the request before its aggregator proxies it; the server must not
    // rely on that (anyone holding a front-proxy certificate, or a misrouted Service, reaches it
    // directly). Here the front proxy's own certificate talks to the server, as the aggregator does.
    const direct = (path: string, user: string, groups: string[] = ['system:authenticated']) =>
      new Promise<{ code: number; body: string }>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: api.port,
            path,
            ca: readFileSync(tb.state.pki.caCert),
            servername: `${SERVICE}.${SERVICE_NS}.svc`,
            cert: readFileSync(tb.state.pki.proxyClientCert),
            key: readFileSync(tb.state.pki.proxyClientKey),
            headers: { 'x-remote-user': user, 'x-remote-group': groups },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const list = `${BASE}/namespaces/${NS_A}/deletedobjects?limit=3`;
    const mine = await direct(list, users.alice);
    assert.equal(mine.code, 200, mine.body);
    assert.equal((JSON.parse(mine.body) as { items: unknown[] }).items.length, 3);
    const theirs = await direct(`${BASE}/namespaces/${NS_B}/deletedobjects`, users.alice);
    assert.equal(theirs.code, 403);
    const st = JSON.parse(theirs.body) as {
      kind: string;
      reason: string;
      message: string;
      details: { kind: string };
    };
    assert.equal(st.kind, 'Status');
    assert.equal(st.reason, 'Forbidden');
    assert.equal(
      st.message,
      `deletedobjects.archive.kttl.dev is forbidden: User "${users.alice}" cannot list resource "deletedobjects" in API group "archive.kttl.dev" in the namespace "${NS_B}"`,
    );
    assert.equal((await direct(`${BASE}/deletedobjects`, users.alice)).code, 403);
    const logName = `job.with.log.${withLog.uid.slice(0, 8)}`;
    const log = await direct(
      `${BASE}/namespaces/${NS_A}/deletedobjects/${logName}/log?container=main`,
      users.bob,
    );
    assert.equal(log.code, 403);
    assert.match(log.body, /cannot get resource \\"deletedobjects\/log\\"/);
    assert.equal((await direct(list, users.carol)).code, 403);
    // Groups count: system:masters may read everything.
    assert.equal((await direct(`${BASE}/deletedobjects?limit=1`, 'someone', ['system:masters'])).code, 200);
  });

  test('the server answers nobody but the front proxy', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: api.port,
          path: `${BASE}/namespaces/${NS_A}/deletedobjects`,
          rejectUnauthorized: false,
          headers: { 'x-remote-user': 'system:admin', 'x-remote-group': 'system:masters' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 401);
    // A client certificate from the client CA (not the request-header CA) is refused as well.
    const admin = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: api.port,
          path: `${BASE}/namespaces/${NS_A}/deletedobjects`,
          rejectUnauthorized: false,
          cert: readFileSync(tb.state.pki.adminCert),
          key: readFileSync(tb.state.pki.adminKey),
          headers: { 'x-remote-user': 'system:admin', 'x-remote-group': 'system:masters' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', () => resolve(-1));
      req.end();
      void reject;
    });
    assert.ok(admin === 401 || admin === -1, `got ${admin}`);
  });

  test('SubjectAccessReviews are cached briefly', async () => {
    const before = api.authorizer.reviews;
    await ok('alice', ['get', 'deletedobjects', '-n', NS_A, '--chunk-size=500', '-o', 'name']);
    await ok('alice', ['get', 'deletedobjects', '-n', NS_A, '--chunk-size=500', '-o', 'name']);
    assert.ok(api.authorizer.reviews - before <= 1, `${api.authorizer.reviews - before} reviews`);
  });

  test('a renewed serving certificate is picked up without a restart', async () => {
    const servingSerial = () =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(
          {
            host: '127.0.0.1',
            port: api.port,
            servername: `${SERVICE}.${SERVICE_NS}.svc`,
            ca: readFileSync(tb.state.pki.caCert),
          },
          () => {
            resolve(socket.getPeerX509Certificate()?.serialNumber ?? '');
            socket.end();
          },
        );
        socket.on('error', reject);
      });
    const certFile = join(dir, 'archive-api.crt');
    const keyFile = join(dir, 'archive-api.key');
    const before = await servingSerial();
    assert.equal(before, new X509Certificate(readFileSync(certFile)).serialNumber);
    const renewed = issueServingCert(
      dir,
      tb.state.pki,
      'archive-api-renewed',
      'kttl-archive-api',
      `DNS:${SERVICE}.${SERVICE_NS}.svc,IP:127.0.0.1`,
    );
    const serial = new X509Certificate(readFileSync(renewed.cert)).serialNumber;
    assert.notEqual(serial, before);
    // The key first: for a moment the pair does not match, and the old one must keep serving.
    writeFileSync(keyFile, readFileSync(renewed.key));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await servingSerial(), before);
    writeFileSync(certFile, readFileSync(renewed.cert));
    await waitFor(
      'the renewed certificate served',
      async () => (await servingSerial()) === serial,
      10_000,
      100,
    );
    // The aggregator (new connections) accepts it too.
    await ok('alice', ['get', 'deletedobjects', '-n', NS_A, '--chunk-size=500', '-o', 'name']);
  });

  test('kttl run serves it: --archive-api-bind-address and the TLS flags, on the archive store', async () => {
    const port = await freePort();
    const serving = issueServingCert(
      dir,
      tb.state.pki,
      'run-api',
      'kttl-archive-api',
      `DNS:${SERVICE}-run.${SERVICE_NS}.svc`,
    );
    const kttl = await spawnController(
      tb,
      [
        '--leader-elect=false',
        `--namespaces=${NS_A}`,
        '--policies=false',
        '--archive=best-effort',
        `--archive-dsn=${join(dir, 'archive.db')}`,
        `--archive-api-bind-address=127.0.0.1:${port}`,
        `--archive-api-tls-cert-file=${serving.cert}`,
        `--archive-api-tls-private-key-file=${serving.key}`,
      ],
      'kttl-archive-api',
      { kubeconfig: tb.kubeconfigPath },
    );
    try {
      await reg?.unregister();
      reg = undefined;
      reg = await registerArchiveApi(tb, {
        port,
        serviceNamespace: SERVICE_NS,
        serviceName: `${SERVICE}-run`,
      });
      const out = await ok('alice', ['get', 'deletedobjects', '-n', NS_A, '-o', 'name', '--chunk-size=300']);
      assert.equal(out.trim().split('\n').length, aRecords.length);
      const denied = await kubectlAs('alice', ['get', 'deletedobjects', '-n', NS_B]);
      assert.match(denied.stderr, /Forbidden/);
      assert.ok(kttl.logLines().some((l) => l.msg === 'archive API serving' && l.port === port));
    } finally {
      await kttl.stop();
    }
  });

  test('replicas on PostgreSQL: a follower serves reads, and reads go on while the leader changes', {
    skip: !postgresAvailable() && 'no PostgreSQL',
  }, async (t) => {
    const t0 = Date.now();
    const mark = (what: string) => t.diagnostic(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const pgServer = await PostgresServer.start();
    const nsC = `arch-c-${RUN}`;
    const apps: InProcess[] = [];
    try {
      const dsn = await pgServer.createDatabase('archive_api');
      await tb.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: [
            { apiVersion: 'v1', kind: 'Namespace', metadata: { name: nsC } },
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'RoleBinding',
              metadata: { name: 'archive-viewer', namespace: nsC },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
              subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: users.alice }],
            },
          ],
        }),
      );
      const pgStore = new PostgresArchiveStore(dsn);
      await pgStore.open();
      for (let i = 0; i < 30; i++) {
        const r = record({ namespace: nsC, i: 7000 + i, name: `c-job-${i}` });
        await pgStore.putPending(r);
        await pgStore.markDeleted(r, r.deletedAt);
      }
      await pgStore.close();

      const serving = issueServingCert(
        dir,
        tb.state.pki,
        'replica-api',
        'kttl-archive-api',
        `DNS:${SERVICE}-r.${SERVICE_NS}.svc,IP:127.0.0.1`,
      );
      const leaseName = `kttl-${RUN}`;
      const start = async (identity: string) => {
        const port = await freePort();
        const app = await startInProcess(
          tb,
          runOptions([nsC], {
            // No policy CRDs on this testbed: do not wait for a policy list.
            policies: false,
            leaderElect: true,
            leaderElectNamespace: nsC,
            leaderElectName: leaseName,
            identity,
            leaseDurationMs: 4_000,
            renewDeadlineMs: 3_000,
            retryPeriodMs: 500,
            archive: archiveRunOptions(dsn),
            archiveApi: {
              bindAddress: `127.0.0.1:${port}`,
              tls: { certFile: serving.cert, keyFile: serving.key },
            },
          }),
          undefined,
          undefined,
          tb.kubeconfigPath,
        );
        apps.push(app);
        await waitFor(
          `${identity}'s archive API`,
          async () =>
            (await httpsStatus(`https://127.0.0.1:${port}/readyz`, readFileSync(tb.state.pki.caCert))) ===
            200,
          30_000,
        );
        return port;
      };
      const holder = async () =>
        (
          await tb
            .kubectl(['-n', nsC, 'get', 'lease', leaseName, '-o', 'jsonpath={.spec.holderIdentity}'])
            .catch(() => '')
        ).trim();
      await start('r1');
      mark('r1 started');
      await waitFor('r1 leads', async () => (await holder()) === 'r1', 30_000);
      const followerPort = await start('r2');
      mark('r2 started');
      assert.equal(await holder(), 'r1');

      // The APIService now points at the follower.
      await reg?.unregister();
      reg = await registerArchiveApi(tb, {
        port: followerPort,
        serviceNamespace: SERVICE_NS,
        serviceName: `${SERVICE}-r`,
      });
      const read = async () => {
        const out = await ok('alice', ['get', 'deletedobjects', '-n', nsC, '-o', 'name']);
        assert.equal(out.trim().split('\n').length, 30);
      };
      await read();
      mark('registered at the follower, read');
      // The leader goes; reads go on, before, during and after r2 takes over.
      let reads = 0;
      let stopReading = false;
      const reader = (async () => {
        while (!stopReading) {
          await read();
          reads++;
        }
      })();
      await apps[0]!.stop();
      mark('r1 stopped');
      await waitFor('r2 leads', async () => (await holder()) === 'r2', 30_000);
      mark('r2 leads');
      await read();
      stopReading = true;
      await reader;
      assert.ok(reads >= 2, `${reads} reads during the change`);
    } finally {
      for (const a of apps.slice(1)) await a.stop();
      await pgServer.destroy();
      await tb.kubectl(['delete', 'namespace', nsC, '--ignore-not-found', '--wait=false']).catch(() => {});
    }
  });
});
