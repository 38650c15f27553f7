// The archive on the real control plane (docs/archive.md): what a record holds (the object as the
// API showed it, its pods' last logs through the API server's pods/log, its Events), the guarantee
// of `required` (PostgreSQL stopped mid-drain: nothing deleted without a record, all deleted once
// it is back; an unwritable store keeps the object with a Warning), a policy's `archive` over the
// flag, kill -9 between commit and DELETE, and retention.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PostgresArchiveStore } from '../../src/archive/postgres.ts';
import { SqliteArchiveStore } from '../../src/archive/sqlite.ts';
import type { ArchiveStore } from '../../src/archive/types.ts';
import { type Clients, clientsFor } from '../testbed/clients.ts';
import {
  archiveRunOptions,
  metricValue,
  records,
  runOptions,
  spawnController,
  startInProcess,
} from '../testbed/controller.ts';
import { startFaultProxy } from '../testbed/fault-proxy.ts';
import { controllerKubeconfigPath } from '../testbed/identities.ts';
import { createJob, jobGone, waitForJob } from '../testbed/jobs.ts';
import { setNamespaceLogs, writeContainerLog } from '../testbed/pod-logs.ts';
import { PostgresServer, postgresAvailable } from '../testbed/postgres.ts';
import { sleep, waitFor } from '../testbed/processes.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { installPolicyCrds, newNamespace, ttlPolicy, useTestbed } from '../testbed/use.ts';

let tb: Testbed;
let c: Clients;
let dir: string;

