// Profiles kttl at scale: one testbed holding N finished Jobs (TTL a week ahead), kttl started on
// it several times (node flag variants), each measured for time to ready, RSS and V8 heap; then a
// heap snapshot and a CPU profile of the default variant, summarised (biggest object shapes and
// strings per holder; functions by self time). Run it before and after a memory/CPU change.
//
//   node bench/profile.ts [--n 100000] [--idle-seconds 20] [--dir /tmp/kttl-profile]
//                         [--variant 'name:node flags:kttl flags']...   (default: see VARIANTS)
// Output: a table on stdout, figures in bench/results/profile.json, artefacts in --dir.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { sleep } from '../test/testbed/processes.ts';
import { REPO_ROOT } from '../test/testbed/testbed.ts';
import { Bench, type ControllerProc, kttlBundle, log, procCpuSeconds, startKttl } from './lib.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    'idle-seconds': { type: 'string', default: '20' },
    dir: { type: 'string', default: '/tmp/kttl-profile' },
    variant: { type: 'string', multiple: true, default: [] },
    out: { type: 'string', default: join(REPO_ROOT, 'bench/results/profile.json') },
  },
});

interface Variant {
  name: string;
  nodeArgs: string[];
  kttlArgs: string[];
}

const VARIANTS: Variant[] = [
  { name: 'default', nodeArgs: [], kttlArgs: [] },
  // V8's young generation: 16 MiB semi-spaces by default (x3 reserved); 1 MiB trades a few more
  // scavenges for far less committed heap.
  { name: 'node --max-semi-space-size=1', nodeArgs: ['--max-semi-space-size=1'], kttlArgs: [] },
  { name: 'node --optimize-for-size', nodeArgs: ['--optimize-for-size'], kttlArgs: [] },
];

const n = Number(args.n);
const idleSeconds = Number(args['idle-seconds']);
const dir = resolve(args.dir);
mkdirSync(dir, { recursive: true });
const variants: Variant[] = args.variant.length
  ? args.variant.map((v) => {
      const [name = v, node = '', kttl = ''] = v.split(':');
      const words = (s: string) => s.split(' ').filter(Boolean);
      return { name, nodeArgs: words(node), kttlArgs: words(kttl) };
    })
  : VARIANTS;

const budget = { qps: 20, burst: 30 };
const mb = (bytes: number) => Number((bytes / 2 ** 20).toFixed(1));

async function measure(b: Bench, v: Variant, extraNode: string[] = []): Promise<Record<string, unknown>> {
  const p: ControllerProc = await startKttl(b, budget, {
    namespaces: ['bench'],
    nodeArgs: [...v.nodeArgs, ...extraNode],
    extraArgs: v.kttlArgs,
  });
  const ready = await p.ready(600_000);
  const cpuToReady = procCpuSeconds(p.pid);
  await sleep(5000);
  const rssAfterSync = (p.memory()?.rssKb ?? Number.NaN) * 1024;
  const cpu0 = procCpuSeconds(p.pid);
  await sleep(idleSeconds * 1000);
  const cpu1 = procCpuSeconds(p.pid);
  const self = await p.selfMetrics();
  // Sum over label sets (kttl_tracked_objects has one per kind).
  const get = (name: string) =>
    self.filter((x) => x.name === name).reduce((sum, x) => sum + x.value, 0) || Number.NaN;
  const out = {
    variant: v.name,
    readyS: Number(((ready - p.spawnedAt) / 1000).toFixed(2)),
    cpuToReadyS: cpuToReady,
    rssAfterSyncMb: mb(rssAfterSync),
    rssEndMb: mb((p.memory()?.rssKb ?? Number.NaN) * 1024),
    peakRssMb: mb(p.peakKb() * 1024),
    heapUsedMb: mb(get('nodejs_heap_size_used_bytes')),
    heapTotalMb: mb(get('nodejs_heap_size_total_bytes')),
    externalMb: mb(get('nodejs_external_memory_bytes')),
    idleCpuS: Number((cpu1 - cpu0).toFixed(2)),
    tracked: get('kttl_tracked_objects'),
    heapBytesPerObject: Math.round(
      get('nodejs_heap_size_used_bytes') / Math.max(1, get('kttl_tracked_objects')),
    ),
  };
  log(`  ${JSON.stringify(out)}`);
  return { ...out, proc: p };
}

