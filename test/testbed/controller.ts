// Running kttl's controller in integration tests: in-process (to reach its metrics and test seams)
// or as the built binary in a child process (to kill -9 it, run two replicas, restart it).
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { ArchiveStore, RecordSummary } from '../../src/archive/types.ts';
import { type Clock, systemClock } from '../../src/clock.ts';
import { type RunningApp, type RunOptions, startApp } from '../../src/controller/app.ts';
import type { ObjectSummary } from '../../src/rules/types.ts';
import { BIN } from './cli.ts';
import { kubeConfigFromFile } from './clients.ts';
import { controllerKubeconfigPath } from './identities.ts';
import { freePort, sleep, waitFor } from './processes.ts';
import type { Testbed } from './testbed.ts';

export function runOptions(namespaces: string[], o: Partial<RunOptions> = {}): RunOptions {
  return {
    kubeApiQps: 20,
    kubeApiBurst: 30,
    dryRun: false,
    nativeJobs: 'handle',
    helmHooks: true,
    namespaces,
    excludeNamespaces: ['kube-system'],
    workers: 10,
    resyncMs: 10 * 60_000,
    protobuf: true, // as `kttl run` defaults
    leaderElect: false,
    leaderElectNamespace: namespaces[0] ?? 'default',
    leaderElectName: 'kttl',
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    metricsBindAddress: '0',
    healthProbeBindAddress: '0',
    eventQps: 5,
    eventBurst: 25,
    ...o,
  };
}

/** `kttl run`'s archive options for tests: best-effort into `dsn`, the flags' defaults otherwise. */
export function archiveRunOptions(
  dsn: string,
  o: Partial<NonNullable<RunOptions['archive']>> = {},
): NonNullable<RunOptions['archive']> {
  return {
    mode: 'best-effort',
    dsn,
    clusterName: 'testbed',
    logs: true,
    logLines: 200,
    logBytes: 256 * 1024,
    retentionMs: 90 * 86_400_000,
    maxBytes: 0,
    qps: 100,
    burst: 200,
    ...o,
  };
}

export interface InProcess {
  app: RunningApp;
  registry: Registry;
  /**
   * Stops kttl; rejects when any of its API requests was refused (403): the role is too narrow.
   * `{ forbiddenExpected: true }` (an API server restart, whose authorizer refuses everyone until
   * its caches fill) resolves to the number refused instead.
   */
  stop(o?: { forbiddenExpected?: boolean }): Promise<number>;
}

/** kttl's controller identity (test/testbed/identities.ts: the chart's least-privilege role). */
export function controllerKubeConfig(tb: Testbed): import('@kubernetes/client-node').KubeConfig {
  return kubeConfigFromFile(controllerKubeconfigPath(tb));
}

function assertNoForbidden(forbidden: number, who: string, logFile: string): void {
  if (forbidden === 0) return;
  // The log goes with the testbed: quote the lines that say what was refused.
  const lines = existsSync(logFile)
    ? readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => /403|forbidden/i.test(l))
        .slice(0, 5)
    : [];
  throw new Error(
    `${who}: ${forbidden} API request(s) refused with 403 under the least-privilege role:\n${lines.join('\n')}`,
  );
}

export async function startInProcess(
  tb: Testbed,
  opts: RunOptions,
  beforeDelete?: (obj: ObjectSummary) => Promise<void>,
  clock: Clock = systemClock,
  /** Another kubeconfig for the controller identity (e.g. through test/testbed/fault-proxy.ts). */
  kubeconfigPath?: string,
): Promise<InProcess> {
  const registry = new Registry();
  const logFile = join(tb.state.dir, 'logs', `kttl-inprocess-${process.pid}.log`);
  const logger = pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true }));
  const app = await startApp(opts, {
    kubeConfig: kubeconfigPath ? kubeConfigFromFile(kubeconfigPath) : controllerKubeConfig(tb),
    clock,
    logger,
    registry,
    beforeDelete,
  });
  await app.controller.waitForSync();
  return {
    app,
    registry,
    async stop(o = {}) {
      await app.stop();
      const forbidden = await metricValue(registry, 'kttl_api_requests_total', { code: '403' });
      if (!o.forbiddenExpected) assertNoForbidden(forbidden, 'kttl (in-process)', logFile);
      return forbidden;
    },
  };
}

