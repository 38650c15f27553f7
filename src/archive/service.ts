// The archive as `kttl run` uses it (docs/archive.md): the store opened on first need (a policy may
// ask for `archive: required` while --archive is off; the record must then be written or the
// object kept), the archive's own client and budget, the start-up reconciliation of pending records
// and the retention passes. Only the leader writes.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock, TimerHandle } from '../clock.ts';
import { isApiError, summarizeError } from '../kube/errors.ts';
import { KubeHttp } from '../kube/http.ts';
import type { RawObject } from '../kube/objects.ts';
import { objectPath, type ResourceRef } from '../kube/resources.ts';
import { TokenBucket } from '../kube/token-bucket.ts';
import type { ArchiveMode } from '../rules/types.ts';
import { Archiver, type Collect } from './archiver.ts';
import { collect } from './collector.ts';
import { createArchiveMetrics } from './metrics.ts';
import { openArchiveStore, redactDsn } from './open.ts';
import type { ArchiveStore } from './types.ts';

export interface ArchiveOptions {
  mode: ArchiveMode;
  dsn: string;
  clusterName: string;
  logs: boolean;
  logLines: number;
  logBytes: number;
  retentionMs: number;
  /** 0: no size cap. */
  maxBytes: number;
  qps: number;
  burst: number;
  /** How often retention runs (default 10 min). */
  pruneIntervalMs?: number;
}

export interface ArchiveDeps {
  kubeConfig: KubeConfig;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  serverNow: () => number;
  isLeader: () => boolean;
  /** The watched kind with this group and kind (the reconciliation reads pending objects back). */
  resourceOf: (apiVersion: string, kind: string) => ResourceRef | undefined;
  /** Test seam: another log and Event collector than src/archive/collector.ts. */
  collector?: (http: KubeHttp) => Collect;
  /** Test seam: a store instead of openArchiveStore(dsn). */
  store?: ArchiveStore;
}

/**
 * An ArchiveStore that opens (and migrates) on first use; a failed open is tried again on the next
 * use after a pause, so a database that is down at start-up only delays the records that need it.
 */
export class LazyStore implements ArchiveStore {
  readonly #make: () => ArchiveStore;
  readonly #onOpen: () => void;
  #opened: Promise<ArchiveStore> | undefined;
  #failedAt = -Infinity;
  readonly #clock: Clock;

  constructor(make: () => ArchiveStore, clock: Clock, onOpen: () => void) {
    this.#make = make;
    this.#clock = clock;
    this.#onOpen = onOpen;
  }

  get isOpen(): boolean {
    return this.#opened !== undefined;
  }

  async #store(): Promise<ArchiveStore> {
    if (this.#opened) return this.#opened;
    if (this.#clock.now() - this.#failedAt < 2_000)
      throw new Error('archive store unavailable (opening failed just now)');
    const store = this.#make();
    const opening = store.open().then(() => store);
    this.#opened = opening;
    try {
      await opening;
    } catch (err) {
      this.#opened = undefined;
      this.#failedAt = this.#clock.now();
      await store.close().catch(() => {});
      throw err;
    }
    this.#onOpen();
    return opening;
  }

  open = async () => {
    await this.#store();
  };
  close = async () => {
    const s = this.#opened;
    this.#opened = undefined;
    if (s) await (await s.catch(() => undefined))?.close();
  };
  putPending: ArchiveStore['putPending'] = async (r) => (await this.#store()).putPending(r);
  markDeleted: ArchiveStore['markDeleted'] = async (k, at) => (await this.#store()).markDeleted(k, at);
  drop: ArchiveStore['drop'] = async (k) => (await this.#store()).drop(k);
  pending: ArchiveStore['pending'] = async () => (await this.#store()).pending();
  prune: ArchiveStore['prune'] = async (o) => (await this.#store()).prune(o);
  list: ArchiveStore['list'] = async (q) => (await this.#store()).list(q);
  get: ArchiveStore['get'] = async (k) => (await this.#store()).get(k);
  latest: ArchiveStore['latest'] = async (ns, kind, name) => (await this.#store()).latest(ns, kind, name);
  stats: ArchiveStore['stats'] = async () => (await this.#store()).stats();
}

export interface RunningArchive {
  archiver: Archiver;
  store: LazyStore;
  /** Runs the reconciliation and a retention pass now (also on becoming leader). */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

export function startArchive(o: ArchiveOptions, deps: ArchiveDeps): RunningArchive {
  const { clock, logger } = deps;
  const log = logger.child({ component: 'archive' });
  const metrics = createArchiveMetrics(deps.registry);
  const http = new KubeHttp({
    kubeConfig: deps.kubeConfig,
    clock,
    limiter: new TokenBucket({ qps: o.qps, burst: o.burst, clock }),
    userAgent: 'kttl-archive',
  });
  const startedMs = deps.serverNow();
  let settled = false;
  const store = new LazyStore(
    () => deps.store ?? openArchiveStore(o.dsn),
    clock,
    () => {
      log.info({ dsn: redactDsn(o.dsn) }, 'archive store open');
      // Records a crash left pending are settled as soon as the store is there.
      if (!settled) void settle();
    },
  );
  const archiver = new Archiver({
    store,
    http,
    collect:
      deps.collector?.(http) ??
      ((target) =>
        collect(http, target, {
          logs: o.logs,
          logLines: o.logLines,
          logBytes: o.logBytes,
          ...(target.object ? { object: target.object } : {}),
          ...(target.podLabel ? { podLabel: target.podLabel } : {}),
        })),
    clusterName: o.clusterName,
    logger: log,
    metrics,
    serverNow: deps.serverNow,
  });

  const lookup = async (r: {
    apiVersion: string;
    kind: string;
    namespace: string;
    name: string;
    uid: string;
  }) => {
    const resource = deps.resourceOf(r.apiVersion, r.kind);
    if (!resource) return undefined;
    try {
      const raw = await http.request<RawObject>('get', 'GET', objectPath(resource, r.namespace, r.name));
      return raw.metadata?.uid === r.uid;
    } catch (err) {
      if (isApiError(err, 404)) return false;
      return undefined;
    }
  };

  let running: Promise<void> | undefined;
  async function settle(): Promise<void> {
    if (!deps.isLeader()) return;
    running ??= (async () => {
      try {
        const r = await archiver.reconcile(startedMs, lookup);
        settled = true;
        if (r.deleted + r.dropped + r.unknown > 0) log.info(r, 'archive: pending records reconciled');
        const pruned = await archiver.prune(o.retentionMs, o.maxBytes > 0 ? o.maxBytes : undefined);
        if (pruned > 0) log.info({ pruned }, 'archive: retention pass');
      } catch (err) {
        log.warn({ err: summarizeError(err) }, 'archive: reconciliation or retention failed; will try again');
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  let timer: TimerHandle | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = clock.setTimer(
      () => {
        // Only a store in use is pruned: with --archive=off and no policy asking, nothing is opened.
        if (o.mode !== 'off' || store.isOpen) void settle();
        schedule();
      },
      o.pruneIntervalMs ?? 10 * 60_000,
    );
  };
  schedule();
  if (o.mode !== 'off') void settle();

  return {
    archiver,
    store,
    settle,
    async stop() {
      stopped = true;
      if (timer) clock.clearTimer(timer);
      await running;
      await store.close();
      await http.close();
    },
  };
}
