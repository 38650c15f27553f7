// `kttl run`: wires the pieces (HTTP door with a QPS budget, clock-skew estimate, leader election,
// the controller, metrics and health servers). Everything is injected; nothing global.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ArchiveOptions, RunningArchive } from '../archive/service.ts';
import type { Clock } from '../clock.ts';
import { ApiChanges } from '../kube/api-changes.ts';
import { ClockSkewEstimator } from '../kube/clock-skew.ts';
import { startSkewProbe } from '../kube/clock-skew-probe.ts';
import { EventRecorder } from '../kube/events.ts';
import { KubeHttp } from '../kube/http.ts';
import { LeaderElector } from '../kube/leader-election.ts';
import { JOBS, PODS } from '../kube/resources.ts';
import { TokenBucket } from '../kube/token-bucket.ts';
import { type PolicyStatusPasses, startPolicyStatus } from '../policy/status-writer.ts';
import { PolicyStore } from '../policy/store.ts';
import { groupOf } from '../rules/finish.ts';
import type { PropagationPolicy } from '../rules/types.ts';
import { apiObserver } from './api-observer.ts';
import { TtlController, type WatchedKind } from './controller.ts';
import { KindManager } from './kinds.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { type SafetyRunOptions, startSafetyRails } from './safety-app.ts';
import { boundPort, closeServer, startHealthServer, startMetricsServer } from './servers.ts';

/** How long stop() lets requests in flight finish before ending them (src/kube/http.ts abort). */
const STOP_GRACE_MS = 2000;

export interface RunOptions {
  kubeApiQps: number;
  kubeApiBurst: number;
  dryRun: boolean;
  nativeJobs: 'handle' | 'leave';
  helmHooks: boolean;
  namespaces: string[];
  excludeNamespaces: string[];
  propagationPolicy?: PropagationPolicy;
  workers: number;
  resyncMs: number;
  /** --kube-api-content-type: protobuf for built-in kinds (src/kube/protobuf/k8s.ts) or JSON. */
  protobuf: boolean;
  leaderElect: boolean;
  leaderElectNamespace: string;
  leaderElectName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  eventQps: number;
  eventBurst: number;
  identity?: string;
  /** Watch bare/owned Pods (default true). */
  pods?: boolean;
  /** Watch TTLPolicy/ClusterTTLPolicy (default true). */
  policies?: boolean;
  /**
   * false: TTLPolicy only, in `namespaces` — no ClusterTTLPolicy, no Namespace reads (a
   * namespace-only install; default true).
   */
  clusterPolicies?: boolean;
  /** Watch the built-in custom kinds (src/rules/kinds.ts) when installed (default true). */
  builtinKinds?: boolean;
  /** More custom kinds to watch (they need a finish rule from a policy or a built-in). */
  kinds?: Array<{ group: string; kind: string }>;
  /** How often missing kinds and policy CRDs are looked for again (default 30 s). */
  discoveryIntervalMs?: number;
  /**
   * Learn of new kinds from a metadata-only watch on CRDs and APIServices, so missing ones are
   * looked for only when their group changes (default true; needs list/watch on both).
   */
  watchCrds?: boolean;
  /** Archiving before deleting (docs/archive.md); absent: nothing is archived. */
  archive?: ArchiveOptions;
  /** The safety rails (docs/operations.md "Safety rails"): brake, notices, notifications. */
  safety?: SafetyRunOptions;
  /** The archive's read API (src/archive/api/serve.ts) on the archive's store; needs `archive`. */
  archiveApi?: { bindAddress: string; tls: { certFile: string; keyFile: string } | null };
}

export interface AppDeps {
  kubeConfig: KubeConfig;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  kinds?: WatchedKind[];
  /** Test seam, see ControllerOptions.beforeDelete. */
  beforeDelete?: (obj: import('../rules/types.ts').ObjectSummary) => Promise<void>;
}

export interface RunningApp {
  metricsPort: number | null;
  healthPort: number | null;
  controller: TtlController;
  metrics: Metrics;
  policyStore: PolicyStore | null;
  /** Resolves when the app stops on its own (lost leadership): the process should exit non-zero. */
  lost: Promise<void>;
  stop(): Promise<void>;
}

export const DEFAULT_KINDS: WatchedKind[] = [
  { resource: JOBS, defaultPropagation: 'Foreground' },
  { resource: PODS, defaultPropagation: 'Background' },
];

