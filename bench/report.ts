// The benchmark results' shape (bench/results/latest.json) and their formatting, shared by
// bench/run.ts (writes them) and bench/chart.ts (draws them).
import type { Versions } from '../test/testbed/testbed.ts';
import type { Budget, BundleInfo, ControllerName } from './lib.ts';

export type ScenarioName = 'drain' | 'burst' | 'restart' | 'scale' | 'idle' | 'running';

/** One line of a scenario's table: the figure for each controller and kttl/native. */
export interface Row {
  key: string;
  label: string;
  /** Shorter label for the chart. */
  chartLabel?: string;
  unit: string;
  native: number | null;
  kttl: number | null;
  /** Which direction is better, for the chart. */
  better: 'lower' | 'higher';
  /** Shown in the chart. */
  chart?: boolean;
  /** The issue's target for this figure, in words. */
  target?: string;
  note?: string;
}

export interface ScenarioResult {
  id: string;
  scenario: ScenarioName;
  n: number;
  budget: Budget;
  startedAt: string;
  durationS: number;
  rows: Row[];
  /** Raw per-controller figures (request counts by verb, timings, ...). */
  raw: Partial<Record<ControllerName, Record<string, unknown>>>;
  notes: string[];
}

export interface Results {
  generatedAt: string;
  command: string;
  machine: { cpus: number; cpuModel: string; memGiB: number; kernel: string; node: string };
  versions: Versions;
  /** The kttl bundle every kttl run used. */
  kttl?: BundleInfo;
  budget: Budget;
  setup: string[];
  scenarios: ScenarioResult[];
}

