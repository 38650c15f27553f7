// The kttl CLI, run as the BUILT bundle (dist/kttl.mjs) in a child process against the real
// control plane: list, explain, set-ttl, delete, submit, plan, completion, output formats, EPIPE.
// Error paths (RBAC, unreachable, TLS, usage) and the interactive prompt: cli-errors.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT, type Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  type JobOptions,
  jobManifest,
  newNamespace,
  sleep,
  TEST_LABELS,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';
import { assertError, BIN, type Run, runCli } from './helpers/cli.ts';

let tb: Testbed;
let c: Clients;

/** Runs `node dist/kttl.mjs --kubeconfig <testbed> ...args`; stdin is a pipe (not a terminal). */
function kttl(
  args: string[],
  o: { kubeconfig?: string | null; env?: Record<string, string> } = {},
): Promise<Run> {
  return runCli(args, o.kubeconfig === undefined ? tb.kubeconfigPath : o.kubeconfig, o.env);
}

function ok(r: Run): Run {
  assert.equal(r.code, 0, `exit 0 expected; stderr: ${r.stderr}; stdout: ${r.stdout}`);
  return r;
}

/** Table rows split on the 3-space column gaps, keyed by the NAME column. */
function parseTable(text: string): { head: string[]; rows: Map<string, Record<string, string>> } {
  const lines = text.trimEnd().split('\n');
  const header = lines[0] ?? '';
  // Column starts come from the header: cells may contain single spaces ("EXPIRES IN").
  const starts: number[] = [];
  const head: string[] = [];
  for (const m of header.matchAll(/\S+(?: \S+)*/g)) {
    starts.push(m.index);
    head.push(m[0]);
  }
  const rows = new Map<string, Record<string, string>>();
  for (const line of lines.slice(1)) {
    const rec: Record<string, string> = {};
    head.forEach((h, i) => {
      rec[h] = line.slice(starts[i], starts[i + 1] ?? line.length).trim();
    });
    rows.set(rec.NAME ?? '', rec);
  }
  return { head, rows };
}

interface ListItem {
  name: string;
  namespace: string;
  kind: string;
  status: string;
  outcome: string | null;
  finishedAt: string | null;
  ttl: string;
  ttlSeconds: number | null;
  source: string;
  state: string;
  expiresIn: string;
  expiresAt: string | null;
  expiresInSeconds: number | null;
}

async function listJson(
  args: string[],
): Promise<{ now: string; clock: string; namespace: string | null; items: ListItem[] }> {
  const r = ok(await kttl(['list', ...args, '-o', 'json']));
  return JSON.parse(r.stdout);
}

async function createJob(o: JobOptions): Promise<void> {
  await c.batch.createNamespacedJob({ namespace: o.namespace, body: jobManifest(o) });
}

async function finishMs(ns: string, name: string): Promise<number> {
  const job = await c.batch.readNamespacedJob({ name, namespace: ns });
  const cond = job.status?.conditions?.find(
    (x) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True',
  );
  assert.ok(cond?.lastTransitionTime, `${name} has a finish condition`);
  return new Date(cond.lastTransitionTime).getTime();
}

async function jobGone(ns: string, name: string): Promise<boolean> {
  try {
    await c.batch.readNamespacedJob({ name, namespace: ns });
    return false;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return true;
    throw err;
  }
}

async function dropFinalizers(ns: string, name: string): Promise<void> {
  // A JSON patch (client-node's default for patch calls).
  await c.batch.patchNamespacedJob({
    name,
    namespace: ns,
    body: [{ op: 'remove', path: '/metadata/finalizers' }],
  });
}

/** A ConfigMap owned by `owner` (blockOwnerDeletion) and held by a finalizer. */
async function blockingDependent(
  ns: string,
  name: string,
  owner: { apiVersion: string; kind: string; name: string; uid: string },
): Promise<void> {
  await c.core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: {
        name,
        finalizers: ['kttl.test/hold'],
        ownerReferences: [{ ...owner, blockOwnerDeletion: true }],
      },
    },
  });
}

async function release(ns: string, name: string): Promise<void> {
  await c.core.patchNamespacedConfigMap({
    name,
    namespace: ns,
    body: [{ op: 'remove', path: '/metadata/finalizers' }],
  });
}

const HOUR = 3_600_000;

before(async () => {
  tb = await useTestbed();
  c = clientsFor(tb);
  // The tests run the bundle users get, built from this tree.
  execFileSync(process.execPath, ['scripts/build.ts'], { cwd: REPO_ROOT, stdio: 'ignore' });
});

