// The archive read API's pure parts (src/archive/api/resources.ts, discovery.ts, openapi.ts,
// authn.ts, authz.ts, server.ts routing): names, shapes, Table, Status wording, request headers.
// The whole path runs through kube-apiserver's aggregation layer in test/integration/archive-api.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { requestHeaderConfig, userFromHeaders } from '../../../src/archive/api/authn.ts';
import { subjectAccessReview } from '../../../src/archive/api/authz.ts';
import { apiGroupList, apiResourceList } from '../../../src/archive/api/discovery.ts';
import { openApiV2, openApiV3, openApiV3Index } from '../../../src/archive/api/openapi.ts';
import {
  deletedObject,
  deletedObjectList,
  deletedObjectName,
  forbiddenMessage,
  namesSummary,
  notFound,
  parseDeletedObjectName,
  table,
  ttlText,
} from '../../../src/archive/api/resources.ts';
import { route, wantsTable } from '../../../src/archive/api/server.ts';
import { summaryOf } from '../../../src/archive/record.ts';
import type { ArchiveRecord } from '../../../src/archive/types.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON shapes, checked field by field
type Doc = Record<string, any>;

const record: ArchiveRecord = {
  cluster: 'prod',
  apiVersion: 'batch/v1',
  kind: 'Job',
  namespace: 'team-a',
  name: 'train.v2',
  uid: '5f3c2a1b-0000-4000-8000-000000000001',
  resourceVersion: '42',
  labels: { app: 'train' },
  annotations: { a: 'b' },
  ownerReferences: [],
  object: { kind: 'Job', metadata: { name: 'train.v2', managedFields: [{}], uid: 'x' }, spec: { x: 1 } },
  outcome: 'failed',
  finishedAt: '2026-12-01T10:00:00Z',
  finishTimeSource: 'condition',
  ttlSeconds: 7 * 86400,
  ttlSource: 'annotation',
  ttlDetail: 'annotation kttl.dev/ttl-failed=7d',
  deletedAt: '2026-12-01T11:00:00Z',
  reason: 'TTL 7d after failed expired',
  logs: [{ pod: 'p', container: 'main', containerType: 'regular', text: 'héllo\n', truncated: true }],
  events: [],
  captureErrors: [],
};

describe('names', () => {
  test('kind.name.uid-prefix, parsed back even when the object name has dots', () => {
    assert.equal(deletedObjectName('Job', 'train.v2', record.uid), 'job.train.v2.5f3c2a1b');
    assert.deepEqual(parseDeletedObjectName('job.train.v2.5f3c2a1b'), {
      kindLower: 'job',
      name: 'train.v2',
      uidPrefix: '5f3c2a1b',
    });
    assert.equal(parseDeletedObjectName('job.x'), undefined);
    assert.equal(parseDeletedObjectName('job..5f3c2a1b'), undefined);
    assert.equal(parseDeletedObjectName('job.x.short'), undefined);
  });
  test('every name parses back to the summary it was made from (fast-check)', () => {
    const dnsName = fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?$/);
    fc.assert(
      fc.property(
        fc.constantFrom('Job', 'Pod', 'TrainJob', 'PipelineRun'),
        dnsName,
        fc.uuid(),
        (kind, name, uid) => {
          const p = parseDeletedObjectName(deletedObjectName(kind, name, uid));
          assert.ok(p);
          assert.ok(namesSummary(p, { kind, name, uid }));
          assert.ok(!namesSummary(p, { kind: 'Other', name, uid }));
          // The full uid names it too.
          const full = parseDeletedObjectName(`${kind.toLowerCase()}.${name}.${uid}`);
          assert.ok(full && namesSummary(full, { kind, name, uid }));
        },
      ),
    );
  });
});

