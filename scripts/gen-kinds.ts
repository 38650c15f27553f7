// The parts of the chart and the docs that list the built-in kinds, rendered from the kind registry
// (src/rules/kinds.ts) into marked sections of files that are otherwise written by hand. Used by
// scripts/gen-deploy.ts (stage 1); test/unit/deploy/generated.test.ts fails when one is stale.
//
// Markers: in Markdown `<!-- kinds:NAME:begin -->…<!-- kinds:NAME:end -->` (inline, or around
// lines), in YAML a line `# kinds:NAME:begin …` and a line `# kinds:NAME:end`; what is between them
// is replaced.
import { BUILTIN_KINDS, type BuiltinKind, builtinKindNames, resourcesByGroup } from '../src/rules/kinds.ts';

type Kinds = readonly Readonly<BuiltinKind>[];

const custom = (kinds: Kinds) => kinds.filter((k) => k.gate === 'builtinKinds');
const code = (s: string) => `\`${s}\``;

/** `argoproj.io` Workflow, `tekton.dev` PipelineRun/TaskRun, … (custom kinds, by API group). */
export function kindList(kinds: Kinds = BUILTIN_KINDS): string {
  const byGroup = new Map<string, string[]>();
  for (const k of custom(kinds)) byGroup.set(k.group, [...(byGroup.get(k.group) ?? []), k.kind]);
  return [...byGroup].map(([g, ks]) => `${code(g)} ${ks.join('/')}`).join(', ');
}

/** `argoproj.io` workflows, `tekton.dev` pipelineruns/taskruns, … (the webhook's resources). */
export function resourceList(kinds: Kinds = BUILTIN_KINDS): string {
  return resourcesByGroup(custom(kinds))
    .map((g) => `${code(g.group)} ${g.resources.join('/')}`)
    .join(', ');
}

/** `workflows.argoproj.io`, `pipelineruns`/`taskruns.tekton.dev`, … (RBAC resources). */
export function rbacResourceList(kinds: Kinds = BUILTIN_KINDS): string {
  return resourcesByGroup(custom(kinds))
    .map((g) => {
      const head = g.resources.slice(0, -1).map(code);
      return [...head, code(`${g.resources.at(-1)}.${g.group}`)].join('/');
    })
    .join(', ');
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/**
 * The table of terminal states (docs/policies.md): one row per run of consecutive kinds of the same
 * project, group and terminal states.
 */
export function terminalTable(kinds: Kinds = BUILTIN_KINDS): string {
  const rows: Array<{ first: Readonly<BuiltinKind>; names: string[] }> = [];
  for (const k of kinds) {
    const last = rows.at(-1);
    if (
      last &&
      last.first.project === k.project &&
      last.first.group === k.group &&
      JSON.stringify(last.first.terminal) === JSON.stringify(k.terminal)
    )
      last.names.push(k.kind);
    else rows.push({ first: k, names: [k.kind] });
  }
  const lines = [
    '| kind | terminal: succeeded | terminal: failed | interim (never "finished") | finish time |',
    '|---|---|---|---|---|',
    ...rows.map(({ first: k, names }) => {
      const where = k.group === '' ? 'core' : code(k.group);
      const t = k.terminal;
      const kind = `${k.project} ${names.map(code).join(', ')} (${where})`;
      return `| ${[kind, t.succeeded, t.failed, t.interim, t.time].map(cell).join(' | ')} |`;
    }),
  ];
  return lines.join('\n');
}

/**
 * The chart's `webhook.rules` (deploy/helm/kttl/values.yaml): the same resources as
 * `kttl webhook config` (src/webhook/config.ts): Jobs, Pods, then each group of custom kinds.
 */
export function webhookRuleLines(kinds: Kinds = BUILTIN_KINDS, indent = '    '): string[] {
  const group = (g: string) => (g === '' ? '""' : g);
  const fixed = kinds.filter((k) => k.gate !== 'builtinKinds');
  return [
    ...fixed.map(
      (k) =>
        `${indent}- {apiGroups: [${group(k.group)}], apiVersions: [${k.version}], resources: [${k.plural}], scope: Namespaced}`,
    ),
    ...resourcesByGroup(custom(kinds)).map(
      (g) =>
        `${indent}- {apiGroups: [${group(g.group)}], apiVersions: ["*"], resources: [${g.resources.join(', ')}]}`,
    ),
  ];
}

/** A section's new content: Markdown text (inline or lines), or YAML lines (without their indent). */
export type Section = { md: string } | { yaml: (indent: string) => string[] };

export const SECTIONS: Readonly<Record<string, Section>> = {
  projects: { md: builtinKindNames() },
  kinds: { md: kindList() },
  resources: { md: resourceList() },
  'rbac-resources': { md: rbacResourceList() },
  table: { md: terminalTable() },
  'webhook-rules': { yaml: (indent) => webhookRuleLines(BUILTIN_KINDS, indent) },
};

/** The files holding sections, and the sections each must hold (a lost marker is an error). */
export const SECTION_FILES: Readonly<Record<string, readonly string[]>> = {
  'README.md': ['projects', 'kinds'],
  'docs/architecture.md': ['projects'],
  'docs/cli.md': ['projects'],
  'docs/policies.md': ['kinds', 'table'],
  'docs/operations.md': ['rbac-resources'],
  'docs/webhook.md': ['resources'],
  'deploy/helm/kttl/values.yaml': ['webhook-rules'],
};

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `text` with every section of `names` rendered; throws when a section's markers are missing. */
export function renderSections(
  file: string,
  text: string,
  names: readonly string[],
  sections: Readonly<Record<string, Section>> = SECTIONS,
): string {
  let out = text;
  for (const name of names) {
    const s = sections[name];
    if (!s) throw new Error(`${file}: no section ${name}`);
    const n = escapeRe(name);
    if ('md' in s) {
      const re = new RegExp(`(<!-- kinds:${n}:begin -->)([\\s\\S]*?)(<!-- kinds:${n}:end -->)`, 'g');
      let found = 0;
      out = out.replace(re, (_m, begin: string, inner: string, end: string) => {
        found++;
        // Markers on lines of their own keep the content on lines of its own.
        const block = inner.startsWith('\n');
        return `${begin}${block ? `\n${s.md}\n` : s.md}${end}`;
      });
      if (found === 0) throw new Error(`${file}: markers <!-- kinds:${name}:begin/end --> missing`);
    } else {
      const re = new RegExp(
        `^([ \\t]*)(# kinds:${n}:begin[^\\n]*\\n)(?:[^\\n]*\\n)*?([ \\t]*# kinds:${n}:end[^\\n]*)$`,
        'gm',
      );
      let found = 0;
      out = out.replace(re, (_m, indent: string, begin: string, end: string) => {
        found++;
        return `${indent}${begin}${s.yaml(indent).join('\n')}\n${end}`;
      });
      if (found === 0) throw new Error(`${file}: marker lines # kinds:${name}:begin/end missing`);
    }
  }
  return out;
}
