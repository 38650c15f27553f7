// The archive stores' one contract (src/archive/types.ts ArchiveStore), run against both: a SQLite
// file in a temp dir (node:sqlite) and a real PostgreSQL server from Debian's packages
// (test/testbed/postgres.ts). Each test gets a fresh database. Durability is tested by a child
// process that commits a record and is killed with SIGKILL before it can do anything else.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { openArchiveStore } from '../../src/archive/open.ts';
import { PostgresArchiveStore } from '../../src/archive/postgres.ts';
import { summaryOf } from '../../src/archive/record.ts';
import { MAX_LIMIT } from '../../src/archive/rows.ts';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/archive/schema.ts';
import { SqliteArchiveStore } from '../../src/archive/sqlite.ts';
import type { ArchiveRecord, ArchiveStore, ContainerLog, RecordSummary } from '../../src/archive/types.ts';
import { PostgresServer } from '../testbed/postgres.ts';
import { REPO_ROOT } from '../testbed/testbed.ts';

// ---- records ----------------------------------------------------------------------------------

let seq = 0;

/** A log that looks like a training job's: timestamps, steps, numbers that vary (not a repeated line). */
function logText(bytes: number, seed: number): string {
  const lines: string[] = [];
  let size = 0;
  let x = seed >>> 0 || 1;
  for (let i = 0; size < bytes; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const ts = new Date(Date.UTC(2026, 11, 1, 0, 0, 0) + i * 137 + (x % 100)).toISOString();
    const line =
      x % 7 === 0
        ? `${ts} WARN worker-${x % 8} slow allreduce: ${x % 5000} ms (bucket ${x % 97}, ${(x % 1000) / 10} MiB)`
        : `${ts} INFO step=${i} loss=${((x % 100000) / 25000).toFixed(5)} lr=${(3e-4 * (1 - i / 1e6)).toExponential(3)} tokens/s=${x % 90000} gpu_mem=${x % 80}GiB`;
    lines.push(line);
    size += line.length + 1;
  }
  return `${lines.join('\n')}\n`.slice(-bytes);
}