/** Sum of a counter's values matching the given labels. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  return data.values
    .filter((v) =>
      Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
    )
    .filter((v) => !('metricName' in v) || v.metricName === name || v.metricName === undefined)
    .reduce((n, v) => n + v.value, 0);
}

/** One line of kttl's JSON log. */
export interface LogLine {
  level?: number;
  msg?: string;
  [k: string]: unknown;
}

export interface ChildController {
  proc: ChildProcess;
  metricsPort: number;
  healthPort: number;
  logFile: string;
  metrics(): Promise<string>;
  /** The HTTP status of a health endpoint (0: no answer). */
  health(path: '/healthz' | '/readyz'): Promise<number>;
  /** Its JSON log lines so far. */
  logLines<T extends LogLine = LogLine>(): T[];
  /** Stops it; rejects when any of its API requests was refused (403), unless forbiddenExpected. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnOptions {
  /** Whose rights it runs with; default kttl's least-privilege controller identity. */
  kubeconfig?: string;
  /** What to wait for before returning: /healthz when a refused watch is part of the test. */
  wait?: '/readyz' | '/healthz';
  /** The test provokes 403s and asserts on them itself: stop() does not fail on them. */
  forbiddenExpected?: boolean;
  /** Node options before the bundle, e.g. the image's --max-semi-space-size=1 (Dockerfile). */
  nodeArgs?: string[];
}

/** Starts the built binary (`node scripts/build.ts` must have run; hack/test does). */
export async function spawnController(
  tb: Testbed,
  args: string[],
  label = 'kttl',
  o: SpawnOptions = {},
): Promise<ChildController> {
  const wait = o.wait ?? '/readyz';
  if (!existsSync(BIN)) throw new Error(`${BIN} missing: run node scripts/build.ts`);
  const metricsPort = await freePort();
  const healthPort = await freePort();
  const logFile = join(tb.state.dir, 'logs', `${label}-${metricsPort}.log`);
  const out = createWriteStream(logFile);
  const proc = spawn(
    process.execPath,
    [
      ...(o.nodeArgs ?? []),
      BIN,
      '--kubeconfig',
      o.kubeconfig ?? controllerKubeconfigPath(tb),
      'run',
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${healthPort}`,
      // The archive read API (default :8443) only where a test registers it (archive-api.test).
      '--archive-api-bind-address=0',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  const metrics = async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    return res.text();
  };
  const health = async (path: string) =>
    (await fetch(`http://127.0.0.1:${healthPort}${path}`).catch(() => undefined))?.status ?? 0;
  try {
    await waitFor(
      `${label} ${wait}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`${label} exited with ${proc.exitCode}; see ${logFile}`);
        return (await health(wait)) === 200;
      },
      30_000,
      100,
    );
  } catch (err) {
    // Not up in time: no caller holds it, so it must not live on as an unseen extra replica.
    proc.kill('SIGKILL');
    throw err;
  }
  return {
    proc,
    metricsPort,
    healthPort,
    logFile,
    metrics,
    health,
    logLines: <T extends LogLine>() =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as T;
          } catch {
            return {} as T;
          }
        }),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      // A last look at its metrics before it goes: any 403 means the role is too narrow.
      const forbidden = o.forbiddenExpected
        ? 0
        : await metrics()
            .then((text) => scrape(text, 'kttl_api_requests_total', { code: '403' }))
            .catch(() => 0);
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill(signal);
      await Promise.race([exited, sleep(10_000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      assertNoForbidden(forbidden, label, logFile);
    },
  };
}

/** Reads one sample from Prometheus text output (sum over label sets matching `labels`). */
export function scrape(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

/** Every record of a namespace in an archive store, all pages. */
export async function records(store: ArchiveStore, namespace: string): Promise<RecordSummary[]> {
  const out: RecordSummary[] = [];
  let cont: string | undefined;
  do {
    const page = await store.list({ namespace, limit: 500, ...(cont ? { continue: cont } : {}) });
    out.push(...page.items);
    cont = page.continue;
  } while (cont);
  return out;
}
