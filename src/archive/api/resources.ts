// What the archive's read API (docs/archive.md) returns, built from the store's records: the
// DeletedObject and its list, the Table `kubectl get` asks for, and the metav1.Status errors.
// Pure: no I/O, so the shapes are unit-tested (test/unit/archive/api-resources.test.ts).
import { humanDuration } from '../../cli/shared/time.ts';
import type { ArchiveRecord, RecordState, RecordSummary } from '../types.ts';

export const GROUP = 'archive.kttl.dev';
export const VERSION = 'v1alpha1';
export const GROUP_VERSION = `${GROUP}/${VERSION}`;
export const RESOURCE = 'deletedobjects';
export const KIND = 'DeletedObject';
export const LIST_KIND = 'DeletedObjectList';

/** `<kind lower-case>.<object name>.<first 8 characters of the uid>`, e.g. `job.train-42.5f3c2a1b`. */
export function deletedObjectName(kind: string, name: string, uid: string): string {
  return `${kind.toLowerCase()}.${name}.${uid.slice(0, 8)}`;
}

export interface ParsedName {
  kindLower: string;
  name: string;
  /** The uid's first 8 characters, or the whole uid. */
  uidPrefix: string;
}

/** The parts of a DeletedObject name (object names may contain dots: the kind is the first part, the uid the last). */
export function parseDeletedObjectName(s: string): ParsedName | undefined {
  const first = s.indexOf('.');
  const last = s.lastIndexOf('.');
  if (first <= 0 || last <= first + 1 || last === s.length - 1) return undefined;
  const uidPrefix = s.slice(last + 1);
  if (uidPrefix.length < 8) return undefined;
  return { kindLower: s.slice(0, first), name: s.slice(first + 1, last), uidPrefix };
}

/** Whether a summary is the object a parsed name names. */
export function namesSummary(p: ParsedName, s: { kind: string; name: string; uid: string }): boolean {
  return s.kind.toLowerCase() === p.kindLower && s.name === p.name && s.uid.startsWith(p.uidPrefix);
}

function metadataOf(s: {
  kind: string;
  name: string;
  namespace: string;
  uid: string;
  resourceVersion: string;
  deletedAt: string;
  labels: Record<string, string>;
}): Record<string, unknown> {
  return {
    name: deletedObjectName(s.kind, s.name, s.uid),
    namespace: s.namespace,
    uid: s.uid,
    resourceVersion: s.resourceVersion,
    creationTimestamp: s.deletedAt,
    ...(Object.keys(s.labels).length ? { labels: s.labels } : {}),
  };
}

/** A list item: the summary only (no manifest, Events or logs). */
export function summaryItem(s: RecordSummary): Record<string, unknown> {
  return {
    apiVersion: GROUP_VERSION,
    kind: KIND,
    metadata: metadataOf(s),
    object: {
      apiVersion: s.apiVersion,
      kind: s.kind,
      name: s.name,
      uid: s.uid,
      resourceVersion: s.resourceVersion,
    },
    cluster: s.cluster,
    outcome: s.outcome,
    finishedAt: s.finishedAt,
    deletedAt: s.deletedAt,
    ttl: { seconds: s.ttlSeconds, source: s.ttlSource },
    state: s.state,
  };
}

/** The full DeletedObject of one record (log text is served by the log subresource only). */
export function deletedObject(r: ArchiveRecord, state: RecordState): Record<string, unknown> {
  const manifest = { ...r.object };
  const meta = manifest.metadata;
  if (meta && typeof meta === 'object') {
    const { managedFields: _, ...rest } = meta as Record<string, unknown>;
    manifest.metadata = rest;
  }
  return {
    apiVersion: GROUP_VERSION,
    kind: KIND,
    metadata: metadataOf(r),
    object: {
      apiVersion: r.apiVersion,
      kind: r.kind,
      name: r.name,
      uid: r.uid,
      resourceVersion: r.resourceVersion,
    },
    cluster: r.cluster,
    outcome: r.outcome,
    finishedAt: r.finishedAt,
    finishTimeSource: r.finishTimeSource,
    deletedAt: r.deletedAt,
    ttl: { seconds: r.ttlSeconds, source: r.ttlSource, detail: r.ttlDetail },
    reason: r.reason,
    state,
    annotations: r.annotations,
    ownerReferences: r.ownerReferences,
    manifest,
    events: r.events,
    logs: r.logs.map((l) => ({
      pod: l.pod,
      container: l.container,
      containerType: l.containerType,
      truncated: l.truncated,
      bytes: Buffer.byteLength(l.text),
      ...(l.error ? { error: l.error } : {}),
    })),
    captureErrors: r.captureErrors,
  };
}

