// Start time of the shipped CLIs against the same cluster: `kttl list` (the bundle on Node, the npm
// install's entry point, and the single executable) vs `kubectl get jobs`, from spawn to exit (the
// whole answer printed), median and p90 of N runs each (default 10), interleaved so load drifts hit all
// alike. Sizes of what ships. Prints a table; docs/operations.md records the figures.
//   node bench/start.ts [--runs 10]      (KTTL_TESTBED_STATE=<state.json> attaches to a running testbed)
// Needs `node scripts/build.ts --sea` first for the single executable (skipped when missing).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { binaries, REPO_ROOT, Testbed } from '../test/testbed/testbed.ts';
import { log, percentile } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const RUNS = Number(values.runs);
const DIST = join(REPO_ROOT, 'dist');
const SEA = join(DIST, `kttl-linux-${process.arch === 'x64' ? 'amd64' : process.arch}`);

async function main(): Promise<void> {
  const attached = process.env.KTTL_TESTBED_STATE;
  const tb = attached ? Testbed.attach(attached) : await Testbed.start();
  const ns = `bench-start-${process.pid}`;
  try {
    await tb.kubectl(['create', 'namespace', ns]);
    for (let i = 0; i < 20; i++)
      await tb.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: `j${i}`, namespace: ns, annotations: { 'kttl.dev/ttl': '1h' } },
          spec: {
            template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } },
          },
        }),
      );
    const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: tb.kubeconfigPath, NO_COLOR: '1' };
    const commands: Array<[string, string, string[]]> = [
      ['kubectl get jobs', binaries().kubectl, ['get', 'jobs', '-n', ns]],
      ['kttl list (node dist/kttl.mjs)', process.execPath, [join(DIST, 'kttl.mjs'), 'list', '-n', ns]],
      ['kubectl ttl list (plugin)', binaries().kubectl, ['ttl', 'list', '-n', ns]],
    ];
    if (existsSync(SEA)) commands.push(['kttl list (single executable)', SEA, ['list', '-n', ns]]);
    else log(`${SEA} missing (node scripts/build.ts --sea): not measured`);
    const pathEnv = { ...env, PATH: `${DIST}:${join(REPO_ROOT, 'node_modules/.bin')}:${env.PATH}` };
    const times = new Map<string, number[]>(commands.map(([n]) => [n, []]));
    for (const [, bin, args] of commands) spawnSync(bin, args, { env: pathEnv }); // warm the page cache
    for (let i = 0; i < RUNS; i++)
      for (const [name, bin, args] of commands) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync(bin, args, { env: pathEnv, encoding: 'utf8' });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.status !== 0 || !r.stdout.includes('j0')) throw new Error(`${name} failed: ${r.stderr}`);
        times.get(name)!.push(ms);
      }
    const base = percentile(times.get('kubectl get jobs')!, 50);
    console.log(`\n${RUNS} runs each, 20 Jobs, ${new Date().toISOString()}`);
    console.log('command                              median ms   p90 ms   × kubectl');
    for (const [name, t] of times) {
      const med = percentile(t, 50);
      console.log(
        `${name.padEnd(36)} ${med.toFixed(0).padStart(9)} ${percentile(t, 90).toFixed(0).padStart(8)} ${(med / base).toFixed(2).padStart(11)}`,
      );
    }
    const mb = (p: string) => (existsSync(p) ? `${(statSync(p).size / 1e6).toFixed(1)} MB` : 'not built');
    console.log(
      `\nsizes: dist/kttl.mjs ${mb(join(DIST, 'kttl.mjs'))}, single executable ${mb(SEA)}, kubectl ${mb(binaries().kubectl)}`,
    );
  } finally {
    await tb.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => undefined);
    if (!attached) await tb.stop();
  }
}

await main();
