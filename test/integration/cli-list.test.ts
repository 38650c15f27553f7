// `kttl list`: status, TTL, source and expiry of each object in a table, wide, JSON and YAML; its filters,
// the namespace it reads, and a closed pipe (EPIPE).
// Run as the BUILT bundle (dist/kttl.mjs) in a child process against the real control plane.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  assertError,
  BIN,
  createSampleJobs,
  kttl,
  type ListItem,
  listJson,
  ok,
  parseTable,
  useCliTestbed,
} from '../testbed/cli.ts';
import { jobFinishMs } from '../testbed/jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { type Clients, newNamespace } from '../testbed/use.ts';

let tb: Testbed;
let c: Clients;

before(async () => {
  ({ tb, c } = await useCliTestbed());
});

const HOUR = 3_600_000;

describe('kttl list on a namespace of sample Jobs', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli');
    await createSampleJobs(c, ns);
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
    assert.equal(Date.parse(native.expiresAt!), (await jobFinishMs(c, ns, 'native-5m')) + 300_000);
    assert.ok(
      native.expiresInSeconds! > 240 && native.expiresInSeconds! <= 301,
      `${native.expiresInSeconds}`,
    );

    const failed = by.get('failed-7d')!;
    assert.deepEqual(
      [failed.status, failed.outcome, failed.source, failed.ttl],
      ['Failed', 'failed', 'annotation', '1w'],
    );
    assert.equal(Date.parse(failed.expiresAt!), (await jobFinishMs(c, ns, 'failed-7d')) + 7 * 24 * HOUR);

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
      new Date((await jobFinishMs(c, ns, 'native-5m')) + 300_000).toISOString().replace('.000Z', 'Z'),
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
      /^error: unknown kind "cronjobs" \(known: jobs, pods, workflows, /,
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
