// What both stores (src/archive/sqlite.ts, src/archive/postgres.ts) write and read: a record
// turned into the columns of archive_records (src/archive/schema.ts) and back, and the list's
// opaque continue token. Compression runs on libuv's thread pool (async brotli), so the SQLite
// store's synchronous INSERT that follows only copies bytes.
import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, constants } from 'node:zlib';
import type { ArchiveRecord, ListQuery, RecordState, RecordSummary } from './types.ts';

const compress = promisify(brotliCompress);
const decompress = promisify(brotliDecompress);

/** The codec column: how record_z and logs_z are encoded (a later codec adds a name here). */
export const CODEC = 'br';
// Quality 5: a 256 KiB log shrinks ~7x in ~10 ms on one core; 11 (the default) takes ~40x longer.
const BROTLI_QUALITY = 5;

/** The page size when the query names none, and the most one page returns. */
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export interface RecordRow {
  uid: string;
  resource_version: string;
  cluster: string;
  api_version: string;
  kind: string;
  namespace: string;
  name: string;
  labels: string;
  outcome: string;
  finished_at: string | null;
  finished_at_ms: number | null;
  deleted_at: string;
  deleted_at_ms: number;
  ttl_seconds: number;
  ttl_source: string;
  state: RecordState;
  codec: string;
  record_z: Uint8Array;
  logs_z: Uint8Array;
  size_bytes: number;
}

/** archive_records' columns, in the order both stores' INSERT lists them. */
export const RECORD_COLUMNS = [
  'uid',
  'resource_version',
  'cluster',
  'api_version',
  'kind',
  'namespace',
  'name',
  'labels',
  'outcome',
  'finished_at',
  'finished_at_ms',
  'deleted_at',
  'deleted_at_ms',
  'ttl_seconds',
  'ttl_source',
  'state',
  'size_bytes',
] as const satisfies readonly (keyof RecordRow)[];

/** archive_record_data's columns. */
export const DATA_COLUMNS = [
  'uid',
  'resource_version',
  'codec',
  'record_z',
  'logs_z',
] as const satisfies readonly (keyof RecordRow)[];

/** `col = excluded.col` for every column but the key (an upsert's SET). */
export function upsertSet(columns: readonly string[]): string {
  return columns
    .filter((c) => c !== 'uid' && c !== 'resource_version')
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
}

/** The columns a summary needs (no blobs). */
export const SUMMARY_COLUMNS =
  'uid, resource_version, cluster, api_version, kind, namespace, name, labels, outcome, finished_at, deleted_at, deleted_at_ms, ttl_seconds, ttl_source, state';

export function timeMs(rfc3339: string, what: string): number {
  const ms = Date.parse(rfc3339);
  if (!Number.isFinite(ms))
    throw new Error(`archive record: ${what} is not a time: ${JSON.stringify(rfc3339)}`);
  return ms;
}

function brotli(data: string): Promise<Buffer> {
  const input = Buffer.from(data, 'utf8');
  return compress(input, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: input.length,
    },
  });
}

export async function toRow(record: ArchiveRecord, state: RecordState): Promise<RecordRow> {
  const { logs, ...rest } = record;
  const [recordZ, logsZ] = await Promise.all([brotli(JSON.stringify(rest)), brotli(JSON.stringify(logs))]);
  const labels = JSON.stringify(record.labels ?? {});
  const text = [
    record.uid,
    record.resourceVersion,
    record.cluster,
    record.apiVersion,
    record.kind,
    record.namespace,
    record.name,
    labels,
    record.outcome,
    record.finishedAt ?? '',
    record.deletedAt,
    record.ttlSource,
  ];
  // The blobs, the text columns and 8 bytes per number: what the row holds, give or take the
  // store's own per-row overhead (which the size cap leaves out).
  const size = recordZ.length + logsZ.length + text.reduce((n, s) => n + Buffer.byteLength(s), 0) + 4 * 8;
  return {
    uid: record.uid,
    resource_version: record.resourceVersion,
    cluster: record.cluster,
    api_version: record.apiVersion,
    kind: record.kind,
    namespace: record.namespace,
    name: record.name,
    labels,
    outcome: record.outcome,
    finished_at: record.finishedAt,
    finished_at_ms: record.finishedAt === null ? null : timeMs(record.finishedAt, 'finishedAt'),
    deleted_at: record.deletedAt,
    deleted_at_ms: timeMs(record.deletedAt, 'deletedAt'),
    ttl_seconds: record.ttlSeconds,
    ttl_source: record.ttlSource,
    state,
    codec: CODEC,
    record_z: recordZ,
    logs_z: logsZ,
    size_bytes: size,
  };
}

