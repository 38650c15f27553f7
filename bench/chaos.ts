// Chaos soak: a steady stream of finishing Jobs (TTLs 0–60 s) at two kttl replicas (the built
// binary, leader election on the chart's Lease, behind test/testbed/fault-proxy.ts) while a
// schedule injects a fault at random every few minutes: kill -9 of the leader, of both replicas,
// kube-apiserver restart, etcd restart, a 30 s partition, a 30 s storm of 429s on DELETEs. A
// ledger of every Job (expiry, deletion seen by a watch of its own, straight to the API server)
// proves: 0 deleted early, 0 deleted that should live, 0 left at the end; lateness outside the
// fault windows; replicas' RSS and heap in use (run as the image runs kttl). A kill's fault lasts
// until a replica that was not killed holds the lease (failover). A fault's window lasts until the
// backlog it left is drained (the count of due, undeleted Jobs back to at most --backlog, default
// one second of arrivals): Jobs that come due behind a fault's backlog are late because of it. The ledger is saved (gzip JSON)
// and the accounting can be re-run on it: --evaluate FILE. Accounting: bench/chaos-ledger.ts.
//   node bench/chaos.ts [--minutes 30] [--rate 10] [--every-min 120] [--every-max 240] [--backlog 10]
//   node bench/chaos.ts --evaluate bench/results/chaos-ledger-DATE.json.gz [--backlog 10]
// Jobs are written finished directly (job controller off: create suspended, then PATCH the status
// subresource with Complete=True), so the API server, not kwok, sets the pace. 3 % stay unfinished
// (TTL 0) and 3 % get their TTL extended to 1 h 5 s after they finish: both must live.
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { gunzipSync, gzipSync } from 'node:zlib';
import pino from 'pino';
import { systemClock } from '../src/clock.ts';
import { KubeHttp } from '../src/kube/http.ts';
import { Reflector } from '../src/kube/reflector.ts';
import { JOBS } from '../src/kube/resources.ts';
import { kubeConfigFor } from '../test/testbed/clients.ts';
import { type ChildController, scrape, spawnController } from '../test/testbed/controller.ts';
import { killAndRestartEtcd } from '../test/testbed/etcd.ts';
import { answerShare, startFaultProxy } from '../test/testbed/fault-proxy.ts';
import {
  controllerKubeconfigPath,
  KTTL_NAMESPACE,
  LEASE_NAME,
  setUpIdentities,
} from '../test/testbed/identities.ts';
import { Testbed } from '../test/testbed/testbed.ts';
import { evaluate, type FaultWindow, type LedgerEntry } from './chaos-ledger.ts';
import { imageNodeArgs } from './lib.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const minutes = arg('minutes', 30);
const rate = arg('rate', 10);
const everyMinS = arg('every-min', 120);
const everyMaxS = arg('every-max', 240);
const backlogThreshold = arg('backlog', rate);
const MAX_TTL_S = 60;

interface SavedLedger {
  command: string;
  startedMs: number;
  endMs: number;
  windows: FaultWindow[];
  entries: LedgerEntry[];
}
const evaluateIndex = process.argv.indexOf('--evaluate');
if (evaluateIndex >= 0) {
  const saved = JSON.parse(
    gunzipSync(readFileSync(process.argv[evaluateIndex + 1]!)).toString(),
  ) as SavedLedger;
  console.log(`${saved.command}: ${saved.entries.length} Jobs, ${saved.windows.length} faults`);
  console.log(
    JSON.stringify(
      {
        backlogThreshold,
        ...evaluate(saved.entries, saved.windows, { backlogThreshold, endMs: saved.endMs }),
      },
      null,
      2,
    ),
  );
  process.exit(0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tb = await Testbed.start({
  controllers: [
    'garbage-collector-controller',
    'serviceaccount-controller',
    'serviceaccount-token-controller',
    'namespace-controller',
  ],
});
await setUpIdentities(tb);
const proxy = await startFaultProxy(tb);
const kubeconfig = proxy.kubeconfig(controllerKubeconfigPath(tb));
const { pki, ports } = tb.state;
const tls = {
  ca: readFileSync(pki.caCert),
  cert: readFileSync(pki.adminCert),
  key: readFileSync(pki.adminKey),
};

function api(method: string, path: string, body: object, contentType = 'application/json'): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: ports.apiserver,
        path,
        method,
        ...tls,
        headers: { 'content-type': contentType },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(20_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(JSON.stringify(body));
  });
}

const ns = 'chaos';
await tb.kubectl(['create', 'namespace', ns]);

