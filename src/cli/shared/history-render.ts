// `kttl history` output from the archive API's JSON (src/cli/shared/history-model.ts): the list as a
// kubectl-style table, one record as `kttl explain` lays an object out. Pure: the caller gives the
// time (the API server's clock) and the colours.
import pc from 'picocolors';
import { formatDuration } from '../../rules/duration.ts';
import type { ArchivedEventJson, DeletedObject, DeletedObjectSummary } from './history-model.ts';
import { type Colors, table } from './output.ts';
import { humanDuration, isoTime } from './time.ts';

const PLAIN: Colors = pc.createColors(false);

function ageMs(t: string | null | undefined, nowMs: number): number | null {
  if (!t) return null;
  const v = Date.parse(t);
  return Number.isNaN(v) ? null : nowMs - v;
}

/** kubectl's AGE of a timestamp, `-` when there is none. */
export function ageCell(t: string | null | undefined, nowMs: number): string {
  const a = ageMs(t, nowMs);
  return a === null ? '-' : humanDuration(a);
}

/** `Succeeded` / `Failed`, as `kttl list` writes a status. */
export function outcomeText(outcome: string): string {
  return outcome === 'succeeded' ? 'Succeeded' : outcome === 'failed' ? 'Failed' : outcome;
}

function ttlText(seconds: number | undefined): string {
  return typeof seconds === 'number' && Number.isInteger(seconds) && seconds >= 0
    ? formatDuration(seconds)
    : '-';
}

export interface HistoryTableOptions {
  /** undefined: all namespaces (the NAMESPACE column is shown). */
  namespace: string | undefined;
  wide: boolean;
  nowMs: number;
  colors?: Colors;
}

export const HISTORY_COLUMNS = ['NAME', 'KIND', 'OUTCOME', 'FINISHED', 'DELETED', 'TTL SOURCE'] as const;
export const HISTORY_WIDE_COLUMNS = ['TTL', 'STATE', 'CLUSTER', 'UID', 'RECORD'] as const;

/** The table's header and cells, in the order given (the caller sorts: newest first). */
export function historyRows(
  items: readonly DeletedObjectSummary[],
  o: HistoryTableOptions,
): { head: string[]; rows: string[][] } {
  const c = o.colors ?? PLAIN;
  const all = o.namespace === undefined;
  const head = [...(all ? ['NAMESPACE'] : []), ...HISTORY_COLUMNS, ...(o.wide ? HISTORY_WIDE_COLUMNS : [])];
  const rows = items.map((i) => {
    const outcome = outcomeText(i.outcome);
    return [
      ...(all ? [i.metadata.namespace] : []),
      i.object.name,
      i.object.kind,
      i.outcome === 'succeeded' ? c.green(outcome) : i.outcome === 'failed' ? c.red(outcome) : outcome,
      ageCell(i.finishedAt, o.nowMs),
      ageCell(i.deletedAt, o.nowMs),
      i.ttl?.source ?? '-',
      ...(o.wide ? [ttlText(i.ttl?.seconds), i.state, i.cluster || '-', i.object.uid, i.metadata.name] : []),
    ];
  });
  return { head, rows };
}

export function historyTable(items: readonly DeletedObjectSummary[], o: HistoryTableOptions): string {
  const { head, rows } = historyRows(items, o);
  return table(head, rows);
}

/** The `-o json|yaml` document of a list: the API's list kind with every page's items. */
export function historyListDoc(items: readonly DeletedObjectSummary[]) {
  return {
    apiVersion: 'archive.kttl.dev/v1alpha1',
    kind: 'DeletedObjectList',
    metadata: {},
    items,
  };
}

const FINISH_SOURCES: Record<string, string> = {
  condition: 'from the lastTransitionTime of its finish condition',
  containerFinishedAt: "from its containers' finish times",
  field: 'from a status field of its kind',
  firstSeen: 'no finish time on the object: counted from when kttl first saw it finished',
};

