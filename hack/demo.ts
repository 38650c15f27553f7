// The Quickstart's main job without a cluster: a real local control plane, sample Jobs with every
// kind of TTL, the kttl controller (the bundled binary) cleaning them up while we watch, archiving
// each deleted Job with its pod's last log lines; at the end `kttl history` and `kttl logs` show
// what was archived, through the API server's aggregation layer (docs/archive.md).
import { execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type AggregatedRegistration, registerArchiveApi } from '../test/testbed/aggregated.ts';
import { issueServingCert } from '../test/testbed/certs.ts';
import { setNamespaceLogs, writeContainerLog } from '../test/testbed/pod-logs.ts';
import { freePort } from '../test/testbed/processes.ts';
import { REPO_ROOT, Testbed } from '../test/testbed/testbed.ts';
import {
  clientsFor,
  type JobOptions,
  jobManifest,
  jobState,
  newNamespace,
  TEST_LABELS,
} from '../test/testbed/use.ts';

const t0 = Date.now();
const say = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

say(
  'starting a local control plane (etcd, kube-apiserver, kube-controller-manager without the native TTL controller, kube-scheduler, kwok)',
);
const tb = await Testbed.start();
let controller: ReturnType<typeof spawn> | undefined;
let aggregated: AggregatedRegistration | undefined;
const shutdown = async () => {
  await aggregated?.unregister().catch(() => undefined);
  controller?.kill('SIGTERM');
  await tb.stop();
};
const BIN = join(REPO_ROOT, 'dist/kttl.mjs');
const kttl = async (args: string[]) =>
  (await promisify(execFile)(process.execPath, [BIN, '--kubeconfig', tb.kubeconfigPath, ...args])).stdout;
process.once('SIGINT', () => void shutdown().then(() => process.exit(130)));
try {
  const c = clientsFor(tb);
  const ns = await newNamespace(c, 'demo');
  say(`control plane up; namespace ${ns}`);
  const samples: Array<Omit<JobOptions, 'namespace'> & { note: string }> = [
    { name: 'native-ttl-5s', ttlSecondsAfterFinished: 5, note: '.spec.ttlSecondsAfterFinished: 5' },
    { name: 'annotation-ttl-8s', annotations: { 'kttl.dev/ttl': '8s' }, note: 'kttl.dev/ttl: 8s' },
    {
      name: 'failed-kept-1d',
      annotations: { 'kttl.dev/ttl-succeeded': '3s', 'kttl.dev/ttl-failed': '1d' },
      podLabels: { [TEST_LABELS.fail]: 'true' },
      note: 'fails; ttl-failed: 1d',
    },
    {
      name: 'kots-hook',
      annotations: { 'kots.io/hook-delete-policy': 'hook-succeeded, hook-failed' },
      note: 'kots.io/hook-delete-policy',
    },
    {
      name: 'keep-me',
      annotations: { 'kttl.dev/keep': 'true', 'kttl.dev/ttl': '0' },
      note: 'kttl.dev/keep: "true"',
    },
    { name: 'no-ttl', note: 'no TTL at all' },
    {
      name: 'typo-ttl',
      annotations: { 'kttl.dev/ttl': '5 minutes' },
      note: 'kttl.dev/ttl: "5 minutes" (invalid: kept + Warning Event)',
    },
    {
      name: 'still-running',
      ttlSecondsAfterFinished: 0,
      podLabels: { [TEST_LABELS.run]: 'true' },
      note: 'never finishes; TTL 0',
    },
  ];
  // Every pod's container prints a short training log (kwok serves it through pods/log).
  const lines = Array.from(
    { length: 12 },
    (_, i) => `step ${(i + 1) * 100}: loss ${(2 / (i + 2)).toFixed(4)}`,
  );
  await setNamespaceLogs(tb, ns, { '*': writeContainerLog(tb, [...lines, 'done']) });
  for (const s of samples) {
    await c.batch.createNamespacedJob({ namespace: ns, body: jobManifest({ namespace: ns, ...s }) });
    say(`created job ${s.name.padEnd(18)} ${s.note}`);
  }
  const log = join(tb.state.dir, 'kttl.log');
  // The archive's read API, registered with the API server as v1alpha1.archive.kttl.dev.
  const apiPort = await freePort();
  const SERVICE = 'kttl-archive-api';
  const SERVICE_NS = 'kttl-demo';
  const serving = issueServingCert(
    tb.state.dir,
    tb.state.pki,
    'archive-api',
    SERVICE,
    `DNS:${SERVICE}.${SERVICE_NS}.svc,IP:127.0.0.1`,
  );
  controller = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'dist/kttl.mjs'),
      '--kubeconfig',
      tb.kubeconfigPath,
      'run',
      '--leader-elect=false',
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      '--archive=best-effort',
      `--archive-dsn=${join(tb.state.dir, 'archive.db')}`,
      '--cluster-name=demo',
      `--archive-api-bind-address=127.0.0.1:${apiPort}`,
      `--archive-api-tls-cert-file=${serving.cert}`,
      `--archive-api-tls-private-key-file=${serving.key}`,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const out = createWriteStream(log);
  controller.stdout?.on('data', (b: Buffer) => {
    out.write(b);
    for (const line of b.toString().split('\n')) {
      if (!line.trim()) continue;
      try {
        const rec = JSON.parse(line) as {
          msg: string;
          name?: string;
          latenessSeconds?: number;
          object?: string;
        };
        if (/deleted|invalid/.test(rec.msg))
          say(
            `kttl: ${rec.msg} ${rec.name ?? rec.object ?? ''}${rec.latenessSeconds !== undefined ? ` (${rec.latenessSeconds} s after expiry)` : ''}`,
          );
      } catch {
        // not JSON
      }
    }
  });
  controller.stderr?.pipe(out);
  say('kttl controller started');
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const states = await Promise.all(samples.map(async (s) => `${s.name}=${await jobState(c, ns, s.name)}`));
    const line = states.join('  ');
    if (line !== last) say(line);
    last = line;
    const gone = states.filter((s) => s.endsWith('=gone')).length;
    if (gone === 3 && Date.now() - t0 > 20_000) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const remaining = (await c.batch.listNamespacedJob({ namespace: ns })).items
    .map((j) => j.metadata?.name)
    .sort();
  say(`remaining jobs: ${remaining.join(', ')}`);
  if (process.getuid?.() === 0) {
    aggregated = await registerArchiveApi(tb, {
      port: apiPort,
      serviceNamespace: SERVICE_NS,
      serviceName: SERVICE,
    });
    say(`what kttl archived before deleting (kttl history -n ${ns}, through the aggregation layer):`);
    console.log(await kttl(['history', '-n', ns]));
    say(`the same records as a Kubernetes API (kubectl get deletedobjects -n ${ns}):`);
    console.log(await tb.kubectl(['get', 'deletedobjects', '-n', ns]));
    say(`kttl logs job/annotation-ttl-8s -n ${ns} (the archived log of a deleted Job):`);
    console.log(await kttl(['logs', 'job/annotation-ttl-8s', '-n', ns]));
  } else {
    say(
      `archived records are in ${join(tb.state.dir, 'archive.db')} (kttl history needs root here: the aggregation layer reaches kttl through a network namespace)`,
    );
  }
  say(`(controller log: ${log}, kept while this runs)`);
} finally {
  await shutdown();
  say('control plane stopped');
}
