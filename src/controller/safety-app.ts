// Wires the safety rails for `kttl run` (src/controller/app.ts): metrics, the notifier, the brake.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '../clock.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { KubeHttp } from '../kube/http.ts';
import type { NotifyFormat } from '../notify/format.ts';
import type { RunningNotifier } from '../notify/notifier.ts';
import type { Policy } from '../policy/schema.ts';
import type { DeletionLimit } from '../rules/safety.ts';
import { type Safety, startSafety } from './safety.ts';
import { createSafetyMetrics } from './safety-metrics.ts';

export interface SafetyRunOptions {
  /** `--max-deletions N/D`. */
  maxDeletions?: DeletionLimit;
  /** `--notice-before`, seconds. */
  noticeBeforeSeconds?: number;
  /** `--notify-url` (repeatable) and its companions. */
  notify?: {
    urls: string[];
    format: NotifyFormat;
    caFile?: string;
    tokenFile?: string;
    hmacKeyFile?: string;
    batchMax?: number;
    queueSize?: number;
  };
}

export interface SafetyDeps {
  http: KubeHttp;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  events: EventRecorder;
  policies?: () => readonly Policy[];
  lease: { namespace: string; name: string };
  clusterName: string;
}

export async function startSafetyRails(
  o: SafetyRunOptions,
  d: SafetyDeps,
): Promise<{ safety: Safety; notifier: RunningNotifier | null; stop(): Promise<void> }> {
  const metrics = createSafetyMetrics(d.registry);
  const n = o.notify;
  // Loaded only with a --notify-url: the notifier and CloudEvents are not evaluated otherwise
  // (docs/decisions.md "A lower baseline": the saving measured small, within noise).
  const notifier =
    n && n.urls.length > 0
      ? (await import('../notify/notifier.ts')).startNotifier({
          urls: n.urls,
          format: n.format,
          source: `kttl/${d.clusterName}`,
          ...(n.caFile ? { ca: readFileSync(n.caFile, 'utf8') } : {}),
          ...(n.tokenFile ? { tokenFile: n.tokenFile } : {}),
          ...(n.hmacKeyFile ? { hmacKeyFile: n.hmacKeyFile } : {}),
          ...(n.batchMax ? { batchMax: n.batchMax } : {}),
          ...(n.queueSize ? { queueSize: n.queueSize } : {}),
          clock: d.clock,
          logger: d.logger.child({ component: 'notify' }),
          metrics,
        })
      : null;
  const safety = startSafety({
    http: d.http,
    clock: d.clock,
    logger: d.logger.child({ component: 'safety' }),
    metrics,
    events: d.events,
    lease: d.lease,
    ...(o.maxDeletions ? { maxDeletions: o.maxDeletions } : {}),
    ...(o.noticeBeforeSeconds ? { noticeBeforeSeconds: o.noticeBeforeSeconds } : {}),
    ...(d.policies ? { policies: d.policies } : {}),
    ...(notifier ? { notifier } : {}),
  });
  return {
    safety,
    notifier,
    async stop() {
      safety.stop();
      await notifier?.stop();
    },
  };
}
