// Archiving before deleting (docs/archive.md): read the object as it is now, its pods' last logs and
// the Events, and commit a `pending` record; the controller sends the DELETE only after that (with
// `required`), then marks the record `deleted`. All reads go through the archive's own client and
// budget (--archive-qps/--archive-burst), so objects that need no record keep one request per
// deletion at the main budget.
import type { Logger } from 'pino';
import { isApiError, summarizeError } from '../kube/errors.ts';
import type { KubeHttp } from '../kube/http.ts';
import type { RawObject } from '../kube/objects.ts';
import { apiVersionOf, objectPath, type ResourceRef } from '../kube/resources.ts';
import type { Finish, ObjectSummary, TtlDecision } from '../rules/types.ts';
import type { ArchiveFailure, ArchiveMetrics } from './metrics.ts';
import { buildRecord } from './record.ts';
import type { ArchivedEvent, ArchiveStore, ContainerLog, RecordKey } from './types.ts';

/** What the collector (src/archive/collector.ts) gives for one object. */
export interface Captured {
  logs: ContainerLog[];
  events: ArchivedEvent[];
  errors: string[];
}

export type Collect = (target: {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  /** The object as just read (a Pod's containers need no second GET). */
  object?: Record<string, unknown>;
  podLabel?: string;
}) => Promise<Captured>;

export interface ArchiverOptions {
  store: ArchiveStore;
  /** The archive's own client (own QPS budget). */
  http: KubeHttp;
  collect: Collect;
  clusterName: string;
  logger: Logger;
  metrics: ArchiveMetrics;
  /** Epoch ms on the API server's clock. */
  serverNow: () => number;
}

export interface ArchiveTarget {
  resource: ResourceRef;
  /** The object as judged (its uid and resourceVersion are the DELETE's preconditions). */
  judged: ObjectSummary;
  finish: Finish;
  decision: Extract<TtlDecision, { action: 'ttl' }>;
  reason: string;
  /** A label whose value is the object's name on its pods (src/rules/kinds.ts podLabel). */
  podLabel?: string;
}

export type PrepareResult =
  /** Committed: delete now, then call deleted() or notDeleted(). */
  | { state: 'committed'; key: RecordKey }
  /** The object is not the one judged any more (changed, replaced or gone): judge it again. */
  | { state: 'changed' }
  /** Nothing could be committed (or only part was captured), and why. */
  | { state: 'failed'; reason: ArchiveFailure; message: string };

/** At most this many records whose `deleted` mark waits for the store to be back. */
const MAX_UNMARKED = 100_000;

export class Archiver {
  readonly #o: ArchiverOptions;
  /** Deleted objects whose record could not be marked yet (store down): uid|rv → key and time. */
  readonly #unmarked = new Map<string, { key: RecordKey; at: string }>();

  constructor(o: ArchiverOptions) {
    this.#o = o;
  }