// --- the ledger ---------------------------------------------------------------------------------
type Entry = LedgerEntry;
const ledger = new Map<string, Entry>();
// The ledger's own watch may break too (API server or etcd restarts): removals it delivers from
// the trouble until 2 s after its next watch began (a replay, or a relist's replace) happened at
// some time since the last event before the trouble.
let lastEventMs = Date.now();
let gapFromMs: number | undefined;
let gapUntilMs = 0;
const watchHttp = new KubeHttp({ kubeConfig: kubeConfigFor(tb), clock: systemClock });
const inGap = () => gapFromMs !== undefined && Date.now() < gapUntilMs;
const ledgerWatch = new Reflector<string>({
  http: watchHttp,
  resource: JOBS,
  namespace: ns,
  clock: systemClock,
  logger: pino({ level: 'silent' }),
  transform: (raw) => raw.metadata?.name ?? null,
  handler: {
    upsert: () => {
      if (!inGap()) lastEventMs = Date.now();
    },
    remove: (_key, name) => {
      const e = ledger.get(name);
      if (e && e.deletedMs === undefined) {
        e.deletedMs = Date.now();
        if (inGap()) e.gapFromMs = gapFromMs;
      }
      if (!inGap()) lastEventMs = Date.now();
    },
  },
});
let seenTrouble = 0;
let seenWatches = 0;
const relistWatch = setInterval(() => {
  const st = ledgerWatch.stats;
  const trouble = st.relistsAfterGone + st.errors + st.idleWatches;
  if (trouble > seenTrouble) {
    seenTrouble = trouble;
    gapFromMs = lastEventMs;
    gapUntilMs = Number.POSITIVE_INFINITY;
    seenWatches = st.watches + st.watchLists;
  } else if (gapUntilMs === Number.POSITIVE_INFINITY && st.watches + st.watchLists > seenWatches) {
    gapUntilMs = Date.now() + 2000;
  }
}, 50);
ledgerWatch.start();
await ledgerWatch.synced;

// --- two replicas, restarted when they exit (as the kubelet would) -------------------------------
await tb.kubectl(['-n', KTTL_NAMESPACE, 'delete', 'lease', LEASE_NAME, '--ignore-not-found']);
const replicaArgs = [
  `--namespaces=${ns}`,
  '--pods=false',
  `--leader-elect-resource-namespace=${KTTL_NAMESPACE}`,
  `--leader-elect-resource-name=${LEASE_NAME}`,
  '--leader-elect-lease-duration=4s',
  '--leader-elect-renew-deadline=3s',
  '--leader-elect-retry-period=1s',
];
const slots: Array<ChildController | undefined> = [undefined, undefined];
const starts = [0, 0];
/** Per slot: RSS and V8 heap in use (nodejs_heap_size_used_bytes) once a minute. */
const rss: Array<Array<{ atMin: number; pid: number; mb: number; heapMb: number }>> = [[], []];
let stopping = false;
async function keep(slot: number): Promise<void> {
  while (!stopping) {
    try {
      const ch = await spawnController(tb, replicaArgs, `chaos-${slot}-${starts[slot]!++}`, {
        kubeconfig,
        wait: '/healthz',
        forbiddenExpected: true,
        nodeArgs: imageNodeArgs(), // as the image runs it (Dockerfile)
      });
      slots[slot] = ch;
      await new Promise((r) => ch.proc.once('exit', r));
    } catch {
      // not up within 30 s (e.g. started into a partition): try again
    }
    slots[slot] = undefined;
    if (!stopping) await sleep(1000);
  }
}
const keepers = [keep(0), keep(1)];
const rssOf = (pid: number) => {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
};
async function leaderSlot(): Promise<number | undefined> {
  for (const [i, ch] of slots.entries()) {
    if (!ch) continue;
    const text = await ch.metrics().catch(() => '');
    if (scrape(text, 'kttl_leader') === 1) return i;
  }
  return undefined;
}

