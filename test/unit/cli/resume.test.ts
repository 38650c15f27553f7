import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resumeTarget } from '../../../src/cli/commands/resume.ts';
import { UserError } from '../../../src/cli/errors.ts';

const NS = { policy: 'team-a', lease: 'kttl' };

describe('kttl resume: what it annotates', () => {
  test('a TTLPolicy in the namespace, a ClusterTTLPolicy, or the Lease', () => {
    for (const ref of ['policy/p', 'ttlpolicy/p', 'TTLPolicy/p', 'ttlpolicy.kttl.dev/p']) {
      const t = resumeTarget(ref, NS, 'kttl');
      assert.deepEqual(
        [t.resource.kind, t.namespace, t.name, t.text],
        ['TTLPolicy', 'team-a', 'p', 'ttlpolicy/p in namespace "team-a"'],
      );
    }
    for (const ref of ['clusterttlpolicy/c', 'ctp/c', 'clusterpolicy/c']) {
      const t = resumeTarget(ref, NS, 'kttl');
      assert.deepEqual([t.resource.kind, t.namespace, t.name], ['ClusterTTLPolicy', '', 'c']);
    }
    const l = resumeTarget(undefined, NS, 'kttl-x');
    assert.deepEqual([l.resource.kind, l.namespace, l.name], ['Lease', 'kttl', 'kttl-x']);
  });

  test('anything else is a user error naming the forms', () => {
    for (const bad of ['job/x', 'policy', 'policy/', 'policy/a/b', 'x'])
      assert.throws(
        () => resumeTarget(bad, NS, 'kttl'),
        (e) => e instanceof UserError && /policy\/NAME/.test(e.message),
      );
  });
});
