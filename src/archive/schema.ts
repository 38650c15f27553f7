// The archive's one schema, as numbered migrations with the SQL of both stores side by side
// (src/archive/sqlite.ts, src/archive/postgres.ts). A store applies, at open and in one
// transaction, every migration whose version is above the highest in `schema_migrations`;
// migrations are append-only: never edit one that has shipped, add the next number.
//
// One row per deletion of one version of one object (primary key uid + resource_version). The
// columns are what the list queries filter and sort on; the full record lives compressed in
// `record_z` (everything but the logs, JSON) and `logs_z` (the container logs, JSON): logs are text
// and shrink several times. `size_bytes` is what the row stores (blobs plus the summary columns),
// summed for the size cap and `stats().bytes`.
//
// Times the queries compare are epoch milliseconds (deleted_at_ms, finished_at_ms); the RFC 3339
// strings the API server gave are kept beside them so a record reads back exactly as written.
// The indexes serve the list queries (newest first, keyset on deleted_at_ms, uid,
// resource_version: both databases scan an ascending index backwards): all namespaces, one
// namespace, one namespace/kind/name, one outcome; by uid is the primary key's prefix; pending
// records (reconciled at start) have a partial index. PostgreSQL compares uid and resource_version
// bytewise (COLLATE "C", as SQLite's BINARY), so both stores order and page alike whatever the
// database's locale.

export interface Migration {
  version: number;
  description: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'archive_records and the indexes of the read side',
    sqlite: `
CREATE TABLE archive_records (
  uid              TEXT    NOT NULL,
  resource_version TEXT    NOT NULL,
  cluster          TEXT    NOT NULL,
  api_version      TEXT    NOT NULL,
  kind             TEXT    NOT NULL,
  namespace        TEXT    NOT NULL,
  name             TEXT    NOT NULL,
  labels           TEXT    NOT NULL,
  outcome          TEXT    NOT NULL,
  finished_at      TEXT,
  finished_at_ms   INTEGER,
  deleted_at       TEXT    NOT NULL,
  deleted_at_ms    INTEGER NOT NULL,
  ttl_seconds      INTEGER NOT NULL,
  ttl_source       TEXT    NOT NULL,
  state            TEXT    NOT NULL CHECK (state IN ('pending', 'deleted')),
  codec            TEXT    NOT NULL,
  record_z         BLOB    NOT NULL,
  logs_z           BLOB    NOT NULL,
  size_bytes       INTEGER NOT NULL,
  PRIMARY KEY (uid, resource_version)
) WITHOUT ROWID;
CREATE INDEX archive_records_ns_time ON archive_records (namespace, deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_name ON archive_records (namespace, kind, name, deleted_at_ms);
CREATE INDEX archive_records_outcome ON archive_records (outcome, deleted_at_ms);
CREATE INDEX archive_records_time ON archive_records (deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_pending ON archive_records (deleted_at_ms) WHERE state = 'pending';
`,
    postgres: `
CREATE TABLE archive_records (
  uid              TEXT    COLLATE "C" NOT NULL,
  resource_version TEXT    COLLATE "C" NOT NULL,
  cluster          TEXT    NOT NULL,
  api_version      TEXT    NOT NULL,
  kind             TEXT    NOT NULL,
  namespace        TEXT    NOT NULL,
  name             TEXT    NOT NULL,
  labels           JSONB   NOT NULL,
  outcome          TEXT    NOT NULL,
  finished_at      TEXT,
  finished_at_ms   BIGINT,
  deleted_at       TEXT    NOT NULL,
  deleted_at_ms    BIGINT  NOT NULL,
  ttl_seconds      BIGINT  NOT NULL,
  ttl_source       TEXT    NOT NULL,
  state            TEXT    NOT NULL CHECK (state IN ('pending', 'deleted')),
  codec            TEXT    NOT NULL,
  record_z         BYTEA   NOT NULL,
  logs_z           BYTEA   NOT NULL,
  size_bytes       BIGINT  NOT NULL,
  PRIMARY KEY (uid, resource_version)
);
-- The blobs are compressed already: keep PostgreSQL from trying again (TOAST's pglz).
ALTER TABLE archive_records ALTER COLUMN record_z SET STORAGE EXTERNAL;
ALTER TABLE archive_records ALTER COLUMN logs_z SET STORAGE EXTERNAL;
CREATE INDEX archive_records_ns_time ON archive_records (namespace, deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_name ON archive_records (namespace, kind, name, deleted_at_ms);
CREATE INDEX archive_records_outcome ON archive_records (outcome, deleted_at_ms);
CREATE INDEX archive_records_time ON archive_records (deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_pending ON archive_records (deleted_at_ms) WHERE state = 'pending';
`,
  },
];

/** The highest version this build knows; a database above it was written by a newer kttl. */
export const SCHEMA_VERSION = Math.max(...MIGRATIONS.map((m) => m.version));

export const MIGRATIONS_TABLE_SQL = {
  sqlite:
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)',
  postgres:
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
} as const;

/** The migrations still to apply over `current`; throws when the database is newer than this build. */
export function migrationsAfter(current: number): readonly Migration[] {
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `the archive's schema is version ${current}, newer than this kttl knows (${SCHEMA_VERSION}): upgrade kttl`,
    );
  }
  return MIGRATIONS.filter((m) => m.version > current).sort((a, b) => a.version - b.version);
}
