import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  BUILTIN_FINISH_RULES,
  builtinFinishRule,
  customFinish,
  type FinishRule,
  finishOf,
  finishRuleError,
  groupOf,
  jobFinish,
  parsePath,
  podFinish,
  readPath,
  toEpochMs,
} from '../../../src/rules/finish.ts';
import type { Finish } from '../../../src/rules/types.ts';

const T1 = '2026-08-01T12:00:00Z';
const T1_MS = Date.UTC(2026, 7, 1, 12, 0, 0);
const T2 = '2026-08-02T13:30:00Z';
const T2_MS = Date.UTC(2026, 7, 2, 13, 30, 0);
const T3 = '2026-08-03T00:00:00Z';
const T3_MS = Date.UTC(2026, 7, 3, 0, 0, 0);

describe('toEpochMs', () => {
  const cases: Array<[string, unknown, number | null]> = [
    ['RFC 3339 Z', T1, T1_MS],
    ['lower-case z', '2026-08-01T12:00:00z', T1_MS],
    ['offset', '2026-08-01T14:00:00+02:00', T1_MS],
    ['MicroTime fraction', '2026-08-01T12:00:00.123456Z', T1_MS + 123],
    ['nanosecond fraction', '2026-08-01T12:00:00.999999999Z', T1_MS + 999],
    ['Date (client-node list results)', new Date(T1_MS), T1_MS],
    ['invalid Date', new Date(Number.NaN), null],
    ['Go zero time', '0001-01-01T00:00:00Z', null],
    ['Go zero time as Date', new Date('0001-01-01T00:00:00Z'), null],
    ['date only', '2026-08-01', null],
    ['no zone', '2026-08-01T12:00:00', null],
    ['prose', 'March 7, 2026', null],
    ['empty', '', null],
    ['number (not guessed)', T1_MS, null],
    ['null', null, null],
    ['undefined', undefined, null],
    ['object', { time: T1 }, null],
  ];
  for (const [name, v, want] of cases) {
    test(name, () => assert.equal(toEpochMs(v), want));
  }
  test('never throws and returns a finite number or null', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.date({ noInvalidDate: false })), (v) => {
        const r = toEpochMs(v);
        assert.ok(r === null || Number.isFinite(r));
      }),
      { numRuns: 2000 },
    );
  });
});

type Cond = { type: string; status: string; lastTransitionTime?: unknown };
function job(conditions: Cond[], status: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'foobar', namespace: 'default' },
    status: { ...status, conditions },
  };
}

