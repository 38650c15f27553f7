// Runs Kubernetes' own e2e binary (built by hack/upstream-e2e) against a fresh testbed whose
// kube-controller-manager runs WITHOUT the native TTL-after-finished controller, with kttl run as
// the chart runs it (its Deployment's args, its ServiceAccount's token and RBAC from deploy/).
// `--controller native` (the native controller, no kttl) proves the harness; `--controller none`
// (neither) must fail by timing out. Prints Ginkgo's summary, exits with e2e.test's code.
//   node hack/upstream-e2e.ts --e2e-test FILE [--controller kttl|native|none] [--timeout 10m]
//                             [--runs-dir DIR] [FOCUS]
import { spawn } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type ChildController, spawnController } from '../test/testbed/controller.ts';
import { chartRunArgs, KTTL_NAMESPACE, setUpIdentities } from '../test/testbed/identities.ts';
import { sleep } from '../test/testbed/processes.ts';
import { BASE_CONTROLLERS, NATIVE_TTL_CONTROLLER, REPO_ROOT, Testbed } from '../test/testbed/testbed.ts';

// The e2e framework waits for each test namespace's kube-root-ca.crt ConfigMap, which this
// controller publishes; the testbed's base list does not need it.
const ROOT_CA_PUBLISHER = 'root-ca-certificate-publisher-controller';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'e2e-test': { type: 'string' },
    controller: { type: 'string', default: 'kttl' },
    timeout: { type: 'string' },
    'runs-dir': { type: 'string', default: join(REPO_ROOT, '.cache/upstream-e2e/runs') },
  },
});
const e2eTest = values['e2e-test'] && resolve(values['e2e-test']);
const mode = values.controller;
if (!e2eTest || !existsSync(e2eTest)) fail(`--e2e-test: no e2e.test at ${e2eTest ?? '(none given)'}`);
if (mode !== 'kttl' && mode !== 'native' && mode !== 'none') {
  fail(`--controller: kttl, native or none, not ${mode}`);
}
const focus = positionals[0] ?? 'TTLAfterFinished';
// The spec waits up to 15 min for the deletion; with no controller only a short Ginkgo timeout
// ends it in reasonable time (the failure it must produce).
const timeout = values.timeout ?? (mode === 'none' ? '2m' : '10m');

const t0 = Date.now();
const say = (msg: string) =>
  console.log(`[upstream-e2e ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const runDir = resolve(values['runs-dir'], `${stamp}-${mode}`);
mkdirSync(runDir, { recursive: true });

const controllers = [
  ...BASE_CONTROLLERS,
  ROOT_CA_PUBLISHER,
  ...(mode === 'native' ? [NATIVE_TTL_CONTROLLER] : []),
];
say(`starting the testbed; kube-controller-manager --controllers=${controllers.join(',')}`);
// Testbed.start stops what it started when a component does not come up.
const tb = await Testbed.start({ controllers }).catch((err: Error) =>
  fail(`the testbed did not start: ${err.message}`, 1),
);
let kttl: ChildController | undefined;
let stopping = false;
const teardown = async (): Promise<string | undefined> => {
  if (stopping) return;
  stopping = true;
  let problem: string | undefined;
  if (kttl) {
    if (existsSync(kttl.logFile)) copyFileSync(kttl.logFile, join(runDir, 'kttl.log'));
    // stop() rejects when any of kttl's requests was refused (403): the chart's role is too narrow.
    await kttl.stop().catch((err: Error) => {
      problem = err.message;
    });
  }
  await tb.stop();
  return problem;
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void teardown().finally(() => process.exit(130)));
}

let code = 1;
try {
  await setUpIdentities(tb);
  if (mode === 'kttl') {
    const args = chartRunArgs(KTTL_NAMESPACE, join(tb.state.dir, 'archive.db'));
    kttl = await spawnController(tb, args, 'kttl');
    say(`kttl running as ServiceAccount ${KTTL_NAMESPACE}/kttl with the chart's args: ${args.join(' ')}`);
  } else {
    say(mode === 'native' ? 'no kttl: the native TTL controller runs' : 'no TTL controller at all');
  }
  const watcher = watchJobDeletions(tb);
  const report = join(runDir, 'report.json');
  const e2eArgs = [
    `--kubeconfig=${tb.kubeconfigPath}`,
    '--provider=skeleton',
    `--ginkgo.focus=${focus}`,
    '--minStartupPods=0',
    '--disable-log-dump',
    `--ginkgo.timeout=${timeout}`,
    '--ginkgo.silence-skips',
    '--ginkgo.v',
    '--ginkgo.no-color',
    `--ginkgo.json-report=${report}`,
    `--e2e-output-dir=${runDir}`,
  ];
  say(`${e2eTest} ${e2eArgs.join(' ')}`);
  code = await runE2e(e2eTest, e2eArgs, join(runDir, 'e2e.log'));
  watcher.stop();
  for (const line of specDurations(report)) say(line);
  for (const line of watcher.lines()) say(line);
} catch (err) {
  console.error(`upstream-e2e: ${err instanceof Error ? err.message : String(err)}`);
  code = code || 1;
} finally {
  const problem = await teardown();
  if (problem) {
    console.error(`upstream-e2e: ${problem}`);
    if (code === 0) code = 1;
  }
  say(`testbed stopped; e2e.test exited ${code}; logs and report in ${runDir}`);
}
process.exit(code);

