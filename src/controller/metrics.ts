// The Prometheus metrics (docs/operations.md "Metrics and alerts"), on a registry injected by main (never the global one).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface Metrics {
  deletions: Counter<'kind' | 'outcome' | 'source' | 'dry_run'>;
  lateness: Histogram<'kind'>;
  tracked: Gauge<'kind'>;
  invalidTtl: Counter<'kind'>;
  clockSkew: Gauge;
  clockSkewRejected: Counter;
  apiRequests: Counter<'verb' | 'code'>;
  leader: Gauge;
  deleteConflicts: Counter<'kind'>;
  eventsDropped: Counter;
}

/** Upstream's buckets: 0.1·2ⁿ seconds, n = 0…13 (0.1 s to ~819 s). */
export const LATENESS_BUCKETS = Array.from({ length: 14 }, (_, n) => Number((0.1 * 2 ** n).toFixed(1)));

export function createMetrics(registry: Registry): Metrics {
  const registers = [registry];
  return {
    deletions: new Counter({
      name: 'kttl_deletions_total',
      help: 'Objects deleted (or, with dry_run="true", that would have been) because their TTL expired.',
      labelNames: ['kind', 'outcome', 'source', 'dry_run'],
      registers,
    }),
    lateness: new Histogram({
      name: 'kttl_deletion_lateness_seconds',
      help: 'Seconds from TTL expiry (API server clock) to the delete request being accepted.',
      labelNames: ['kind'],
      buckets: LATENESS_BUCKETS,
      registers,
    }),
    tracked: new Gauge({
      name: 'kttl_tracked_objects',
      help: 'Objects in the watch cache, by kind.',
      labelNames: ['kind'],
      registers,
    }),
    invalidTtl: new Counter({
      name: 'kttl_invalid_ttl_total',
      help: 'Objects kept because a TTL source held an invalid value (each object and value counted once).',
      labelNames: ['kind'],
      registers,
    }),
    clockSkew: new Gauge({
      name: 'kttl_clock_skew_seconds',
      help: 'Estimated API server clock minus local clock, in seconds.',
      registers,
    }),
    clockSkewRejected: new Counter({
      name: 'kttl_clock_skew_rejected_total',
      help: 'Date headers that put the API server ahead of the clock-skew estimate, held until other answers agree.',
      registers,
    }),
    apiRequests: new Counter({
      name: 'kttl_api_requests_total',
      help: 'Requests to the API server by verb and HTTP code (0 = no answer).',
      labelNames: ['verb', 'code'],
      registers,
    }),
    leader: new Gauge({
      name: 'kttl_leader',
      help: '1 while this replica holds the leader lease.',
      registers,
    }),
    deleteConflicts: new Counter({
      name: 'kttl_delete_conflicts_total',
      help: 'Deletes refused by their uid/resourceVersion preconditions (the object changed); re-judged.',
      labelNames: ['kind'],
      registers,
    }),
    eventsDropped: new Counter({
      name: 'kttl_events_dropped_total',
      help: 'Kubernetes Events not sent because the event budget was exhausted.',
      registers,
    }),
  };
}
