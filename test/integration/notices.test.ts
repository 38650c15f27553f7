// Notice before deletion on the real control plane (docs/operations.md "Safety rails"): a Normal
// Event DeletionScheduled on the object `--notice-before` (or the policy's `noticeBefore`) before
// its expiry, naming the time and the rule, as `kubectl events` shows it; none for an object whose
// TTL is not longer than the notice.
import assert from 'node:assert/strict';
import { afterEach, before, describe, test } from 'node:test';
import { type InProcess, runOptions, startInProcess } from '../testbed/controller.ts';
import { createFinishedJobs } from '../testbed/finished-jobs.ts';
import type { Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  installPolicyCrds,
  isNotFound,
  newNamespace,
  ttlPolicy,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

async function eventsOf(c: Clients, namespace: string, name: string) {
  const list = await c.core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.kind=Job,involvedObject.name=${name}`,
  });
  return list.items;
}

describe('notice before deletion', () => {
  let tb: Testbed;
  let c: Clients;
  let running: InProcess | undefined;

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    await installPolicyCrds(tb);
  });
  afterEach(async () => {
    const r = running;
    running = undefined;
    await r?.stop();
  });

  test('--notice-before 4s and a policy noticeBefore 6s: DeletionScheduled that long before expiry, only for longer TTLs', async () => {
    const ns = await newNamespace(c, 'notice');
    running = await startInProcess(tb, runOptions([ns], { safety: { noticeBeforeSeconds: 4 } }));
    await c.objects.create(
      ttlPolicy(ns, 'announced', {
        resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
        selector: { matchLabels: { set: 'policy' } },
        ttl: '10s',
        noticeBefore: '6s',
      }),
    );
    await waitFor(
      'the policy in the cache',
      async () => running!.app.policyStore!.policies().some((p) => p.namespace === ns),
      15_000,
    );
    const finishedAtMs = Math.floor(Date.now() / 1000) * 1000;
    // flag: TTL 9s > 4s, noticed at +5s; short: TTL 3s ≤ 4s, no notice; policy: 10s, noticed at +4s.
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 1,
      prefix: 'flag-',
      finishedAtMs,
      annotations: () => ({ 'kttl.dev/ttl': '9s' }),
    });
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 1,
      prefix: 'short-',
      finishedAtMs,
      annotations: () => ({ 'kttl.dev/ttl': '3s' }),
    });
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 1,
      prefix: 'policy-',
      finishedAtMs,
      labels: { set: 'policy' },
    });

    const cases = [
      {
        name: 'flag-0',
        expireAtMs: finishedAtMs + 9000,
        noticeMs: 4000,
        rule: 'ttl 9s (annotation kttl.dev/ttl=9s)',
      },
      {
        name: 'policy-0',
        expireAtMs: finishedAtMs + 10_000,
        noticeMs: 6000,
        rule: `ttl 10s (policy TTLPolicy/${ns}/announced ttl=10s)`,
      },
    ];
    for (const k of cases) {
      const ev = await waitFor(
        `the notice on ${k.name}`,
        async () => (await eventsOf(c, ns, k.name)).find((e) => e.reason === 'DeletionScheduled'),
        30_000,
        100,
      );
      const at = new Date(k.expireAtMs).toISOString();
      assert.equal(ev.type, 'Normal');
      assert.match(
        ev.message ?? '',
        new RegExp(`^kttl will delete this object at ${at.replace(/\./g, '\\.')} \\(in \\d+s\\): `),
      );
      assert.ok(ev.message?.endsWith(k.rule), ev.message);
      // Sent when the notice was due (Event times are whole seconds): not before, and well before expiry.
      const sentMs = new Date(ev.firstTimestamp ?? 0).getTime();
      assert.ok(
        sentMs >= k.expireAtMs - k.noticeMs - 1000,
        `${k.name}: sent at ${ev.firstTimestamp}, due ${new Date(k.expireAtMs - k.noticeMs).toISOString()}`,
      );
      assert.ok(sentMs <= k.expireAtMs - 1000, `${k.name}: sent at ${ev.firstTimestamp}, expiry ${at}`);
    }
    // Deleted: gone, or going (Foreground: the garbage collector, perhaps busy after another
    // file's thousands of deletions, removes it later).
    const deleting = (name: string) =>
      c.batch.readNamespacedJob({ name, namespace: ns }).then(
        (j) => j.metadata?.deletionTimestamp !== undefined,
        (err) => (isNotFound(err) ? true : Promise.reject(err)),
      );
    for (const name of ['flag-0', 'short-0', 'policy-0'])
      await waitFor(`${name} deleted`, () => deleting(name), 30_000, 200);
    const short = await eventsOf(c, ns, 'short-0');
    assert.equal(
      short.filter((e) => e.reason === 'DeletionScheduled').length,
      0,
      'a TTL not longer than the notice: none',
    );
    assert.ok(short.some((e) => e.reason === 'TTLExpired'));
    const shown = await tb.kubectl(['events', '-n', ns, '--for', 'job/flag-0']);
    console.log(shown.replace(/^/gm, '# '));
    assert.match(shown, /Normal\s+DeletionScheduled\s+Job\/flag-0\s+kttl will delete this object at/);
  });
});
