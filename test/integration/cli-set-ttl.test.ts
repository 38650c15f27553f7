// `kttl set-ttl`: which field or annotation it writes, what it reports, its confirmation and errors.
// Run as the BUILT bundle (dist/kttl.mjs) in a child process against the real control plane.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertError, kttl, listJson, ok, useCliTestbed } from '../testbed/cli.ts';
import { createJob } from '../testbed/jobs.ts';
import { type Clients, newNamespace, TEST_LABELS, waitForJob } from '../testbed/use.ts';

let c: Clients;

before(async () => {
  ({ c } = await useCliTestbed());
});

describe('kttl set-ttl', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-set');
  });

  test('a Job without annotations gets the native field; one with kttl.dev/ttl keeps using the annotation', async () => {
    await createJob(c, { name: 'plain', namespace: ns });
    await createJob(c, { name: 'annotated', namespace: ns, annotations: { 'kttl.dev/ttl': '1h' } });
    await createJob(c, { name: 'run', namespace: ns, podLabels: { [TEST_LABELS.run]: 'true' } });
    await waitForJob(c, ns, 'plain', 'Complete');
    await waitForJob(c, ns, 'annotated', 'Complete');

    const r = ok(await kttl(['set-ttl', 'job/plain', '4d', '-n', ns]));
    assert.match(
      r.stdout,
      /^job\.batch\/plain: \.spec\.ttlSecondsAfterFinished=345600 \(4d\); expires in 3d23h$/m,
    );
    const plain = await c.batch.readNamespacedJob({ name: 'plain', namespace: ns });
    assert.equal(plain.spec?.ttlSecondsAfterFinished, 345600);
    assert.equal(plain.metadata?.annotations?.['kttl.dev/ttl'], undefined);

    ok(await kttl(['set-ttl', 'job/annotated', 'job/run', '2h', '-n', ns]));
    const annotated = await c.batch.readNamespacedJob({ name: 'annotated', namespace: ns });
    assert.equal(annotated.metadata?.annotations?.['kttl.dev/ttl'], '2h');
    assert.equal(annotated.spec?.ttlSecondsAfterFinished, undefined);
    const run = await c.batch.readNamespacedJob({ name: 'run', namespace: ns });
    assert.equal(
      run.spec?.ttlSecondsAfterFinished,
      7200,
      'a running Job without annotations: the native field',
    );

    // Once the field is the source it stays the source.
    ok(await kttl(['set-ttl', 'job/plain', '1h30m', '-n', ns]));
    assert.equal(
      (await c.batch.readNamespacedJob({ name: 'plain', namespace: ns })).spec?.ttlSecondsAfterFinished,
      5400,
    );
    const listed = await listJson(['-n', ns]);
    assert.equal(listed.items.find((i) => i.name === 'plain')?.ttl, '1h30m');
  });

  test('--outcome writes kttl.dev/ttl-succeeded / -failed; Pods get annotations', async () => {
    await createJob(c, { name: 'outcome', namespace: ns, ttlSecondsAfterFinished: 60 });
    await waitForJob(c, ns, 'outcome', 'Complete');
    const r = ok(await kttl(['set-ttl', 'job/outcome', '7d', '--outcome', 'failed', '-n', ns]));
    assert.match(r.stdout, /annotation kttl\.dev\/ttl-failed=7d; it succeeded, so this does not apply/);
    ok(await kttl(['set-ttl', 'job/outcome', '10m', '--outcome', 'succeeded', '-n', ns]));
    const job = await c.batch.readNamespacedJob({ name: 'outcome', namespace: ns });
    assert.equal(job.metadata?.annotations?.['kttl.dev/ttl-failed'], '7d');
    assert.equal(job.metadata?.annotations?.['kttl.dev/ttl-succeeded'], '10m');
    assert.equal(job.spec?.ttlSecondsAfterFinished, 60, 'the field is left alone');
    const explained = JSON.parse(ok(await kttl(['explain', 'job/outcome', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(explained.decision.text, 'ttl 10m (annotation kttl.dev/ttl-succeeded=10m)');

    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'bare', labels: { [TEST_LABELS.succeed]: 'true' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    ok(await kttl(['set-ttl', 'pod/bare', '90s', '-n', ns]));
    const pod = await c.core.readNamespacedPod({ name: 'bare', namespace: ns });
    assert.equal(pod.metadata?.annotations?.['kttl.dev/ttl'], '90s');
  });

  test('a higher rule that still decides is reported', async () => {
    await createJob(c, { name: 'keep', namespace: ns, annotations: { 'kttl.dev/keep': 'true' } });
    await waitForJob(c, ns, 'keep', 'Complete');
    const r = ok(await kttl(['set-ttl', 'job/keep', '1h', '-n', ns]));
    assert.equal(r.stderr.trim(), 'note: job/keep: keep (annotation kttl.dev/keep=true) still decides');
  });

  test('an already expired TTL on a finished object: warns "will be deleted now" and asks (refuses without a terminal)', async () => {
    await createJob(c, { name: 'old', namespace: ns, ttlSecondsAfterFinished: 3600 });
    await waitForJob(c, ns, 'old', 'Complete');
    const refused = await kttl(['set-ttl', 'job/old', '0', '-n', ns]);
    assert.equal(refused.code, 1);
    const lines = refused.stderr.trimEnd().split('\n');
    assert.match(lines[0]!, /^warning: job\/old finished \d+s ago: with a TTL of 0s it will be deleted now$/);
    assert.equal(
      lines[1],
      'error: refusing to set a TTL that deletes 1 object at once without confirmation: stdin is not a terminal (pass --yes)',
    );
    assert.equal(
      (await c.batch.readNamespacedJob({ name: 'old', namespace: ns })).spec?.ttlSecondsAfterFinished,
      3600,
      'unchanged',
    );

    const r = ok(await kttl(['set-ttl', 'job/old', '0', '--yes', '-n', ns]));
    assert.match(
      r.stdout,
      /^job\.batch\/old: \.spec\.ttlSecondsAfterFinished=0 \(0s\); expired: the controller deletes it now$/m,
    );
    assert.equal(
      (await c.batch.readNamespacedJob({ name: 'old', namespace: ns })).spec?.ttlSecondsAfterFinished,
      0,
    );
  });

  test('errors: bad duration (parseDuration message), missing object, missing duration', async () => {
    assertError(
      await kttl(['set-ttl', 'job/plain', '5 minutes', '-n', ns]),
      1,
      'error: invalid duration "5 minutes": must not contain spaces (write e.g. "1h30m")',
    );
    assertError(
      await kttl(['set-ttl', 'job/plain', '1y', '-n', ns]),
      1,
      'error: invalid duration "1y": unknown unit "y" (use s, m, h, d or w)',
    );
    assertError(
      await kttl(['set-ttl', 'job/plain', '3000000000s', '-n', ns]),
      1,
      'error: invalid duration "3000000000s": longer than the maximum of 2147483647 seconds (about 68 years)',
    );
    assertError(
      await kttl(['set-ttl', 'job/ghost', '1h', '-n', ns]),
      1,
      `error: jobs.batch "ghost" not found in namespace "${ns}"`,
    );
    assertError(
      await kttl(['set-ttl', 'job/plain', '-n', ns]),
      1,
      'error: expected KIND/NAME... DURATION (e.g. kttl set-ttl job/train-42 4d)',
    );
    assertError(
      await kttl(['set-ttl', 'job/plain', '1h', '--outcome', 'maybe', '-n', ns]),
      1,
      /^error: option '--outcome <outcome>' argument 'maybe' is invalid\. Allowed choices are succeeded, failed\. \(see 'kttl set-ttl --help'\)$/,
    );
  });
});
