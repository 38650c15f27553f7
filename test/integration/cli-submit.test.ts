// `kttl submit`: a Job with a TTL from a Run:ai-style command line, --wait, and its errors.
// Run as the BUILT bundle (dist/kttl.mjs) in a child process against the real control plane.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertError, kttl, listJson, ok, useCliTestbed } from '../testbed/cli.ts';
import { type Clients, newNamespace, TEST_LABELS } from '../testbed/use.ts';

let c: Clients;

before(async () => {
  ({ c } = await useCliTestbed());
});

describe('kttl submit', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli-sub');
  });

  test('creates a Job with ttlSecondsAfterFinished from a Run:ai duration; --wait reports success (exit 0)', async () => {
    const r = ok(
      await kttl([
        'submit',
        'train',
        '-n',
        ns,
        '--image',
        'busybox',
        '--ttl-after-finish',
        '4d',
        '--env',
        'MODE=full',
        '-e',
        'X=a=b',
        '--label',
        'team=ml',
        '--backoff-limit',
        '0',
        '--wait',
        '--',
        'sh',
        '-c',
        'echo hi -n x',
      ]),
    );
    assert.match(
      r.stdout,
      new RegExp(`^job\\.batch/train created in namespace "${ns}"; deleted 4d after it finishes$`, 'm'),
    );
    assert.match(r.stdout, /^job\.batch\/train succeeded \(condition Complete=True at \d{4}-.+Z\)$/m);
    const job = await c.batch.readNamespacedJob({ name: 'train', namespace: ns });
    assert.equal(job.spec?.ttlSecondsAfterFinished, 4 * 86400);
    assert.equal(job.spec?.backoffLimit, 0);
    assert.equal(job.metadata?.labels?.team, 'ml');
    const pod = job.spec?.template.spec;
    assert.equal(pod?.restartPolicy, 'Never');
    assert.deepEqual(pod?.containers[0]?.command, ['sh', '-c', 'echo hi -n x']);
    assert.equal(pod?.containers[0]?.image, 'busybox');
    assert.deepEqual(JSON.parse(JSON.stringify(pod?.containers[0]?.env)), [
      { name: 'MODE', value: 'full' },
      { name: 'X', value: 'a=b' },
    ]);
    assert.equal(job.spec?.template.metadata?.labels?.team, 'ml');
    const listed = await listJson(['-n', ns]);
    assert.deepEqual(
      listed.items.map((i) => [i.name, i.source, i.ttl]),
      [['train', 'field', '4d']],
    );
  });

  test('--wait on a failing Job: the outcome on stderr, exit 1', async () => {
    const r = await kttl([
      'submit',
      'boom',
      '-n',
      ns,
      '--image',
      'busybox',
      '--label',
      `${TEST_LABELS.fail}=true`,
      '--backoff-limit',
      '0',
      '--wait',
      '--',
      'false',
    ]);
    assertError(
      r,
      1,
      /^job\.batch\/boom failed \(condition Failed=True at \S+Z\): BackoffLimitExceeded: Job has reached the specified backoff limit$/,
    );
    assert.equal(r.stdout, `job.batch/boom created in namespace "${ns}"; no TTL: it stays until deleted\n`);
  });

  test('errors: bad duration, existing name, missing image, missing namespace, bad --env', async () => {
    assertError(
      await kttl(['submit', 'x', '-n', ns, '--image', 'busybox', '--ttl-after-finish', '2 hours']),
      1,
      'error: --ttl-after-finish: invalid duration "2 hours": must not contain spaces (write e.g. "1h30m")',
    );
    assertError(
      await kttl(['submit', 'train', '-n', ns, '--image', 'busybox']),
      1,
      `error: jobs.batch "train" already exists in namespace "${ns}"`,
    );
    assertError(
      await kttl(['submit', 'x', '-n', ns]),
      1,
      'error: --image is required (e.g. --image busybox)',
    );
    assertError(
      await kttl(['submit', 'x', '-n', `${ns}-nope`, '--image', 'busybox']),
      1,
      `error: namespace "${ns}-nope" not found`,
    );
    assertError(
      await kttl(['submit', 'x', '-n', ns, '--image', 'b', '--env', 'NOVALUE']),
      1,
      'error: --env: expected KEY=VALUE, got "NOVALUE"',
    );
    assertError(
      await kttl(['submit', 'Bad_Name', '-n', ns, '--image', 'b']),
      1,
      /^error: Job\.batch "Bad_Name" is invalid: metadata\.name: Invalid value/,
    );
    assertError(
      await kttl(['submit', 'x', '-n', ns, '--image', 'b', '--timeout', '1m']),
      1,
      'error: --timeout works with --wait',
    );
  });
});
