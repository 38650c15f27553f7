// The archive list's selectors (src/archive/api/selectors.ts) and its pages (listPage in
// src/archive/api/server.ts) on a real SQLite store in a temp file: a filtered page ends with a
// continue token at its last item, so walking the pages yields every match once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { parseLabelSelector, SelectorError, selection } from '../../../src/archive/api/selectors.ts';
import { listPage } from '../../../src/archive/api/server.ts';
import { SqliteArchiveStore } from '../../../src/archive/sqlite.ts';
import type { ArchiveRecord, RecordSummary } from '../../../src/archive/types.ts';
import { matchesLabelSelector } from '../../../src/policy/selectors.ts';

function summary(o: Partial<RecordSummary> = {}): RecordSummary {
  return {
    uid: '5f3c2a1b-0000-4000-8000-000000000001',
    resourceVersion: '1',
    cluster: 'c',
    apiVersion: 'batch/v1',
    kind: 'Job',
    namespace: 'a',
    name: 'train',
    labels: {},
    outcome: 'succeeded',
    finishedAt: null,
    deletedAt: '2026-12-01T00:00:00Z',
    ttlSeconds: 60,
    ttlSource: 'annotation',
    state: 'deleted',
    ...o,
  };
}

describe('label selectors', () => {
  test('equality, inequality, set-based, exists, does not exist', () => {
    const sel = parseLabelSelector('app=train, tier!=db,env in (prod, staging),team notin (x),gpu,!legacy');
    const yes = { app: 'train', env: 'prod', team: 'ml', gpu: '1' };
    assert.ok(matchesLabelSelector(sel, yes));
    assert.ok(!matchesLabelSelector(sel, { ...yes, tier: 'db' }));
    assert.ok(matchesLabelSelector(sel, { ...yes, tier: 'web' }));
    assert.ok(!matchesLabelSelector(sel, { ...yes, env: 'dev' }));
    assert.ok(!matchesLabelSelector(sel, { ...yes, team: 'x' }));
    assert.ok(!matchesLabelSelector(sel, { ...yes, legacy: '' }));
    const { gpu: _, ...noGpu } = yes;
    assert.ok(!matchesLabelSelector(sel, noGpu));
    assert.ok(matchesLabelSelector(parseLabelSelector('a==b'), { a: 'b' }));
    assert.ok(matchesLabelSelector(parseLabelSelector(''), {}));
  });
  test('what the API server refuses is a SelectorError', () => {
    for (const bad of ['a in ()', '=x', 'a b', 'Bad Key=1', 'a=b=c', 'a in (x', `k=${'v'.repeat(64)}`]) {
      assert.throws(() => parseLabelSelector(bad), SelectorError, bad);
    }
  });
  test('key=value matches exactly the label maps holding that value (fast-check)', () => {
    const tok = fc.stringMatching(/^[a-z]([a-z0-9]{0,6})?$/);
    fc.assert(
      fc.property(fc.dictionary(tok, tok), tok, tok, (labels, k, v) => {
        assert.equal(matchesLabelSelector(parseLabelSelector(`${k}=${v}`), labels), labels[k] === v);
        assert.equal(matchesLabelSelector(parseLabelSelector(`${k}!=${v}`), labels), labels[k] !== v);
        assert.equal(matchesLabelSelector(parseLabelSelector(`!${k}`), labels), !(k in labels));
      }),
    );
  });
});

