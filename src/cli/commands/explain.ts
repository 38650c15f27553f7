// `kttl explain KIND/NAME`: every TTL source with its value, which one wins and why, the finish
// time and where it comes from, the exact deletion time on the API server's clock, and what blocks
// deletion. Each candidate is judged by the real rules (resolveTtl on the object reduced to that
// one source), so this can never disagree with the controller.
import type { Command } from 'commander';
import { Option } from 'commander';
import { formatDuration } from '../../rules/duration.ts';
import { describeDecision, resolveTtl } from '../../rules/ttl.ts';
import {
  ANNOTATIONS,
  type ObjectSummary,
  type Outcome,
  type PolicyTtl,
  type TtlDecision,
} from '../../rules/types.ts';
import type { GlobalOptions } from '../program.ts';
import { getObject, withCluster } from '../shared/cluster.ts';
import { kindResolver, kindsHelp } from '../shared/kinds.ts';
import { helmHooksOption, oneLineErrors } from '../shared/options.ts';
import { colors, exitQuietlyOnEpipe, json, out, table, yaml } from '../shared/output.ts';
import { noPolicies, type PolicyProvider, type PolicySource } from '../shared/policies.ts';
import { parseRef, refText } from '../shared/refs.ts';
import { evaluate, type JudgeContext, summarize } from '../shared/rows.ts';
import { humanDuration, isoTime, relative } from '../shared/time.ts';

interface ExplainFlags {
  output: 'text' | 'json' | 'yaml';
  helmHooks: boolean;
}

const NATIVE_FIELD = '.spec.ttlSecondsAfterFinished';

interface Candidate {
  rule: number;
  source: 'keep' | 'hook' | 'annotation' | 'field' | 'policy';
  /** Annotation key, field path or policy reference. */
  where: string;
  /** The value as set on the object (or the policy's), undefined when not set. */
  value: string | undefined;
  /** The object reduced to this one source, for resolveTtl. */
  isolated: ObjectSummary;
  policy: PolicyTtl | null;
  disabled?: string;
}

type Verdict = 'not set' | 'does not apply' | 'wins' | 'shadowed' | 'invalid' | 'ignored';

interface CandidateResult {
  outcome: Outcome;
  verdict: Verdict;
  decision: TtlDecision;
  text: string;
}

function isolate(
  obj: ObjectSummary,
  annotations: Record<string, string>,
  nativeTtlSeconds: number | null,
): ObjectSummary {
  return { ...obj, annotations, nativeTtlSeconds };
}

function candidates(obj: ObjectSummary, policy: PolicyTtl | null, helmHooks: boolean): Candidate[] {
  const ann = (key: string): Candidate['value'] =>
    Object.hasOwn(obj.annotations, key) ? obj.annotations[key] : undefined;
  const annCandidate = (rule: number, source: Candidate['source'], key: string): Candidate => {
    const value = ann(key);
    return {
      rule,
      source,
      where: `annotation ${key}`,
      value,
      isolated: isolate(obj, value === undefined ? {} : { [key]: value }, null),
      policy: null,
    };
  };
  const list: Candidate[] = [
    annCandidate(1, 'keep', ANNOTATIONS.keep),
    annCandidate(2, 'hook', ANNOTATIONS.kotsHook),
    {
      ...annCandidate(2, 'hook', ANNOTATIONS.helmHook),
      ...(helmHooks ? {} : { disabled: 'ignored (--helm-hooks=false)' }),
    },
    annCandidate(3, 'annotation', ANNOTATIONS.ttlSucceeded),
    annCandidate(3, 'annotation', ANNOTATIONS.ttlFailed),
    annCandidate(3, 'annotation', ANNOTATIONS.ttl),
  ];
  if (obj.kind === 'Job') {
    list.push({
      rule: 4,
      source: 'field',
      where: `field ${NATIVE_FIELD}`,
      value: obj.nativeTtlSeconds === null ? undefined : String(obj.nativeTtlSeconds),
      isolated: isolate(obj, {}, obj.nativeTtlSeconds),
      policy: null,
    });
  }
  const policyValue = policy
    ? (['ttl', 'ttlSucceeded', 'ttlFailed'] as const)
        .filter((f) => policy[f] !== undefined)
        .map((f) => `${f}=${policy[f]}`)
        .join(' ')
    : undefined;
  list.push({
    rule: 5,
    source: 'policy',
    where: policy ? `policy ${policy.ref}` : 'policy',
    value: policyValue,
    isolated: isolate(obj, {}, null),
    policy,
  });
  return list;
}

