// What `kttl explain` shows, as a pure model of the controller's verdict (src/rules/verdict.ts):
// every TTL source with its value and how it fares per outcome, the decision and why, the finish
// time and where it comes from, the deletion time on the API server's clock, and what blocks it.
// src/cli/shared/explain-render.ts turns it into text, JSON or YAML; nothing here does I/O.
import { formatDuration } from '../../rules/duration.ts';
import { describeDecision } from '../../rules/ttl.ts';
import { ANNOTATIONS, type ObjectSummary, type Outcome, type TtlDecision } from '../../rules/types.ts';
import type { SourceVerdict, Status, Verdict } from '../../rules/verdict.ts';
import { humanDuration, isoTime, relative } from './time.ts';

export interface ExplainInput {
  obj: ObjectSummary;
  verdict: Verdict;
  /** `job/NAME`, as the user would type it. */
  refText: string;
  nowMs: number;
  clock: { source: 'server' | 'local'; offsetMs: number };
  /** One line per candidate policy (src/cli/shared/policy-source.ts). */
  policyLines: string[];
}

export interface ExplainCandidate {
  rule: number;
  source: string;
  where: string;
  value: string | undefined;
  results: Array<{ outcome: Outcome; verdict: SourceVerdict; text: string }>;
}

export interface ExplainModel {
  object: Pick<ObjectSummary, 'apiVersion' | 'kind' | 'namespace' | 'name' | 'uid'>;
  refText: string;
  status: Status;
  finish: Verdict['finish'];
  finishText: string;
  outcomes: Outcome[];
  candidates: ExplainCandidate[];
  /** For a finished object, its decision; while running, one per outcome. */
  decisions: Array<{ outcome: Outcome; decision: TtlDecision }>;
  decisionText: string;
  why: string;
  deletion: { state: string; at: string | null; inSeconds: number | null; text: string };
  clock: { source: 'server' | 'local'; now: string; offsetMs: number; text: string };
  blockers: string[];
  policies: string[];
  /** Pods first (ttlPods / kttl.dev/ttl-pods): when its pods go; null when none applies. */
  pods: string | null;
}

const RULE_NAMES: Record<number, string> = {
  1: 'kttl.dev/keep',
  2: 'a hook delete policy',
  3: 'the per-object kttl.dev/ttl* annotations',
  4: 'the Job field .spec.ttlSecondsAfterFinished',
  5: 'the matching policy',
};

function short(d: TtlDecision): string {
  if (d.action === 'ttl') return `ttl ${formatDuration(d.seconds)}`;
  if (d.action === 'keep') return 'keep';
  return d.action;
}

function resultText(
  source: string,
  outcome: Outcome,
  verdict: SourceVerdict,
  single: TtlDecision | null,
  readWhy: string | undefined,
): string {
  switch (verdict) {
    case 'not set':
      return source === 'policy' ? 'no policy matches' : 'not set';
    case 'ignored':
      return readWhy ?? 'ignored';
    case 'held':
      return `held: ${readWhy ?? ''} (kept until the policies are known)`;
    case 'does not apply':
      return source === 'keep'
        ? 'does not apply (only "true" keeps)'
        : source === 'hook'
          ? `does not apply (no hook-${outcome})`
          : `does not apply to a ${outcome} object`;
    case 'wins':
      return single?.action === 'invalid'
        ? `WINS, invalid: ${single.message}`
        : single
          ? `WINS: ${short(single)}`
          : 'WINS';
    case 'invalid':
      return single?.action === 'invalid' ? `invalid: ${single.message}` : 'invalid';
    case 'shadowed':
      return single ? `shadowed (${short(single)})` : 'shadowed';
  }
}

/** The retention rules (src/rules/retention.ts) name themselves: they decide over the table above. */
function retentionWhy(d: TtlDecision): string | null {
  if (d.action === 'invalid' && d.source === 'expires')
    return `The value of annotation ${ANNOTATIONS.expires} is invalid: it is never skipped over, the object is kept and the controller raises a Warning Event.`;
  switch (d.source) {
    case 'history':
      return `Rule history decides: ${d.action === 'ttl' ? d.detail : ''}: deleted now, whatever its TTL.`;
    case 'keepLatest':
      return `Rule keepLatest decides: ${d.action === 'keep' ? d.detail : ''}; its TTL waits.`;
    case 'cap':
      return `Rule cap decides: ${d.action === 'ttl' ? d.detail : ''}.`;
    case 'expires':
      return `Rule expires decides: ${d.action === 'ttl' ? d.detail : ''}; it is the one rule that deletes an unfinished object (kttl.dev/keep still wins).`;
    default:
      return null;
  }
}

