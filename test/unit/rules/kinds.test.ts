// The kind registry (src/rules/kinds.ts): its entries are consistent, the three kinds added with it
// (JobSet, Volcano Job, Kubeflow Trainer TrainJob) finish as their operators judge it, and kinds
// are told apart by group — a Volcano Job is never judged as a batch Job, nor the other way round.
// The CRD fixtures (test/fixtures/crds/, upstream's) must agree with the registry's entries.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parse } from 'yaml';
import {
  BUILTIN_FINISH_RULES,
  customFinish,
  finishOf,
  jobFinish,
  readPath,
} from '../../../src/rules/finish.ts';
import {
  BUILTIN_KINDS,
  builtinCustomKinds,
  builtinKind,
  builtinKindNames,
  kindKeyOf,
  resourcesByGroup,
} from '../../../src/rules/kinds.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures/crds');
const T1 = '2026-08-01T12:00:00Z';
const T2 = '2026-08-02T13:30:00Z';
const T2_MS = Date.UTC(2026, 7, 2, 13, 30, 0);

const cond = (type: string, status: string, lastTransitionTime = T1) => ({
  type,
  status,
  reason: 'Test',
  message: '',
  lastTransitionTime,
});

describe('the kind registry', () => {
  test('one entry per group/kind; plurals unique per group; short names unique', () => {
    const keys = BUILTIN_KINDS.map((k) => kindKeyOf(k.group, k.kind));
    assert.equal(new Set(keys).size, keys.length, 'group/kind');
    const resources = BUILTIN_KINDS.map((k) => `${k.plural}.${k.group}`);
    assert.equal(new Set(resources).size, resources.length, 'plural.group');
    const shorts = BUILTIN_KINDS.flatMap((k) => k.shortNames);
    assert.equal(new Set(shorts).size, shorts.length, 'short names');
  });

  test('names are what the API server accepts', () => {
    for (const k of BUILTIN_KINDS) {
      const where = kindKeyOf(k.group, k.kind);
      assert.match(k.plural, /^[a-z][a-z0-9]*$/, `${where} plural`);
      for (const s of k.shortNames) assert.match(s, /^[a-z][a-z0-9]*$/, `${where} short name ${s}`);
      assert.match(k.kind, /^[A-Z][A-Za-z0-9]*$/, `${where} kind`);
      assert.match(k.version, /^v\d+((alpha|beta)\d+)?$/, `${where} version`);
      assert.match(k.group, /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$/, where);
    }
  });

  test('Jobs and Pods finish by fixed rules, every custom kind by a rule; gates and docs text set', () => {
    for (const k of BUILTIN_KINDS) {
      const where = kindKeyOf(k.group, k.kind);
      if (k.gate === 'builtinKinds') assert.ok('rule' in k.finish, `${where} has a finish rule`);
      else assert.ok('fixed' in k.finish, `${where} is fixed`);
      for (const [field, text] of Object.entries(k.terminal)) assert.ok(text.length > 0, `${where} ${field}`);
      assert.ok(k.project.length > 0, where);
    }
    assert.deepEqual(
      BUILTIN_KINDS.filter((k) => 'fixed' in k.finish).map((k) => kindKeyOf(k.group, k.kind)),
      ['batch/Job', '/Pod'],
    );
    assert.deepEqual(
      builtinCustomKinds().map((k) => kindKeyOf(k.group, k.kind)),
      Object.keys(BUILTIN_FINISH_RULES),
    );
  });

  test('frozen, and lookups never reach the prototype', () => {
    assert.ok(Object.isFrozen(BUILTIN_KINDS));
    for (const k of BUILTIN_KINDS) assert.ok(Object.isFrozen(k) && Object.isFrozen(k.shortNames));
    assert.equal(builtinKind('', '__proto__'), undefined);
    assert.equal(builtinKind('', 'constructor'), undefined);
  });

  test('the three kinds added with the registry', () => {
    const jobset = builtinKind('jobset.x-k8s.io', 'JobSet');
    assert.equal(jobset?.plural, 'jobsets');
    assert.equal(jobset?.version, 'v1alpha2');
    const vc = builtinKind('batch.volcano.sh', 'Job');
    assert.equal(vc?.plural, 'jobs');
    assert.deepEqual(vc?.shortNames, ['vcjob', 'vj']);
    assert.equal(vc?.version, 'v1alpha1');
    const tj = builtinKind('trainer.kubeflow.org', 'TrainJob');
    assert.equal(tj?.plural, 'trainjobs');
    assert.equal(tj?.version, 'v1alpha1');
    for (const k of [jobset, vc, tj]) {
      assert.equal(k?.gate, 'builtinKinds');
      assert.equal(k?.defaultPropagation, 'Background');
    }
  });

  test('builtinKindNames: each project once, custom kinds only', () => {
    const names = builtinKindNames();
    for (const p of ['Argo Workflows', 'Tekton Pipelines', 'JobSet', 'Volcano', 'Kubeflow Trainer'])
      assert.ok(names.includes(p), `${p} in ${names}`);
    assert.ok(!names.includes('Kubernetes'));
    assert.equal(names.split(', ').length, new Set(names.split(', ')).size);
  });

  test('resourcesByGroup keeps the registry order and groups plurals', () => {
    const groups = resourcesByGroup(builtinCustomKinds());
    assert.deepEqual(
      groups.find((g) => g.group === 'tekton.dev'),
      { group: 'tekton.dev', resources: ['pipelineruns', 'taskruns'] },
    );
    assert.equal(groups[0]?.group, 'argoproj.io');
    assert.deepEqual(
      groups.find((g) => g.group === 'batch.volcano.sh'),
      { group: 'batch.volcano.sh', resources: ['jobs'] },
    );
    assert.equal(groups.filter((g) => g.group === 'batch').length, 0, 'batch Jobs are not custom');
  });
});

