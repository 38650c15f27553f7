// The archive in one SQLite file (Node's built-in node:sqlite, no dependency): the default store.
// SQLite has one writer: one kttl process per file (the chart runs one replica with SQLite).
//
// Durability: WAL with synchronous=FULL. A commit returns once the WAL is fsync'ed, so a record
// that putPending reported committed survives kill -9 and also the node losing power. NORMAL
// would survive kill -9 too (the WAL is in the OS's page cache) but not a power loss or kernel
// crash, and with --archive=required kttl sends the DELETE right after the commit: a record lost
// after the object is gone breaks the guarantee. FULL costs one fsync per commit, a few ms on
// ordinary disks (docs/archive.md has the figures).
//
// node:sqlite is synchronous: each statement blocks the event loop while it runs. Compression and
// decompression run before and after, on the thread pool (src/archive/rows.ts); the statements
// themselves are single-row writes or bounded batches. The WAL checkpoints (copying the WAL into
// the database file and fsync'ing it, the slowest thing SQLite does) run on a worker thread with
// its own connection, so a commit only appends to the WAL; the main connection checkpoints by
// itself only if the WAL grows past WAL_SAFETY_PAGES (the worker gone or starved).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import {
  DATA_COLUMNS,
  fromBlobs,
  LIST_ORDER,
  listWhere,
  pageLimit,
  RECORD_COLUMNS,
  SUMMARY_COLUMNS,
  toPage,
  toRow,
  toSummary,
  upsertSet,
} from './rows.ts';
import { MIGRATIONS_TABLE_SQL, migrationsAfter } from './schema.ts';
import type { ArchiveRecord, ArchiveStore, ListQuery, RecordKey, RecordSummary } from './types.ts';

/** Rows deleted per statement when pruning: short enough not to stall the event loop. */
const PRUNE_BATCH = 200;
/** How often the worker checkpoints the WAL. */
const CHECKPOINT_INTERVAL_MS = 1000;
/** 4 KiB pages: the main connection checkpoints by itself past 64 MiB of WAL. */
const WAL_SAFETY_PAGES = 16384;

