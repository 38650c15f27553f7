// The metrics' kind label (src/controller/controller.ts metricKind): a Volcano Job and a batch Job
// never share a series; every other kind keeps its plain name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricKind } from '../../../src/controller/controller.ts';
import { BUILTIN_KINDS } from '../../../src/rules/kinds.ts';

test('metric kind labels are distinct for every built-in kind, plain where the name is unique', () => {
  const labels = BUILTIN_KINDS.map((k) => metricKind(k));
  assert.equal(new Set(labels).size, BUILTIN_KINDS.length, labels.join(', '));
  assert.equal(metricKind({ group: 'batch', kind: 'Job' }), 'Job');
  assert.equal(metricKind({ group: '', kind: 'Pod' }), 'Pod');
  assert.equal(metricKind({ group: 'batch.volcano.sh', kind: 'Job' }), 'Job.batch.volcano.sh');
  assert.equal(metricKind({ group: 'argoproj.io', kind: 'Workflow' }), 'Workflow');
});