describe('jobFinish (upstream jobFinishTime / IsJobFinished)', () => {
  // Reproduces upstream's TestJobFinishTime / IsJobFinished cases from memory (the stored upstream
  // test file available here predates the SuccessCriteriaMet/FailureTarget cases).
  const cases: Array<[string, unknown, Finish | null]> = [
    [
      'successful job',
      job([{ type: 'Complete', status: 'True', lastTransitionTime: T1 }]),
      { outcome: 'succeeded', atMs: T1_MS, timeSource: 'condition', reason: 'condition Complete=True' },
    ],
    [
      'failed job',
      job([{ type: 'Failed', status: 'True', lastTransitionTime: T2 }]),
      { outcome: 'failed', atMs: T2_MS, timeSource: 'condition', reason: 'condition Failed=True' },
    ],
    [
      'successful job with SuccessCriteriaMet first: the Complete time, not the interim one',
      job([
        { type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: T1 },
        { type: 'Complete', status: 'True', lastTransitionTime: T2 },
      ]),
      { outcome: 'succeeded', atMs: T2_MS, timeSource: 'condition', reason: 'condition Complete=True' },
    ],
    [
      'failed job with FailureTarget first: the Failed time, not the interim one',
      job([
        { type: 'FailureTarget', status: 'True', lastTransitionTime: T1 },
        { type: 'Failed', status: 'True', lastTransitionTime: T2 },
      ]),
      { outcome: 'failed', atMs: T2_MS, timeSource: 'condition', reason: 'condition Failed=True' },
    ],
    [
      'only SuccessCriteriaMet (still terminating pods): not finished',
      job([{ type: 'SuccessCriteriaMet', status: 'True', lastTransitionTime: T1 }]),
      null,
    ],
    [
      'only FailureTarget (still terminating pods): not finished',
      job([{ type: 'FailureTarget', status: 'True', lastTransitionTime: T1 }]),
      null,
    ],
    [
      'Complete=False: not finished',
      job([{ type: 'Complete', status: 'False', lastTransitionTime: T1 }]),
      null,
    ],
    [
      'Failed=Unknown: not finished',
      job([{ type: 'Failed', status: 'Unknown', lastTransitionTime: T1 }]),
      null,
    ],
    [
      'Suspended=True: not finished',
      job([{ type: 'Suspended', status: 'True', lastTransitionTime: T1 }]),
      null,
    ],
    ['no conditions', job([]), null],
    [
      'first Complete/Failed True wins (Failed listed first)',
      job([
        { type: 'Complete', status: 'False', lastTransitionTime: T3 },
        { type: 'Failed', status: 'True', lastTransitionTime: T1 },
        { type: 'Complete', status: 'True', lastTransitionTime: T2 },
      ]),
      { outcome: 'failed', atMs: T1_MS, timeSource: 'condition', reason: 'condition Failed=True' },
    ],
    [
      'missing lastTransitionTime: finished, no time (an error upstream: never deleted)',
      job([{ type: 'Complete', status: 'True' }]),
      { outcome: 'succeeded', atMs: null, timeSource: 'condition', reason: 'condition Complete=True' },
    ],
    [
      'unparsable lastTransitionTime',
      job([{ type: 'Failed', status: 'True', lastTransitionTime: 'yesterday' }]),
      { outcome: 'failed', atMs: null, timeSource: 'condition', reason: 'condition Failed=True' },
    ],
    [
      'Date lastTransitionTime (list result)',
      job([{ type: 'Complete', status: 'True', lastTransitionTime: new Date(T1_MS) }]),
      { outcome: 'succeeded', atMs: T1_MS, timeSource: 'condition', reason: 'condition Complete=True' },
    ],
    [
      'completionTime is never read',
      job([{ type: 'Complete', status: 'True', lastTransitionTime: T2 }], { completionTime: T1 }),
      { outcome: 'succeeded', atMs: T2_MS, timeSource: 'condition', reason: 'condition Complete=True' },
    ],
    [
      'counters are never read (a retrying Job passes through active == 0)',
      job([], { active: 0, succeeded: 1, failed: 2, completionTime: T1 }),
      null,
    ],
    ['no status at all', { kind: 'Job', metadata: {} }, null],
    ['conditions not an array', { status: { conditions: { type: 'Complete', status: 'True' } } }, null],
    [
      'status "true" (lower case) does not count',
      job([{ type: 'Complete', status: 'true', lastTransitionTime: T1 }]),
      null,
    ],
    ['not an object', 'Job', null],
    ['null', null, null],
  ];
  for (const [name, raw, want] of cases) {
    test(name, () => assert.deepEqual(jobFinish(raw), want));
  }
});

function pod(phase: string | undefined, extra: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default' },
    status: { phase, ...extra },
  };
}
const terminated = (finishedAt: unknown) => ({
  name: 'c',
  state: { terminated: { exitCode: 0, finishedAt } },
});

describe('podFinish', () => {
  const cases: Array<[string, unknown, Finish | null]> = [
    ['Running', pod('Running', { containerStatuses: [terminated(T1)] }), null],
    ['Pending', pod('Pending'), null],
    ['Unknown', pod('Unknown'), null],
    ['no phase', pod(undefined), null],
    [
      'Succeeded: latest container finishedAt',
      pod('Succeeded', { containerStatuses: [terminated(T1), terminated(T2)] }),
      {
        outcome: 'succeeded',
        atMs: T2_MS,
        timeSource: 'containerFinishedAt',
        reason: '.status.phase=Succeeded',
      },
    ],
    [
      'Failed: init and ephemeral containers count too',
      pod('Failed', {
        initContainerStatuses: [terminated(T1)],
        containerStatuses: [terminated(T2)],
        ephemeralContainerStatuses: [terminated(T3)],
      }),
      { outcome: 'failed', atMs: T3_MS, timeSource: 'containerFinishedAt', reason: '.status.phase=Failed' },
    ],
    [
      'running / waiting containers and bad times are skipped',
      pod('Failed', {
        containerStatuses: [
          { name: 'a', state: { running: { startedAt: T3 } } },
          { name: 'b', state: { waiting: { reason: 'x' } } },
          terminated('garbage'),
          terminated(new Date(T1_MS)),
        ],
      }),
      { outcome: 'failed', atMs: T1_MS, timeSource: 'containerFinishedAt', reason: '.status.phase=Failed' },
    ],
    [
      'evicted / never started: no container time → firstSeen',
      pod('Failed', { reason: 'Evicted' }),
      { outcome: 'failed', atMs: null, timeSource: 'firstSeen', reason: '.status.phase=Failed' },
    ],
  ];
  for (const [name, raw, want] of cases) {
    test(name, () => assert.deepEqual(podFinish(raw), want));
  }
});

