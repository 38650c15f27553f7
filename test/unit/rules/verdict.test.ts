// One verdict (src/rules/verdict.ts): the controller, the CLI rows and the webhook judge through it,
// so for random objects and policies they agree — the controller's decision (verdictOf with the
// controller's inputs, on the summary its cache keeps), the CLI row (src/cli/shared/rows.ts) and the
// TTL the webhook stamps (src/webhook/mutate.ts) — and the rules that used to live only in the
// controller (Job-owned Pods, --native-jobs=leave, first-seen times) now reach the CLI too.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { PolicyProvider } from '../../../src/cli/shared/policies.ts';
import type { KindInfo } from '../../../src/cli/shared/refs.ts';
import { evaluate, summarize } from '../../../src/cli/shared/rows.ts';
import { JOBS, PODS, type ResourceRef } from '../../../src/kube/resources.ts';
import { choosePolicy, matchPolicies, toPolicyTtl } from '../../../src/policy/match.ts';
import { type Policy, parsePolicy } from '../../../src/policy/schema.ts';
import { formatDuration } from '../../../src/rules/duration.ts';
import { summarizeObject } from '../../../src/rules/summary.ts';
import { resolveTtl } from '../../../src/rules/ttl.ts';
import type { ObjectSummary, Outcome, TtlDecision } from '../../../src/rules/types.ts';
import { verdictOf } from '../../../src/rules/verdict.ts';
import { mutate } from '../../../src/webhook/mutate.ts';
import { applyPatch } from '../webhook/json-patch.ts';

const RUNS = 3000;
const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const FINISHED_AT = NOW - 3600_000;
const NS_LABELS: Record<string, Record<string, string>> = {
  'team-a': { team: 'a' },
  'team-b': { team: 'b' },
};

const WORKFLOWS: ResourceRef = {
  group: 'argoproj.io',
  version: 'v1alpha1',
  kind: 'Workflow',
  plural: 'workflows',
  namespaced: true,
};
const KINDS: Record<'Job' | 'Pod' | 'Workflow', KindInfo> = {
  Job: { resource: JOBS, defaultPropagation: 'Foreground', singular: 'job' },
  Pod: { resource: PODS, defaultPropagation: 'Background', singular: 'pod' },
  Workflow: { resource: WORKFLOWS, defaultPropagation: 'Background', singular: 'workflow' },
};
const API_VERSION = { Job: 'batch/v1', Pod: 'v1', Workflow: 'argoproj.io/v1alpha1' } as const;
type KindName = keyof typeof KINDS;

const iso = (ms: number) => new Date(ms).toISOString();

/** A raw object as the API server sends it: running, or finished with an outcome. */
function raw(
  kind: KindName,
  o: {
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ttl?: number;
    outcome: Outcome | null;
    jobOwned?: boolean;
    withTime?: boolean;
  },
): Record<string, unknown> {
  const metadata: Record<string, unknown> = {
    name: 'x1',
    namespace: o.namespace,
    uid: 'u-1',
    resourceVersion: '7',
    creationTimestamp: iso(NOW - 7200_000),
  };
  if (o.labels) metadata.labels = o.labels;
  if (o.annotations) metadata.annotations = o.annotations;
  if (o.jobOwned)
    metadata.ownerReferences = [
      { apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'ju', controller: true },
    ];
  const at = o.withTime === false ? undefined : iso(FINISHED_AT);
  let status: Record<string, unknown> = {};
  let spec: Record<string, unknown> = {};
  if (kind === 'Job') {
    spec = { template: {}, ...(o.ttl !== undefined ? { ttlSecondsAfterFinished: o.ttl } : {}) };
    if (o.outcome)
      status = {
        conditions: [
          { type: o.outcome === 'succeeded' ? 'Complete' : 'Failed', status: 'True', lastTransitionTime: at },
        ],
      };
  } else if (kind === 'Pod') {
    spec = { containers: [{ name: 'main', image: 'busybox' }] };
    status = o.outcome
      ? {
          phase: o.outcome === 'succeeded' ? 'Succeeded' : 'Failed',
          containerStatuses: at ? [{ name: 'main', state: { terminated: { finishedAt: at } } }] : [],
        }
      : { phase: 'Running' };
  } else {
    status = o.outcome
      ? { phase: o.outcome === 'succeeded' ? 'Succeeded' : 'Failed', ...(at ? { finishedAt: at } : {}) }
      : { phase: 'Running' };
  }
  return { apiVersion: API_VERSION[kind], kind, metadata, spec, status };
}

