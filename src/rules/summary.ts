// Builds the lean ObjectSummary the watch cache keeps from a raw API object. Everything is copied
// (new objects, new arrays, flattened strings), so nothing of the raw object stays reachable from
// the summary and the raw object can be garbage-collected as soon as the ingest drops it.

import { MAX_TTL_SECONDS } from './duration.ts';
import { type FinishRule, finishOf, groupOf, toEpochMs } from './finish.ts';
import {
  type Finish,
  MAX_ANNOTATION_BYTES,
  type ObjectSummary,
  type OwnerRef,
  RELEVANT_ANNOTATIONS,
} from './types.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: unknown, key: string): unknown {
  return isObj(o) && Object.hasOwn(o, key) ? o[key] : undefined;
}

// The strings we keep come from JSON.parse of one object or event, which makes each value a fresh,
// flat string that shares nothing with the input text: keeping it keeps nothing else alive. (An
// explicit copy by concatenate-and-slice was measured to cost more than it saved: for 13+
// characters V8 makes a new parent AND a 32-byte slice of it; see docs/benchmarks.md.)

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * Shares equal strings between summaries (namespaces, kinds, label keys and values, finalizers
 * repeat across 100,000 objects). The caller owns the pool, so it is never a hidden global.
 */
export class StringPool {
  readonly #pool = new Map<string, string>();
  readonly #max: number;

  constructor(max = 200_000) {
    this.#max = max;
  }

