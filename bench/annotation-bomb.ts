// A tenant's annotation bomb against kttl's leader, on a real control plane (test/testbed):
// N finished Jobs (1,000 by default), each with a ~256 KiB kots.io/hook-delete-policy of commas
// (BYTES - i for Job i)
// (the most the API server takes in an object's annotations), then kttl as the built binary with
// leader election on a short lease (4 s, renew deadline 3 s) and a short resync (5 s: each resync
// re-judges every cached object at once). While it syncs and for a window after, the bench scrapes
// its /metrics every 200 ms and prints:
//   - the worst event-loop stall (prom-client's nodejs_eventloop_lag_max_seconds, reset by each
//     scrape; its histogram resolution is 10 ms, so ~10 ms is an idle loop), during the sync and after;
//   - whether the lease was lost (kttl_leader fell to 0, the process exited, or the Lease changed hands);
//   - how late 20 normal Jobs (TTL 2 s, created in the window) were deleted.
// Before the size cap (src/rules/summary.ts) each judgement of such a Job split 262,144 items.
//
//   node bench/annotation-bomb.ts                 # 1,000 Jobs, 30 s window
//   node bench/annotation-bomb.ts --n 300 --window 20 --out /tmp/bomb.json
// The figures go to stdout and, with --out, to a JSON file (default bench/results/annotation-bomb.json).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { sleep } from '../test/testbed/processes.ts';
import { REPO_ROOT } from '../test/testbed/testbed.ts';
import { Bench, type ControllerProc, kttlBundle, log, type Sample, startKttl } from './lib.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    bytes: { type: 'string', default: String(256 * 1024 - 100) },
    window: { type: 'string', default: '30' },
    out: { type: 'string', default: 'bench/results/annotation-bomb.json' },
  },
});
const N = Number(args.n);
const BYTES = Number(args.bytes);
const WINDOW_S = Number(args.window);
const NORMALS = 20;
const NORMAL_TTL_S = 2;
const BUDGET = { qps: 20, burst: 30 };
const LEASE_NS = 'default';

const value = (samples: Sample[], name: string): number =>
  samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);

interface Phase {
  maxLagMs: number;
  scrapes: number;
}

/** Scrapes kttl's /metrics until stopped: worst loop stall per phase, and any loss of leadership. */
class Watcher {
  readonly phases = new Map<string, Phase>();
  phase = 'sync';
  leaderSeen = false;
  leaderLost = false;
  exited = false;
  #running = true;
  readonly done: Promise<void>;
  readonly k: ControllerProc;
  constructor(k: ControllerProc) {
    this.k = k;
    this.done = this.#loop();
  }
  async #loop(): Promise<void> {
    while (this.#running) {
      const samples = await this.k.selfMetrics().catch(() => null);
      if (samples === null) {
        if (this.leaderSeen) this.exited = true;
      } else {
        const p = this.phases.get(this.phase) ?? { maxLagMs: 0, scrapes: 0 };
        p.maxLagMs = Math.max(p.maxLagMs, value(samples, 'nodejs_eventloop_lag_max_seconds') * 1000);
        p.scrapes++;
        this.phases.set(this.phase, p);
        const leader = value(samples, 'kttl_leader');
        if (leader === 1) this.leaderSeen = true;
        else if (this.leaderSeen) this.leaderLost = true;
      }
      await sleep(200);
    }
  }
  async stop(): Promise<void> {
    this.#running = false;
    await this.done;
  }
}