describe('parsePath / readPath', () => {
  const obj = {
    status: { phase: 'Failed', applicationState: { state: 'COMPLETED' }, 'odd-key_1': 7, nul: null },
  };
  const valid: Array<[string, unknown]> = [
    ['.status.phase', 'Failed'],
    ['.status.applicationState.state', 'COMPLETED'],
    ['.status.odd-key_1', 7],
    ['.status.nul', null],
    ['.status.missing', undefined],
    ['.status.phase.deeper', undefined],
    ['.status', obj.status],
    // own properties only: nothing from Object.prototype
    ['.constructor', undefined],
    ['.status.constructor', undefined],
    ['.__proto__', undefined],
    ['.status.toString', undefined],
  ];
  for (const [path, want] of valid) {
    test(`reads ${path}`, () => {
      assert.ok(parsePath(path).ok, path);
      assert.equal(readPath(obj, path), want);
    });
  }
  const malformed = [
    '',
    'status.phase',
    '.',
    '..status',
    '.status.',
    '.status..phase',
    '.status[0]',
    '.status.conditions[?(@.type=="x")]',
    '.status phase',
    '.status.$x',
    "['status']",
    `.${'a'.repeat(300)}`,
  ];
  for (const path of malformed) {
    test(`rejects ${JSON.stringify(path)}`, () => {
      const p = parsePath(path);
      assert.equal(p.ok, false);
      if (!p.ok) assert.ok(p.error.startsWith('invalid field path'));
      assert.equal(readPath(obj, path), undefined);
    });
  }
  test('reading does not walk into arrays or primitives', () => {
    assert.equal(readPath({ status: ['a'] }, '.status.0'), undefined);
    assert.equal(readPath('str', '.length'), undefined);
    assert.equal(readPath(null, '.a'), undefined);
  });
});

const cond = (type: string, status: string, lastTransitionTime?: unknown) => ({
  type,
  status,
  lastTransitionTime,
});
const build = (status: Record<string, unknown>) => ({ apiVersion: 'example.com/v1', kind: 'Build', status });

