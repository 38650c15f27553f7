// Admission latency of `kttl webhook` on a real control plane: Jobs created at a sustained rate
// through the kube-apiserver, in a namespace the webhook is registered for ("with") and in one it is
// not ("without"); both are under the same TTLPolicy, so the only difference is the webhook call.
// The latency of each create (client → API server → webhook → etcd → answer) is recorded.
//
//   node bench/admission.ts [--rate 20] [--seconds 30] [--warmup 3] [--phases both,without,with]
//
// Phases: `both` creates into the two namespaces interleaved (rate/s into each, alternating order),
// so both series see the same apiserver, etcd and machine load: the fair comparison. `with` and
// `without` are one namespace at a time, for reference. Each phase has a warm-up that is not counted.
// The webhook is the built bundle (dist/kttl.mjs `webhook`, run `node scripts/build.ts` first) in its
// own process, with a serving certificate from the testbed CA; the MutatingWebhookConfiguration is
// the one `kttl webhook config` makes (src/webhook/config.ts), plus a namespaceSelector label so only
// the "with" namespace is sent to it. Jobs are created suspended (no Pods: only the create counts).
// The load is open-loop: creates start every 1/rate s whatever the previous ones do.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { webhookConfiguration } from '../src/webhook/config.ts';
import { issueServingCert } from '../test/testbed/certs.ts';
import {
  freePort,
  httpsStatus,
  isAlive,
  sleep,
  startProcess,
  stopPid,
  waitFor,
} from '../test/testbed/processes.ts';
import { REPO_ROOT, Testbed } from '../test/testbed/testbed.ts';
import { AdminApi, KTTL_BUNDLE, log, percentile } from './lib.ts';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    phases: { type: 'string', default: 'both,without,with' },
  },
});
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const PHASES = String(args.phases)
  .split(',')
  .map((p) => p.trim())
  .filter(Boolean);
for (const p of PHASES) if (!['with', 'without', 'both'].includes(p)) throw new Error(`unknown phase ${p}`);
if (!(RATE > 0) || !(SECONDS > 0)) throw new Error('--rate and --seconds must be positive');

const LABEL = 'kttl.bench/webhook';
const CONFIG_NAME = 'kttl-bench';

interface PhaseResult {
  phase: string;
  sent: number;
  errors: number;
  latenciesMs: number[];
  patched: number;
  achievedRate: number;
}

function job(name: string, namespace: string) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace },
    spec: {
      suspend: true,
      backoffLimit: 0,
      template: {
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] },
      },
    },
  };
}

/**
 * One phase: `series` are the namespaces to create in, each at RATE per second (open loop); with
 * two series the creates alternate (with, without, without, with, …) so both see the same
 * conditions. Returns one result per series.
 */
async function phase(
  api: AdminApi,
  series: Array<{ name: string; namespace: string }>,
  seq: { n: number },
): Promise<PhaseResult[]> {
  const run = async (seconds: number, record: boolean): Promise<PhaseResult[]> => {
    const results = series.map((s) => ({
      phase: record ? s.name : `${s.name} (warm-up)`,
      sent: 0,
      errors: 0,
      latenciesMs: [] as number[],
      patched: 0,
      achievedRate: 0,
    }));
    const inflight: Promise<void>[] = [];
    const interval = 1000 / RATE;
    const ticks = Math.round(seconds * RATE);
    const start = performance.now();
    for (let i = 0; i < ticks; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      for (let k = 0; k < series.length; k++) {
        // Alternate which series goes first at each tick.
        const idx = i % 2 === 0 ? k : series.length - 1 - k;
        const s = series[idx]!;
        const r = results[idx]!;
        r.sent++;
        const t0 = performance.now();
        inflight.push(
          api
            .req<{ spec?: { ttlSecondsAfterFinished?: number } }>(
              'POST',
              `/apis/batch/v1/namespaces/${s.namespace}/jobs`,
              job(`j${seq.n++}`, s.namespace),
            )
            .then(
              (res) => {
                const ms = performance.now() - t0;
                if (res.status !== 201) r.errors++;
                else {
                  r.latenciesMs.push(ms);
                  if (res.body.spec?.ttlSecondsAfterFinished !== undefined) r.patched++;
                }
              },
              () => {
                r.errors++;
              },
            ),
        );
      }
    }
    await Promise.all(inflight);
    const elapsed = (performance.now() - start) / 1000;
    for (const r of results) r.achievedRate = r.sent / elapsed;
    return results;
  };
  if (WARMUP > 0) await run(WARMUP, false);
  return await run(SECONDS, true);
}

