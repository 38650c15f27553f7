// The idle baseline of `kttl run` (issue 21 item 2): the bundle as the image runs it
// (`node --max-semi-space-size=1 dist/kttl.mjs run`) against an empty testbed; prints RSS at ready
// and after the idle window, V8's heap, and a heap snapshot's code (closures, their
// SharedFunctionInfos and bytecode) by bundled module, through the bundle's source map.
//   node bench/baseline.ts [--idle-seconds 60] [--node-arg=--flag …] [--bundle dist/kttl.mjs] [--json out.json]
// KTTL_TESTBED_STATE=<state.json> attaches to a running testbed instead of starting one.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, sleep, startProcess, stopPid, waitFor } from '../test/testbed/processes.ts';
import { REPO_ROOT, Testbed } from '../test/testbed/testbed.ts';
import { log, procMemory } from './lib.ts';

const { values } = parseArgs({
  options: {
    'idle-seconds': { type: 'string', default: '60' },
    'node-arg': { type: 'string', multiple: true, default: ['--max-semi-space-size=1'] },
    bundle: { type: 'string', default: join(REPO_ROOT, 'dist/kttl.mjs') },
    json: { type: 'string' },
    top: { type: 'string', default: '15' },
  },
});
const bundle = resolve(values.bundle);
const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

interface Snapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
  locations: number[];
}

/** The package (or src/<dir>) a bundled source path belongs to. */
export function moduleOf(source: string): string {
  const nm = source.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = source.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? source);
  }
  const src = source.indexOf('src/');
  return src >= 0 ? source.slice(src).split('/').slice(0, 2).join('/') : source;
}

/** Self sizes by node type, and code (closure + SharedFunctionInfo + its code) by bundled module. */
function analyse(s: Snapshot, map: SourceMap) {
  const m = s.snapshot.meta;
  const nf = m.node_fields.length;
  const ef = m.edge_fields.length;
  const [fType, fName, fSize, fEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) =>
    m.node_fields.indexOf(f),
  ) as [number, number, number, number];
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => m.edge_fields.indexOf(f)) as [
    number,
    number,
    number,
  ];
  const types = m.node_types[0];
  const etypes = m.edge_types[0];
  const N = s.nodes;
  const firstEdge = new Uint32Array(N.length / nf);
  for (let i = 0, e = 0; i < N.length; i += nf) {
    firstEdge[i / nf] = e;
    e += (N[i + fEdges] ?? 0) * ef;
  }
  const byType = new Map<string, number>();
  for (let i = 0; i < N.length; i += nf) {
    const t = types[N[i + fType] ?? 0] ?? '?';
    byType.set(t, (byType.get(t) ?? 0) + (N[i + fSize] ?? 0));
  }
  const edgesOf = function* (node: number) {
    const start = firstEdge[node / nf] ?? 0;
    for (let e = start; e < start + (N[node + fEdges] ?? 0) * ef; e += ef) {
      const t = etypes[s.edges[e + eType] ?? 0];
      const name = t === 'element' || t === 'hidden' ? '' : s.strings[s.edges[e + eName] ?? 0];
      yield { type: t, name, to: s.edges[e + eTo] ?? 0 };
    }
  };
  // The bundle is the script most closures come from.
  const scripts = new Map<number, number>();
  for (let i = 0; i < s.locations.length; i += 4) {
    const id = s.locations[i + 1] ?? 0;
    scripts.set(id, (scripts.get(id) ?? 0) + 1);
  }
  const bundleScript = [...scripts].sort((a, b) => b[1] - a[1])[0]?.[0];
  const byModule = new Map<string, number>();
  const counted = new Set<number>();
  for (let i = 0; i < s.locations.length; i += 4) {
    if (s.locations[i + 1] !== bundleScript) continue;
    const node = s.locations[i] ?? 0;
    const entry = map.findEntry(s.locations[i + 2] ?? 0, s.locations[i + 3] ?? 0) as {
      originalSource?: string;
    };
    const mod = entry.originalSource ? moduleOf(entry.originalSource) : '(unmapped)';
    let size = N[node + fSize] ?? 0;
    for (const e of edgesOf(node)) {
      if (e.name !== 'shared' || counted.has(e.to)) continue;
      counted.add(e.to);
      size += N[e.to + fSize] ?? 0;
      // The SharedFunctionInfo's bytecode, scope info, feedback metadata: code nodes it holds.
      for (const c of edgesOf(e.to))
        if (types[N[c.to + fType] ?? 0] === 'code' && !counted.has(c.to)) {
          counted.add(c.to);
          size += N[c.to + fSize] ?? 0;
        }
    }
    byModule.set(mod, (byModule.get(mod) ?? 0) + size);
  }
  const bigStrings: Array<{ mb: number; start: string }> = [];
  for (let i = 0; i < N.length; i += nf)
    if (types[N[i + fType] ?? 0] === 'string' && (N[i + fSize] ?? 0) > 256 * 1024)
      bigStrings.push({
        mb: mb(N[i + fSize] ?? 0),
        start: (s.strings[N[i + fName] ?? 0] ?? '').slice(0, 60),
      });
  return { byType, byModule, bigStrings };
}

