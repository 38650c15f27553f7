// The stores' shared pieces (src/archive/rows.ts: row codec, continue tokens, the list's WHERE),
// the DSN dispatch (src/archive/open.ts), and keyset paging for random records on an in-memory
// SQLite store (the real engine; test/integration/archive-store.test.ts runs both stores).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { archiveBackend, openArchiveStore, redactDsn, sqlitePath } from '../../../src/archive/open.ts';
import { PostgresArchiveStore } from '../../../src/archive/postgres.ts';
import {
  decodeContinue,
  encodeContinue,
  fromBlobs,
  listWhere,
  MAX_LIMIT,
  pageLimit,
  toRow,
} from '../../../src/archive/rows.ts';
import { migrationsAfter, SCHEMA_VERSION } from '../../../src/archive/schema.ts';
import { SqliteArchiveStore } from '../../../src/archive/sqlite.ts';
import type { ArchiveRecord, RecordSummary } from '../../../src/archive/types.ts';

function record(o: Partial<ArchiveRecord> = {}): ArchiveRecord {
  return {
    cluster: 'c',
    apiVersion: 'batch/v1',
    kind: 'Job',
    namespace: 'ns',
    name: 'j',
    uid: 'u',
    resourceVersion: '1',
    labels: {},
    annotations: {},
    ownerReferences: [],
    object: {},
    outcome: 'succeeded',
    finishedAt: null,
    finishTimeSource: 'firstSeen',
    ttlSeconds: 60,
    ttlSource: 'policy',
    ttlDetail: 'TTLPolicy/ns/p',
    deletedAt: '2026-12-01T00:00:00Z',
    reason: 'expired',
    logs: [],
    events: [],
    captureErrors: [],
    ...o,
  };
}

describe('continue tokens', () => {
  test('round-trip any cursor; anything else is refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 50 }), fc.string(), fc.string(), (d, uid, rv) => {
        const c = { deletedAtMs: d, uid, resourceVersion: rv };
        assert.deepEqual(decodeContinue(encodeContinue(c)), c);
      }),
    );
    for (const bad of [
      '',
      'x',
      Buffer.from('[2,1,"a","b"]').toString('base64url'),
      Buffer.from('{}').toString('base64url'),
    ]) {
      assert.throws(() => decodeContinue(bad), /invalid continue token/);
    }
  });
});

describe('listWhere', () => {
  test('one parameter per condition, numbered in order for PostgreSQL', () => {
    const token = encodeContinue({ deletedAtMs: 5, uid: 'u', resourceVersion: 'r' });
    const q = {
      cluster: 'c',
      namespace: 'n',
      kind: 'Job',
      name: 'x',
      uid: 'u',
      outcome: 'failed' as const,
      state: 'pending' as const,
      sinceMs: 1,
      untilMs: 9,
      continue: token,
    };
    const { where, params } = listWhere(q, (i) => `$${i}`);
    assert.deepEqual(params, ['c', 'n', 'Job', 'x', 'u', 'failed', 'pending', 1, 9, 5, 'u', 'r']);
    assert.deepEqual(
      [...where.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])),
      params.map((_, i) => i + 1),
    );
    assert.match(where, /\(deleted_at_ms, uid, resource_version\) < \(\$10, \$11, \$12\)/);
    assert.deepEqual(
      listWhere({}, () => '?'),
      { where: '', params: [] },
    );
  });

  test('pageLimit: a default, a cap, no nonsense', () => {
    assert.equal(pageLimit({}), 100);
    assert.equal(pageLimit({ limit: 5 }), 5);
    assert.equal(pageLimit({ limit: 10 ** 9 }), MAX_LIMIT);
    assert.equal(pageLimit({ limit: 0 }), 100);
    assert.equal(pageLimit({ limit: Number.NaN }), 100);
  });
});

describe('row codec', () => {
  test('any JSON in the object, logs and events comes back as written', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.string({ unit: 'grapheme', maxLength: 2000 }), async (v, text) => {
        const r = record({
          object: { v } as Record<string, unknown>,
          logs: [{ pod: 'p', container: 'c', containerType: 'regular', text, truncated: false }],
        });
        const row = await toRow(r, 'pending');
        // JSON turns -0 into 0; that is the only change JSON may make.
        assert.deepEqual(
          await fromBlobs(row.codec, row.record_z, row.logs_z, row.deleted_at),
          JSON.parse(JSON.stringify(r)),
        );
        assert.ok(row.size_bytes >= row.record_z.length + row.logs_z.length);
      }),
      { numRuns: 60 },
    );
  });

  test('a time that does not parse is refused before anything is written', async () => {
    await assert.rejects(toRow(record({ deletedAt: 'yesterday' }), 'pending'), /deletedAt is not a time/);
    await assert.rejects(toRow(record({ finishedAt: '' }), 'pending'), /finishedAt is not a time/);
  });
});

