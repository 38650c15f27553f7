// `kttl logs KIND/NAME`: the last log lines kttl archived from a deleted object's pods, byte for
// byte, from the archive's read API (deletedobjects/log, docs/archive.md) with the user's own
// credentials. An object that still exists has no archived logs yet: the answer says so and how to
// read its live logs.
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import type { GlobalOptions } from '../program.ts';
import { withCluster } from '../shared/cluster.ts';
import { getLog, getRecord, listRecords } from '../shared/history-api.ts';
import { liveObject, recordKind } from '../shared/history-kinds.ts';
import {
  chooseLog,
  type HistoryFilter,
  listQuery,
  liveLogsCommand,
  selectRecords,
} from '../shared/history-model.ts';
import { kindsHelp } from '../shared/kinds.ts';
import { whereText } from '../shared/load.ts';
import { oneLineErrors } from '../shared/options.ts';
import { err, exitQuietlyOnEpipe } from '../shared/output.ts';
import { parseRef } from '../shared/refs.ts';

interface LogsFlags {
  container?: string;
  pod?: string;
}

export function registerLogs(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
): void {
  const cmd = program
    .command('logs')
    .description("print a deleted object's archived log lines (its pods' last lines, as kttl saved them)")
    .argument('<ref>', 'KIND/NAME of a deleted object, e.g. job/train-42 or pod/worker-0')
    .option('-c, --container <name>', 'the container (needed when the pod had several)')
    .option('--pod <name>', 'the pod (needed when the object had several)')
    .addHelpText(
      'after',
      `
The newest archived record of KIND/NAME in the namespace; its text goes to stdout exactly as it was
archived (the last --archive-log-lines lines, at most --archive-log-bytes; a note on stderr says
when the start was cut). For an object that still exists: its live logs are kubectl's.

Examples:
  kttl logs job/train-42 -n team-a
  kttl logs job/train-42 -c main --pod train-42-7xk2p
  kttl history job/train-42           # which pods and containers were archived`,
    )
    .addHelpText('after', kindsHelp())
    .action(async (refArg: string, flags: LogsFlags) => {
      exitQuietlyOnEpipe();
      const ref = parseRef(refArg);
      await withCluster(globals(), env, async (c) => {
        const ns = c.namespace;
        const [kind, live] = await Promise.all([
          recordKind(c, ref.kind),
          liveObject(c, ref.kind, ns, ref.name),
        ]);
        const filter: HistoryFilter = { kind, name: ref.name };
        const newest = selectRecords(await listRecords(c, ns, { ...listQuery(filter), max: 50 }), filter)[0];
        if (!newest) {
          if (live)
            throw new UserError(
              `${ref.text} still exists ${whereText(ns)}: kttl archives its logs when it deletes it; read them live with: ${liveLogsCommand(live, ref.name, ns, flags.container)}`,
            );
          throw new UserError(`no archived record of ${ref.text} ${whereText(ns)}`);
        }
        if (live && live.uid !== newest.object.uid)
          err(
            `note: these are the archived logs of an earlier ${ref.text} (uid ${newest.object.uid}); one of that name exists now: ${liveLogsCommand(live, ref.name, ns, flags.container)}`,
          );
        const record = await getRecord(c, ns, newest.metadata.name);
        const log = chooseLog(record, { container: flags.container, pod: flags.pod }, ref.text);
        if (log.error && log.bytes === 0)
          throw new UserError(
            `no log was archived for container ${log.container} of pod ${log.pod}: ${log.error}`,
          );
        if (log.error) err(`note: pod ${log.pod} container ${log.container}: ${log.error}`);
        const bytes = await getLog(c, ns, newest.metadata.name, { container: log.container, pod: log.pod });
        await new Promise<void>((resolve, reject) =>
          process.stdout.write(bytes, (e) => (e ? reject(e) : resolve())),
        );
        if (log.truncated)
          err(`note: the log of ${log.pod}/${log.container} was cut: these are its last lines only`);
      });
    });
  oneLineErrors(cmd);
}