describe('shapes', () => {
  test('the full DeletedObject: no managedFields, log sizes not text', () => {
    const o = deletedObject(record, 'deleted') as Doc;
    assert.equal(o.apiVersion, 'archive.kttl.dev/v1alpha1');
    assert.equal(o.kind, 'DeletedObject');
    assert.deepEqual(o.metadata, {
      name: 'job.train.v2.5f3c2a1b',
      namespace: 'team-a',
      uid: record.uid,
      resourceVersion: '42',
      creationTimestamp: record.deletedAt,
      labels: { app: 'train' },
    });
    assert.deepEqual(o.object, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      name: 'train.v2',
      uid: record.uid,
      resourceVersion: '42',
    });
    assert.deepEqual(o.ttl, {
      seconds: 604800,
      source: 'annotation',
      detail: 'annotation kttl.dev/ttl-failed=7d',
    });
    assert.equal(o.manifest.metadata.managedFields, undefined);
    assert.equal(o.manifest.metadata.uid, 'x');
    assert.deepEqual(o.logs, [
      { pod: 'p', container: 'main', containerType: 'regular', truncated: true, bytes: 7 },
    ]);
    assert.equal(JSON.stringify(o).includes('héllo'), false);
    // The record itself is not changed.
    assert.ok((record.object.metadata as Record<string, unknown>).managedFields);
  });
  test('list items are summaries; continue in the list metadata', () => {
    const l = deletedObjectList([summaryOf(record, 'pending')], 'tok') as Doc;
    assert.equal(l.kind, 'DeletedObjectList');
    assert.equal(l.metadata.continue, 'tok');
    assert.equal(l.items[0].state, 'pending');
    assert.equal(l.items[0].manifest, undefined);
    assert.deepEqual(l.items[0].ttl, { seconds: 604800, source: 'annotation' });
  });
  test('Table: the columns kubectl prints, wide ones at priority 1, ages from now', () => {
    const s = summaryOf(record, 'deleted');
    const now = Date.parse('2026-12-01T12:00:00Z');
    const t = table([{ summary: s, item: { metadata: { name: 'job.train.v2.5f3c2a1b' } } }], {
      nowMs: now,
      include: 'Metadata',
      continue: 'c',
    }) as Doc;
    assert.equal(t.kind, 'Table');
    assert.deepEqual(
      t.columnDefinitions
        .filter((c: { priority: number }) => c.priority === 0)
        .map((c: { name: string }) => c.name),
      ['Name', 'Kind', 'Outcome', 'Finished', 'Deleted', 'TTL Source'],
    );
    assert.deepEqual(t.rows[0].cells, [
      'job.train.v2.5f3c2a1b',
      'Job',
      'failed',
      '120m',
      '60m',
      'annotation',
      '7d',
      'prod',
      record.uid,
    ]);
    assert.equal(t.rows[0].object.kind, 'PartialObjectMetadata');
    assert.equal(t.rows[0].object.metadata.name, 'job.train.v2.5f3c2a1b');
    assert.equal(t.metadata.continue, 'c');
    const none = table([{ summary: { ...s, finishedAt: null }, item: {} }], {
      nowMs: now,
      include: 'None',
    }) as Doc;
    assert.equal(none.rows[0].object, undefined);
    assert.equal(none.rows[0].cells[3], '<none>');
  });
  test('TTL text', () => {
    assert.deepEqual(
      [ttlText(90), ttlText(900), ttlText(7200), ttlText(86400 * 3), ttlText(0)],
      ['90s', '15m', '2h', '3d', '0s'],
    );
  });
});

describe('Status', () => {
  test('forbidden: the API server wording, namespace or cluster scope, subresource, reason', () => {
    assert.equal(
      forbiddenMessage({ user: 'alice', verb: 'list', resource: 'deletedobjects', namespace: 'b' }),
      'deletedobjects.archive.kttl.dev is forbidden: User "alice" cannot list resource "deletedobjects" in API group "archive.kttl.dev" in the namespace "b"',
    );
    assert.equal(
      forbiddenMessage({ user: 'alice', verb: 'list', resource: 'deletedobjects' }),
      'deletedobjects.archive.kttl.dev is forbidden: User "alice" cannot list resource "deletedobjects" in API group "archive.kttl.dev" at the cluster scope',
    );
    assert.equal(
      forbiddenMessage({
        user: 'u',
        verb: 'get',
        resource: 'deletedobjects/log',
        namespace: 'a',
        name: 'job.x.12345678',
        reason: 'no',
      }),
      'deletedobjects.archive.kttl.dev "job.x.12345678" is forbidden: User "u" cannot get resource "deletedobjects/log" in API group "archive.kttl.dev" in the namespace "a": no',
    );
  });
  test('not found', () => {
    const s = notFound('job.x.12345678');
    assert.equal(s.code, 404);
    assert.equal(s.reason, 'NotFound');
    assert.equal(s.message, 'deletedobjects.archive.kttl.dev "job.x.12345678" not found');
  });
});

