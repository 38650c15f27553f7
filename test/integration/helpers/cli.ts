// Running the built CLI (dist/kttl.mjs) as a child process in tests, and asserting its one-line errors.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../testbed/testbed.ts';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export const BIN = join(REPO_ROOT, 'dist/kttl.mjs');

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