export function fmt(v: number | null, unit = ''): string {
  if (v === null || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  const d = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return `${v.toFixed(d)}${unit ? ` ${unit}` : ''}`;
}

export function ratio(r: Row): string {
  if (r.native === null || r.kttl === null || !Number.isFinite(r.native) || !Number.isFinite(r.kttl))
    return '—';
  if (r.native === 0) return r.kttl === 0 ? '—' : '∞';
  return (r.kttl / r.native).toFixed(2);
}

export function markdownTable(sc: ScenarioResult): string {
  const lines = [
    `| ${sc.id} (QPS ${sc.budget.qps}, burst ${sc.budget.burst}) | native | kttl | kttl/native | target |`,
    '|---|---:|---:|---:|---|',
  ];
  for (const r of sc.rows)
    lines.push(
      `| ${r.label} | ${fmt(r.native, r.unit)} | ${fmt(r.kttl, r.unit)} | ${ratio(r)} | ${r.target ?? ''} |`,
    );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Figures across the scenarios of one run (bench/run.ts calls deriveRows after each scenario)
// ---------------------------------------------------------------------------------------------

/** Issue 21's goal for the memory of one more cached object. */
export const BYTES_PER_OBJECT_GOAL = 350;
const DERIVED = 'derived: ';

function num(sc: ScenarioResult, who: ControllerName, key: string): number | null {
  const v = sc.raw[who]?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** RSS after sync in bytes (rssAfterSyncKb; older results only have the rounded MB). */
function rssBytes(sc: ScenarioResult, who: ControllerName): number | null {
  const kb = num(sc, who, 'rssAfterSyncKb');
  if (kb !== null) return kb * 1024;
  const m = num(sc, who, 'rssAfterSyncMb');
  return m === null ? null : m * 2 ** 20;
}

export interface ScaleSlope {
  from: ScenarioResult;
  to: ScenarioResult;
  /** Bytes of RSS after sync per additional cached Job, per controller. */
  rss: Record<ControllerName, number | null>;
  /** kttl's V8 heap used per additional cached Job. */
  kttlHeap: number | null;
}

/** The slope between the smallest and the largest scale run of these results, if there are two sizes. */
export function scaleSlope(results: Results): ScaleSlope | undefined {
  const scales = results.scenarios.filter((x) => x.scenario === 'scale');
  if (scales.length < 2) return undefined;
  const from = scales.reduce((a, x) => (x.n < a.n ? x : a));
  const to = scales.reduce((a, x) => (x.n > a.n ? x : a));
  if (to.n <= from.n) return undefined;
  const dn = to.n - from.n;
  const per = (a: number | null, b: number | null) => (a === null || b === null ? null : (b - a) / dn);
  const heap = (sc: ScenarioResult) =>
    num(sc, 'kttl', 'heapUsedBytes') ??
    ((m) => (m === null ? null : m * 2 ** 20))(num(sc, 'kttl', 'heapUsedMb'));
  return {
    from,
    to,
    rss: {
      native: per(rssBytes(from, 'native'), rssBytes(to, 'native')),
      kttl: per(rssBytes(from, 'kttl'), rssBytes(to, 'kttl')),
    },
    kttlHeap: per(heap(from), heap(to)),
  };
}

function upsertRow(sc: ScenarioResult, row: Row): void {
  const i = sc.rows.findIndex((r) => r.key === row.key);
  if (i >= 0) sc.rows[i] = row;
  else sc.rows.push(row);
}

/**
 * Rows that need two scenarios of the same run, recomputed from scratch each time (idempotent):
 * - on the largest scale result, when the run has two scale sizes: bytes of RSS (and of kttl's V8
 *   heap) per additional cached object between them, goal ≤ 350 B;
 * - on each running result: its goal, kttl RSS after sync ≤ idle RSS + finished Pods × that slope
 *   (idle RSS: the idle scenario's kttl RSS after sync), when both are in the run.
 * Returns the results whose rows or notes changed.
 */
export function deriveRows(results: Results): ScenarioResult[] {
  const before = new Map(results.scenarios.map((x) => [x, JSON.stringify([x.rows, x.notes])]));
  for (const x of results.scenarios) x.notes = x.notes.filter((n) => !n.startsWith(DERIVED));
  const slope = scaleSlope(results);
  if (slope) {
    const { from, to } = slope;
    const span = `${from.n.toLocaleString('en-US')} → ${to.n.toLocaleString('en-US')}`;
    const round0 = (v: number | null) => (v === null ? null : Math.round(v));
    upsertRow(to, {
      key: 'bytesPerObject',
      label: `bytes per additional cached object (RSS after sync, ${span})`,
      chartLabel: 'RSS per additional cached Job',
      unit: 'B',
      native: round0(slope.rss.native),
      kttl: round0(slope.rss.kttl),
      better: 'lower',
      target: `kttl ≤ ${BYTES_PER_OBJECT_GOAL} B`,
    });
    upsertRow(to, {
      key: 'heapBytesPerObject',
      label: `  V8 heap used per additional cached object (${span})`,
      unit: 'B',
      native: null,
      kttl: round0(slope.kttlHeap),
      better: 'lower',
    });
    const k = slope.rss.kttl;
    if (k !== null)
      to.notes.push(
        `${DERIVED}kttl: ${Math.round(k)} B of RSS per additional cached Job between ${span}: goal ≤ ${BYTES_PER_OBJECT_GOAL} B ${k <= BYTES_PER_OBJECT_GOAL ? 'met' : 'NOT met'}`,
      );
  }
  const idle = results.scenarios.find((x) => x.scenario === 'idle');
  const baselineMb = idle ? num(idle, 'kttl', 'rssAfterSyncMb') : null;
  for (const run of results.scenarios.filter((x) => x.scenario === 'running')) {
    const finished = num(run, 'kttl', 'finished');
    const rss = num(run, 'kttl', 'rssAfterSyncMb');
    const perObject = slope?.rss.kttl ?? null;
    if (finished === null || rss === null) continue;
    if (baselineMb === null || perObject === null) {
      run.notes.push(
        `${DERIVED}goal "RSS ≤ idle RSS + ${finished} × slope" not evaluated: the run has ${baselineMb === null ? 'no idle scenario' : ''}${baselineMb === null && perObject === null ? ' and ' : ''}${perObject === null ? 'not two scale sizes' : ''}`,
      );
      continue;
    }
    const bound = baselineMb + (finished * perObject) / 2 ** 20;
    upsertRow(run, {
      key: 'rssGoalMb',
      label: `goal bound: idle RSS + ${finished.toLocaleString('en-US')} × slope (${baselineMb} MB + ${finished} × ${Math.round(perObject)} B)`,
      unit: 'MB',
      native: null,
      kttl: Math.round(bound * 10) / 10,
      better: 'lower',
      target: 'RSS after sync ≤ this',
    });
    run.notes.push(
      `${DERIVED}kttl RSS after sync ${rss} MB vs bound ${bound.toFixed(1)} MB (idle ${baselineMb} MB + ${finished} finished Pods × ${Math.round(perObject)} B): ${rss <= bound ? 'met' : 'NOT met'}`,
    );
  }
  return results.scenarios.filter((x) => before.get(x) !== JSON.stringify([x.rows, x.notes]));
}
