// Writes docs/architecture.svg, kttl's architecture diagram, as hand-placed SVG (no drawing tool, no
// dependency): boxes, arrows and text from the tables below. Run `node scripts/gen-architecture-svg.ts`
// after editing; test/unit/deploy/generated.test.ts checks the file is up to date.
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SVG_PATH = 'docs/architecture.svg';

type Style = 'api' | 'kttl' | 'inner' | 'ext' | 'mon';

const STYLES: Record<Style, { fill: string; stroke: string; dash?: string }> = {
  api: { fill: '#e8f0fe', stroke: '#3b5f99' },
  kttl: { fill: '#fffaf0', stroke: '#c77700' },
  inner: { fill: '#ffffff', stroke: '#c77700' },
  ext: { fill: '#f4f4f4', stroke: '#777777' },
  mon: { fill: '#eefaf0', stroke: '#2f8f46' },
};

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
  style: Style;
  title: string;
  lines: string[];
  dashed?: boolean;
}

interface Arrow {
  from: [number, number];
  to: [number, number];
  label: string;
  /** Label position: above (default) or below the line. */
  below?: boolean;
  both?: boolean;
  color?: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const BOXES: Box[] = [
  {
    x: 20,
    y: 40,
    w: 250,
    h: 170,
    style: 'ext',
    title: 'Users, CI, operators',
    lines: [
      'create Jobs, Pods, Argo / Tekton /',
      'Kubeflow / Ray / Spark runs',
      'annotate: kttl.dev/ttl, ttl-succeeded,',
      'ttl-failed, keep; hook delete policies',
      'write TTLPolicy / ClusterTTLPolicy',
      'kttl CLI: list, explain, plan,',
      'set-ttl, delete, submit',
    ],
  },
  {
    x: 20,
    y: 290,
    w: 250,
    h: 150,
    style: 'kttl',
    title: 'kttl webhook (Deployment)',
    lines: [
      'HTTPS /mutate on :9443, TLS from',
      'cert-manager or the chart',
      'on CREATE: sets the TTL from the',
      'matching policy; enforce: max',
      'lowers longer TTLs (a warning)',
      'failurePolicy Ignore: never blocks',
    ],
  },
  {
    x: 20,
    y: 500,
    w: 250,
    h: 120,
    style: 'ext',
    dashed: true,
    title: 'native ttl-after-finished',
    lines: [
      'in kube-controller-manager (optional)',
      'deletes Jobs by .spec.ttlSeconds-',
      'AfterFinished; kttl --native-jobs=',
      'leave leaves those Jobs to it',
    ],
  },
  {
    x: 340,
    y: 40,
    w: 170,
    h: 580,
    style: 'api',
    title: 'kube-apiserver',
    lines: [
      'Jobs, Pods',
      'custom kinds (CRDs)',
      '',
      'TTLPolicy',
      'ClusterTTLPolicy',
      '(kttl.dev/v1alpha1)',
      '',
      'Lease kttl',
      '(coordination.k8s.io)',
      '',
      'Events',
      '',
      'RBAC: deploy/rbac/',
      'rules.yaml (least',
      'privilege)',
    ],
  },
  {
    x: 580,
    y: 40,
    w: 570,
    h: 440,
    style: 'kttl',
    title: 'kttl run — the controller (Deployment, 2 replicas; the leader deletes)',
    lines: [],
  },
  {
    x: 600,
    y: 80,
    w: 160,
    h: 130,
    style: 'inner',
    title: 'Reflectors',
    lines: [
      'list + watch, one cache',
      'per kind: Jobs, Pods,',
      'custom kinds, policies,',
      'namespaces;',
      '410 Gone → relist',
    ],
  },
  {
    x: 785,
    y: 80,
    w: 165,
    h: 130,
    style: 'inner',
    title: 'Judge (pure rules)',
    lines: [
      'finished? outcome, time',
      'TTL: keep › hook ›',
      'annotation › native',
      'field › policy',
      'invalid → keep + Warning',
    ],
  },
  {
    x: 975,
    y: 80,
    w: 160,
    h: 130,
    style: 'inner',
    title: 'Expiry scheduler',
    lines: [
      'one timer for all',
      'objects; any TTL up',
      'to 2³¹−1 s; judged on',
      "the API server's clock",
      '(skew estimate)',
    ],
  },
  {
    x: 600,
    y: 240,
    w: 160,
    h: 100,
    style: 'inner',
    title: 'Deleter',
    lines: ['DELETE with uid +', 'resourceVersion', 'preconditions; 409 →', 'GET and judge again'],
  },
  {
    x: 785,
    y: 240,
    w: 350,
    h: 100,
    style: 'inner',
    title: 'Work queue and workers',
    lines: [
      'each object at most once in flight; --workers deletions',
      'at a time; one client budget (--kube-api-qps/-burst),',
      'Events on their own budget (--event-qps/-burst)',
    ],
  },
  {
    x: 600,
    y: 365,
    w: 160,
    h: 45,
    style: 'inner',
    title: 'Leader election',
    lines: ['Lease in its namespace'],
  },
  {
    x: 600,
    y: 420,
    w: 160,
    h: 45,
    style: 'inner',
    title: 'Events, policy status',
    lines: ['Warning InvalidTTL …'],
  },
  {
    x: 785,
    y: 365,
    w: 350,
    h: 100,
    style: 'inner',
    title: '/metrics :8080 · /healthz /readyz :8081',
    lines: [
      'kttl_deletions_total{kind,outcome,source}, kttl_leader,',
      'kttl_deletion_lateness_seconds, kttl_tracked_objects,',
      'kttl_invalid_ttl_total, kttl_clock_skew_seconds,',
      'kttl_api_requests_total{verb,code}',
    ],
  },
  {
    x: 580,
    y: 530,
    w: 570,
    h: 90,
    style: 'mon',
    title: 'Monitoring',
    lines: [
      'Prometheus (ServiceMonitor, job="kttl") → alerts deploy/prometheus/kttl-rules.yaml',
      '(controller down, no leader, lateness p99, invalid TTLs, API errors, 403s)',
      '→ Grafana dashboard deploy/grafana/kttl-dashboard.json',
    ],
  },
];

const ARROWS: Arrow[] = [
  { from: [270, 110], to: [340, 110], label: 'create, annotate' },
  { from: [340, 330], to: [270, 330], label: 'AdmissionReview' },
  { from: [270, 370], to: [340, 370], label: 'JSON patch' },
  { from: [340, 415], to: [270, 415], label: 'watch policies' },
  { from: [270, 560], to: [340, 560], label: 'DELETE', color: '#777777' },
  { from: [510, 130], to: [600, 130], label: 'watch events' },
  { from: [600, 290], to: [510, 290], label: 'DELETE (uid, rv)', color: '#b3261e' },
  { from: [510, 387], to: [600, 387], label: 'get/update', both: true },
  { from: [600, 442], to: [510, 442], label: 'create, /status' },
  { from: [760, 145], to: [785, 145], label: '' },
  { from: [950, 145], to: [975, 145], label: '' },
  { from: [1055, 210], to: [1055, 240], label: '' },
  { from: [785, 290], to: [760, 290], label: '' },
  { from: [960, 465], to: [960, 530], label: 'scrape' },
];

function boxSvg(b: Box): string {
  const s = STYLES[b.style];
  const out = [
    `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8" fill="${s.fill}" stroke="${s.stroke}" stroke-width="1.5"${b.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
  ];
  const bold = b.style === 'inner' ? 12 : 13.5;
  out.push(`<text x="${b.x + 10}" y="${b.y + 20}" class="t" font-size="${bold}">${esc(b.title)}</text>`);
  b.lines.forEach((line, i) => {
    if (line) out.push(`<text x="${b.x + 10}" y="${b.y + 38 + i * 15}" class="l">${esc(line)}</text>`);
  });
  return out.join('\n  ');
}

function arrowSvg(a: Arrow): string {
  const [x1, y1] = a.from;
  const [x2, y2] = a.to;
  const color = a.color ?? '#333333';
  const marker = color === '#333333' ? 'a' : color === '#b3261e' ? 'r' : color === '#c77700' ? 'o' : 'g';
  const out = [
    `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${color}" stroke-width="1.5" marker-end="url(#${marker})"${a.both ? ` marker-start="url(#${marker})"` : ''}/>`,
  ];
  if (a.label) {
    const vertical = x1 === x2;
    const lx = vertical ? x1 + 6 : (x1 + x2) / 2;
    const ly = vertical ? (y1 + y2) / 2 + 4 : a.below ? y1 + 14 : y1 - 5;
    out.push(
      `<text x="${lx}" y="${ly}" class="a"${vertical ? '' : ' text-anchor="middle"'}>${esc(a.label)}</text>`,
    );
  }
  return out.join('\n  ');
}

function markers(): string {
  const defs = [
    ['a', '#333333'],
    ['r', '#b3261e'],
    ['o', '#c77700'],
    ['g', '#777777'],
  ];
  return defs
    .map(
      ([id, c]) =>
        `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${c}"/></marker>`,
    )
    .join('\n    ');
}

export function architectureSvg(): string {
  const W = 1170;
  const H = 690;
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- GENERATED by scripts/gen-architecture-svg.ts: edit that script, then run it. -->
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="title desc">
  <title id="title">kttl architecture</title>
  <desc id="desc">The kttl controller watches workloads and policies through the Kubernetes API server, judges each finished object's TTL, and deletes it at expiry with uid and resourceVersion preconditions; the webhook stamps TTLs on create; Prometheus scrapes its metrics.</desc>
  <defs>
    ${markers()}
  </defs>
  <style>
    text { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; fill: #1f1f1f; }
    .t { font-weight: 600; }
    .l { font-size: 11.5px; }
    .a { font-size: 10.5px; fill: #333333; }
    .n { font-size: 12px; fill: #444444; }
  </style>
  <rect width="${W}" height="${H}" fill="#ffffff"/>
  ${BOXES.map(boxSvg).join('\n  ')}
  ${ARROWS.map(arrowSvg).join('\n  ')}
  <text x="20" y="655" class="n">Every DELETE carries the uid and resourceVersion of the object that was judged: a TTL changed meanwhile, a recreated object of the same name,</text>
  <text x="20" y="672" class="n">or a delete by the native controller or the other replica makes it fail with 409/404, and the object is judged again. Nothing is deleted twice.</text>
</svg>
`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(join(ROOT, SVG_PATH), architectureSvg());
  console.log(`wrote ${SVG_PATH}`);
}
