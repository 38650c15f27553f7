// `kttl history` and `kttl logs`, run as the BUILT bundle with a user's own kubeconfig against the
// real control plane: kttl → kube-apiserver → the aggregation layer → the archive API server
// (src/archive/api/, registered through test/testbed/aggregated.ts) → a SubjectAccessReview for that
// user. Records are written into a SQLite store directly; the user holds the built-in `view` in one
// namespace, which the chart's aggregated ClusterRole (deploy/rbac/rules.yaml archiveReaders)
// extends to the archive.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { readRbacSource } from '../../scripts/gen-deploy.ts';
import { type ArchiveApiServer, startArchiveApi } from '../../src/archive/api/server.ts';
import { SqliteArchiveStore } from '../../src/archive/sqlite.ts';
import type { ArchiveRecord } from '../../src/archive/types.ts';
import { NOT_AVAILABLE } from '../../src/cli/shared/history-api.ts';
import { systemClock } from '../../src/clock.ts';
import { KubeHttp } from '../../src/kube/http.ts';
import { type AggregatedRegistration, registerArchiveApi } from '../testbed/aggregated.ts';
import { issueServingCert } from '../testbed/certs.ts';
import { BIN, buildCli } from '../testbed/cli.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  jobManifest,
  kubeConfigFromFile,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const RUN = `${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const NS_A = `hist-a-${RUN}`;
const NS_B = `hist-b-${RUN}`;
const SERVICE_NS = 'kttl-aggregated';
const SERVICE = `history-${RUN}`;
const NOW = Date.now();
// Bytes a careless path would change: CRLF, a tab, UTF-8, a JSON-looking line, no final newline.
const MAIN_LOG =
  'epoch 1 loss=0.51\r\n\tépoch 2 — ünïcödé ✓\n{"level":"error","msg":"OOM"}\nlast line, no newline  ';

interface Out {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** The bundle as a user would run it; stdout kept as bytes. */
function kttlAs(kubeconfig: string, args: string[]): Promise<Out> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, '--kubeconfig', kubeconfig, ...args], {
      env: { ...process.env, KUBECONFIG: '', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
    );
  });
}

function okText(r: Out): string {
  assert.equal(r.code, 0, `exit 0 expected; stderr: ${r.stderr}`);
  return r.stdout.toString();
}

/** Exit code, nothing on stdout, one line on stderr. */
function oneLineError(r: Out, code: number, line: string | RegExp): void {
  assert.equal(r.code, code, `exit ${code} expected; stderr: ${r.stderr}; stdout: ${r.stdout}`);
  assert.equal(r.stdout.length, 0, 'nothing on stdout');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  if (typeof line === 'string') assert.equal(lines[0], line);
  else assert.match(lines[0]!, line);
}

/** Table rows: cells are at least 3 spaces apart (src/cli/shared/output.ts table). */
function rowsOf(text: string): string[][] {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/ {3,}/));
}

let seq = 0;
function record(o: {
  namespace: string;
  name: string;
  minutesAgo: number;
  kind?: 'Job' | 'Pod';
  outcome?: 'succeeded' | 'failed';
  labels?: Record<string, string>;
  logs?: ArchiveRecord['logs'];
  events?: ArchiveRecord['events'];
}): ArchiveRecord {
  const kind = o.kind ?? 'Job';
  const apiVersion = kind === 'Job' ? 'batch/v1' : 'v1';
  const uid = `${(++seq).toString(16).padStart(8, '0')}-1111-4000-8000-${RUN.padEnd(12, '0').slice(0, 12)}`;
  const deletedAt = new Date(NOW - o.minutesAgo * 60_000).toISOString();
  return {
    cluster: 'testbed',
    apiVersion,
    kind,
    namespace: o.namespace,
    name: o.name,
    uid,
    resourceVersion: String(500 + seq),
    labels: o.labels ?? {},
    annotations: { 'kttl.dev/ttl': '1h' },
    ownerReferences: [],
    object: { apiVersion, kind, metadata: { name: o.name, namespace: o.namespace, uid }, spec: {} },
    outcome: o.outcome ?? 'succeeded',
    finishedAt: new Date(NOW - o.minutesAgo * 60_000 - 3_600_000).toISOString(),
    finishTimeSource: 'condition',
    ttlSeconds: 3600,
    ttlSource: 'annotation',
    ttlDetail: 'annotation kttl.dev/ttl=1h',
    deletedAt,
    reason: 'TTL 1h (annotation kttl.dev/ttl=1h) expired',
    logs: o.logs ?? [],
    events: o.events ?? [],
    captureErrors: [],
  };
}

describe('kttl history and kttl logs through the aggregated archive API', () => {
  let tb: Testbed;
  let c: Clients;
  let dir: string;
  let store: SqliteArchiveStore;
  let api: ArchiveApiServer | undefined;
  let reg: AggregatedRegistration | undefined;
  let http: KubeHttp;
  let alice: string;
  const role = `kttl-archive-view-${RUN}`;
  let x: ArchiveRecord;
  let xOlder: ArchiveRecord;
  let order: ArchiveRecord[];

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    buildCli();
    dir = mkdtempSync(join(tmpdir(), 'kttl-cli-history-'));
    const user = `hist-alice-${RUN}`;
    alice = tb.userKubeconfig(user);
    // The chart's aggregated role, from the chart's RBAC source.
    const rules = readRbacSource().archiveReaders.flatMap((b) => b.rules);
    await tb.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS_A } },
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS_B } },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRole',
            metadata: {
              name: role,
              labels: Object.fromEntries(
                ['view', 'edit', 'admin'].map((r) => [`rbac.authorization.k8s.io/aggregate-to-${r}`, 'true']),
              ),
            },
            rules,
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: 'viewer', namespace: NS_A },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
            subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
          },
        ],
      }),
    );
    await waitFor(
      'view aggregates the archive role',
      async () =>
        (await tb.kubectl(['get', 'clusterrole', 'view', '-o', 'json'])).includes('deletedobjects/log'),
      30_000,
      200,
    );

    store = new SqliteArchiveStore(join(dir, 'archive.db'));
    await store.open();
    x = record({
      namespace: NS_A,
      name: 'x',
      minutesAgo: 1,
      outcome: 'failed',
      logs: [
        { pod: 'x-7xk2p', container: 'main', containerType: 'regular', text: MAIN_LOG, truncated: false },
        { pod: 'x-7xk2p', container: 'sidecar', containerType: 'regular', text: 'side\n', truncated: true },
      ],
      events: [
        {
          involvedKind: 'Job',
          involvedName: 'x',
          type: 'Warning',
          reason: 'BackoffLimitExceeded',
          message: 'Job has reached the specified backoff limit',
          count: 1,
          firstTime: new Date(NOW - 62 * 60_000).toISOString(),
          lastTime: new Date(NOW - 62 * 60_000).toISOString(),
          source: 'job-controller',
        },
      ],
    });
    const y = record({ namespace: NS_A, name: 'y', minutesAgo: 5 });
    const pod = record({ namespace: NS_A, name: 'p-1', minutesAgo: 10, kind: 'Pod' });
    const ml = record({ namespace: NS_A, name: 'ml-train', minutesAgo: 20, labels: { team: 'ml' } });
    // An earlier job/x (another uid: the name was reused).
    xOlder = record({ namespace: NS_A, name: 'x', minutesAgo: 40 });
    order = [x, y, pod, ml, xOlder];
    const others = [record({ namespace: NS_B, name: 'b-1', minutesAgo: 2 })];
    for (const r of [...order, ...others]) {
      await store.putPending(r);
      await store.markDeleted(r, r.deletedAt);
    }
    // A Job that still exists: nothing archived yet.
    await c.batch.createNamespacedJob({
      namespace: NS_A,
      body: jobManifest({ name: 'still', namespace: NS_A }),
    });

    const serving = issueServingCert(
      dir,
      tb.state.pki,
      'archive-api',
      'kttl-archive-api',
      `DNS:${SERVICE}.${SERVICE_NS}.svc,IP:127.0.0.1`,
    );
    http = new KubeHttp({ kubeConfig: kubeConfigFromFile(tb.kubeconfigPath), clock: systemClock });
    api = await startArchiveApi({
      bindAddress: '127.0.0.1:0',
      tls: { certFile: serving.cert, keyFile: serving.key },
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
    await reg?.unregister().catch(() => undefined);
    await api?.stop();
    await http?.close();
    await store?.close();
    await tb
      ?.kubectl(['delete', 'namespace', NS_A, NS_B, '--ignore-not-found', '--wait=false'])
      .catch(() => undefined);
    await tb?.kubectl(['delete', 'clusterrole', role, '--ignore-not-found']).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('kttl history -n A as a user with view in A: newest first, with the columns', async () => {
    const table = okText(await kttlAs(alice, ['history', '-n', NS_A]));
    console.log(table.replace(/^/gm, '#   '));
    const rows = rowsOf(table);
    assert.deepEqual(rows[0], ['NAME', 'KIND', 'OUTCOME', 'FINISHED', 'DELETED', 'TTL SOURCE']);
    assert.deepEqual(
      rows.slice(1).map((r) => `${r[1]}/${r[0]}`),
      order.map((r) => `${r.kind}/${r.name}`),
    );
    // DELETED: a minute and the seconds this file has run so far.
    assert.deepEqual(rows[1]!.slice(0, 4), ['x', 'Job', 'Failed', '61m']);
    assert.match(rows[1]![4]!, /^\d+s$/);
    assert.equal(rows[1]![5], 'annotation');
    assert.deepEqual(rows[3], ['p-1', 'Pod', 'Succeeded', '70m', '10m', 'annotation']);
    console.log(`# kttl history -n ${NS_A} as ${'view holder'}: ${rows.length - 1} records, newest first`);

    // Kind, outcome, time and label filters (the API's field and label selectors).
    const names = async (args: string[]) =>
      rowsOf(okText(await kttlAs(alice, ['history', ...args, '-n', NS_A])))
        .slice(1)
        .map((r) => r[0]);
    assert.deepEqual(await names(['jobs']), ['x', 'y', 'ml-train', 'x']);
    assert.deepEqual(await names(['pods']), ['p-1']);
    assert.deepEqual(await names(['--outcome', 'failed']), ['x']);
    assert.deepEqual(await names(['--since', '3m']), ['x']);
    assert.deepEqual(await names(['-l', 'team=ml']), ['ml-train']);
    const wide = rowsOf(okText(await kttlAs(alice, ['history', 'job', '-n', NS_A, '-o', 'wide'])));
    assert.deepEqual(wide[0]!.slice(6), ['TTL', 'STATE', 'CLUSTER', 'UID', 'RECORD']);
    assert.deepEqual(wide[1]!.slice(6), ['1h', 'deleted', 'testbed', x.uid, `job.x.${x.uid.slice(0, 8)}`]);
    const doc = JSON.parse(okText(await kttlAs(alice, ['history', '-n', NS_A, '-o', 'json'])));
    assert.equal(doc.kind, 'DeletedObjectList');
    assert.deepEqual(
      doc.items.map((i: { object: { uid: string } }) => i.object.uid),
      order.map((r) => r.uid),
    );
    const none = await kttlAs(alice, ['history', 'pods', '-n', NS_A, '--outcome', 'failed']);
    assert.equal(none.code, 0);
    assert.equal(none.stdout.length, 0);
    assert.equal(none.stderr.trim(), `No deleted pods archived in namespace "${NS_A}".`);
  });

  test('kttl history job/x renders the newest record of job/x', async () => {
    const r = await kttlAs(alice, ['history', 'job/x', '-n', NS_A]);
    const text = okText(r);
    console.log(text.replace(/^/gm, '#   '));
    const lines = text.split('\n');
    assert.equal(lines[0], `Job ${NS_A}/x  (job/x, uid ${x.uid}, deleted)`);
    assert.match(
      text,
      new RegExp(
        `^Record: +job\\.x\\.${x.uid.slice(0, 8)} \\(cluster testbed, batch/v1, resourceVersion ${x.resourceVersion}\\)$`,
        'm',
      ),
    );
    assert.match(text, /^Outcome: +Failed$/m);
    assert.match(text, /^Finished: +\S+Z \(61m ago\), from the lastTransitionTime of its finish condition$/m);
    assert.match(text, /^TTL: +1h from annotation \(annotation kttl\.dev\/ttl=1h\)$/m);
    assert.match(text, /^Deleted: +\S+Z \(\d+s ago\)$/m);
    assert.match(text, /^ {2}x-7xk2p +main +regular +\d+B +-$/m);
    assert.match(text, /^ {2}x-7xk2p +sidecar +regular +5B +truncated: the last lines only$/m);
    assert.match(
      text,
      /^ {2}62m +Warning +BackoffLimitExceeded +job\/x +Job has reached the specified backoff limit$/m,
    );
    assert.equal(r.stderr.trim(), '(1 older record of job/x: kttl history job -o wide)');
    const yaml = okText(await kttlAs(alice, ['history', 'job/x', '-n', NS_A, '-o', 'yaml']));
    assert.match(yaml, /^kind: DeletedObject$/m);
    assert.match(yaml, new RegExp(`^ {2}uid: ${x.uid}$`, 'm'));
    oneLineError(
      await kttlAs(alice, ['history', 'job/nope', '-n', NS_A]),
      1,
      `error: no archived record of job/nope in namespace "${NS_A}"`,
    );
  });

  test('kttl logs job/x -c main prints the archived lines byte for byte', async () => {
    const r = await kttlAs(alice, ['logs', 'job/x', '-c', 'main', '-n', NS_A]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stdout.equals(Buffer.from(MAIN_LOG, 'utf8')),
      `bytes differ: ${JSON.stringify(r.stdout.toString())}`,
    );
    assert.equal(r.stderr, '');
    const side = await kttlAs(alice, ['logs', 'job/x', '-c', 'sidecar', '--pod', 'x-7xk2p', '-n', NS_A]);
    assert.equal(side.stdout.toString(), 'side\n');
    assert.match(side.stderr, /^note: the log of x-7xk2p\/sidecar was cut: these are its last lines only\n$/);
    oneLineError(
      await kttlAs(alice, ['logs', 'job/x', '-n', NS_A]),
      1,
      'error: pod x-7xk2p of job/x had 2 containers: choose one with -c (main, sidecar)',
    );
    console.log(`# kttl logs job/x -c main: ${r.stdout.length} bytes, identical to the archived text`);
  });

  test('another namespace: exit 2 with one line naming the verb and the resource', async () => {
    oneLineError(
      await kttlAs(alice, ['history', '-n', NS_B]),
      2,
      `error: forbidden: cannot list deletedobjects.archive.kttl.dev in namespace "${NS_B}"`,
    );
    oneLineError(
      await kttlAs(alice, ['history', '-A']),
      2,
      'error: forbidden: cannot list deletedobjects.archive.kttl.dev in all namespaces',
    );
    oneLineError(
      await kttlAs(alice, ['logs', 'job/b-1', '-n', NS_B]),
      2,
      `error: forbidden: cannot list deletedobjects.archive.kttl.dev in namespace "${NS_B}"`,
    );
  });

  test('an object that still exists: kttl logs says so and how to read its live logs', async () => {
    oneLineError(
      await kttlAs(alice, ['logs', 'job/still', '-n', NS_A]),
      1,
      `error: job/still still exists in namespace "${NS_A}": kttl archives its logs when it deletes it; read them live with: kubectl logs job/still -n ${NS_A}`,
    );
    oneLineError(
      await kttlAs(alice, ['history', 'job/still', '-n', NS_A]),
      1,
      `error: no archived record of job/still in namespace "${NS_A}": it still exists (kttl explain job/still -n ${NS_A})`,
    );
  });

  test('without the APIService: the archive API is not available (exit 2, one line)', async () => {
    await reg!.unregister();
    reg = undefined;
    let last: Out | undefined;
    await waitFor(
      'the group gone from the API server',
      async () => {
        last = await kttlAs(alice, ['history', '-n', NS_A]);
        return last.code === 2 && last.stderr.includes('not available');
      },
      30_000,
      500,
    );
    oneLineError(last!, 2, `error: ${NOT_AVAILABLE}`);
  });
});
