// The archive's metrics (docs/archive.md), on the registry main injects.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ArchiveMetrics {
  records: Counter;
  pending: Gauge;
  failures: Counter<'reason'>;
  pruned: Counter;
  writeSeconds: Histogram;
  storedBytes: Gauge;
}

/** Why an archive write failed: the `reason` label. */
export type ArchiveFailure = 'read' | 'logs' | 'events' | 'store';

export function createArchiveMetrics(registry: Registry): ArchiveMetrics {
  const registers = [registry];
  return {
    records: new Counter({
      name: 'kttl_archive_records_total',
      help: 'Archive records committed before a deletion.',
      registers,
    }),
    pending: new Gauge({
      name: 'kttl_archive_pending',
      help: 'Deletions waiting because their archive record could not be written (archive: required).',
      registers,
    }),
    failures: new Counter({
      name: 'kttl_archive_failures_total',
      help: 'Archive writes that failed, by reason (read, logs, events, store).',
      labelNames: ['reason'],
      registers,
    }),
    pruned: new Counter({
      name: 'kttl_archive_pruned_total',
      help: 'Archive records removed by --archive-retention or --archive-max-size.',
      registers,
    }),
    writeSeconds: new Histogram({
      name: 'kttl_archive_write_seconds',
      help: 'Seconds to capture and commit one archive record (object, logs, Events, store).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    storedBytes: new Gauge({
      name: 'kttl_archive_stored_bytes',
      help: 'Bytes the archive records take in the store (as of the last prune pass).',
      registers,
    }),
  };
}
