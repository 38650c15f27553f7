// `kttl history [KIND]`: what kttl deleted, newest first, from the archive's read API
// (deletedobjects.archive.kttl.dev, docs/archive.md) with the user's own credentials, so a user sees
// exactly the namespaces RBAC lets them read. `kttl history KIND/NAME`: the newest record of that
// object, laid out as `kttl explain` lays out a live one.
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Outcome } from '../../rules/types.ts';
import { UserError } from '../errors.ts';
import type { GlobalOptions } from '../program.ts';
import { withCluster } from '../shared/cluster.ts';
import { getRecord, listRecords } from '../shared/history-api.ts';
import { liveObject, recordKind } from '../shared/history-kinds.ts';
import { type HistoryFilter, listQuery, type RecordKind, selectRecords } from '../shared/history-model.ts';
import { historyListDoc, historyTable, recordText } from '../shared/history-render.ts';
import { kindsHelp } from '../shared/kinds.ts';
import { whereText } from '../shared/load.ts';
import { allNamespacesOption, durationSeconds, oneLineErrors, selectorOption } from '../shared/options.ts';
import { colors, err, exitQuietlyOnEpipe, json, out, yaml } from '../shared/output.ts';
import { parseKindList, parseRef } from '../shared/refs.ts';

interface HistoryFlags {
  allNamespaces?: boolean;
  selector?: string;
  since?: string;
  outcome?: Outcome;
  output: 'table' | 'wide' | 'json' | 'yaml' | 'text';
}

export function registerHistory(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
): void {
  const cmd = program
    .command('history')
    .description('list what kttl deleted (newest first) from its archive, or show one deleted object')
    .argument(
      '[what]',
      'a kind or kinds (default: every kind), or KIND/NAME for one object, e.g. job/train-42',
    )
    .addOption(allNamespacesOption())
    .addOption(selectorOption())
    .option('--since <duration>', 'only objects deleted within this long, e.g. 1h, 7d')
    .addOption(
      new Option('--outcome <outcome>', 'only objects that ended so').choices(['succeeded', 'failed']),
    )
    .addOption(
      new Option('-o, --output <format>', 'output format (text: the KIND/NAME form)')
        .choices(['table', 'wide', 'json', 'yaml', 'text'])
        .default('table'),
    )
    .addHelpText(
      'after',
      `
Reads deletedobjects.archive.kttl.dev through the API server with your credentials: you see the
records of the namespaces where RBAC lets you list deletedobjects (the view, edit and admin roles
do). Columns: FINISHED and DELETED are ages; TTL SOURCE is the rule that gave the TTL; -o wide adds
the TTL, the record's state, cluster, the object's uid and the record's name.

Examples:
  kttl history                         # everything deleted in the current namespace
  kttl history jobs -n team-a --since 1d --outcome failed
  kttl history -A -l team=ml -o wide
  kttl history job/train-42            # the newest record of job/train-42: TTL, logs, Events
  kttl history job/train-42 -o yaml    # the whole record, with the archived manifest`,
    )
    .addHelpText('after', kindsHelp())
    .action(async (what: string | undefined, flags: HistoryFlags) => {
      exitQuietlyOnEpipe();
      const one = what?.includes('/') ?? false;
      if (one && flags.allNamespaces) throw new UserError('KIND/NAME is looked up in one namespace: drop -A');
      if (!one && flags.output === 'text')
        throw new UserError('-o text is for KIND/NAME (lists: -o table or wide)');
      const ref = one ? parseRef(what!) : undefined;
      const spellings = !one && what ? parseKindList(what) : [];
      const sinceSeconds = flags.since !== undefined ? durationSeconds(flags.since, '--since') : undefined;
      await withCluster(globals(), env, async (c) => {
        const namespace = flags.allNamespaces ? undefined : c.namespace;
        const base: HistoryFilter = {
          outcome: flags.outcome,
          labelSelector: flags.selector,
          deletedAfterMs: sinceSeconds !== undefined ? c.now() - sinceSeconds * 1000 : undefined,
        };
        if (ref) {
          const kind = await recordKind(c, ref.kind);
          const filter: HistoryFilter = { ...base, kind, name: ref.name };
          // Newest first: the first that matches is the one (a kind's group is checked here).
          const found = selectRecords(
            await listRecords(c, namespace, { ...listQuery(filter), max: 50 }),
            filter,
          );
          const newest = found[0];
          if (!newest) {
            const live = await liveObject(c, ref.kind, c.namespace, ref.name);
            throw new UserError(
              `no archived record of ${ref.text} ${whereText(c.namespace)}${
                live ? `: it still exists (kttl explain ${ref.text} -n ${c.namespace})` : ''
              }`,
            );
          }
          const record = await getRecord(c, newest.metadata.namespace, newest.metadata.name);
          if (flags.output === 'json') out(json(record));
          else if (flags.output === 'yaml') out(yaml(record));
          else out(recordText(record, { nowMs: c.now(), refText: ref.text, colors: colors() }));
          if (found.length > 1)
            err(
              `(${found.length - 1} older record${found.length > 2 ? 's' : ''} of ${ref.text}: kttl history ${ref.kind.text} -o wide)`,
            );
          return;
        }
        const kinds: RecordKind[] = [];
        for (const s of spellings) kinds.push(await recordKind(c, s));
        // One list per kind the API can select; one unfiltered list for kinds matched here.
        const filters: HistoryFilter[] =
          kinds.length === 0
            ? [base]
            : kinds.some((k) => !k.kind)
              ? [{ ...base }]
              : kinds.map((kind) => ({ ...base, kind }));
        const items = [];
        for (const f of filters) items.push(...(await listRecords(c, namespace, listQuery(f))));
        const rows = selectRecords(items, base).filter(
          (i) => kinds.length === 0 || kinds.some((k) => k.matches(i.object)),
        );
        if (flags.output === 'json' || flags.output === 'yaml') {
          const doc = historyListDoc(rows);
          out(flags.output === 'json' ? json(doc) : yaml(doc));
          return;
        }
        if (rows.length === 0) {
          err(
            `No deleted ${kinds.length > 0 ? kinds.map((k) => k.text).join(' or ') : 'objects'} archived ${whereText(namespace)}.`,
          );
          return;
        }
        out(
          historyTable(rows, { namespace, wide: flags.output === 'wide', nowMs: c.now(), colors: colors() }),
        );
      });
    });
  oneLineErrors(cmd);
}
