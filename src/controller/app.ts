// `kttl run`: wires the pieces (HTTP door with a QPS budget, clock-skew estimate, leader election,
// the controller, metrics and health servers). Everything is injected; nothing global.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock.ts';
import { ClockSkewEstimator } from '../kube/clock-skew.ts';
import { EventRecorder } from '../kube/events.ts';
import { KubeHttp } from '../kube/http.ts';
import { LeaderElector } from '../kube/leader-election.ts';
import { JOBS } from '../kube/resources.ts';
import { TokenBucket } from '../kube/token-bucket.ts';
import type { PropagationPolicy } from '../rules/types.ts';
import { TtlController, type WatchedKind } from './controller.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { boundPort, closeServer, startHealthServer, startMetricsServer } from './servers.ts';

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
  /** Resolves when the app stops on its own (lost leadership): the process should exit non-zero. */
  lost: Promise<void>;
  stop(): Promise<void>;
}

export const DEFAULT_KINDS: WatchedKind[] = [{ resource: JOBS, defaultPropagation: 'Foreground' }];

export async function startApp(o: RunOptions, deps: AppDeps): Promise<RunningApp> {
  const { clock, logger, registry } = deps;
  const metrics = createMetrics(registry);
  const skew = new ClockSkewEstimator();
  const limiter = new TokenBucket({ qps: o.kubeApiQps, burst: o.kubeApiBurst, clock });
  const http = new KubeHttp({
    kubeConfig: deps.kubeConfig,
    clock,
    limiter,
    userAgent: 'kttl',
    observer: {
      response: (verb, code) => metrics.apiRequests.inc({ verb, code: String(code) }),
      serverDate: (sent, received, date) => {
        skew.observe(sent, received, date);
        const e = skew.estimate();
        if (e) metrics.clockSkew.set(e.offsetMs / 1000);
      },
    },
  });
  const events = new EventRecorder({
    http,
    clock,
    logger: logger.child({ component: 'events' }),
    budget: new TokenBucket({ qps: o.eventQps, burst: o.eventBurst, clock }),
    onDropped: () => metrics.eventsDropped.inc(),
  });
  let leader: LeaderElector | undefined;
  const controller = new TtlController({
    http,
    clock,
    logger: logger.child({ component: 'controller' }),
    metrics,
    events,
    skew,
    kinds: deps.kinds ?? DEFAULT_KINDS,
    namespaces: { include: o.namespaces, exclude: o.excludeNamespaces },
    dryRun: o.dryRun,
    nativeJobs: o.nativeJobs,
    helmHooks: o.helmHooks,
    propagationPolicy: o.propagationPolicy,
    workers: o.workers,
    isLeader: () => !leader || leader.isLeader(),
    resyncMs: o.resyncMs,
    beforeDelete: deps.beforeDelete,
  });

  const skewProbe = startSkewProbe(http, clock);
  const metricsServer = await startMetricsServer(o.metricsBindAddress, registry);
  const healthServer = await startHealthServer(o.healthProbeBindAddress, {
    healthy: () => ({ ok: true, detail: '' }),
    ready: () =>
      controller.synced ? { ok: true, detail: '' } : { ok: false, detail: 'watch caches not synced yet' },
  });

  controller.start();
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
    async stop() {
      skewProbe.stop();
      await leader?.stop();
      await controller.stop();
      await closeServer(metricsServer);
      await closeServer(healthServer);
      await http.close();
    },
  };
}

/**
 * Extra Date samples for the skew estimate: five quick GET /version at start (spread over a
 * second, so the 1 s Date resolution is narrowed at once), then one every ~17 s (an odd period
 * keeps sweeping the sub-second phase). Outside the QPS budget: they are tiny and rare.
 */
function startSkewProbe(http: KubeHttp, clock: Clock): { stop(): void } {
  let stopped = false;
  let timer: ReturnType<Clock['setTimer']> | undefined;
  let n = 0;
  const tick = () => {
    if (stopped) return;
    http.request('get', 'GET', '/version', { unlimited: true, timeoutMs: 5000 }).catch(() => undefined);
    n++;
    timer = clock.setTimer(tick, n < 5 ? 230 : 17_300);
  };
  tick();
  return {
    stop() {
      stopped = true;
      if (timer) clock.clearTimer(timer);
    },
  };
}