let seq = 0;
function policy(spec: Record<string, unknown>, namespace: string, kinds: KindName[]): Policy {
  const r = parsePolicy({
    apiVersion: 'kttl.dev/v1alpha1',
    kind: namespace === '' ? 'ClusterTTLPolicy' : 'TTLPolicy',
    metadata: { name: `p${++seq}`, ...(namespace === '' ? {} : { namespace }), uid: `pu-${seq}` },
    spec: { resources: kinds.map((k) => ({ apiVersion: API_VERSION[k], kind: k })), ...spec },
  });
  if (r.ok) return r.policy;
  if (r.holding) return r.holding;
  throw new Error(r.errors.join('; '));
}

/** What the policy store answers, over a fixed set of policies (the store's own matching). */
function provider(policies: Policy[]): PolicyProvider {
  return {
    policyFor: (obj) => {
      const w = choosePolicy(matchPolicies(obj, policies, (ns) => NS_LABELS[ns])).winner;
      return w === null ? null : toPolicyTtl(w);
    },
  };
}

/** The controller's judgement: its ingest (summarizeObject) and its call of verdictOf. */
function controllerDecision(
  kind: KindName,
  object: Record<string, unknown>,
  p: PolicyProvider,
  o: { helmHooks: boolean; nativeJobs: 'handle' | 'leave'; firstSeenMs?: number },
) {
  const r = KINDS[kind].resource;
  const obj = summarizeObject(object, { apiVersion: API_VERSION[kind], kind: r.kind });
  return verdictOf(obj, {
    nowMs: NOW,
    policy: p.policyFor(obj),
    helmHooks: o.helmHooks,
    nativeJobs: o.nativeJobs,
    ...(o.firstSeenMs !== undefined ? { firstSeen: () => o.firstSeenMs } : {}),
  });
}

function seconds(d: TtlDecision | null): number | string {
  return d === null ? 'running' : d.action === 'ttl' ? d.seconds : d.action;
}

const durationArb = fc.integer({ min: 0, max: 4 * 86400 }).map((s) => (s === 0 ? '0' : formatDuration(s)));
const valueArb = fc.oneof(
  { weight: 6, arbitrary: durationArb },
  {
    weight: 1,
    arbitrary: fc.constantFrom('5 minutes', '-1h', '', 'true', 'false', 'hook-succeeded', 'hook-failed,x'),
  },
);
const annotationsArb = fc.dictionary(
  fc.constantFrom(
    'kttl.dev/ttl',
    'kttl.dev/ttl-succeeded',
    'kttl.dev/ttl-failed',
    'kttl.dev/keep',
    'helm.sh/hook-delete-policy',
    'kots.io/hook-delete-policy',
    'team',
  ),
  valueArb,
  { maxKeys: 4 },
);
const policySpecArb = fc
  .record({
    ttl: fc.option(durationArb, { nil: undefined }),
    ttlSucceeded: fc.option(durationArb, { nil: undefined, freq: 3 }),
    ttlFailed: fc.option(durationArb, { nil: undefined, freq: 3 }),
    enforce: fc.constantFrom(undefined, 'none', 'max'),
    dryRun: fc.constantFrom(undefined, false, true),
    selector: fc.constantFrom(undefined, undefined, { matchLabels: { tier: 'batch' } }),
  })
  .map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)));
const policiesArb = fc.array(
  fc.tuple(
    policySpecArb,
    fc.constantFrom('team-a', 'team-b', ''),
    fc.subarray<KindName>(['Job', 'Pod', 'Workflow'], { minLength: 1 }),
  ),
  { maxLength: 3 },
);
const caseArb = fc.record({
  kind: fc.constantFrom<KindName>('Job', 'Pod', 'Workflow'),
  namespace: fc.constantFrom('team-a', 'team-b', 'team-c'),
  labels: fc.option(fc.constantFrom({ tier: 'batch' }, { tier: 'web' }), { nil: undefined }),
  annotations: annotationsArb,
  ttl: fc.option(fc.integer({ min: 0, max: 4 * 86400 }), { nil: undefined }),
  outcome: fc.constantFrom<Outcome | null>('succeeded', 'failed', null),
  jobOwned: fc.boolean(),
  withTime: fc.boolean(),
  helmHooks: fc.boolean(),
  nativeJobs: fc.constantFrom<'handle' | 'leave'>('handle', 'leave'),
  policies: policiesArb,
});

