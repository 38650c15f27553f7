// Generates everything under deploy/ that has a single source elsewhere, so nothing is kept in step
// by hand:
//
//   stage 1 (no tools needed)
//     deploy/rbac/rules.yaml            → deploy/helm/kttl/templates/rbac.yaml (its `kinds: registry`
//       + src/rules/kinds.ts              blocks get one rule per API group of the registry's kinds)
//     src/rules/kinds.ts                → the marked sections of deploy/helm/kttl/values.yaml
//       (scripts/gen-kinds.ts)              (webhook.rules), README.md, docs/policies.md (the table
//                                         of terminal states), docs/operations.md, docs/webhook.md
//     src/rules/kinds.ts                → deploy/helm/kttl/templates/policy-authority.yaml (the
//       (scripts/gen-policy-authority.ts)   ValidatingAdmissionPolicy: kind → resource per kind)
//     deploy/crds/*.yaml                → deploy/helm/kttl/crds/ (byte-for-byte copies)
//     deploy/prometheus/kttl-rules.yaml → deploy/helm/kttl/files/prometheus-rules.yaml
//     scripts/gen-dashboard.ts          → deploy/grafana/kttl-dashboard.json, deploy/helm/kttl/files/
//   stage 2 (helm: `bash hack/testbed/build --helm`, or $HELM, or helm on PATH)
//     the chart, `helm template`        → deploy/manifests/base/ (controller, CRDs, RBAC; also what
//                                         deploy/manifests/kustomization.yaml applies)
//                                         deploy/manifests/webhook/ (base + webhook, cert-manager)
//                                         deploy/manifests/namespace/ (scope: namespace, Roles only)
//                                         deploy/rbac/rbac.yaml (ServiceAccount, roles, bindings)
//
// Usage: node scripts/gen-deploy.ts [--check] [--helm PATH]
//   --check  writes nothing; lists the files that are out of date and exits 1 if any.
// test/unit/deploy/generated.test.ts runs the same check.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { BUILTIN_KINDS, type BuiltinKind, builtinKind, resourcesByGroup } from '../src/rules/kinds.ts';
import { dashboardJson } from './gen-dashboard.ts';
import { renderSections, SECTION_FILES } from './gen-kinds.ts';
import { policyAuthorityTemplate } from './gen-policy-authority.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CHART = 'deploy/helm/kttl';
/** Release name and namespace of the plain manifests. */
export const RELEASE = 'kttl';
export const NAMESPACE = 'kttl';

// --- the RBAC source -----------------------------------------------------------------------------

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface RuleBlock {
  when: string;
  why: string;
  /**
   * `registry`: the block also grants KIND_VERBS on every kind of src/rules/kinds.ts whose `gate` is
   * this block's `when`, one rule per API group (readRbacSource adds them to `rules`).
   */
  kinds?: 'registry';
  /** Kinds of src/rules/kinds.ts this block only reads: READ_VERBS on each, by its registry plural. */
  reads?: Array<{ group: string; kind: string }>;
  rules: PolicyRule[];
}

export interface RbacSource {
  controller: RuleBlock[];
  controllerNamespace: RuleBlock[];
  webhook: RuleBlock[];
  /** The ClusterRole aggregated to view/edit/admin: users' read access to the archive API. */
  archiveReaders: RuleBlock[];
}

/** The chart serves the archive's read API (templates/_helpers.tpl "kttl.archiveApi"). */
export const ARCHIVE_API_CONDITION = 'include "kttl.archiveApi" .';

/** The built-in roles that gain read access to the archive (ClusterRole aggregation labels). */
export const AGGREGATE_TO = ['view', 'edit', 'admin'] as const;

