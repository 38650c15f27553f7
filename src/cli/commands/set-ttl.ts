// `kttl set-ttl KIND/NAME... DURATION`: sets a TTL on existing objects, finished or not. Jobs get
// the native .spec.ttlSecondsAfterFinished when that already is their TTL source, or when nothing
// else is set and no outcome is asked for; otherwise the kttl.dev/ttl[-succeeded|-failed]
// annotation. Merge patches carry the resourceVersion that was judged, so a concurrent change is
// never overwritten blindly.
import { type Command, Option } from 'commander';
import { isApiError } from '../../kube/errors.ts';
import type { RawObject } from '../../kube/objects.ts';
import { formatDuration } from '../../rules/duration.ts';
import { describeDecision } from '../../rules/ttl.ts';
import { ANNOTATIONS, type ObjectSummary, type Outcome } from '../../rules/types.ts';
import { UserError } from '../errors.ts';
import type { GlobalOptions } from '../program.ts';
import { type Cluster, getObject, patchObject, withCluster } from '../shared/cluster.ts';
import { kindResolver, kindsHelp } from '../shared/kinds.ts';
import { durationSeconds, oneLineErrors } from '../shared/options.ts';
import { err, exitQuietlyOnEpipe, out } from '../shared/output.ts';
import { noPolicies, type PolicySource } from '../shared/policies.ts';
import { aborted, confirm } from '../shared/prompt.ts';
import { kubectlName, type ObjectRef, parseRef, refText } from '../shared/refs.ts';
import { evaluate, type JudgeContext, summarize } from '../shared/rows.ts';
import { humanDuration } from '../shared/time.ts';

interface SetTtlFlags {
  outcome?: Outcome;
  yes?: boolean;
}

interface Change {
  ref: ObjectRef;
  obj: ObjectSummary;
  /** `field` or an annotation key. */
  target: 'field' | string;
  patch: Record<string, unknown>;
  after: ObjectSummary;
  /** Finished, and the new TTL has already run out. */
  expiresNow: boolean;
  /** What the change means once applied. */
  summary: string;
  /** A higher rule still decides (keep, hook, an outcome-specific annotation, an invalid value). */
  note?: string;
}

const TTL_ANNOTATIONS = [ANNOTATIONS.ttl, ANNOTATIONS.ttlSucceeded, ANNOTATIONS.ttlFailed];

function chooseTarget(ref: ObjectRef, obj: ObjectSummary, outcome: Outcome | undefined, ctx: JudgeContext) {
  if (outcome) return outcome === 'succeeded' ? ANNOTATIONS.ttlSucceeded : ANNOTATIONS.ttlFailed;
  // Only batch Jobs have the native field kttl reads (a Volcano Job is kind Job too).
  if (ref.kind.resource.kind !== 'Job' || ref.kind.resource.group !== 'batch') return ANNOTATIONS.ttl;
  const row = evaluate(ref.kind, obj, ctx);
  const fieldIsSource = [row.decision, row.ifSucceeded, row.ifFailed].some(
    (d) => d?.action === 'ttl' && d.source === 'field',
  );
  const anyAnnotation = TTL_ANNOTATIONS.some((k) => Object.hasOwn(obj.annotations, k));
  return fieldIsSource || !anyAnnotation ? 'field' : ANNOTATIONS.ttl;
}

function plan(
  ref: ObjectRef,
  raw: RawObject,
  text: string,
  seconds: number,
  outcome: Outcome | undefined,
  ctx: JudgeContext,
): Change {
  const obj = summarize(ref.kind, raw, ctx.policies);
  const target = chooseTarget(ref, obj, outcome, ctx);
  const rv = obj.resourceVersion;
  const patch =
    target === 'field'
      ? { metadata: { resourceVersion: rv }, spec: { ttlSecondsAfterFinished: seconds } }
      : { metadata: { resourceVersion: rv, annotations: { [target]: text } } };
  const after: ObjectSummary =
    target === 'field'
      ? { ...obj, nativeTtlSeconds: seconds }
      : { ...obj, annotations: { ...obj.annotations, [target]: text } };
  const row = evaluate(ref.kind, after, ctx);
  const setText =
    target === 'field'
      ? `.spec.ttlSecondsAfterFinished=${seconds} (${formatDuration(seconds)})`
      : `annotation ${target}=${text}`;
  // Does the value we write decide, for the outcome(s) it is meant for?
  const mine = (detail: string) =>
    target === 'field'
      ? detail === `field .spec.ttlSecondsAfterFinished=${seconds}`
      : detail === `annotation ${target}=${text}`;
  const outcomes: Outcome[] = obj.finish
    ? [obj.finish.outcome]
    : outcome
      ? [outcome]
      : ['succeeded', 'failed'];
  const notes: string[] = [];
  for (const o of outcomes) {
    const d = o === 'succeeded' ? row.ifSucceeded : row.ifFailed;
    if (d.action === 'ttl' && mine(d.detail)) continue;
    notes.push(`${obj.finish ? '' : `if it ${o}: `}${describeDecision(d)} still decides`);
  }
  let summary: string;
  if (obj.finish === null) summary = `${setText}; applies once it finishes`;
  else if (outcome && obj.finish.outcome !== outcome)
    summary = `${setText}; it ${obj.finish.outcome}, so this does not apply`;
  else if (row.judgement.state === 'pending')
    summary = `${setText}; expires in ${humanDuration(row.judgement.leftMs ?? 0)}`;
  else if (row.judgement.state === 'expired') summary = `${setText}; expired: the controller deletes it now`;
  else summary = setText;
  const change: Change = {
    ref,
    obj,
    target,
    patch,
    after,
    expiresNow: row.judgement.state === 'expired' && obj.finish !== null && notes.length === 0,
    summary,
  };
  // A value for the other outcome is no news; a higher rule overriding ours is.
  if (notes.length > 0 && !(outcome && obj.finish && obj.finish.outcome !== outcome))
    change.note = notes.join('; ');
  return change;
}

