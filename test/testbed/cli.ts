// Running the built CLI (dist/kttl.mjs) as a child process in tests: the run, its one-line errors,
// its tables and JSON, and the namespace of sample Jobs the list/explain/plan tests read.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Clients, clientsFor } from './clients.ts';
import { createJob, waitForJob } from './jobs.ts';
import { waitFor } from './processes.ts';
import { TEST_LABELS } from './stages.ts';
import { REPO_ROOT, type Testbed } from './testbed.ts';
import { useTestbed } from './use.ts';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export const BIN = join(REPO_ROOT, 'dist/kttl.mjs');

/** The newest modification time of a file below `dir`, ms. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/kttl.mjs (the bundle users get) from this tree unless it is newer than every source:
 * each CLI test file calls it, and the build is paid once per change, not once per file.
 */
export function buildCli(): void {
  if (existsSync(BIN)) {
    const sources = Math.max(
      newestMtime(join(REPO_ROOT, 'src')),
      statSync(join(REPO_ROOT, 'scripts/build.ts')).mtimeMs,
      statSync(join(REPO_ROOT, 'package-lock.json')).mtimeMs,
    );
    if (statSync(BIN).mtimeMs > sources) return;
  }
  execFileSync(process.execPath, ['scripts/build.ts'], { cwd: REPO_ROOT, stdio: 'ignore' });
}

/** `node dist/kttl.mjs [--kubeconfig K] ...args`; stdin is a pipe (not a terminal), no colour. */
export function runCli(
  args: string[],
  kubeconfig: string | null,
  env: Record<string, string> = {},
): Promise<Run> {
  const argv = [BIN, ...(kubeconfig === null ? [] : ['--kubeconfig', kubeconfig]), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {
      env: { ...process.env, KUBECONFIG: '', NO_COLOR: '1', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin.end();
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export interface KttlOptions {
  /** Default: the testbed's admin kubeconfig; null: no --kubeconfig flag. */
  kubeconfig?: string | null;
  env?: Record<string, string>;
}

/** Runs `node dist/kttl.mjs --kubeconfig <the run's testbed> ...args`; stdin is a pipe (not a terminal). */
export async function kttl(args: string[], o: KttlOptions = {}): Promise<Run> {
  const kubeconfig = o.kubeconfig === undefined ? (await useTestbed()).kubeconfigPath : o.kubeconfig;
  return runCli(args, kubeconfig, o.env);
}

/** A successful run (exit 0); the run, for its output. */
export function ok(r: Run): Run {
  assert.equal(r.code, 0, `exit 0 expected; stderr: ${r.stderr}; stdout: ${r.stdout}`);
  return r;
}

/** A failed run: this exit code and exactly this one line on stderr (and, if asked, nothing on stdout). */
export function assertError(
  r: Run,
  code: number,
  line: string | RegExp,
  o: { quietStdout?: boolean } = {},
): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  if (o.quietStdout) assert.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  if (typeof line === 'string') assert.equal(lines[0], line);
  else assert.match(lines[0]!, line);
}

/** Table rows split on the 3-space column gaps, keyed by the NAME column. */
export function parseTable(text: string): { head: string[]; rows: Map<string, Record<string, string>> } {
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

/** One row of `kttl list -o json`. */
export interface ListItem {
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

export interface ListDoc {
  now: string;
  clock: string;
  namespace: string | null;
  items: ListItem[];
}

/** `kttl list ...args -o json`, which must succeed. */
export async function listJson(args: string[]): Promise<ListDoc> {
  const r = ok(await kttl(['list', ...args, '-o', 'json']));
  return JSON.parse(r.stdout);
}

/**
 * A fresh namespace's seven sample Jobs, one per kind of verdict, all finished except `running`:
 * native-5m (field 300 s, team=a), failed-7d (failed; kttl.dev/ttl 2h and ttl-failed 7d; team=a),
 * running (ttl-succeeded 10m, ttl-failed 7d), typo (an invalid kttl.dev/ttl), kept (field 0 and
 * kttl.dev/keep), hook (a kots hook-delete-policy), no-ttl.
 */
export async function createSampleJobs(c: Clients, namespace: string): Promise<void> {
  const ns = namespace;
  await Promise.all([
    createJob(c, { name: 'native-5m', namespace: ns, ttlSecondsAfterFinished: 300, labels: { team: 'a' } }),
    createJob(c, {
      name: 'failed-7d',
      namespace: ns,
      labels: { team: 'a' },
      annotations: { 'kttl.dev/ttl': '2h', 'kttl.dev/ttl-failed': '7d' },
      podLabels: { [TEST_LABELS.fail]: 'true' },
    }),
    createJob(c, {
      name: 'running',
      namespace: ns,
      annotations: { 'kttl.dev/ttl-succeeded': '10m', 'kttl.dev/ttl-failed': '7d' },
      podLabels: { [TEST_LABELS.run]: 'true' },
    }),
    createJob(c, { name: 'typo', namespace: ns, annotations: { 'kttl.dev/ttl': '5 minutes' } }),
    createJob(c, {
      name: 'kept',
      namespace: ns,
      ttlSecondsAfterFinished: 0,
      annotations: { 'kttl.dev/keep': 'true' },
    }),
    createJob(c, {
      name: 'hook',
      namespace: ns,
      annotations: { 'kots.io/hook-delete-policy': 'hook-succeeded' },
    }),
    createJob(c, { name: 'no-ttl', namespace: ns }),
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
}

/** A CLI test file's setup: the run's testbed, admin clients, and the bundle built from this tree. */
export async function useCliTestbed(): Promise<{ tb: Testbed; c: Clients }> {
  const tb = await useTestbed();
  buildCli();
  return { tb, c: clientsFor(tb) };
}
