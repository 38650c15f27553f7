// The list's `labelSelector` and `fieldSelector` query parameters, as the API server parses them:
// what the store can answer goes into its ListQuery, the rest is a filter on each summary.
// Label selectors match with src/policy/selectors.ts (the API server's semantics).
import {
  type LabelSelector,
  type LabelSelectorRequirement,
  labelKeyError,
  labelValueError,
  matchesLabelSelector,
} from '../../policy/selectors.ts';
import type { ListQuery, RecordSummary } from '../types.ts';
import { deletedObjectName } from './resources.ts';

export type SummaryFilter = (s: RecordSummary) => boolean;

export interface Selection {
  /** Conditions the store answers. */
  query: Omit<ListQuery, 'limit' | 'continue'>;
  /** Conditions checked on each summary; undefined: none. */
  filter?: SummaryFilter;
}

/** Splits at commas outside parentheses (`a in (x,y),b` is two requirements). */
function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function checkKey(key: string): void {
  const err = labelKeyError(key);
  if (err) throw new SelectorError(err);
}

function checkValue(v: string): void {
  const err = labelValueError(v);
  if (err) throw new SelectorError(err);
}

export class SelectorError extends Error {}

/** A `labelSelector` string (`app=x,tier!=db,env in (a,b),!legacy`) as a LabelSelector. */
export function parseLabelSelector(s: string): LabelSelector {
  const exprs: LabelSelectorRequirement[] = [];
  for (const part of splitTop(s)) {
    let m = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (m) {
      const key = m[1]!;
      checkKey(key);
      const values = m[3]!
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      if (values.length === 0)
        throw new SelectorError(`invalid label selector ${JSON.stringify(part)}: no values`);
      for (const v of values) checkValue(v);
      exprs.push({ key, operator: m[2] === 'in' ? 'In' : 'NotIn', values });
      continue;
    }
    m = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(part);
    if (m) {
      const key = m[1]!;
      const value = m[3]!;
      checkKey(key);
      checkValue(value);
      exprs.push({ key, operator: m[2] === '!=' ? 'NotIn' : 'In', values: [value] });
      continue;
    }
    m = /^(!?)\s*([^\s!=(),]+)$/.exec(part);
    if (m) {
      checkKey(m[2]!);
      exprs.push({ key: m[2]!, operator: m[1] ? 'DoesNotExist' : 'Exists' });
      continue;
    }
    throw new SelectorError(`unable to parse requirement: ${JSON.stringify(part)}`);
  }
  return { matchExpressions: exprs };
}

export const FIELD_SELECTOR_KEYS = [
  'metadata.name',
  'metadata.namespace',
  'object.kind',
  'object.name',
  'object.uid',
  'outcome',
  'deletedAfter',
  'deletedBefore',
] as const;

function timeMs(key: string, v: string): number {
  const ms = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(v) || !Number.isFinite(ms)) {
    throw new SelectorError(`field selector ${key}: ${JSON.stringify(v)} is not an RFC 3339 time`);
  }
  return ms;
}

/** Field selector keys the store answers, and the ListQuery field each fills. */
const STORE_COLUMN: Record<string, 'namespace' | 'kind' | 'name' | 'uid' | 'outcome'> = {
  'metadata.namespace': 'namespace',
  'object.kind': 'kind',
  'object.name': 'name',
  'object.uid': 'uid',
  outcome: 'outcome',
};

const SUMMARY_FIELD: Record<string, (s: RecordSummary) => string> = {
  'metadata.name': (s) => deletedObjectName(s.kind, s.name, s.uid),
  'metadata.namespace': (s) => s.namespace,
  'object.kind': (s) => s.kind,
  'object.name': (s) => s.name,
  'object.uid': (s) => s.uid,
  outcome: (s) => s.outcome,
};

/**
 * The selection of a list request: its namespace (from the path), labelSelector and fieldSelector.
 * Throws SelectorError (a 400) for what the API server would refuse.
 */
export function selection(o: {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}): Selection {
  const query: Selection['query'] = {};
  if (o.namespace !== undefined) query.namespace = o.namespace;
  const filters: SummaryFilter[] = [];
  if (o.labelSelector?.trim()) {
    const sel = parseLabelSelector(o.labelSelector);
    filters.push((s) => matchesLabelSelector(sel, s.labels));
  }
  for (const part of o.fieldSelector ? splitTop(o.fieldSelector) : []) {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new SelectorError(`invalid field selector: ${JSON.stringify(part)}`);
    const [, key, op, raw] = m as unknown as [string, string, string, string];
    const value = raw.trim();
    if (!(FIELD_SELECTOR_KEYS as readonly string[]).includes(key)) {
      throw new SelectorError(
        `field label not supported: ${key} (supported: ${FIELD_SELECTOR_KEYS.join(', ')})`,
      );
    }
    if (key === 'deletedAfter' || key === 'deletedBefore') {
      if (op === '!=') throw new SelectorError(`field selector ${key} supports only =`);
      const ms = timeMs(key, value);
      if (key === 'deletedAfter') query.sinceMs = Math.max(query.sinceMs ?? -Infinity, ms);
      else query.untilMs = Math.min(query.untilMs ?? Infinity, ms);
      continue;
    }
    if (key === 'outcome' && value !== 'succeeded' && value !== 'failed') {
      if (op !== '!=')
        throw new SelectorError(
          `field selector outcome: ${JSON.stringify(value)} is not succeeded or failed`,
        );
    }
    const get = SUMMARY_FIELD[key]!;
    if (op === '!=') {
      filters.push((s) => get(s) !== value);
      continue;
    }
    const column = STORE_COLUMN[key];
    if (!column) {
      filters.push((s) => get(s) === value);
    } else if (query[column] !== undefined && query[column] !== value) {
      // Two values for one field (or one that contradicts the path's namespace): nothing matches.
      filters.push(() => false);
    } else {
      (query as Record<string, string>)[column] = value;
    }
  }
  const filter = filters.length ? (s: RecordSummary) => filters.every((f) => f(s)) : undefined;
  return { query, ...(filter ? { filter } : {}) };
}