// --- heap snapshot summary ---------------------------------------------------------------------

interface HeapSnapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

function summariseHeap(file: string): string[] {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot;
  const m = snap.snapshot.meta;
  const nfl = m.node_fields.length;
  const efl = m.edge_fields.length;
  const [ntypes] = m.node_types;
  const [etypes] = m.edge_types;
  const iType = m.node_fields.indexOf('type');
  const iName = m.node_fields.indexOf('name');
  const iSize = m.node_fields.indexOf('self_size');
  const iEc = m.node_fields.indexOf('edge_count');
  const eType = m.edge_fields.indexOf('type');
  const eName = m.edge_fields.indexOf('name_or_index');
  const eTo = m.edge_fields.indexOf('to_node');
  const { nodes, edges, strings } = snap;
  const byType = new Map<string, { n: number; size: number }>();
  const shapes = new Map<string, { n: number; size: number }>();
  const strHolders = new Map<string, { refs: number; ids: Set<number>; size: number }>();
  let total = 0;
  let e = 0;
  for (let i = 0; i < nodes.length; i += nfl) {
    const t = ntypes[nodes[i + iType]!]!;
    const name = strings[nodes[i + iName]!]!;
    const size = nodes[i + iSize]!;
    total += size;
    const isStr = t.includes('string');
    const key = isStr ? `${t}` : t === 'object' || t === 'array' ? `${t} ${name.slice(0, 40)}` : `(${t})`;
    const a = byType.get(key) ?? { n: 0, size: 0 };
    a.n++;
    a.size += size;
    byType.set(key, a);
    const props: string[] = [];
    for (let k = 0; k < nodes[i + iEc]!; k++, e += efl) {
      const et = etypes[edges[e + eType]!]!;
      if (et !== 'property') continue;
      const pname = strings[edges[e + eName]!]!;
      props.push(pname);
      const to = edges[e + eTo]!;
      const tt = ntypes[nodes[to + iType]!]!;
      if (t === 'object' && tt.includes('string')) {
        const hk = `${tt} in ${name}.${pname}`;
        const h = strHolders.get(hk) ?? { refs: 0, ids: new Set<number>(), size: 0 };
        h.refs++;
        if (!h.ids.has(to)) {
          h.ids.add(to);
          h.size += nodes[to + iSize]!;
        }
        strHolders.set(hk, h);
      }
    }
    if (t === 'object' && name === 'Object') {
      const sig = `{${props
        .filter((p) => p !== '__proto__')
        .sort()
        .join(',')
        .slice(0, 120)}}`;
      const s = shapes.get(sig) ?? { n: 0, size: 0 };
      s.n++;
      s.size += size;
      shapes.set(sig, s);
    }
  }
  const fmtMb = (b: number) => `${(b / 2 ** 20).toFixed(2).padStart(7)} MB`;
  const lines = [`heap snapshot ${file}: ${fmtMb(total)} self size in ${nodes.length / nfl} nodes`];
  lines.push('  by node type (self size):');
  for (const [k, a] of [...byType].sort((x, y) => y[1].size - x[1].size).slice(0, 12))
    lines.push(`  ${fmtMb(a.size)} ${String(a.n).padStart(9)}  ${k}`);
  lines.push('  plain objects by shape:');
  for (const [k, a] of [...shapes].sort((x, y) => y[1].size - x[1].size).slice(0, 6))
    lines.push(`  ${fmtMb(a.size)} ${String(a.n).padStart(9)}  ${k}`);
  lines.push('  strings by holding property (distinct strings, self size):');
  for (const [k, h] of [...strHolders].sort((x, y) => y[1].size - x[1].size).slice(0, 12))
    lines.push(`  ${fmtMb(h.size)} ${String(h.ids.size).padStart(9)} distinct / ${h.refs} refs  ${k}`);
  return lines;
}

// --- CPU profile summary -----------------------------------------------------------------------

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

