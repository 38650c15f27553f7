// `kttl submit NAME --image IMG [--ttl-after-finish D] -- CMD ARGS...`: Run:ai's
// `runai submit --ttl-after-finish 2h`, as a plain batch/v1 Job with the native
// .spec.ttlSecondsAfterFinished (so it works with or without kttl's controller). `4d` works.
import type { Command } from 'commander';
import { JOBS } from '../../kube/resources.ts';
import { formatDuration } from '../../rules/duration.ts';
import { jobFinish } from '../../rules/finish.ts';
import { UserError } from '../errors.ts';
import { parsePositiveInt } from '../flags.ts';
import type { GlobalOptions } from '../program.ts';
import { type Cluster, createObject, getObject, withCluster } from '../shared/cluster.ts';
import { collect, durationSeconds, keyValues, oneLineErrors } from '../shared/options.ts';
import { err, exitQuietlyOnEpipe, out } from '../shared/output.ts';
import { isoTime } from '../shared/time.ts';

interface SubmitFlags {
  image?: string;
  ttlAfterFinish?: string;
  env?: string[];
  label?: string[];
  backoffLimit?: number;
  wait?: boolean;
  timeout?: string;
}

const POLL_MS = 500;

export function registerSubmit(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
): void {
  const cmd = program
    .command('submit')
    .description('create a Job that is deleted a while after it finishes (Run:ai style)')
    .argument('<name>', 'Job name')
    .argument('[command...]', 'command and arguments, after --')
    .option('-i, --image <image>', 'container image (required)')
    .option(
      '--ttl-after-finish <duration>',
      'delete the Job this long after it finishes: 5s, 2m, 3h, 4d, 1h30m',
    )
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect)
    .option('--label <KEY=VALUE>', 'label on the Job and its pods (repeatable)', collect)
    .option(
      '--backoff-limit <n>',
      "retries before the Job is Failed (default: the API server's, 6)",
      parseBackoff,
    )
    .option('--wait', 'wait until the Job is Complete or Failed; exit 0 if it succeeded, 1 if it failed')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 1)')
    .addHelpText(
      'after',
      `
The Job has one container "main", restartPolicy Never, and .spec.ttlSecondsAfterFinished from
--ttl-after-finish (Run:ai semantics: the native field; kttl's controller and the native
ttl-after-finished controller both honour it; days and weeks work: 4d, 2w).

Examples:
  kttl submit train-42 --image python:3.12 --ttl-after-finish 2h -- python train.py --epochs 3
  kttl submit nightly -n team-a --image busybox --ttl-after-finish 4d -e MODE=full -- sh -c 'echo hi'
  kttl submit smoke --image busybox --backoff-limit 0 --wait -- true`,
    )
    .action(async (name: string, command: string[], flags: SubmitFlags) => {
      exitQuietlyOnEpipe();
      if (!flags.image) throw new UserError('--image is required (e.g. --image busybox)');
      const ttl =
        flags.ttlAfterFinish !== undefined
          ? durationSeconds(flags.ttlAfterFinish, '--ttl-after-finish')
          : undefined;
      const timeout = flags.timeout !== undefined ? durationSeconds(flags.timeout, '--timeout') : undefined;
      if (timeout !== undefined && !flags.wait) throw new UserError('--timeout works with --wait');
      const envVars = keyValues(flags.env, '--env');
      const labels = keyValues(flags.label, '--label');
      await withCluster(globals(), env, async (c) => {
        const ns = c.namespace;
        const job = {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name, namespace: ns, ...(Object.keys(labels).length ? { labels } : {}) },
          spec: {
            ...(ttl !== undefined ? { ttlSecondsAfterFinished: ttl } : {}),
            ...(flags.backoffLimit !== undefined ? { backoffLimit: flags.backoffLimit } : {}),
            template: {
              ...(Object.keys(labels).length ? { metadata: { labels } } : {}),
              spec: {
                restartPolicy: 'Never',
                containers: [
                  {
                    name: 'main',
                    image: flags.image,
                    ...(command.length ? { command } : {}),
                    ...(Object.keys(envVars).length
                      ? { env: Object.entries(envVars).map(([k, v]) => ({ name: k, value: v })) }
                      : {}),
                  },
                ],
              },
            },
          },
        };
        await createObject(c, JOBS, ns, name, job);
        out(
          `job.batch/${name} created in namespace "${ns}"${ttl !== undefined ? `; deleted ${formatDuration(ttl)} after it finishes` : '; no TTL: it stays until deleted'}`,
        );
        if (flags.wait) await waitFor(c, ns, name, timeout);
      });
    });
  oneLineErrors(cmd);
}

function parseBackoff(v: string): number {
  // 0 is a valid backoffLimit (no retries); parsePositiveInt refuses it.
  return v === '0' ? 0 : parsePositiveInt(v);
}

async function waitFor(
  c: Cluster,
  ns: string,
  name: string,
  timeoutSeconds: number | undefined,
): Promise<void> {
  const deadline =
    timeoutSeconds !== undefined ? Date.now() + timeoutSeconds * 1000 : Number.POSITIVE_INFINITY;
  for (;;) {
    const raw = await getObject(c, JOBS, ns, name);
    // The same finish rule as the controller's: the first Complete/Failed condition with status True.
    const f = jobFinish(raw);
    if (f !== null) {
      const at = f.atMs !== null ? ` at ${isoTime(f.atMs)}` : '';
      if (f.outcome === 'succeeded') {
        out(`job.batch/${name} succeeded (${f.reason}${at})`);
        return;
      }
      const cond = (
        raw.status as { conditions?: Array<Record<string, string>> } | undefined
      )?.conditions?.find((x) => x.type === 'Failed' && x.status === 'True');
      const why = [cond?.reason, cond?.message].filter(Boolean).join(': ');
      err(`job.batch/${name} failed (${f.reason}${at})${why ? `: ${why}` : ''}`);
      process.exitCode = 1;
      return;
    }
    if (Date.now() >= deadline)
      throw new UserError(
        `timed out after ${formatDuration(timeoutSeconds ?? 0)} waiting for job.batch/${name} to finish`,
      );
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