/** `when` in rules.yaml → the chart value that turns the block on. */
export const CONDITIONS: Readonly<Record<string, string | null>> = {
  always: null,
  pods: '.Values.controller.pods',
  builtinKinds: '.Values.controller.builtinKinds',
  policies: '.Values.controller.policies',
  leaderElection: '.Values.controller.leaderElection.enabled',
  // The archive as deployed (archive.mode, or off when best-effort found no storage).
  archive: 'ne (include "kttl.archive" . | fromJson).mode "off"',
};

/** Verbs kttl needs on every kind it cleans up (get: re-reading an object after a 409). */
export const KIND_VERBS = ['get', 'list', 'watch', 'delete'];

/** Verbs of a `reads` block: the archive reads a Pod (get) and a Job's pods (list). */
export const READ_VERBS = ['get', 'list'];

/** READ_VERBS on the registry's kinds named in `reads`, one rule per API group. */
export function readRules(reads: ReadonlyArray<{ group: string; kind: string }>): PolicyRule[] {
  const kinds = reads.map((r) => {
    const k = builtinKind(r.group, r.kind);
    if (!k) throw new Error(`rules.yaml reads: ${r.group}/${r.kind} is not a kind of src/rules/kinds.ts`);
    return k;
  });
  return resourcesByGroup(kinds).map((g) => ({
    apiGroups: [g.group],
    resources: g.resources,
    verbs: [...READ_VERBS],
  }));
}

const GATES: ReadonlySet<string> = new Set<BuiltinKind['gate']>(['always', 'pods', 'builtinKinds']);

/** The rules granting KIND_VERBS on the registry's kinds with this gate, one per API group. */
export function registryRules(
  gate: string,
  kinds: readonly Readonly<BuiltinKind>[] = BUILTIN_KINDS,
): PolicyRule[] {
  return resourcesByGroup(kinds.filter((k) => k.gate === gate)).map((g) => ({
    apiGroups: [g.group],
    resources: g.resources,
    verbs: [...KIND_VERBS],
  }));
}

/** deploy/rbac/rules.yaml, with each `kinds: registry` block's rules from the kind registry. */
export function readRbacSource(root = ROOT): RbacSource {
  const src = parse(readFileSync(join(root, 'deploy/rbac/rules.yaml'), 'utf8')) as RbacSource;
  for (const [section, blocks] of Object.entries(src)) {
    for (const b of blocks as RuleBlock[]) {
      if (!(b.when in CONDITIONS)) throw new Error(`rules.yaml ${section}: unknown when: ${b.when}`);
      if (b.kinds !== undefined) {
        if (b.kinds !== 'registry' || !GATES.has(b.when))
          throw new Error(`rules.yaml ${section}: kinds: registry needs when: one of ${[...GATES]}`);
        b.rules = [...registryRules(b.when), ...(b.rules ?? [])];
      }
      if (b.reads !== undefined) b.rules = [...readRules(b.reads), ...(b.rules ?? [])];
      if (!b.why || !Array.isArray(b.rules) || b.rules.length === 0)
        throw new Error(`rules.yaml ${section}: each block needs why and rules`);
    }
  }
  return src;
}

const list = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

function wrapComment(text: string, indent: string, width = 100): string[] {
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && `${indent}# ${line} ${w}`.length > width) {
      lines.push(`${indent}# ${line}`);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(`${indent}# ${line}`);
  return lines;
}

function ruleLines(r: PolicyRule, indent: string): string[] {
  // $LEASE: the chart's lease name (a template, quoted by Helm, not by JSON).
  const names = r.resourceNames?.map((n) =>
    n === '$LEASE' ? '{{ include "kttl.leaseName" . | quote }}' : JSON.stringify(n),
  );
  return [
    `${indent}- apiGroups: ${list(r.apiGroups)}`,
    `${indent}  resources: ${list(r.resources)}`,
    ...(names ? [`${indent}  resourceNames: [${names.join(', ')}]`] : []),
    `${indent}  verbs: ${list(r.verbs)}`,
  ];
}

