// A lean reflector (list + watch into a map), written here because client-node's informer stops
// for good after a non-410 error, never asks for bookmarks, does not paginate, resolves start()
// before it has synced and hands out list and watch objects in different shapes (DESIGN-NOTES.md).
// This one: paginated list, watch with bookmarks and a randomized server timeout, relist on 410,
// jittered back-off on any other error, an inactivity watchdog, its own synced signal, a periodic
// resync from the cache, and an ingest transform so only the fields the rules need are kept.
// Like client-go, it also backs off after watches that end at once with no events and after
// repeated 410s (WatchBackoff below), and falls back to one unpaginated list when a continue
// token has expired (client-go's pager).
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { ApiError, isApiError, summarizeError } from './errors.ts';
import { type KubeHttp, utf8 } from './http.ts';
import type { RawObject } from './objects.ts';
import { decodeList, decodeWatchEvent, FrameSplitter, PROTOBUF, type ProtobufKind } from './protobuf/k8s.ts';
import { collectionPath, type ResourceRef } from './resources.ts';

export interface ReflectorHandler<T> {
  upsert(key: string, obj: T, old: T | undefined): void;
  remove(key: string, old: T): void;
  /** After every complete list (the first one means the cache is synced). */
  listed?(count: number): void;
  /** A list or watch failed (other than 410); the reflector retries with back-off after it. */
  failed?(err: unknown): void;
}

export interface ReflectorOptions<T> {
  http: KubeHttp;
  resource: ResourceRef;
  /** Only this namespace (else all). */
  namespace?: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Keeps what the rules need; null means "not of interest" (dropped from the cache). */
  transform: (raw: RawObject) => T | null;
  handler: ReflectorHandler<T>;
  clock: Clock;
  logger: Logger;
  pageSize?: number;
  /** Server-side watch timeout is drawn from [min, 2·min] seconds, as client-go does. */
  minWatchTimeoutSeconds?: number;
  /** Re-delivers every cached object to the handler this often (0 = never). */
  resyncMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /**
   * A watch that ends normally sooner than this without a single event counts as a failure
   * (back-off), as client-go's "very short watch" does; default 1000.
   */
  minHealthyWatchMs?: number;
  /**
   * A watch that delivers no byte (event or bookmark) for this long is cut and watched again from
   * its resourceVersion: a connection that died without a FIN (a network partition, a lost NAT
   * entry) looks exactly like a quiet watch. The API server (v1.37) sends a quiet watch that allows
   * bookmarks its first bookmark ~120 s after it opens, then one every ~60 s (and one 2 s before its
   * timeout): the default of 150 s cuts no healthy watch (75 s cut every quiet one, again and again).
   */
  watchIdleTimeoutMs?: number;
  /** Random source, injectable for tests. */
  random?: () => number;
  /**
   * Sync with a streaming watch-list (one watch with sendInitialEvents, KEP-3157) instead of
   * paginated lists: one request, no QPS spent on pages, no page buffers. Falls back to lists
   * when the API server refuses it. Default true.
   */
  watchList?: boolean;
  /**
   * Ask for PartialObjectMetadata (names, labels, resourceVersions: no spec, no status), for a
   * kind whose objects only matter by name (src/kube/api-changes.ts). Default false.
   */
  metadataOnly?: boolean;
  /**
   * Read the kind in the API server's protobuf encoding with this decoder (built-in Jobs and Pods:
   * src/kube/protobuf/k8s.ts), which reads only the fields the rules read and skips the rest
   * without parsing it. JSON when the server answers JSON. Ignored with metadataOnly.
   */
  protobuf?: ProtobufKind;
}

/** A watch event as the API server sends it (JSON) or as the protobuf decoder gives it. */
interface WatchEvent {
  type?: string;
  object?: RawObject & { code?: number; reason?: string; message?: string };
}

class Gone extends Error {}

// A list answers a PartialObjectMetadataList, a watch's events carry PartialObjectMetadata; plain
// JSON after them in case a server cannot convert.
const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const METADATA_OBJECT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';
// Protobuf first, JSON if the server cannot (as client-go asks); the answer's type says which came.
const PROTOBUF_OR_JSON = `${PROTOBUF}, application/json`;
const PROTOBUF_WATCH_OR_JSON = `${PROTOBUF};stream=watch, application/json`;

/** The abort reason of a watch ended by retryNow(): a normal end, not a failure. */
const RESTART = Symbol('restart');

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  random: () => number;
  minHealthyWatchMs: number;
}

