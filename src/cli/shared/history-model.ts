// The archive's read API as the CLI sees it (docs/archive.md: `deletedobjects` in group
// archive.kttl.dev), and the pure choices of `kttl history` and `kttl logs`: which kind a spelling
// names in records, the list's selectors, which archived container log to read, and how to read
// the live logs of an object that still exists.
import type { ResourceRef } from '../../kube/resources.ts';
import type { Outcome } from '../../rules/types.ts';
import { UserError } from '../errors.ts';
import { BUILTIN_CANDIDATES, chooseMatch, matchSpelling } from './kinds.ts';
import type { KindSpelling } from './refs.ts';
import { isoTime } from './time.ts';

export const ARCHIVE_GROUP = 'archive.kttl.dev';
export const ARCHIVE_VERSION = 'v1alpha1';

export const DELETED_OBJECTS: ResourceRef = {
  group: ARCHIVE_GROUP,
  version: ARCHIVE_VERSION,
  kind: 'DeletedObject',
  plural: 'deletedobjects',
  namespaced: true,
};

/** What was deleted, as the record names it. */
export interface DeletedObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  resourceVersion: string;
}

export interface ArchivedEventJson {
  involvedKind: string;
  involvedName: string;
  type: string;
  reason: string;
  message: string;
  count: number;
  firstTime: string | null;
  lastTime: string | null;
  source: string;
}

export interface ArchivedLogJson {
  pod: string;
  container: string;
  containerType: 'regular' | 'init' | 'ephemeral';
  truncated: boolean;
  bytes: number;
  error?: string;
}

/** A list item: the summary of one record. */
export interface DeletedObjectSummary {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
  };
  object: DeletedObjectRef;
  cluster: string;
  outcome: Outcome;
  finishedAt: string | null;
  deletedAt: string;
  ttl: { seconds: number; source: string; detail?: string };
  state: 'pending' | 'deleted';
}

/** The full record (GET of one deletedobject). */
export interface DeletedObject extends DeletedObjectSummary {
  finishTimeSource?: string;
  reason?: string;
  annotations?: Record<string, string>;
  ownerReferences?: unknown[];
  manifest?: Record<string, unknown>;
  events?: ArchivedEventJson[];
  logs?: ArchivedLogJson[];
  captureErrors?: string[];
}

export interface DeletedObjectList {
  apiVersion?: string;
  kind?: string;
  metadata?: { continue?: string; resourceVersion?: string };
  items?: DeletedObjectSummary[];
}

// --- kinds ---------------------------------------------------------------------------------------

/**
 * Which records a kind spelling selects. `kind` is the exact kind name for the API's `object.kind`
 * field selector when it is known (a built-in kind, or one the resolver found); without it the
 * records are matched here by `matches` (a custom kind whose CRD may be gone with its objects).
 */
