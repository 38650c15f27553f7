// Options and conventions shared by the workload commands.
import { type Command, Option } from 'commander';
import { parseDuration } from '../../rules/duration.ts';
import { UserError } from '../errors.ts';
import { parseBool } from '../flags.ts';

/**
 * Usage errors (unknown option, missing argument, bad choice) as ONE line on stderr with a pointer
 * to --help, instead of commander's message plus a second hint line.
 */
export function oneLineErrors(cmd: Command): Command {
  const name = `kttl ${cmd.name()}`;
  return cmd.showHelpAfterError(false).configureOutput({
    outputError: (str, write) => write(`${str.trimEnd()} (see '${name} --help')\n`),
  });
}

export function outputOption(formats: readonly string[], fallback: string): Option {
  return new Option('-o, --output <format>', 'output format').choices(formats).default(fallback);
}

export function allNamespacesOption(): Option {
  return new Option('-A, --all-namespaces', 'all namespaces (the NAMESPACE column is shown)');
}

export function selectorOption(): Option {
  return new Option('-l, --selector <selector>', 'label selector, e.g. team=a,tier!=gpu');
}

/** Judged as a controller run with the same --helm-hooks would judge (on by default, as there). */
export function helmHooksOption(): Option {
  return new Option(
    '--helm-hooks [bool]',
    'honour helm.sh/hook-delete-policy like kots.io/hook-delete-policy',
  )
    .argParser(parseBool)
    .default(true);
}

/** Judged as a controller run with the same --native-jobs would judge (handle, as there). */
export function nativeJobsOption(): Option {
  return new Option(
    '--native-jobs <mode>',
    'judge as `kttl run --native-jobs`: handle Jobs whose only TTL is .spec.ttlSecondsAfterFinished, or leave them to the native controller',
  )
    .choices(['handle', 'leave'])
    .default('handle');
}

/** A Go/Run:ai duration in whole seconds; a bad one is a user error with parseDuration's message. */
export function durationSeconds(text: string, flag?: string): number {
  const d = parseDuration(text);
  if (!d.ok) throw new UserError(flag ? `${flag}: ${d.error}` : d.error);
  return d.seconds;
}

/** `K=V` pairs (repeatable flags) into a map; a malformed pair is a user error. */
export function keyValues(pairs: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UserError(`${flag}: expected KEY=VALUE, got ${JSON.stringify(p)}`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
