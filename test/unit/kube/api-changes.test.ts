import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { groupOfApiName } from '../../../src/kube/api-changes.ts';

test('a CRD or APIService name tells its group', () => {
  assert.equal(groupOfApiName('widgets.example.com'), 'example.com');
  assert.equal(groupOfApiName('v1beta1.metrics.k8s.io'), 'metrics.k8s.io');
  assert.equal(groupOfApiName('v1.'), '');
  assert.equal(groupOfApiName('nodot'), '');
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
  fc.assert(
    fc.property(label, fc.array(label, { minLength: 1, maxLength: 4 }), (plural, parts) => {
      const group = parts.join('.');
      assert.equal(groupOfApiName(`${plural}.${group}`), group);
    }),
  );
});