export function registerSetTtl(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
  policies: PolicySource = noPolicies,
): void {
  const cmd = program
    .command('set-ttl')
    .description('set the TTL of existing objects (finished or not)')
    .argument('<ref-and-duration...>', 'KIND/NAME... DURATION, e.g. job/a job/b 2h')
    .addOption(
      new Option(
        '--outcome <outcome>',
        'only for this outcome: kttl.dev/ttl-succeeded or kttl.dev/ttl-failed',
      ).choices(['succeeded', 'failed']),
    )
    .option('-y, --yes', 'do not ask, even if an object would be deleted at once')
    .addHelpText(
      'after',
      `
DURATION is Go/Run:ai style: 90s, 5m, 3h, 4d, 2w, 1h30m, 0 (at once), up to 2147483647s.
Where it is written:
  Jobs, without --outcome, when .spec.ttlSecondsAfterFinished is already the TTL source or no
  kttl.dev/ttl* annotation is set:           .spec.ttlSecondsAfterFinished (the native field)
  otherwise (and for every other kind):      annotation kttl.dev/ttl
  with --outcome succeeded / failed:          annotation kttl.dev/ttl-succeeded / kttl.dev/ttl-failed
If an object has finished and the new TTL has already run out, it will be deleted at once:
kttl says so and asks first (unless --yes; without a terminal it refuses unless --yes).

Examples:
  kttl set-ttl job/train-42 4d
  kttl set-ttl job/a job/b 2h -n team-a
  kttl set-ttl job/train-42 7d --outcome failed     # keep failures longer
  kttl set-ttl pod/debug-shell 30m
  kttl set-ttl workflow/nightly 1d`,
    )
    .addHelpText('after', kindsHelp())
    .action(async (args: string[], flags: SetTtlFlags) => {
      exitQuietlyOnEpipe();
      if (args.length < 2)
        throw new UserError('expected KIND/NAME... DURATION (e.g. kttl set-ttl job/train-42 4d)');
      const text = args[args.length - 1]!.trim();
      const seconds = durationSeconds(text);
      const spellings = args.slice(0, -1).map(parseRef);
      await withCluster(globals(), env, async (c) => {
        const refs = await kindResolver(c).resolveRefs(spellings);
        const provider = await policies(c.http);
        const raws: RawObject[] = [];
        for (const ref of refs) raws.push(await getObject(c, ref.kind.resource, c.namespace, ref.name));
        const ctx = (): JudgeContext => ({ nowMs: c.now(), policies: provider, helmHooks: true });
        const changes = refs.map((ref, i) => plan(ref, raws[i]!, text, seconds, flags.outcome, ctx()));
        const now = changes.filter((ch) => ch.expiresNow);
        for (const ch of now) {
          const f = ch.obj.finish!;
          err(
            `warning: ${refText(ch.ref.kind, ch.obj.name)} finished ${f.atMs !== null ? `${humanDuration(c.now() - f.atMs)} ago` : 'already'}: with a TTL of ${formatDuration(seconds)} it will be deleted now`,
          );
        }
        if (now.length > 0) {
          const ok = await confirm(
            `Set the TTL anyway (${now.length} object${now.length > 1 ? 's' : ''} will be deleted now)?`,
            {
              yes: flags.yes === true,
              action: `set a TTL that deletes ${now.length} object${now.length > 1 ? 's' : ''} at once`,
            },
          );
          if (!ok) throw aborted('no TTL was changed');
        }
        for (const ch of changes) await apply(c, ch, text, seconds, flags.outcome, ctx);
      });
    });
  oneLineErrors(cmd);
}

async function apply(
  c: Cluster,
  first: Change,
  text: string,
  seconds: number,
  outcome: Outcome | undefined,
  ctx: () => JudgeContext,
): Promise<void> {
  let ch = first;
  const r = ch.ref.kind.resource;
  for (let attempt = 0; ; attempt++) {
    try {
      await patchObject(c, r, c.namespace, ch.obj.name, ch.patch);
      break;
    } catch (e) {
      // Changed since we read it: read again and recompute (at most twice).
      if (!isApiError(e, 409) || attempt >= 2) throw e;
      const raw = await getObject(c, r, c.namespace, ch.obj.name);
      ch = plan(ch.ref, raw, text, seconds, outcome, ctx());
    }
  }
  out(`${kubectlName(ch.ref.kind, ch.obj.name)}: ${ch.summary}`);
  if (ch.note) err(`note: ${refText(ch.ref.kind, ch.obj.name)}: ${ch.note}`);
}