/**
 * Cluster-scoped resources of the rules: a Role cannot grant them, so a namespace-only install
 * (chart value scope: namespace) drops them — kttl then reads none of them (--cluster-policies=false;
 * test/integration/namespace-scope.test.ts fails on any request outside the watched namespaces).
 */
export const CLUSTER_SCOPED: ReadonlySet<string> = new Set([
  'namespaces',
  'clusterttlpolicies',
  'clusterttlpolicies/status',
  'customresourcedefinitions',
  'apiservices',
]);

/** The blocks as a Role in one namespace holds them: cluster-scoped resources dropped. */
export function namespacedBlocks(blocks: RuleBlock[]): RuleBlock[] {
  return blocks
    .map((b) => ({
      ...b,
      rules: b.rules
        .map((r) => ({ ...r, resources: r.resources.filter((x) => !CLUSTER_SCOPED.has(x)) }))
        .filter((r) => r.resources.length > 0),
    }))
    .filter((b) => b.rules.length > 0);
}

/** A condition usable inside `range` (where `.` is the item): from the root context `$`. */
const rooted = (cond: string) => cond.replace(/^\.Values/, '$.Values').replace(/ \. /g, ' $ ');

function blockLines(blocks: RuleBlock[], root = false): string[] {
  const out: string[] = [];
  for (const b of blocks) {
    const c = CONDITIONS[b.when];
    const cond = c && root ? rooted(c) : c;
    if (cond) out.push(`  {{- if ${cond} }}`);
    out.push(...wrapComment(b.why, '  '));
    for (const r of b.rules) out.push(...ruleLines(r, '  '));
    if (cond) out.push('  {{- end }}');
  }
  return out;
}

function metadata(name: string, component: string, namespaced: boolean): string[] {
  return [
    'metadata:',
    `  name: ${name}`,
    ...(namespaced ? ['  namespace: {{ .Release.Namespace }}'] : []),
    '  labels:',
    '    {{- include "kttl.labels" . | nindent 4 }}',
    `    app.kubernetes.io/component: ${component}`,
  ];
}

function binding(
  kind: 'ClusterRoleBinding' | 'RoleBinding',
  name: string,
  roleKind: 'ClusterRole' | 'Role',
  sa: string,
  component: string,
): string[] {
  return [
    'apiVersion: rbac.authorization.k8s.io/v1',
    `kind: ${kind}`,
    ...metadata(name, component, kind === 'RoleBinding'),
    'roleRef:',
    '  apiGroup: rbac.authorization.k8s.io',
    `  kind: ${roleKind}`,
    `  name: ${name}`,
    'subjects:',
    '  - kind: ServiceAccount',
    `    name: ${sa}`,
    '    namespace: {{ .Release.Namespace }}',
  ];
}