function fail(msg: string, code = 2): never {
  console.error(`upstream-e2e: ${msg}`);
  process.exit(code);
}

/** Runs e2e.test (verbose: each spec's steps, then Ginkgo's summary), its output to stdout and `log`. */
async function runE2e(bin: string, args: string[], log: string): Promise<number> {
  const out = createWriteStream(log);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: runDir });
  const onData = (b: Buffer) => {
    out.write(b);
    process.stdout.write(b);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const code = await new Promise<number>((done, failed) => {
    child.once('error', failed);
    child.once('exit', (c, signal) => done(c ?? (signal ? 128 : 1)));
  });
  await new Promise((r) => out.end(r));
  return code;
}

interface GinkgoSpec {
  LeafNodeText?: string;
  State?: string;
  RunTime?: number;
  LeafNodeType?: string;
}

/** Each run spec's state and duration from Ginkgo's JSON report. */
function specDurations(report: string): string[] {
  if (!existsSync(report)) return ['no Ginkgo JSON report written'];
  const suites = JSON.parse(readFileSync(report, 'utf8')) as Array<{ SpecReports?: GinkgoSpec[] }>;
  const lines: string[] = [];
  for (const s of suites.flatMap((x) => x.SpecReports ?? [])) {
    if (s.LeafNodeType !== 'It' || s.State === 'skipped') continue;
    lines.push(`spec "${s.LeafNodeText}": ${s.State} in ${((s.RunTime ?? 0) / 1e9).toFixed(1)} s`);
  }
  writeFileSync(join(runDir, 'specs.txt'), `${lines.join('\n')}\n`);
  return lines;
}

interface SeenJob {
  name: string;
  ttl?: number;
  finished?: string;
  deletionTimestamp?: string;
  /** When this harness first saw the deletionTimestamp (ms; polls every 500 ms). */
  seenDeletingAt?: number;
}

/**
 * Polls every Job (as admin) while the spec runs and records, per Job with a TTL, when it finished
 * and when its deletion began: how long after its expiry (finish + TTL) the deletion came.
 */
function watchJobDeletions(bed: Testbed): { stop(): void; lines(): string[] } {
  const seen = new Map<string, SeenJob>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const body = await bed.rawGet('/apis/batch/v1/jobs');
      try {
        const list = JSON.parse(body) as {
          items: Array<{
            metadata: { uid: string; namespace: string; name: string; deletionTimestamp?: string };
            spec: { ttlSecondsAfterFinished?: number };
            status?: { conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }> };
          }>;
        };
        for (const j of list.items) {
          const rec = seen.get(j.metadata.uid) ?? { name: `${j.metadata.namespace}/${j.metadata.name}` };
          rec.ttl = j.spec.ttlSecondsAfterFinished;
          const done = j.status?.conditions?.find(
            (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
          );
          rec.finished ??= done?.lastTransitionTime;
          if (j.metadata.deletionTimestamp && !rec.deletionTimestamp) {
            rec.deletionTimestamp = j.metadata.deletionTimestamp;
            rec.seenDeletingAt = Date.now();
          }
          seen.set(j.metadata.uid, rec);
        }
      } catch {
        // the API server is busy or restarting: next poll
      }
      await sleep(500);
    }
  })();
  return {
    stop() {
      running = false;
      void loop;
    },
    lines() {
      return [...seen.values()]
        .filter((j) => j.ttl !== undefined)
        .map((j) => {
          if (!j.finished) return `job ${j.name}: ttl ${j.ttl} s, never finished`;
          const expiry = Date.parse(j.finished) + (j.ttl ?? 0) * 1000;
          if (!j.deletionTimestamp || j.seenDeletingAt === undefined) {
            return `job ${j.name}: finished ${j.finished}, ttl ${j.ttl} s, never deleted`;
          }
          const stampLag = (Date.parse(j.deletionTimestamp) - expiry) / 1000;
          const seenLag = (j.seenDeletingAt - expiry) / 1000;
          return `job ${j.name}: finished ${j.finished}, ttl ${j.ttl} s, deletionTimestamp ${j.deletionTimestamp} = expiry + ${stampLag} s (seen by this harness at expiry + ${seenLag.toFixed(1)} s)`;
        });
    },
  };
}