// The checkpointer's code, evaluated (not a file: the bundle, dist/kttl.mjs, is a single file).
const CHECKPOINTER = `
const { DatabaseSync } = require('node:sqlite');
const { parentPort, workerData } = require('node:worker_threads');
const db = new DatabaseSync(workerData.path, { timeout: 1000 });
db.exec('PRAGMA synchronous = FULL');
const timer = setInterval(() => {
  try { db.exec('PRAGMA wal_checkpoint(PASSIVE)'); } catch {}
}, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

export class SqliteArchiveStore implements ArchiveStore {
  readonly path: string;
  #db: DatabaseSync | undefined;
  #stmts = new Map<string, StatementSync>();
  #checkpointer: { worker: Worker; exited: Promise<unknown> } | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async open(): Promise<void> {
    if (this.#db) return;
    // The records hold logs and specs: a directory created here is the process user's alone.
    if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const db = new DatabaseSync(this.path, { timeout: 5000 });
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      // archive_record_data's rows go with their record (ON DELETE CASCADE).
      db.exec('PRAGMA foreign_keys = ON');
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.#db = db;
    if (this.path !== ':memory:') {
      db.exec(`PRAGMA wal_autocheckpoint = ${WAL_SAFETY_PAGES}`);
      // After a burst the WAL file shrinks back to this when it restarts (it is reused, not regrown).
      db.exec('PRAGMA journal_size_limit = 16777216');
      const worker = new Worker(CHECKPOINTER, {
        eval: true,
        workerData: { path: this.path, intervalMs: CHECKPOINT_INTERVAL_MS },
      });
      worker.unref();
      // Without the worker the main connection's own autocheckpoint still bounds the WAL.
      worker.on('error', () => {});
      this.#checkpointer = { worker, exited: new Promise((r) => worker.once('exit', r)) };
    }
  }

  async close(): Promise<void> {
    this.#stmts.clear();
    const checkpointer = this.#checkpointer;
    this.#checkpointer = undefined;
    if (checkpointer) {
      const { worker, exited } = checkpointer;
      // Ref'ed while it closes: an unref'ed worker's exit would not keep a short-lived process
      // (a CLI command, a test) alive long enough to see it. A worker that already died has
      // resolved `exited`; the message then goes nowhere.
      worker.ref();
      worker.postMessage('close');
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await exited;
      clearTimeout(timer);
    }
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }

  async putPending(record: ArchiveRecord): Promise<void> {
    const row = await toRow(record, 'pending');
    // Same uid + resourceVersion again: the pending record is replaced; a record already marked
    // deleted stays as it is (that deletion happened: never a second record for it). RETURNING
    // says whether the summary row was written; only then is its data.
    const upsertRecord = this.#stmt(
      `INSERT INTO archive_records (${RECORD_COLUMNS.join(', ')}) VALUES (${RECORD_COLUMNS.map(() => '?').join(', ')})
       ON CONFLICT (uid, resource_version) DO UPDATE SET ${upsertSet(RECORD_COLUMNS)}
       WHERE archive_records.state = 'pending' RETURNING uid`,
    );
    const upsertData = this.#stmt(
      `INSERT INTO archive_record_data (${DATA_COLUMNS.join(', ')}) VALUES (${DATA_COLUMNS.map(() => '?').join(', ')})
       ON CONFLICT (uid, resource_version) DO UPDATE SET ${upsertSet(DATA_COLUMNS)}`,
    );
    this.#transaction(() => {
      if (upsertRecord.get(...RECORD_COLUMNS.map((c) => row[c] as SQLInputValue))) {
        upsertData.run(...DATA_COLUMNS.map((c) => row[c] as SQLInputValue));
      }
    });
  }

  async markDeleted(key: RecordKey, deletedAt: string): Promise<void> {
    const ms = Date.parse(deletedAt);
    if (!Number.isFinite(ms)) throw new Error(`markDeleted: deletedAt is not a time: ${deletedAt}`);
    this.#stmt(
      `UPDATE archive_records SET state = 'deleted', deleted_at = ?, deleted_at_ms = ?
       WHERE uid = ? AND resource_version = ?`,
    ).run(deletedAt, ms, key.uid, key.resourceVersion);
  }

  async drop(key: RecordKey): Promise<void> {
    this.#stmt('DELETE FROM archive_records WHERE uid = ? AND resource_version = ?').run(
      key.uid,
      key.resourceVersion,
    );
  }

  async pending(): Promise<RecordSummary[]> {
    const rows = this.#stmt(
      `SELECT ${SUMMARY_COLUMNS} FROM archive_records WHERE state = 'pending' ORDER BY deleted_at_ms, uid, resource_version`,
    ).all();
    return rows.map((r) => toSummary(r));
  }

  async prune(o: { olderThanMs: number; maxBytes?: number }): Promise<{ records: number }> {
    let records = 0;
    // By age, in batches (each its own short transaction). Pending records are never pruned: they
    // wait for reconciliation.
    const byAge = this.#stmt(
      `DELETE FROM archive_records WHERE (uid, resource_version) IN (
         SELECT uid, resource_version FROM archive_records
         WHERE state = 'deleted' AND deleted_at_ms < ? ORDER BY deleted_at_ms LIMIT ${PRUNE_BATCH})`,
    );
    for (;;) {
      const n = Number(byAge.run(o.olderThanMs).changes);
      records += n;
      if (n < PRUNE_BATCH) break;
      await yieldToLoop();
    }
    if (o.maxBytes === undefined) return { records };
    // By size: the oldest deleted records go until the rest fit.
    let excess = (await this.stats()).bytes - o.maxBytes;
    const oldest = this.#stmt(
      `SELECT uid, resource_version, size_bytes FROM archive_records WHERE state = 'deleted'
       ORDER BY deleted_at_ms, uid, resource_version LIMIT ${PRUNE_BATCH}`,
    );
    const del = this.#stmt('DELETE FROM archive_records WHERE uid = ? AND resource_version = ?');
    while (excess > 0) {
      const rows = oldest.all();
      if (rows.length === 0) break;
      this.#transaction(() => {
        for (const r of rows) {
          if (excess <= 0) break;
          del.run(r.uid as string, r.resource_version as string);
          excess -= Number(r.size_bytes);
          records++;
        }
      });
      await yieldToLoop();
    }
    return { records };
  }

  async list(q: ListQuery): Promise<{ items: RecordSummary[]; continue?: string }> {
    const limit = pageLimit(q);
    const { where, params } = listWhere(q, () => '?');
    const rows = this.#open()
      .prepare(`SELECT ${SUMMARY_COLUMNS} FROM archive_records ${where} ${LIST_ORDER} LIMIT ${limit + 1}`)
      .all(...(params as SQLInputValue[]));
    return toPage(rows, limit);
  }

  async get(key: RecordKey): Promise<ArchiveRecord | undefined> {
    const r = this.#stmt(
      `SELECT d.codec, d.record_z, d.logs_z, r.deleted_at FROM archive_records r
       JOIN archive_record_data d USING (uid, resource_version) WHERE r.uid = ? AND r.resource_version = ?`,
    ).get(key.uid, key.resourceVersion);
    return r
      ? await fromBlobs(
          String(r.codec),
          r.record_z as Uint8Array,
          r.logs_z as Uint8Array,
          String(r.deleted_at),
        )
      : undefined;
  }

  async latest(namespace: string, kind: string, name: string): Promise<ArchiveRecord | undefined> {
    const r = this.#stmt(
      `SELECT d.codec, d.record_z, d.logs_z, r.deleted_at FROM archive_record_data d
       JOIN (SELECT uid, resource_version, deleted_at FROM archive_records
             WHERE namespace = ? AND kind = ? AND name = ? ${LIST_ORDER} LIMIT 1) r USING (uid, resource_version)`,
    ).get(namespace, kind, name);
    return r
      ? await fromBlobs(
          String(r.codec),
          r.record_z as Uint8Array,
          r.logs_z as Uint8Array,
          String(r.deleted_at),
        )
      : undefined;
  }

  async stats(): Promise<{ records: number; bytes: number }> {
    const r = this.#stmt('SELECT records AS n, bytes AS b FROM archive_totals WHERE id = 1').get();
    return { records: Number(r?.n ?? 0), bytes: Number(r?.b ?? 0) };
  }

  /** The schema version the file is at (for tests and the start-up log). */
  schemaVersion(): number {
    const r = this.#open().prepare('SELECT coalesce(max(version), 0) AS v FROM schema_migrations').get();
    return Number(r?.v ?? 0);
  }

  #transaction(fn: () => void): void {
    const db = this.#open();
    db.exec('BEGIN IMMEDIATE');
    try {
      fn();
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }

  #open(): DatabaseSync {
    if (!this.#db) throw new Error(`archive ${this.path}: not open`);
    return this.#db;
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#open().prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }
}

/** Applies the missing migrations in one write transaction (a second opener waits, then sees them). */
function migrate(db: DatabaseSync): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(MIGRATIONS_TABLE_SQL.sqlite);
    const current = Number(
      db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_migrations').get()?.v ?? 0,
    );
    const insert = db.prepare(
      'INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)',
    );
    for (const m of migrationsAfter(current)) {
      db.exec(m.sqlite);
      insert.run(m.version, m.description, new Date().toISOString());
    }
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

function yieldToLoop(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