/** The full record from its blobs; deletedAt from the column (markDeleted may have moved it). */
export async function fromBlobs(
  codec: string,
  recordZ: Uint8Array,
  logsZ: Uint8Array,
  deletedAt: string,
): Promise<ArchiveRecord> {
  if (codec !== CODEC) throw new Error(`archive record: unknown codec ${JSON.stringify(codec)}`);
  const [rest, logs] = await Promise.all([decompress(recordZ), decompress(logsZ)]);
  const record = JSON.parse(rest.toString('utf8')) as Omit<ArchiveRecord, 'logs'>;
  return { ...record, deletedAt, logs: JSON.parse(logs.toString('utf8')) };
}

/** A summary from the SUMMARY_COLUMNS of a row (labels: JSON text, or already parsed by pg's jsonb). */
export function toSummary(r: Record<string, unknown>): RecordSummary {
  const labels = typeof r.labels === 'string' ? JSON.parse(r.labels) : (r.labels ?? {});
  return {
    uid: String(r.uid),
    resourceVersion: String(r.resource_version),
    cluster: String(r.cluster),
    apiVersion: String(r.api_version),
    kind: String(r.kind),
    namespace: String(r.namespace),
    name: String(r.name),
    labels: labels as Record<string, string>,
    outcome: r.outcome as RecordSummary['outcome'],
    finishedAt: r.finished_at === null || r.finished_at === undefined ? null : String(r.finished_at),
    deletedAt: String(r.deleted_at),
    ttlSeconds: Number(r.ttl_seconds),
    ttlSource: String(r.ttl_source),
    state: r.state as RecordState,
  };
}

/** Where a page ended: the last row's sort key (deleted_at_ms, uid, resource_version). */
export interface Cursor {
  deletedAtMs: number;
  uid: string;
  resourceVersion: string;
}

export function encodeContinue(c: Cursor): string {
  return Buffer.from(JSON.stringify([1, c.deletedAtMs, c.uid, c.resourceVersion])).toString('base64url');
}

export function decodeContinue(token: string): Cursor {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (
      Array.isArray(v) &&
      v[0] === 1 &&
      Number.isSafeInteger(v[1]) &&
      typeof v[2] === 'string' &&
      typeof v[3] === 'string'
    ) {
      return { deletedAtMs: v[1], uid: v[2], resourceVersion: v[3] };
    }
  } catch {
    // fall through
  }
  throw new InvalidContinueError(token);
}

export class InvalidContinueError extends Error {
  constructor(token: string) {
    super(`invalid continue token ${JSON.stringify(token.slice(0, 40))}`);
    this.name = 'InvalidContinueError';
  }
}

export function pageLimit(q: ListQuery): number {
  const n = q.limit ?? DEFAULT_LIMIT;
  if (!Number.isFinite(n) || n < 1) return DEFAULT_LIMIT;
  return Math.min(Math.floor(n), MAX_LIMIT);
}

/** The list's WHERE clause for either dialect: `param(i)` names the i-th parameter (? or $i). */
export function listWhere(q: ListQuery, param: (i: number) => string): { where: string; params: unknown[] } {
  const conds: string[] = [];
  const params: unknown[] = [];
  const eq = (col: string, v: unknown) => {
    params.push(v);
    conds.push(`${col} = ${param(params.length)}`);
  };
  if (q.cluster !== undefined) eq('cluster', q.cluster);
  if (q.namespace !== undefined) eq('namespace', q.namespace);
  if (q.kind !== undefined) eq('kind', q.kind);
  if (q.name !== undefined) eq('name', q.name);
  if (q.uid !== undefined) eq('uid', q.uid);
  if (q.outcome !== undefined) eq('outcome', q.outcome);
  if (q.state !== undefined) eq('state', q.state);
  if (q.sinceMs !== undefined) {
    params.push(q.sinceMs);
    conds.push(`deleted_at_ms >= ${param(params.length)}`);
  }
  if (q.untilMs !== undefined) {
    params.push(q.untilMs);
    conds.push(`deleted_at_ms < ${param(params.length)}`);
  }
  if (q.continue !== undefined) {
    const c = decodeContinue(q.continue);
    params.push(c.deletedAtMs, c.uid, c.resourceVersion);
    const n = params.length;
    conds.push(`(deleted_at_ms, uid, resource_version) < (${param(n - 2)}, ${param(n - 1)}, ${param(n)})`);
  }
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}

export const LIST_ORDER = 'ORDER BY deleted_at_ms DESC, uid DESC, resource_version DESC';

/** One page from up to limit + 1 rows: the extra row only says a next page exists. */
export function toPage(
  rows: Record<string, unknown>[],
  limit: number,
): { items: RecordSummary[]; continue?: string } {
  const page = rows.slice(0, limit);
  const items = page.map(toSummary);
  const last = page[page.length - 1];
  if (rows.length <= limit || !last) return { items };
  return {
    items,
    continue: encodeContinue({
      deletedAtMs: Number(last.deleted_at_ms),
      uid: String(last.uid),
      resourceVersion: String(last.resource_version),
    }),
  };
}