/** RFC 3339 to the second (as the API server writes times) and the age: `2026-…Z (3m ago)`. */
function when(t: string | null | undefined, nowMs: number): string {
  if (!t) return '-';
  const a = ageMs(t, nowMs);
  return a === null ? t : `${isoTime(nowMs - a)} (${humanDuration(a)} ago)`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function pairs(m: Record<string, string> | undefined): string {
  const e = Object.entries(m ?? {});
  return e.length === 0 ? '<none>' : e.map(([k, v]) => `${k}=${v}`).join(', ');
}

function eventTime(e: ArchivedEventJson): string | null {
  return e.lastTime ?? e.firstTime;
}

function bytesText(n: number | undefined): string {
  if (typeof n !== 'number') return '-';
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}Ki`;
  return `${(n / 1024 / 1024).toFixed(1)}Mi`;
}

export interface RecordTextOptions {
  nowMs: number;
  /** `job/train-42`, as the user wrote the kind. */
  refText: string;
  colors?: Colors;
}

/** One record for people: identity, outcome, finish, TTL and source, deletion, logs, Events. */
export function recordText(r: DeletedObject, o: RecordTextOptions): string {
  const c = o.colors ?? PLAIN;
  const ob = r.object;
  const ns = r.metadata.namespace;
  const lines: string[] = [];
  lines.push(`${c.bold(`${ob.kind} ${ns}/${ob.name}`)}  (${o.refText}, uid ${ob.uid}, deleted)`);
  lines.push(
    `Record:     ${r.metadata.name} (cluster ${r.cluster || '-'}, ${ob.apiVersion}, resourceVersion ${ob.resourceVersion})`,
  );
  const outcome = outcomeText(r.outcome);
  lines.push(
    `Outcome:    ${r.outcome === 'succeeded' ? c.green(outcome) : r.outcome === 'failed' ? c.red(outcome) : outcome}`,
  );
  const fsrc = r.finishTimeSource ? (FINISH_SOURCES[r.finishTimeSource] ?? r.finishTimeSource) : '';
  lines.push(`Finished:   ${when(r.finishedAt, o.nowMs)}${fsrc ? `, ${fsrc}` : ''}`);
  lines.push(
    `TTL:        ${ttlText(r.ttl?.seconds)} from ${r.ttl?.source ?? '-'}${r.ttl?.detail ? ` (${r.ttl.detail})` : ''}`,
  );
  lines.push(
    `Deleted:    ${when(r.deletedAt, o.nowMs)}${r.state === 'pending' ? ' (pending: recorded before the DELETE, not yet confirmed)' : ''}`,
  );
  if (r.reason) lines.push(`Reason:     ${r.reason}`);
  lines.push(`Labels:     ${pairs(r.metadata.labels)}`);
  const owners = (r.ownerReferences ?? []) as Array<{ kind?: string; name?: string }>;
  if (owners.length > 0)
    lines.push(`Owners:     ${owners.map((x) => `${x.kind ?? '?'}/${x.name ?? '?'}`).join(', ')}`);
  lines.push('');
  const logs = r.logs ?? [];
  if (logs.length === 0) {
    lines.push('Logs:       none archived');
  } else {
    lines.push(`Logs (kttl logs ${o.refText} -n ${ns} [-c CONTAINER] [--pod POD]):`);
    lines.push(
      indent(
        table(
          ['POD', 'CONTAINER', 'TYPE', 'SIZE', 'NOTE'],
          logs.map((l) => [
            l.pod,
            l.container,
            l.containerType,
            bytesText(l.bytes),
            l.error ? c.yellow(l.error) : l.truncated ? 'truncated: the last lines only' : '-',
          ]),
        ),
      ),
    );
  }
  lines.push('');
  const events = [...(r.events ?? [])].sort(
    (a, b) => (Date.parse(eventTime(a) ?? '') || 0) - (Date.parse(eventTime(b) ?? '') || 0),
  );
  if (events.length === 0) {
    lines.push('Events:     none archived');
  } else {
    lines.push('Events:');
    lines.push(
      indent(
        table(
          ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'],
          events.map((e) => [
            ageCell(eventTime(e), o.nowMs),
            e.type === 'Warning' ? c.yellow(e.type) : e.type,
            e.reason,
            `${e.involvedKind.toLowerCase()}/${e.involvedName}`,
            `${e.message.replace(/\s*\n\s*/g, ' ')}${e.count > 1 ? ` (x${e.count})` : ''}`,
          ]),
        ),
      ),
    );
  }
  for (const [i, e] of (r.captureErrors ?? []).entries())
    lines.push(`${i === 0 ? '\nNot captured: ' : '              '}${e}`);
  return lines.join('\n');
}
