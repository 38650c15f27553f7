// The archive's cost: a drain of N expired Jobs with one (kwok) pod each, whose container has a log
// of real-looking lines, run on one real control plane (test/testbed) at the same main budget:
//   native    kube-controller-manager's ttl-after-finished controller (the reference; no archive)
//   off       kttl, --archive=off
//   sqlite    kttl, --archive=best-effort --archive-dsn=<file>
//   postgres  kttl, --archive=best-effort --archive-dsn=postgres://… (a real server, test/testbed/postgres.ts)
// Each mode gets its own namespace with the same N Jobs and pods, created before the controller
// starts (all long expired); measured from the process start until every Job is marked for
// deletion or gone (bench/lib.ts DeletionWatch), as bench/run.ts's drain.
//
//   node bench/archive.ts                       # N = 1,000, all four modes
//   node bench/archive.ts --n 200 --modes off,sqlite
// Options: --n N  --modes native,off,sqlite,postgres  --log-lines 250  --qps 20 --burst 30
//          --kttl-arg ARG (repeatable; e.g. --workers=20, --archive-qps=200)  --out bench/results/archive.json
//
// Requests: the controller runs as user bench-controller and bench/lib.ts counts its requests
// server-side by FlowSchema (jobs by verb, pods, pods/log, events, other). kttl's main client counts
// its own in kttl_api_requests_total{verb}; the archive's client (user agent kttl-archive, its own
// budget) is not in that metric, so archive requests = server-side count − main-client count.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { setNamespaceLogs, writeContainerLog } from '../test/testbed/pod-logs.ts';
import { PostgresServer } from '../test/testbed/postgres.ts';
import { sleep, waitFor } from '../test/testbed/processes.ts';
import { REPO_ROOT, readVersions } from '../test/testbed/testbed.ts';
import {
  Bench,
  type Budget,
  type ControllerProc,
  diffCounts,
  kttlBundle,
  log,
  procCpuSeconds,
  type Sample,
  startKttl,
  startNative,
} from './lib.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    modes: { type: 'string', default: 'native,off,sqlite,postgres' },
    'log-lines': { type: 'string', default: '250' },
    qps: { type: 'string', default: '20' },
    burst: { type: 'string', default: '30' },
    'kttl-arg': { type: 'string', multiple: true, default: [] },
    out: { type: 'string', default: join(REPO_ROOT, 'bench/results/archive.json') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: node bench/archive.ts [--n 1000] [--modes native,off,sqlite,postgres] [--log-lines 250]\n' +
      '                             [--qps 20] [--burst 30] [--kttl-arg ARG]... [--out bench/results/archive.json]',
  );
  process.exit(0);
}

