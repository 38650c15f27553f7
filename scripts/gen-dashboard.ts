// The Grafana dashboard deploy/grafana/kttl-dashboard.json, as code: panels are built from a few
// helpers so every query carries the same job/namespace matchers. Written by scripts/gen-deploy.ts
// (which also copies it into the Helm chart); test/unit/deploy checks the file is up to date and
// that every kttl_* metric it queries exists in src/controller/metrics.ts.

const SEL = 'job=~"$job", namespace=~"$namespace"';
// Grafana's variable syntax, not a JavaScript template.
const DS = { type: 'prometheus', uid: ['$', '{datasource}'].join('') };

interface Target {
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  format?: string;
}

interface Grid {
  x: number;
  y: number;
  w: number;
  h: number;
}

let nextId = 1;

function target(expr: string, legendFormat?: string, refId = 'A'): Target & { refId: string } {
  return { expr, ...(legendFormat ? { legendFormat } : {}), refId };
}

function targets(...ts: Array<[string, string?]>): Array<Target & { refId: string }> {
  return ts.map(([expr, legend], i) => target(expr, legend, String.fromCharCode(65 + i)));
}

function stat(
  title: string,
  description: string,
  gridPos: Grid,
  expr: string,
  opts: {
    unit?: string;
    thresholds?: Array<{ color: string; value: number | null }>;
    decimals?: number;
  } = {},
): object {
  return {
    id: nextId++,
    type: 'stat',
    title,
    description,
    datasource: DS,
    gridPos,
    targets: [{ ...target(expr), instant: true }],
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'none',
      textMode: 'auto',
      justifyMode: 'auto',
      orientation: 'auto',
    },
    fieldConfig: {
      defaults: {
        unit: opts.unit ?? 'short',
        ...(opts.decimals !== undefined ? { decimals: opts.decimals } : {}),
        color: { mode: 'thresholds' },
        thresholds: {
          mode: 'absolute',
          steps: opts.thresholds ?? [{ color: 'green', value: null }],
        },
      },
      overrides: [],
    },
  };
}

