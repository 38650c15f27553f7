// The archive on PostgreSQL (--archive-dsn postgres://…), for production and for fleets of
// clusters sharing one archive; two kttl replicas may point at it (only the leader writes).
//
// Client: `pg` (pure JavaScript; its optional native binding pg-native is never loaded, and
// scripts/build.ts keeps it out of the bundle). The DSN is pg's connection string: TLS through
// `sslmode` and `sslrootcert`/`sslcert`/`sslkey` (file paths). pg reads `sslmode=require` and
// `verify-ca` as `verify-full` (the server's name is checked against its certificate) unless the
// DSN adds `uselibpqcompat=true` for libpq's meanings; `sslmode=disable` turns TLS off
// (docs/archive.md). A small pool: writes are single statements, the read side's queries short.
//
// Durability: a commit returns after PostgreSQL flushed its WAL (synchronous_commit's default);
// kttl writes nothing it needs later outside the database.
import pg from 'pg';
import {
  DATA_COLUMNS,
  fromBlobs,
  LIST_ORDER,
  listWhere,
  pageLimit,
  RECORD_COLUMNS,
  type RecordRow,
  SUMMARY_COLUMNS,
  toPage,
  toRow,
  toSummary,
  upsertSet,
} from './rows.ts';
import { MIGRATIONS_TABLE_SQL, migrationsAfter } from './schema.ts';
import type { ArchiveRecord, ArchiveStore, ListQuery, RecordKey, RecordSummary } from './types.ts';

const POOL_SIZE = 4;
/** Rows deleted per statement when pruning. */
const PRUNE_BATCH = 1000;
/** pg_advisory_xact_lock key: two replicas starting at once apply the migrations one after the other. */
const MIGRATION_LOCK = 0x6b74746c; // 'kttl'

