// `kttl plan`: what goes in a time window, grouped by namespace and TTL source; read-only.
// Run as the BUILT bundle (dist/kttl.mjs) in a child process against the real control plane.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertError, createSampleJobs, kttl, ok, parseTable, useCliTestbed } from '../testbed/cli.ts';
import { jobFinishMs } from '../testbed/jobs.ts';
import { type Clients, newNamespace } from '../testbed/use.ts';

let c: Clients;

before(async () => {
  ({ c } = await useCliTestbed());
});

const HOUR = 3_600_000;

describe('kttl plan on a namespace of sample Jobs', () => {
  let ns: string;
  before(async () => {
    ns = await newNamespace(c, 'cli');
    await createSampleJobs(c, ns);
  });

  test('plan: what goes in the window, grouped by namespace and TTL source; read-only', async () => {
    const doc = JSON.parse(ok(await kttl(['plan', 'jobs', '-n', ns, '-o', 'json'])).stdout);
    assert.equal(doc.total, 2, 'hook (due now) and native-5m (5m) within the default 1h');
    assert.deepEqual(
      doc.groups.map((g: { source: string; count: number }) => [g.source, g.count]),
      [
        ['field', 1],
        ['hook', 1],
      ],
    );
    const field = doc.groups.find((g: { source: string }) => g.source === 'field');
    assert.equal(Date.parse(field.earliest), (await jobFinishMs(c, ns, 'native-5m')) + 300_000);
    assert.equal(field.objects[0].name, 'native-5m');
    assert.deepEqual(
      [
        doc.notPlanned.running,
        doc.notPlanned.kept,
        doc.notPlanned.invalid,
        doc.notPlanned.noTtl,
        doc.notPlanned.later,
      ],
      [1, 1, 1, 1, 1],
    );
    assert.equal(Date.parse(doc.window.until) - Date.parse(doc.window.from), HOUR);

    const week = JSON.parse(ok(await kttl(['plan', '-n', ns, '--until', '8d', '-o', 'json'])).stdout);
    assert.equal(week.total, 3);
    const since = JSON.parse(
      ok(await kttl(['plan', '-n', ns, '--since', '1h', '--until', '8d', '-o', 'json'])).stdout,
    );
    assert.deepEqual(
      since.groups.map((g: { objects: Array<{ name: string }> }) => g.objects[0]?.name),
      ['failed-7d'],
    );

    const table = ok(await kttl(['plan', 'jobs', '-n', ns]));
    const t = parseTable(table.stdout.split('\n').slice(0, 3).join('\n'));
    assert.deepEqual(t.head, ['NAMESPACE', 'SOURCE', 'COUNT', 'EARLIEST', 'LATEST', 'FIRST']);
    assert.match(
      table.stdout,
      new RegExp(`^2 objects \\(jobs\\) to delete in namespace "${ns}" in now \\.\\. now\\+1h `, 'm'),
    );
    assert.match(
      table.stderr,
      /^not in the plan: 1 later, 1 running, 1 without a TTL, 1 kept, 1 with an invalid TTL/,
    );
    assert.equal(
      (await c.batch.listNamespacedJob({ namespace: ns })).items.length,
      7,
      'plan deleted nothing',
    );

    assertError(
      await kttl(['plan', '-n', ns, '--until', '1 hour']),
      1,
      'error: --until: invalid duration "1 hour": must not contain spaces (write e.g. "1h30m")',
    );
    assertError(await kttl(['plan', '-n', ns, '--since', '2h']), 1, 'error: --since 2h is after --until 1h');
  });
});
