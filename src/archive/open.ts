// --archive-dsn to a store: `postgres://` or `postgresql://` is PostgreSQL (src/archive/postgres.ts),
// `sqlite:` / `file:` URLs and anything else a file path for SQLite (src/archive/sqlite.ts). The store
// is not opened here: the caller's open() connects and applies the migrations.
import { fileURLToPath } from 'node:url';
import { DEFAULT_ARCHIVE_DSN } from './dsn.ts';
import { PostgresArchiveStore } from './postgres.ts';
import { SqliteArchiveStore } from './sqlite.ts';
import type { ArchiveStore } from './types.ts';

export { DEFAULT_ARCHIVE_DSN } from './dsn.ts';

export type ArchiveBackend = 'postgres' | 'sqlite';

export function archiveBackend(dsn: string): ArchiveBackend {
  return /^postgres(ql)?:\/\//i.test(dsn) ? 'postgres' : 'sqlite';
}

/** The SQLite file a non-PostgreSQL DSN names (`sqlite:///abs/path`, `sqlite:rel/path`, `file:///…`, a path). */
export function sqlitePath(dsn: string): string {
  if (/^file:\/\//i.test(dsn)) return fileURLToPath(dsn);
  const m = dsn.match(/^sqlite:(?:\/\/)?(.*)$/i);
  const path = m ? (m[1] ?? '') : dsn;
  if (path === '') throw new Error(`--archive-dsn ${JSON.stringify(dsn)}: no file path`);
  return path;
}

export function openArchiveStore(dsn: string = DEFAULT_ARCHIVE_DSN): ArchiveStore {
  return archiveBackend(dsn) === 'postgres'
    ? new PostgresArchiveStore(dsn)
    : new SqliteArchiveStore(sqlitePath(dsn));
}

/** The DSN with its password replaced, for logs and errors. */
export function redactDsn(dsn: string): string {
  if (archiveBackend(dsn) !== 'postgres') return dsn;
  try {
    const u = new URL(dsn);
    if (u.password) u.password = '***';
    u.searchParams.forEach((_, k) => {
      if (k.toLowerCase() === 'password') u.searchParams.set(k, '***');
    });
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}