// BIGINT columns come back as strings by default; ours hold epoch ms and byte counts, far below 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export class PostgresArchiveStore implements ArchiveStore {
  readonly #dsn: string;
  #pool: pg.Pool | undefined;

  constructor(dsn: string) {
    this.#dsn = dsn;
  }

  async open(): Promise<void> {
    if (this.#pool) return;
    const pool = new pg.Pool({
      connectionString: this.#dsn,
      max: POOL_SIZE,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      // A server that stopped answering fails the statement instead of holding the drain forever.
      query_timeout: 30_000,
      keepAlive: true,
      application_name: 'kttl',
      types,
    });
    // An idle client losing its connection (server restart) emits here; the pool drops it and the
    // next query connects again. Without a listener the error would crash the process.
    pool.on('error', () => {});
    // A client in use when the server goes away (pg_ctl stop: "terminating connection due to
    // administrator command") emits on itself as well as failing its query; the query's rejection is
    // what the caller sees, the event must not become an uncaught error.
    pool.on('connect', (client) => {
      client.on('error', () => {});
    });
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end();
      throw err;
    }
    this.#pool = pool;
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }

  async putPending(record: ArchiveRecord): Promise<void> {
    const row = await toRow(record, 'pending');
    const values = (cols: readonly (keyof RecordRow)[]) =>
      cols.map((c) => {
        const v = row[c];
        return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
      });
    const placeholders = (cols: readonly string[]) =>
      cols.map((c, i) => (c === 'labels' ? `$${i + 1}::jsonb` : `$${i + 1}`)).join(', ');
    await this.#transaction(async (c) => {
      // Same uid + resourceVersion again replaces a pending record; a deleted one stays as it is.
      const r = await c.query(
        `INSERT INTO archive_records (${RECORD_COLUMNS.join(', ')}) VALUES (${placeholders(RECORD_COLUMNS)})
         ON CONFLICT (uid, resource_version) DO UPDATE SET ${upsertSet(RECORD_COLUMNS)}
         WHERE archive_records.state = 'pending' RETURNING uid`,
        values(RECORD_COLUMNS),
      );
      if (r.rowCount === 0) return;
      await c.query(
        `INSERT INTO archive_record_data (${DATA_COLUMNS.join(', ')}) VALUES (${placeholders(DATA_COLUMNS)})
         ON CONFLICT (uid, resource_version) DO UPDATE SET ${upsertSet(DATA_COLUMNS)}`,
        values(DATA_COLUMNS),
      );
    });
  }

  async markDeleted(key: RecordKey, deletedAt: string): Promise<void> {
    const ms = Date.parse(deletedAt);
    if (!Number.isFinite(ms)) throw new Error(`markDeleted: deletedAt is not a time: ${deletedAt}`);
    await this.#q(
      `UPDATE archive_records SET state = 'deleted', deleted_at = $1, deleted_at_ms = $2
       WHERE uid = $3 AND resource_version = $4`,
      [deletedAt, ms, key.uid, key.resourceVersion],
    );
  }

  async drop(key: RecordKey): Promise<void> {
    await this.#q('DELETE FROM archive_records WHERE uid = $1 AND resource_version = $2', [
      key.uid,
      key.resourceVersion,
    ]);
  }

  async pending(): Promise<RecordSummary[]> {
    const r = await this.#q(
      `SELECT ${SUMMARY_COLUMNS} FROM archive_records WHERE state = 'pending' ORDER BY deleted_at_ms, uid, resource_version`,
    );
    return r.rows.map(toSummary);
  }

  async prune(o: { olderThanMs: number; maxBytes?: number }): Promise<{ records: number }> {
    let records = 0;
    for (;;) {
      const r = await this.#q(
        `DELETE FROM archive_records WHERE (uid, resource_version) IN (
           SELECT uid, resource_version FROM archive_records
           WHERE state = 'deleted' AND deleted_at_ms < $1 ORDER BY deleted_at_ms LIMIT ${PRUNE_BATCH})`,
        [o.olderThanMs],
      );
      records += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < PRUNE_BATCH) break;
    }
    if (o.maxBytes === undefined) return { records };
    // By size: the oldest deleted records whose running total reaches the excess go, in batches.
    for (;;) {
      const excess = (await this.stats()).bytes - o.maxBytes;
      if (excess <= 0) break;
      const r = await this.#q(
        `DELETE FROM archive_records WHERE (uid, resource_version) IN (
           SELECT uid, resource_version FROM (
             SELECT uid, resource_version,
                    sum(size_bytes) OVER (ORDER BY deleted_at_ms, uid, resource_version) - size_bytes AS before
             FROM (SELECT uid, resource_version, size_bytes, deleted_at_ms FROM archive_records
                   WHERE state = 'deleted' ORDER BY deleted_at_ms, uid, resource_version LIMIT ${PRUNE_BATCH}) o
           ) w WHERE before < $1)`,
        [excess],
      );
      const n = r.rowCount ?? 0;
      records += n;
      if (n === 0) break;
    }
    return { records };
  }

  async list(q: ListQuery): Promise<{ items: RecordSummary[]; continue?: string }> {
    const limit = pageLimit(q);
    const { where, params } = listWhere(q, (i) => `$${i}`);
    const r = await this.#q(
      `SELECT ${SUMMARY_COLUMNS} FROM archive_records ${where} ${LIST_ORDER} LIMIT ${limit + 1}`,
      params,
    );
    return toPage(r.rows, limit);
  }

  async get(key: RecordKey): Promise<ArchiveRecord | undefined> {
    const r = await this.#q(
      `SELECT d.codec, d.record_z, d.logs_z, r.deleted_at FROM archive_records r
       JOIN archive_record_data d USING (uid, resource_version) WHERE r.uid = $1 AND r.resource_version = $2`,
      [key.uid, key.resourceVersion],
    );
    const row = r.rows[0];
    return row ? await fromBlobs(row.codec, row.record_z, row.logs_z, row.deleted_at) : undefined;
  }

  async latest(namespace: string, kind: string, name: string): Promise<ArchiveRecord | undefined> {
    const r = await this.#q(
      `SELECT d.codec, d.record_z, d.logs_z, r.deleted_at FROM archive_record_data d
       JOIN (SELECT uid, resource_version, deleted_at FROM archive_records
             WHERE namespace = $1 AND kind = $2 AND name = $3 ${LIST_ORDER} LIMIT 1) r USING (uid, resource_version)`,
      [namespace, kind, name],
    );
    const row = r.rows[0];
    return row ? await fromBlobs(row.codec, row.record_z, row.logs_z, row.deleted_at) : undefined;
  }

  async stats(): Promise<{ records: number; bytes: number }> {
    const r = await this.#q(
      'SELECT count(*)::bigint AS n, coalesce(sum(size_bytes), 0)::bigint AS b FROM archive_records',
    );
    return { records: Number(r.rows[0]?.n ?? 0), bytes: Number(r.rows[0]?.b ?? 0) };
  }

  /** The schema version the database is at (for tests and the start-up log). */
  async schemaVersion(): Promise<number> {
    const r = await this.#q('SELECT coalesce(max(version), 0) AS v FROM schema_migrations');
    return Number(r.rows[0]?.v ?? 0);
  }

  async #transaction(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    if (!this.#pool) throw new Error('archive (PostgreSQL): not open');
    const c = await this.#pool.connect();
    let broken: unknown;
    try {
      await c.query('BEGIN');
      await fn(c);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch((e) => {
        broken = e;
      });
      throw err;
    } finally {
      // A connection that could not even roll back is not given to the next caller.
      c.release(broken instanceof Error ? broken : undefined);
    }
  }

  #q(sql: string, params?: unknown[]): Promise<pg.QueryResult> {
    if (!this.#pool) return Promise.reject(new Error('archive (PostgreSQL): not open'));
    return this.#pool.query(sql, params);
  }
}

/** Applies the missing migrations in one transaction under an advisory lock (DDL is transactional). */
async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(MIGRATIONS_TABLE_SQL.postgres);
    const r = await client.query('SELECT coalesce(max(version), 0) AS v FROM schema_migrations');
    for (const m of migrationsAfter(Number(r.rows[0]?.v ?? 0))) {
      await client.query(m.postgres);
      await client.query('INSERT INTO schema_migrations (version, description) VALUES ($1, $2)', [
        m.version,
        m.description,
      ]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
