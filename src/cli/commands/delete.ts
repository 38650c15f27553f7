// `kttl delete KIND/NAME... | [KIND] --finished`: delete now, after showing what goes and asking.
// Every DELETE carries the uid and resourceVersion that were shown (deleteWithPreconditions), with
// upstream's cascade (Jobs Foreground, Pods Background). An unfinished object is never deleted
// unless it is named explicitly AND --force is given.
import { type Command, Option } from 'commander';
import { limitConcurrency } from '../../kube/concurrency.ts';
import { deleteWithPreconditions } from '../../kube/deleter.ts';
import { kindKey } from '../../kube/resources.ts';
import type { PropagationPolicy } from '../../rules/types.ts';
import { UserError } from '../errors.ts';
import { oneOf } from '../flags.ts';
import type { GlobalOptions } from '../program.ts';
import { type Cluster, explainFailure, getObject, withCluster } from '../shared/cluster.ts';
import { defaultPropagationText, kindResolver, kindsHelp } from '../shared/kinds.ts';
import { kindsText, loadRows, whereText } from '../shared/load.ts';
import {
  allNamespacesOption,
  durationSeconds,
  helmHooksOption,
  oneLineErrors,
  selectorOption,
} from '../shared/options.ts';
import { colors, err, exitQuietlyOnEpipe, out, table } from '../shared/output.ts';
import { noPolicies, type PolicySource } from '../shared/policies.ts';
import { aborted, confirm, ensureCanAsk } from '../shared/prompt.ts';
import { type KindInfo, kubectlKind, parseKindList, parseRef, refText } from '../shared/refs.ts';
import { evaluate, finishedCell, type JudgeContext, type Row, summarize } from '../shared/rows.ts';

interface DeleteFlags {
  finished?: boolean;
  olderThan?: string;
  selector?: string;
  allNamespaces?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  force?: boolean;
  propagationPolicy?: PropagationPolicy;
  helmHooks: boolean;
}

/** Above this many objects, one progress line replaces a line per object. */
const PROGRESS_ABOVE = 10;
const CONCURRENCY = 5;