describe('customFinish (the example rule of docs/policies.md)', () => {
  const rule: FinishRule = {
    succeeded: { condition: { type: 'Succeeded' } }, // status defaults to "True"
    failed: { field: '.status.phase', values: ['Failed', 'Error'] },
    timeField: '.status.finishedAt',
  };
  const cases: Array<[string, unknown, Finish | null]> = [
    ['nothing', build({}), null],
    [
      'Succeeded=False is not the succeeded matcher',
      build({ conditions: [cond('Succeeded', 'False', T1)] }),
      null,
    ],
    [
      'condition match: its lastTransitionTime',
      build({ conditions: [cond('Ready', 'True', T3), cond('Succeeded', 'True', T1)], finishedAt: T2 }),
      { outcome: 'succeeded', atMs: T1_MS, timeSource: 'condition', reason: 'condition Succeeded=True' },
    ],
    [
      'condition without a time falls back to timeField',
      build({ conditions: [cond('Succeeded', 'True')], finishedAt: T2 }),
      { outcome: 'succeeded', atMs: T2_MS, timeSource: 'field', reason: 'condition Succeeded=True' },
    ],
    [
      'condition without any time: firstSeen',
      build({ conditions: [cond('Succeeded', 'True')] }),
      { outcome: 'succeeded', atMs: null, timeSource: 'firstSeen', reason: 'condition Succeeded=True' },
    ],
    [
      'field match with timeField',
      build({ phase: 'Error', finishedAt: T2 }),
      { outcome: 'failed', atMs: T2_MS, timeSource: 'field', reason: '.status.phase=Error' },
    ],
    [
      'field match, timeField unparsable: firstSeen',
      build({ phase: 'Failed', finishedAt: 'soon' }),
      { outcome: 'failed', atMs: null, timeSource: 'firstSeen', reason: '.status.phase=Failed' },
    ],
    ['field value not listed', build({ phase: 'Running' }), null],
    ['field value case differs', build({ phase: 'failed' }), null],
    ['field holds an object', build({ phase: { value: 'Failed' } }), null],
    [
      'both match: failed wins',
      build({ conditions: [cond('Succeeded', 'True', T1)], phase: 'Failed', finishedAt: T2 }),
      { outcome: 'failed', atMs: T2_MS, timeSource: 'field', reason: '.status.phase=Failed' },
    ],
  ];
  for (const [name, raw, want] of cases) {
    test(name, () => assert.deepEqual(customFinish(raw, rule), want));
  }

  test('explicit condition status and numeric/boolean field values', () => {
    const r: FinishRule = {
      succeeded: { field: '.status.done', values: ['true'] },
      failed: { condition: { type: 'Succeeded', status: 'False' } },
    };
    assert.equal(customFinish(build({ done: true }), r)?.outcome, 'succeeded');
    assert.equal(customFinish(build({ done: 'true' }), r)?.outcome, 'succeeded');
    assert.equal(customFinish(build({ done: false }), r), null);
    assert.equal(customFinish(build({ conditions: [cond('Succeeded', 'False', T1)] }), r)?.outcome, 'failed');
    assert.equal(customFinish(build({ conditions: [cond('Succeeded', 'Unknown', T1)] }), r), null);
    const code: FinishRule = { failed: { field: '.status.exitCode', values: ['1'] } };
    assert.equal(customFinish(build({ exitCode: 1 }), code)?.outcome, 'failed');
  });

  test('a malformed path never matches', () => {
    const r: FinishRule = { failed: { field: 'status.phase', values: ['Failed'] } };
    assert.equal(customFinish(build({ phase: 'Failed' }), r), null);
  });

  test('rule with only one outcome', () => {
    const r: FinishRule = { succeeded: { condition: { type: 'Done' } } };
    assert.equal(customFinish(build({ conditions: [cond('Done', 'True', T1)] }), r)?.outcome, 'succeeded');
    assert.equal(customFinish(build({ conditions: [cond('Failed', 'True', T1)] }), r), null);
  });

  test('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.anything(), (raw) => {
        const f = customFinish(raw, rule);
        assert.ok(f === null || f.outcome === 'succeeded' || f.outcome === 'failed');
        jobFinish(raw);
        podFinish(raw);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('finishRuleError', () => {
  const cases: Array<[string, FinishRule, string | null]> = [
    [
      'docs example',
      {
        succeeded: { condition: { type: 'Succeeded', status: 'True' } },
        failed: { field: '.status.phase', values: ['Failed'] },
      },
      null,
    ],
    ['empty rule', {}, 'neither succeeded nor failed'],
    [
      'bad field path',
      { failed: { field: 'status.phase', values: ['x'] } },
      'finished.failed.field: invalid field path',
    ],
    [
      'no values',
      { failed: { field: '.status.phase', values: [] } },
      'finished.failed.values must not be empty',
    ],
    ['empty condition type', { succeeded: { condition: { type: '' } } }, 'finished.succeeded.condition.type'],
    ['bad timeField', { succeeded: { condition: { type: 'X' } }, timeField: '.a..b' }, 'finished.timeField'],
  ];
  for (const [name, rule, fragment] of cases) {
    test(name, () => {
      const e = finishRuleError(rule);
      if (fragment === null) assert.equal(e, null);
      else assert.ok(e?.includes(fragment), `${e} lacks ${fragment}`);
    });
  }
  test('every built-in rule is valid', () => {
    for (const [key, rule] of Object.entries(BUILTIN_FINISH_RULES))
      assert.equal(finishRuleError(rule), null, key);
  });
});

describe('BUILTIN_FINISH_RULES', () => {
  test('covers the built-in custom kinds of src/rules/kinds.ts', () => {
    assert.deepEqual(Object.keys(BUILTIN_FINISH_RULES).sort(), [
      'argoproj.io/Workflow',
      'batch.volcano.sh/Job',
      'jobset.x-k8s.io/JobSet',
      'kubeflow.org/MPIJob',
      'kubeflow.org/PyTorchJob',
      'kubeflow.org/TFJob',
      'kubeflow.org/XGBoostJob',
      'ray.io/RayJob',
      'sparkoperator.k8s.io/SparkApplication',
      'tekton.dev/PipelineRun',
      'tekton.dev/TaskRun',
      'trainer.kubeflow.org/TrainJob',
    ]);
  });
  test('is frozen', () => {
    assert.ok(Object.isFrozen(BUILTIN_FINISH_RULES));
    const argo = BUILTIN_FINISH_RULES['argoproj.io/Workflow'];
    assert.ok(argo && Object.isFrozen(argo) && Object.isFrozen(argo.failed));
  });

  // [apiVersion, kind, status, expected outcome, expected atMs, expected timeSource]
  const samples: Array<
    [
      string,
      string,
      Record<string, unknown>,
      Finish['outcome'] | null,
      number | null,
      Finish['timeSource'] | null,
    ]
  > = [
    ['argoproj.io/v1alpha1', 'Workflow', { phase: 'Running', startedAt: T1 }, null, null, null],
    ['argoproj.io/v1alpha1', 'Workflow', { phase: 'Succeeded', finishedAt: T2 }, 'succeeded', T2_MS, 'field'],
    ['argoproj.io/v1alpha1', 'Workflow', { phase: 'Failed', finishedAt: T2 }, 'failed', T2_MS, 'field'],
    ['argoproj.io/v1alpha1', 'Workflow', { phase: 'Error', finishedAt: T2 }, 'failed', T2_MS, 'field'],
    ['tekton.dev/v1', 'PipelineRun', { conditions: [cond('Succeeded', 'Unknown', T1)] }, null, null, null],
    [
      'tekton.dev/v1',
      'PipelineRun',
      { conditions: [cond('Succeeded', 'True', T1)] },
      'succeeded',
      T1_MS,
      'condition',
    ],
    [
      'tekton.dev/v1beta1',
      'TaskRun',
      { conditions: [{ ...cond('Succeeded', 'False', T2), reason: 'TaskRunCancelled' }] },
      'failed',
      T2_MS,
      'condition',
    ],
    [
      'kubeflow.org/v1',
      'PyTorchJob',
      { conditions: [cond('Created', 'True', T1), cond('Running', 'True', T1)] },
      null,
      null,
      null,
    ],
    [
      'kubeflow.org/v1',
      'PyTorchJob',
      {
        conditions: [
          cond('Created', 'True', T1),
          cond('Running', 'False', T2),
          cond('Succeeded', 'True', T2),
        ],
      },
      'succeeded',
      T2_MS,
      'condition',
    ],
    ['kubeflow.org/v1', 'TFJob', { conditions: [cond('Failed', 'True', T3)] }, 'failed', T3_MS, 'condition'],
    [
      'kubeflow.org/v2beta1',
      'MPIJob',
      { conditions: [cond('Succeeded', 'True', T1)] },
      'succeeded',
      T1_MS,
      'condition',
    ],
    [
      'kubeflow.org/v1',
      'XGBoostJob',
      { conditions: [cond('Failed', 'True', T1)] },
      'failed',
      T1_MS,
      'condition',
    ],
    ['ray.io/v1', 'RayJob', { jobStatus: 'RUNNING', jobDeploymentStatus: 'Running' }, null, null, null],
    [
      'ray.io/v1',
      'RayJob',
      { jobStatus: 'SUCCEEDED', jobDeploymentStatus: 'Complete', endTime: T2 },
      'succeeded',
      T2_MS,
      'field',
    ],
    ['ray.io/v1', 'RayJob', { jobStatus: 'FAILED', endTime: T2 }, 'failed', T2_MS, 'field'],
    [
      'sparkoperator.k8s.io/v1beta2',
      'SparkApplication',
      { applicationState: { state: 'RUNNING' } },
      null,
      null,
      null,
    ],
    [
      'sparkoperator.k8s.io/v1beta2',
      'SparkApplication',
      { applicationState: { state: 'FAILING' } },
      null,
      null,
      null,
    ],
    [
      'sparkoperator.k8s.io/v1beta2',
      'SparkApplication',
      { applicationState: { state: 'COMPLETED' }, terminationTime: T3 },
      'succeeded',
      T3_MS,
      'field',
    ],
    [
      'sparkoperator.k8s.io/v1beta2',
      'SparkApplication',
      // Interim: the operator retries submission (its terminal states are COMPLETED and FAILED).
      { applicationState: { state: 'SUBMISSION_FAILED' } },
      null,
      null,
      'firstSeen',
    ],
    [
      'sparkoperator.k8s.io/v1beta2',
      'SparkApplication',
      { applicationState: { state: 'PENDING_RERUN' } },
      null,
      null,
      'firstSeen',
    ],
    [
      'sparkoperator.k8s.io/v1beta2',
      'SparkApplication',
      { applicationState: { state: 'FAILING' } },
      null,
      null,
      'firstSeen',
    ],
  ];
  for (const [apiVersion, kind, status, outcome, atMs, timeSource] of samples) {
    test(`${kind} ${JSON.stringify(status).slice(0, 70)}`, () => {
      const raw = { apiVersion, kind, metadata: { name: 'x' }, status };
      const f = finishOf(raw);
      if (outcome === null) {
        assert.equal(f, null);
      } else {
        assert.equal(f?.outcome, outcome);
        assert.equal(f?.atMs, atMs);
        assert.equal(f?.timeSource, timeSource);
      }
    });
  }
});

describe('finishOf / builtinFinishRule / groupOf', () => {
  test('groupOf', () => {
    assert.equal(groupOf('batch/v1'), 'batch');
    assert.equal(groupOf('v1'), '');
    assert.equal(groupOf('sparkoperator.k8s.io/v1beta2'), 'sparkoperator.k8s.io');
  });
  test('builtinFinishRule finds by group and kind, and nothing from the prototype', () => {
    assert.equal(builtinFinishRule('ray.io/v1', 'RayJob'), BUILTIN_FINISH_RULES['ray.io/RayJob']);
    assert.equal(builtinFinishRule('example.com/v1', 'RayJob'), null);
    assert.equal(builtinFinishRule('v1', 'constructor'), null);
    assert.equal(builtinFinishRule('', '__proto__'), null);
  });
  test('Jobs and Pods use their fixed rules, even when a rule is passed', () => {
    const anyRule: FinishRule = { succeeded: { field: '.status.phase', values: ['Running'] } };
    const j = job([{ type: 'Complete', status: 'True', lastTransitionTime: T1 }]);
    assert.equal(finishOf(j, anyRule)?.reason, 'condition Complete=True');
    assert.equal(finishOf(pod('Running'), anyRule), null);
    assert.equal(finishOf(pod('Succeeded'))?.outcome, 'succeeded');
  });
  test('a CRD kind named Job is not a batch Job', () => {
    const raw = {
      apiVersion: 'example.com/v1',
      kind: 'Job',
      status: { conditions: [cond('Complete', 'True', T1)] },
    };
    assert.equal(finishOf(raw), null);
  });
  test('type for list items without apiVersion/kind', () => {
    const item = { metadata: { name: 'j' }, status: { conditions: [cond('Failed', 'True', T1)] } };
    assert.equal(finishOf(item), null);
    assert.equal(finishOf(item, null, { apiVersion: 'batch/v1', kind: 'Job' })?.outcome, 'failed');
  });
  test('a policy rule overrides the built-in one', () => {
    const raw = { apiVersion: 'ray.io/v1', kind: 'RayJob', status: { jobStatus: 'STOPPED' } };
    assert.equal(finishOf(raw), null);
    assert.equal(
      finishOf(raw, { failed: { field: '.status.jobStatus', values: ['STOPPED'] } })?.outcome,
      'failed',
    );
  });
  test('unknown kind without a rule: not finished', () => {
    assert.equal(finishOf(build({ phase: 'Failed' })), null);
  });
});
