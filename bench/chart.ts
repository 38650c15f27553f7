// Draws the benchmark results as an SVG bar chart (hand-written SVG, no dependencies):
// one panel per charted figure, a bar for the native controller and one for kttl, the values and
// the ratio kttl/native.
//   node bench/chart.ts [bench/results/latest.json] [docs/benchmarks.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/testbed/testbed.ts';
import { fmt, type Results, type Row, type ScenarioResult } from './report.ts';

const input = process.argv[2] ?? join(REPO_ROOT, 'bench/results/latest.json');
const output = process.argv[3] ?? join(REPO_ROOT, 'docs/benchmarks.svg');
const results = JSON.parse(readFileSync(input, 'utf8')) as Results;

const COLORS = { native: '#8c8c8c', kttl: '#2f6fdb', text: '#1f2328', muted: '#59636e', grid: '#d0d7de' };
const PANEL_W = 460;
const PANEL_H = 118;
const COLS = 2;
const MARGIN = 24;
const HEADER_H = 78;
const LABEL_W = 64;
const VALUE_W = 84;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function scenarioTitle(sc: ScenarioResult): string {
  const n = sc.n.toLocaleString('en-US');
  switch (sc.scenario) {
    case 'drain':
      return `drain ${n} expired Jobs`;
    case 'burst':
      return `burst: ${n} Jobs, one expiry second`;
    case 'restart':
      return `restart: ${n} Jobs due 20 s after start`;
    case 'scale':
      return `scale: ${n} finished Jobs, TTL far ahead`;
    case 'idle':
      return 'idle: no objects';
    case 'running':
      return `running: ${n} running Pods + finished`;
  }
}

function panel(sc: ScenarioResult, r: Row, x: number, y: number): string {
  const parts: string[] = [];
  const values = [r.native, r.kttl].filter((v): v is number => v !== null && Number.isFinite(v));
  const max = Math.max(...values, 0) || 1;
  const barMax = PANEL_W - LABEL_W - VALUE_W - 16;
  parts.push(
    `<rect x="${x}" y="${y}" width="${PANEL_W}" height="${PANEL_H}" rx="6" fill="#ffffff" stroke="${COLORS.grid}"/>`,
  );
  parts.push(
    `<text x="${x + 12}" y="${y + 20}" font-size="13" font-weight="600" fill="${COLORS.text}">${esc(scenarioTitle(sc))}</text>`,
  );
  const unit = r.unit === '/s' ? 'per s' : r.unit;
  parts.push(
    `<text x="${x + 12}" y="${y + 37}" font-size="12" fill="${COLORS.muted}">${esc(`${(r.chartLabel ?? r.label).trim()} (${unit}, ${r.better} is better)`)}</text>`,
  );
  const bars: Array<['native' | 'kttl', number | null]> = [
    ['native', r.native],
    ['kttl', r.kttl],
  ];
  bars.forEach(([who, v], i) => {
    const by = y + 50 + i * 26;
    parts.push(`<text x="${x + 12}" y="${by + 14}" font-size="12" fill="${COLORS.text}">${who}</text>`);
    const w = v !== null && Number.isFinite(v) ? Math.max(1, (v / max) * barMax) : 0;
    parts.push(
      `<rect x="${x + LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="19" rx="3" fill="${COLORS[who]}"/>`,
    );
    parts.push(
      `<text x="${x + LABEL_W + w + 6}" y="${by + 14}" font-size="12" fill="${COLORS.text}">${esc(fmt(v, r.unit === '/s' ? '/s' : r.unit))}</text>`,
    );
  });
  const ratio =
    r.native !== null &&
    r.kttl !== null &&
    r.native !== 0 &&
    Number.isFinite(r.native) &&
    Number.isFinite(r.kttl)
      ? (r.kttl / r.native).toFixed(2)
      : '—';
  const capped = r.key === 'toAllS' && (sc.raw.native?.complete === false || sc.raw.kttl?.complete === false);
  const footer = [
    r.target ? `target ${r.target}` : '',
    capped ? 'runs capped, the rest extrapolated at the measured rate' : '',
  ]
    .filter(Boolean)
    .join(' · ');
  parts.push(
    `<text x="${x + PANEL_W - 12}" y="${y + 20}" font-size="12" text-anchor="end" fill="${COLORS.text}">kttl/native <tspan font-weight="600">${ratio}</tspan></text>`,
  );
  if (footer)
    parts.push(
      `<text x="${x + 12}" y="${y + PANEL_H - 8}" font-size="11" fill="${COLORS.muted}">${esc(footer)}</text>`,
    );
  return parts.join('\n  ');
}

const charted: Array<[ScenarioResult, Row]> = [];
for (const sc of results.scenarios) for (const r of sc.rows) if (r.chart) charted.push([sc, r]);

const rows = Math.ceil(charted.length / COLS);
const width = MARGIN * 2 + COLS * PANEL_W + (COLS - 1) * MARGIN;
const height = HEADER_H + rows * (PANEL_H + MARGIN) + MARGIN;
const { budget, versions, machine } = results;
const subtitle =
  `client budget QPS ${budget.qps} / burst ${budget.burst} for both · Kubernetes ${versions.kubernetes} ` +
  `(real apiserver + etcd) · ${machine.cpus} CPUs · ${results.generatedAt.slice(0, 10)}`;

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">
  <rect width="${width}" height="${height}" fill="#f6f8fa"/>
  <text x="${MARGIN}" y="32" font-size="18" font-weight="700" fill="${COLORS.text}">kttl vs the native ttl-after-finished controller</text>
  <text x="${MARGIN}" y="54" font-size="12" fill="${COLORS.muted}">${esc(subtitle)}</text>
  <rect x="${width - MARGIN - 150}" y="22" width="12" height="12" fill="${COLORS.native}"/>
  <text x="${width - MARGIN - 133}" y="32" font-size="12" fill="${COLORS.text}">native</text>
  <rect x="${width - MARGIN - 80}" y="22" width="12" height="12" fill="${COLORS.kttl}"/>
  <text x="${width - MARGIN - 63}" y="32" font-size="12" fill="${COLORS.text}">kttl</text>
  ${charted
    .map(([sc, r], i) =>
      panel(
        sc,
        r,
        MARGIN + (i % COLS) * (PANEL_W + MARGIN),
        HEADER_H + Math.floor(i / COLS) * (PANEL_H + MARGIN),
      ),
    )
    .join('\n  ')}
</svg>
`;
writeFileSync(output, svg);
console.log(`wrote ${output} (${charted.length} panels from ${input})`);