describe('one verdict: controller, CLI and webhook agree', () => {
  test(`the CLI row shows the controller's decision and expiry (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const object = raw(c.kind, c);
        const p = provider(c.policies.map(([spec, ns, kinds]) => policy(spec, ns, kinds)));
        const controller = controllerDecision(c.kind, object, p, c);
        const row = evaluate(KINDS[c.kind], summarize(KINDS[c.kind], object, p), {
          nowMs: NOW,
          policies: p,
          helmHooks: c.helmHooks,
          nativeJobs: c.nativeJobs,
        });
        assert.deepEqual(row.decision, controller.decision);
        assert.deepEqual(row.ifSucceeded, controller.byOutcome.succeeded);
        assert.deepEqual(row.ifFailed, controller.byOutcome.failed);
        // The CLI cannot know a first-seen time; with one, the controller's expiry differs only then.
        if (c.withTime || c.kind === 'Job') assert.deepEqual(row.judgement, controller.judgement);
      }),
      { numRuns: RUNS },
    );
  });

  test(`the TTL the webhook stamps at CREATE is the one the controller then uses (${RUNS} runs)`, () => {
    let stamped = 0;
    fc.assert(
      fc.property(caseArb, fc.constantFrom<Outcome>('succeeded', 'failed'), (c, outcome) => {
        const policies = c.policies.map(([spec, ns, kinds]) => policy(spec, ns, kinds));
        const p = provider(policies);
        const created = raw(c.kind, { ...c, outcome: null });
        const r = mutate(
          {
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            request: {
              uid: 'rev-1',
              kind: { group: KINDS[c.kind].resource.group, version: 'v1', kind: c.kind },
              namespace: c.namespace,
              operation: 'CREATE',
              object: created,
            },
          },
          { policies, namespaceLabels: (ns) => NS_LABELS[ns] },
        );
        assert.equal(r.status, 200);
        if (r.status !== 200) return;
        const patch = r.response.response.patch;
        const ops = patch ? JSON.parse(Buffer.from(patch, 'base64').toString()) : [];
        if (ops.length > 0) stamped++;
        const patched = applyPatch(created, ops) as Record<string, unknown>;
        // The same object finished later, as the controller judges it, with and without the stamp.
        const finish = (o: Record<string, unknown>) => ({
          ...o,
          status: (raw(c.kind, { ...c, outcome }) as { status: unknown }).status,
        });
        const opts = { helmHooks: true, nativeJobs: 'handle' as const };
        const before = controllerDecision(c.kind, finish(created), p, opts);
        const after = controllerDecision(c.kind, finish(patched), p, opts);
        const winner = choosePolicy(
          matchPolicies(
            summarizeObject(created, { apiVersion: API_VERSION[c.kind], kind: c.kind }),
            policies,
            (ns) => NS_LABELS[ns],
          ),
        ).winner;
        if (winner?.enforce === 'max') {
          // Lowered to the maximum at most: never longer than before, never kept where it was deleted.
          const b = seconds(before.decision);
          const a = seconds(after.decision);
          if (typeof b === 'number') assert.ok(typeof a === 'number' && a <= b, `${a} > ${b}`);
          else assert.equal(a, b);
        } else {
          assert.deepEqual(seconds(after.decision), seconds(before.decision));
        }
        // And the CLI row on the stamped object says the same as the controller.
        const row = evaluate(KINDS[c.kind], summarize(KINDS[c.kind], finish(patched), p), {
          nowMs: NOW,
          policies: p,
          helmHooks: true,
        });
        assert.deepEqual(row.decision, after.decision);
      }),
      { numRuns: RUNS },
    );
    assert.ok(stamped > RUNS / 40, `only ${stamped} of ${RUNS} creates were stamped`);
  });

  test('the verdict gives the precedence resolveTtl gives, for every outcome', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const object = raw(c.kind, c);
        const p = provider(c.policies.map(([spec, ns, kinds]) => policy(spec, ns, kinds)));
        const obj = summarizeObject(object, { apiVersion: API_VERSION[c.kind], kind: c.kind });
        const v = verdictOf(obj, {
          nowMs: NOW,
          policy: p.policyFor(obj),
          helmHooks: c.helmHooks,
          nativeJobs: 'handle',
        });
        for (const o of ['succeeded', 'failed'] as const) {
          const d = resolveTtl(obj, o, { policy: p.policyFor(obj), helmHooks: c.helmHooks });
          if (!(c.kind === 'Pod' && c.jobOwned && p.policyFor(obj) === null))
            assert.deepEqual(v.byOutcome[o], d);
          // Exactly one source wins when the decision came from a source.
          const winners = v.sources.filter((s) =>
            s.results.some((r) => r.outcome === o && r.verdict === 'wins'),
          );
          if (v.outcomes.includes(o))
            assert.equal(winners.length, v.winners[o] === null ? 0 : 1, JSON.stringify(v.byOutcome[o]));
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('rules that used to live only in the controller reach the CLI', () => {
  const judge = (
    object: Record<string, unknown>,
    kind: KindName,
    nativeJobs: 'handle' | 'leave' = 'handle',
  ) =>
    evaluate(KINDS[kind], summarize(KINDS[kind], object), {
      nowMs: NOW,
      policies: provider([]),
      helmHooks: true,
      nativeJobs,
    });

  test('a finished Pod of a Job goes with its Job when no policy names Pods', () => {
    const row = judge(
      raw('Pod', {
        namespace: 'team-a',
        outcome: 'succeeded',
        jobOwned: true,
        annotations: { 'kttl.dev/ttl': '0' },
      }),
      'Pod',
    );
    assert.equal(row.decision?.action, 'none');
    assert.match(
      row.decision?.action === 'none' ? row.decision.detail : '',
      /a Pod of a Job: deleted with its Job/,
    );
    assert.equal(row.judgement.state, 'no-ttl');
    // The same Pod without an owner is deleted by its annotation.
    assert.equal(
      judge(
        raw('Pod', { namespace: 'team-a', outcome: 'succeeded', annotations: { 'kttl.dev/ttl': '0' } }),
        'Pod',
      ).judgement.state,
      'expired',
    );
  });

  test('--native-jobs=leave: a Job whose TTL is its native field is left to the native controller', () => {
    const job = raw('Job', { namespace: 'team-a', outcome: 'succeeded', ttl: 0 });
    assert.equal(judge(job, 'Job').judgement.state, 'expired');
    const left = judge(job, 'Job', 'leave');
    assert.equal(left.judgement.state, 'no-ttl');
    assert.match(left.decision?.action === 'none' ? left.decision.detail : '', /--native-jobs=leave/);
    // An annotation TTL is still kttl's.
    const annotated = raw('Job', {
      namespace: 'team-a',
      outcome: 'succeeded',
      ttl: 0,
      annotations: { 'kttl.dev/ttl': '0' },
    });
    assert.equal(judge(annotated, 'Job', 'leave').judgement.state, 'expired');
  });

  test('a finish without a time: the controller counts from first seen, the CLI says it is unknown', () => {
    const pod = raw('Pod', {
      namespace: 'team-a',
      outcome: 'failed',
      withTime: false,
      annotations: { 'kttl.dev/ttl': '1h' },
    });
    assert.equal(judge(pod, 'Pod').judgement.state, 'no-finish-time');
    const seen = controllerDecision('Pod', pod, provider([]), {
      helmHooks: true,
      nativeJobs: 'handle',
      firstSeenMs: NOW - 2 * 3600_000,
    });
    assert.equal(seen.judgement.state, 'expired');
    assert.equal(seen.finish?.atMs, NOW - 2 * 3600_000);
  });

  test('the first-seen time is forgotten when the object is seen unfinished', () => {
    const calls: Array<ObjectSummary['finish']> = [];
    const running = summarizeObject(raw('Pod', { namespace: 'team-a', outcome: null }), {
      apiVersion: 'v1',
      kind: 'Pod',
    });
    verdictOf(running, {
      nowMs: NOW,
      policy: null,
      helmHooks: true,
      nativeJobs: 'handle',
      firstSeen: (f) => {
        calls.push(f);
        return undefined;
      },
    });
    assert.deepEqual(calls, [null]);
  });
});