/** The decision resolveTtl came to is this candidate's: same key (invalid) or same detail. */
function isWinner(single: TtlDecision, overall: TtlDecision): boolean {
  if (overall.action === 'invalid') return single.action === 'invalid' && single.key === overall.key;
  if (overall.action === 'none' || single.action === 'none' || single.action === 'invalid') return false;
  return single.action === overall.action && single.detail === overall.detail;
}

function judgeCandidate(
  cand: Candidate,
  outcome: Outcome,
  overall: TtlDecision,
  helmHooks: boolean,
): CandidateResult {
  const decision = resolveTtl(cand.isolated, outcome, { policy: cand.policy, helmHooks });
  const base = { outcome, decision };
  if (cand.value === undefined)
    return { ...base, verdict: 'not set', text: cand.source === 'policy' ? 'no policy matches' : 'not set' };
  if (cand.disabled) return { ...base, verdict: 'ignored', text: cand.disabled };
  if (decision.action === 'none') {
    const why =
      cand.source === 'keep'
        ? 'does not apply (only "true" keeps)'
        : cand.source === 'hook'
          ? `does not apply (no hook-${outcome})`
          : `does not apply to a ${outcome} object`;
    return { ...base, verdict: 'does not apply', text: why };
  }
  if (isWinner(decision, overall)) {
    return {
      ...base,
      verdict: 'wins',
      text:
        decision.action === 'invalid' ? `WINS, invalid: ${decision.message}` : `WINS: ${describe(decision)}`,
    };
  }
  if (decision.action === 'invalid')
    return { ...base, verdict: 'invalid', text: `invalid: ${decision.message}` };
  return { ...base, verdict: 'shadowed', text: `shadowed (${describe(decision)})` };
}

function describe(d: TtlDecision): string {
  if (d.action === 'ttl') return `ttl ${formatDuration(d.seconds)}`;
  if (d.action === 'keep') return 'keep';
  return d.action;
}

const RULE_NAMES: Record<number, string> = {
  1: 'kttl.dev/keep',
  2: 'a hook delete policy',
  3: 'the per-object kttl.dev/ttl* annotations',
  4: 'the Job field .spec.ttlSecondsAfterFinished',
  5: 'the matching policy',
};

function why(overall: TtlDecision, winner: Candidate | undefined, outcome: Outcome | null): string {
  const above =
    winner && winner.rule > 2
      ? ` Rules 1-${winner.rule - 1} are not set or do not apply.`
      : winner?.rule === 2
        ? ' Rule 1 is not set or does not apply.'
        : '';
  switch (overall.action) {
    case 'none':
      return 'No rule applies (no keep, hook, kttl.dev/ttl* annotation, native field or policy): kttl never deletes it.';
    case 'keep':
      return 'kttl.dev/keep=true is rule 1 and beats everything: the object is never deleted.';
    case 'invalid':
      return `${winner ? `The value of ${winner.where} (rule ${winner.rule}) is invalid` : 'A value is invalid'}: an invalid value is never skipped over, the object is kept and the controller raises a Warning Event.${above}`;
    case 'ttl': {
      const r = winner?.rule ?? 0;
      let s = `Rule ${r} (${RULE_NAMES[r] ?? overall.source}) gives the TTL: first match wins.${above}`;
      if (overall.source === 'hook')
        s += ` A hook delete policy listing hook-${outcome ?? 'succeeded'} deletes right after finishing.`;
      if (overall.source === 'annotation' && winner && winner.where !== `annotation ${ANNOTATIONS.ttl}`)
        s += ` The outcome-specific annotation wins over ${ANNOTATIONS.ttl}.`;
      return s;
    }
  }
}