function timeseries(
  title: string,
  description: string,
  gridPos: Grid,
  ts: Array<Target & { refId: string }>,
  opts: { unit?: string; stack?: boolean; min?: number; bars?: boolean } = {},
): object {
  return {
    id: nextId++,
    type: 'timeseries',
    title,
    description,
    datasource: DS,
    gridPos,
    targets: ts,
    options: {
      legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull', 'max'], showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
    fieldConfig: {
      defaults: {
        unit: opts.unit ?? 'short',
        ...(opts.min !== undefined ? { min: opts.min } : {}),
        color: { mode: 'palette-classic' },
        custom: {
          drawStyle: opts.bars ? 'bars' : 'line',
          lineWidth: 1,
          fillOpacity: opts.stack ? 60 : 10,
          showPoints: 'never',
          spanNulls: true,
          stacking: { mode: opts.stack ? 'normal' : 'none', group: 'A' },
        },
      },
      overrides: [],
    },
  };
}

function row(title: string, y: number): object {
  return {
    id: nextId++,
    type: 'row',
    title,
    collapsed: false,
    gridPos: { x: 0, y, w: 24, h: 1 },
    panels: [],
  };
}

function heatmap(title: string, description: string, gridPos: Grid, expr: string): object {
  return {
    id: nextId++,
    type: 'heatmap',
    title,
    description,
    datasource: DS,
    gridPos,
    targets: [{ ...target(expr, '{{le}}'), format: 'heatmap' }],
    options: {
      calculate: false,
      yAxis: { unit: 's' },
      cellGap: 1,
      color: { mode: 'scheme', scheme: 'Oranges', steps: 64 },
      tooltip: { show: true, yHistogram: true },
    },
  };
}

const rate = (metric: string, extra = '') =>
  `rate(${metric}{${SEL}${extra ? `, ${extra}` : ''}}[$__rate_interval])`;

export function dashboard(): object {
  nextId = 1;
  const deleted = 'dry_run="false"';
  const panels: object[] = [
    row('Overview', 0),
    stat(
      'Leaders',
      'Replicas holding the leader Lease (kttl_leader). 1 is right; 0 means nothing is deleted.',
      { x: 0, y: 1, w: 4, h: 4 },
      `sum(kttl_leader{${SEL}})`,
      {
        thresholds: [
          { color: 'red', value: null },
          { color: 'green', value: 1 },
          { color: 'orange', value: 2 },
        ],
      },
    ),
    stat(
      'Deleted (range)',
      'Objects deleted because their TTL expired, over the dashboard range.',
      { x: 4, y: 1, w: 4, h: 4 },
      `sum(increase(kttl_deletions_total{${SEL}, ${deleted}}[$__range]))`,
      { decimals: 0 },
    ),
    stat(
      'Would delete (dry run, range)',
      'Objects a --dry-run controller would have deleted, over the dashboard range.',
      { x: 8, y: 1, w: 4, h: 4 },
      `sum(increase(kttl_deletions_total{${SEL}, dry_run="true"}[$__range]))`,
      { decimals: 0 },
    ),
    stat(
      'Invalid TTLs (range)',
      'Objects kept because a TTL value could not be read (each has a Warning Event, reason InvalidTTL).',
      { x: 12, y: 1, w: 4, h: 4 },
      `sum(increase(kttl_invalid_ttl_total{${SEL}}[$__range]))`,
      {
        decimals: 0,
        thresholds: [
          { color: 'green', value: null },
          { color: 'orange', value: 1 },
        ],
      },
    ),
    stat(
      'Tracked objects',
      "Objects in the leader's watch caches (all kinds).",
      { x: 16, y: 1, w: 4, h: 4 },
      `sum(max by (kind) (kttl_tracked_objects{${SEL}}))`,
    ),
    stat(
      'Lateness p99 (range)',
      'Delete time minus expiry time, 99th percentile over the dashboard range.',
      { x: 20, y: 1, w: 4, h: 4 },
      `histogram_quantile(0.99, sum by (le) (increase(kttl_deletion_lateness_seconds_bucket{${SEL}}[$__range])))`,
      {
        unit: 's',
        thresholds: [
          { color: 'green', value: null },
          { color: 'orange', value: 10 },
          { color: 'red', value: 60 },
        ],
      },
    ),

    row('Deletions', 5),
    timeseries(
      'Deletions by kind',
      'Deletes per second (accepted by the API server), by kind.',
      { x: 0, y: 6, w: 8, h: 8 },
      targets([`sum by (kind) (${rate('kttl_deletions_total', deleted)})`, '{{kind}}']),
      { unit: 'ops', stack: true, min: 0 },
    ),
    timeseries(
      'Deletions by outcome',
      'succeeded / failed: how the deleted objects finished.',
      { x: 8, y: 6, w: 8, h: 8 },
      targets([`sum by (outcome) (${rate('kttl_deletions_total', deleted)})`, '{{outcome}}']),
      { unit: 'ops', stack: true, min: 0 },
    ),
    timeseries(
      'Deletions by TTL source',
      'Where the TTL came from: hook policy, annotation, the native field, a policy.',
      { x: 16, y: 6, w: 8, h: 8 },
      targets([`sum by (source) (${rate('kttl_deletions_total', deleted)})`, '{{source}}']),
      { unit: 'ops', stack: true, min: 0 },
    ),

    row('Lateness (delete time minus expiry, API server clock)', 14),
    timeseries(
      'Lateness quantiles',
      'From kttl_deletion_lateness_seconds (buckets 0.1 s to ~819 s, as upstream).',
      { x: 0, y: 15, w: 12, h: 8 },
      targets(
        [`histogram_quantile(0.5, sum by (le) (${rate('kttl_deletion_lateness_seconds_bucket')}))`, 'p50'],
        [`histogram_quantile(0.9, sum by (le) (${rate('kttl_deletion_lateness_seconds_bucket')}))`, 'p90'],
        [`histogram_quantile(0.99, sum by (le) (${rate('kttl_deletion_lateness_seconds_bucket')}))`, 'p99'],
        [
          `sum(${rate('kttl_deletion_lateness_seconds_sum')}) / sum(${rate('kttl_deletion_lateness_seconds_count')})`,
          'mean',
        ],
      ),
      { unit: 's', min: 0 },
    ),
    heatmap(
      'Lateness distribution',
      'Deletions per lateness bucket.',
      { x: 12, y: 15, w: 12, h: 8 },
      `sum by (le) (increase(kttl_deletion_lateness_seconds_bucket{${SEL}}[$__rate_interval]))`,
    ),

    row('State', 23),
    timeseries(
      'Tracked objects by kind',
      'Objects in the watch caches, by kind (max over replicas: followers keep warm caches too).',
      { x: 0, y: 24, w: 8, h: 8 },
      targets([`max by (kind) (kttl_tracked_objects{${SEL}})`, '{{kind}}']),
      { min: 0 },
    ),
    timeseries(
      'Clock skew',
      'API server clock minus the replica clock. kttl judges expiry on the API server clock, so skew does not make deletions early.',
      { x: 8, y: 24, w: 8, h: 8 },
      targets([`kttl_clock_skew_seconds{${SEL}}`, '{{pod}}{{instance}}']),
      { unit: 's' },
    ),
    timeseries(
      'Leader',
      'kttl_leader per replica: exactly one line at 1.',
      { x: 16, y: 24, w: 8, h: 8 },
      targets([`kttl_leader{${SEL}}`, '{{pod}}{{instance}}']),
      { min: 0 },
    ),

    row('API server and problems', 32),
    timeseries(
      'API requests by code',
      'Requests to the API server by HTTP code (0 = no answer: refused, TLS, timeout).',
      { x: 0, y: 33, w: 8, h: 8 },
      targets([`sum by (code) (${rate('kttl_api_requests_total')})`, '{{code}}']),
      { unit: 'reqps', stack: true, min: 0 },
    ),
    timeseries(
      'API request errors',
      'Failed requests by verb and code: 0/5xx (server trouble), 403 (RBAC: see the log line "forbidden: cannot …"), 429 (throttled). 404 and 409 are normal (an object already gone; a precondition that protected a changed object).',
      { x: 8, y: 33, w: 8, h: 8 },
      targets([
        `sum by (verb, code) (${rate('kttl_api_requests_total', 'code=~"0|403|429|5.."')})`,
        '{{verb}} {{code}}',
      ]),
      { unit: 'reqps', min: 0 },
    ),
    timeseries(
      'Invalid TTLs, conflicts, dropped events',
      'Objects kept for an invalid TTL (by kind); deletes refused by their preconditions (the object changed, re-judged); Events dropped by the event budget.',
      { x: 16, y: 33, w: 8, h: 8 },
      targets(
        [`sum by (kind) (${rate('kttl_invalid_ttl_total')})`, 'invalid TTL {{kind}}'],
        [`sum by (kind) (${rate('kttl_delete_conflicts_total')})`, 'conflict {{kind}}'],
        [`sum(${rate('kttl_events_dropped_total')})`, 'events dropped'],
      ),
      { unit: 'ops', min: 0 },
    ),

    row('Archive (records of deleted objects, docs/archive.md)', 41),
    timeseries(
      'Records written',
      'Archive records committed before a deletion, per second (kttl_archive_records_total).',
      { x: 0, y: 42, w: 6, h: 8 },
      targets([`sum(${rate('kttl_archive_records_total')})`, 'records']),
      { unit: 'ops', min: 0 },
    ),
    timeseries(
      'Pending (archive: required)',
      'Deletions waiting because their record could not be written (kttl_archive_pending). Above 0 for long: the store is away.',
      { x: 6, y: 42, w: 6, h: 8 },
      targets([`max(kttl_archive_pending{${SEL}})`, 'pending']),
      { min: 0 },
    ),
    timeseries(
      'Failures by reason',
      'Archive writes that failed, per second, by reason: read (the object), logs, events, store (kttl_archive_failures_total).',
      { x: 12, y: 42, w: 6, h: 8 },
      targets([`sum by (reason) (${rate('kttl_archive_failures_total')})`, '{{reason}}']),
      { unit: 'ops', stack: true, min: 0 },
    ),
    timeseries(
      'Stored size',
      'Bytes the records take in the store, as of the last prune pass (kttl_archive_stored_bytes; the leader prunes).',
      { x: 18, y: 42, w: 6, h: 8 },
      targets([`max(kttl_archive_stored_bytes{${SEL}})`, 'stored']),
      { unit: 'bytes', min: 0 },
    ),
    timeseries(
      'Write latency',
      'Seconds to capture and commit one record: the object, its logs and Events, the store (kttl_archive_write_seconds).',
      { x: 0, y: 50, w: 12, h: 8 },
      targets(
        [`histogram_quantile(0.5, sum by (le) (${rate('kttl_archive_write_seconds_bucket')}))`, 'p50'],
        [`histogram_quantile(0.99, sum by (le) (${rate('kttl_archive_write_seconds_bucket')}))`, 'p99'],
      ),
      { unit: 's', min: 0 },
    ),
    stat(
      'Records written (range)',
      'Archive records committed over the dashboard range.',
      { x: 12, y: 50, w: 6, h: 8 },
      `sum(increase(kttl_archive_records_total{${SEL}}[$__range]))`,
      { decimals: 0 },
    ),
    stat(
      'Write p99 (range)',
      'The 99th percentile of kttl_archive_write_seconds over the dashboard range.',
      { x: 18, y: 50, w: 6, h: 8 },
      `histogram_quantile(0.99, sum by (le) (increase(kttl_archive_write_seconds_bucket{${SEL}}[$__range])))`,
      {
        unit: 's',
        thresholds: [
          { color: 'green', value: null },
          { color: 'orange', value: 1 },
          { color: 'red', value: 5 },
        ],
      },
    ),

    row('Safety rails (brake, notifications, docs/operations.md#safety-rails)', 58),
    timeseries(
      'Deletions paused by the brake',
      'Deletions held by a tripped blast-radius brake, by brake: * is --max-deletions, else the policy (kttl_deletions_paused). Resume: kttl resume [policy/NAME], or raise the limit.',
      { x: 0, y: 59, w: 8, h: 8 },
      targets([`max by (policy) (kttl_deletions_paused{${SEL}})`, '{{policy}}']),
      { min: 0 },
    ),
    stat(
      'Brakes tripped',
      'Blast-radius brakes holding deletions now (kttl_deletion_brake_tripped).',
      { x: 8, y: 59, w: 4, h: 8 },
      `sum(max by (policy) (kttl_deletion_brake_tripped{${SEL}}))`,
      {
        decimals: 0,
        thresholds: [
          { color: 'green', value: null },
          { color: 'red', value: 1 },
        ],
      },
    ),
    timeseries(
      'Notifications',
      'Notifications delivered, retried (a send that failed: no answer, 429, 5xx) and dropped by reason (queue-full, retries-exhausted, rejected), per second, by sink (the position of its --notify-url).',
      { x: 12, y: 59, w: 8, h: 8 },
      targets(
        [`sum by (sink) (${rate('kttl_notifications_sent_total')})`, 'sent {{sink}}'],
        [`sum by (sink) (${rate('kttl_notification_retries_total')})`, 'retried {{sink}}'],
        [
          `sum by (sink, reason) (${rate('kttl_notifications_dropped_total')})`,
          'dropped {{sink}} {{reason}}',
        ],
      ),
      { unit: 'ops', min: 0 },
    ),
    timeseries(
      'Notification queue',
      'Notifications waiting to be sent, by sink (kttl_notification_queue; bounded, 10,000 each).',
      { x: 20, y: 59, w: 4, h: 8 },
      targets([`max by (sink) (kttl_notification_queue{${SEL}})`, '{{sink}}']),
      { min: 0 },
    ),
  ];
  return {
    title: 'kttl',
    uid: 'kttl',
    description:
      'kttl: deletions of finished workloads after their TTL (deploy/grafana, generated by scripts/gen-dashboard.ts).',
    tags: ['kttl', 'kubernetes'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
        },
        {
          name: 'job',
          label: 'Job',
          type: 'query',
          datasource: DS,
          query: { query: 'label_values(kttl_leader, job)', refId: 'job' },
          definition: 'label_values(kttl_leader, job)',
          current: {},
          includeAll: true,
          allValue: '.*',
          multi: true,
          refresh: 2,
          sort: 1,
          hide: 0,
        },
        {
          name: 'namespace',
          label: 'Namespace',
          type: 'query',
          datasource: DS,
          query: { query: 'label_values(kttl_leader{job=~"$job"}, namespace)', refId: 'namespace' },
          definition: 'label_values(kttl_leader{job=~"$job"}, namespace)',
          current: {},
          includeAll: true,
          allValue: '.*',
          multi: true,
          refresh: 2,
          sort: 1,
          hide: 0,
        },
      ],
    },
    panels,
  };
}

/** The file's text (stable: two runs give the same bytes). */
export function dashboardJson(): string {
  return `${JSON.stringify(dashboard(), null, 2)}\n`;
}
