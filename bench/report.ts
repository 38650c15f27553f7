// The benchmark results' shape (bench/results/latest.json) and their formatting, shared by
// bench/run.ts (writes them) and bench/chart.ts (draws them).
import type { Versions } from '../test/testbed/testbed.ts';
import type { Budget, BundleInfo, ControllerName } from './lib.ts';

export type ScenarioName = 'drain' | 'burst' | 'restart' | 'scale';

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
