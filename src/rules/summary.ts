// Builds the lean ObjectSummary the watch cache keeps from a raw API object. Everything is copied
// (new objects, new arrays, flattened strings), so nothing of the raw object stays reachable from
// the summary and the raw object can be garbage-collected as soon as the ingest drops it.

import { MAX_TTL_SECONDS } from './duration.ts';
import { groupOf, toEpochMs } from './finish.ts';
import { type Finish, type ObjectSummary, type OwnerRef, RELEVANT_ANNOTATIONS } from './types.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: unknown, key: string): unknown {
  return isObj(o) && Object.hasOwn(o, key) ? o[key] : undefined;
}

/**
 * A copy of a string that shares no memory with the original. V8 may represent a substring as a
 * slice of its parent (keeping the whole parent alive); concatenating then slicing forces a new
 * flat string. Short strings are copied by V8 anyway.
 */
function copy(s: string): string {
  return s.length === 0 ? '' : ` ${s}`.slice(1);
}

function str(v: unknown): string {
  return typeof v === 'string' ? copy(v) : '';
}

function stringMap(v: unknown, keep?: readonly string[]): Record<string, string> {
  if (!isObj(v)) return {};
  const entries: Array<[string, string]> = [];
  for (const key of keep ?? Object.keys(v)) {
    const value = own(v, key);
    if (typeof value === 'string') entries.push([copy(key), copy(value)]);
  }
  // fromEntries defines own properties, so even a key named "__proto__" stays a plain key.
  return Object.fromEntries(entries);
}

function owners(v: unknown): OwnerRef[] {
  if (!Array.isArray(v)) return [];
  const out: OwnerRef[] = [];
  for (const o of v) {
    const kind = own(o, 'kind');
    const name = own(o, 'name');
    const uid = own(o, 'uid');
    if (typeof kind !== 'string' || typeof name !== 'string' || typeof uid !== 'string') continue;
    out.push({
      apiVersion: str(own(o, 'apiVersion')),
      kind: copy(kind),
      name: copy(name),
      uid: copy(uid),
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

/**
 * The summary of a raw object (plain JSON, timestamps as strings or Dates). `type` supplies
 * apiVersion/kind for list items, which the API server sends without them; the object's own
 * values win when present. A missing or unparsable creationTimestamp becomes 0.
 */
export function toSummary(
  raw: unknown,
  finish: Finish | null,
  type?: { apiVersion: string; kind: string },
): ObjectSummary {
  const meta = own(raw, 'metadata');
  const rawApiVersion = own(raw, 'apiVersion');
  const rawKind = own(raw, 'kind');
  const apiVersion =
    typeof rawApiVersion === 'string' && rawApiVersion !== '' ? rawApiVersion : (type?.apiVersion ?? '');
  const kind = typeof rawKind === 'string' && rawKind !== '' ? rawKind : (type?.kind ?? '');
  const finalizers = own(meta, 'finalizers');
  return {
    apiVersion: copy(apiVersion),
    kind: copy(kind),
    namespace: str(own(meta, 'namespace')),
    name: str(own(meta, 'name')),
    uid: str(own(meta, 'uid')),
    resourceVersion: str(own(meta, 'resourceVersion')),
    creationMs: toEpochMs(own(meta, 'creationTimestamp')) ?? 0,
    labels: stringMap(own(meta, 'labels')),
    annotations: stringMap(own(meta, 'annotations'), RELEVANT_ANNOTATIONS),
    deletionMs: toEpochMs(own(meta, 'deletionTimestamp')),
    finalizers: Array.isArray(finalizers)
      ? finalizers.filter((f): f is string => typeof f === 'string').map(copy)
      : [],
    owners: owners(own(meta, 'ownerReferences')),
    nativeTtlSeconds: nativeTtl(raw, apiVersion, kind),
    finish:
      finish === null
        ? null
        : {
            outcome: finish.outcome,
            atMs: finish.atMs,
            timeSource: finish.timeSource,
            reason: copy(finish.reason),
          },
  };
}