/** deploy/helm/kttl/templates/rbac.yaml from the rules. */
export function rbacTemplate(src: RbacSource): string {
  const fullname = '{{ include "kttl.fullname" . }}';
  const sa = '{{ include "kttl.serviceAccountName" . }}';
  const webhookSa = '{{ include "kttl.webhookServiceAccountName" . }}';
  const lines = [
    '{{- /*',
    'GENERATED by scripts/gen-deploy.ts from deploy/rbac/rules.yaml and the kind registry',
    'src/rules/kinds.ts: edit those, then run `node scripts/gen-deploy.ts`. Least privilege: each',
    'block is granted only when the feature that needs it is on.',
    '*/ -}}',
    '{{- if .Values.rbac.create }}',
    '{{- if eq .Values.scope "namespace" }}',
    '{{- /* A namespace-only install: the same rules, cluster-scoped resources dropped, as a Role and',
    'RoleBinding in each watched namespace (templates/_helpers.tpl "kttl.watchedNamespaces"). */}}',
    '{{- range $ns := include "kttl.watchedNamespaces" . | fromJsonArray }}',
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: Role',
    'metadata:',
    `  name: ${fullname.replace(' . ', ' $ ')}`,
    '  namespace: {{ $ns }}',
    '  labels:',
    '    {{- include "kttl.labels" $ | nindent 4 }}',
    '    app.kubernetes.io/component: controller',
    'rules:',
    ...blockLines(namespacedBlocks(src.controller), true),
    '  {{- range $.Values.controller.kinds }}',
    '  # controller.kinds: {{ .group }}/{{ .kind }}, cleaned up like the built-in kinds.',
    '  - apiGroups: [{{ .group | quote }}]',
    '    resources: [{{ .resource | quote }}]',
    `    verbs: ${list(KIND_VERBS)}`,
    '  {{- end }}',
    '  {{- with $.Values.rbac.extraRules }}',
    '  # rbac.extraRules',
    '  {{- toYaml . | nindent 2 }}',
    '  {{- end }}',
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: RoleBinding',
    'metadata:',
    `  name: ${fullname.replace(' . ', ' $ ')}`,
    '  namespace: {{ $ns }}',
    '  labels:',
    '    {{- include "kttl.labels" $ | nindent 4 }}',
    '    app.kubernetes.io/component: controller',
    'roleRef:',
    '  apiGroup: rbac.authorization.k8s.io',
    '  kind: Role',
    `  name: ${fullname.replace(' . ', ' $ ')}`,
    'subjects:',
    '  - kind: ServiceAccount',
    `    name: ${sa.replace(' . ', ' $ ')}`,
    '    namespace: {{ $.Release.Namespace }}',
    '{{- end }}',
    '{{- else }}',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: ClusterRole',
    ...metadata(fullname, 'controller', false),
    'rules:',
    ...blockLines(src.controller),
    '  {{- range .Values.controller.kinds }}',
    '  # controller.kinds: {{ .group }}/{{ .kind }}, cleaned up like the built-in kinds.',
    '  - apiGroups: [{{ .group | quote }}]',
    '    resources: [{{ .resource | quote }}]',
    `    verbs: ${list(KIND_VERBS)}`,
    '  {{- end }}',
    '  {{- with .Values.rbac.extraRules }}',
    '  # rbac.extraRules',
    '  {{- toYaml . | nindent 2 }}',
    '  {{- end }}',
    '---',
    ...binding('ClusterRoleBinding', fullname, 'ClusterRole', sa, 'controller'),
    '{{- end }}',
    '{{- if .Values.controller.leaderElection.enabled }}',
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: Role',
    ...metadata(`${fullname}-leader-election`, 'controller', true),
    'rules:',
    ...blockLines(src.controllerNamespace),
    '---',
    ...binding('RoleBinding', `${fullname}-leader-election`, 'Role', sa, 'controller'),
    '{{- end }}',
    '{{- if and .Values.webhook.enabled .Values.webhook.deploy (eq .Values.scope "cluster") }}',
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: ClusterRole',
    ...metadata(`${fullname}-webhook`, 'webhook', false),
    'rules:',
    ...blockLines(src.webhook),
    '---',
    ...binding('ClusterRoleBinding', `${fullname}-webhook`, 'ClusterRole', webhookSa, 'webhook'),
    '{{- end }}',
    `{{- if ${ARCHIVE_API_CONDITION} }}`,
    '---',
    '# The archive API server (templates/archive-api.yaml) authorises every request by a',
    '# SubjectAccessReview for the requesting user, as an aggregated API server does.',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: ClusterRoleBinding',
    ...metadata(`${fullname}-archive-api-auth-delegator`, 'archive-api', false),
    'roleRef:',
    '  apiGroup: rbac.authorization.k8s.io',
    '  kind: ClusterRole',
    '  name: system:auth-delegator',
    'subjects:',
    '  - kind: ServiceAccount',
    `    name: ${sa}`,
    '    namespace: {{ .Release.Namespace }}',
    '---',
    "# It reads the front proxy's client CA and allowed names (ConfigMap",
    '# kube-system/extension-apiserver-authentication) to trust only the API server.',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: RoleBinding',
    'metadata:',
    `  name: ${fullname}-archive-api-auth-reader`,
    '  namespace: kube-system',
    '  labels:',
    '    {{- include "kttl.labels" . | nindent 4 }}',
    '    app.kubernetes.io/component: archive-api',
    'roleRef:',
    '  apiGroup: rbac.authorization.k8s.io',
    '  kind: Role',
    '  name: extension-apiserver-authentication-reader',
    'subjects:',
    '  - kind: ServiceAccount',
    `    name: ${sa}`,
    '    namespace: {{ .Release.Namespace }}',
    '---',
    `# Aggregated to ${AGGREGATE_TO.join(', ')}: their holders read the archive in their namespaces.`,
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: ClusterRole',
    'metadata:',
    `  name: ${fullname}-archive-view`,
    '  labels:',
    '    {{- include "kttl.labels" . | nindent 4 }}',
    '    app.kubernetes.io/component: archive-api',
    ...AGGREGATE_TO.map((r) => `    rbac.authorization.k8s.io/aggregate-to-${r}: "true"`),
    'rules:',
    ...blockLines(src.archiveReaders),
    '{{- end }}',
    '{{- end }}',
  ];
  return `${lines.join('\n')}\n`;
}