// --- the producer ---------------------------------------------------------------------------------
let created = 0;
let failedWrites = 0;
let seq = 0;
async function oneJob(): Promise<void> {
  const name = `c-${seq++}`;
  const roll = Math.random();
  const kind: Entry['kind'] = roll < 0.03 ? 'unfinished' : roll < 0.06 ? 'extended' : 'ttl';
  const ttl =
    kind === 'unfinished'
      ? 0
      : kind === 'extended'
        ? 30 + Math.floor(Math.random() * 31)
        : Math.floor(Math.random() * (MAX_TTL_S + 1));
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: ns },
    spec: {
      suspend: true,
      ttlSecondsAfterFinished: ttl,
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } },
    },
  };
  const e: Entry = { name, kind };
  if ((await api('POST', `/apis/batch/v1/namespaces/${ns}/jobs`, job)) !== 201) {
    failedWrites++;
    return;
  }
  ledger.set(name, e);
  created++;
  if (kind === 'unfinished') return;
  const finishMs = Math.floor(Date.now() / 1000) * 1000;
  const t = new Date(finishMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const status = {
    status: {
      startTime: t,
      completionTime: t,
      succeeded: 1,
      conditions: [
        { type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: t, lastProbeTime: t },
        { type: 'Complete', status: 'True', lastTransitionTime: t, lastProbeTime: t },
      ],
    },
  };
  const code = await api(
    'PATCH',
    `/apis/batch/v1/namespaces/${ns}/jobs/${name}/status`,
    status,
    'application/merge-patch+json',
  );
  if (code !== 200) {
    // Unknown whether it finished: it stays in the ledger as unfinished only if it never did.
    failedWrites++;
    e.kind = 'unfinished';
    e.finishMs = undefined;
    uncertainFinish.add(name);
    return;
  }
  e.finishMs = finishMs;
  e.expiryMs = finishMs + ttl * 1000;
  if (kind === 'extended') {
    setTimeout(async () => {
      const c = await api(
        'PATCH',
        `/apis/batch/v1/namespaces/${ns}/jobs/${name}`,
        { spec: { ttlSecondsAfterFinished: 3600 } },
        'application/merge-patch+json',
      );
      if (c === 200) e.extendedMs = Date.now();
      else e.kind = 'ttl'; // not extended: judged by its first TTL
    }, 5000);
  }
}
/** Jobs whose status write got no clear answer: left out of the accounting, counted. */
const uncertainFinish = new Set<string>();

// --- faults ---------------------------------------------------------------------------------------
type Window = FaultWindow;
const windows: Window[] = [];
const FAULTS = ['kill-leader', 'kill-both', 'apiserver', 'etcd', 'partition', 'throttle'] as const;
async function inject(kind: (typeof FAULTS)[number]): Promise<void> {
  const w: Window = { kind, startMs: Date.now(), endMs: 0 };
  windows.push(w);
  if (kind === 'kill-leader' || kind === 'kill-both') {
    const i = await leaderSlot();
    const killed = kind === 'kill-both' ? slots : [slots[i ?? 0]];
    const pids = new Set(killed.map((ch) => ch?.proc.pid));
    for (const ch of killed) ch?.proc.kill('SIGKILL');
    // The fault lasts until a replica that was not killed holds the lease: until then nothing is
    // deleted (failover: the lease's 4 s, a restart's start-up), and that wait is the fault's effect.
    const failoverFrom = Date.now();
    for (;;) {
      const now = await leaderSlot();
      if (now !== undefined && !pids.has(slots[now]?.proc.pid)) break;
      if (Date.now() - failoverFrom > 120_000) break;
      await sleep(200);
    }
    w.failoverS = Number(((Date.now() - failoverFrom) / 1000).toFixed(1));
  } else if (kind === 'apiserver') {
    await tb.stopApiserver('SIGKILL');
    await sleep(2000);
    await tb.startApiserver();
  } else if (kind === 'etcd') {
    await killAndRestartEtcd(tb, 5000);
  } else if (kind === 'partition') {
    proxy.partition();
    await sleep(30_000);
    proxy.heal();
  } else {
    proxy.setFault(
      answerShare({ share: 1, status: 429, retryAfterSeconds: 2, when: (r) => r.verb === 'delete' }),
    );
    await sleep(30_000);
    proxy.setFault(null);
  }
  w.endMs = Date.now();
  console.log(
    `fault ${windows.length}: ${kind} at minute ${((w.startMs - started) / 60_000).toFixed(1)}, ${((w.endMs - w.startMs) / 1000).toFixed(1)} s`,
  );
}

