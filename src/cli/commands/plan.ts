// `kttl plan`: read-only forecast of what the controller will delete in a window, grouped by
// namespace and TTL source, with counts and the earliest deletion times.
import type { Command } from 'commander';
import { Option } from 'commander';
import { UserError } from '../errors.ts';
import type { GlobalOptions } from '../program.ts';
import { withCluster } from '../shared/cluster.ts';
import { kindResolver, kindsHelp } from '../shared/kinds.ts';
import { kindsText, loadRows, whereText } from '../shared/load.ts';
import {
  allNamespacesOption,
  durationSeconds,
  helmHooksOption,
  oneLineErrors,
  selectorOption,
} from '../shared/options.ts';
import { err, exitQuietlyOnEpipe, json, out, table, yaml } from '../shared/output.ts';
import { noPolicies, type PolicySource } from '../shared/policies.ts';
import { parseKindList } from '../shared/refs.ts';
import { byExpiry, type Row } from '../shared/rows.ts';
import { isoTime, relative } from '../shared/time.ts';

interface PlanFlags {
  allNamespaces?: boolean;
  selector?: string;
  since?: string;
  until: string;
  output: 'table' | 'json' | 'yaml';
  helmHooks: boolean;
}

interface Group {
  namespace: string;
  source: string;
  rows: Row[];
}

export function registerPlan(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
  policies: PolicySource = noPolicies,
): void {
  const cmd = program
    .command('plan')
    .description('read-only: what will be deleted in the coming window, by namespace and TTL source')
    .argument('[kind]', 'a kind or kinds, comma-separated: jobs, pods, jobs,pods (default), workflows, ...')
    .addOption(allNamespacesOption())
    .addOption(selectorOption())
    .option('--until <duration>', 'end of the window, from now', '1h')
    .option('--since <duration>', 'start of the window, from now (default 0: includes objects already due)')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json', 'yaml'])
        .default('table'),
    )
    .addOption(helmHooksOption())
    .addHelpText(
      'after',
      `
Counts finished objects whose TTL expires between now+since and now+until on the API server's
clock; with --since 0 (the default) objects already due count too ("now"). Reads only: nothing is
changed. Running objects, kept ones (kttl.dev/keep), invalid TTLs and objects without a TTL are
counted in the footer, not in the plan.

Examples:
  kttl plan                       # the next hour in the current namespace
  kttl plan -A --until 1d         # the next day, everywhere
  kttl plan jobs --since 1h --until 2h -o json`,
    )
    .addHelpText('after', kindsHelp())
    .action(async (kindArg: string | undefined, flags: PlanFlags) => {
      exitQuietlyOnEpipe();
      const until = durationSeconds(flags.until, '--until');
      const since = flags.since !== undefined ? durationSeconds(flags.since, '--since') : 0;
      if (since > until) throw new UserError(`--since ${flags.since} is after --until ${flags.until}`);
      const spellings = parseKindList(kindArg ?? 'jobs,pods');
      await withCluster(globals(), env, async (c) => {
        const kinds = await kindResolver(c).resolveAll(spellings);
        const namespace = flags.allNamespaces ? undefined : c.namespace;
        const { rows, nowMs } = await loadRows(c, {
          kinds,
          namespace,
          selector: flags.selector,
          policies: await policies(c.http),
          helmHooks: flags.helmHooks,
        });
        const from = nowMs + since * 1000;
        const to = nowMs + until * 1000;
        const inWindow = rows
          .filter((r) => r.judgement.expireAtMs !== undefined && r.judgement.state !== 'being-deleted')
          .filter((r) => {
            const at = r.judgement.expireAtMs!;
            return at <= to && (since === 0 ? true : at >= from);
          })
          .sort(byExpiry);
        const groups = new Map<string, Group>();
        for (const r of inWindow) {
          const key = `${r.summary.namespace}\u0000${r.source}`;
          let g = groups.get(key);
          if (!g) {
            g = { namespace: r.summary.namespace, source: r.source, rows: [] };
            groups.set(key, g);
          }
          g.rows.push(r);
        }
        const sorted = [...groups.values()].sort(
          (a, b) => a.namespace.localeCompare(b.namespace) || a.source.localeCompare(b.source),
        );
        const notPlanned = {
          running: rows.filter((r) => r.judgement.state === 'not-finished').length,
          kept: rows.filter((r) => r.judgement.state === 'keep').length,
          invalid: rows.filter((r) => r.judgement.state === 'invalid').length,
          noTtl: rows.filter((r) => r.judgement.state === 'no-ttl').length,
          later: rows.filter((r) => r.judgement.state === 'pending' && r.judgement.expireAtMs! > to).length,
          unknownFinish: rows.filter((r) => r.judgement.state === 'no-finish-time').length,
          deleting: rows.filter((r) => r.judgement.state === 'being-deleted').length,
        };
        const at = (ms: number) => (ms <= nowMs ? 'now' : relative(ms, nowMs));
        if (flags.output !== 'table') {
          const doc = {
            now: isoTime(nowMs),
            clock: c.clock().source,
            namespace: namespace ?? null,
            window: { from: isoTime(from), until: isoTime(to) },
            total: inWindow.length,
            groups: sorted.map((g) => ({
              namespace: g.namespace,
              source: g.source,
              count: g.rows.length,
              earliest: isoTime(g.rows[0]!.judgement.expireAtMs!),
              latest: isoTime(g.rows[g.rows.length - 1]!.judgement.expireAtMs!),
              objects: g.rows.map((r) => ({
                kind: r.summary.kind,
                name: r.summary.name,
                ttl: r.ttl,
                deleteAt: isoTime(r.judgement.expireAtMs!),
              })),
            })),
            notPlanned,
          };
          out(flags.output === 'json' ? json(doc) : yaml(doc));
          return;
        }
        const window = `${since === 0 ? 'now' : `now+${flags.since}`} .. now+${flags.until} (${isoTime(from)} .. ${isoTime(to)})`;
        if (inWindow.length === 0) {
          out(`Nothing to delete ${whereText(namespace)} in ${window}.`);
        } else {
          out(
            table(
              ['NAMESPACE', 'SOURCE', 'COUNT', 'EARLIEST', 'LATEST', 'FIRST'],
              sorted.map((g) => [
                g.namespace,
                g.source,
                String(g.rows.length),
                at(g.rows[0]!.judgement.expireAtMs!),
                at(g.rows[g.rows.length - 1]!.judgement.expireAtMs!),
                `${g.rows[0]!.kind.singular}/${g.rows[0]!.summary.name}`,
              ]),
            ),
          );
          out(
            `${inWindow.length} object${inWindow.length === 1 ? '' : 's'} (${kindsText(kinds)}) to delete ${whereText(namespace)} in ${window}; first ${at(inWindow[0]!.judgement.expireAtMs!)} (${isoTime(inWindow[0]!.judgement.expireAtMs!)})`,
          );
        }
        const foot = [
          notPlanned.later && `${notPlanned.later} later`,
          notPlanned.running && `${notPlanned.running} running`,
          notPlanned.noTtl && `${notPlanned.noTtl} without a TTL`,
          notPlanned.kept && `${notPlanned.kept} kept`,
          notPlanned.invalid && `${notPlanned.invalid} with an invalid TTL`,
          notPlanned.unknownFinish && `${notPlanned.unknownFinish} with no finish time`,
          notPlanned.deleting && `${notPlanned.deleting} already being deleted`,
        ].filter(Boolean);
        if (foot.length > 0) err(`not in the plan: ${foot.join(', ')}`);
      });
    });
  oneLineErrors(cmd);
}