export function registerExplain(
  program: Command,
  globals: () => GlobalOptions,
  env: Record<string, string | undefined>,
  policies: PolicySource = noPolicies,
): void {
  const cmd = program
    .command('explain')
    .description('show which rule gives an object its TTL, when it will be deleted, and what blocks it')
    .argument('<ref>', 'KIND/NAME, e.g. job/train-42, pod/worker-0 or workflow/nightly')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'),
    )
    .addOption(helmHooksOption())
    .addHelpText(
      'after',
      `
Sources are tried top to bottom, first match wins (SPEC section 2):
  1 kttl.dev/keep   2 hook delete policy   3 kttl.dev/ttl-succeeded|-failed, kttl.dev/ttl
  4 Jobs: .spec.ttlSecondsAfterFinished   5 TTLPolicy / ClusterTTLPolicy
The deletion time is judged on the API server's clock (the Date header of the GET response);
if the server sends none, on this machine's clock, and the output says which.

Examples:
  kttl explain job/train-42
  kttl explain pod/worker-0 -n team-a
  kttl explain job/train-42 -o json | jq .deletion`,
    )
    .addHelpText('after', kindsHelp())
    .action(async (refArg: string, flags: ExplainFlags) => {
      exitQuietlyOnEpipe();
      const spelling = parseRef(refArg);
      await withCluster(globals(), env, async (c) => {
        const ref = await kindResolver(c).resolveRef(spelling);
        const raw = await getObject(c, ref.kind.resource, c.namespace, ref.name);
        const provider: PolicyProvider = await policies(c.http);
        const obj = summarize(ref.kind, raw);
        const ctx: JudgeContext = { nowMs: c.now(), policies: provider, helmHooks: flags.helmHooks };
        const clock = c.clock();
        const row = evaluate(ref.kind, obj, ctx);
        const policy = provider.policyFor(obj);
        const cands = candidates(obj, policy, flags.helmHooks);
        const outcomes: Outcome[] = obj.finish ? [obj.finish.outcome] : ['succeeded', 'failed'];
        const overallFor = (o: Outcome) => (o === 'succeeded' ? row.ifSucceeded : row.ifFailed);
        const results = cands.map((cand) =>
          outcomes.map((o) => judgeCandidate(cand, o, overallFor(o), flags.helmHooks)),
        );
        const j = row.judgement;
        const f = obj.finish;
        const now = ctx.nowMs;

        // What keeps it from being deleted right now.
        const blockers: string[] = [];
        if (obj.deletionMs !== null)
          blockers.push(`already being deleted (deletionTimestamp ${isoTime(obj.deletionMs)})`);
        if (f === null)
          blockers.push('not finished (Running): an unfinished object is never deleted, whatever its TTL');
        if (obj.finalizers.length > 0)
          blockers.push(
            `finalizers ${obj.finalizers.join(', ')}: the object stays until they are removed (kttl never removes finalizers)`,
          );
        const d = row.decision;
        if (d?.action === 'keep') blockers.push(`keep: ${d.detail}`);
        if (d?.action === 'invalid') blockers.push(`invalid value: ${d.message}`);
        if (d?.action === 'none') blockers.push('no TTL applies');
        if (j.state === 'no-finish-time' && f?.timeSource === 'condition')
          blockers.push(
            `finished but the ${f.reason} condition has no lastTransitionTime: kept, as upstream does`,
          );
        if (j.state === 'pending') blockers.push(`TTL not expired yet: ${humanDuration(j.leftMs ?? 0)} left`);

        const overall = row.decision ?? row.ifSucceeded;
        const whyFor = (o: Outcome) =>
          why(
            overallFor(o),
            cands[results.findIndex((rs) => rs.find((r) => r.outcome === o)?.verdict === 'wins')],
            o,
          );
        const whys = outcomes.map(whyFor);
        const whyText =
          whys.length === 1 || whys[0] === whys[1]
            ? (whys[0] ?? '')
            : outcomes.map((o, i) => `If it ${o}: ${whys[i]}`).join(' ');
        const clockText =
          clock.source === 'server'
            ? `the API server's clock (Date header of the GET response; this machine's clock is ${offsetText(clock.offsetMs)})`
            : "this machine's clock (the API server sent no Date header)";
        let deletion: string;
        let deletionAt: string | null = null;
        if (j.state === 'pending' || j.state === 'expired') {
          deletionAt = isoTime(j.expireAtMs!);
          deletion =
            j.state === 'pending'
              ? `at ${deletionAt} (${relative(j.expireAtMs!, now)})`
              : `due since ${deletionAt} (${relative(j.expireAtMs!, now)}): the controller deletes it as soon as it sees it`;
        } else if (j.state === 'not-finished') {
          const ttls = outcomes.map((o) => {
            const od = overallFor(o);
            return `${o}: ${od.action === 'ttl' ? `${formatDuration(od.seconds)} after it finishes` : od.action === 'keep' ? 'kept' : od.action === 'invalid' ? 'kept (invalid value)' : 'never (no TTL)'}`;
          });
          deletion = `not before it finishes (${ttls.join('; ')})`;
        } else if (j.state === 'no-finish-time') {
          deletion =
            f?.timeSource === 'firstSeen' && d?.action === 'ttl'
              ? `${formatDuration(d.seconds)} after the controller first sees it finished (the pod has no container finishedAt)`
              : 'never: no finish time';
        } else if (j.state === 'being-deleted') {
          deletion = 'already being deleted';
        } else {
          deletion = 'never';
        }
        if (d?.action === 'ttl' && d.source === 'field')
          deletion +=
            '; with `kttl run --native-jobs=leave` the native ttl-after-finished controller deletes it instead';

        const finishText = f
          ? f.atMs !== null
            ? `${isoTime(f.atMs)} (${relative(f.atMs, now)}), from ${timeSourceText(f.timeSource, f.reason)}`
            : `unknown: ${f.timeSource === 'firstSeen' ? 'no container has a finishedAt; the controller counts from when it first sees it finished' : `the ${f.reason} condition has no lastTransitionTime`}`
          : 'not finished';
        const policyLines = provider.explain?.(obj) ?? [];

        if (flags.output !== 'text') {
          const doc = {
            object: {
              apiVersion: obj.apiVersion,
              kind: obj.kind,
              namespace: obj.namespace,
              name: obj.name,
              uid: obj.uid,
            },
            status: row.status,
            finish: f
              ? {
                  outcome: f.outcome,
                  reason: f.reason,
                  at: f.atMs !== null ? isoTime(f.atMs) : null,
                  timeSource: f.timeSource,
                }
              : null,
            candidates: cands.map((cand, i) => ({
              rule: cand.rule,
              source: cand.source,
              where: cand.where,
              value: cand.value ?? null,
              results: Object.fromEntries(
                results[i]!.map((r) => [r.outcome, { verdict: r.verdict, text: r.text }]),
              ),
            })),
            decision: f ? { ttl: row.ttl, source: row.source, text: describeDecision(overall) } : null,
            why: whyText,
            deletion: {
              state: j.state,
              at: deletionAt,
              inSeconds: j.leftMs !== undefined ? Math.ceil(j.leftMs / 1000) : null,
              text: deletion,
            },
            clock: { source: clock.source, now: isoTime(now), offsetMs: Math.round(clock.offsetMs) },
            blockers,
            policies: policyLines,
          };
          out(flags.output === 'json' ? json(doc) : yaml(doc));
          return;
        }
        const col = colors();
        const lines: string[] = [];
        lines.push(
          col.bold(`${obj.kind} ${obj.namespace}/${obj.name}`) +
            `  (${refText(ref.kind, obj.name)}, uid ${obj.uid})`,
        );
        lines.push(`Status:     ${row.status}${f ? ` (${f.reason})` : ''}`);
        lines.push(`Finished:   ${finishText}`);
        lines.push('');
        lines.push('TTL sources, first match wins:');
        const head = [
          'RULE',
          'SOURCE',
          'WHERE',
          'VALUE',
          ...outcomes.map((o) => (outcomes.length > 1 ? `IF ${o.toUpperCase()}` : 'RESULT')),
        ];
        const body = cands.map((cand, i) => [
          String(cand.rule),
          cand.source,
          cand.where,
          cand.value === undefined ? '-' : JSON.stringify(cand.value),
          ...results[i]!.map((r) =>
            r.verdict === 'wins'
              ? col.bold(col.green(r.text))
              : r.verdict === 'invalid'
                ? col.yellow(r.text)
                : r.text,
          ),
        ]);
        lines.push(indent(table(head, body)));
        for (const p of policyLines) lines.push(`  policies: ${p}`);
        lines.push('');
        lines.push(
          `Decision:   ${f ? describeDecision(overall) : outcomes.map((o) => `if ${o}: ${describeDecision(overallFor(o))}`).join('; ')}`,
        );
        lines.push(`Why:        ${whyText}`);
        lines.push(`Deletion:   ${deletion}`);
        lines.push(`Clock:      judged at ${isoTime(now)} on ${clockText}`);
        lines.push(`Blocked by: ${blockers.length === 0 ? 'nothing: the TTL has expired' : blockers[0]}`);
        for (const b of blockers.slice(1)) lines.push(`            ${b}`);
        out(lines.join('\n'));
      });
    });
  oneLineErrors(cmd);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function offsetText(offsetMs: number): string {
  const s = Math.abs(offsetMs) / 1000;
  if (s < 1) return 'within 1 s of it';
  return `${s.toFixed(1)} s ${offsetMs > 0 ? 'behind' : 'ahead'}`;
}

function timeSourceText(source: string, reason: string): string {
  switch (source) {
    case 'condition':
      return `the lastTransitionTime of its ${reason}`;
    case 'containerFinishedAt':
      return 'the latest container finishedAt';
    case 'field':
      return "the kind's finish-time field";
    default:
      return 'when the controller first saw it finished';
  }
}