function whyText(v: Verdict, outcome: Outcome): string {
  const decision = v.byOutcome[outcome];
  const retention = retentionWhy(decision);
  if (retention !== null) return retention;
  const index = v.winners[outcome];
  const winner = index === null ? undefined : v.sources[index]?.reading;
  const above =
    winner && winner.rule > 2
      ? ` Rules 1-${winner.rule - 1} are not set or do not apply.`
      : winner?.rule === 2
        ? ' Rule 1 is not set or does not apply.'
        : '';
  switch (decision.action) {
    case 'none':
      if (!decision.detail.startsWith('no TTL')) return `No TTL applies: ${decision.detail}.`;
      return 'No rule applies (no keep, hook, kttl.dev/ttl* annotation, native field or policy): kttl never deletes it.';
    case 'keep':
      return 'kttl.dev/keep=true is rule 1 and beats everything: the object is never deleted.';
    case 'invalid':
      return `${winner ? `The value of ${winner.where} (rule ${winner.rule}) is invalid` : 'A value is invalid'}: an invalid value is never skipped over, the object is kept and the controller raises a Warning Event.${above}`;
    case 'ttl': {
      const r = winner?.rule ?? 0;
      let s = `Rule ${r} (${RULE_NAMES[r] ?? decision.source}) gives the TTL: first match wins.${above}`;
      if (decision.source === 'hook')
        s += ` A hook delete policy listing hook-${outcome} deletes right after finishing.`;
      if (decision.source === 'annotation' && winner && winner.key !== ANNOTATIONS.ttl)
        s += ` The outcome-specific annotation wins over ${ANNOTATIONS.ttl}.`;
      return s;
    }
  }
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

function offsetText(offsetMs: number): string {
  const s = Math.abs(offsetMs) / 1000;
  if (s < 1) return 'within 1 s of it';
  return `${s.toFixed(1)} s ${offsetMs > 0 ? 'behind' : 'ahead'}`;
}

export function explainModel(input: ExplainInput): ExplainModel {
  const { obj, verdict: v, nowMs: now } = input;
  const f = v.finish;
  const j = v.judgement;
  const d = v.decision;
  const outcomes = v.outcomes;

  const candidates: ExplainCandidate[] = v.sources.map((s) => {
    const read = s.reading.read;
    const readWhy = read.state === 'disabled' ? read.why : read.state === 'held' ? read.why : undefined;
    return {
      rule: s.reading.rule,
      source: s.reading.source,
      where: s.reading.where,
      value: s.reading.value,
      results: s.results.map((r) => ({
        outcome: r.outcome,
        verdict: r.verdict,
        text: resultText(s.reading.source, r.outcome, r.verdict, r.decision, readWhy),
      })),
    };
  });

  const whys = outcomes.map((o) => whyText(v, o));
  const why =
    whys.length === 1 || whys[0] === whys[1]
      ? (whys[0] ?? '')
      : outcomes.map((o, i) => `If it ${o}: ${whys[i]}`).join(' ');

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
      const od = v.byOutcome[o];
      return `${o}: ${od.action === 'ttl' ? `${formatDuration(od.seconds)} after it finishes` : od.action === 'keep' ? 'kept' : od.action === 'invalid' ? 'kept (invalid value)' : 'never (no TTL)'}`;
    });
    deletion = `not before it finishes (${ttls.join('; ')})`;
  } else if (j.state === 'no-finish-time') {
    deletion =
      f?.timeSource === 'firstSeen' && d?.action === 'ttl'
        ? `${formatDuration(d.seconds)} after the controller first sees it finished (the object has no finish time of its own)`
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
      : `unknown: ${f.timeSource === 'firstSeen' ? 'the object has no finish time of its own; the controller counts from when it first sees it finished' : `the ${f.reason} condition has no lastTransitionTime`}`
    : v.finishBlocked !== undefined
      ? `not judged: ${v.finishBlocked}`
      : 'not finished';

  const decisions = outcomes.map((o) => ({ outcome: o, decision: v.byOutcome[o] }));
  const decisionText = f
    ? describeDecision(v.byOutcome[f.outcome])
    : decisions.map((x) => `if ${x.outcome}: ${describeDecision(x.decision)}`).join('; ');

  const clockText =
    input.clock.source === 'server'
      ? `the API server's clock (Date header of the GET response; this machine's clock is ${offsetText(input.clock.offsetMs)})`
      : "this machine's clock (the API server sent no Date header)";

  return {
    object: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      namespace: obj.namespace,
      name: obj.name,
      uid: obj.uid,
    },
    refText: input.refText,
    status: v.status,
    finish: f,
    finishText,
    outcomes,
    candidates,
    decisions,
    decisionText,
    why,
    deletion: {
      state: j.state,
      at: deletionAt,
      inSeconds: j.leftMs !== undefined ? Math.ceil(j.leftMs / 1000) : null,
      text: deletion,
    },
    clock: {
      source: input.clock.source,
      now: isoTime(now),
      offsetMs: Math.round(input.clock.offsetMs),
      text: `judged at ${isoTime(now)} on ${clockText}`,
    },
    // The CLI words the time left as kubectl does (6d23h).
    blockers: v.blockers.map((b) =>
      b.what === 'pending' ? `TTL not expired yet: ${humanDuration(j.leftMs ?? 0)} left` : b.text,
    ),
    policies: input.policyLines,
    pods:
      v.pods.state === 'at'
        ? `pods first: its finished pods go at ${isoTime(v.pods.atMs)} (${relative(v.pods.atMs, now)}; ${v.pods.detail}), the object stays until its own TTL`
        : v.pods.state === 'invalid'
          ? `pods first: invalid, its pods are kept: ${v.pods.message}`
          : null,
  };
}