// [apiVersion, kind, status, outcome, atMs, timeSource]
type Sample = [
  string,
  string,
  Record<string, unknown>,
  'succeeded' | 'failed' | null,
  number | null,
  string | null,
];

function check(samples: Sample[]): void {
  for (const [apiVersion, kind, status, outcome, atMs, timeSource] of samples) {
    test(`${apiVersion} ${kind} ${JSON.stringify(status).slice(0, 80)}`, () => {
      const f = finishOf({ apiVersion, kind, metadata: { name: 'x' }, status });
      if (outcome === null) assert.equal(f, null);
      else {
        assert.equal(f?.outcome, outcome);
        assert.equal(f?.atMs, atMs);
        assert.equal(f?.timeSource, timeSource);
      }
    });
  }
}

describe('JobSet (jobset.x-k8s.io): conditions Completed / Failed', () => {
  const v = 'jobset.x-k8s.io/v1alpha2';
  check([
    [v, 'JobSet', {}, null, null, null],
    [v, 'JobSet', { conditions: [cond('StartupPolicyInProgress', 'True')] }, null, null, null],
    [v, 'JobSet', { conditions: [cond('StartupPolicyCompleted', 'True')] }, null, null, null],
    [v, 'JobSet', { conditions: [cond('Suspended', 'True')] }, null, null, null],
    [v, 'JobSet', { conditions: [cond('RestartingJobSet', 'True')], restarts: 1 }, null, null, null],
    // Batch's condition names mean nothing on a JobSet.
    [v, 'JobSet', { conditions: [cond('Complete', 'True')] }, null, null, null],
    [v, 'JobSet', { conditions: [cond('Completed', 'False')] }, null, null, null],
    [
      v,
      'JobSet',
      {
        conditions: [cond('StartupPolicyCompleted', 'True'), cond('Completed', 'True', T2)],
        terminalState: 'Completed',
      },
      'succeeded',
      T2_MS,
      'condition',
    ],
    [
      v,
      'JobSet',
      { conditions: [cond('Failed', 'True', T2)], terminalState: 'Failed' },
      'failed',
      T2_MS,
      'condition',
    ],
  ]);
});