async function main(): Promise<void> {
  const bundle = kttlBundle();
  log(`bundle ${bundle.md5} (built ${bundle.builtAt}); ${N} Jobs with ${BYTES}-byte hook annotations`);
  const bench = await Bench.start(BUDGET);
  let kttl: ControllerProc | undefined;
  try {
    await bench.createNamespace('bomb');
    await bench.createNamespace('normal');
    const createMs = await bench.createFinishedJobs({
      namespace: 'bomb',
      n: N,
      prefix: 'bomb-',
      finishedAtMs: Date.now() - 60_000,
      // Pending for a day through the native field, if the hook annotation were passed over.
      ttlSeconds: 86_400,
      // A different length each: equal values would share one string (the summary's pool), which
      // V8 splits once and then answers from its cache; a tenant would not be so kind.
      annotations: (i) => ({ 'kots.io/hook-delete-policy': ','.repeat(BYTES - i) }),
      concurrency: 8,
    });
    log(`${N} bomb Jobs written in ${(createMs / 1000).toFixed(1)} s`);

    const leaseBefore = await bench.api.req<{ spec?: { leaseTransitions?: number } }>(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NS}/leases/kttl`,
    );
    kttl = await startKttl(bench, BUDGET, {
      namespaces: ['bomb', 'normal'],
      label: 'kttl-bomb',
      extraArgs: [
        '--leader-elect=true',
        `--leader-elect-resource-namespace=${LEASE_NS}`,
        '--leader-elect-lease-duration=4s',
        '--leader-elect-renew-deadline=3s',
        '--leader-elect-retry-period=1s',
        '--resync-period=5s',
      ],
    });
    const w = new Watcher(kttl);
    const readyAt = await kttl.ready(300_000);
    const syncS = (readyAt - kttl.spawnedAt) / 1000;
    log(`kttl synced ${N} bomb Jobs in ${syncS.toFixed(1)} s`);
    w.phase = 'after sync';

    // Normal Jobs in the window: each due 2 s after its finish.
    const rv = await bench.currentResourceVersion('normal');
    const deletions = bench.watchDeletions('normal', rv);
    const finishedAtMs = Math.floor(Date.now() / 1000) * 1000;
    await bench.createFinishedJobs({
      namespace: 'normal',
      n: NORMALS,
      prefix: 'normal-',
      finishedAtMs,
      ttlSeconds: NORMAL_TTL_S,
    });
    const allDeleted = await deletions.waitForCount(NORMALS, Date.now() + WINDOW_S * 1000);
    const lateness = [...deletions.seen.values()].map((t) => (t - finishedAtMs) / 1000 - NORMAL_TTL_S);
    await deletions.stop();
    const rest = WINDOW_S * 1000 - (Date.now() - readyAt);
    if (rest > 0) await sleep(rest);
    await w.stop();

    const samples = await kttl.selfMetrics().catch(() => [] as Sample[]);
    const leaseAfter = await bench.api.req<{ spec?: { leaseTransitions?: number } }>(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NS}/leases/kttl`,
    );
    const transitions =
      (leaseAfter.body?.spec?.leaseTransitions ?? 0) - (leaseBefore.body?.spec?.leaseTransitions ?? 0);
    const logText = readFileSync(kttl.logFile, 'utf8');
    const renewFailures = logText.split('failed to renew the leader lease').length - 1;
    const longestLogLine = Math.max(...logText.split('\n').map((l) => l.length));
    const sync = w.phases.get('sync') ?? { maxLagMs: Number.NaN, scrapes: 0 };
    const after = w.phases.get('after sync') ?? { maxLagMs: Number.NaN, scrapes: 0 };
    const leaseLost = w.leaderLost || w.exited || transitions !== 0 || renewFailures > 0 || !w.leaderSeen;
    const result = {
      when: new Date().toISOString(),
      bundle,
      n: N,
      annotationBytes: BYTES,
      windowSeconds: WINDOW_S,
      createSeconds: createMs / 1000,
      syncSeconds: syncS,
      maxLagMs: { sync: sync.maxLagMs, afterSync: after.maxLagMs },
      scrapes: { sync: sync.scrapes, afterSync: after.scrapes },
      leaseLost,
      lease: {
        leaderSeen: w.leaderSeen,
        leaderDropped: w.leaderLost,
        exited: w.exited,
        transitions,
        renewFailures,
      },
      invalidTtlTotal: value(samples, 'kttl_invalid_ttl_total'),
      deletionsTotal: value(samples, 'kttl_deletions_total'),
      normals: {
        n: NORMALS,
        ttlSeconds: NORMAL_TTL_S,
        allDeleted,
        deleted: lateness.length,
        maxLatenessSeconds: lateness.length ? Math.max(...lateness) : null,
      },
      longestLogLine,
    };
    const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
    console.log(
      [
        `annotation bomb: ${N} finished Jobs, ${BYTES}-byte hook annotation each (written in ${result.createSeconds.toFixed(0)} s)`,
        `  max event-loop stall: ${fmt(sync.maxLagMs)} during the sync (${syncS.toFixed(1)} s), ${fmt(after.maxLagMs)} in the ${WINDOW_S} s after (resync every 5 s); goal < 50 ms`,
        `  lease lost: ${leaseLost ? 'YES' : 'no'} (kttl_leader dropped: ${w.leaderLost}, exited: ${w.exited}, lease transitions: ${transitions}, renew failures logged: ${renewFailures})`,
        `  normal Jobs (TTL ${NORMAL_TTL_S} s): ${lateness.length}/${NORMALS} deleted, at most ${result.normals.maxLatenessSeconds?.toFixed(1) ?? '-'} s after their TTL`,
        `  invalid TTL warnings: ${result.invalidTtlTotal}; deletions: ${result.deletionsTotal}; longest log line: ${longestLogLine} bytes`,
      ].join('\n'),
    );
    if (args.out) {
      const out = resolve(REPO_ROOT, args.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
      log(`figures in ${out}`);
    }
  } finally {
    await kttl?.stop().catch(() => undefined);
    await bench.stop();
  }
}

await main();