/** Exponential back-off for the attempt-th failure in a row, with jitter in [0.5, 1.5). */
export function backoffDelay(
  attempt: number,
  o: Pick<BackoffOptions, 'initialMs' | 'maxMs' | 'random'>,
): number {
  const base = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(attempt - 1, 16));
  return base * (0.5 + o.random()); // jitter so replicas do not reconnect in lockstep
}

/**
 * How long the reflector waits before its next request. Errors and watches that ended at once
 * with no events share one count of failures in a row (a proxy that ends every stream at once
 * would otherwise spend the whole QPS budget on watches); 410s have their own: the first relists
 * at once, the next ones in a row back off (a watch answered 410 every time would otherwise mean
 * a full LIST in a loop). Both counts reset only after a healthy watch — one that delivered an
 * event or lived minHealthyWatchMs — since a list that succeeds says nothing about the watch
 * that follows it.
 */
export class WatchBackoff {
  readonly #o: BackoffOptions;
  #failures = 0;
  #gones = 0;

  constructor(o: BackoffOptions) {
    this.#o = o;
  }

  get failures(): number {
    return this.#failures;
  }

  /** A watch ended without error after `events` events and `livedMs`: the wait before the next. */
  watchEnded(events: number, livedMs: number): number {
    if (events > 0 || livedMs >= this.#o.minHealthyWatchMs) {
      this.#failures = 0;
      this.#gones = 0;
      return 0;
    }
    return backoffDelay(++this.#failures, this.#o);
  }

  /** A 410 Gone: the wait before the relist. */
  gone(): number {
    this.#gones++;
    return this.#gones === 1 ? 0 : backoffDelay(this.#gones - 1, this.#o);
  }

  /** Any other failure: the wait before retrying. */
  error(): number {
    return backoffDelay(++this.#failures, this.#o);
  }
}
/** The API server does not support a streaming watch-list: use paginated lists. */
class WatchListUnsupported extends Error {}

const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

export class Reflector<T> {
  readonly store = new Map<string, T>();
  #needList = true;
  #useWatchList: boolean;
  /** During a watch-list sync: the keys announced so far (replace semantics at its end). */
  #initialSeen: Set<string> | null = null;
  readonly #o: Required<
    Omit<ReflectorOptions<T>, 'namespace' | 'fieldSelector' | 'labelSelector' | 'metadataOnly' | 'protobuf'>
  > &
    Pick<ReflectorOptions<T>, 'namespace' | 'fieldSelector' | 'labelSelector' | 'metadataOnly' | 'protobuf'>;
  #resourceVersion = '';
  #stopped = false;
  #abort: AbortController | undefined;
  #synced = false;
  #syncedResolve!: () => void;
  readonly synced: Promise<void>;
  #running: Promise<void> | undefined;
  #resyncTimer: { id: unknown } | undefined;
  #wake: (() => void) | undefined;
  /** Events (bookmarks included, errors not) of the watch under way. */
  #watchEvents = 0;
  /** A watch stream is open (headers received), and when its last byte arrived (clock ms). */
  #watchOpen = false;
  #lastByteMs = 0;
  /** Counters for tests and metrics. */
  readonly stats = {
    lists: 0,
    watchLists: 0,
    watches: 0,
    relistsAfterGone: 0,
    /** Watches that ended at once with no events (each one backed off). */
    emptyWatches: 0,
    /** Expired continue tokens answered with one unpaginated list. */
    fullListFallbacks: 0,
    /** Watches cut for silence past watchIdleTimeoutMs (a dead connection). */
    idleWatches: 0,
    /** Silent watches ended by retryNow() after an outage (they may be dead connections). */
    restartedWatches: 0,
    errors: 0,
    bookmarks: 0,
    events: 0,
  };

  constructor(o: ReflectorOptions<T>) {
    this.#o = {
      pageSize: 500,
      minWatchTimeoutSeconds: 300,
      resyncMs: 0,
      backoffInitialMs: 500,
      backoffMaxMs: 30_000,
      minHealthyWatchMs: 1000,
      watchIdleTimeoutMs: 150_000,
      random: Math.random,
      watchList: true,
      ...o,
    };
    this.#useWatchList = this.#o.watchList;
    this.synced = new Promise((r) => {
      this.#syncedResolve = r;
    });
  }

  get hasSynced(): boolean {
    return this.#synced;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  start(): void {
    if (this.#running) return;
    this.#running = this.#loop();
    this.#scheduleResync();
  }

  /**
   * The API server is known to answer again after an outage: ends a back-off wait at once, and
   * ends the open watch if it has been silent for 5 s — a connection from before the outage may be
   * dead without a FIN, and a live one is resumed from its resourceVersion (no relist).
   */
  retryNow(): void {
    this.#wake?.();
    if (this.#watchOpen && this.#o.clock.now() - this.#lastByteMs >= 5000) {
      this.stats.restartedWatches++;
      this.#abort?.abort(RESTART);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort?.abort();
    this.#wake?.();
    if (this.#resyncTimer) this.#o.clock.clearTimer(this.#resyncTimer);
    await this.#running;
  }

  #scheduleResync(): void {
    if (!this.#o.resyncMs || this.#stopped) return;
    this.#resyncTimer = this.#o.clock.setTimer(() => {
      if (this.#synced) for (const [k, v] of this.store) this.#o.handler.upsert(k, v, v);
      this.#scheduleResync();
    }, this.#o.resyncMs);
  }

  async #loop(): Promise<void> {
    const log = this.#o.logger;
    const backoff = new WatchBackoff({
      initialMs: this.#o.backoffInitialMs,
      maxMs: this.#o.backoffMaxMs,
      random: this.#o.random,
      minHealthyWatchMs: this.#o.minHealthyWatchMs,
    });
    while (!this.#stopped) {
      try {
        if (this.#needList && !this.#useWatchList) {
          await this.#list();
          this.#needList = false;
        }
        // With #needList still set, this watch is a watch-list: it syncs, then goes on watching.
        const started = this.#o.clock.now();
        const events = await this.#watch(this.#needList);
        if (this.#stopped) break;
        // A watch that ended normally (server timeout) is not a failure; one that ended at once
        // with nothing in it is (an API server or proxy closing every stream).
        const delay = backoff.watchEnded(events, this.#o.clock.now() - started);
        if (delay > 0) {
          this.stats.emptyWatches++;
          log[backoff.failures > 3 ? 'warn' : 'debug'](
            { retryInMs: Math.round(delay), emptyWatchesInARow: backoff.failures },
            'watch ended at once with no events; backing off',
          );
          await this.#sleep(delay);
        }
      } catch (err) {
        if (this.#stopped) break;
        if (err instanceof WatchListUnsupported) {
          log.info({ reason: err.message }, 'streaming watch-list not available: using paginated lists');
          this.#useWatchList = false;
          continue;
        }
        if (err instanceof Gone || isApiError(err, 410)) {
          this.stats.relistsAfterGone++;
          const delay = backoff.gone();
          log.info(
            { resourceVersion: this.#resourceVersion, relistInMs: Math.round(delay) },
            'resourceVersion too old (410 Gone): relisting',
          );
          this.#needList = true;
          if (delay > 0) await this.#sleep(delay);
          continue;
        }
        this.stats.errors++;
        this.#o.handler.failed?.(err);
        if (this.#stopped) break; // the handler gave up on this resource (e.g. forbidden for good)
        const delay = backoff.error();
        const failures = backoff.failures;
        if (isApiError(err, 403) && failures === 1) {
          // RBAC: say exactly what is missing, once; keep retrying (a Role may be granted later).
          log.error(
            {
              resource: this.#o.resource.plural,
              group: this.#o.resource.group,
              namespace: this.#o.namespace ?? '(all)',
              message: (err as Error).message,
            },
            `forbidden: cannot list/watch ${this.#o.resource.plural}${this.#o.resource.group ? `.${this.#o.resource.group}` : ''}: grant list and watch on it to kttl's identity, or stop watching it`,
          );
        }
        const level = failures > 3 ? 'error' : 'warn';
        log[level](
          {
            err: summarizeError(err),
            retryInMs: Math.round(delay),
            phase: this.#needList ? 'list' : 'watch',
          },
          'list/watch failed; retrying',
        );
        await this.#sleep(delay);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = this.#o.clock.setTimer(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        this.#o.clock.clearTimer(t);
        resolve();
      };
    });
  }

  #query(): Record<string, string | undefined> {
    return { fieldSelector: this.#o.fieldSelector, labelSelector: this.#o.labelSelector };
  }

  async #list(): Promise<void> {
    const { http, resource, transform, handler } = this.#o;
    const path = collectionPath(resource, this.#o.namespace);
    // Pages go into the store as they arrive (no second copy of a 100,000-object cache); the
    // keys seen tell, at the end, which cached objects vanished while we were not watching.
    const seen = new Set<string>();
    let cont: string | undefined;
    let rv = '';
    /** The continue token expired: this list is one unpaginated request. */
    let full = false;
    this.#abort = new AbortController();
    do {
      let page: { metadata?: { continue?: string; resourceVersion?: string }; items?: RawObject[] };
      try {
        page = await this.#listPage(path, {
          query: full ? this.#query() : { ...this.#query(), limit: this.#o.pageSize, continue: cont },
          signal: this.#abort.signal,
          timeoutMs: 120_000,
        });
      } catch (err) {
        // An expired continue token (410, reason Expired, once etcd compacted the list's
        // revision): as client-go's pager does, ONE list without limit instead of paging again
        // from the top, which could expire again on a large or busy collection. It replaces the
        // pages already taken (same resourceVersion semantics: none, a quorum read).
        if (cont && !full && isApiError(err, 410)) {
          this.stats.fullListFallbacks++;
          this.#o.logger.info(
            { reason: err.reason, objectsSeen: seen.size },
            'continue token expired (410): falling back to one unpaginated list',
          );
          full = true;
          seen.clear();
          continue;
        }
        throw err;
      }
      for (const raw of page.items ?? []) {
        const name = raw.metadata?.name;
        if (!name) continue;
        const key = objectKey(raw.metadata?.namespace, name);
        const obj = transform(raw);
        const old = this.store.get(key);
        if (obj === null) {
          if (old !== undefined) {
            this.store.delete(key);
            handler.remove(key, old);
          }
          continue;
        }
        seen.add(key);
        this.store.set(key, obj);
        handler.upsert(key, obj, old);
      }
      cont = full ? undefined : page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont && !this.#stopped);
    if (this.#stopped) return;
    this.stats.lists++;
    // Replace semantics: what the list did not return is gone.
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        handler.remove(key, old);
      }
    }
    this.#resourceVersion = rv;
    handler.listed?.(seen.size);
    if (!this.#synced) {
      this.#synced = true;
      this.#syncedResolve();
    }
  }

  /** One page of a list, in the encoding the options ask for. */
  async #listPage(
    path: string,
    o: { query: Record<string, string | number | undefined>; signal: AbortSignal; timeoutMs: number },
  ): Promise<{ metadata?: { continue?: string; resourceVersion?: string }; items?: RawObject[] }> {
    const { http, metadataOnly, protobuf } = this.#o;
    if (metadataOnly || !protobuf)
      return http.request('list', 'GET', path, metadataOnly ? { ...o, accept: METADATA_LIST } : o);
    const res = await http.negotiated('list', path, { ...o, accept: PROTOBUF_OR_JSON });
    if (res.contentType.startsWith(PROTOBUF)) return decodeList(protobuf, res.body);
    return JSON.parse(utf8(res.body));
  }

  /** The watch-list has sent every object: drop what it did not announce, and we are synced. */
  #endInitialEvents(): void {
    const seen = this.#initialSeen!;
    this.#initialSeen = null;
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.#o.handler.remove(key, old);
      }
    }
    this.#needList = false;
    this.stats.lists++;
    this.#o.handler.listed?.(seen.size);
    if (!this.#synced) {
      this.#synced = true;
      this.#syncedResolve();
    }
  }

  /** Watches until the stream ends; resolves to the number of events it delivered (errors aside). */
  async #watch(initial: boolean): Promise<number> {
    const { http, resource, clock } = this.#o;
    const min = this.#o.minWatchTimeoutSeconds;
    const timeoutSeconds = Math.floor(min * (1 + this.#o.random()));
    // stop() may have come while the list was ending: its abort reached the list's controller,
    // not this one, and a watch started now would hold stop() for its whole server timeout.
    if (this.#stopped) return 0;
    const abort = new AbortController();
    this.#abort = abort;
    this.stats.watches++;
    // Open from the request on: a request stuck on a dead connection is ended by retryNow() too.
    this.#watchOpen = true;
    this.#lastByteMs = clock.now();
    const res = await http
      .stream(collectionPath(resource, this.#o.namespace), {
        query: initial
          ? {
              ...this.#query(),
              watch: 1,
              allowWatchBookmarks: true,
              sendInitialEvents: true,
              resourceVersionMatch: 'NotOlderThan',
              timeoutSeconds,
            }
          : {
              ...this.#query(),
              watch: 1,
              allowWatchBookmarks: true,
              resourceVersion: this.#resourceVersion,
              timeoutSeconds,
            },
        signal: abort.signal,
        accept: this.#o.metadataOnly
          ? METADATA_OBJECT
          : this.#o.protobuf
            ? PROTOBUF_WATCH_OR_JSON
            : 'application/json',
      })
      .catch((err: unknown) => {
        this.#watchOpen = false;
        throw err;
      });
    if (res.status !== 200) this.#watchOpen = false;
    if (res.status === 410) throw new Gone();
    if (initial && [400, 422, 501].includes(res.status))
      throw new WatchListUnsupported(`HTTP ${res.status}: ${res.errorText?.slice(0, 200) ?? ''}`);
    if (initial) {
      this.#initialSeen = new Set();
      this.stats.watchLists++;
    }
    if (res.status !== 200 || !res.body) {
      throw new ApiError(
        'watch',
        collectionPath(resource),
        res.status,
        '',
        res.errorText?.slice(0, 300) ?? `HTTP ${res.status}`,
      );
    }
    // Inactivity watchdog: the server ends the watch after timeoutSeconds; silence well past that
    // means a dead connection (no FIN seen), so we cut it and watch again.
    const idleMs = Math.min((timeoutSeconds + 60) * 1000, this.#o.watchIdleTimeoutMs);
    const onIdle = () => {
      this.stats.idleWatches++;
      abort.abort(new Error(`watch inactive: no event or bookmark in ${idleMs} ms`));
    };
    let idle = clock.setTimer(onIdle, idleMs);
    this.#watchEvents = 0;
    this.#lastByteMs = clock.now();
    const protobuf =
      this.#o.protobuf && !this.#o.metadataOnly && res.contentType?.startsWith(PROTOBUF)
        ? this.#o.protobuf
        : undefined;
    const frames = protobuf ? new FrameSplitter() : undefined;
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        clock.clearTimer(idle);
        idle = clock.setTimer(onIdle, idleMs);
        this.#lastByteMs = clock.now();
        if (protobuf && frames) {
          // A frame that does not decode ends the watch (an error: watched again from the last
          // resourceVersion), unlike a JSON line, which is one event dropped with a warning.
          for (const f of frames.push(chunk)) this.#onEvent(decodeWatchEvent(protobuf, f));
          continue;
        }
        buf += decoder.decode(chunk, { stream: true });
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) this.#onLine(line);
          nl = buf.indexOf('\n');
        }
      }
    } catch (err) {
      if (this.#stopped) return this.#watchEvents;
      if (err instanceof Gone || err instanceof ApiError) throw err;
      if (abort.signal.reason === RESTART && !initial) return this.#watchEvents;
      if (abort.signal.aborted)
        throw new Error(
          `watch aborted: ${String((abort.signal.reason as Error)?.message ?? abort.signal.reason)}`,
        );
      throw err;
    } finally {
      clock.clearTimer(idle);
      this.#watchOpen = false;
      abort.abort(); // release the connection whatever ended the stream
      this.#initialSeen = null;
    }
    if (initial && this.#needList && !this.#stopped)
      throw new Error('watch-list ended before its initial events were complete');
    return this.#watchEvents;
  }

  #onLine(line: string): void {
    let ev: WatchEvent;
    try {
      ev = JSON.parse(line);
    } catch {
      this.#o.logger.warn({ line: line.slice(0, 200) }, 'unparsable watch line dropped');
      return;
    }
    this.#onEvent(ev);
  }

  #onEvent(ev: WatchEvent): void {
    const obj = ev.object;
    if (!obj) return;
    this.stats.events++;
    if (ev.type !== 'ERROR') this.#watchEvents++;
    const rv = obj.metadata?.resourceVersion;
    switch (ev.type) {
      case 'BOOKMARK':
        this.stats.bookmarks++;
        if (rv) this.#resourceVersion = rv;
        if (
          this.#initialSeen &&
          (obj.metadata as { annotations?: Record<string, string> } | undefined)?.annotations?.[
            INITIAL_EVENTS_END
          ] === 'true'
        ) {
          this.#endInitialEvents();
        }
        return;
      case 'ERROR':
        if (obj.code === 410) throw new Gone();
        throw new ApiError(
          'watch',
          collectionPath(this.#o.resource),
          obj.code ?? 500,
          obj.reason ?? '',
          obj.message ?? 'watch error',
        );
      case 'ADDED':
      case 'MODIFIED': {
        const name = obj.metadata?.name;
        if (!name) return;
        const key = objectKey(obj.metadata?.namespace, name);
        const old = this.store.get(key);
        const next = this.#o.transform(obj);
        if (next !== null) this.#initialSeen?.add(key);
        if (next === null) {
          if (old !== undefined) {
            this.store.delete(key);
            this.#o.handler.remove(key, old);
          }
        } else {
          this.store.set(key, next);
          this.#o.handler.upsert(key, next, old);
        }
        break;
      }
      case 'DELETED': {
        const name = obj.metadata?.name;
        if (!name) return;
        const key = objectKey(obj.metadata?.namespace, name);
        const old = this.store.get(key);
        if (old !== undefined) {
          this.store.delete(key);
          this.#o.handler.remove(key, old);
        }
        break;
      }
    }
    if (rv) this.#resourceVersion = rv;
  }
}