// --- stage 1 -------------------------------------------------------------------------------------

/** Files that need no tools: path (relative to the repo) → content. */
export function generateSources(root = ROOT): Map<string, string> {
  const out = new Map<string, string>();
  out.set(`${CHART}/templates/rbac.yaml`, rbacTemplate(readRbacSource(root)));
  out.set(`${CHART}/templates/policy-authority.yaml`, policyAuthorityTemplate());
  for (const f of readdirSync(join(root, 'deploy/crds'))
    .filter((x) => x.endsWith('.yaml'))
    .sort()) {
    out.set(`${CHART}/crds/${f}`, readFileSync(join(root, 'deploy/crds', f), 'utf8'));
  }
  out.set(
    `${CHART}/files/prometheus-rules.yaml`,
    readFileSync(join(root, 'deploy/prometheus/kttl-rules.yaml'), 'utf8'),
  );
  const dash = dashboardJson();
  out.set('deploy/grafana/kttl-dashboard.json', dash);
  out.set(`${CHART}/files/kttl-dashboard.json`, dash);
  for (const [file, names] of Object.entries(SECTION_FILES))
    out.set(file, renderSections(file, readFileSync(join(root, file), 'utf8'), names));
  return out;
}

// --- stage 2 -------------------------------------------------------------------------------------

export interface RenderedDoc {
  /** The template it came from, e.g. `templates/rbac.yaml` or `crds/kttl.dev_ttlpolicies.yaml`. */
  source: string;
  kind: string;
  name: string;
  /** The document's text without its `---` line. */
  text: string;
}