export interface RecordKind {
  kind?: string;
  /** The API group when the spelling gives one or the kind is known ('' is the core group). */
  group?: string;
  /** As typed, for messages. */
  text: string;
  matches(o: DeletedObjectRef): boolean;
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** A known kind (built in, or resolved through discovery). */
export function knownRecordKind(text: string, kind: string, group: string): RecordKind {
  return {
    kind,
    group,
    text,
    matches: (o) => o.kind === kind && groupOf(o.apiVersion) === group,
  };
}

/** A built-in kind of the registry, offline; null when the spelling names none. Pure. */
export function builtinRecordKind(s: KindSpelling): RecordKind | null {
  const m = chooseMatch(s, matchSpelling(s, BUILTIN_CANDIDATES));
  return m ? knownRecordKind(s.text, m.candidate.kind, m.candidate.group) : null;
}

/** `widget` → the plural forms English gives it, as CRDs' plurals are made. */
function pluralsOf(kindLower: string): string[] {
  const forms = [kindLower, `${kindLower}s`, `${kindLower}es`];
  if (/[^aeiou]y$/.test(kindLower)) forms.push(`${kindLower.slice(0, -1)}ies`);
  return forms;
}

/**
 * A kind no resolver knows (its CRD may be gone): a record matches when its kind, lower-cased, or
 * a plural of it is the spelling's name, and its group the spelling's group when one is given. Pure.
 */
export function guessedRecordKind(s: KindSpelling): RecordKind {
  return {
    text: s.text,
    matches: (o) =>
      s.readings.some(
        (r) =>
          pluralsOf(o.kind.toLowerCase()).includes(r.name) &&
          (r.group === undefined || r.group === groupOf(o.apiVersion)),
      ),
  };
}

// --- the list's selectors ------------------------------------------------------------------------

export interface HistoryFilter {
  kind?: RecordKind;
  name?: string;
  outcome?: Outcome;
  /** Only records deleted at or after this instant. */
  deletedAfterMs?: number;
  labelSelector?: string;
}

/** The list request's query: field selectors of the API (docs/archive.md) and the label selector. */
export function listQuery(f: HistoryFilter): { fieldSelector?: string; labelSelector?: string } {
  const fields: string[] = [];
  if (f.kind?.kind) fields.push(`object.kind=${f.kind.kind}`);
  if (f.name) fields.push(`object.name=${f.name}`);
  if (f.outcome) fields.push(`outcome=${f.outcome}`);
  if (f.deletedAfterMs !== undefined) fields.push(`deletedAfter=${isoTime(f.deletedAfterMs)}`);
  const q: { fieldSelector?: string; labelSelector?: string } = {};
  if (fields.length > 0) q.fieldSelector = fields.join(',');
  if (f.labelSelector) q.labelSelector = f.labelSelector;
  return q;
}

function ms(t: string | null | undefined): number {
  if (!t) return Number.NEGATIVE_INFINITY;
  const v = Date.parse(t);
  return Number.isNaN(v) ? Number.NEGATIVE_INFINITY : v;
}

/** Newest deletion first; ties by namespace, then record name (the API's order, kept stable). */
export function newestFirst(a: DeletedObjectSummary, b: DeletedObjectSummary): number {
  return (
    ms(b.deletedAt) - ms(a.deletedAt) ||
    a.metadata.namespace.localeCompare(b.metadata.namespace) ||
    a.metadata.name.localeCompare(b.metadata.name)
  );
}

/** What the list answered, narrowed by what the field selector could not say (the kind's group). */
export function selectRecords(
  items: readonly DeletedObjectSummary[],
  f: HistoryFilter,
): DeletedObjectSummary[] {
  const seen = new Set<string>();
  return items
    .filter((i) => {
      // One record once, though two kinds' lists (`jobs,job`) both returned it.
      const key = `${i.metadata.namespace}/${i.metadata.name}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .filter((i) => (f.kind ? f.kind.matches(i.object) : true))
    .filter((i) => (f.name ? i.object.name === f.name : true))
    .sort(newestFirst);
}

// --- logs ----------------------------------------------------------------------------------------

/** `-c`/`--pod` as kubectl logs takes them: the only one when not given, else the user chooses. */
export function chooseLog(
  record: DeletedObject,
  want: { container?: string; pod?: string },
  what: string,
): ArchivedLogJson {
  const logs = record.logs ?? [];
  if (logs.length === 0)
    throw new UserError(
      `${what} has no archived logs${record.captureErrors?.length ? ` (${record.captureErrors[0]})` : ' (it had no pods, or logs were not archived: --archive-logs)'}`,
    );
  const pods = [...new Set(logs.map((l) => l.pod))];
  let pod = want.pod;
  if (pod === undefined) {
    if (pods.length > 1) {
      const ofContainer = want.container
        ? [...new Set(logs.filter((l) => l.container === want.container).map((l) => l.pod))]
        : [];
      if (ofContainer.length === 1) pod = ofContainer[0]!;
      else throw new UserError(`${what} had ${pods.length} pods: choose one with --pod (${pods.join(', ')})`);
    } else pod = pods[0]!;
  } else if (!pods.includes(pod)) {
    throw new UserError(
      `${what} has no archived logs of pod ${JSON.stringify(pod)} (pods: ${pods.join(', ')})`,
    );
  }
  const inPod = logs.filter((l) => l.pod === pod);
  if (want.container === undefined) {
    if (inPod.length > 1)
      throw new UserError(
        `pod ${pod} of ${what} had ${inPod.length} containers: choose one with -c (${inPod.map((l) => l.container).join(', ')})`,
      );
    return inPod[0]!;
  }
  const hit = inPod.find((l) => l.container === want.container);
  if (!hit)
    throw new UserError(
      `pod ${pod} of ${what} has no archived container ${JSON.stringify(want.container)} (containers: ${inPod.map((l) => l.container).join(', ')})`,
    );
  return hit;
}

/** How to read the live logs of an object that still exists: kubectl logs for what it reads. */
export function liveLogsCommand(
  kind: { kind: string; group: string },
  name: string,
  namespace: string,
  container?: string,
): string {
  const c = container ? ` -c ${container}` : '';
  if (kind.group === '' && kind.kind === 'Pod') return `kubectl logs pod/${name} -n ${namespace}${c}`;
  if (kind.group === 'batch' && kind.kind === 'Job') return `kubectl logs job/${name} -n ${namespace}${c}`;
  // kubectl logs reads Pods and the built-in controllers only: list the object's pods instead.
  return `kubectl get pods -n ${namespace}, then kubectl logs POD -n ${namespace}${c}`;
}
