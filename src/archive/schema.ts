// The archive's one schema, as numbered migrations with the SQL of both stores side by side
// (src/archive/sqlite.ts, src/archive/postgres.ts). A store applies, at open and in one
// transaction, every migration whose version is above the highest in `schema_migrations`;
// migrations are append-only: never edit one that has shipped, add the next number.
//
// Two tables. `archive_records`: one row per deletion of one version of one object (primary key
// uid + resource_version), the columns the list queries filter, sort on and return. Its rows stay
// small (a few hundred bytes) so a scan reads many per page. `archive_record_data`: the same key,
// the full record compressed: `record_z` (everything but the logs, JSON) and `logs_z` (the
// container logs, JSON; text shrinks several times), deleted with its record (ON DELETE CASCADE).
// `size_bytes` is what one deletion stores (blobs plus the summary columns), summed for the size
// cap and `stats().bytes`. SQLite keeps that sum and the count in `archive_totals` (triggers), so
// stats() does not scan the table on the event loop; PostgreSQL sums on demand (async, and no hot
// row for the clusters of a fleet writing at once).
//
// Times the queries compare are epoch milliseconds (deleted_at_ms, finished_at_ms); the RFC 3339
// strings the API server gave are kept beside them so a record reads back exactly as written.
// The indexes serve the list queries (newest first, keyset on deleted_at_ms, uid,
// resource_version: both databases scan an ascending index backwards, no sort): all namespaces,
// one namespace, one namespace/kind/name, one outcome; by uid is the primary key's prefix; pending
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
    description: 'archive_records, archive_record_data and the indexes of the read side',
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
  size_bytes       INTEGER NOT NULL,
  PRIMARY KEY (uid, resource_version)
);
CREATE TABLE archive_record_data (
  uid              TEXT    NOT NULL,
  resource_version TEXT    NOT NULL,
  codec            TEXT    NOT NULL,
  record_z         BLOB    NOT NULL,
  logs_z           BLOB    NOT NULL,
  PRIMARY KEY (uid, resource_version),
  FOREIGN KEY (uid, resource_version) REFERENCES archive_records (uid, resource_version) ON DELETE CASCADE
);
CREATE INDEX archive_records_time ON archive_records (deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_ns_time ON archive_records (namespace, deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_name ON archive_records (namespace, kind, name, deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_outcome ON archive_records (outcome, deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_pending ON archive_records (deleted_at_ms, uid, resource_version) WHERE state = 'pending';
CREATE TABLE archive_totals (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  records INTEGER NOT NULL,
  bytes   INTEGER NOT NULL
);
INSERT INTO archive_totals (id, records, bytes) VALUES (1, 0, 0);
CREATE TRIGGER archive_totals_insert AFTER INSERT ON archive_records BEGIN
  UPDATE archive_totals SET records = records + 1, bytes = bytes + NEW.size_bytes WHERE id = 1;
END;
CREATE TRIGGER archive_totals_delete AFTER DELETE ON archive_records BEGIN
  UPDATE archive_totals SET records = records - 1, bytes = bytes - OLD.size_bytes WHERE id = 1;
END;
CREATE TRIGGER archive_totals_update AFTER UPDATE OF size_bytes ON archive_records BEGIN
  UPDATE archive_totals SET bytes = bytes - OLD.size_bytes + NEW.size_bytes WHERE id = 1;
END;
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
  size_bytes       BIGINT  NOT NULL,
  PRIMARY KEY (uid, resource_version)
);
CREATE TABLE archive_record_data (
  uid              TEXT    COLLATE "C" NOT NULL,
  resource_version TEXT    COLLATE "C" NOT NULL,
  codec            TEXT    NOT NULL,
  record_z         BYTEA   NOT NULL,
  logs_z           BYTEA   NOT NULL,
  PRIMARY KEY (uid, resource_version),
  FOREIGN KEY (uid, resource_version) REFERENCES archive_records (uid, resource_version) ON DELETE CASCADE
);
-- The blobs are compressed already: TOAST stores them out of line without trying pglz again.
ALTER TABLE archive_record_data ALTER COLUMN record_z SET STORAGE EXTERNAL;
ALTER TABLE archive_record_data ALTER COLUMN logs_z SET STORAGE EXTERNAL;
CREATE INDEX archive_records_time ON archive_records (deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_ns_time ON archive_records (namespace, deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_name ON archive_records (namespace, kind, name, deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_outcome ON archive_records (outcome, deleted_at_ms, uid, resource_version);
CREATE INDEX archive_records_pending ON archive_records (deleted_at_ms, uid, resource_version) WHERE state = 'pending';
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
