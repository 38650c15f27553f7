// The safety rails' metrics (docs/operations.md "Safety rails"), on the registry main injects.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface SafetyMetrics {
  paused: Gauge<'policy'>;
  tripped: Gauge<'policy'>;
  notificationsSent: Counter<'sink'>;
  notificationsDropped: Counter<'sink' | 'reason'>;
  notificationRetries: Counter<'sink'>;
  notificationQueue: Gauge<'sink'>;
}

/** Why a notification was dropped: the `reason` label. */
export type NotificationDrop = 'queue-full' | 'retries-exhausted' | 'rejected';

export function createSafetyMetrics(registry: Registry): SafetyMetrics {
  const registers = [registry];
  return {
    paused: new Gauge({
      name: 'kttl_deletions_paused',
      help: 'Deletions held by the blast-radius brake (policy="*": --max-deletions; else the policy ref).',
      labelNames: ['policy'],
      registers,
    }),
    tripped: new Gauge({
      name: 'kttl_deletion_brake_tripped',
      help: '1 while a blast-radius brake holds deletions (policy="*": --max-deletions).',
      labelNames: ['policy'],
      registers,
    }),
    notificationsSent: new Counter({
      name: 'kttl_notifications_sent_total',
      help: 'Notifications delivered (answered 2xx), by sink (the position of its --notify-url, from 0).',
      labelNames: ['sink'],
      registers,
    }),
    notificationsDropped: new Counter({
      name: 'kttl_notifications_dropped_total',
      help: 'Notifications given up: queue-full (the bounded queue), retries-exhausted, rejected (a 4xx answer).',
      labelNames: ['sink', 'reason'],
      registers,
    }),
    notificationRetries: new Counter({
      name: 'kttl_notification_retries_total',
      help: 'Sends of a notification batch that failed (no answer, 429, 5xx) and were tried again.',
      labelNames: ['sink'],
      registers,
    }),
    notificationQueue: new Gauge({
      name: 'kttl_notification_queue',
      help: 'Notifications waiting to be sent, by sink.',
      labelNames: ['sink'],
      registers,
    }),
  };
}