describe('schema', () => {
  test('migrations are numbered 1..N without gaps; a newer database is refused', () => {
    assert.deepEqual(
      migrationsAfter(0).map((m) => m.version),
      Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
    );
    assert.deepEqual(migrationsAfter(SCHEMA_VERSION), []);
    assert.throws(() => migrationsAfter(SCHEMA_VERSION + 1), /newer than this kttl knows/);
  });
});

describe('openArchiveStore', () => {
  test('postgres:// and postgresql:// are PostgreSQL; anything else is a SQLite file', () => {
    assert.equal(archiveBackend('postgres://u@h/db'), 'postgres');
    assert.equal(archiveBackend('POSTGRESQL://u@h/db?sslmode=verify-full'), 'postgres');
    assert.equal(archiveBackend('/var/lib/kttl/archive.db'), 'sqlite');
    assert.equal(archiveBackend('postgres.db'), 'sqlite');
    assert.ok(openArchiveStore('postgres://u@h/db') instanceof PostgresArchiveStore);
    const s = openArchiveStore('sqlite:///data/a.db');
    assert.ok(s instanceof SqliteArchiveStore && s.path === '/data/a.db');
    assert.equal(sqlitePath('file:///data/b.db'), '/data/b.db');
    assert.equal(sqlitePath('sqlite:rel/c.db'), 'rel/c.db');
    assert.equal(sqlitePath('d.db'), 'd.db');
    assert.throws(() => sqlitePath('sqlite:'), /no file path/);
    assert.equal((openArchiveStore() as SqliteArchiveStore).path, '/var/lib/kttl/archive.db');
  });

  test('redactDsn hides passwords', () => {
    assert.equal(
      redactDsn('postgres://kttl:s3cret@db:5432/archive?sslmode=verify-full'),
      'postgres://kttl:***@db:5432/archive?sslmode=verify-full',
    );
    assert.doesNotMatch(redactDsn('postgres://kttl@db/archive?password=s3cret'), /s3cret/);
    assert.equal(redactDsn('/var/lib/kttl/archive.db'), '/var/lib/kttl/archive.db');
  });
});

describe('keyset paging (SQLite in memory)', () => {
  test('pages of any size list every record once, newest first, whatever the ties', async () => {
    const arbRecords = fc.uniqueArray(
      fc.record({
        uid: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
        rv: fc.constantFrom('1', '2', '10'),
        t: fc.integer({ min: 0, max: 4 }),
        ns: fc.constantFrom('x', 'y'),
      }),
      { selector: (r) => `${r.uid}/${r.rv}`, maxLength: 18 },
    );
    await fc.assert(
      fc.asyncProperty(
        arbRecords,
        fc.integer({ min: 1, max: 6 }),
        fc.boolean(),
        async (specs, limit, oneNs) => {
          const s = new SqliteArchiveStore(':memory:');
          await s.open();
          try {
            for (const r of specs) {
              await s.putPending(
                record({
                  uid: r.uid,
                  resourceVersion: r.rv,
                  namespace: r.ns,
                  deletedAt: new Date(r.t * 1000).toISOString(),
                }),
              );
            }
            const want = specs
              .filter((r) => !oneNs || r.ns === 'x')
              .sort(
                (a, b) =>
                  b.t - a.t ||
                  (a.uid < b.uid ? 1 : a.uid > b.uid ? -1 : a.rv < b.rv ? 1 : a.rv > b.rv ? -1 : 0),
              )
              .map((r) => `${r.uid}/${r.rv}`);
            const got: string[] = [];
            let token: string | undefined;
            do {
              const page: { items: RecordSummary[]; continue?: string } = await s.list({
                limit,
                continue: token,
                ...(oneNs ? { namespace: 'x' } : {}),
              });
              got.push(...page.items.map((i) => `${i.uid}/${i.resourceVersion}`));
              token = page.continue;
            } while (token);
            assert.deepEqual(got, want);
          } finally {
            await s.close();
          }
        },
      ),
      { numRuns: 80 },
    );
  });
});
