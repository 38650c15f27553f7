// `kttl explain`: each TTL candidate with its verdict, the winner and why, what blocks deletion, and its
// user errors.
// Run as the BUILT bundle (dist/kttl.mjs) in a child process against the real control plane.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertError, createSampleJobs, kttl, ok, useCliTestbed } from '../testbed/cli.ts';
import { createJob, jobFinishMs } from '../testbed/jobs.ts';
import { type Clients, newNamespace, waitForJob } from '../testbed/use.ts';

let c: Clients;

before(async () => {
  ({ c } = await useCliTestbed());
});

const HOUR = 3_600_000;

async function dropFinalizers(ns: string, name: string): Promise<void> {
  // A JSON patch (client-node's default for patch calls).
  await c.batch.patchNamespacedJob({
    name,
    namespace: ns,
    body: [{ op: 'remove', path: '/metadata/finalizers' }],
  });
}

describe('kttl explain on a namespace of sample Jobs', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli');
    await createSampleJobs(c, ns);
  });

  test('explain: each candidate with its value, the winner and why, the exact deletion time on the server clock', async () => {
    const r = ok(await kttl(['explain', 'job/failed-7d', '-n', ns, '-o', 'json']));
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.status, 'Failed');
    assert.equal(doc.finish.timeSource, 'condition');
    assert.equal(Date.parse(doc.finish.at), await jobFinishMs(c, ns, 'failed-7d'));
    const cand = (where: string) => doc.candidates.find((x: { where: string }) => x.where === where);
    assert.equal(cand('annotation kttl.dev/ttl-failed').value, '7d');
    assert.equal(cand('annotation kttl.dev/ttl-failed').results.failed.verdict, 'wins');
    assert.equal(cand('annotation kttl.dev/ttl').value, '2h');
    assert.equal(cand('annotation kttl.dev/ttl').results.failed.verdict, 'shadowed');
    assert.equal(cand('annotation kttl.dev/keep').results.failed.verdict, 'not set');
    assert.equal(cand('annotation kttl.dev/ttl-succeeded').results.failed.verdict, 'not set');
    assert.match(doc.why, /outcome-specific annotation wins over kttl\.dev\/ttl/);
    assert.equal(doc.deletion.state, 'pending');
    assert.equal(Date.parse(doc.deletion.at), (await jobFinishMs(c, ns, 'failed-7d')) + 7 * 24 * HOUR);
    assert.equal(doc.clock.source, 'server');
    assert.ok(Math.abs(Date.parse(doc.clock.now) - Date.now()) < 5000);
    assert.deepEqual(doc.blockers, [`TTL not expired yet: 6d23h left`]);

    const text = ok(await kttl(['explain', 'job/failed-7d', '-n', ns])).stdout;
    assert.match(text, /annotation kttl\.dev\/ttl-failed\s+"7d"\s+WINS: ttl 1w/);
    assert.match(text, /annotation kttl\.dev\/ttl\s+"2h"\s+shadowed \(ttl 2h\)/);
    assert.match(text, /^Deletion: {3}at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 6d23h\)$/m);
    assert.match(text, /^Clock: .*the API server's clock \(Date header of the GET response/m);
  });

  test('explain: what blocks deletion (not finished, keep, invalid value, finalizers) and what does not', async () => {
    const doc = async (name: string) =>
      JSON.parse(ok(await kttl(['explain', `job/${name}`, '-n', ns, '-o', 'json'])).stdout);
    const running = await doc('running');
    assert.equal(running.deletion.state, 'not-finished');
    assert.match(running.blockers[0], /^not finished \(Running\)/);
    assert.equal(
      running.candidates.find((x: { where: string }) => x.where === 'annotation kttl.dev/ttl-succeeded')
        .results.succeeded.verdict,
      'wins',
    );
    assert.equal(
      running.candidates.find((x: { where: string }) => x.where === 'annotation kttl.dev/ttl-succeeded')
        .results.failed.verdict,
      'does not apply',
    );
    assert.match(running.deletion.text, /succeeded: 10m after it finishes; failed: 1w after it finishes/);

    const kept = await doc('kept');
    assert.deepEqual(kept.blockers, ['keep: annotation kttl.dev/keep=true']);
    assert.equal(
      kept.candidates.find((x: { source: string }) => x.source === 'field').results.succeeded.verdict,
      'shadowed',
    );

    const typo = await doc('typo');
    assert.deepEqual(typo.blockers, [
      'invalid value: annotation kttl.dev/ttl: invalid duration "5 minutes": must not contain spaces (write e.g. "1h30m")',
    ]);
    assert.equal(
      typo.candidates.find((x: { where: string }) => x.where === 'annotation kttl.dev/ttl').results.succeeded
        .verdict,
      'wins',
    );

    const hook = await doc('hook');
    assert.equal(hook.deletion.state, 'expired');
    assert.deepEqual(hook.blockers, []);
    assert.match(
      ok(await kttl(['explain', 'job/hook', '-n', ns])).stdout,
      /^Blocked by: nothing: the TTL has expired$/m,
    );

    const none = await doc('no-ttl');
    assert.deepEqual(none.blockers, ['no TTL applies']);

    // Finalizers: the delete would be accepted but the object stays until they are removed.
    // (In a namespace of its own: the sample namespace stays as the other tests expect it.)
    const ns2 = await newNamespace(c, 'cli-held');
    await createJob(c, {
      name: 'held',
      namespace: ns2,
      ttlSecondsAfterFinished: 0,
      finalizers: ['kttl.test/hold'],
    });
    try {
      await waitForJob(c, ns2, 'held', 'Complete');
      const held = JSON.parse(ok(await kttl(['explain', 'job/held', '-n', ns2, '-o', 'json'])).stdout);
      assert.deepEqual(held.blockers, [
        'finalizers kttl.test/hold: the object stays until they are removed (kttl never removes finalizers)',
      ]);
    } finally {
      await dropFinalizers(ns2, 'held');
    }
  });

  test('explain: a missing object, an unknown kind and a bare name are user errors (exit 1)', async () => {
    assertError(
      await kttl(['explain', 'job/nope', '-n', ns]),
      1,
      `error: jobs.batch "nope" not found in namespace "${ns}"`,
    );
    assertError(
      await kttl(['explain', 'pod/nope', '-n', ns]),
      1,
      `error: pods "nope" not found in namespace "${ns}"`,
    );
    assertError(
      await kttl(['explain', 'deployment/x', '-n', ns]),
      1,
      /^error: unknown kind "deployment" \(known: jobs, pods, workflows, /,
    );
    assertError(
      await kttl(['explain', 'nope', '-n', ns]),
      1,
      'error: expected KIND/NAME, got "nope" (e.g. job/nope or pod/nope)',
    );
  });
});