const started = Date.now();
const endAt = started + minutes * 60_000;
console.log(
  `chaos: ${minutes} min, ${rate} Jobs/s, TTL 0–${MAX_TTL_S} s, a fault every ${everyMinS}–${everyMaxS} s, a fault's window lasts until its backlog ≤ ${backlogThreshold}`,
);
const producer = (async () => {
  while (Date.now() < endAt) {
    const tick = Date.now();
    await Promise.all(Array.from({ length: rate }, () => oneJob()));
    await sleep(Math.max(0, 1000 - (Date.now() - tick)));
  }
})();
const schedule = (async () => {
  // Each kind once before any repeats, in random order.
  let bag: Array<(typeof FAULTS)[number]> = [];
  for (;;) {
    const wait = (everyMinS + Math.random() * (everyMaxS - everyMinS)) * 1000;
    if (Date.now() + wait > endAt - 60_000) return;
    await sleep(wait);
    if (bag.length === 0) bag = [...FAULTS].sort(() => Math.random() - 0.5);
    await inject(bag.pop()!);
  }
})();
const monitor = setInterval(() => {
  const atMin = (Date.now() - started) / 60_000;
  for (const [i, ch] of slots.entries()) {
    const pid = ch?.proc.pid;
    if (!pid) continue;
    const mb = rssOf(pid);
    void ch
      .metrics()
      .then((text) =>
        rss[i]!.push({ atMin, pid, mb, heapMb: scrape(text, 'nodejs_heap_size_used_bytes') / 1048576 }),
      )
      .catch(() => undefined);
  }
  const deleted = [...ledger.values()].filter((e) => e.deletedMs !== undefined).length;
  console.log(
    `minute ${atMin.toFixed(1)}: created ${created}, deleted ${deleted}, faults ${windows.length}, RSS ${slots.map((ch) => (ch?.proc.pid ? `${rssOf(ch.proc.pid).toFixed(0)} MB` : '-')).join(' / ')}`,
  );
}, 60_000);

await producer;
await schedule;
// Everything due is due within the longest TTL; then a margin for the last fault's recovery.
await sleep((MAX_TTL_S + 30) * 1000);
clearInterval(monitor);
clearInterval(relistWatch);

// --- the accounting -------------------------------------------------------------------------------
for (const e of ledger.values()) {
  if (uncertainFinish.has(e.name)) e.uncertain = true;
  else if (ledgerWatch.store.has(`${ns}/${e.name}`)) e.alive = true;
}
const endMs = Date.now();
const entries = [...ledger.values()];
const accounting = evaluate(entries, windows, { backlogThreshold, endMs });
const durationMin = (Date.now() - started) / 60_000;
const round1 = (x: number | undefined) => (x === undefined ? undefined : Number(x.toFixed(1)));
const rssSummary = rss.map((samples) => {
  // Per process: its first sample after 2 minutes of life vs its last, and the heap in use.
  const byPid = new Map<number, typeof samples>();
  for (const s of samples) byPid.set(s.pid, [...(byPid.get(s.pid) ?? []), s]);
  const longest = [...byPid.values()].sort((a, b) => b.length - a.length)[0] ?? [];
  const settled = longest.filter((s) => s.atMin - longest[0]!.atMin >= 2);
  return {
    processes: byPid.size,
    longestLivedMinutes: longest.length,
    rssFirstMb: round1(settled[0]?.mb),
    rssLastMb: round1(settled.at(-1)?.mb),
    rssMaxMb: round1(Math.max(...settled.map((s) => s.mb))),
    heapUsedFirstMb: round1(settled[0]?.heapMb),
    heapUsedLastMb: round1(settled.at(-1)?.heapMb),
    heapUsedMaxMb: round1(Math.max(...settled.map((s) => s.heapMb))),
  };
});
const summary = {
  command: `node bench/chaos.ts --minutes ${minutes} --rate ${rate} --every-min ${everyMinS} --every-max ${everyMaxS} --backlog ${backlogThreshold}`,
  startedAt: new Date(started).toISOString(),
  durationMin: Number(durationMin.toFixed(1)),
  jobsCreated: created,
  failedWrites,
  faults: windows.map((w) => ({
    kind: w.kind,
    atMin: Number(((w.startMs - started) / 60_000).toFixed(1)),
    seconds: Number(((w.endMs - w.startMs) / 1000).toFixed(1)),
    ...(w.failoverS !== undefined ? { failoverS: w.failoverS } : {}),
  })),
  backlogThreshold,
  ...accounting,
  replicaRestarts: starts.map((n) => n - 1),
  rss: rssSummary,
};
console.log(JSON.stringify(summary, null, 2));
const day = new Date(started).toISOString().slice(0, 10);
const out = `bench/results/chaos-${day}.json`;
writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
const saved: SavedLedger = { command: summary.command, startedMs: started, endMs, windows, entries };
const ledgerOut = `bench/results/chaos-ledger-${day}.json.gz`;
writeFileSync(ledgerOut, gzipSync(JSON.stringify(saved)));
console.log(`written ${out}, ${ledgerOut}`);
stopping = true;
for (const ch of slots) await ch?.stop('SIGKILL').catch(() => undefined);
await Promise.race([Promise.all(keepers), sleep(15_000)]);
await ledgerWatch.stop();
await watchHttp.close();
await proxy.stop();
await tb.stop();
process.exit(accounting.deletedEarly + accounting.deletedThatShouldLive + accounting.leftAtEnd > 0 ? 1 : 0);
