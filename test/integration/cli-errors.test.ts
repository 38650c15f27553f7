// The kttl CLI's failure paths, run as the BUILT bundle against the real control plane: RBAC
// forbidden (exit 2, naming the verb and resource), an unreachable cluster and a refused TLS
// handshake (exit 2), configuration and usage errors (exit 1), each as ONE line on stderr; and the
// interactive confirmation of `delete`, typed into a real terminal (tmux).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { assertError as assertOneLineError, BIN, type Run, runCli, useCliTestbed } from '../testbed/cli.ts';
import { jobGone } from '../testbed/jobs.ts';
import { freePort } from '../testbed/processes.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { type Clients, jobManifest, newNamespace, sleep, waitFor, waitForJob } from '../testbed/use.ts';

let tb: Testbed;
let c: Clients;

function kttl(args: string[], kubeconfig: string | null = tb.kubeconfigPath): Promise<Run> {
  return runCli(args, kubeconfig);
}

/** Exit code, nothing on stdout, and exactly this one line on stderr. */
function assertError(r: Run, code: number, line: string | RegExp): void {
  assertOneLineError(r, code, line, { quietStdout: true });
}

const jobExists = async (ns: string, name: string): Promise<boolean> => !(await jobGone(c, ns, name));

before(async () => {
  ({ tb, c } = await useCliTestbed());
});

describe('kttl CLI: RBAC forbidden is exit 2 naming the verb and resource', () => {
  let ns: string;
  let nobody: string;
  let reader: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-rbac');
    await c.batch.createNamespacedJob({ namespace: ns, body: jobManifest({ name: 'done', namespace: ns }) });
    await waitForJob(c, ns, 'done', 'Complete');
    const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
    // A user without any binding, and one who may only read Jobs in ns.
    nobody = tb.userKubeconfig(`cli-nobody-${suffix}`);
    const readerName = `cli-reader-${suffix}`;
    reader = tb.userKubeconfig(readerName);
    const rbac = c.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'job-reader' },
        rules: [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'job-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'job-reader' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: readerName }],
      },
    });
    // The authorizer's cache catches up within moments.
    await waitFor(
      'the reader may list jobs',
      async () => (await kttl(['list', '-n', ns], reader)).code === 0,
      30_000,
    );
  });

  test('a user with no bindings: list, list -A, explain, submit, plan', async () => {
    assertError(
      await kttl(['list', '-n', ns], nobody),
      2,
      `error: forbidden: cannot list jobs.batch in namespace "${ns}"`,
    );
    assertError(
      await kttl(['list', '-A'], nobody),
      2,
      'error: forbidden: cannot list jobs.batch in all namespaces',
    );
    assertError(
      await kttl(['list', 'pods', '-n', ns], nobody),
      2,
      `error: forbidden: cannot list pods in namespace "${ns}"`,
    );
    assertError(
      await kttl(['explain', 'job/done', '-n', ns], nobody),
      2,
      `error: forbidden: cannot get jobs.batch in namespace "${ns}"`,
    );
    assertError(
      await kttl(['submit', 'x', '--image', 'busybox', '-n', ns], nobody),
      2,
      `error: forbidden: cannot create jobs.batch in namespace "${ns}"`,
    );
    assertError(
      await kttl(['plan', '-n', ns], nobody),
      2,
      `error: forbidden: cannot list jobs.batch in namespace "${ns}"`,
    );
    assertError(
      await kttl(['delete', '--finished', '--yes', '-n', ns], nobody),
      2,
      `error: forbidden: cannot list jobs.batch in namespace "${ns}"`,
    );
  });

  test('a user who may read but not change Jobs: delete and set-ttl are forbidden, nothing changes', async () => {
    assert.equal((await kttl(['explain', 'job/done', '-n', ns], reader)).code, 0, 'reading is allowed');
    assertError(
      await kttl(['delete', 'job/done', '--yes', '-n', ns], reader),
      2,
      `error: forbidden: cannot delete jobs.batch in namespace "${ns}"`,
    );
    assert.ok(await jobExists(ns, 'done'));
    assertError(
      await kttl(['delete', '--finished', '--yes', '-n', ns], reader),
      2,
      `error: forbidden: cannot delete jobs.batch in namespace "${ns}"`,
    );
    assert.ok(await jobExists(ns, 'done'));
    assertError(
      await kttl(['set-ttl', 'job/done', '1h', '-n', ns], reader),
      2,
      `error: forbidden: cannot patch jobs.batch in namespace "${ns}"`,
    );
    const job = await c.batch.readNamespacedJob({ name: 'done', namespace: ns });
    assert.equal(job.spec?.ttlSecondsAfterFinished, undefined);
  });
});