export async function startApp(o: RunOptions, deps: AppDeps): Promise<RunningApp> {
  const { clock, logger, registry } = deps;
  const metrics = createMetrics(registry);
  const skew = new ClockSkewEstimator();
  const limiter = new TokenBucket({ qps: o.kubeApiQps, burst: o.kubeApiBurst, clock });
  let onApiRecovered = () => {};
  const http = new KubeHttp({
    kubeConfig: deps.kubeConfig,
    clock,
    limiter,
    userAgent: 'kttl',
    observer: apiObserver({ metrics, logger, clock, skew, onRecovered: () => onApiRecovered() }),
  });
  const events = new EventRecorder({
    http,
    clock,
    logger: logger.child({ component: 'events' }),
    budget: new TokenBucket({ qps: o.eventQps, burst: o.eventBurst, clock }),
    onDropped: () => metrics.eventsDropped.inc(),
  });
  let leader: LeaderElector | undefined;
  const apiChanges =
    o.watchCrds === false
      ? null
      : new ApiChanges({ http, clock, logger: logger.child({ component: 'api-changes' }) });
  apiChanges?.start();
  const policyStore =
    o.policies === false
      ? null
      : new PolicyStore(
          {
            http,
            clock,
            logger: logger.child({ component: 'policies' }),
            // Only when set: an explicit undefined would override the store's own default.
            ...(o.discoveryIntervalMs ? { discoveryIntervalMs: o.discoveryIntervalMs } : {}),
            ...(apiChanges ? { apiChanges } : {}),
          },
          { clusterPolicies: o.clusterPolicies !== false, namespaces: o.namespaces },
        );
  /** Annotation keys policies group by (src/rules/history.ts), kept in the cached summaries. */
  let groupKeys: ReadonlySet<string> = new Set<string>();
  const targetsPods = () =>
    policyStore?.policies().some((p) => p.resources.some((r) => r.group === '' && r.kind === 'Pod')) ?? false;
  const kinds = deps.kinds ?? DEFAULT_KINDS.filter((k) => o.pods !== false || k.resource.kind !== 'Pod');
  let controllerRef: TtlController | undefined;
  const archive: RunningArchive | null = o.archive
    ? // Loaded only with --archive: the stores (pg, node:sqlite) and the read API (docs/decisions.md
      // "A lower baseline").
      (await import('../archive/service.ts')).startArchive(o.archive, {
        kubeConfig: deps.kubeConfig,
        clock,
        logger,
        registry,
        serverNow: () => skew.serverNowForExpiry(clock.now()),
        isLeader: () => !leader || leader.isLeader(),
        // By group and kind: a record written at another version of the kind is the same kind.
        resourceOf: (apiVersion, kind) =>
          controllerRef?.kinds.find(
            (k) => k.resource.kind === kind && k.resource.group === groupOf(apiVersion),
          )?.resource,
      })
    : null;
  // Any replica serves reads, leader or not (with SQLite only the one that owns the file can).
  const archiveApi =
    archive && o.archiveApi && o.archiveApi.bindAddress !== '0'
      ? (await import('../archive/api/serve.ts')).serveArchiveApi({
          ...o.archiveApi,
          store: archive.store,
          kubeConfig: deps.kubeConfig,
          clock,
          logger,
        })
      : null;
  const safety = await startSafetyRails(o.safety ?? {}, {
    http,
    clock,
    logger,
    registry,
    events,
    policies: policyStore ? () => policyStore.policies() : undefined,
    lease: { namespace: o.leaderElectNamespace, name: o.leaderElectName },
    clusterName: o.archive?.clusterName ?? 'default',
  });
  const controller = new TtlController({
    safety: safety.safety,
    http,
    clock,
    logger: logger.child({ component: 'controller' }),
    metrics,
    events,
    skew,
    kinds,
    policyFor: policyStore ? (obj) => policyStore.policyFor(obj) : undefined,
    finishChoiceFor: policyStore ? (obj) => policyStore.finishChoiceFor(obj) : undefined,
    policiesTargetPods: targetsPods,
    ...(policyStore ? { groupAnnotationKeys: () => groupKeys } : {}),
    namespaces: { include: o.namespaces, exclude: o.excludeNamespaces },
    dryRun: o.dryRun,
    nativeJobs: o.nativeJobs,
    helmHooks: o.helmHooks,
    propagationPolicy: o.propagationPolicy,
    workers: o.workers,
    isLeader: () => !leader || leader.isLeader(),
    resyncMs: o.resyncMs,
    protobuf: o.protobuf,
    beforeDelete: deps.beforeDelete,
    ...(archive && o.archive ? { archiver: archive.archiver, archive: o.archive.mode } : {}),
  });
  controllerRef = controller;
  onApiRecovered = () => controller.apiRecovered();

  const skewProbe = startSkewProbe(http, clock, skew);
  const metricsServer = await startMetricsServer(o.metricsBindAddress, registry);
  const healthServer = await startHealthServer(o.healthProbeBindAddress, {
    healthy: () => ({ ok: true, detail: '' }),
    ready: () =>
      controller.synced ? { ok: true, detail: '' } : { ok: false, detail: 'watch caches not synced yet' },
  });

  policyStore?.start();
  const kindManager = new KindManager({
    http,
    clock,
    logger: logger.child({ component: 'kinds' }),
    controller,
    builtins: o.builtinKinds !== false,
    extra: o.kinds ?? [],
    intervalMs: o.discoveryIntervalMs,
    ...(apiChanges ? { apiChanges } : {}),
    policies: policyStore && {
      // Only policies that can apply where this controller works: a TTLPolicy in a namespace it
      // does not watch must not make it watch (and need RBAC for) the kind that policy names.
      namedKinds: () =>
        policyStore
          .policies()
          .filter(
            (p) =>
              p.namespace === undefined ||
              ((!o.namespaces?.length || o.namespaces.includes(p.namespace)) &&
                !o.excludeNamespaces?.includes(p.namespace)),
          )
          .flatMap((p) =>
            p.resources.map((r) => ({
              group: r.group,
              kind: r.kind,
              version: r.apiVersion.split('/').at(-1),
            })),
          ),
      finishRulesOf: (apiVersion, kind) => policyStore.finishRulesOf(apiVersion, kind),
      targetsPods,
    },
  });
  let statusWriter: PolicyStatusPasses | null = null;
  policyStore?.onChange(() => {
    // A policy now groups by another annotation: the cached summaries lack it, read every kind again.
    const keys = policyStore.groupAnnotationKeys();
    if ([...keys].sort().join('\n') !== [...groupKeys].sort().join('\n')) {
      groupKeys = keys;
      for (const k of controller.kinds) void controller.restartKind(k.resource.group, k.resource.kind);
    }
    safety.safety.policiesChanged();
    controller.rejudgeAll();
    void kindManager.sync();
    statusWriter?.poke();
  });
  // Policies first, so the first judgement of each object already sees them.
  if (policyStore) {
    let wait: NodeJS.Timeout | undefined;
    // Listed, or answered "not served" once: a kind not yet confirmed gone holds what it could
    // decide (src/policy/store.ts unknownReason) and the confirmation re-judges everything.
    await Promise.race([policyStore.answered, new Promise((r) => (wait = setTimeout(r, 10_000)))]);
    clearTimeout(wait); // else this timer alone keeps a stopping process alive for 10 s
  }
  if (policyStore) groupKeys = policyStore.groupAnnotationKeys();
  controller.start();
  kindManager.start();
  statusWriter = policyStore
    ? startPolicyStatus({
        store: policyStore,
        forEachObject: (fn) => controller.forEachObject(fn),
        clock,
        isLeader: () => !leader || leader.isLeader(),
        logger,
      })
    : null;
  let resolveLost!: () => void;
  const lost = new Promise<void>((r) => {
    resolveLost = r;
  });
  if (o.leaderElect) {
    const identity = o.identity ?? `${hostname()}_${randomUUID()}`;
    leader = new LeaderElector({
      http,
      clock,
      logger: logger.child({ component: 'leader-election' }),
      namespace: o.leaderElectNamespace,
      name: o.leaderElectName,
      identity,
      leaseDurationMs: o.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs,
      onStartedLeading: () => {
        metrics.leader.set(1);
        // Deletions due while we were a follower were skipped: judge everything again.
        controller.rejudgeAll();
        void archive?.settle();
        // The status pass writes only as the leader: a new leader writes it now, not up to 30 s on.
        statusWriter?.poke();
      },
      onStoppedLeading: () => {
        metrics.leader.set(0);
        resolveLost();
      },
      onNewLeader: (id) => logger.info({ leader: id }, 'leader is now'),
    });
    void leader.run();
  } else {
    metrics.leader.set(1);
  }

  return {
    metricsPort: boundPort(metricsServer),
    healthPort: boundPort(healthServer),
    controller,
    metrics,
    lost,
    policyStore,
    async stop() {
      // What was sent (a DELETE, an Event, a status write, the Lease release) may finish within a
      // grace; past it (a partitioned or hung API server) requests are ended, or the process would
      // linger up to a request's 30 s timeout.
      const abortInFlight = setTimeout(() => void http.abort(), STOP_GRACE_MS).unref();
      skewProbe.stop();
      statusWriter?.stop();
      kindManager.stop();
      await policyStore?.stop();
      await apiChanges?.stop();
      await leader?.stop();
      await controller.stop();
      await safety.stop();
      await archiveApi?.stop();
      await archive?.stop();
      await closeServer(metricsServer);
      await closeServer(healthServer);
      clearTimeout(abortInFlight);
      // Everything that mattered has finished: a request still open (on a dead connection) must
      // not hold the exit for its timeout, as close() would.
      await http.abort();
    },
  };
}