/** Splits `helm template` output into documents. */
export function splitRendered(output: string): RenderedDoc[] {
  const docs: RenderedDoc[] = [];
  for (const chunk of output.split(/^---\s*$/m)) {
    const text = chunk.replace(/^\n+/, '').replace(/\s+$/, '');
    if (!text) continue;
    const m = text.match(/^# Source: [^/]+\/(.+)$/m);
    const obj = parse(text) as { kind?: string; metadata?: { name?: string } } | null;
    if (!obj?.kind) continue;
    docs.push({
      source: m?.[1] ?? 'unknown',
      kind: obj.kind,
      name: obj.metadata?.name ?? '',
      text: `${text}\n`,
    });
  }
  return docs;
}

export function findHelm(root = ROOT): string | null {
  const versions = readFileSync(join(root, 'hack/testbed/versions.env'), 'utf8');
  const v = versions.match(/^HELM_VERSION=(.+)$/m)?.[1]?.trim();
  const cache = process.env.KTTL_TESTBED_CACHE ?? join(root, '.cache/testbed');
  const candidates = [process.env.HELM, v ? join(cache, `helm-${v}`, 'helm') : undefined].filter(
    (x): x is string => !!x,
  );
  for (const c of candidates) if (existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

export function helmTemplate(helm: string, chartDir: string, args: string[]): string {
  return execFileSync(helm, ['template', RELEASE, chartDir, '--namespace', NAMESPACE, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, HELM_CACHE_HOME: join(tmpdir(), 'kttl-helm-cache') },
  });
}

const HEADER = (what: string) =>
  `# GENERATED by scripts/gen-deploy.ts (${what}) from the Helm chart deploy/helm/kttl:\n` +
  '# edit the chart or deploy/rbac/rules.yaml, then run `node scripts/gen-deploy.ts`. Never edit this file.\n';

/**
 * Base render: controller only (the webhook needs a certificate: see the webhook overlay). The
 * archive's read API is off in the plain manifests (`--archive-api-bind-address=0`): its
 * APIService needs a CA that no plain file can hold; the chart makes one (docs/archive.md).
 */
export const BASE_ARGS = [
  '--include-crds',
  '--set',
  'webhook.enabled=false',
  '--set',
  'archive.api.enabled=false',
];
/** Webhook overlay render: certificates from cert-manager (deterministic, no key in git). */
export const WEBHOOK_ARGS = [
  '--include-crds',
  '--set',
  'webhook.certManager.enabled=true',
  '--set',
  'archive.api.enabled=false',
];

/**
 * Namespace-only render (chart value scope: namespace): Roles only, no CRDs, no webhook, no archive
 * API; kttl watches its own namespace (the pod's, so a kustomization's `namespace:` moves it).
 */
export const NAMESPACE_ARGS = [
  '--set',
  'scope=namespace',
  '--set',
  'webhook.enabled=false',
  '--set',
  'archive.api.enabled=false',
  // A namespace admin may only grant what they hold: the built-in custom kinds need rights of their own.
  '--set',
  'controller.builtinKinds=false',
];

const BASE_FILES: Array<[file: string, sources: string[]]> = [
  ['crds.yaml', ['crds/']],
  ['serviceaccount.yaml', ['templates/serviceaccount.yaml']],
  ['rbac.yaml', ['templates/rbac.yaml']],
  ['policy-authority.yaml', ['templates/policy-authority.yaml', 'templates/policy-roles.yaml']],
  ['service.yaml', ['templates/service.yaml']],
  ['deployment.yaml', ['templates/deployment.yaml']],
  ['pvc.yaml', ['templates/pvc.yaml']],
  ['pdb.yaml', ['templates/pdb.yaml']],
];

const join2 = (docs: RenderedDoc[]) => docs.map((d) => d.text).join('---\n');

/** The rendered manifests, from a chart directory that already holds the stage 1 files. */
export function generateRendered(helm: string, chartDir: string): Map<string, string> {
  const out = new Map<string, string>();
  const base = splitRendered(helmTemplate(helm, chartDir, BASE_ARGS));
  const full = splitRendered(helmTemplate(helm, chartDir, WEBHOOK_ARGS));
  const used = new Set<RenderedDoc>();
  const resources = ['namespace.yaml'];
  out.set(
    'deploy/manifests/base/namespace.yaml',
    `${HEADER('namespace')}apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NAMESPACE}\n  labels:\n` +
      '    # kttl\'s pods meet the "restricted" Pod Security Standard.\n' +
      '    pod-security.kubernetes.io/enforce: restricted\n',
  );
  for (const [file, sources] of BASE_FILES) {
    const docs = base.filter((d) => sources.some((s) => d.source.startsWith(s)));
    if (docs.length === 0) continue;
    for (const d of docs) used.add(d);
    resources.push(file);
    out.set(
      `deploy/manifests/base/${file}`,
      `${HEADER(`helm template ${BASE_ARGS.join(' ')}`)}${join2(docs)}`,
    );
  }
  const left = base.filter((d) => !used.has(d));
  if (left.length > 0)
    throw new Error(`gen-deploy: rendered documents with no manifest file: ${left.map((d) => d.source)}`);
  out.set(
    'deploy/manifests/base/kustomization.yaml',
    `${HEADER('kustomization')}# The controller, its CRDs and RBAC in namespace kttl (no webhook).\n` +
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n' +
      resources.map((r) => `  - ${r}\n`).join(''),
  );
  out.set(
    'deploy/manifests/kustomization.yaml',
    `${HEADER('kustomization')}# kubectl apply -k deploy/manifests          # controller, CRDs, RBAC (= base/)\n` +
      '# kubectl apply -k deploy/manifests/webhook  # the same plus the webhook (needs cert-manager)\n' +
      '# kubectl apply -k deploy/manifests/namespace  # a namespace-only install (Roles only, TTLPolicy only)\n' +
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - base\n',
  );
  // The overlay: what the webhook render has beyond the base (the shared objects must be equal).
  const key = (d: RenderedDoc) => `${d.kind}/${d.name}`;
  const baseByKey = new Map(base.map((d) => [key(d), d]));
  const extra: RenderedDoc[] = [];
  for (const d of full) {
    const b = baseByKey.get(key(d));
    if (!b) extra.push(d);
    else if (b.text.replace(/^# Source.*\n/, '') !== d.text.replace(/^# Source.*\n/, ''))
      throw new Error(`gen-deploy: ${key(d)} differs between the base and the webhook render`);
  }
  out.set(
    'deploy/manifests/webhook/webhook.yaml',
    `${HEADER(`helm template ${WEBHOOK_ARGS.join(' ')}, minus the base`)}${join2(extra)}`,
  );
  out.set(
    'deploy/manifests/webhook/kustomization.yaml',
    `${HEADER('kustomization')}# The base plus kttl's admission webhook. Needs cert-manager (https://cert-manager.io):\n` +
      '# it issues the serving certificate and injects the CA into the MutatingWebhookConfiguration.\n' +
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\n  - webhook.yaml\n',
  );
  // The namespace-only install: its own kustomization (no CRDs, no cluster-scoped object at all).
  const scoped = splitRendered(helmTemplate(helm, chartDir, NAMESPACE_ARGS));
  const nsResources: string[] = [];
  for (const [file, sources] of BASE_FILES) {
    const docs = scoped.filter((d) => sources.some((s) => d.source.startsWith(s)));
    if (docs.length === 0) continue;
    nsResources.push(file);
    out.set(
      `deploy/manifests/namespace/${file}`,
      `${HEADER(`helm template ${NAMESPACE_ARGS.join(' ')}`)}${join2(docs)}`,
    );
  }
  const clusterScoped = scoped.filter((d) =>
    /^(Cluster.*|Namespace|CustomResourceDefinition|APIService|.*WebhookConfiguration|ValidatingAdmissionPolicy.*)$/.test(
      d.kind,
    ),
  );
  if (clusterScoped.length > 0)
    throw new Error(
      `gen-deploy: the namespace render holds cluster-scoped ${clusterScoped.map((d) => d.kind)}`,
    );
  out.set(
    'deploy/manifests/namespace/kustomization.yaml',
    `${HEADER('kustomization')}# A namespace-only install (chart value scope: namespace): kttl watches only its own namespace,\n` +
      '# reads only TTLPolicies there and needs no cluster-wide permission (Roles and RoleBindings only).\n' +
      '# A cluster admin installs the CRDs (base/crds.yaml) and base/policy-authority.yaml once. In your\n' +
      '# own kustomization: `namespace: team-a` and `resources: [<this directory>]`.\n' +
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: kttl\nresources:\n' +
      nsResources.map((r) => `  - ${r}\n`).join(''),
  );
  const rbac = base.filter(
    (d) => d.source === 'templates/serviceaccount.yaml' || d.source === 'templates/rbac.yaml',
  );
  out.set(
    'deploy/rbac/rbac.yaml',
    `${HEADER(`helm template ${BASE_ARGS.join(' ')}`)}` +
      "# The controller's identity and least-privilege permissions alone (namespace kttl), e.g. to run\n" +
      "# `kttl run` outside the cluster with this ServiceAccount's token. Rules: deploy/rbac/rules.yaml.\n" +
      join2(rbac),
  );
  return out;
}

// --- all of it -----------------------------------------------------------------------------------

/** Directories whose *.yaml/*.json files are all generated (a stale extra file is reported). */
export const GENERATED_DIRS = [
  'deploy/manifests',
  'deploy/manifests/base',
  'deploy/manifests/webhook',
  'deploy/manifests/namespace',
  `${CHART}/crds`,
  `${CHART}/files`,
];

/**
 * Every generated file. Stage 2 renders a temporary copy of the chart holding the fresh stage 1
 * files, so a check never renders a stale template. `helm: null` gives stage 1 only.
 */
export function generateAll(helm: string | null, root = ROOT): Map<string, string> {
  const out = generateSources(root);
  if (!helm) return out;
  const tmp = mkdtempSync(join(tmpdir(), 'kttl-chart-'));
  try {
    const chartDir = join(tmp, 'kttl');
    cpSync(join(root, CHART), chartDir, { recursive: true });
    for (const [path, content] of out) {
      if (!path.startsWith(`${CHART}/`)) continue;
      const dest = join(chartDir, relative(CHART, path));
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, content);
    }
    for (const [path, content] of generateRendered(helm, chartDir)) out.set(path, content);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

export interface Staleness {
  /** Generated files whose content differs from (or is missing on) disk. */
  stale: string[];
  /** Files in a generated directory that the generator no longer writes. */
  extra: string[];
}

export function compare(files: Map<string, string>, root = ROOT, stage2 = true): Staleness {
  const stale = [...files]
    .filter(([p, c]) => !existsSync(join(root, p)) || readFileSync(join(root, p), 'utf8') !== c)
    .map(([p]) => p);
  const extra: string[] = [];
  for (const dir of GENERATED_DIRS) {
    if (!stage2 && dir.startsWith('deploy/manifests')) continue;
    if (!existsSync(join(root, dir))) continue;
    for (const f of readdirSync(join(root, dir))) {
      const p = `${dir}/${f}`;
      if (/\.(ya?ml|json)$/.test(f) && !files.has(p)) extra.push(p);
    }
  }
  return { stale, extra };
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const hi = argv.indexOf('--helm');
  const helm = hi >= 0 ? (argv[hi + 1] ?? null) : findHelm();
  if (!helm)
    console.error(
      'gen-deploy: no helm (run `bash hack/testbed/build --helm`, or set $HELM): deploy/manifests and deploy/rbac/rbac.yaml not rendered',
    );
  const files = generateAll(helm);
  const { stale, extra } = compare(files, ROOT, !!helm);
  if (check) {
    for (const p of stale) console.error(`out of date: ${p}`);
    for (const p of extra) console.error(`no longer generated: ${p}`);
    if (stale.length + extra.length > 0) {
      console.error('run `node scripts/gen-deploy.ts`');
      return 1;
    }
    console.log(`gen-deploy: ${files.size} generated files up to date${helm ? '' : ' (stage 1 only)'}`);
    return helm ? 0 : 1;
  }
  for (const p of stale) {
    mkdirSync(dirname(join(ROOT, p)), { recursive: true });
    writeFileSync(join(ROOT, p), files.get(p)!);
    console.log(`wrote ${p}`);
  }
  for (const p of extra) {
    rmSync(join(ROOT, p));
    console.log(`removed ${p}`);
  }
  console.log(`gen-deploy: ${files.size} files, ${stale.length} written, ${extra.length} removed`);
  return helm ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