function summariseCpu(file: string): string[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const f = byId.get(id)?.callFrame;
    const us = p.timeDeltas[i] ?? 0;
    if (!f || f.functionName === '(idle)') return;
    const k = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    self.set(k, (self.get(k) ?? 0) + us);
    total += us;
  });
  const lines = [`CPU profile ${file}: ${(total / 1e6).toFixed(2)} s busy (idle excluded)`];
  for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15))
    lines.push(
      `  ${((us / total) * 100).toFixed(1).padStart(5)} %  ${(us / 1e6).toFixed(2).padStart(6)} s  ${k}`,
    );
  return lines;
}

async function newest(ext: string, before: Set<string>, timeoutMs: number): Promise<string> {
  let size = -1;
  for (let waited = 0; waited < timeoutMs; waited += 1000) {
    await sleep(1000);
    const f = readdirSync(dir).find((x) => x.endsWith(ext) && !before.has(x));
    if (!f) continue;
    const sz = statSync(join(dir, f)).size;
    if (sz > 0 && sz === size) return join(dir, f);
    size = sz;
  }
  throw new Error(`no new *${ext} in ${dir}`);
}

// --- main --------------------------------------------------------------------------------------

const b = await Bench.start(budget);
const report: Record<string, unknown> = {
  generatedAt: new Date().toISOString(),
  n,
  kttl: kttlBundle(),
  variants: [] as unknown[],
};
log(`kttl: dist/kttl.mjs built ${kttlBundle().builtAt}, md5 ${kttlBundle().md5} (private copy)`);
try {
  await b.createNamespace('bench');
  const ms = await b.createFinishedJobs({
    namespace: 'bench',
    n,
    prefix: 'scale-',
    finishedAtMs: Date.now() - 60_000,
    ttlSeconds: 7 * 24 * 3600,
    onProgress: (d) => {
      if (d % 20000 === 0) log(`  created ${d}/${n}`);
    },
  });
  log(`${n} Jobs written in ${(ms / 1000).toFixed(0)} s`);
  for (const v of variants) {
    log(`variant ${v.name}`);
    const r = await measure(b, v);
    await (r.proc as ControllerProc).stop();
    delete r.proc;
    (report.variants as unknown[]).push(r);
  }
  // A CPU profile (start, sync, idle) and then a heap snapshot of the first variant, each in a run
  // of its own so neither disturbs the other; node writes both into --dir.
  log(`profiling ${variants[0]!.name}: CPU profile`);
  let before = new Set(readdirSync(dir));
  const cpuRun = await measure(b, variants[0]!, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  await (cpuRun.proc as ControllerProc).stop(); // SIGTERM: kttl exits cleanly, node writes the profile
  const cpuFile = await newest('.cpuprofile', before, 60_000);
  log(`profiling ${variants[0]!.name}: heap snapshot`);
  before = new Set(readdirSync(dir));
  const heapRun = await measure(b, variants[0]!, [
    '--heapsnapshot-signal=SIGUSR2',
    `--diagnostic-dir=${dir}`,
  ]);
  const proc = heapRun.proc as ControllerProc;
  process.kill(proc.pid, 'SIGUSR2');
  const heapFile = await newest('.heapsnapshot', before, 300_000);
  await proc.stop();
  const lines = [...summariseHeap(heapFile), ...summariseCpu(cpuFile)];
  report.heapSnapshot = heapFile;
  report.cpuProfile = cpuFile;
  report.summary = lines;
  console.log(
    '\n| variant | ready | RSS after sync | peak RSS | V8 heap used / total | heap bytes per Job | idle CPU |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const v of report.variants as Array<Record<string, number | string>>)
    console.log(
      `| ${v.variant} | ${v.readyS} s | ${v.rssAfterSyncMb} MB | ${v.peakRssMb} MB | ${v.heapUsedMb} / ${v.heapTotalMb} MB | ${v.heapBytesPerObject} B | ${v.idleCpuS} s / ${idleSeconds} s |`,
    );
  console.log(`\n${lines.join('\n')}`);
  writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
  log(`figures in ${args.out}`);
} finally {
  await b.stop();
}
