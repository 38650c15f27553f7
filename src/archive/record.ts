// The archive record of one deletion, from the object as the API server returned it and the
// verdict that deleted it. Pure: the caller (src/archive/archiver.ts) reads the object, its logs and
// Events, and stores the record.
import type { Finish, TtlDecision } from '../rules/types.ts';
import type { ArchivedEvent, ArchiveRecord, ContainerLog, RecordState, RecordSummary } from './types.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown): Record<string, string> {
  if (!isObj(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

const iso = (ms: number) => new Date(ms).toISOString();

export interface RecordInput {
  cluster: string;
  /** The object as read right before the DELETE (its resourceVersion is the one deleted). */
  raw: Obj;
  apiVersion: string;
  kind: string;
  finish: Finish;
  decision: Extract<TtlDecision, { action: 'ttl' }>;
  /** On the API server's clock. */
  deletedAtMs: number;
  reason: string;
  logs: ContainerLog[];
  events: ArchivedEvent[];
  captureErrors: string[];
}

/** The object without metadata.managedFields (bulky, and about who wrote which field, not what). */
export function withoutManagedFields(raw: Obj): Obj {
  const meta = raw.metadata;
  if (!isObj(meta) || !Object.hasOwn(meta, 'managedFields')) return raw;
  const { managedFields: _dropped, ...rest } = meta;
  return { ...raw, metadata: rest };
}

export function buildRecord(i: RecordInput): ArchiveRecord {
  const meta = isObj(i.raw.metadata) ? i.raw.metadata : {};
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  return {
    cluster: i.cluster,
    apiVersion: i.apiVersion,
    kind: i.kind,
    namespace: str(meta.namespace),
    name: str(meta.name),
    uid: str(meta.uid),
    resourceVersion: str(meta.resourceVersion),
    labels: stringMap(meta.labels),
    annotations: stringMap(meta.annotations),
    ownerReferences: Array.isArray(meta.ownerReferences) ? meta.ownerReferences : [],
    object: { ...withoutManagedFields(i.raw), apiVersion: i.apiVersion, kind: i.kind },
    outcome: i.finish.outcome,
    finishedAt: i.finish.atMs === null ? null : iso(i.finish.atMs),
    finishTimeSource: i.finish.timeSource,
    ttlSeconds: i.decision.seconds,
    ttlSource: i.decision.source,
    ttlDetail: i.decision.detail,
    deletedAt: iso(i.deletedAtMs),
    reason: i.reason,
    logs: i.logs,
    events: i.events,
    captureErrors: i.captureErrors,
  };
}

/** The short form of a record (src/archive/types.ts RecordSummary), as the stores' lists give it. */
export function summaryOf(r: ArchiveRecord, state: RecordState): RecordSummary {
  return {
    uid: r.uid,
    resourceVersion: r.resourceVersion,
    cluster: r.cluster,
    apiVersion: r.apiVersion,
    kind: r.kind,
    namespace: r.namespace,
    name: r.name,
    labels: r.labels,
    outcome: r.outcome,
    finishedAt: r.finishedAt,
    deletedAt: r.deletedAt,
    ttlSeconds: r.ttlSeconds,
    ttlSource: r.ttlSource,
    state,
  };
}
