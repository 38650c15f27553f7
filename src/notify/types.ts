// What kttl tells outside receivers (docs/operations.md "Safety rails"): one notification per
// deletion, notice, invalid TTL, brake trip and archive failure. The controller only calls
// notify(); queueing, batching, formats and retries are src/notify/notifier.ts.

export type NotificationType =
  | 'object.deleted'
  | 'deletion.scheduled'
  | 'ttl.invalid'
  | 'brake.tripped'
  | 'archive.failed';

export const NOTIFICATION_TYPES: readonly NotificationType[] = [
  'object.deleted',
  'deletion.scheduled',
  'ttl.invalid',
  'brake.tripped',
  'archive.failed',
];

export interface Notification {
  type: NotificationType;
  /** What it is about: `jobs/ns/name`-like for objects, the policy ref or Lease for a brake. */
  subject: string;
  /** ISO time of the happening (default: when notify() was called). */
  time?: string;
  data: Record<string, unknown>;
}

/** Fire-and-forget: never blocks, never throws (a full queue drops and counts). */
export interface Notifier {
  notify(n: Notification): void;
}