  intern(s: string): string {
    const hit = this.#pool.get(s);
    if (hit !== undefined) return hit;
    // Bounded: a pathological label value per object must not grow the pool forever.
    if (this.#pool.size < this.#max) this.#pool.set(s, s);
    return s;
  }

  get size(): number {
    return this.#pool.size;
  }
}

const EMPTY_MAP: Readonly<Record<string, string>> = Object.freeze({});
const EMPTY_LIST: readonly never[] = Object.freeze([]);

function stringMap(
  v: unknown,
  intern: (s: string) => string,
  internValue: (s: string) => string = intern,
): Readonly<Record<string, string>> {
  if (!isObj(v)) return EMPTY_MAP;
  const entries: Array<[string, string]> = [];
  for (const key of Object.keys(v)) {
    const value = own(v, key);
    if (typeof value === 'string') entries.push([intern(key), internValue(value)]);
  }
  if (entries.length === 0) return EMPTY_MAP;
  // fromEntries defines own properties, so even a key named "__proto__" stays a plain key.
  return Object.fromEntries(entries);
}

/** How many characters of an over-long annotation value the summary keeps, for messages. */
const SHOWN_CHARS = 64;

/**
 * The UTF-8 size of an annotation value over MAX_ANNOTATION_BYTES; null for one within it. The one
 * check of the cap: ingest here, resolveTtl (src/rules/ttl.ts) and the webhook (src/webhook/mutate.ts).
 */
export function annotationOverLimit(s: string): number | null {
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: a short value needs no count.
  if (s.length * 3 <= MAX_ANNOTATION_BYTES) return null;
  const bytes = Buffer.byteLength(s, 'utf8');
  return bytes > MAX_ANNOTATION_BYTES ? bytes : null;
}

/**
 * The first characters of a value and its size, as a new flat string: a slice would keep the whole
 * value alive (V8 slices of 13+ characters point into their parent), which is what the cap is for.
 */
function cutValue(value: string, bytes: number): string {
  const head: string[] = [];
  for (const ch of value) {
    if (head.length === SHOWN_CHARS) break;
    head.push(ch);
  }
  return `${head.join('')}… (${bytes} bytes)`;
}

/**
 * The relevant annotations, each value at most MAX_ANNOTATION_BYTES: a longer one is replaced by
 * its cut form and listed in `oversized`, which makes resolveTtl (src/rules/ttl.ts) judge it invalid.
 */
function relevantAnnotations(
  v: unknown,
  intern: (s: string) => string,
  groupKeys?: ReadonlySet<string>,
): { annotations: Readonly<Record<string, string>>; oversized: Record<string, number> | null } {
  if (!isObj(v)) return { annotations: EMPTY_MAP, oversized: null };
  const entries: Array<[string, string]> = [];
  let oversized: Record<string, number> | null = null;
  for (const key of RELEVANT_ANNOTATIONS) {
    const value = own(v, key);
    if (typeof value !== 'string') continue;
    const bytes = annotationOverLimit(value);
    if (bytes === null) {
      // Short values repeat ("1h", "hook-succeeded"); a long one is likely unique and must not
      // sit in the pool after its object is gone.
      entries.push([key, value.length <= SHOWN_CHARS ? intern(value) : value]);
    } else {
      oversized ??= {};
      oversized[key] = bytes;
      entries.push([key, cutValue(value, bytes)]);
    }
  }
  // Annotations a policy groups by (`groupBy: annotation:<key>`, src/rules/history.ts): kept as
  // values, never TTL sources; one over the size cap is left out (no group, so no limit).
  for (const key of groupKeys ?? []) {
    if (RELEVANT_ANNOTATIONS.includes(key)) continue;
    const value = own(v, key);
    if (typeof value === 'string' && annotationOverLimit(value) === null)
      entries.push([intern(key), intern(value)]);
  }
  return { annotations: entries.length === 0 ? EMPTY_MAP : Object.fromEntries(entries), oversized };
}

function owners(v: unknown, intern: (s: string) => string): readonly OwnerRef[] {
  if (!Array.isArray(v) || v.length === 0) return EMPTY_LIST;
  const out: OwnerRef[] = [];
  for (const o of v) {
    const kind = own(o, 'kind');
    const name = own(o, 'name');
    const uid = own(o, 'uid');
    if (typeof kind !== 'string' || typeof name !== 'string' || typeof uid !== 'string') continue;
    out.push({
      apiVersion: intern(str(own(o, 'apiVersion'))),
      kind: intern(kind),
      name,
      uid,
      controller: own(o, 'controller') === true,
    });
  }
  return out;
}

function nativeTtl(raw: unknown, apiVersion: string, kind: string): number | null {
  if (kind !== 'Job' || groupOf(apiVersion) !== 'batch') return null;
  const v = own(own(raw, 'spec'), 'ttlSecondsAfterFinished');
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_TTL_SECONDS ? v : null;
}

/** A set but unusable native TTL, as JSON (cut); undefined when unset or usable. */
function nativeTtlInvalid(raw: unknown, apiVersion: string, kind: string): string | undefined {
  if (kind !== 'Job' || groupOf(apiVersion) !== 'batch') return undefined;
  const v = own(own(raw, 'spec'), 'ttlSecondsAfterFinished');
  if (v === undefined || v === null || nativeTtl(raw, apiVersion, kind) !== null) return undefined;
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text;
}

/**
 * The summary of a raw object (plain JSON, timestamps as strings or Dates). `type` supplies
 * apiVersion/kind for list items, which the API server sends without them; the object's own
 * values win when present. A missing or unparsable creationTimestamp becomes 0.
 */
export function toSummary(
  raw: unknown,
  finish: Finish | null,
  type?: { apiVersion: string; kind: string },
  pool?: StringPool,
  /** Annotation keys policies group by (kept beside kttl's own). */
  groupKeys?: ReadonlySet<string>,
): ObjectSummary {
  const intern = pool ? (x: string) => pool.intern(x) : (x: string) => x;
  const meta = own(raw, 'metadata');
  const rawApiVersion = own(raw, 'apiVersion');
  const rawKind = own(raw, 'kind');
  const apiVersion =
    typeof rawApiVersion === 'string' && rawApiVersion !== '' ? rawApiVersion : (type?.apiVersion ?? '');
  const kind = typeof rawKind === 'string' && rawKind !== '' ? rawKind : (type?.kind ?? '');
  const finalizers = own(meta, 'finalizers');
  const name = str(own(meta, 'name'));
  const uid = str(own(meta, 'uid'));
  // The API server labels every Job with its own name and uid (job-name, controller-uid and their
  // batch.kubernetes.io/ forms): share those strings instead of holding (and interning) copies.
  const label = (x: string) => (x === name ? name : x === uid ? uid : intern(x));
  const { annotations, oversized } = relevantAnnotations(own(meta, 'annotations'), intern, groupKeys);
  const summary: ObjectSummary = {
    apiVersion: intern(apiVersion),
    kind: intern(kind),
    namespace: typeof own(meta, 'namespace') === 'string' ? intern(own(meta, 'namespace') as string) : '',
    name,
    uid,
    resourceVersion: str(own(meta, 'resourceVersion')),
    creationMs: toEpochMs(own(meta, 'creationTimestamp')) ?? 0,
    labels: stringMap(own(meta, 'labels'), intern, label),
    annotations,
    deletionMs: toEpochMs(own(meta, 'deletionTimestamp')),
    finalizers:
      Array.isArray(finalizers) && finalizers.length > 0
        ? finalizers.filter((f): f is string => typeof f === 'string').map(intern)
        : EMPTY_LIST,
    owners: owners(own(meta, 'ownerReferences'), intern),
    nativeTtlSeconds: nativeTtl(raw, apiVersion, kind),
    finish:
      finish === null
        ? null
        : {
            outcome: finish.outcome,
            atMs: finish.atMs,
            timeSource: finish.timeSource,
            reason: intern(finish.reason),
          },
  };
  // Only on the rare object that has one: the common summary keeps its shape and size.
  const badField = nativeTtlInvalid(raw, apiVersion, kind);
  if (oversized === null && badField === undefined) return summary;
  return {
    ...summary,
    ...(oversized !== null ? { oversized } : {}),
    ...(badField !== undefined ? { nativeTtlInvalid: badField } : {}),
  };
}

/**
 * The summary the rules judge, from a raw object: its built-in (or fixed Job/Pod) finish, and for a
 * custom kind its finish under each finish rule that policies give the kind (which one counts is
 * chosen per object: src/policy/match.ts chooseFinishRule). The controller's cache and the CLI
 * build summaries with this one function.
 */
export function summarizeObject(
  raw: unknown,
  type: { apiVersion: string; kind: string },
  finishRules: ReadonlyArray<{ key: string; rule: FinishRule }> = [],
  pool?: StringPool,
  /** Annotation keys policies group by (`groupBy: annotation:<key>`). */
  groupKeys?: ReadonlySet<string>,
): ObjectSummary {
  const summary = toSummary(raw, finishOf(raw, null, type), type, pool, groupKeys);
  if (finishRules.length === 0) return summary;
  const intern = pool ? (x: string) => pool.intern(x) : (x: string) => x;
  const byRule: Record<string, Finish | null> = Object.create(null);
  for (const { key, rule } of finishRules) {
    const f = finishOf(raw, rule, type);
    byRule[intern(key)] = f && { ...f, reason: intern(f.reason) };
  }
  summary.finishes = byRule;
  return summary;
}