describe('Volcano Job (batch.volcano.sh): status.state.phase', () => {
  const v = 'batch.volcano.sh/v1alpha1';
  const state = (phase: string, lastTransitionTime: string | undefined = T2) => ({
    state: { phase, lastTransitionTime },
  });
  // Every phase of the CRD's enum (test/fixtures/crds/batch.volcano.sh_jobs.yaml).
  const INTERIM = ['Pending', 'Aborting', 'Aborted', 'Running', 'Restarting', 'Completing', 'Terminating'];
  check([
    ...INTERIM.map((p): Sample => [v, 'Job', state(p), null, null, null]),
    [v, 'Job', state('Completed'), 'succeeded', T2_MS, 'field'],
    [v, 'Job', state('Failed'), 'failed', T2_MS, 'field'],
    [v, 'Job', state('Terminated'), 'failed', T2_MS, 'field'],
    // Without its time, when kttl first sees it finished.
    [v, 'Job', { state: { phase: 'Completed' } }, 'succeeded', null, 'firstSeen'],
    // Batch's conditions on a Volcano Job do not finish it.
    [v, 'Job', { conditions: [cond('Complete', 'True')], state: { phase: 'Running' } }, null, null, null],
    // Volcano's phase history is not typed conditions.
    [v, 'Job', { conditions: [{ status: 'Completed', lastTransitionTime: T1 }] }, null, null, null],
  ]);

  test('the phases the rule names are exactly the CRD enum minus the interim ones', () => {
    const crd = loadFixture('batch.volcano.sh_jobs.yaml');
    const phase = readPath(
      crd.spec.versions[0]?.schema.openAPIV3Schema,
      '.properties.status.properties.state.properties.phase',
    ) as { enum: string[] };
    const rule = BUILTIN_FINISH_RULES['batch.volcano.sh/Job'];
    const named = [rule?.succeeded, rule?.failed].flatMap((m) => (m && 'values' in m ? m.values : []));
    assert.deepEqual([...named, ...INTERIM].sort(), [...phase.enum].sort());
  });
});

describe('TrainJob (trainer.kubeflow.org): conditions Complete / Failed', () => {
  const v = 'trainer.kubeflow.org/v1alpha1';
  check([
    [v, 'TrainJob', { jobsStatus: [] }, null, null, null],
    [v, 'TrainJob', { conditions: [cond('Suspended', 'True')] }, null, null, null],
    [v, 'TrainJob', { conditions: [cond('Suspended', 'False')] }, null, null, null],
    [v, 'TrainJob', { conditions: [cond('Created', 'True')] }, null, null, null],
    // Kubeflow training-operator's and JobSet's names mean nothing on a TrainJob.
    [v, 'TrainJob', { conditions: [cond('Succeeded', 'True')] }, null, null, null],
    [v, 'TrainJob', { conditions: [cond('Completed', 'True')] }, null, null, null],
    [v, 'TrainJob', { conditions: [cond('Complete', 'True', T2)] }, 'succeeded', T2_MS, 'condition'],
    [
      v,
      'TrainJob',
      { conditions: [{ ...cond('Failed', 'True', T2), reason: 'DeadlineExceeded' }] },
      'failed',
      T2_MS,
      'condition',
    ],
  ]);
});