async function main(): Promise<void> {
  if (!existsSync(KTTL_BUNDLE)) throw new Error(`${KTTL_BUNDLE} missing: run node scripts/build.ts`);
  const attached = process.env.KTTL_TESTBED_STATE;
  log(attached ? `attaching to the testbed at ${attached}` : 'starting a testbed (real control plane)');
  const tb = attached ? Testbed.attach(attached) : await Testbed.start();
  const api = new AdminApi(tb, 64);
  let webhookPid: number | undefined;
  const namespaces = [`bench-with-${process.pid}`, `bench-without-${process.pid}`] as const;
  try {
    await tb.kubectl(['apply', '-f', join(REPO_ROOT, 'deploy/crds/')]);
    await tb.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/ttlpolicies.kttl.dev']);
    for (const ns of namespaces) {
      await tb.kubectl(['create', 'namespace', ns]);
      await tb.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'kttl.dev/v1alpha1',
          kind: 'TTLPolicy',
          metadata: { name: 'bench', namespace: ns },
          spec: { resources: [{ apiVersion: 'batch/v1', kind: 'Job' }], ttl: '1h' },
        }),
      );
    }
    await tb.kubectl(['label', 'namespace', namespaces[0], `${LABEL}=on`]);

    // The webhook: the real binary, its own process.
    const serving = issueServingCert(
      tb.state.dir,
      tb.state.pki,
      'bench-webhook',
      'kttl-webhook',
      'IP:127.0.0.1',
    );
    const ca = readFileSync(tb.state.pki.caCert);
    const port = await freePort();
    const logFile = join(tb.state.dir, 'logs', `bench-webhook-${port}.log`);
    const p = startProcess(
      'kttl webhook',
      process.execPath,
      [
        KTTL_BUNDLE,
        '--kubeconfig',
        tb.kubeconfigPath,
        'webhook',
        '--bind-address',
        `127.0.0.1:${port}`,
        '--tls-cert-file',
        serving.cert,
        '--tls-private-key-file',
        serving.key,
        '--log-level',
        'warn',
      ],
      logFile,
    );
    webhookPid = p.pid;
    tb.state.pids['bench-webhook'] = p.pid;
    await waitFor(
      'kttl webhook /readyz',
      async () => {
        if (!isAlive(p.pid)) throw new Error(`kttl webhook exited; see ${logFile}`);
        return (await httpsStatus(`https://127.0.0.1:${port}/readyz`, ca)) === 200;
      },
      30_000,
      50,
    );
    const config = webhookConfiguration({
      name: CONFIG_NAME,
      url: `https://127.0.0.1:${port}/mutate`,
      caBundlePem: ca.toString(),
      namespace: 'kttl',
      namespaceMatchLabels: { [LABEL]: 'on' },
    });
    await tb.kubectl(['apply', '-f', '-'], JSON.stringify(config));
    await waitFor(
      'the API server calls the webhook',
      async () => {
        const r = await api.req<{ spec?: { ttlSecondsAfterFinished?: number } }>(
          'POST',
          `/apis/batch/v1/namespaces/${namespaces[0]}/jobs?dryRun=All`,
          job('probe', namespaces[0]),
        );
        return r.status === 201 && r.body.spec?.ttlSecondsAfterFinished === 3600;
      },
      30_000,
      200,
    );
    const kubeVersion = execFileSync(tb.bins.kubeApiserver, ['--version']).toString().trim();
    log(
      `${kubeVersion}; webhook pid ${p.pid} on :${port}; ${RATE}/s for ${SECONDS} s per phase (+${WARMUP} s warm-up)`,
    );

    const loadBefore = loadavg()
      .map((x) => x.toFixed(1))
      .join(' ');
    const results: PhaseResult[] = [];
    const seq = { n: 0 };
    for (const ph of PHASES) {
      const withWebhook = { name: 'with', namespace: namespaces[0] };
      const without = { name: 'without', namespace: namespaces[1] };
      if (ph === 'both') {
        log(`phase "both": interleaved, ${RATE}/s into each namespace`);
        const [w, wo] = await phase(api, [withWebhook, without], seq);
        results.push({ ...wo!, phase: 'without (interleaved)' }, { ...w!, phase: 'with (interleaved)' });
      } else {
        const s = ph === 'with' ? withWebhook : without;
        log(`phase "${ph}" (namespace ${s.namespace})`);
        results.push(...(await phase(api, [s], seq)));
      }
    }

    const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
    const rows = results.map((r) => {
      const l = r.latenciesMs;
      const mean = l.reduce((a, b) => a + b, 0) / (l.length || 1);
      return [
        r.phase,
        String(r.sent),
        r.achievedRate.toFixed(1),
        String(r.errors),
        String(r.patched),
        fmt(percentile(l, 50)),
        fmt(percentile(l, 90)),
        fmt(percentile(l, 99)),
        fmt(Math.max(...l)),
        fmt(mean),
      ];
    });
    const header = [
      'webhook',
      'creates',
      'rate/s',
      'errors',
      'patched',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'mean ms',
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) =>
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    console.log(
      `\nAdmission latency of Job creates, ${RATE}/s for ${SECONDS} s per phase (${kubeVersion}, Node ${process.version})`,
    );
    console.log(
      `machine: ${cpus().length} CPUs, load average ${loadBefore} before, ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} after (other work on the machine shows up in both series)`,
    );
    console.log(line(header));
    console.log(line(widths.map((w) => '-'.repeat(w))));
    for (const r of rows) console.log(line(r));
    const all = (name: string) => results.filter((r) => r.phase === name).flatMap((r) => r.latenciesMs);
    const w = all('with (interleaved)').length ? all('with (interleaved)') : all('with');
    const wo = all('without (interleaved)').length ? all('without (interleaved)') : all('without');
    if (w.length && wo.length) {
      const d = (p: number) => {
        const v = percentile(w, p) - percentile(wo, p);
        return `${v >= 0 ? '+' : ''}${fmt(v)} ms`;
      };
      console.log(`\nwebhook overhead (with minus without): p50 ${d(50)}, p90 ${d(90)}, p99 ${d(99)}`);
    }
  } finally {
    await tb
      .kubectl(['delete', 'mutatingwebhookconfiguration', CONFIG_NAME, '--ignore-not-found'])
      .catch(() => '');
    if (webhookPid) {
      await stopPid(webhookPid);
      delete tb.state.pids['bench-webhook'];
    }
    for (const ns of namespaces)
      await tb.kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']).catch(() => '');
    await api.close();
    if (!attached) await tb.stop();
  }
}

await main();