export function registerDelete(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
  policies: PolicySource = noPolicies,
): void {
  const cmd = program
    .command('delete')
    .description('delete objects now (named ones, or every finished one), after confirmation')
    .argument(
      '[refs...]',
      'KIND/NAME... (e.g. job/a pod/b workflow/c); with --finished: a kind (jobs, pods, workflows, ...), default jobs',
    )
    .option('--finished', 'every finished object (Succeeded or Failed) of the kind in the namespace')
    .option(
      '--older-than <duration>',
      'with --finished: only those finished at least this long ago (e.g. 2h, 4d)',
    )
    .addOption(selectorOption())
    .addOption(allNamespacesOption())
    .option('--dry-run', 'show what would be deleted; delete nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--force', 'also delete named objects that have not finished')
    .addOption(
      new Option(
        '--propagation-policy <policy>',
        `cascade: Foreground, Background or Orphan (default: ${defaultPropagationText()})`,
      ).argParser(oneOf(['Foreground', 'Background', 'Orphan'] as const)),
    )
    .addOption(helmHooksOption())
    .addHelpText(
      'after',
      `
kttl shows what will be deleted and asks (y/N) unless --yes; without a terminal it refuses unless
--yes. An unfinished object is deleted only when named and --force is given; --finished never
touches one. --finished also skips objects marked kttl.dev/keep=true (name them to delete them)
and those already being deleted. Each DELETE carries the object's uid and resourceVersion: an
object that changed after it was shown is left alone (run the command again).

Examples:
  kttl delete job/train-42                      # asks first
  kttl delete job/a job/b --yes -n team-a
  kttl delete --finished --older-than 4d -A     # every Job finished 4+ days ago, everywhere
  kttl delete pods --finished -l app=batch --dry-run
  kttl delete pipelineruns --finished --older-than 1d
  kttl delete job/stuck --force                 # even though it is still running`,
    )
    .addHelpText('after', kindsHelp())
    .action(async (refArgs: string[], flags: DeleteFlags) => {
      exitQuietlyOnEpipe();
      const olderThan =
        flags.olderThan !== undefined ? durationSeconds(flags.olderThan, '--older-than') : undefined;
      if (flags.finished) {
        if (refArgs.some((a) => a.includes('/')))
          throw new UserError('name objects (KIND/NAME) or use --finished, not both');
        if (refArgs.length > 1)
          throw new UserError(`expected at most one kind with --finished, got ${refArgs.length}`);
        const spellings = parseKindList(refArgs[0] ?? 'jobs');
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
          const finished = loaded.rows.filter((r) => r.summary.finish !== null);
          const kept = finished.filter((r) => r.judgement.state === 'keep');
          const deleting = finished.filter((r) => r.judgement.state === 'being-deleted');
          let targets = finished.filter(
            (r) => r.judgement.state !== 'keep' && r.judgement.state !== 'being-deleted',
          );
          if (olderThan !== undefined) {
            // A finish time is needed to be "older than"; one without (a Pod with no container
            // finishedAt) is never old enough.
            targets = targets.filter((r) => {
              const at = r.summary.finish?.atMs;
              return at != null && loaded.nowMs - at >= olderThan * 1000;
            });
          }
          targets.sort(
            (a, b) =>
              a.summary.namespace.localeCompare(b.summary.namespace) ||
              a.summary.name.localeCompare(b.summary.name),
          );
          if (kept.length > 0)
            err(
              `skipping ${kept.length} object${kept.length > 1 ? 's' : ''} marked kttl.dev/keep=true (name ${kept.length > 1 ? 'them' : 'it'} to delete ${kept.length > 1 ? 'them' : 'it'})`,
            );
          if (deleting.length > 0) err(`skipping ${deleting.length} already being deleted`);
          if (targets.length === 0) {
            out(
              `No finished ${kindsText(kinds)}${olderThan !== undefined ? ` older than ${flags.olderThan}` : ''} found ${whereText(namespace)}: nothing to delete.`,
            );
            return;
          }
          await deleteRows(c, targets, loaded.nowMs, namespace === undefined, flags);
        });
        return;
      }
      if (refArgs.length === 0)
        throw new UserError('name objects to delete (KIND/NAME...) or pass --finished');
      if (olderThan !== undefined) throw new UserError('--older-than works with --finished');
      if (flags.allNamespaces)
        throw new UserError('-A works with --finished; name objects in one namespace (-n)');
      if (flags.selector) throw new UserError('-l works with --finished');
      const spellings = refArgs.map(parseRef);
      await withCluster(globals(), env, async (c) => {
        const refs = await kindResolver(c).resolveRefs(spellings);
        const provider = await policies(c.http);
        const rows: Row[] = [];
        const seen = new Set<string>();
        for (const ref of refs) {
          const key = `${kindKey(ref.kind.resource)}/${ref.name}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const raw = await getObject(c, ref.kind.resource, c.namespace, ref.name);
          rows.push(evaluate(ref.kind, summarize(ref.kind, raw, provider), judgeCtx(c, provider, flags)));
        }
        const unfinished = rows.filter((r) => r.summary.finish === null);
        if (unfinished.length > 0 && !flags.force) {
          const names = unfinished.map((r) => refText(r.kind, r.summary.name));
          throw new UserError(
            unfinished.length === 1
              ? `${names[0]} has not finished (Running): pass --force to delete it anyway`
              : `${unfinished.length} objects have not finished (${names.join(', ')}): pass --force to delete them anyway`,
          );
        }
        await deleteRows(c, rows, c.now(), false, flags);
      });
    });
  oneLineErrors(cmd);
}

function judgeCtx(c: Cluster, policies: JudgeContext['policies'], flags: DeleteFlags): JudgeContext {
  return { nowMs: c.now(), policies, helmHooks: flags.helmHooks };
}

function propagationFor(kind: KindInfo, flags: DeleteFlags): PropagationPolicy {
  return flags.propagationPolicy ?? kind.defaultPropagation;
}

async function deleteRows(
  c: Cluster,
  rows: Row[],
  nowMs: number,
  showNamespace: boolean,
  flags: DeleteFlags,
) {
  const col = colors();
  const head = [
    ...(showNamespace ? ['NAMESPACE'] : []),
    'NAME',
    'KIND',
    'STATUS',
    'FINISHED',
    'TTL',
    'SOURCE',
    'EXPIRES IN',
  ];
  const body = rows.map((r) => [
    ...(showNamespace ? [r.summary.namespace] : []),
    r.summary.name,
    r.summary.kind,
    r.status === 'Running' ? col.yellow(r.status) : r.status,
    finishedCell(r, nowMs),
    r.ttl,
    r.source,
    r.expiresIn,
  ]);
  const n = rows.length;
  const objects = `${n} object${n > 1 ? 's' : ''}`;
  if (flags.dryRun) {
    out(table(head, body));
    out(`dry run: would delete ${objects}; nothing was deleted`);
    return;
  }
  if (!flags.yes) {
    ensureCanAsk({ yes: false, action: `delete ${objects}` });
    // The list goes where the question goes: it is part of the question.
    err(table(head, body));
    const running = rows.filter((r) => r.status === 'Running').length;
    const ok = await confirm(
      `Delete ${objects}${running > 0 ? col.red(` (${running} still running)`) : ''}?`,
      { yes: false, action: `delete ${objects}` },
    );
    if (!ok) throw aborted('nothing was deleted');
  }
  const progress = n > PROGRESS_ABOVE;
  const tty = process.stderr.isTTY === true;
  let done = 0;
  const counts = { deleted: 0, gone: 0, conflict: 0 };
  const conflicts: string[] = [];
  // A few objects one by one (their lines come out in order); many in parallel.
  const run = limitConcurrency(progress ? CONCURRENCY : 1);
  let failure: unknown;
  const started = Date.now();
  await Promise.all(
    rows.map((r) =>
      run(async () => {
        if (failure !== undefined) return;
        const s = r.summary;
        const resource = r.kind.resource;
        let result: Awaited<ReturnType<typeof deleteWithPreconditions>>;
        try {
          result = await deleteWithPreconditions(c.http, resource, s, propagationFor(r.kind, flags));
        } catch (e) {
          failure ??= explainFailure(e, c, 'delete', resource, s.namespace);
          return;
        }
        counts[result]++;
        done++;
        const name = `${kubectlKind(r.kind)} "${s.name}"${showNamespace ? ` in ${s.namespace}` : ''}`;
        if (result === 'conflict') conflicts.push(refText(r.kind, s.name));
        if (!progress) {
          if (result === 'deleted') out(`${name} deleted`);
          else if (result === 'gone') out(`${name} already gone`);
          else err(`${name} changed since it was shown: not deleted`);
        } else if (tty) {
          process.stderr.write(`\rdeleting: ${done}/${n}`);
        } else if (done % Math.max(1, Math.ceil(n / 10)) === 0 || done === n) {
          err(`deleting: ${done}/${n}`);
        }
      }),
    ),
  );
  if (progress && tty) process.stderr.write('\n');
  if (progress) {
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    out(
      `deleted ${counts.deleted} of ${n} objects in ${secs} s${counts.gone ? `, ${counts.gone} already gone` : ''}${counts.conflict ? `, ${counts.conflict} changed (not deleted)` : ''}`,
    );
  }
  if (failure !== undefined) throw failure;
  if (conflicts.length > 0) {
    throw new UserError(
      `${conflicts.length} object${conflicts.length > 1 ? 's' : ''} changed since shown and ${conflicts.length > 1 ? 'were' : 'was'} not deleted: ${conflicts.join(', ')} (run the command again)`,
    );
  }
}