describe('discovery and OpenAPI', () => {
  test('resources: deletedobjects (get, list) and deletedobjects/log (get), namespaced', () => {
    const r = apiResourceList() as {
      resources: Array<{ name: string; verbs: string[]; namespaced: boolean }>;
    };
    assert.deepEqual(
      r.resources.map((x) => [x.name, x.verbs, x.namespaced]),
      [
        ['deletedobjects', ['get', 'list'], true],
        ['deletedobjects/log', ['get'], true],
      ],
    );
    assert.equal((apiGroupList() as { groups: Array<{ name: string }> }).groups[0]!.name, 'archive.kttl.dev');
  });
  test('every $ref resolves; the kinds carry their group-version-kind', () => {
    for (const [doc, prefix, defs] of [
      [openApiV2(), '#/definitions/', (openApiV2() as Doc).definitions],
      [openApiV3(), '#/components/schemas/', (openApiV3() as Doc).components.schemas],
    ] as const) {
      const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
      assert.ok(refs.length > 0);
      for (const ref of refs) assert.ok(defs[ref.slice(prefix.length)], ref);
      const gvks = Object.values(defs as Doc).flatMap((d) => d['x-kubernetes-group-version-kind'] ?? []);
      assert.deepEqual(gvks.map((g: { kind: string }) => g.kind).sort(), [
        'DeletedObject',
        'DeletedObjectList',
      ]);
    }
    const index = openApiV3Index() as { paths: Record<string, { serverRelativeURL: string }> };
    assert.match(
      index.paths['apis/archive.kttl.dev/v1alpha1']!.serverRelativeURL,
      /^\/openapi\/v3\/apis\/archive\.kttl\.dev\/v1alpha1\?hash=[0-9A-F]+$/,
    );
  });
});

describe('request headers and SubjectAccessReview', () => {
  const config = requestHeaderConfig({
    'requestheader-client-ca-file': '-----BEGIN CERTIFICATE-----\n',
    'requestheader-allowed-names': '["front-proxy-client"]',
    'requestheader-username-headers': '["X-Remote-User"]',
    'requestheader-group-headers': '["X-Remote-Group"]',
    'requestheader-extra-headers-prefix': '["X-Remote-Extra-"]',
  })!;
  test('the ConfigMap as the API server writes it', () => {
    assert.deepEqual(config.allowedNames, ['front-proxy-client']);
    assert.equal(requestHeaderConfig({}), undefined);
    assert.deepEqual(requestHeaderConfig({ 'requestheader-client-ca-file': 'x' })!.usernameHeaders, [
      'X-Remote-User',
    ]);
  });
  test('user, every group header, extras with percent-encoded keys', () => {
    const r = userFromHeaders(
      {
        'x-remote-user': ['alice'],
        'x-remote-group': ['dev', 'system:authenticated'],
        'x-remote-extra-scopes': ['a', 'b'],
        'x-remote-extra-example.com%2fteam': ['ml'],
        other: ['x'],
      },
      config,
    );
    assert.deepEqual(r, {
      ok: true,
      user: {
        name: 'alice',
        groups: ['dev', 'system:authenticated'],
        extra: { scopes: ['a', 'b'], 'example.com/team': ['ml'] },
      },
    });
    assert.equal(userFromHeaders({ 'x-remote-group': ['g'] }, config).ok, false);
  });
  test('the review names the resource, subresource, verb, namespace and name', () => {
    const sar = subjectAccessReview({
      user: { name: 'alice', groups: ['g'], extra: {} },
      verb: 'get',
      namespace: 'a',
      name: 'job.x.12345678',
      subresource: 'log',
    }) as Doc;
    assert.deepEqual(sar.spec, {
      user: 'alice',
      groups: ['g'],
      resourceAttributes: {
        group: 'archive.kttl.dev',
        version: 'v1alpha1',
        resource: 'deletedobjects',
        subresource: 'log',
        verb: 'get',
        namespace: 'a',
        name: 'job.x.12345678',
      },
    });
  });
});

describe('routing and content negotiation', () => {
  test('paths', () => {
    const b = '/apis/archive.kttl.dev/v1alpha1';
    assert.deepEqual(route(`${b}/deletedobjects`), { kind: 'list' });
    assert.deepEqual(route(`${b}/namespaces/a/deletedobjects`), { kind: 'list', namespace: 'a' });
    assert.deepEqual(route(`${b}/namespaces/a/deletedobjects/job.x.12345678`), {
      kind: 'get',
      namespace: 'a',
      name: 'job.x.12345678',
    });
    assert.deepEqual(route(`${b}/namespaces/a/deletedobjects/job.x.12345678/log`), {
      kind: 'log',
      namespace: 'a',
      name: 'job.x.12345678',
    });
    assert.deepEqual(route(b), { kind: 'resources' });
    assert.deepEqual(route('/apis'), { kind: 'groups' });
    assert.deepEqual(route('/readyz'), { kind: 'health' });
    assert.equal(route(`${b}/namespaces/a/other`), undefined);
    assert.equal(route(`${b}/namespaces/a/deletedobjects/x/status`), undefined);
    assert.equal(route('/api/v1/pods'), undefined);
  });
  test('kubectl get asks for a Table', () => {
    assert.equal(
      wantsTable(
        'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
      ),
      'v1',
    );
    assert.equal(wantsTable('application/json;as=Table;v=v1beta1;g=meta.k8s.io'), 'v1beta1');
    assert.equal(wantsTable('application/json'), undefined);
    assert.equal(wantsTable(undefined), undefined);
  });
});