before(async () => {
  tb = await useTestbed();
  c = clientsFor(tb);
  await installPolicyCrds(tb);
  dir = mkdtempSync(join(tmpdir(), 'kttl-archive-'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('archive: best-effort, both stores', () => {
  for (const backend of ['sqlite', 'postgres'] as const)
    test(`${backend}: the record holds the object as the API showed it, its pods’ last log lines and its Events; then it is deleted`, {
      skip: backend === 'postgres' && !postgresAvailable() && 'no PostgreSQL',
    }, async () => {
      const pg = backend === 'postgres' ? await PostgresServer.start() : undefined;
      try {
        const ns = await newNamespace(c, `arch-rec-${backend}`);
        const lines = Array.from({ length: 500 }, (_, i) => `line ${i + 1} of the training log`);
        const logs = await setNamespaceLogs(tb, ns, { '*': writeContainerLog(tb, lines) });
        const dsn = pg ? await pg.createDatabase('rec') : join(dir, 'rec.db');
        await createJob(c, { name: 'train', namespace: ns, annotations: { 'kttl.dev/ttl': '3s' } });
        await waitForJob(c, ns, 'train', 'Complete');
        // As the API server sends it (kubectl -o json: timestamps as written, not as Dates).
        const shown = JSON.parse(await tb.kubectl(['get', 'job', 'train', '-n', ns, '-o', 'json'])) as Record<
          string,
          unknown
        >;
        const kttl = await startInProcess(tb, runOptions([ns], { archive: archiveRunOptions(dsn) }));
        try {
          await waitFor('the Job deleted', () => jobGone(c, ns, 'train'), 30_000, 100);
        } finally {
          await kttl.stop();
          await tb.kubectl(['delete', 'clusterlogs', logs, '--ignore-not-found']);
        }
        const store: ArchiveStore = pg ? new PostgresArchiveStore(dsn) : new SqliteArchiveStore(dsn);
        await store.open();
        try {
          const [summary, ...more] = await records(store, ns);
          assert.equal(more.length, 0, 'one record for one deletion');
          assert.equal(summary?.state, 'deleted');
          const r = await store.get({ uid: summary!.uid, resourceVersion: summary!.resourceVersion });
          assert.ok(r);
          // The object as the API showed it (it did not change after finishing), without managedFields.
          const meta = { ...(shown.metadata as Record<string, unknown>) };
          delete meta.managedFields;
          assert.deepEqual(r.object, { ...shown, metadata: meta });
          assert.equal(r.resourceVersion, meta.resourceVersion);
          assert.deepEqual([r.cluster, r.kind, r.name, r.outcome], ['testbed', 'Job', 'train', 'succeeded']);
          assert.deepEqual([r.ttlSeconds, r.ttlSource], [3, 'annotation']);
          assert.equal(r.finishTimeSource, 'condition');
          assert.ok(
            Date.parse(r.deletedAt) >= Date.parse(r.finishedAt!) + 3000,
            `${r.deletedAt} vs ${r.finishedAt}`,
          );
          // The pod's last 200 lines, read through the API server's pods/log.
          assert.equal(r.logs.length, 1, JSON.stringify(r.logs.map((l) => ({ ...l, text: l.text.length }))));
          const log = r.logs[0]!;
          assert.equal(log.container, 'main');
          const got = log.text.trimEnd().split('\n');
          assert.equal(got.length, 200);
          assert.equal(got[0], 'line 301 of the training log');
          assert.equal(got.at(-1), 'line 500 of the training log');
          // The Job's Events (the job-controller's) and the pod's.
          assert.ok(
            r.events.some((e) => e.involvedKind === 'Job' && e.reason === 'SuccessfulCreate'),
            JSON.stringify(r.events.map((e) => `${e.involvedKind}/${e.reason}`)),
          );
          assert.deepEqual(r.captureErrors, []);
        } finally {
          await store.close();
        }
      } finally {
        await pg?.destroy();
      }
    });
});

describe('archive: required', () => {
  test('an unwritable store keeps the object (Warning, kttl_archive_pending), a policy asking for it over --archive=off', async () => {
    const ns = await newNamespace(c, 'arch-req');
    await createJob(c, { name: 'kept', namespace: ns, annotations: { 'kttl.dev/ttl': '0' } });
    await createJob(c, { name: 'free', namespace: ns, annotations: { 'kttl.dev/ttl': '0' } });
    await waitForJob(c, ns, 'kept', 'Complete');
    // The policy selects only `kept` (a label), so `free` shows deletions go on meanwhile.
    await tb.kubectl(['label', 'job/kept', '-n', ns, 'records=yes']);
    await tb.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify(
        ttlPolicy(ns, 'keep-records', {
          resources: [{ apiVersion: 'batch/v1', kind: 'Job' }],
          selector: { matchLabels: { records: 'yes' } },
          archive: 'required',
        }),
      ),
    );
    // A path no one can write (under a plain file): the store cannot open.
    writeFileSync(join(dir, 'not-a-dir'), '');
    const kttl = await startInProcess(
      tb,
      runOptions([ns], { archive: archiveRunOptions(join(dir, 'not-a-dir', 'archive.db'), { mode: 'off' }) }),
    );
    try {
      await waitFor('free deleted', () => jobGone(c, ns, 'free'), 30_000, 100);
      await waitFor(
        'kttl_archive_pending 1',
        async () => (await metricValue(kttl.registry, 'kttl_archive_pending')) === 1,
        20_000,
        100,
      );
      await sleep(3000);
      assert.equal(await jobGone(c, ns, 'kept'), false, 'no record, no deletion');
      const events = await c.core.listNamespacedEvent({
        namespace: ns,
        fieldSelector: 'involvedObject.name=kept,reason=ArchivePending',
      });
      assert.equal(events.items.length, 1, 'one Warning');
      assert.equal(events.items[0]?.type, 'Warning');
      assert.ok((await metricValue(kttl.registry, 'kttl_archive_failures_total', { reason: 'store' })) >= 1);
    } finally {
      await kttl.stop();
    }
  });

  test('PostgreSQL stopped mid-drain: nothing is deleted without a record; all are deleted once it is back', {
    skip: !postgresAvailable() && 'no PostgreSQL',
  }, async () => {
    const pg = await PostgresServer.start();
    const ns = await newNamespace(c, 'arch-pg');
    const n = 30;
    const names = Array.from({ length: n }, (_, i) => `drain-${i}`);
    try {
      const dsn = await pg.createDatabase('drain');
      for (const name of names)
        await createJob(c, { name, namespace: ns, annotations: { 'kttl.dev/ttl': '0' } });
      for (const name of names) await waitForJob(c, ns, name, 'Complete');
      // Slow enough (2 deletions/s) that the database goes away in the middle of the drain.
      const kttl = await startInProcess(
        tb,
        runOptions([ns], {
          kubeApiQps: 2,
          kubeApiBurst: 1,
          workers: 2,
          archive: archiveRunOptions(dsn, { mode: 'required' }),
        }),
      );
      try {
        await waitFor('some deleted', async () => (await countGone(c, ns, names)) >= 4, 60_000, 100);
        await pg.stop();
        const goneWhenStopped = await countGone(c, ns, names);
        await sleep(5000);
        const goneWhileDown = await countGone(c, ns, names);
        assert.ok(goneWhileDown < n, `${goneWhileDown} of ${n} gone while the database was down`);
        await pg.start();
        await waitFor('all deleted', async () => (await countGone(c, ns, names)) === n, 120_000, 250);
        // Marks that failed while it was down are made once it answers again.
        const marked = new PostgresArchiveStore(dsn);
        await marked.open();
        try {
          await waitFor(
            'every record marked deleted',
            async () => (await records(marked, ns)).every((r) => r.state === 'deleted'),
            30_000,
            250,
          );
        } finally {
          await marked.close();
        }
        // Every deleted Job has its record, each exactly once, all marked deleted.
        const store = new PostgresArchiveStore(dsn);
        await store.open();
        try {
          const rs = await records(store, ns);
          assert.deepEqual(rs.map((r) => r.name).sort(), [...names].sort());
          assert.equal(new Set(rs.map((r) => r.uid)).size, n, 'one record per deletion');
          assert.ok(
            rs.every((r) => r.state === 'deleted'),
            JSON.stringify(rs.filter((r) => r.state !== 'deleted')),
          );
        } finally {
          await store.close();
        }
        // At most the deletions already past their commit went ahead while it was down.
        assert.ok(
          goneWhileDown - goneWhenStopped <= 2,
          `${goneWhileDown - goneWhenStopped} deleted while down`,
        );
      } finally {
        await kttl.stop();
      }
    } finally {
      await pg.destroy();
    }
  });
});

async function countGone(c: Clients, ns: string, names: string[]): Promise<number> {
  const list = await c.batch.listNamespacedJob({ namespace: ns });
  const left = new Set(list.items.map((j) => j.metadata?.name));
  return names.filter((x) => !left.has(x)).length;
}

describe('archive: crash between commit and DELETE', () => {
  test('kill -9 with the DELETE in flight: the pending record is settled at the next start, never doubled', async () => {
    const ns = await newNamespace(c, 'arch-kill');
    const dsn = join(dir, 'kill.db');
    await createJob(c, { name: 'held', namespace: ns, annotations: { 'kttl.dev/ttl': '0' } });
    await waitForJob(c, ns, 'held', 'Complete');
    const proxy = await startFaultProxy(tb);
    // Every DELETE is held: the record is committed, the DELETE never answers.
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    proxy.setFault({ hold: (r) => (r.verb === 'delete' ? released : undefined) });
    const args = ['--leader-elect=false', `--namespaces=${ns}`, '--archive=required', `--archive-dsn=${dsn}`];
    const first = await spawnController(tb, args, 'kttl-archive-kill', {
      kubeconfig: proxy.kubeconfig(controllerKubeconfigPath(tb)),
    });
    try {
      await waitFor('the DELETE held', async () => (proxy.stats().byVerb.delete ?? 0) > 0, 30_000, 100);
      const exited = new Promise((r) => first.proc.once('exit', r));
      first.proc.kill('SIGKILL');
      await exited;
    } finally {
      release();
      await proxy.stop();
    }
    const store = new SqliteArchiveStore(dsn);
    await store.open();
    try {
      const before = await records(store, ns);
      assert.equal(before.length, 1);
      assert.equal(before[0]?.state, 'pending');
      assert.equal(await jobGone(c, ns, 'held'), false, 'the held DELETE never reached the API server');
      // A new start: the record is settled (the object still exists: dropped), the Job deleted again,
      // with one record in the end.
      const second = await spawnController(tb, args, 'kttl-archive-kill-2');
      try {
        await waitFor('the Job deleted', () => jobGone(c, ns, 'held'), 30_000, 100);
        await waitFor(
          'its record deleted',
          async () => (await records(store, ns)).every((r) => r.state === 'deleted'),
          10_000,
          100,
        );
      } finally {
        await second.stop();
      }
      const rs = await records(store, ns);
      assert.equal(rs.length, 1, 'never two records for one deletion');
    } finally {
      await store.close();
    }
  });
});

describe('archive: retention', () => {
  test('records deleted longer ago than --archive-retention are pruned (kttl_archive_pruned_total)', async () => {
    const ns = await newNamespace(c, 'arch-ret');
    const dsn = join(dir, 'ret.db');
    await createJob(c, { name: 'old', namespace: ns, annotations: { 'kttl.dev/ttl': '0' } });
    await waitForJob(c, ns, 'old', 'Complete');
    const kttl = await startInProcess(
      tb,
      runOptions([ns], { archive: archiveRunOptions(dsn, { retentionMs: 2000, pruneIntervalMs: 500 }) }),
    );
    const store = new SqliteArchiveStore(dsn);
    try {
      await waitFor('deleted', () => jobGone(c, ns, 'old'), 30_000, 100);
      await store.open();
      assert.equal((await records(store, ns)).length, 1);
      await waitFor('pruned', async () => (await records(store, ns)).length === 0, 15_000, 250);
      assert.ok((await metricValue(kttl.registry, 'kttl_archive_pruned_total')) >= 1);
    } finally {
      await store.close();
      await kttl.stop();
    }
  });
});
