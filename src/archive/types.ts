// The archive (docs/archive.md): what kttl records about each object it deletes, and the store it
// writes to. The record is built by src/archive/record.ts, the logs and Events are read by
// src/archive/collector.ts, the stores are src/archive/sqlite.ts and src/archive/postgres.ts.
import type { FinishTimeSource, Outcome, TtlSource } from '../rules/types.ts';

export type { ArchiveMode } from '../rules/types.ts';

export interface ContainerLog {
  pod: string;
  container: string;
  /** Init and ephemeral containers too; `init`/`ephemeral` say which. */
  containerType: 'regular' | 'init' | 'ephemeral';
  /** The last lines (at most --archive-log-lines, --archive-log-bytes). */
  text: string;
  /** The API server cut it (limitBytes) or more lines existed than were asked for. */
  truncated: boolean;
  /** Why no log could be read (the pod never ran, the node is gone…); text is then ''. */
  error?: string;
}

export interface ArchivedEvent {
  /** The object the Event is about: the archived object itself or one of its pods. */
  involvedKind: string;
  involvedName: string;
  type: string;
  reason: string;
  message: string;
  count: number;
  /** RFC 3339, or null when the Event carries none. */
  firstTime: string | null;
  lastTime: string | null;
  /** The component that reported it, e.g. `job-controller`, `kttl`. */
  source: string;
}

export interface ArchiveRecord {
  /** --cluster-name: which cluster the record comes from (one archive may serve a fleet). */
  cluster: string;
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  /** The version that was judged and deleted (the DELETE's precondition). */
  resourceVersion: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ownerReferences: unknown[];
  /** The object as the API server returned it, without metadata.managedFields. */
  object: Record<string, unknown>;
  outcome: Outcome;
  /** RFC 3339 on the API server's clock; null when it had no finish time (judged from first seen). */
  finishedAt: string | null;
  finishTimeSource: FinishTimeSource;
  ttlSeconds: number;
  ttlSource: Exclude<TtlSource, 'keep' | 'none'>;
  /** Which key/field/policy gave the TTL, e.g. `annotation kttl.dev/ttl-failed=7d`. */
  ttlDetail: string;
  /** RFC 3339 on the API server's clock: when kttl sent the DELETE (or decided to). */
  deletedAt: string;
  /** kttl's reason, as in its TTLExpired Event. */
  reason: string;
  logs: ContainerLog[];
  events: ArchivedEvent[];
  /** What could not be captured (a log or Event read that failed, in best-effort mode). */
  captureErrors: string[];
}

/** pending: committed before the DELETE; deleted: the DELETE succeeded (or the object is gone). */
export type RecordState = 'pending' | 'deleted';

/** A record's identity: one deletion of one version of one object. */
export interface RecordKey {
  uid: string;
  resourceVersion: string;
}

/** The short form the list queries return (no object, no logs). */
export interface RecordSummary extends RecordKey {
  cluster: string;
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  outcome: Outcome;
  finishedAt: string | null;
  deletedAt: string;
  ttlSeconds: number;
  ttlSource: string;
  state: RecordState;
}

export interface ListQuery {
  /** undefined: every cluster that writes to this archive. */
  cluster?: string;
  /** undefined: all namespaces. */
  namespace?: string;
  kind?: string;
  name?: string;
  uid?: string;
  outcome?: Outcome;
  /** undefined: both pending and deleted records. */
  state?: RecordState;
  /** deletedAt >= since (RFC 3339 / epoch ms). */
  sinceMs?: number;
  untilMs?: number;
  /** At most this many (the store caps it). */
  limit?: number;
  /** From a previous page (opaque). */
  continue?: string;
}

export interface ArchiveStore {
  /** Connects and applies the schema migrations (idempotent). */
  open(): Promise<void>;
  close(): Promise<void>;
  /**
   * Writes a record in state pending; resolves once it is committed (durable). Writing the same
   * uid + resourceVersion again replaces the pending record (never two records for one deletion).
   */
  putPending(record: ArchiveRecord): Promise<void>;
  /** The DELETE succeeded or the object is gone: the record becomes `deleted`. */
  markDeleted(key: RecordKey, deletedAt: string): Promise<void>;
  /** The deletion did not happen (the object changed and is no longer due): the record goes. */
  drop(key: RecordKey): Promise<void>;
  /** Records still pending (a crash between commit and DELETE), for reconciliation at start. */
  pending(): Promise<RecordSummary[]>;
  /** Deletes records deleted before `olderThanMs`, then the oldest until at most `maxBytes` remain. */
  prune(o: { olderThanMs: number; maxBytes?: number }): Promise<{ records: number }>;
  /** Newest first (deletedAt, then uid). */
  list(q: ListQuery): Promise<{ items: RecordSummary[]; continue?: string }>;
  /** The full record; undefined when there is none. */
  get(key: RecordKey): Promise<ArchiveRecord | undefined>;
  /** The newest record of an object by namespace/kind/name (the name may have been reused). */
  latest(namespace: string, kind: string, name: string): Promise<ArchiveRecord | undefined>;
  /** Number of records and the bytes they take (for the size cap and the metrics). */
  stats(): Promise<{ records: number; bytes: number }>;
}
