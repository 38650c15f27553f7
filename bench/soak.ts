// Soak: a steady stream of finishing Jobs for a long time, against kttl as a real process on the
// real control plane. Prints, per window: kttl RSS, max event-loop stall, deletions and lateness.
//   node bench/soak.ts [--minutes 30] [--rate 10] [--ttl 5]
// Jobs are written finished directly (job controller off: create suspended, then PATCH the status
// subresource with Complete=True), so the API server, not kwok, sets the pace.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { scrape, spawnController } from '../test/testbed/controller.ts';
import { setUpIdentities } from '../test/testbed/identities.ts';
import { Testbed } from '../test/testbed/testbed.ts';
import { imageNodeArgs } from './lib.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const minutes = arg('minutes', 30);
const rate = arg('rate', 10);
const ttl = arg('ttl', 5);
const windowS = arg('window', 60);

const tb = await Testbed.start({
  controllers: [
    'garbage-collector-controller',
    'serviceaccount-controller',
    'serviceaccount-token-controller',
    'namespace-controller',
  ],
});
// kttl runs as the chart's least-privilege ServiceAccount, as in the integration tests.
await setUpIdentities(tb);
const { pki, ports } = tb.state;
const tls = {
  ca: readFileSync(pki.caCert),
  cert: readFileSync(pki.adminCert),
  key: readFileSync(pki.adminKey),
};

function api(method: string, path: string, body: object, contentType = 'application/json'): Promise<number> {
  return new Promise((resolve, reject) => {
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
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const ns = 'soak';
await tb.kubectl(['create', 'namespace', ns]);
const kttl = await spawnController(
  tb,
  [`--namespaces=${ns}`, '--leader-elect=false', '--pods=false'],
  'soak',
  { nodeArgs: imageNodeArgs() }, // as the image runs it (Dockerfile)
);
const rssMb = () => {
  const status = readFileSync(`/proc/${kttl.proc.pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024;
};

let created = 0;
let failedCreates = 0;
async function finishedJob(i: number): Promise<void> {
  const name = `soak-${i}`;
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
  if ((await api('POST', `/apis/batch/v1/namespaces/${ns}/jobs`, job)) !== 201) {
    failedCreates++;
    return;
  }
  const t = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
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
  if (
    (await api(
      'PATCH',
      `/apis/batch/v1/namespaces/${ns}/jobs/${name}/status`,
      status,
      'application/merge-patch+json',
    )) !== 200
  )
    failedCreates++;
  else created++;
}

console.log(
  `soak: ${minutes} min, ${rate} Jobs/s finishing, TTL ${ttl} s, window ${windowS} s; kttl pid ${kttl.proc.pid}`,
);
console.log(
  'window  minute  rss_MB  heap_MB  max_loop_stall_ms  created  deleted  lateness_mean_s  lateness_p99_le_s',
);
const started = Date.now();
const endAt = started + minutes * 60_000;
let i = 0;
const producer = (async () => {
  while (Date.now() < endAt) {
    const tick = Date.now();
    await Promise.all(Array.from({ length: rate }, () => finishedJob(i++)));
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))));
  }
})();

const rows: Array<{ rss: number; stall: number; lateMean: number }> = [];
let prev = { count: 0, sum: 0, buckets: new Map<string, number>() };
let maxStall = 0;
let window = 0;
const bucketsOf = (text: string) => {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const b = line.match(/^kttl_deletion_lateness_seconds_bucket\{.*le="([^"]+)".*\}\s+(\S+)/);
    if (b?.[1]) m.set(b[1], (m.get(b[1]) ?? 0) + Number(b[2]));
  }
  return m;
};
while (Date.now() < endAt + ttl * 1000 + 5000) {
  await new Promise((r) => setTimeout(r, windowS * 1000));
  const text = await kttl.metrics();
  const count = scrape(text, 'kttl_deletion_lateness_seconds_count');
  const sum = scrape(text, 'kttl_deletion_lateness_seconds_sum');
  const stall = scrape(text, 'nodejs_eventloop_lag_max_seconds') * 1000;
  maxStall = Math.max(maxStall, stall);
  const buckets = bucketsOf(text);
  const n = count - prev.count;
  let p99 = '-';
  for (const [le, v] of buckets) {
    if (n > 0 && v - (prev.buckets.get(le) ?? 0) >= 0.99 * n) {
      p99 = le;
      break;
    }
  }
  const lateMean = n > 0 ? (sum - prev.sum) / n : 0;
  const rss = rssMb();
  rows.push({ rss, stall, lateMean });
  window++;
  console.log(
    `${String(window).padStart(6)}  ${((Date.now() - started) / 60_000).toFixed(1).padStart(6)}  ${rss.toFixed(1).padStart(6)}  ${(scrape(text, 'nodejs_heap_size_used_bytes') / 1048576).toFixed(1).padStart(7)}  ${stall.toFixed(1).padStart(17)}  ${String(created).padStart(7)}  ${String(scrape(text, 'kttl_deletions_total')).padStart(7)}  ${lateMean.toFixed(3).padStart(15)}  ${p99.padStart(17)}`,
  );
  prev = { count, sum, buckets };
}
await producer;
const text = await kttl.metrics();
console.log(
  `\nsummary: created ${created} (failed writes ${failedCreates}), deleted ${scrape(text, 'kttl_deletions_total')}`,
);
console.log(
  `rss start ${rows[0]?.rss.toFixed(1)} MB, end ${rows.at(-1)?.rss.toFixed(1)} MB, max ${Math.max(...rows.map((r) => r.rss)).toFixed(1)} MB`,
);
console.log(
  `max event-loop stall ${maxStall.toFixed(1)} ms (nodejs_eventloop_lag_max_seconds, per scrape window)`,
);
console.log(
  `lateness mean per window: first ${rows[0]?.lateMean.toFixed(3)} s, last ${rows.at(-2)?.lateMean.toFixed(3)} s`,
);
await kttl.stop();
await tb.stop();
