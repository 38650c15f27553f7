// The admission decision of `kttl webhook` (docs/webhook.md), as a pure function: an
// AdmissionReview (admission.k8s.io/v1) in, an AdmissionReview out, JSON patches only.
//
// kttl never rejects an object: every well-formed review is answered `allowed: true`; only a review
// that is not one (wrong apiVersion/kind, no request, no uid, …) gets a 400 with a one-line message.
// mutate() never throws.
//
// On CREATE of an object whose winning policy (matchPolicies + choosePolicy, as the controller)
// gives TTL values:
//   - The object has no TTL of its own (no kttl.dev/ttl* annotation, and for Jobs no
//     .spec.ttlSecondsAfterFinished): it gets the policy's. Jobs whose policy gives only `ttl` get
//     the native field (so the native TTL controller can act on it too); Jobs whose policy gives
//     `ttlSucceeded`/`ttlFailed`, and every other kind, get the kttl.dev/ttl* annotations, one per
//     value the policy gives, because one native field cannot hold two outcomes. For every outcome
//     the controller then resolves the same seconds as from the policy itself (test/unit/webhook
//     checks this equivalence).
//   - The object has a TTL: left alone, unless the policy has `enforce: max` and the TTL the
//     controller would use for an outcome is longer than the policy's for that outcome: then that
//     TTL is lowered to the policy's, with the smallest change (see lower()), and an admission
//     warning says so.
// Not stamped (the controller applies such policies at finish time anyway, with their full meaning):
//   - a `dryRun` policy: a stamped TTL would be the object's own and really delete (a warning says
//     what would have been set or lowered);
//   - a policy with a `propagationPolicy`: the controller honours a policy's propagation only while
//     the policy is the TTL's source; a stamped TTL would be deleted with the kind's default.
//   - a policy whose TTL values are invalid (warning), `kttl.dev/keep: "true"` (a warning when the
//     policy enforces a maximum), an object with an invalid TTL value of its own (warning; such an
//     object is kept by the controller until the value is fixed).

import { choosePolicy, matchPolicies, toPolicyTtl } from '../policy/match.ts';
import type { Policy } from '../policy/schema.ts';
import { combineCaps } from '../rules/caps.ts';
import { formatDuration } from '../rules/duration.ts';
import { groupOf } from '../rules/finish.ts';
import { toSummary } from '../rules/summary.ts';
import { decisionOf, type TtlSourceReading } from '../rules/ttl.ts';
import { ANNOTATIONS, type Outcome } from '../rules/types.ts';
import { type Verdict, verdictOf } from '../rules/verdict.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface MutateContext {
  /** Usable policies (the store's policies()): valid ones and holding (invalid-TTL) ones. */
  policies: readonly Policy[];
  /** Labels of a namespace, undefined when unknown (then no namespaceSelector matches). */
  namespaceLabels(ns: string): Readonly<Record<string, string>> | undefined;
}

export interface JsonPatchOp {
  op: 'add' | 'replace';
  path: string;
  value: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch (RFC 6902) document. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type MutateResult =
  | {
      status: 200;
      response: AdmissionReviewResponse;
      /** Set when an internal error was caught (the object is allowed unchanged): for the log. */
      internalError?: string;
    }
  | { status: 400; message: string };

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: unknown, key: string): unknown {
  return isObj(o) && Object.hasOwn(o, key) ? o[key] : undefined;
}

const MAX_SHOWN = 64;

/** A string quoted for a message: cut, JSON-escaped and plain ASCII (warnings travel as HTTP headers). */
function shown(v: unknown): string {
  if (typeof v !== 'string') return shownJson(v);
  return ascii(JSON.stringify(v.length > MAX_SHOWN ? `${v.slice(0, MAX_SHOWN)}…` : v));
}

/** Any value as JSON (so 5 and "5" differ), cut and plain ASCII. */
function shownJson(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return ascii(text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text);
}