function makeRecord(
  o: Partial<ArchiveRecord> & { logBytes?: number; containers?: number } = {},
): ArchiveRecord {
  const n = ++seq;
  const { logBytes = 2048, containers = 2, ...over } = o;
  const uid = over.uid ?? `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  const name = over.name ?? `job-${n}`;
  const namespace = over.namespace ?? 'team-a';
  const logs: ContainerLog[] = Array.from({ length: containers }, (_, i) => ({
    pod: `${name}-pod-${i >> 1}`,
    container: i === 0 ? 'init-data' : `worker-${i}`,
    containerType: i === 0 ? 'init' : 'regular',
    text: logText(logBytes, n * 31 + i),
    truncated: i % 2 === 1,
  }));
  if (containers > 2)
    logs.push({
      pod: `${name}-pod-x`,
      container: 'gone',
      containerType: 'ephemeral',
      text: '',
      truncated: false,
      error: 'the node is gone',
    });
  return {
    cluster: 'cluster-1',
    apiVersion: 'batch/v1',
    kind: 'Job',
    namespace,
    name,
    uid,
    resourceVersion: String(1000 + n),
    labels: { app: 'train', 'kttl.dev/team': 'ml', ünïcode: '✓' },
    annotations: { 'kttl.dev/ttl': '1h', note: 'line one\nline "two"' },
    ownerReferences: [
      { apiVersion: 'kubeflow.org/v1', kind: 'PyTorchJob', name: 'p', uid: 'o-1', controller: true },
    ],
    object: {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace, uid, labels: { app: 'train' } },
      spec: {
        backoffLimit: 0,
        template: {
          spec: { containers: [{ name: 'w', image: 'trainer:1', env: [{ name: 'LR', value: '3e-4' }] }] },
        },
      },
      status: {
        succeeded: 1,
        conditions: [{ type: 'Complete', status: 'True' }],
        ready: null,
        floats: [0.1, -2.5e-8],
      },
    },
    outcome: 'succeeded',
    finishedAt: '2026-12-01T10:00:00Z',
    finishTimeSource: 'condition',
    ttlSeconds: 3600,
    ttlSource: 'annotation',
    ttlDetail: 'annotation kttl.dev/ttl=1h',
    deletedAt: '2026-12-01T11:00:00.123Z',
    reason: 'TTL 1h after Complete expired',
    logs,
    events: [
      {
        involvedKind: 'Job',
        involvedName: name,
        type: 'Normal',
        reason: 'Completed',
        message: 'Job completed',
        count: 1,
        firstTime: '2026-12-01T10:00:00Z',
        lastTime: null,
        source: 'job-controller',
      },
    ],
    captureErrors: [],
    ...over,
  };
}

const keyOf = (r: { uid: string; resourceVersion: string }) => ({
  uid: r.uid,
  resourceVersion: r.resourceVersion,
});

/** The list's order: newest deletedAt first, then uid, then resourceVersion, descending (bytewise). */
function newestFirst(a: ArchiveRecord, b: ArchiveRecord): number {
  const d = Date.parse(b.deletedAt) - Date.parse(a.deletedAt);
  if (d) return d;
  if (a.uid !== b.uid) return a.uid < b.uid ? 1 : -1;
  return a.resourceVersion < b.resourceVersion ? 1 : a.resourceVersion > b.resourceVersion ? -1 : 0;
}

async function listAll(
  store: ArchiveStore,
  q: Parameters<ArchiveStore['list']>[0],
): Promise<RecordSummary[]> {
  const out: RecordSummary[] = [];
  let token: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await store.list({ ...q, continue: token });
    assert.ok(page.items.length <= (q.limit ?? 100));
    out.push(...page.items);
    token = page.continue;
    if (!token) return out;
    assert.equal(page.items.length, q.limit, 'a page with a continue token is full');
  }
  throw new Error('list did not end');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

// ---- backends ---------------------------------------------------------------------------------

interface Backend {
  name: 'sqlite' | 'postgres';
  before(): Promise<void>;
  after(): Promise<void>;
  /** A DSN naming a fresh, empty database. */
  fresh(): Promise<string>;
  /** For PostgreSQL: the server (crash and restart it). */
  server?: () => PostgresServer;
}

function sqliteBackend(): Backend {
  let dir = '';
  let n = 0;
  return {
    name: 'sqlite',
    async before() {
      dir = mkdtempSync(join(tmpdir(), 'kttl-archive-'));
    },
    async after() {
      rmSync(dir, { recursive: true, force: true });
    },
    // A directory that does not exist yet: the store creates it.
    fresh: async () => join(dir, `db-${++n}`, 'archive.db'),
  };
}

function postgresBackend(): Backend {
  let server: PostgresServer | undefined;
  let n = 0;
  return {
    name: 'postgres',
    async before() {
      const t = Date.now();
      server = await PostgresServer.start();
      console.error(`[archive-store] PostgreSQL up in ${Date.now() - t} ms on port ${server.port}`);
    },
    async after() {
      await server?.destroy();
    },
    fresh: async () => server!.createDatabase(`archive_${++n}`),
    server: () => server!,
  };
}

async function withStore<T>(dsn: string, fn: (s: ArchiveStore) => Promise<T>): Promise<T> {
  const store = openArchiveStore(dsn);
  await store.open();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function schemaVersion(store: ArchiveStore): Promise<number> | number {
  if (store instanceof SqliteArchiveStore) return store.schemaVersion();
  if (store instanceof PostgresArchiveStore) return store.schemaVersion();
  throw new Error('unknown store');
}

/** Starts a node process that opens the store, commits `record` as pending, says so, then idles. */
async function commitInChildThenKill(dsn: string, record: ArchiveRecord): Promise<void> {
  const script = `
    const { openArchiveStore } = await import(${JSON.stringify(join(REPO_ROOT, 'src/archive/open.ts'))});
    const chunks = [];
    for await (const c of process.stdin) chunks.push(c);
    const store = openArchiveStore(process.env.ARCHIVE_DSN);
    await store.open();
    await store.putPending(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    process.stdout.write('committed\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ARCHIVE_DSN: dsn },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('committed\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before committing: ${stderr}`)));
    child.stdin.end(JSON.stringify(record));
  });
  assert.ok(child.kill('SIGKILL'));
  assert.equal(await exited, 'SIGKILL');
}

// ---- the contract -----------------------------------------------------------------------------

for (const backend of [sqliteBackend(), postgresBackend()]) {
  describe(`archive store contract: ${backend.name}`, () => {
    before(() => backend.before());
    after(() => backend.after());

    test('a record round-trips exactly: get and latest return what putPending wrote', async () => {
      const dsn = await backend.fresh();
      await withStore(dsn, async (s) => {
        const r = makeRecord({
          finishedAt: null,
          finishTimeSource: 'firstSeen',
          captureErrors: ['events: 403'],
        });
        await s.putPending(r);
        assert.deepEqual(await s.get(keyOf(r)), r);
        assert.deepEqual(await s.latest(r.namespace, r.kind, r.name), r);
        assert.equal(await s.get({ uid: r.uid, resourceVersion: 'other' }), undefined);
        assert.equal(await s.latest(r.namespace, r.kind, 'nobody'), undefined);
      });
    });

    test('putPending → pending → markDeleted → deleted; drop removes; a committed record survives close', async () => {
      const dsn = await backend.fresh();
      const a = makeRecord();
      const b = makeRecord({ deletedAt: '2026-12-01T11:00:01Z' });
      await withStore(dsn, async (s) => {
        await s.putPending(a);
        await s.putPending(b);
        assert.deepEqual(await s.pending(), [summaryOf(a, 'pending'), summaryOf(b, 'pending')]);
        await s.markDeleted(keyOf(a), '2026-12-01T11:00:05Z');
        assert.deepEqual(await s.pending(), [summaryOf(b, 'pending')]);
        const got = await s.get(keyOf(a));
        assert.deepEqual(got, { ...a, deletedAt: '2026-12-01T11:00:05Z' });
        await s.drop(keyOf(b));
        assert.equal(await s.get(keyOf(b)), undefined);
        assert.deepEqual(await s.pending(), []);
        await s.drop(keyOf(b)); // dropping what is gone is no error
        await s.markDeleted({ uid: 'nope', resourceVersion: '1' }, '2026-12-01T11:00:05Z');
      });
      await withStore(dsn, async (s) => {
        assert.deepEqual((await s.list({})).items, [
          summaryOf({ ...a, deletedAt: '2026-12-01T11:00:05Z' }, 'deleted'),
        ]);
        assert.equal((await s.stats()).records, 1);
      });
    });

    test('never two records for one deletion: uid + resourceVersion again replaces a pending record, leaves a deleted one', async () => {
      const dsn = await backend.fresh();
      await withStore(dsn, async (s) => {
        const first = makeRecord();
        const again = { ...first, reason: 'second attempt', logs: [] };
        await s.putPending(first);
        await s.putPending(again);
        assert.equal((await s.stats()).records, 1);
        assert.deepEqual(await s.get(keyOf(first)), again);
        await s.markDeleted(keyOf(first), '2026-12-01T12:00:00Z');
        await s.putPending(first);
        assert.equal((await s.stats()).records, 1);
        assert.deepEqual(await s.get(keyOf(first)), { ...again, deletedAt: '2026-12-01T12:00:00Z' });
        assert.deepEqual(await s.pending(), []);
        // Another version of the same object is another deletion.
        const next = { ...first, resourceVersion: `${first.resourceVersion}9` };
        await s.putPending(next);
        assert.equal((await s.stats()).records, 2);
        await assertConsistent(backend.name, dsn, s);
        await s.drop(keyOf(next));
        await assertConsistent(backend.name, dsn, s);
      });
    });

    test('list: filters, newest first, keyset pages with continue tokens; latest picks the newest of a reused name', async () => {
      const dsn = await backend.fresh();
      const base = Date.parse('2026-11-01T00:00:00Z');
      const records: ArchiveRecord[] = [];
      for (let i = 0; i < 37; i++) {
        records.push(
          makeRecord({
            namespace: i % 3 === 0 ? 'team-b' : 'team-a',
            kind: i % 4 === 0 ? 'Pod' : 'Job',
            apiVersion: i % 4 === 0 ? 'v1' : 'batch/v1',
            name: i % 5 === 0 ? 'reused' : `job-${i}`,
            outcome: i % 2 ? 'failed' : 'succeeded',
            cluster: i % 6 === 0 ? 'cluster-2' : 'cluster-1',
            // Ties on deletedAt (every third shares its neighbour's second): the uid orders them.
            deletedAt: new Date(base + Math.floor(i / 3) * 60_000 + (i % 3 === 2 ? 0 : 1000)).toISOString(),
            containers: 1,
            logBytes: 64,
          }),
        );
      }
      // Two versions of one uid (a pending one left by a crash, then the next version).
      const twin = { ...records[7]!, resourceVersion: `${records[7]!.resourceVersion}0` };
      records.push(twin);
      await withStore(dsn, async (s) => {
        for (const r of [...records].sort(() => Math.random() - 0.5)) await s.putPending(r);
        for (const r of records.filter((_, i) => i % 2 === 0)) await s.markDeleted(keyOf(r), r.deletedAt);
        const stateOf = (r: ArchiveRecord) => (records.indexOf(r) % 2 === 0 ? 'deleted' : 'pending');
        const expect = (pred: (r: ArchiveRecord) => boolean) =>
          records
            .filter(pred)
            .sort(newestFirst)
            .map((r) => summaryOf(r, stateOf(r)));
        const cases: [Parameters<ArchiveStore['list']>[0], (r: ArchiveRecord) => boolean][] = [
          [{}, () => true],
          [{ namespace: 'team-b' }, (r) => r.namespace === 'team-b'],
          [
            { namespace: 'team-a', kind: 'Job', name: 'reused' },
            (r) => r.namespace === 'team-a' && r.kind === 'Job' && r.name === 'reused',
          ],
          [{ uid: records[7]!.uid }, (r) => r.uid === records[7]!.uid],
          [{ outcome: 'failed' }, (r) => r.outcome === 'failed'],
          [{ cluster: 'cluster-2' }, (r) => r.cluster === 'cluster-2'],
          [{ state: 'pending' }, (r) => stateOf(r) === 'pending'],
          [
            { sinceMs: base + 3 * 60_000, untilMs: base + 8 * 60_000 },
            (r) =>
              Date.parse(r.deletedAt) >= base + 3 * 60_000 && Date.parse(r.deletedAt) < base + 8 * 60_000,
          ],
          [
            { namespace: 'team-a', outcome: 'succeeded', kind: 'Pod' },
            (r) => r.namespace === 'team-a' && r.outcome === 'succeeded' && r.kind === 'Pod',
          ],
        ];
        for (const [q, pred] of cases) {
          const want = expect(pred);
          assert.deepEqual((await s.list(q)).items, want, `one page: ${JSON.stringify(q)}`);
          for (const limit of [1, 4, 7]) {
            assert.deepEqual(
              await listAll(s, { ...q, limit }),
              want,
              `pages of ${limit}: ${JSON.stringify(q)}`,
            );
          }
        }
        // A page's token stays valid while records are added in front (keyset, not OFFSET).
        const p1 = await s.list({ limit: 5 });
        await s.putPending(makeRecord({ deletedAt: '2026-12-31T00:00:00Z' }));
        const p2 = await s.list({ limit: 5, continue: p1.continue });
        assert.deepEqual(p2.items, expect(() => true).slice(5, 10));
        await assert.rejects(s.list({ continue: 'not-a-token' }), /invalid continue token/);
        assert.ok((await s.list({ limit: 10_000 })).items.length <= MAX_LIMIT);
        // latest: the newest of the records named team-a/Job/reused.
        const newest = records
          .filter((r) => r.namespace === 'team-a' && r.kind === 'Job' && r.name === 'reused')
          .sort(newestFirst)[0]!;
        const latest = await s.latest('team-a', 'Job', 'reused');
        assert.equal(latest?.uid, newest.uid);
        assert.equal(latest?.resourceVersion, newest.resourceVersion);
      });
    });

    test('prune: deleted records older than the retention go, then the oldest until the size cap holds; pending ones stay', async () => {
      const dsn = await backend.fresh();
      const day = 86_400_000;
      const now = Date.parse('2026-12-01T00:00:00Z');
      await withStore(dsn, async (s) => {
        const recs = Array.from({ length: 30 }, (_, i) =>
          makeRecord({ deletedAt: new Date(now - (30 - i) * day).toISOString(), logBytes: 4096 }),
        );
        for (const r of recs) await s.putPending(r);
        for (const r of recs.slice(1)) await s.markDeleted(keyOf(r), r.deletedAt);
        // recs[0] (the oldest) stays pending: not pruned, whatever its age.
        const aged = await s.prune({ olderThanMs: now - 20 * day });
        assert.equal(aged.records, 9); // recs[1..9] are older than 20 days
        const left = (await listAll(s, { limit: 50 })).map((r) => r.uid);
        assert.deepEqual(
          left,
          [recs[0]!, ...recs.slice(10)].reverse().map((r) => r.uid),
        );

        // Size: keep what the newest 8 records take (plus the pending one, which is never pruned).
        const bytesOf = async (rs: ArchiveRecord[]) => {
          const probe = await backend.fresh();
          return withStore(probe, async (p) => {
            for (const r of rs) await p.putPending(r);
            return (await p.stats()).bytes;
          });
        };
        const cap = await bytesOf([recs[0]!, ...recs.slice(-8)]);
        const before = await s.stats();
        assert.ok(before.bytes > cap);
        const sized = await s.prune({ olderThanMs: 0, maxBytes: cap });
        const after = await s.stats();
        assert.ok(after.bytes <= cap, `${after.bytes} <= ${cap}`);
        assert.equal(sized.records, before.records - after.records);
        assert.deepEqual(
          (await listAll(s, { limit: 50 })).map((r) => r.uid),
          [recs[0]!, ...recs.slice(-8)].reverse().map((r) => r.uid),
        );
        await assertConsistent(backend.name, dsn, s);
        // Nothing to do: nothing goes.
        assert.deepEqual(await s.prune({ olderThanMs: 0, maxBytes: cap }), { records: 0 });
        // A cap below the pending record: every deleted one goes, the pending one stays.
        await s.prune({ olderThanMs: 0, maxBytes: 0 });
        assert.deepEqual(
          (await s.list({})).items.map((r) => r.uid),
          [recs[0]!.uid],
        );
        await assertConsistent(backend.name, dsn, s);
      });
    });

    test('migrations are applied at open and re-applying them on reopen is a no-op', async () => {
      const dsn = await backend.fresh();
      const r = makeRecord();
      await withStore(dsn, async (s) => {
        assert.equal(await schemaVersion(s), SCHEMA_VERSION);
        await s.putPending(r);
      });
      // Two stores opening at once (two replicas starting) both succeed; nothing is applied twice.
      const [s1, s2] = [openArchiveStore(dsn), openArchiveStore(dsn)];
      await Promise.all([s1.open(), s2.open()]);
      await Promise.all([s1.close(), s2.close()]);
      await withStore(dsn, async (s) => {
        assert.equal(await schemaVersion(s), SCHEMA_VERSION);
        assert.deepEqual(await s.get(keyOf(r)), r);
        assert.equal((await s.stats()).records, 1);
      });
      const versions = await migrationRows(backend.name, dsn);
      assert.deepEqual(
        versions,
        MIGRATIONS.map((m) => m.version),
      );
    });

    test('compression: a record with 5 containers × 256 KiB of logs is stored in a fraction of its size', async (t) => {
      const dsn = await backend.fresh();
      await withStore(dsn, async (s) => {
        const r = makeRecord({ containers: 5, logBytes: 256 * 1024 });
        const raw = Buffer.byteLength(JSON.stringify(r));
        await s.putPending(r);
        const { bytes } = await s.stats();
        t.diagnostic(
          `${backend.name}: record ${raw} bytes as JSON, ${bytes} bytes stored (${(raw / bytes).toFixed(1)}x)`,
        );
        assert.ok(bytes < raw / 3, `${bytes} < ${raw} / 3`);
        assert.deepEqual(await s.get(keyOf(r)), r);
      });
    });

    test('putPending of a typical record (5 containers × 256 KiB logs): latency and event-loop blocking', async (t) => {
      const dsn = await backend.fresh();
      await withStore(dsn, async (s) => {
        const recs = Array.from({ length: 40 }, () => makeRecord({ containers: 5, logBytes: 256 * 1024 }));
        await s.putPending(makeRecord({ containers: 5, logBytes: 256 * 1024 })); // warm up
        const h = monitorEventLoopDelay({ resolution: 1 });
        h.enable();
        const ms: number[] = [];
        for (const r of recs) {
          const t0 = performance.now();
          await s.putPending(r);
          ms.push(performance.now() - t0);
        }
        h.disable();
        ms.sort((a, b) => a - b);
        const { bytes, records } = await s.stats();
        t.diagnostic(
          `${backend.name}: putPending p50 ${percentile(ms, 50).toFixed(1)} ms, p99 ${percentile(ms, 99).toFixed(1)} ms, ` +
            `event loop delay max ${(h.max / 1e6).toFixed(1)} ms (p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms), ` +
            `${Math.round(bytes / records)} stored bytes per record`,
        );
        // Loose bounds for a shared 2-core machine: a commit is milliseconds, not seconds.
        assert.ok(percentile(ms, 50) < 500, `p50 ${percentile(ms, 50)} ms`);
      });
    });

    test('durability: a record committed by a process killed with SIGKILL right after is there on reopen', async () => {
      const dsn = await backend.fresh();
      const r = makeRecord({ containers: 5, logBytes: 64 * 1024 });
      await withStore(dsn, async () => {}); // the schema exists before the child starts
      await commitInChildThenKill(dsn, r);
      await withStore(dsn, async (s) => {
        assert.deepEqual(await s.get(keyOf(r)), r);
        assert.deepEqual(await s.pending(), [summaryOf(r, 'pending')]);
      });
      const server = backend.server?.();
      if (server) {
        // And the server itself dying right after (no shutdown checkpoint): WAL replay keeps it.
        const r2 = makeRecord();
        await commitInChildThenKill(dsn, r2);
        await server.crash();
        await server.start();
        await withStore(dsn, async (s) => {
          assert.deepEqual(await s.get(keyOf(r2)), r2);
        });
      }
    });

    // PostgreSQL only: a SQLite file has no server to lose.
    const serverOnly = backend.name === 'postgres' ? test : () => {};
    serverOnly(
      'an outage: writes fail while the database is away and succeed once it is back, on the same store',
      async () => {
        const server = backend.server!();
        const dsn = await backend.fresh();
        await withStore(dsn, async (s) => {
          const before = makeRecord();
          await s.putPending(before);
          await server.stop();
          try {
            const t0 = Date.now();
            await assert.rejects(s.putPending(makeRecord()));
            await assert.rejects(s.list({}));
            assert.ok(Date.now() - t0 < 15_000, 'a refused connection fails fast, it does not hang');
          } finally {
            await server.start();
          }
          // The pool's connections died with the server: the next statements connect again.
          const afterward = makeRecord();
          await s.putPending(afterward);
          await s.markDeleted(keyOf(before), before.deletedAt);
          assert.deepEqual(await s.get(keyOf(afterward)), afterward);
          assert.equal((await s.stats()).records, 2);
        });
      },
    );
  });
}

/** Counted behind the store's back: summary rows, data rows, the sum of their sizes. */
async function rawCounts(
  backend: Backend['name'],
  dsn: string,
): Promise<{ records: number; data: number; bytes: number }> {
  const sql = `SELECT (SELECT count(*) FROM archive_records) AS records,
                      (SELECT count(*) FROM archive_record_data) AS data,
                      (SELECT coalesce(sum(size_bytes), 0) FROM archive_records) AS bytes`;
  if (backend === 'sqlite') {
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(dsn, { readOnly: true });
    try {
      const r = db.prepare(sql).get()!;
      return { records: Number(r.records), data: Number(r.data), bytes: Number(r.bytes) };
    } finally {
      db.close();
    }
  }
  const c = new pg.Client({ connectionString: dsn });
  await c.connect();
  try {
    const r = (await c.query(sql)).rows[0];
    return { records: Number(r.records), data: Number(r.data), bytes: Number(r.bytes) };
  } finally {
    await c.end();
  }
}

/** stats() agrees with a count of the tables, and no data row outlives its record. */
async function assertConsistent(backend: Backend['name'], dsn: string, s: ArchiveStore): Promise<void> {
  const raw = await rawCounts(backend, dsn);
  assert.equal(raw.data, raw.records, 'one data row per record');
  assert.deepEqual(await s.stats(), { records: raw.records, bytes: raw.bytes });
}

async function migrationRows(backend: Backend['name'], dsn: string): Promise<number[]> {
  if (backend === 'sqlite') {
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(dsn, { readOnly: true });
    try {
      return db
        .prepare('SELECT version FROM schema_migrations ORDER BY version')
        .all()
        .map((r) => Number(r.version));
    } finally {
      db.close();
    }
  }
  const c = new pg.Client({ connectionString: dsn });
  await c.connect();
  try {
    return (await c.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) =>
      Number(r.version),
    );
  } finally {
    await c.end();
  }
}

describe('PostgreSQL store over TLS (sslmode, sslrootcert in the DSN)', () => {
  let server: PostgresServer;
  before(async () => {
    server = await PostgresServer.start({ tls: true });
  });
  after(() => server?.destroy());

  test('verify-full with the server CA connects over TLS; an unknown CA is refused', async () => {
    const dsn = server.dsn('postgres', `sslmode=verify-full&sslrootcert=${encodeURIComponent(server.ca!)}`);
    const r = makeRecord();
    await withStore(dsn, async (s) => {
      await s.putPending(r);
      assert.deepEqual(await s.get(keyOf(r)), r);
    });
    const c = new pg.Client({ connectionString: dsn });
    await c.connect();
    try {
      const row = (await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0];
      assert.equal(row?.ssl, true, 'the connection is encrypted');
    } finally {
      await c.end();
    }
    // The system's CAs do not know the testbed's: verify-full must refuse the server.
    await assert.rejects(
      withStore(server.dsn('postgres', 'sslmode=verify-full'), async () => {}),
      /self[- ]signed|certificate/i,
    );
  });
});