describe('a Volcano Job and a batch Job are told apart by group', () => {
  const phases = fc.constantFrom(
    'Pending',
    'Running',
    'Completed',
    'Failed',
    'Terminated',
    'Aborted',
    'Complete',
    'Unknown',
  );
  const status = fc.record(
    {
      conditions: fc.array(
        fc.record({
          type: fc.constantFrom('Complete', 'Failed', 'Completed', 'FailureTarget', 'Suspended'),
          status: fc.constantFrom('True', 'False', 'Unknown'),
          lastTransitionTime: fc.constantFrom(T1, T2),
        }),
        { maxLength: 3 },
      ),
      state: fc.record({ phase: phases, lastTransitionTime: fc.constantFrom(T1, T2) }),
    },
    { requiredKeys: [] },
  );

  test('for any status, each is judged by its own rule only', () => {
    const volcano = BUILTIN_FINISH_RULES['batch.volcano.sh/Job'];
    assert.ok(volcano);
    fc.assert(
      fc.property(status, (s) => {
        const batch = { apiVersion: 'batch/v1', kind: 'Job', status: s };
        const vc = { apiVersion: 'batch.volcano.sh/v1alpha1', kind: 'Job', status: s };
        assert.deepEqual(finishOf(batch), jobFinish(batch));
        assert.deepEqual(finishOf(vc), customFinish(vc, volcano));
        // List items come without apiVersion/kind: the type passed decides, never the kind alone.
        assert.deepEqual(
          finishOf({ status: s }, null, { apiVersion: 'batch.volcano.sh/v1alpha1', kind: 'Job' }),
          customFinish(vc, volcano),
        );
      }),
    );
  });

  test('registry lookups by group and kind', () => {
    assert.notEqual(builtinKind('batch', 'Job'), builtinKind('batch.volcano.sh', 'Job'));
    assert.equal(builtinKind('batch.volcano.sh', 'Job')?.project, 'Volcano');
    assert.equal(builtinKind('batch', 'Job')?.project, 'Kubernetes');
    assert.equal(builtinKind('volcano.sh', 'Job'), undefined);
  });
});

interface Crd {
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; shortNames?: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: unknown };
      schema: { openAPIV3Schema: unknown };
    }>;
  };
}

function loadFixture(file: string): Crd {
  return parse(readFileSync(join(FIXTURES, file), 'utf8')) as Crd;
}

describe('the CRD fixtures (test/fixtures/crds/) agree with the registry', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml'));
  test('there is one per kind added with the registry', () => {
    assert.deepEqual(files.sort(), [
      'batch.volcano.sh_jobs.yaml',
      'jobset.x-k8s.io_jobsets.yaml',
      'trainer.kubeflow.org_trainjobs.yaml',
    ]);
  });
  for (const file of files) {
    test(file, () => {
      const crd = loadFixture(file);
      const k = builtinKind(crd.spec.group, crd.spec.names.kind);
      assert.ok(k, `${crd.spec.group}/${crd.spec.names.kind} is in the registry`);
      assert.equal(file, `${k.group}_${k.plural}.yaml`);
      assert.equal(crd.spec.names.plural, k.plural);
      assert.deepEqual(crd.spec.names.shortNames ?? [], [...k.shortNames]);
      assert.equal(crd.spec.scope, 'Namespaced');
      const v = crd.spec.versions.find((x) => x.name === k.version);
      assert.ok(v?.served && v.storage, `${k.version} served and stored`);
      assert.ok(v.subresources?.status, 'status subresource');
      // Every path the finish rule reads exists in the status schema.
      const rule = 'rule' in k.finish ? k.finish.rule : undefined;
      assert.ok(rule);
      const schemaAt = (path: string) =>
        readPath(v.schema.openAPIV3Schema, path.replace(/\.([A-Za-z0-9_-]+)/g, '.properties.$1'));
      for (const m of [rule.succeeded, rule.failed]) {
        if (m === undefined) continue;
        if ('condition' in m) {
          const c = schemaAt('.status.conditions') as { items?: { properties?: Record<string, unknown> } };
          for (const f of ['type', 'status', 'lastTransitionTime'])
            assert.ok(c?.items?.properties?.[f], `status.conditions[].${f}`);
        } else {
          const field = schemaAt(m.field) as { type?: string; enum?: string[] } | undefined;
          assert.equal(field?.type, 'string', m.field);
          for (const value of m.values)
            assert.ok(!field.enum || field.enum.includes(value), `${value} in the enum of ${m.field}`);
        }
      }
      if (rule.timeField !== undefined) {
        const t = schemaAt(rule.timeField) as { format?: string } | undefined;
        assert.equal(t?.format, 'date-time', rule.timeField);
      }
    });
  }
});