describe('kttl CLI: an unreachable cluster or a refused TLS handshake is exit 2', () => {
  test('a kubeconfig pointing at a closed port', async () => {
    const port = await freePort(); // free: nothing listens there
    const path = join(tb.state.dir, `cli-closed-${process.pid}.kubeconfig`);
    writeFileSync(
      path,
      readFileSync(tb.kubeconfigPath, 'utf8').replace(
        /server: https:\/\/127\.0\.0\.1:\d+/,
        `server: https://127.0.0.1:${port}`,
      ),
    );
    const started = Date.now();
    assertError(
      await kttl(['list'], path),
      2,
      `error: cannot reach the cluster: list jobs.batch in namespace "default" (https://127.0.0.1:${port}): connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    assert.ok(Date.now() - started < 10_000, 'fails fast');
    assertError(
      await kttl(['delete', 'job/x', '--yes', '-n', 'team-a'], path),
      2,
      `error: cannot reach the cluster: get jobs.batch in namespace "team-a" (https://127.0.0.1:${port}): connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });

  test('a server certificate the kubeconfig CA does not sign', async () => {
    const text = readFileSync(tb.kubeconfigPath, 'utf8');
    const clientCert = text.match(/client-certificate-data: (\S+)/)?.[1];
    assert.ok(clientCert);
    const path = join(tb.state.dir, `cli-badca-${process.pid}.kubeconfig`);
    // Any other certificate as the CA: the API server's own certificate does not chain to it.
    writeFileSync(
      path,
      text.replace(/certificate-authority-data: \S+/, `certificate-authority-data: ${clientCert}`),
    );
    assertError(
      await kttl(['list', '-n', 'x'], path),
      2,
      /^error: cannot reach the cluster: list jobs\.batch in namespace "x" \(https:\/\/127\.0\.0\.1:\d+\): TLS refused: .+ \([A-Z_]+\)$/,
    );
  });
});

describe('kttl CLI: configuration and usage errors are exit 1, one line', () => {
  test('a missing kubeconfig or context', async () => {
    assertError(
      await kttl(['list'], '/nonexistent/kubeconfig'),
      1,
      'error: kubeconfig /nonexistent/kubeconfig does not exist',
    );
    assertError(
      await kttl(['list', '--context', 'nope']),
      1,
      `error: context "nope" not found in ${tb.kubeconfigPath}`,
    );
  });

  test('unknown options and missing arguments name the command to ask for help', async () => {
    assertError(
      await kttl(['list', '--bogus']),
      1,
      "error: unknown option '--bogus' (see 'kttl list --help')",
    );
    assertError(
      await kttl(['explain']),
      1,
      "error: missing required argument 'ref' (see 'kttl explain --help')",
    );
    assertError(
      await kttl(['list', '-o', 'csv']),
      1,
      "error: option '-o, --output <format>' argument 'csv' is invalid. Allowed choices are table, wide, json, yaml. (see 'kttl list --help')",
    );
    assertError(
      await kttl(['delete', 'job/x', '--propagation-policy', 'Sideways']),
      1,
      /^error: option '--propagation-policy <policy>' argument 'Sideways' is invalid\. "Sideways" is not one of Foreground, Background, Orphan/,
    );
    assertError(
      await kttl(['delete', 'job/Bad_Name', '--yes']),
      1,
      'error: invalid name "Bad_Name" in "job/Bad_Name" (lower-case letters, digits, "-" and ".")',
    );
  });
});

function tmux(...args: string[]): string {
  return execFileSync('tmux', args, { encoding: 'utf8' });
}

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('kttl delete: the interactive confirmation in a real terminal', () => {
  const skip = hasTmux()
    ? false
    : 'tmux is not installed (hack/setup installs it): the interactive test needs a terminal';

  /** Runs kttl in a detached tmux session, answers the prompt, returns the screen once it exits. */
  async function answer(ns: string, name: string, keys: string): Promise<string> {
    const session = `kttl-cli-${process.pid}-${name}`;
    const cmd = `"${process.execPath}" "${BIN}" --kubeconfig "${tb.kubeconfigPath}" -n ${ns} delete job/${name}; echo "exit=$?"; sleep 60`;
    tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', cmd);
    try {
      const screen = () => tmux('capture-pane', '-p', '-t', session);
      await waitFor('the prompt', async () => screen().includes('[y/N]'), 20_000, 50);
      const before = screen();
      assert.match(
        before,
        new RegExp(`^${name}\\s+Job\\s+Succeeded\\s+\\d+s\\s+-\\s+none\\s+-$`, 'm'),
        'the list of what goes',
      );
      assert.match(before, /^Delete 1 object\? \[y\/N\]\s*$/m);
      tmux('send-keys', '-t', session, keys, 'Enter');
      await waitFor('kttl to exit', async () => /exit=\d+/.test(screen()), 20_000, 50);
      return screen();
    } finally {
      tmux('kill-session', '-t', session);
    }
  }

  test('answering y deletes; answering n (or anything else) deletes nothing, exit 1', { skip }, async () => {
    const ns = await newNamespace(c, 'cli-tty');
    for (const name of ['yes-job', 'no-job']) {
      await c.batch.createNamespacedJob({ namespace: ns, body: jobManifest({ name, namespace: ns }) });
    }
    await waitForJob(c, ns, 'yes-job', 'Complete');
    await waitForJob(c, ns, 'no-job', 'Complete');

    const yes = await answer(ns, 'yes-job', 'y');
    assert.match(yes, /^job\.batch "yes-job" deleted$/m);
    assert.match(yes, /^exit=0$/m);
    await waitFor('yes-job gone', async () => !(await jobExists(ns, 'yes-job')), 30_000);

    const no = await answer(ns, 'no-job', 'n');
    assert.match(no, /^error: aborted: nothing was deleted$/m);
    assert.match(no, /^exit=1$/m);
    await sleep(500);
    assert.ok(await jobExists(ns, 'no-job'), 'no-job is still there');
  });
});