function cut(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function ascii(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : typeof v;
}

/** JSON Pointer escaping (RFC 6901): `~` → `~0`, `/` → `~1`. */
export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

const TTL_KEYS = {
  any: ANNOTATIONS.ttl,
  succeeded: ANNOTATIONS.ttlSucceeded,
  failed: ANNOTATIONS.ttlFailed,
} as const;
const OUTCOMES: readonly Outcome[] = ['succeeded', 'failed'];

type Value =
  | { state: 'absent' }
  | { state: 'valid'; seconds: number; text: string }
  | { state: 'invalid'; message: string };

type PolicySeconds = { any?: number; succeeded?: number; failed?: number };

/** The policy's TTL values as the verdict read them (undefined where it gives none); null when one does not parse. */
function policySeconds(r: TtlSourceReading | undefined): PolicySeconds | null {
  if (r?.read.state !== 'policy') return null;
  const { ttl, ttlSucceeded, ttlFailed } = r.read.seconds;
  const out: PolicySeconds = {};
  if (ttl !== undefined) out.any = ttl;
  if (ttlSucceeded !== undefined) out.succeeded = ttlSucceeded;
  if (ttlFailed !== undefined) out.failed = ttlFailed;
  return out;
}

/**
 * What the object looks like to the webhook: its own TTL sources as the controller's verdict
 * (src/rules/verdict.ts) reads them, and which of them decides each outcome.
 */
interface Target {
  isJob: boolean;
  kindName: string;
  metadata: unknown;
  annotations: unknown;
  spec: unknown;
  ann: { any: Value; succeeded: Value; failed: Value };
  field: Value;
  /** Per outcome: the object's own TTL that the controller would use (hooks and keep aside). */
  source: Record<Outcome, Source>;
  /** Per outcome: the policy's TTL, as the precedence picks it (outcome-specific over ttl). */
  policyMax: Record<Outcome, number | undefined>;
}

/** A reading of the verdict as the webhook needs it. */
function readValue(r: TtlSourceReading | undefined): Value {
  if (r === undefined) return { state: 'absent' };
  switch (r.read.state) {
    case 'ttl':
      return { state: 'valid', seconds: r.read.seconds, text: r.value ?? '' };
    case 'invalid':
      return { state: 'invalid', message: warningText(r) };
    default:
      return { state: 'absent' };
  }
}

/**
 * An invalid value's message (the controller's) as a warning: plain ASCII; the field by its path, as
 * the API server names it; an over-long value without its start (the user just wrote it, and the
 * warning ends with "kept until it is fixed" anyway).
 */
function warningText(r: TtlSourceReading): string {
  if (r.read.state !== 'invalid') return '';
  const m = r.read.decision.message.replace(/: kept \(it starts .*\)$/s, '');
  return ascii(r.source === 'field' ? m.replace(/^field /, '') : m);
}

/** Which of the object's own TTL sources decides an outcome in the verdict (null: none of them). */
function sourceIn(v: Verdict, o: Outcome): Source {
  const i = v.winners[o];
  const r = i === null ? undefined : v.sources[i]?.reading;
  if (r === undefined || r.read.state !== 'ttl') return null;
  if (r.rule === 4) return 'field';
  if (r.rule !== 3) return null;
  return r.key === TTL_KEYS.succeeded ? 'succeeded' : r.key === TTL_KEYS.failed ? 'failed' : 'any';
}

/** Collects edits, then renders them as one JSON Patch. */
class Edits {
  readonly annotations = new Map<string, string>();
  field: number | undefined;
  readonly warnings: string[] = [];

  ops(t: Target): JsonPatchOp[] {
    const ops: JsonPatchOp[] = [];
    if (this.field !== undefined) {
      if (isObj(t.spec)) {
        ops.push({
          op: own(t.spec, 'ttlSecondsAfterFinished') === undefined ? 'add' : 'replace',
          path: '/spec/ttlSecondsAfterFinished',
          value: this.field,
        });
      } else if (t.spec === undefined) {
        ops.push({ op: 'add', path: '/spec', value: { ttlSecondsAfterFinished: this.field } });
      }
    }
    if (this.annotations.size > 0 && isObj(t.metadata)) {
      if (isObj(t.annotations)) {
        for (const [k, v] of this.annotations) {
          ops.push({
            op: Object.hasOwn(t.annotations, k) ? 'replace' : 'add',
            path: `/metadata/annotations/${escapePointer(k)}`,
            value: v,
          });
        }
      } else if (t.annotations === undefined || t.annotations === null) {
        // `add` on an existing member (null) replaces it, as on an absent one it creates it.
        ops.push({ op: 'add', path: '/metadata/annotations', value: Object.fromEntries(this.annotations) });
      }
    }
    return ops;
  }
}

function envelopeError(review: unknown): string | null {
  if (!isObj(review)) {
    return `the body must be an AdmissionReview object (${ADMISSION_API_VERSION}), got ${typeName(review)}`;
  }
  const apiVersion = own(review, 'apiVersion');
  if (apiVersion !== ADMISSION_API_VERSION) {
    return `apiVersion must be "${ADMISSION_API_VERSION}" (the only version kttl speaks), got ${apiVersion === undefined ? 'none' : shown(apiVersion)}`;
  }
  const kind = own(review, 'kind');
  if (kind !== 'AdmissionReview') {
    return `kind must be "AdmissionReview", got ${kind === undefined ? 'none' : shown(kind)}`;
  }
  const request = own(review, 'request');
  if (!isObj(request)) {
    return `request must be an object (the API server always sends one), got ${request === undefined ? 'none' : typeName(request)}`;
  }
  const uid = own(request, 'uid');
  if (typeof uid !== 'string' || uid === '') {
    return `request.uid must be a non-empty string, got ${uid === undefined ? 'none' : shownJson(uid)}`;
  }
  const operation = own(request, 'operation');
  if (typeof operation !== 'string') {
    return `request.operation must be a string (CREATE, UPDATE, DELETE or CONNECT), got ${operation === undefined ? 'none' : shown(operation)}`;
  }
  if (operation === 'CREATE' && !isObj(own(request, 'object'))) {
    const o = own(request, 'object');
    return `request.object must be an object for CREATE, got ${o === undefined ? 'none' : typeName(o)}`;
  }
  return null;
}

/** The admission decision. Never throws. */
export function mutate(review: unknown, ctx: MutateContext): MutateResult {
  let uid = '';
  try {
    const bad = envelopeError(review);
    if (bad !== null) return { status: 400, message: `malformed AdmissionReview: ${bad}` };
    const request = own(review, 'request') as Obj;
    uid = request.uid as string;
    const { ops, warnings } = decide(request, ctx);
    const response: AdmissionResponse = { uid, allowed: true };
    if (ops.length > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(ops)).toString('base64');
    }
    if (warnings.length > 0) response.warnings = warnings;
    return { status: 200, response: reviewOf(response) };
  } catch (err) {
    // Belt and braces: a bug here must never block a create. Allowed, unchanged; the server logs it.
    if (uid === '') return { status: 400, message: `malformed AdmissionReview: ${String(err)}` };
    return {
      status: 200,
      response: reviewOf({ uid, allowed: true }),
      internalError: String((err as Error)?.stack ?? err),
    };
  }
}