export function deletedObjectList(items: RecordSummary[], cont: string | undefined): Record<string, unknown> {
  return {
    apiVersion: GROUP_VERSION,
    kind: LIST_KIND,
    metadata: { resourceVersion: '', ...(cont ? { continue: cont } : {}) },
    items: items.map(summaryItem),
  };
}

/** metav1.TableColumnDefinition; priority 1 columns show with `-o wide` only. */
export const TABLE_COLUMNS = [
  {
    name: 'Name',
    type: 'string',
    format: 'name',
    description: 'kind.name.uid-prefix of the deleted object',
    priority: 0,
  },
  { name: 'Kind', type: 'string', format: '', description: 'The kind of the deleted object', priority: 0 },
  { name: 'Outcome', type: 'string', format: '', description: 'succeeded or failed', priority: 0 },
  { name: 'Finished', type: 'string', format: '', description: 'How long ago it finished', priority: 0 },
  { name: 'Deleted', type: 'string', format: '', description: 'How long ago kttl deleted it', priority: 0 },
  { name: 'TTL Source', type: 'string', format: '', description: 'What gave the TTL', priority: 0 },
  { name: 'TTL', type: 'string', format: '', description: 'The TTL that expired', priority: 1 },
  { name: 'Cluster', type: 'string', format: '', description: '--cluster-name of the writer', priority: 1 },
  { name: 'UID', type: 'string', format: '', description: 'The deleted object uid', priority: 1 },
] as const;

export type IncludeObject = 'None' | 'Metadata' | 'Object';

function age(iso: string | null, nowMs: number): string {
  if (!iso) return '<none>';
  const t = Date.parse(iso);
  return Number.isFinite(t) ? humanDuration(nowMs - t) : '<invalid>';
}

/** Seconds as kttl's TTL flags write them: `90s`, `15m`, `6h`, `7d`. */
export function ttlText(seconds: number): string {
  if (seconds % 86_400 === 0 && seconds > 0) return `${seconds / 86_400}d`;
  if (seconds % 3_600 === 0 && seconds > 0) return `${seconds / 3_600}h`;
  if (seconds % 60 === 0 && seconds > 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

function rowObject(
  item: Record<string, unknown>,
  include: IncludeObject,
): Record<string, unknown> | undefined {
  if (include === 'None') return undefined;
  if (include === 'Object') return item;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: item.metadata };
}

/** The meta.k8s.io/v1 Table of summaries (or of one full record, for a get). */
export function table(
  rows: Array<{ summary: RecordSummary; item: Record<string, unknown> }>,
  o: { nowMs: number; include: IncludeObject; continue?: string },
): Record<string, unknown> {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: '', ...(o.continue ? { continue: o.continue } : {}) },
    columnDefinitions: TABLE_COLUMNS,
    rows: rows.map(({ summary: s, item }) => {
      const object = rowObject(item, o.include);
      return {
        cells: [
          deletedObjectName(s.kind, s.name, s.uid),
          s.kind,
          s.outcome,
          age(s.finishedAt, o.nowMs),
          age(s.deletedAt, o.nowMs),
          s.ttlSource,
          ttlText(s.ttlSeconds),
          s.cluster,
          s.uid,
        ],
        ...(object ? { object } : {}),
      };
    }),
  };
}

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'InternalError'
  | 'ServiceUnavailable';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
}

/** A metav1.Status failure, as the API server answers errors. */
export function status(code: number, reason: StatusReason, message: string, details?: StatusDetails) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

export interface ForbiddenAttributes {
  user: string;
  verb: string;
  /** `deletedobjects` or `deletedobjects/log`. */
  resource: string;
  namespace?: string;
  name?: string;
  /** The authorizer's reason (appended as the API server does). */
  reason?: string;
}

/** The API server's wording: `deletedobjects.archive.kttl.dev "n" is forbidden: User "u" cannot get resource ...`. */
export function forbiddenMessage(a: ForbiddenAttributes): string {
  const what = a.name ? `${RESOURCE}.${GROUP} "${a.name}"` : `${RESOURCE}.${GROUP}`;
  const where = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const why = a.reason ? `: ${a.reason}` : '';
  return `${what} is forbidden: User "${a.user}" cannot ${a.verb} resource "${a.resource}" in API group "${GROUP}" ${where}${why}`;
}

export function forbidden(a: ForbiddenAttributes) {
  return status(403, 'Forbidden', forbiddenMessage(a), {
    ...(a.name ? { name: a.name } : {}),
    group: GROUP,
    kind: RESOURCE,
  });
}

export function notFound(name: string) {
  return status(404, 'NotFound', `${RESOURCE}.${GROUP} "${name}" not found`, {
    name,
    group: GROUP,
    kind: RESOURCE,
  });
}