describe('kttl list / explain / plan on a namespace of sample Jobs', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli');
    await Promise.all([
      createJob({ name: 'native-5m', namespace: ns, ttlSecondsAfterFinished: 300, labels: { team: 'a' } }),
      createJob({
        name: 'failed-7d',
        namespace: ns,
        labels: { team: 'a' },
        annotations: { 'kttl.dev/ttl': '2h', 'kttl.dev/ttl-failed': '7d' },
        podLabels: { [TEST_LABELS.fail]: 'true' },
      }),
      createJob({
        name: 'running',
        namespace: ns,
        annotations: { 'kttl.dev/ttl-succeeded': '10m', 'kttl.dev/ttl-failed': '7d' },
        podLabels: { [TEST_LABELS.run]: 'true' },
      }),
      createJob({ name: 'typo', namespace: ns, annotations: { 'kttl.dev/ttl': '5 minutes' } }),
      createJob({
        name: 'kept',
        namespace: ns,
        ttlSecondsAfterFinished: 0,
        annotations: { 'kttl.dev/keep': 'true' },
      }),
      createJob({
        name: 'hook',
        namespace: ns,
        annotations: { 'kots.io/hook-delete-policy': 'hook-succeeded' },
      }),
      createJob({ name: 'no-ttl', namespace: ns }),
    ]);
    await Promise.all([
      waitForJob(c, ns, 'native-5m', 'Complete'),
      waitForJob(c, ns, 'failed-7d', 'Failed'),
      waitForJob(c, ns, 'typo', 'Complete'),
      waitForJob(c, ns, 'kept', 'Complete'),
      waitForJob(c, ns, 'hook', 'Complete'),
      waitForJob(c, ns, 'no-ttl', 'Complete'),
      waitFor(
        'running pod Running',
        async () =>
          (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=running' })).items[0]
            ?.status?.phase === 'Running',
        30_000,
      ),
    ]);
  });

  test('list -o json: status, TTL, source and expiry of each Job, by the same rules as the controller', async () => {
    const doc = await listJson(['-n', ns]);
    assert.equal(doc.clock, 'server', 'judged on the API server clock (Date header)');
    assert.equal(doc.namespace, ns);
    const by = new Map(doc.items.map((i) => [i.name, i]));
    assert.equal(by.size, 7);
    const now = Date.parse(doc.now);

    const native = by.get('native-5m')!;
    assert.equal(native.status, 'Succeeded');
    assert.equal(native.source, 'field');
    assert.equal(native.ttl, '5m');
    assert.equal(native.ttlSeconds, 300);
    assert.equal(native.state, 'pending');
    assert.equal(Date.parse(native.expiresAt!), (await finishMs(ns, 'native-5m')) + 300_000);
    assert.ok(
      native.expiresInSeconds! > 240 && native.expiresInSeconds! <= 301,
      `${native.expiresInSeconds}`,
    );

    const failed = by.get('failed-7d')!;
    assert.deepEqual(
      [failed.status, failed.outcome, failed.source, failed.ttl],
      ['Failed', 'failed', 'annotation', '1w'],
    );
    assert.equal(Date.parse(failed.expiresAt!), (await finishMs(ns, 'failed-7d')) + 7 * 24 * HOUR);

    const running = by.get('running')!;
    assert.deepEqual(
      [running.status, running.ttl, running.source, running.state, running.expiresIn],
      ['Running', '10m/1w', 'annotation', 'not-finished', '-'],
    );
    assert.equal(running.finishedAt, null);

    const typo = by.get('typo')!;
    assert.deepEqual(
      [typo.source, typo.state, typo.expiresIn, typo.ttl],
      ['invalid', 'invalid', 'invalid', '"5 minutes"'],
    );
    const kept = by.get('kept')!;
    assert.deepEqual([kept.source, kept.state, kept.expiresIn], ['keep', 'keep', 'kept']);
    const hook = by.get('hook')!;
    assert.deepEqual([hook.source, hook.ttl, hook.state, hook.expiresIn], ['hook', '0s', 'expired', 'now']);
    assert.ok(Date.parse(hook.expiresAt!) <= now);
    const none = by.get('no-ttl')!;
    assert.deepEqual([none.source, none.state, none.expiresIn], ['none', 'no-ttl', '-']);

    // Sorted by expiry: due first, then by time left, then those that never expire.
    assert.deepEqual(
      doc.items.slice(0, 3).map((i) => i.name),
      ['hook', 'native-5m', 'failed-7d'],
    );
  });

  test('list: the kubectl-style table, sorted by expiry, without colour when not on a terminal', async () => {
    const r = ok(await kttl(['list', '-n', ns]));
    assert.ok(!r.stdout.includes('\u001b['), 'no ANSI colour on a pipe');
    const { head, rows } = parseTable(r.stdout);
    assert.deepEqual(head, ['NAME', 'KIND', 'STATUS', 'FINISHED', 'TTL', 'SOURCE', 'EXPIRES IN']);
    assert.deepEqual([...rows.keys()].slice(0, 3), ['hook', 'native-5m', 'failed-7d']);
    const hook = rows.get('hook')!;
    assert.deepEqual(
      [hook.KIND, hook.STATUS, hook.TTL, hook.SOURCE, hook['EXPIRES IN']],
      ['Job', 'Succeeded', '0s', 'hook', 'now'],
    );
    assert.match(hook.FINISHED!, /^\d+s$/, 'age like kubectl');
    assert.match(rows.get('native-5m')!['EXPIRES IN']!, /^[1-5]m(\d+s)?$/);
    assert.equal(rows.get('failed-7d')!['EXPIRES IN'], '6d23h');
    assert.deepEqual(
      [
        rows.get('running')!.STATUS,
        rows.get('running')!.FINISHED,
        rows.get('running')!.TTL,
        rows.get('running')!['EXPIRES IN'],
      ],
      ['Running', '-', '10m/1w', '-'],
    );
    assert.deepEqual([rows.get('typo')!.SOURCE, rows.get('typo')!['EXPIRES IN']], ['invalid', 'invalid']);
    assert.equal(rows.get('kept')!['EXPIRES IN'], 'kept');
    assert.deepEqual([rows.get('no-ttl')!.SOURCE, rows.get('no-ttl')!['EXPIRES IN']], ['none', '-']);
  });

  test('list -A adds NAMESPACE; -o wide adds times and the rule; -o yaml holds the same data as json', async () => {
    const all = ok(await kttl(['list', '-A', '-l', 'team=a']));
    const t = parseTable(all.stdout);
    assert.equal(t.head[0], 'NAMESPACE');
    assert.equal(t.rows.get('native-5m')?.NAMESPACE, ns);

    const wide = parseTable(ok(await kttl(['list', '-n', ns, '-o', 'wide'])).stdout);
    assert.deepEqual(wide.head.slice(-3), ['FINISHED AT', 'EXPIRES AT', 'RULE']);
    assert.equal(wide.rows.get('failed-7d')!.RULE, 'annotation kttl.dev/ttl-failed=7d');
    assert.equal(
      wide.rows.get('native-5m')!['EXPIRES AT'],
      new Date((await finishMs(ns, 'native-5m')) + 300_000).toISOString().replace('.000Z', 'Z'),
    );

    const y = parseYaml(ok(await kttl(['list', '-n', ns, '-o', 'yaml'])).stdout) as { items: ListItem[] };
    assert.deepEqual(y.items.map((i) => i.name).sort(), [
      'failed-7d',
      'hook',
      'kept',
      'native-5m',
      'no-ttl',
      'running',
      'typo',
    ]);
  });

  test('list filters: --finished, --running, -l; pods with the pods kind', async () => {
    const finished = await listJson(['-n', ns, '--finished']);
    assert.equal(finished.items.length, 6);
    assert.ok(finished.items.every((i) => i.status !== 'Running'));
    const running = await listJson(['-n', ns, '--running']);
    assert.deepEqual(
      running.items.map((i) => i.name),
      ['running'],
    );
    const team = await listJson(['-n', ns, '-l', 'team=a']);
    assert.deepEqual(team.items.map((i) => i.name).sort(), ['failed-7d', 'native-5m']);

    const pods = await listJson(['pods', '-n', ns]);
    assert.equal(pods.items.length, 7);
    assert.ok(pods.items.every((i) => i.kind === 'Pod'));
    const failedPod = pods.items.find((i) => i.name.startsWith('failed-7d-'));
    assert.equal(failedPod?.status, 'Failed');
    assert.ok(failedPod?.finishedAt, 'a Pod finish time from its container finishedAt');

    const both = await listJson(['jobs,pods', '-n', ns]);
    assert.equal(both.items.length, 14);

    assertError(
      await kttl(['list', '-n', ns, '--finished', '--running']),
      1,
      'error: --finished and --running exclude each other',
    );
    assertError(
      await kttl(['list', 'cronjobs', '-n', ns]),
      1,
      'error: unknown kind "cronjobs" (use jobs or pods)',
    );
    assertError(await kttl(['list', '-n', ns, '-l', 'a b']), 1, /^error: invalid label selector "a b": /);
    const empty = await kttl(['list', '-n', ns, '-l', 'team=nobody']);
    assert.equal(empty.code, 0);
    assert.equal(empty.stdout, '');
    assert.equal(empty.stderr.trim(), `No jobs found in namespace "${ns}".`);
  });

  test('the namespace: -n, else the kubeconfig context namespace, else default', async () => {
    const withNs = join(tb.state.dir, `cli-ctx-${process.pid}.kubeconfig`);
    const text = readFileSync(tb.kubeconfigPath, 'utf8');
    assert.match(text, /context: \{cluster: testbed, user: (\S+)\}/);
    writeFileSync(
      withNs,
      text.replace(
        /context: \{cluster: testbed, user: (\S+)\}/,
        `context: {cluster: testbed, user: $1, namespace: ${ns}}`,
      ),
    );
    const fromContext = await listJson([]);
    assert.equal(fromContext.namespace, 'default', 'no context namespace: default');
    const r = JSON.parse(ok(await kttl(['list', '-o', 'json'], { kubeconfig: withNs })).stdout);
    assert.equal(r.namespace, ns);
    assert.equal(r.items.length, 7);
    // $KUBECONFIG is honoured when --kubeconfig is not given.
    const viaEnv = JSON.parse(
      ok(await kttl(['list', '-o', 'json'], { kubeconfig: null, env: { KUBECONFIG: withNs } })).stdout,
    );
    assert.equal(viaEnv.namespace, ns);
    const flag = JSON.parse(
      ok(await kttl(['list', '-o', 'json', '-n', 'default'], { kubeconfig: withNs })).stdout,
    );
    assert.equal(flag.namespace, 'default', '-n wins over the context');
  });

  test('explain: each candidate with its value, the winner and why, the exact deletion time on the server clock', async () => {
    const r = ok(await kttl(['explain', 'job/failed-7d', '-n', ns, '-o', 'json']));
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.status, 'Failed');
    assert.equal(doc.finish.timeSource, 'condition');
    assert.equal(Date.parse(doc.finish.at), await finishMs(ns, 'failed-7d'));
    const cand = (where: string) => doc.candidates.find((x: { where: string }) => x.where === where);
    assert.equal(cand('annotation kttl.dev/ttl-failed').value, '7d');
    assert.equal(cand('annotation kttl.dev/ttl-failed').results.failed.verdict, 'wins');
    assert.equal(cand('annotation kttl.dev/ttl').value, '2h');
    assert.equal(cand('annotation kttl.dev/ttl').results.failed.verdict, 'shadowed');
    assert.equal(cand('annotation kttl.dev/keep').results.failed.verdict, 'not set');
    assert.equal(cand('annotation kttl.dev/ttl-succeeded').results.failed.verdict, 'not set');
    assert.match(doc.why, /outcome-specific annotation wins over kttl\.dev\/ttl/);
    assert.equal(doc.deletion.state, 'pending');
    assert.equal(Date.parse(doc.deletion.at), (await finishMs(ns, 'failed-7d')) + 7 * 24 * HOUR);
    assert.equal(doc.clock.source, 'server');
    assert.ok(Math.abs(Date.parse(doc.clock.now) - Date.now()) < 5000);
    assert.deepEqual(doc.blockers, [`TTL not expired yet: 6d23h left`]);

    const text = ok(await kttl(['explain', 'job/failed-7d', '-n', ns])).stdout;
    assert.match(text, /annotation kttl\.dev\/ttl-failed\s+"7d"\s+WINS: ttl 1w/);
    assert.match(text, /annotation kttl\.dev\/ttl\s+"2h"\s+shadowed \(ttl 2h\)/);
    assert.match(text, /^Deletion: {3}at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 6d23h\)$/m);
    assert.match(text, /^Clock: .*the API server's clock \(Date header of the GET response/m);
  });

  test('explain: what blocks deletion (not finished, keep, invalid value, finalizers) and what does not', async () => {
    const doc = async (name: string) =>
      JSON.parse(ok(await kttl(['explain', `job/${name}`, '-n', ns, '-o', 'json'])).stdout);
    const running = await doc('running');
    assert.equal(running.deletion.state, 'not-finished');
    assert.match(running.blockers[0], /^not finished \(Running\)/);
    assert.equal(
      running.candidates.find((x: { where: string }) => x.where === 'annotation kttl.dev/ttl-succeeded')
        .results.succeeded.verdict,
      'wins',
    );
    assert.equal(
      running.candidates.find((x: { where: string }) => x.where === 'annotation kttl.dev/ttl-succeeded')
        .results.failed.verdict,
      'does not apply',
    );
    assert.match(running.deletion.text, /succeeded: 10m after it finishes; failed: 1w after it finishes/);

    const kept = await doc('kept');
    assert.deepEqual(kept.blockers, ['keep: annotation kttl.dev/keep=true']);
    assert.equal(
      kept.candidates.find((x: { source: string }) => x.source === 'field').results.succeeded.verdict,
      'shadowed',
    );

    const typo = await doc('typo');
    assert.deepEqual(typo.blockers, [
      'invalid value: annotation kttl.dev/ttl: invalid duration "5 minutes": must not contain spaces (write e.g. "1h30m")',
    ]);
    assert.equal(
      typo.candidates.find((x: { where: string }) => x.where === 'annotation kttl.dev/ttl').results.succeeded
        .verdict,
      'wins',
    );

    const hook = await doc('hook');
    assert.equal(hook.deletion.state, 'expired');
    assert.deepEqual(hook.blockers, []);
    assert.match(
      ok(await kttl(['explain', 'job/hook', '-n', ns])).stdout,
      /^Blocked by: nothing: the TTL has expired$/m,
    );

    const none = await doc('no-ttl');
    assert.deepEqual(none.blockers, ['no TTL applies']);

    // Finalizers: the delete would be accepted but the object stays until they are removed.
    // (In a namespace of its own: the sample namespace stays as the other tests expect it.)
    const ns2 = await newNamespace(c, 'cli-held');
    await createJob({
      name: 'held',
      namespace: ns2,
      ttlSecondsAfterFinished: 0,
      finalizers: ['kttl.test/hold'],
    });
    try {
      await waitForJob(c, ns2, 'held', 'Complete');
      const held = JSON.parse(ok(await kttl(['explain', 'job/held', '-n', ns2, '-o', 'json'])).stdout);
      assert.deepEqual(held.blockers, [
        'finalizers kttl.test/hold: the object stays until they are removed (kttl never removes finalizers)',
      ]);
    } finally {
      await dropFinalizers(ns2, 'held');
    }
  });

  test('explain: a missing object, an unknown kind and a bare name are user errors (exit 1)', async () => {
    assertError(
      await kttl(['explain', 'job/nope', '-n', ns]),
      1,
      `error: jobs.batch "nope" not found in namespace "${ns}"`,
    );
    assertError(
      await kttl(['explain', 'pod/nope', '-n', ns]),
      1,
      `error: pods "nope" not found in namespace "${ns}"`,
    );
    assertError(
      await kttl(['explain', 'deployment/x', '-n', ns]),
      1,
      'error: unknown kind "deployment" (use jobs or pods)',
    );
    assertError(
      await kttl(['explain', 'nope', '-n', ns]),
      1,
      'error: expected KIND/NAME, got "nope" (e.g. job/nope or pod/nope)',
    );
  });

  test('plan: what goes in the window, grouped by namespace and TTL source; read-only', async () => {
    const doc = JSON.parse(ok(await kttl(['plan', 'jobs', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(doc.total, 2, 'hook (due now) and native-5m (5m) within the default 1h');
    assert.deepEqual(
      doc.groups.map((g: { source: string; count: number }) => [g.source, g.count]),
      [
        ['field', 1],
        ['hook', 1],
      ],
    );
    const field = doc.groups.find((g: { source: string }) => g.source === 'field');
    assert.equal(Date.parse(field.earliest), (await finishMs(ns, 'native-5m')) + 300_000);
    assert.equal(field.objects[0].name, 'native-5m');
    assert.deepEqual(
      [
        doc.notPlanned.running,
        doc.notPlanned.kept,
        doc.notPlanned.invalid,
        doc.notPlanned.noTtl,
        doc.notPlanned.later,
      ],
      [1, 1, 1, 1, 1],
    );
    assert.equal(Date.parse(doc.window.until) - Date.parse(doc.window.from), HOUR);

    const week = JSON.parse(ok(await kttl(['plan', '-n', ns, '--until', '8d', '-o', 'json'])).stdout);
    assert.equal(week.total, 3);
    const since = JSON.parse(
      ok(await kttl(['plan', '-n', ns, '--since', '1h', '--until', '8d', '-o', 'json'])).stdout,
    );
    assert.deepEqual(
      since.groups.map((g: { objects: Array<{ name: string }> }) => g.objects[0]?.name),
      ['failed-7d'],
    );

    const table = ok(await kttl(['plan', 'jobs', '-n', ns]));
    const t = parseTable(table.stdout.split('\n').slice(0, 3).join('\n'));
    assert.deepEqual(t.head, ['NAMESPACE', 'SOURCE', 'COUNT', 'EARLIEST', 'LATEST', 'FIRST']);
    assert.match(
      table.stdout,
      new RegExp(`^2 objects \\(jobs\\) to delete in namespace "${ns}" in now \\.\\. now\\+1h `, 'm'),
    );
    assert.match(
      table.stderr,
      /^not in the plan: 1 later, 1 running, 1 without a TTL, 1 kept, 1 with an invalid TTL/,
    );
    assert.equal(
      (await c.batch.listNamespacedJob({ namespace: ns })).items.length,
      7,
      'plan deleted nothing',
    );

    assertError(
      await kttl(['plan', '-n', ns, '--until', '1 hour']),
      1,
      'error: --until: invalid duration "1 hour": must not contain spaces (write e.g. "1h30m")',
    );
    assertError(await kttl(['plan', '-n', ns, '--since', '2h']), 1, 'error: --since 2h is after --until 1h');
  });

  test('EPIPE: `kttl list | true` and `kttl --help | true` exit quietly with 0', async () => {
    const errFile = join(tb.state.dir, `kttl-epipe-${process.pid}.err`);
    // `true` exits at once; kttl writes after its request returns, into a closed pipe.
    for (const args of [`list -n ${ns} -o json`, 'list --help', '--help']) {
      const out = execFileSync(
        'bash',
        [
          '-c',
          `"${process.execPath}" "${BIN}" --kubeconfig "${tb.kubeconfigPath}" ${args} 2>"${errFile}" | true; echo "rc=\${PIPESTATUS[0]}"`,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(out.trim(), 'rc=0', args);
      assert.equal(readFileSync(errFile, 'utf8'), '', `${args}: nothing on stderr`);
    }
  });
});

describe('kttl set-ttl', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-set');
  });

  test('a Job without annotations gets the native field; one with kttl.dev/ttl keeps using the annotation', async () => {
    await createJob({ name: 'plain', namespace: ns });
    await createJob({ name: 'annotated', namespace: ns, annotations: { 'kttl.dev/ttl': '1h' } });
    await createJob({ name: 'run', namespace: ns, podLabels: { [TEST_LABELS.run]: 'true' } });
    await waitForJob(c, ns, 'plain', 'Complete');
    await waitForJob(c, ns, 'annotated', 'Complete');

    const r = ok(await kttl(['set-ttl', 'job/plain', '4d', '-n', ns]));
    assert.match(
      r.stdout,
      /^job\.batch\/plain: \.spec\.ttlSecondsAfterFinished=345600 \(4d\); expires in 3d23h$/m,
    );
    const plain = await c.batch.readNamespacedJob({ name: 'plain', namespace: ns });
    assert.equal(plain.spec?.ttlSecondsAfterFinished, 345600);
    assert.equal(plain.metadata?.annotations?.['kttl.dev/ttl'], undefined);

    ok(await kttl(['set-ttl', 'job/annotated', 'job/run', '2h', '-n', ns]));
    const annotated = await c.batch.readNamespacedJob({ name: 'annotated', namespace: ns });
    assert.equal(annotated.metadata?.annotations?.['kttl.dev/ttl'], '2h');
    assert.equal(annotated.spec?.ttlSecondsAfterFinished, undefined);
    const run = await c.batch.readNamespacedJob({ name: 'run', namespace: ns });
    assert.equal(
      run.spec?.ttlSecondsAfterFinished,
      7200,
      'a running Job without annotations: the native field',
    );

    // Once the field is the source it stays the source.
    ok(await kttl(['set-ttl', 'job/plain', '1h30m', '-n', ns]));
    assert.equal(
      (await c.batch.readNamespacedJob({ name: 'plain', namespace: ns })).spec?.ttlSecondsAfterFinished,
      5400,
    );
    const listed = await listJson(['-n', ns]);
    assert.equal(listed.items.find((i) => i.name === 'plain')?.ttl, '1h30m');
  });

  test('--outcome writes kttl.dev/ttl-succeeded / -failed; Pods get annotations', async () => {
    await createJob({ name: 'outcome', namespace: ns, ttlSecondsAfterFinished: 60 });
    await waitForJob(c, ns, 'outcome', 'Complete');
    const r = ok(await kttl(['set-ttl', 'job/outcome', '7d', '--outcome', 'failed', '-n', ns]));
    assert.match(r.stdout, /annotation kttl\.dev\/ttl-failed=7d; it succeeded, so this does not apply/);
    ok(await kttl(['set-ttl', 'job/outcome', '10m', '--outcome', 'succeeded', '-n', ns]));
    const job = await c.batch.readNamespacedJob({ name: 'outcome', namespace: ns });
    assert.equal(job.metadata?.annotations?.['kttl.dev/ttl-failed'], '7d');
    assert.equal(job.metadata?.annotations?.['kttl.dev/ttl-succeeded'], '10m');
    assert.equal(job.spec?.ttlSecondsAfterFinished, 60, 'the field is left alone');
    const explained = JSON.parse(ok(await kttl(['explain', 'job/outcome', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(explained.decision.text, 'ttl 10m (annotation kttl.dev/ttl-succeeded=10m)');

    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'bare', labels: { [TEST_LABELS.succeed]: 'true' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    ok(await kttl(['set-ttl', 'pod/bare', '90s', '-n', ns]));
    const pod = await c.core.readNamespacedPod({ name: 'bare', namespace: ns });
    assert.equal(pod.metadata?.annotations?.['kttl.dev/ttl'], '90s');
  });

  test('a higher rule that still decides is reported', async () => {
    await createJob({ name: 'keep', namespace: ns, annotations: { 'kttl.dev/keep': 'true' } });
    await waitForJob(c, ns, 'keep', 'Complete');
    const r = ok(await kttl(['set-ttl', 'job/keep', '1h', '-n', ns]));
    assert.equal(r.stderr.trim(), 'note: job/keep: keep (annotation kttl.dev/keep=true) still decides');
  });

  test('an already expired TTL on a finished object: warns "will be deleted now" and asks (refuses without a terminal)', async () => {
    await createJob({ name: 'old', namespace: ns, ttlSecondsAfterFinished: 3600 });
    await waitForJob(c, ns, 'old', 'Complete');
    const refused = await kttl(['set-ttl', 'job/old', '0', '-n', ns]);
    assert.equal(refused.code, 1);
    const lines = refused.stderr.trimEnd().split('\n');
    assert.match(lines[0]!, /^warning: job\/old finished \d+s ago: with a TTL of 0s it will be deleted now$/);
    assert.equal(
      lines[1],
      'error: refusing to set a TTL that deletes 1 object at once without confirmation: stdin is not a terminal (pass --yes)',
    );
    assert.equal(
      (await c.batch.readNamespacedJob({ name: 'old', namespace: ns })).spec?.ttlSecondsAfterFinished,
      3600,
      'unchanged',
    );

    const r = ok(await kttl(['set-ttl', 'job/old', '0', '--yes', '-n', ns]));
    assert.match(
      r.stdout,
      /^job\.batch\/old: \.spec\.ttlSecondsAfterFinished=0 \(0s\); expired: the controller deletes it now$/m,
    );
    assert.equal(
      (await c.batch.readNamespacedJob({ name: 'old', namespace: ns })).spec?.ttlSecondsAfterFinished,
      0,
    );
  });

  test('errors: bad duration (parseDuration message), missing object, missing duration', async () => {
    assertError(
      await kttl(['set-ttl', 'job/plain', '5 minutes', '-n', ns]),
      1,
      'error: invalid duration "5 minutes": must not contain spaces (write e.g. "1h30m")',
    );
    assertError(
      await kttl(['set-ttl', 'job/plain', '1y', '-n', ns]),
      1,
      'error: invalid duration "1y": unknown unit "y" (use s, m, h, d or w)',
    );
    assertError(
      await kttl(['set-ttl', 'job/plain', '3000000000s', '-n', ns]),
      1,
      'error: invalid duration "3000000000s": longer than the maximum of 2147483647 seconds (about 68 years)',
    );
    assertError(
      await kttl(['set-ttl', 'job/ghost', '1h', '-n', ns]),
      1,
      `error: jobs.batch "ghost" not found in namespace "${ns}"`,
    );
    assertError(
      await kttl(['set-ttl', 'job/plain', '-n', ns]),
      1,
      'error: expected KIND/NAME... DURATION (e.g. kttl set-ttl job/train-42 4d)',
    );
    assertError(
      await kttl(['set-ttl', 'job/plain', '1h', '--outcome', 'maybe', '-n', ns]),
      1,
      /^error: option '--outcome <outcome>' argument 'maybe' is invalid\. Allowed choices are succeeded, failed\. \(see 'kttl set-ttl --help'\)$/,
    );
  });
});

describe('kttl delete', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-del');
  });

  test('named finished Jobs: deleted with --yes; Foreground for Jobs, Background for Pods', async () => {
    await createJob({ name: 'done', namespace: ns });
    await createJob({ name: 'held', namespace: ns });
    await waitForJob(c, ns, 'done', 'Complete');
    await waitForJob(c, ns, 'held', 'Complete');
    // A dependent that blocks its owner's Foreground deletion until its own finalizer goes.
    const held = await c.batch.readNamespacedJob({ name: 'held', namespace: ns });
    await blockingDependent(ns, 'held-dep', {
      apiVersion: 'batch/v1',
      kind: 'Job',
      name: 'held',
      uid: held.metadata!.uid!,
    });
    const r = ok(await kttl(['delete', 'job/done', 'job/held', '--yes', '-n', ns]));
    assert.equal(r.stdout, 'job.batch "done" deleted\njob.batch "held" deleted\n');
    await waitFor('done gone', () => jobGone(ns, 'done'), 30_000);
    // Foreground: the Job waits for its dependents, marked with the foregroundDeletion finalizer.
    await sleep(1000);
    const waiting = await c.batch.readNamespacedJob({ name: 'held', namespace: ns });
    assert.ok(waiting.metadata?.deletionTimestamp, 'marked for deletion');
    assert.deepEqual(waiting.metadata?.finalizers, ['foregroundDeletion']);
    await release(ns, 'held-dep');
    await waitFor('held gone', () => jobGone(ns, 'held'), 30_000);

    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'bare', labels: { [TEST_LABELS.succeed]: 'true' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    await waitFor(
      'bare pod Succeeded',
      async () =>
        (await c.core.readNamespacedPod({ name: 'bare', namespace: ns })).status?.phase === 'Succeeded',
      30_000,
    );
    const bare = await c.core.readNamespacedPod({ name: 'bare', namespace: ns });
    await blockingDependent(ns, 'bare-dep', {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'bare',
      uid: bare.metadata!.uid!,
    });
    assert.equal(ok(await kttl(['delete', 'pod/bare', '-y', '-n', ns])).stdout, 'pod "bare" deleted\n');
    // Background: the Pod goes at once although its dependent is still held.
    await waitFor(
      'bare pod gone',
      async () => {
        try {
          await c.core.readNamespacedPod({ name: 'bare', namespace: ns });
          return false;
        } catch (err) {
          return (err as { code?: number }).code === 404;
        }
      },
      30_000,
    );
    const dep = await c.core.readNamespacedConfigMap({ name: 'bare-dep', namespace: ns });
    assert.deepEqual(dep.metadata?.finalizers, ['kttl.test/hold'], 'the dependent is still there');
    await release(ns, 'bare-dep');
  });

  test('an unfinished object: refused unless named and --force (exit 1, nothing deleted)', async () => {
    await createJob({ name: 'busy', namespace: ns, podLabels: { [TEST_LABELS.run]: 'true' } });
    await createJob({ name: 'busy2', namespace: ns, podLabels: { [TEST_LABELS.run]: 'true' } });
    assertError(
      await kttl(['delete', 'job/busy', '--yes', '-n', ns]),
      1,
      'error: job/busy has not finished (Running): pass --force to delete it anyway',
    );
    assertError(
      await kttl(['delete', 'job/busy', 'job/busy2', '--yes', '-n', ns]),
      1,
      'error: 2 objects have not finished (job/busy, job/busy2): pass --force to delete them anyway',
    );
    // --finished never touches a running object, --force or not.
    ok(await kttl(['delete', '--finished', '--force', '--yes', '-n', ns]));
    assert.equal(await jobGone(ns, 'busy'), false);
    assert.equal(await jobGone(ns, 'busy2'), false);
    const r = ok(await kttl(['delete', 'job/busy', '--force', '--yes', '-n', ns]));
    assert.equal(r.stdout, 'job.batch "busy" deleted\n');
    await waitFor('busy gone', () => jobGone(ns, 'busy'), 30_000);
    assert.equal(await jobGone(ns, 'busy2'), false);
  });

  test('without --yes and without a terminal: refuses, deletes nothing', async () => {
    await createJob({ name: 'ask', namespace: ns });
    await waitForJob(c, ns, 'ask', 'Complete');
    assertError(
      await kttl(['delete', 'job/ask', '-n', ns]),
      1,
      'error: refusing to delete 1 object without confirmation: stdin is not a terminal (pass --yes)',
    );
    assert.equal(await jobGone(ns, 'ask'), false);
    assertError(
      await kttl(['delete', 'job/missing', '--yes', '-n', ns]),
      1,
      `error: jobs.batch "missing" not found in namespace "${ns}"`,
    );
    assertError(
      await kttl(['delete', '-n', ns]),
      1,
      'error: name objects to delete (KIND/NAME...) or pass --finished',
    );
    assertError(
      await kttl(['delete', 'job/ask', '--finished', '-n', ns]),
      1,
      'error: name objects (KIND/NAME) or use --finished, not both',
    );
    assertError(
      await kttl(['delete', '--finished', '--older-than', '2 days', '-n', ns]),
      1,
      'error: --older-than: invalid duration "2 days": must not contain spaces (write e.g. "1h30m")',
    );
  });

  test('--finished: dry run, --older-than, keep skipped, running untouched', async () => {
    const ns2 = await newNamespace(c, 'cli-fin');
    await createJob({ name: 'a', namespace: ns2 });
    await createJob({ name: 'b', namespace: ns2, podLabels: { [TEST_LABELS.fail]: 'true' } });
    await createJob({ name: 'k', namespace: ns2, annotations: { 'kttl.dev/keep': 'true' } });
    await createJob({ name: 'r', namespace: ns2, podLabels: { [TEST_LABELS.run]: 'true' } });
    await waitForJob(c, ns2, 'a', 'Complete');
    await waitForJob(c, ns2, 'b', 'Failed');
    await waitForJob(c, ns2, 'k', 'Complete');

    const dry = ok(await kttl(['delete', '--finished', '--dry-run', '-n', ns2]));
    const t = parseTable(dry.stdout.split('\n').slice(0, -2).join('\n'));
    assert.deepEqual([...t.rows.keys()], ['a', 'b']);
    assert.match(dry.stdout, /^dry run: would delete 2 objects; nothing was deleted$/m);
    assert.equal(dry.stderr.trim(), 'skipping 1 object marked kttl.dev/keep=true (name it to delete it)');
    assert.equal((await c.batch.listNamespacedJob({ namespace: ns2 })).items.length, 4);

    const young = ok(await kttl(['delete', '--finished', '--older-than', '1h', '--yes', '-n', ns2]));
    assert.equal(
      young.stdout.trim(),
      `No finished jobs older than 1h found in namespace "${ns2}": nothing to delete.`,
    );

    const r = ok(await kttl(['delete', 'jobs', '--finished', '--older-than', '0', '--yes', '-n', ns2]));
    assert.equal(r.stdout, 'job.batch "a" deleted\njob.batch "b" deleted\n');
    await waitFor('a and b gone', async () => (await jobGone(ns2, 'a')) && (await jobGone(ns2, 'b')), 30_000);
    assert.equal(await jobGone(ns2, 'k'), false, 'kept');
    assert.equal(await jobGone(ns2, 'r'), false, 'running');

    // Pods of the running Job are untouched; the finished one of the kept Job goes with `pods --finished`.
    const pr = ok(await kttl(['delete', 'pods', '--finished', '--yes', '-n', ns2]));
    assert.match(pr.stdout, /^pod "k-\w+" deleted\n$/);
    const pods = await c.core.listNamespacedPod({ namespace: ns2, labelSelector: 'job-name=r' });
    assert.equal(pods.items.length, 1);
  });

  test('more than 10 objects: a progress line and a summary', async () => {
    const ns3 = await newNamespace(c, 'cli-many');
    const names = Array.from({ length: 12 }, (_, i) => `m${i}`);
    await Promise.all(names.map((name) => createJob({ name, namespace: ns3 })));
    await Promise.all(names.map((name) => waitForJob(c, ns3, name, 'Complete', 60_000)));
    const r = ok(await kttl(['delete', '--finished', '--yes', '-n', ns3]));
    assert.match(r.stdout, /^deleted 12 of 12 objects in \d+\.\d s\n$/);
    assert.match(r.stderr, /deleting: 12\/12\n$/);
    assert.doesNotMatch(r.stdout, /job\.batch "m0" deleted/, 'no line per object');
    await waitFor(
      'all gone',
      async () => (await c.batch.listNamespacedJob({ namespace: ns3 })).items.length === 0,
      60_000,
    );
  });
});

describe('kttl submit', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-sub');
  });

  test('creates a Job with ttlSecondsAfterFinished from a Run:ai duration; --wait reports success (exit 0)', async () => {
    const r = ok(
      await kttl([
        'submit',
        'train',
        '-n',
        ns,
        '--image',
        'busybox',
        '--ttl-after-finish',
        '4d',
        '--env',
        'MODE=full',
        '-e',
        'X=a=b',
        '--label',
        'team=ml',
        '--backoff-limit',
        '0',
        '--wait',
        '--',
        'sh',
        '-c',
        'echo hi -n x',
      ]),
    );
    assert.match(
      r.stdout,
      new RegExp(`^job\\.batch/train created in namespace "${ns}"; deleted 4d after it finishes$`, 'm'),
    );
    assert.match(r.stdout, /^job\.batch\/train succeeded \(condition Complete=True at \d{4}-.+Z\)$/m);
    const job = await c.batch.readNamespacedJob({ name: 'train', namespace: ns });
    assert.equal(job.spec?.ttlSecondsAfterFinished, 4 * 86400);
    assert.equal(job.spec?.backoffLimit, 0);
    assert.equal(job.metadata?.labels?.team, 'ml');
    const pod = job.spec?.template.spec;
    assert.equal(pod?.restartPolicy, 'Never');
    assert.deepEqual(pod?.containers[0]?.command, ['sh', '-c', 'echo hi -n x']);
    assert.equal(pod?.containers[0]?.image, 'busybox');
    assert.deepEqual(JSON.parse(JSON.stringify(pod?.containers[0]?.env)), [
      { name: 'MODE', value: 'full' },
      { name: 'X', value: 'a=b' },
    ]);
    assert.equal(job.spec?.template.metadata?.labels?.team, 'ml');
    const listed = await listJson(['-n', ns]);
    assert.deepEqual(
      listed.items.map((i) => [i.name, i.source, i.ttl]),
      [['train', 'field', '4d']],
    );
  });

  test('--wait on a failing Job: the outcome on stderr, exit 1', async () => {
    const r = await kttl([
      'submit',
      'boom',
      '-n',
      ns,
      '--image',
      'busybox',
      '--label',
      `${TEST_LABELS.fail}=true`,
      '--backoff-limit',
      '0',
      '--wait',
      '--',
      'false',
    ]);
    assertError(
      r,
      1,
      /^job\.batch\/boom failed \(condition Failed=True at \S+Z\): BackoffLimitExceeded: Job has reached the specified backoff limit$/,
    );
    assert.equal(r.stdout, `job.batch/boom created in namespace "${ns}"; no TTL: it stays until deleted\n`);
  });

  test('errors: bad duration, existing name, missing image, missing namespace, bad --env', async () => {
    assertError(
      await kttl(['submit', 'x', '-n', ns, '--image', 'busybox', '--ttl-after-finish', '2 hours']),
      1,
      'error: --ttl-after-finish: invalid duration "2 hours": must not contain spaces (write e.g. "1h30m")',
    );
    assertError(
      await kttl(['submit', 'train', '-n', ns, '--image', 'busybox']),
      1,
      `error: jobs.batch "train" already exists in namespace "${ns}"`,
    );
    assertError(
      await kttl(['submit', 'x', '-n', ns]),
      1,
      'error: --image is required (e.g. --image busybox)',
    );
    assertError(
      await kttl(['submit', 'x', '-n', `${ns}-nope`, '--image', 'busybox']),
      1,
      `error: namespace "${ns}-nope" not found`,
    );
    assertError(
      await kttl(['submit', 'x', '-n', ns, '--image', 'b', '--env', 'NOVALUE']),
      1,
      'error: --env: expected KEY=VALUE, got "NOVALUE"',
    );
    assertError(
      await kttl(['submit', 'Bad_Name', '-n', ns, '--image', 'b']),
      1,
      /^error: Job\.batch "Bad_Name" is invalid: metadata\.name: Invalid value/,
    );
    assertError(
      await kttl(['submit', 'x', '-n', ns, '--image', 'b', '--timeout', '1m']),
      1,
      'error: --timeout works with --wait',
    );
  });
});

describe('kttl completion and help', () => {
  test('completion bash: a valid script that completes commands and flags', async () => {
    const r = ok(await kttl(['completion', 'bash'], { kubeconfig: null }));
    assert.match(r.stdout, /complete -F _kttl kttl$/m);
    execFileSync('bash', ['-n'], { input: r.stdout }); // syntax check
    const script = join(tb.state.dir, `kttl-completion-${process.pid}.bash`);
    writeFileSync(script, r.stdout);
    const complete = (words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source "${script}"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _kttl; echo "\${COMPREPLY[*]}"`,
        ],
        { encoding: 'utf8' },
      ).trim();
    assert.equal(complete(['kttl', 'del']), 'delete');
    assert.deepEqual(complete(['kttl', 'delete', '--f']).split(' ').sort(), ['--finished', '--force']);
    assert.equal(complete(['kttl', 'list', '-o', 'ya']), 'yaml');
    assert.equal(complete(['kttl', 'set-ttl', 'job/x', '1h', '--outcome', 'f']), 'failed');
    assert.ok(complete(['kttl', '']).split(' ').includes('explain'));
    assertError(
      await kttl(['completion', 'fish'], { kubeconfig: null }),
      1,
      'error: unsupported shell "fish" (supported: bash)',
    );
  });

  test('every command has --help with examples (exit 0)', async () => {
    for (const cmd of ['list', 'explain', 'set-ttl', 'delete', 'submit', 'plan', 'completion']) {
      const r = await kttl([cmd, '--help'], { kubeconfig: null });
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, new RegExp(`^Usage: kttl ${cmd}[ |]`), cmd);
      assert.match(r.stdout, /\nExamples:\n {2}.*kttl /, `${cmd} has examples`);
    }
  });
});
