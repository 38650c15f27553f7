// `kttl list [KIND]`: finished and running objects with their TTL, where it comes from and when
// they go, sorted by expiry (soonest first).
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import type { GlobalOptions } from '../program.ts';
import { withCluster } from '../shared/cluster.ts';
import { kindResolver, kindsHelp } from '../shared/kinds.ts';
import { kindsText, loadRows, whereText } from '../shared/load.ts';
import {
  allNamespacesOption,
  helmHooksOption,
  oneLineErrors,
  outputOption,
  selectorOption,
} from '../shared/options.ts';
import {
  colors,
  err,
  exitQuietlyOnEpipe,
  json,
  OUTPUT_FORMATS,
  type OutputFormat,
  out,
  table,
  yaml,
} from '../shared/output.ts';
import { noPolicies, type PolicySource } from '../shared/policies.ts';
import { parseKindList } from '../shared/refs.ts';
import { byExpiry, finishedCell, type Row, rowJson } from '../shared/rows.ts';
import { isoTime } from '../shared/time.ts';

interface ListFlags {
  allNamespaces?: boolean;
  selector?: string;
  finished?: boolean;
  running?: boolean;
  output: OutputFormat;
  helmHooks: boolean;
}

export function registerList(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
  policies: PolicySource = noPolicies,
): void {
  const cmd = program
    .command('list')
    .alias('ls')
    .description('list objects (Jobs, Pods, any kind kttl deletes) with status, TTL, its source and expiry')
    .argument('[kind]', 'a kind or kinds, comma-separated: jobs (default), pods, workflows, jobs,pods, ...')
    .addOption(allNamespacesOption())
    .addOption(selectorOption())
    .option('--finished', 'only finished objects (Succeeded or Failed)')
    .option('--running', 'only objects that have not finished')
    .addOption(outputOption(OUTPUT_FORMATS, 'table'))
    .addOption(helmHooksOption())
    .addHelpText(
      'after',
      `
Columns: STATUS is Running, Succeeded or Failed; FINISHED is how long ago it finished; TTL and
SOURCE say which rule gives the TTL (keep, hook, annotation, field, policy, none, or invalid);
EXPIRES IN is the time left on the API server's clock: "now" (due), "-" (no TTL or not finished),
"kept" (kttl.dev/keep), "invalid" (a bad TTL value: never deleted), "deleting", "unknown"
(a Pod without a container finish time: the controller counts from when it first sees it).
A running object with outcome-specific TTLs shows them as succeeded/failed, e.g. 10m/7d.

Examples:
  kttl list                         # Jobs in the current namespace, soonest expiry first
  kttl list pods -n team-a          # Pods in team-a
  kttl list workflows -A            # Argo Workflows everywhere
  kttl list -A --finished           # finished Jobs in every namespace
  kttl list -l team=ml -o wide      # with finish and expiry times and the rule that applies
  kttl list -o json | jq '.items[] | select(.state == "expired") | .name'`,
    )
    .addHelpText('after', kindsHelp())
    .action(async (kindArg: string | undefined, flags: ListFlags) => {
      exitQuietlyOnEpipe();
      if (flags.finished && flags.running) throw new UserError('--finished and --running exclude each other');
      const spellings = parseKindList(kindArg ?? 'jobs');
      await withCluster(globals(), env, async (c) => {
        const kinds = await kindResolver(c).resolveAll(spellings);
        const namespace = flags.allNamespaces ? undefined : c.namespace;
        const loaded = await loadRows(c, {
          kinds,
          namespace,
          selector: flags.selector,
          policies: await policies(c.http),
          helmHooks: flags.helmHooks,
        });
        let rows = loaded.rows;
        if (flags.finished) rows = rows.filter((r) => r.status !== 'Running');
        if (flags.running) rows = rows.filter((r) => r.status === 'Running');
        rows.sort(byExpiry);
        printRows(
          rows,
          loaded.nowMs,
          c.clock().source,
          flags,
          namespace,
          kinds.length > 0 ? kindsText(kinds) : '',
        );
      });
    });
  oneLineErrors(cmd);
}

function printRows(
  rows: Row[],
  nowMs: number,
  clock: 'server' | 'local',
  flags: ListFlags,
  namespace: string | undefined,
  what: string,
): void {
  if (flags.output === 'json' || flags.output === 'yaml') {
    const doc = {
      now: isoTime(nowMs),
      clock,
      namespace: namespace ?? null,
      items: rows.map((r) => rowJson(r, nowMs)),
    };
    out(flags.output === 'json' ? json(doc) : yaml(doc));
    return;
  }
  if (rows.length === 0) {
    err(
      `No ${flags.finished ? 'finished ' : flags.running ? 'running ' : ''}${what} found ${whereText(namespace)}.`,
    );
    return;
  }
  const c = colors();
  const wide = flags.output === 'wide';
  const head = [
    ...(namespace === undefined ? ['NAMESPACE'] : []),
    'NAME',
    'KIND',
    'STATUS',
    'FINISHED',
    'TTL',
    'SOURCE',
    'EXPIRES IN',
    ...(wide ? ['FINISHED AT', 'EXPIRES AT', 'RULE'] : []),
  ];
  const status = (r: Row) =>
    r.status === 'Succeeded' ? c.green(r.status) : r.status === 'Failed' ? c.red(r.status) : c.cyan(r.status);
  const expires = (r: Row) =>
    r.expiresIn === 'now'
      ? c.bold(c.red(r.expiresIn))
      : r.expiresIn === 'invalid'
        ? c.yellow(r.expiresIn)
        : r.expiresIn === 'kept'
          ? c.blue(r.expiresIn)
          : r.expiresIn;
  const body = rows.map((r) => {
    const s = r.summary;
    const rule = (d: Row['ifSucceeded']) => (d.action === 'invalid' ? d.message : d.detail);
    const ruleText =
      r.decision !== null
        ? rule(r.decision)
        : rule(r.ifSucceeded) === rule(r.ifFailed)
          ? rule(r.ifSucceeded)
          : `if succeeded: ${rule(r.ifSucceeded)}; if failed: ${rule(r.ifFailed)}`;
    return [
      ...(namespace === undefined ? [s.namespace] : []),
      s.name,
      s.kind,
      status(r),
      finishedCell(r, nowMs),
      r.ttl,
      r.source === 'invalid' ? c.yellow(r.source) : r.source,
      expires(r),
      ...(wide
        ? [
            s.finish?.atMs != null ? isoTime(s.finish.atMs) : '-',
            r.judgement.expireAtMs !== undefined ? isoTime(r.judgement.expireAtMs) : '-',
            ruleText,
          ]
        : []),
    ];
  });
  out(table(head, body));
}