type Mode = 'native' | 'off' | 'sqlite' | 'postgres';
const MODES: Mode[] = ['native', 'off', 'sqlite', 'postgres'];
const modes = args.modes.split(',').map((m) => m.trim()) as Mode[];
for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m}`);
const n = Number(args.n);
const logLines = Number(args['log-lines']);
const budget: Budget = { qps: Number(args.qps), burst: Number(args.burst) };
const kttlArgs = args['kttl-arg'] ?? [];
const NODE = 'kwok-node-0';
// The controllers' logs, kept after the testbed is gone.
const logDir = mkdtempSync(join(tmpdir(), 'kttl-bench-archive-logs-'));

const round = (v: number, digits = 2) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);
const s = (ms: number) => ms / 1000;

// ---------------------------------------------------------------------------------------------
// A training job's log: timestamps, steps, losses, a few warnings (varied, so compression is real)
// ---------------------------------------------------------------------------------------------

function trainingLog(lines: number, seed = 42): string[] {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const t0 = Date.parse('2026-12-01T22:14:05.000Z');
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const t = new Date(t0 + i * 1370 + Math.floor(rnd() * 900)).toISOString();
    const step = 1000 + i * 50;
    const r = rnd();
    if (r < 0.04) {
      out.push(
        `${t} WARNING [torch.distributed] rank ${Math.floor(rnd() * 8)}: NCCL watchdog: collective took ${(2 + rnd() * 9).toFixed(1)}s (threshold 2.0s), op=ALLREDUCE numel=${Math.floor(rnd() * 2e7)}`,
      );
    } else if (r < 0.1) {
      out.push(
        `${t} INFO [checkpoint] saved /mnt/ckpt/run-7f3a/step-${step}.pt (${(1.2 + rnd()).toFixed(2)} GiB) in ${(3 + rnd() * 4).toFixed(2)}s`,
      );
    } else if (r < 0.16) {
      out.push(
        `${t} INFO [eval] step=${step} val_loss=${(2.1 - i / lines + rnd() * 0.05).toFixed(4)} val_acc=${(0.41 + (0.4 * i) / lines + rnd() * 0.01).toFixed(4)} samples=${Math.floor(8192 + rnd() * 100)}`,
      );
    } else {
      out.push(
        `${t} INFO [trainer] epoch=${1 + Math.floor(i / 80)} step=${step}/60000 loss=${(2.4 - (1.1 * i) / lines + rnd() * 0.08).toFixed(4)} lr=${(3e-4 * (1 - i / (4 * lines))).toExponential(3)} grad_norm=${(0.5 + rnd() * 1.5).toFixed(3)} throughput=${(780 + rnd() * 60).toFixed(1)} samples/s gpu_mem=${(14 + rnd()).toFixed(2)}GiB`,
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Figures from kttl's /metrics
// ---------------------------------------------------------------------------------------------

function metric(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
    .reduce((a, x) => a + x.value, 0);
}

/** histogram_quantile of a Prometheus histogram (linear inside the bucket, as Prometheus does). */
function histogramQuantile(samples: Sample[], name: string, q: number): number {
  const buckets = samples
    .filter((x) => x.name === `${name}_bucket`)
    .map((x) => ({ le: x.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(x.labels.le), c: x.value }))
    .sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.c ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevC = 0;
  for (const b of buckets) {
    if (b.c >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      return prevLe + ((b.le - prevLe) * (rank - prevC)) / Math.max(1e-9, b.c - prevC);
    }
    prevLe = b.le;
    prevC = b.c;
  }
  return prevLe;
}

function bucketsText(samples: Sample[], name: string): string {
  return samples
    .filter((x) => x.name === `${name}_bucket`)
    .map((x) => `${x.labels.le}:${x.value}`)
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// One mode
// ---------------------------------------------------------------------------------------------

type Figures = Record<string, number | string | boolean>;

async function podsSucceeded(b: Bench, ns: string): Promise<{ total: number; succeeded: number }> {
  const list = await b.api.must<{ items: Array<{ status?: { phase?: string } }> }>(
    'GET',
    `/api/v1/namespaces/${ns}/pods`,
  );
  return {
    total: list.items.length,
    succeeded: list.items.filter((p) => p.status?.phase === 'Succeeded').length,
  };
}

async function runMode(b: Bench, mode: Mode, logFile: string, pgServer: PostgresServer | undefined) {
  const ns = `arch-${mode}`;
  await b.createNamespace(ns);
  await setNamespaceLogs(b.tb, ns, { '*': logFile });
  const createdMs = await b.createFinishedJobs({
    namespace: ns,
    n,
    prefix: 'job-',
    finishedAtMs: Date.now() - 3600_000, // finished an hour ago, TTL 60 s: long expired
    ttlSeconds: 60,
    podOnNode: NODE,
    onProgress: (d) => log(`  created ${d}/${n}`),
  });
  log(`  ${mode}: ${n} finished Jobs + pods written in ${s(createdMs).toFixed(1)} s`);
  await waitFor(
    `${n} pods Succeeded`,
    async () => {
      const c = await podsSucceeded(b, ns);
      return c.succeeded === n ? true : undefined;
    },
    300_000,
    1000,
  );
  // The log is served through the API server's pods/log (kwok's kubelet-style server).
  const sample = await b.api.text(`/api/v1/namespaces/${ns}/pods/job-0-pod/log?tailLines=1`);
  if (!sample.includes('2026-12-01T'))
    throw new Error(`pods/log does not serve the log: ${sample.slice(0, 200)}`);

  let dsn = '';
  let sqliteFile = '';
  let sqliteDir = '';
  if (mode === 'sqlite') {
    sqliteDir = mkdtempSync(join(tmpdir(), 'kttl-bench-archive-'));
    sqliteFile = join(sqliteDir, 'archive.db');
    dsn = sqliteFile;
  } else if (mode === 'postgres') {
    if (!pgServer) throw new Error('no PostgreSQL server');
    dsn = await pgServer.createDatabase(`bench_${Date.now()}`);
  }
  const extraArgs =
    mode === 'off'
      ? ['--archive=off', ...kttlArgs]
      : ['--archive=best-effort', `--archive-dsn=${dsn}`, ...kttlArgs];

  const watch = b.watchDeletions(ns, await b.currentResourceVersion(ns));
  const c0 = await b.requestCounts();
  const proc: ControllerProc =
    mode === 'native'
      ? await startNative(b, budget, 'native')
      : await startKttl(b, budget, { namespaces: [ns], extraArgs, label: `kttl-${mode}` });
  log(`  ${mode}: started (pid ${proc.pid})`);
  let readyAt = Number.NaN;
  void proc.ready(600_000).then(
    (t) => {
      readyAt = t;
    },
    () => undefined,
  );
  const complete = await watch.waitForCount(n, proc.spawnedAt + 3600_000, (k) =>
    log(`  ${mode}: ${k}/${n} deleted after ${s(Date.now() - proc.spawnedAt).toFixed(0)} s`),
  );
  const c1 = await b.requestCounts();
  const peakKb = proc.peakKb();
  const cpuS = procCpuSeconds(proc.pid);
  const self = mode === 'native' ? [] : await proc.selfMetrics();
  await proc.stop();
  await watch.stop();
  copyFileSync(proc.logFile, join(logDir, `${mode}.log`));

  const times = [...watch.seen.values()].sort((a, x) => a - x);
  const deleted = times.length;
  const first = times[0] ?? Number.NaN;
  const last = times[deleted - 1] ?? Number.NaN;
  const counts = diffCounts(c0, c1);
  const j = counts.controllerJobs;
  const f: Figures = {
    mode,
    n,
    deleted,
    complete,
    readyS: round(s(readyAt - proc.spawnedAt), 2),
    firstDeletionS: round(s(first - proc.spawnedAt), 2),
    toAllS: round(s(last - proc.spawnedAt), 2),
    // From the first deletion to the last: the drain's steady rate.
    ratePerS: round(deleted > 1 ? (deleted - 1) / s(last - first) : Number.NaN, 2),
    // All N over the time from process start (includes start-up and sync).
    overallPerS: round(deleted / s(last - proc.spawnedAt), 2),
    peakRssMb: round(peakKb / 1024, 1),
    cpuS: round(cpuS, 2),
    // Server-side, user bench-controller (main + archive client).
    srvJobsGet: j.get ?? 0,
    srvJobsDelete: j.delete ?? 0,
    srvJobsWrites: (j.patch ?? 0) + (j.update ?? 0) + (j.create ?? 0),
    srvJobsListWatch: (j.list ?? 0) + (j.watch ?? 0),
    srvPods: counts.controllerPods,
    // pods/log is outside APF (a long-running subresource): apiserver_request_total, all clients;
    // only the archive reads logs while this runs.
    srvPodLogs: counts.allPodLogs,
    srvEvents: counts.controllerEvents,
    srvOther: counts.controllerOther,
  };
  if (self.length) {
    const verbs = (v: string) => metric(self, 'kttl_api_requests_total', { verb: v });
    f.mainRequestsByVerb = self
      .filter((x) => x.name === 'kttl_api_requests_total')
      .map((x) => `${x.labels.verb}/${x.labels.code}=${x.value}`)
      .join(' ');
    f.mainAll = metric(self, 'kttl_api_requests_total');
    f.mainDelete = verbs('delete');
    // The archive GETs each object once before its record (docs/archive.md; archive off: no GET on
    // jobs at all), so the main client's requests on jobs are the server-side GET+DELETE minus those.
    const records = metric(self, 'kttl_archive_records_total');
    f.mainJobsPerDeletion = round(((j.get ?? 0) + (j.delete ?? 0) - records) / deleted, 3);
    const reads = (j.get ?? 0) + counts.controllerPods + counts.allPodLogs + counts.controllerEvents;
    f.serverReads = reads;
  }
  if (self.length) {
    f.kttlDeletions = metric(self, 'kttl_deletions_total', { dry_run: 'false' });
    // Heap at the end of the drain (RSS above is the peak): where the memory is.
    f.heapUsedEndMb = round(metric(self, 'nodejs_heap_size_used_bytes') / 2 ** 20, 1);
    f.heapTotalEndMb = round(metric(self, 'nodejs_heap_size_total_bytes') / 2 ** 20, 1);
    f.externalEndMb = round(metric(self, 'nodejs_external_memory_bytes') / 2 ** 20, 1);
    f.conflicts = metric(self, 'kttl_delete_conflicts_total');
    if (mode !== 'off') {
      f.records = metric(self, 'kttl_archive_records_total');
      f.archiveFailures = self
        .filter((x) => x.name === 'kttl_archive_failures_total')
        .map((x) => `${x.labels.reason}=${x.value}`)
        .join(' ');
      f.writeP50Ms = round(histogramQuantile(self, 'kttl_archive_write_seconds', 0.5) * 1000, 1);
      f.writeP99Ms = round(histogramQuantile(self, 'kttl_archive_write_seconds', 0.99) * 1000, 1);
      const sum = metric(self, 'kttl_archive_write_seconds_sum');
      const count = metric(self, 'kttl_archive_write_seconds_count');
      f.writeMeanMs = round((sum / count) * 1000, 1);
      f.writeBuckets = bucketsText(self, 'kttl_archive_write_seconds');
    }
  }
  if (mode === 'sqlite') {
    let bytes = 0;
    for (const suffix of ['', '-wal', '-shm'])
      if (existsSync(sqliteFile + suffix)) bytes += statSync(sqliteFile + suffix).size;
    const db = new DatabaseSync(sqliteFile, { readOnly: true });
    const rows = (db.prepare('SELECT count(*) AS c FROM archive_records').get() as { c: number }).c;
    db.close();
    f.dbRecords = rows;
    f.dbBytes = bytes;
    f.bytesPerRecord = round(bytes / rows, 0);
    rmSync(sqliteDir, { recursive: true, force: true });
  } else if (mode === 'postgres') {
    const c = new pg.Client({ connectionString: dsn });
    await c.connect();
    try {
      const rows = Number((await c.query('SELECT count(*) AS c FROM archive_records')).rows[0].c);
      const size = await c.query(
        "SELECT c.relname AS t, pg_total_relation_size(c.oid) AS b FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'",
      );
      const bytes = size.rows.reduce((a: number, r: { b: string }) => a + Number(r.b), 0);
      f.dbRecords = rows;
      f.dbBytes = bytes;
      f.dbTables = size.rows.map((r: { t: string; b: string }) => `${r.t}=${r.b}`).join(' ');
      f.bytesPerRecord = round(bytes / rows, 0);
    } finally {
      await c.end();
    }
  }
  log(`  ${mode}: ${JSON.stringify(f)}`);
  // The garbage collector deletes the pods behind the Jobs (on its own budget): let it finish so the
  // next mode does not share the API server with this one's leftovers.
  await waitFor(
    `pods of ${ns} gone`,
    async () => ((await podsSucceeded(b, ns)).total === 0 ? true : undefined),
    600_000,
    2000,
  ).catch((err) => log(`  ${(err as Error).message}`));
  await sleep(2000);
  return f;
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

/** The archive client's reads: jobs GET, pods, pods/log and events server-side, minus what kttl
 *  with the archive off sent of those (its pod watch, its one Event write). */
function archiveReads(results: Figures[]): void {
  const off = results.find((r) => r.mode === 'off');
  for (const r of results) {
    if (r.mode === 'native' || r.mode === 'off' || typeof r.serverReads !== 'number') continue;
    r.archiveRequests = r.serverReads - ((off?.serverReads as number | undefined) ?? 0);
    r.archivePerDeletion = round((r.archiveRequests as number) / (r.deleted as number), 3);
  }
}

function table(results: Figures[]): string {
  const off = results.find((r) => r.mode === 'off');
  const v = (r: Figures, k: string) => (r[k] === undefined ? '–' : String(r[k]));
  const ratio = (r: Figures) =>
    off && r.mode !== 'native' && typeof r.ratePerS === 'number'
      ? `${((r.ratePerS / (off.ratePerS as number)) * 100).toFixed(1)} %`
      : '–';
  const head = ['', ...results.map((r) => String(r.mode))];
  const rows: [string, (r: Figures) => string][] = [
    ['deletions/s (first to last)', (r) => v(r, 'ratePerS')],
    ['  of archive off', ratio],
    ['deletions/s (all N / time from start)', (r) => v(r, 'overallPerS')],
    ['time until all deleted (from start, s)', (r) => v(r, 'toAllS')],
    ['first deletion after start (s)', (r) => v(r, 'firstDeletionS')],
    [
      'archive write p50 / p99 (ms, histogram)',
      (r) => (r.writeP50Ms === undefined ? '–' : `${r.writeP50Ms} / ${r.writeP99Ms}`),
    ],
    ['archive write mean (ms)', (r) => v(r, 'writeMeanMs')],
    [
      'records / failures',
      (r) => (r.records === undefined ? '–' : `${r.records} / ${r.archiveFailures || 0}`),
    ],
    ['database size per record (bytes)', (r) => v(r, 'bytesPerRecord')],
    ['database size (MB)', (r) => (typeof r.dbBytes === 'number' ? (r.dbBytes / 2 ** 20).toFixed(2) : '–')],
    ['peak RSS (MB)', (r) => v(r, 'peakRssMb')],
    ['CPU time (s)', (r) => v(r, 'cpuS')],
    ['main client: requests on jobs per deletion', (r) => v(r, 'mainJobsPerDeletion')],
    ['main client: all requests (incl. start-up discovery)', (r) => v(r, 'mainAll')],
    [
      'archive client: reads per deletion (server-side, minus archive off)',
      (r) => v(r, 'archivePerDeletion'),
    ],
    ['server-side jobs GET / DELETE', (r) => `${r.srvJobsGet} / ${r.srvJobsDelete}`],
    ['server-side pods / pods/log / events', (r) => `${r.srvPods} / ${r.srvPodLogs} / ${r.srvEvents}`],
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const [label, fn] of rows) lines.push(`| ${label} | ${results.map(fn).join(' | ')} |`);
  return lines.join('\n');
}

const results: Figures[] = [];
const out = {
  generatedAt: new Date().toISOString(),
  command: `node bench/archive.ts ${process.argv.slice(2).join(' ')}`.trim(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '',
    memGiB: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
  },
  versions: readVersions(),
  kttl: modes.some((m) => m !== 'native') ? kttlBundle() : undefined,
  budget,
  logLines,
  kttlArgs,
  results,
};

const bench = await Bench.start({ qps: 20, burst: 30 });
let pgServer: PostgresServer | undefined;
const stopAll = async () => {
  await pgServer?.destroy().catch(() => undefined);
  await bench.stop();
};
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    log(`${sig}: stopping`);
    void stopAll().then(() => process.exit(130));
  });
try {
  if (modes.includes('postgres')) pgServer = await PostgresServer.start();
  const lines = trainingLog(logLines);
  const logFile = writeContainerLog(bench.tb, lines);
  log(
    `log per container: ${lines.length} lines, ${statSync(logFile).size} bytes as CRI file, ` +
      `${lines.reduce((a, l) => a + l.length + 1, 0)} bytes of text`,
  );
  for (const mode of modes) {
    log(`archive bench, N = ${n}: ${mode}`);
    results.push(await runMode(bench, mode, logFile, pgServer));
    archiveReads(results);
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, `${JSON.stringify(out, null, 2)}\n`);
  }
} finally {
  await stopAll();
}
console.log(`\n${table(results)}\n`);
log(`results in ${args.out}; controller logs in ${logDir}`);