describe('field selectors', () => {
  test('what the store answers goes into the query', () => {
    const s = selection({
      namespace: 'a',
      fieldSelector:
        'object.kind=Job,object.name==train,outcome=failed,deletedAfter=2026-12-01T00:00:00Z,deletedBefore=2026-12-02T00:00:00Z,object.uid=u',
    });
    assert.deepEqual(s.query, {
      namespace: 'a',
      kind: 'Job',
      name: 'train',
      outcome: 'failed',
      uid: 'u',
      sinceMs: Date.parse('2026-12-01T00:00:00Z'),
      untilMs: Date.parse('2026-12-02T00:00:00Z'),
    });
    assert.equal(s.filter, undefined);
  });
  test('the rest filters: !=, metadata.name, labels; a namespace that contradicts the path selects nothing', () => {
    const s = selection({
      fieldSelector: 'outcome!=failed,metadata.name=job.train.5f3c2a1b',
      labelSelector: 'app=x',
    });
    assert.ok(s.filter);
    assert.ok(s.filter(summary({ labels: { app: 'x' } })));
    assert.ok(!s.filter(summary({ labels: { app: 'y' } })));
    assert.ok(!s.filter(summary({ labels: { app: 'x' }, outcome: 'failed' })));
    assert.ok(!s.filter(summary({ labels: { app: 'x' }, name: 'other' })));
    const ns = selection({ namespace: 'a', fieldSelector: 'metadata.namespace=b' });
    assert.ok(ns.filter && !ns.filter(summary()));
    assert.deepEqual(selection({ fieldSelector: 'metadata.namespace=b' }).query, { namespace: 'b' });
    const twice = selection({ fieldSelector: 'object.kind=Job,object.kind=Pod' });
    assert.ok(twice.filter && !twice.filter(summary()) && !twice.filter(summary({ kind: 'Pod' })));
    assert.equal(selection({ fieldSelector: 'object.kind=Job,object.kind==Job' }).filter, undefined);
  });
  test('unknown keys, bad times and bad outcomes are refused', () => {
    for (const fs of [
      'spec.x=1',
      'deletedAfter=yesterday',
      'deletedAfter!=2026-12-01T00:00:00Z',
      'outcome=ok',
      'nonsense',
    ]) {
      assert.throws(() => selection({ fieldSelector: fs }), SelectorError, fs);
    }
  });
});

describe('listPage on a SQLite store', () => {
  let dir: string;
  let store: SqliteArchiveStore;
  const N = 250;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kttl-api-pages-'));
    store = new SqliteArchiveStore(join(dir, 'a.db'));
    await store.open();
    for (let i = 0; i < N; i++) {
      const uid = `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
      // Pairs share a deletedAt: the keyset token must break ties by uid.
      const deletedAt = new Date(Date.UTC(2026, 11, 1) - Math.floor(i / 2) * 1000).toISOString();
      const r: ArchiveRecord = {
        cluster: 'c',
        apiVersion: 'batch/v1',
        kind: i % 5 === 0 ? 'Pod' : 'Job',
        namespace: i % 2 ? 'a' : 'b',
        name: `n-${i}`,
        uid,
        resourceVersion: '1',
        labels: { shard: String(i % 3) },
        annotations: {},
        ownerReferences: [],
        object: {},
        outcome: 'succeeded',
        finishedAt: null,
        finishTimeSource: 'firstSeen',
        ttlSeconds: 1,
        ttlSource: 'annotation',
        ttlDetail: '',
        deletedAt,
        reason: '',
        logs: [],
        events: [],
        captureErrors: [],
      };
      await store.putPending(r);
      await store.markDeleted(r, deletedAt);
    }
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const walk = async (sel: ReturnType<typeof selection>, limit: number | undefined) => {
    const seen: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const p = await listPage(store, sel.query, sel.filter, limit, cont);
      if (limit !== undefined) assert.ok(p.items.length <= limit);
      seen.push(...p.items.map((s) => s.name));
      cont = p.continue;
      pages++;
      assert.ok(pages < 1000);
    } while (cont);
    return seen;
  };

  test('every match once, in order, for any page size and filter (fast-check)', async () => {
    const all = (await walk(selection({}), undefined)).slice();
    assert.equal(all.length, N);
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.integer({ min: 1, max: 120 }), { nil: undefined }),
        fc.constantFrom('', 'shard=1', 'shard!=0', 'shard in (0,2)'),
        fc.constantFrom(undefined, 'a'),
        fc.constantFrom('', 'object.kind=Pod', 'outcome!=failed'),
        async (limit, labels, namespace, fields) => {
          const sel = selection({ namespace, labelSelector: labels, fieldSelector: fields });
          const want = (
            await walk(selection({ namespace, labelSelector: labels, fieldSelector: fields }), undefined)
          ).slice();
          const got = await walk(sel, limit);
          assert.deepEqual(got, want);
          assert.equal(new Set(got).size, got.length);
        },
      ),
      { numRuns: 60 },
    );
    // The unfiltered walk is the store's own order.
    assert.deepEqual(
      all,
      (await store.list({ limit: 1000 })).items.map((s) => s.name),
    );
  });
});