async function main(): Promise<void> {
  const attached = process.env.KTTL_TESTBED_STATE;
  const tb = attached ? Testbed.attach(attached) : await Testbed.start();
  const dir = mkdtempSync(join(tmpdir(), 'kttl-baseline-'));
  try {
    const health = await freePort();
    const args = [
      ...(values['node-arg'] ?? []),
      '--heapsnapshot-signal=SIGUSR2',
      `--diagnostic-dir=${dir}`,
      bundle,
      'run',
      `--kubeconfig=${tb.kubeconfigPath}`,
      '--leader-elect=false',
      '--namespaces=default',
      '--metrics-bind-address=0',
      `--health-probe-bind-address=127.0.0.1:${health}`,
    ];
    const t0 = Date.now();
    const proc = startProcess('kttl-baseline', process.execPath, args, join(dir, 'kttl.log'));
    try {
      await waitFor(
        'kttl ready',
        async () => (await fetch(`http://127.0.0.1:${health}/readyz`).catch(() => null))?.ok === true,
        60_000,
        100,
      );
      const readyS = (Date.now() - t0) / 1000;
      const atReady = procMemory(proc.pid);
      log(
        `ready in ${readyS.toFixed(1)} s, RSS ${mb((atReady?.rssKb ?? 0) * 1024)} MB; idle ${values['idle-seconds']} s`,
      );
      await sleep(Number(values['idle-seconds']) * 1000);
      const idle = procMemory(proc.pid);
      process.kill(proc.pid, 'SIGUSR2');
      const file = await waitFor(
        'heap snapshot',
        async () => {
          const f = readdirSync(dir).find((n) => n.endsWith('.heapsnapshot'));
          if (!f) return undefined;
          // Written when the JSON is complete (it ends with the strings array).
          const text = readFileSync(join(dir, f), 'utf8');
          return text.trimEnd().endsWith(']}') ? text : undefined;
        },
        60_000,
        250,
      );
      const map = new SourceMap(JSON.parse(readFileSync(`${bundle}.map`, 'utf8')));
      const a = analyse(JSON.parse(file) as Snapshot, map);
      const top = Number(values.top);
      const heapMb = mb([...a.byType.values()].reduce((x, y) => x + y, 0));
      const out = {
        bundle,
        nodeArgs: values['node-arg'],
        readyS,
        rssReadyMb: mb((atReady?.rssKb ?? 0) * 1024),
        rssIdleMb: mb((idle?.rssKb ?? 0) * 1024),
        idleSeconds: Number(values['idle-seconds']),
        heapSnapshotMb: heapMb,
        heapByType: Object.fromEntries([...a.byType].sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, mb(v)])),
        codeByModule: [...a.byModule]
          .sort((x, y) => y[1] - x[1])
          .slice(0, top)
          .map(([k, v]) => ({ module: k, mb: mb(v) })),
        bigStrings: a.bigStrings.sort((x, y) => y.mb - x.mb).slice(0, top),
      };
      console.log(
        `RSS at ready ${out.rssReadyMb} MB, after ${out.idleSeconds} s idle ${out.rssIdleMb} MB; heap (snapshot) ${heapMb} MB`,
      );
      console.log('heap by type (MB):', JSON.stringify(out.heapByType));
      console.log(`code by module, top ${top} (closures + SharedFunctionInfos + bytecode, MB):`);
      for (const r of out.codeByModule) console.log(`  ${String(r.mb).padStart(6)}  ${r.module}`);
      console.log('strings over 256 KiB:');
      for (const r of out.bigStrings)
        console.log(`  ${String(r.mb).padStart(6)}  ${JSON.stringify(r.start)}`);
      if (values.json) writeFileSync(values.json, `${JSON.stringify(out, null, 2)}\n`);
    } finally {
      await stopPid(proc.pid);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (!attached) await tb.stop();
  }
}

if (import.meta.main) await main();