  /**
   * Captures and commits the record. With `complete` (archive: required) a capture error (a log or
   * Event read that failed) fails it too: the deletion waits for a complete record.
   */
  async prepare(t: ArchiveTarget, complete: boolean): Promise<PrepareResult> {
    const o = this.#o;
    const started = performance.now();
    const fail = (reason: ArchiveFailure, message: string): PrepareResult => {
      o.metrics.failures.inc({ reason });
      return { state: 'failed', reason, message };
    };
    const j = t.judged;
    let raw: RawObject;
    try {
      raw = await o.http.request<RawObject>('get', 'GET', objectPath(t.resource, j.namespace, j.name), {
        timeoutMs: 30_000,
      });
    } catch (err) {
      if (isApiError(err, 404)) return { state: 'changed' };
      return fail('read', `reading the object: ${summarizeError(err).message ?? String(err)}`);
    }
    const meta = raw.metadata ?? {};
    if (meta.uid !== j.uid || meta.resourceVersion !== j.resourceVersion) return { state: 'changed' };
    const apiVersion = apiVersionOf(t.resource);
    const captured = await o.collect({
      apiVersion,
      kind: t.resource.kind,
      namespace: j.namespace,
      name: j.name,
      uid: j.uid,
      object: raw as Record<string, unknown>,
      ...(t.podLabel ? { podLabel: t.podLabel } : {}),
    });
    if (complete && captured.errors.length > 0) {
      const logsFailed = captured.errors.some((e) => e.startsWith('log') || e.startsWith('pods'));
      return fail(logsFailed ? 'logs' : 'events', captured.errors.slice(0, 3).join('; '));
    }
    const record = buildRecord({
      cluster: o.clusterName,
      raw: raw as Record<string, unknown>,
      apiVersion,
      kind: t.resource.kind,
      finish: t.finish,
      decision: t.decision,
      deletedAtMs: o.serverNow(),
      reason: t.reason,
      logs: captured.logs,
      events: captured.events,
      captureErrors: captured.errors,
    });
    try {
      await o.store.putPending(record);
    } catch (err) {
      return fail('store', `writing the record: ${err instanceof Error ? err.message : String(err)}`);
    }
    o.metrics.records.inc();
    o.metrics.writeSeconds.observe((performance.now() - started) / 1000);
    // The store answers again: marks that failed while it was away can go now.
    if (this.#unmarked.size > 0) void this.#flushUnmarked();
    return { state: 'committed', key: { uid: j.uid, resourceVersion: j.resourceVersion } };
  }

  /** The DELETE was accepted, or the object was already gone. A failure here leaves the record
   *  pending, which the start-up reconciliation settles. */
  async deleted(key: RecordKey): Promise<void> {
    const at = new Date(this.#o.serverNow()).toISOString();
    try {
      await this.#o.store.markDeleted(key, at);
    } catch (err) {
      this.#o.logger.warn(
        { err: summarizeError(err), ...key },
        'archive: could not mark the record deleted; will again when the store answers',
      );
      if (this.#unmarked.size < MAX_UNMARKED)
        this.#unmarked.set(`${key.uid}|${key.resourceVersion}`, { key, at });
    }
  }

  async #flushUnmarked(): Promise<void> {
    for (const [k, { key, at }] of [...this.#unmarked]) {
      try {
        await this.#o.store.markDeleted(key, at);
        this.#unmarked.delete(k);
      } catch {
        return; // still away: the next success or retention pass tries again
      }
    }
  }

  /** The DELETE was refused (the object changed): this record describes no deletion. */
  async notDeleted(key: RecordKey): Promise<void> {
    try {
      await this.#o.store.drop(key);
    } catch (err) {
      this.#o.logger.warn({ err: summarizeError(err), ...key }, 'archive: could not drop a record');
    }
  }

  /**
   * Records left pending by a crash between commit and DELETE: the object is gone (or replaced) →
   * deleted; it still exists → dropped (if it is still due, its deletion writes the record again).
   * `lookup` answers whether the object with that uid still exists. Only records written before
   * `writtenBeforeMs` (this process's start, server clock) are looked at.
   */
  async reconcile(
    writtenBeforeMs: number,
    lookup: (r: {
      apiVersion: string;
      kind: string;
      namespace: string;
      name: string;
      uid: string;
    }) => Promise<boolean | undefined>,
  ): Promise<{ deleted: number; dropped: number; unknown: number }> {
    const out = { deleted: 0, dropped: 0, unknown: 0 };
    for (const r of await this.#o.store.pending()) {
      // Only records of an earlier run: one this process just committed is being deleted right now.
      if (Date.parse(r.deletedAt) >= writtenBeforeMs) continue;
      const exists = await lookup(r);
      const key = { uid: r.uid, resourceVersion: r.resourceVersion };
      if (exists === undefined) out.unknown++;
      else if (exists) {
        await this.#o.store.drop(key);
        out.dropped++;
      } else {
        await this.#o.store.markDeleted(key, r.deletedAt);
        out.deleted++;
      }
    }
    return out;
  }

  /** How many deletions wait for their record (kttl_archive_pending). */
  setPending(n: number): void {
    this.#o.metrics.pending.set(n);
  }

  /** One retention pass: by age, then by size. */
  async prune(retentionMs: number, maxBytes: number | undefined): Promise<number> {
    const o = this.#o;
    await this.#flushUnmarked();
    const { records } = await o.store.prune({
      olderThanMs: o.serverNow() - retentionMs,
      ...(maxBytes !== undefined ? { maxBytes } : {}),
    });
    if (records > 0) o.metrics.pruned.inc(records);
    o.metrics.storedBytes.set((await o.store.stats()).bytes);
    return records;
  }
}