function reviewOf(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** The type of the object: request.kind (the API server's), else the object's own. */
function typeOf(request: Obj, object: Obj): { apiVersion: string; kind: string } | null {
  const k = own(request, 'kind');
  const group = own(k, 'group');
  const version = own(k, 'version');
  const kind = own(k, 'kind');
  if (typeof group === 'string' && typeof version === 'string' && typeof kind === 'string' && kind !== '') {
    return { apiVersion: group === '' ? version : `${group}/${version}`, kind };
  }
  const apiVersion = own(object, 'apiVersion');
  const objKind = own(object, 'kind');
  if (typeof apiVersion === 'string' && typeof objKind === 'string' && objKind !== '') {
    return { apiVersion, kind: objKind };
  }
  return null;
}

function decide(request: Obj, ctx: MutateContext): { ops: JsonPatchOp[]; warnings: string[] } {
  const none = { ops: [], warnings: [] };
  // CREATE only (the seeds' "after the Job finishes" use is the controller's: see docs/webhook.md).
  if (request.operation !== 'CREATE') return none;
  // A create on a subresource (pods/binding, pods/eviction, …) carries another kind of object.
  const sub = own(request, 'subResource');
  if (typeof sub === 'string' && sub !== '') return none;
  const object = own(request, 'object') as Obj;
  const type = typeOf(request, object);
  if (type === null) return none;
  const metadata = own(object, 'metadata');
  const reqNs = own(request, 'namespace');
  const objNs = own(metadata, 'namespace');
  const namespace =
    typeof reqNs === 'string' && reqNs !== '' ? reqNs : typeof objNs === 'string' ? objNs : '';
  const summary = { ...toSummary(object, null, type), ...type, namespace };

  const isJob = groupOf(type.apiVersion) === 'batch' && type.kind === 'Job';
  const annotations = own(metadata, 'annotations');
  const winner = choosePolicy(matchPolicies(summary, ctx.policies, ctx.namespaceLabels)).winner;
  // The controller's verdict on the object as created (not finished: both outcomes), with the policy
  // that would select it, so its own sources are judged exactly as they will be at finish time.
  const verdict = verdictOf(summary, {
    nowMs: 0,
    policy: winner === null ? null : toPolicyTtl(winner),
    helmHooks: true,
    nativeJobs: 'handle',
  });
  const reading = (key: string) => verdict.sources.find((x) => x.reading.key === key)?.reading;
  const policyReading = verdict.sources.find((x) => x.reading.rule === 5)?.reading;
  const policyTtl = winner === null ? null : toPolicyTtl(winner);
  const policyMax = (o: Outcome) => {
    const d = policyReading ? decisionOf(policyReading, o, policyTtl) : null;
    return d?.action === 'ttl' ? d.seconds : undefined;
  };
  const t: Target = {
    isJob,
    kindName: type.kind,
    metadata,
    annotations,
    spec: own(object, 'spec'),
    ann: {
      any: readValue(reading(TTL_KEYS.any)),
      succeeded: readValue(reading(TTL_KEYS.succeeded)),
      failed: readValue(reading(TTL_KEYS.failed)),
    },
    field: isJob
      ? readValue(verdict.sources.find((x) => x.reading.rule === 4)?.reading)
      : { state: 'absent' },
    source: { succeeded: sourceIn(verdict, 'succeeded'), failed: sourceIn(verdict, 'failed') },
    policyMax: { succeeded: policyMax('succeeded'), failed: policyMax('failed') },
  };
  const edits = new Edits();

  // The object's own invalid values (keep, hooks, TTLs): never touched, always pointed out (the
  // controller keeps such an object until the value is fixed).
  const values = [t.ann.succeeded, t.ann.failed, t.ann.any, t.field];
  let invalid = false;
  for (const { reading: r } of verdict.sources) {
    if (r.rule === 5 || r.read.state !== 'invalid') continue;
    invalid = true;
    edits.warnings.push(`kttl: ${warningText(r)}; this ${t.kindName} is kept until it is fixed`);
  }
  // kttl.dev/expires is read by the retention rules (src/rules/retention.ts), not a TTL source.
  const expires = verdict.byOutcome.succeeded;
  if (expires.action === 'invalid' && expires.source === 'expires')
    edits.warnings.push(
      `kttl: ${ascii(cut(expires.message, 300))}; this ${t.kindName} is kept until it is fixed`,
    );
  const keeps = reading(ANNOTATIONS.keep)?.read;

  if (winner === null) return { ops: [], warnings: edits.warnings };
  const ref = winner.ref;
  const seconds = winner.invalid ? null : policySeconds(policyReading);
  if (seconds === null) {
    edits.warnings.push(
      `kttl: ${ref} has invalid TTL values (${ascii(cut(winner.invalid?.[0] ?? 'unparsable', 120))}); no TTL set from it`,
    );
    return { ops: [], warnings: edits.warnings };
  }
  // ClusterTTLPolicy maxTtl* (src/rules/caps.ts): the cluster maximum over this object.
  const cap = combineCaps(
    matchPolicies(
      summary,
      ctx.policies.filter(
        (p) =>
          p.scope === 'cluster' &&
          !p.invalid &&
          (p.maxTtl ?? p.maxTtlSucceeded ?? p.maxTtlFailed) !== undefined,
      ),
      ctx.namespaceLabels,
    ),
  );
  if (keeps?.state === 'keep' && keeps.keeps) {
    if (cap !== null && !cap.allowKeep)
      edits.warnings.push(
        `kttl: ${ANNOTATIONS.keep}=true does not exempt this ${t.kindName} from the cluster maximum of ${[cap.succeeded?.ref, cap.failed?.ref].filter(Boolean)[0]} (allowKeep: false): it is deleted after that`,
      );
    if (winner.enforce === 'max') {
      edits.warnings.push(
        `kttl: ${ANNOTATIONS.keep}=true exempts this ${t.kindName} from ${ref} (enforce: max); not changed`,
      );
    }
    return { ops: [], warnings: edits.warnings };
  }
  if (invalid) return { ops: [], warnings: edits.warnings };

  const hasTtl = values.some((v) => v.state !== 'absent');
  if (!hasTtl) stamp(t, winner, seconds, edits);
  else if (cap !== null) {
    // The cap and enforce: max in one pass: each outcome lowered to the smaller of the two.
    const min = (o: Outcome) => {
      const c = cap[o]?.seconds;
      const e = winner.enforce === 'max' ? t.policyMax[o] : undefined;
      return c === undefined ? e : e === undefined ? c : Math.min(c, e);
    };
    const refs = [...new Set([cap.succeeded?.ref, cap.failed?.ref].filter((r) => r !== undefined))];
    lower(
      { ...t, policyMax: { succeeded: min('succeeded'), failed: min('failed') } },
      winner,
      edits,
      `by the cluster maximum of ${refs.join(', ')}${winner.enforce === 'max' ? ` and ${winner.ref} (enforce: max)` : ''}${winner.dryRun ? ' (dryRun: not changed)' : ''}`,
    );
  } else if (winner.enforce === 'max') lower(t, winner, edits);
  return { ops: winner.dryRun ? [] : edits.ops(t), warnings: edits.warnings };
}

/** An object without a TTL gets the policy's. */
function stamp(t: Target, p: Policy, s: PolicySeconds, edits: Edits): void {
  if (s.any === undefined && s.succeeded === undefined && s.failed === undefined) return;
  if (p.propagationPolicy !== undefined) return; // see the header: the policy keeps its meaning
  const what: string[] = [];
  if (t.isJob && s.succeeded === undefined && s.failed === undefined && s.any !== undefined) {
    edits.field = s.any;
    what.push(`ttlSecondsAfterFinished ${s.any}`);
  } else {
    for (const k of ['any', 'succeeded', 'failed'] as const) {
      const v = s[k];
      if (v === undefined) continue;
      edits.annotations.set(TTL_KEYS[k], formatDuration(v));
      what.push(`${TTL_KEYS[k]}=${formatDuration(v)}`);
    }
  }
  if (p.dryRun) edits.warnings.push(`kttl: would set ${what.join(', ')} from ${p.ref} (dryRun: not set)`);
}

/** Where the TTL the controller uses for an outcome comes from (hooks and keep aside). */
type Source = 'succeeded' | 'failed' | 'any' | 'field' | null;

function sourceOf(t: Target, o: Outcome): Source {
  return t.source[o];
}

function secondsOf(t: Target, src: Exclude<Source, null>): { seconds: number; text: string } {
  const v = src === 'field' ? t.field : t.ann[src];
  if (v.state !== 'valid') throw new Error(`internal: ${src} is not a valid value`);
  return v;
}

/**
 * enforce: max. For each outcome whose TTL (as the controller resolves it: outcome annotation, else
 * kttl.dev/ttl, else the native field) exceeds the policy's TTL for that outcome, that TTL becomes the
 * policy's, with the smallest change:
 * - an outcome-specific annotation that is too long is lowered;
 * - kttl.dev/ttl or the native field is lowered when every outcome it serves is too long (to the
 *   largest of those maxima; an outcome whose maximum is smaller gets its own annotation);
 * - when it serves an outcome that is within the maximum too, that value stays and each outcome
 *   that is too long gets its own annotation (outcome-specific wins over kttl.dev/ttl and the field).
 * Outcomes for which the object has no TTL are already bounded: the controller uses the policy.
 */
function lower(t: Target, p: Policy, edits: Edits, byText?: string): void {
  const max = (o: Outcome) => t.policyMax[o];
  const verb = p.dryRun ? 'would be lowered' : 'lowered';
  const by = byText ?? `by ${p.ref} (enforce: max${p.dryRun ? ', dryRun: not changed' : ''})`;
  const exceeded = (o: Outcome): boolean => {
    const src = sourceOf(t, o);
    const m = max(o);
    return src !== null && m !== undefined && secondsOf(t, src).seconds > m;
  };
  const describe = (src: Exclude<Source, null>): string =>
    src === 'field'
      ? `ttlSecondsAfterFinished ${secondsOf(t, src).seconds}`
      : `${TTL_KEYS[src]} ${shown(secondsOf(t, src).text)}`;
  const setOutcome = (o: Outcome, from: Exclude<Source, null>, m: number) => {
    const key = TTL_KEYS[o];
    edits.annotations.set(key, formatDuration(m));
    edits.warnings.push(
      from === o
        ? `kttl: annotation ${key} ${verb} from ${shown(secondsOf(t, o).text)} to ${formatDuration(m)} ${by}`
        : `kttl: TTL of ${o} ${t.kindName}s ${verb} from ${describe(from)} to ${formatDuration(m)} (annotation ${key}) ${by}`,
    );
  };

  // Outcome-specific annotations that are too long.
  for (const o of OUTCOMES) {
    if (sourceOf(t, o) === o && exceeded(o)) setOutcome(o, o, max(o)!);
  }
  // kttl.dev/ttl or the native field (only one of them serves outcomes: the annotation shadows the field).
  for (const base of ['any', 'field'] as const) {
    const served = OUTCOMES.filter((o) => sourceOf(t, o) === base);
    const over = served.filter(exceeded);
    if (over.length === 0) continue;
    const current = secondsOf(t, base);
    if (over.length === served.length) {
      const m = Math.max(...over.map((o) => max(o)!));
      if (base === 'field') {
        edits.field = m;
        edits.warnings.push(`kttl: ttlSecondsAfterFinished ${verb} from ${current.seconds} to ${m} ${by}`);
      } else {
        edits.annotations.set(TTL_KEYS.any, formatDuration(m));
        edits.warnings.push(
          `kttl: annotation ${TTL_KEYS.any} ${verb} from ${shown(current.text)} to ${formatDuration(m)} ${by}`,
        );
      }
      for (const o of over) if (max(o)! < m) setOutcome(o, base, max(o)!);
    } else {
      for (const o of over) setOutcome(o, base, max(o)!);
    }
  }
}
