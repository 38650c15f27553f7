import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { groupAnnotationKeys, groupValue } from '../../../src/rules/history.ts';
import { summarizeObject } from '../../../src/rules/summary.ts';

const JOB = { apiVersion: 'batch/v1', kind: 'Job' };

test('the summary keeps the annotations policies group by, and only those beside kttl’s own', () => {
  const keys = groupAnnotationKeys([
    { failed: 1, groupBy: { by: 'annotation', key: 'ci/pipeline' } },
    { succeeded: 2, groupBy: { by: 'label', key: 'app' } },
    undefined,
  ]);
  assert.deepEqual([...keys], ['ci/pipeline']);
  const raw = {
    metadata: { name: 'x', annotations: { 'ci/pipeline': 'build', other: 'y', 'kttl.dev/ttl': '1h' } },
  };
  const s = summarizeObject(raw, JOB, [], undefined, keys);
  assert.deepEqual(s.annotations, { 'kttl.dev/ttl': '1h', 'ci/pipeline': 'build' });
  assert.equal(groupValue(s, { by: 'annotation', key: 'ci/pipeline' }), 'annotation:ci/pipeline=build');
  // Without the keys (no policy groups by it) the value is not cached: no group.
  assert.equal(groupValue(summarizeObject(raw, JOB), { by: 'annotation', key: 'ci/pipeline' }), null);
  // Over the 1 KiB cap: left out (no group), and the TTL is not made invalid by it.
  const big = summarizeObject(
    { metadata: { name: 'x', annotations: { 'ci/pipeline': 'p'.repeat(2000) } } },
    JOB,
    [],
    undefined,
    keys,
  );
  assert.deepEqual(big.annotations, {});
  fc.assert(
    fc.property(fc.string({ maxLength: 100 }), (value) => {
      const r = summarizeObject(
        { metadata: { name: 'x', annotations: { 'ci/pipeline': value } } },
        JOB,
        [],
        undefined,
        keys,
      );
      assert.equal(
        groupValue(r, { by: 'annotation', key: 'ci/pipeline' }),
        `annotation:ci/pipeline=${value}`,
      );
    }),
  );
});
