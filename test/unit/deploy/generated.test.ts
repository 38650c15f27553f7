// deploy/ against its sources: every generated file is up to date (scripts/gen-deploy.ts), the RBAC
// rules cover what the code touches and nothing broader, and the dashboard and alerts query only
// metrics that kttl exports.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { dashboard } from '../../../scripts/gen-dashboard.ts';
import {
  compare,
  findHelm,
  generateAll,
  generateSources,
  KIND_VERBS,
  type PolicyRule,
  READ_VERBS,
  ROOT,
  readRbacSource,
  readRules,
  registryRules,
} from '../../../scripts/gen-deploy.ts';
import { renderSections, SECTION_FILES, terminalTable } from '../../../scripts/gen-kinds.ts';
import { createArchiveMetrics } from '../../../src/archive/metrics.ts';
import { createMetrics } from '../../../src/controller/metrics.ts';
import { createSafetyMetrics } from '../../../src/controller/safety-metrics.ts';
import { BUILTIN_FINISH_RULES } from '../../../src/rules/finish.ts';
import { BUILTIN_KINDS, builtinKind } from '../../../src/rules/kinds.ts';
import { webhookConfiguration } from '../../../src/webhook/config.ts';

const FIX = 'run `node scripts/gen-deploy.ts` and commit the result';
/** A self-signed certificate (its key thrown away): webhookConfiguration only parses the CA. */
const TEST_CA = `-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIUSkwNilT3vNkbc9btnFoym2eq3KYwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMa3R0bC10ZXN0LWNhMCAXDTI2MTIwMjAxNTAzMVoYDzIxMjYx
MTA4MDE1MDMxWjAXMRUwEwYDVQQDDAxrdHRsLXRlc3QtY2EwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAQwQvti/EY7h1yC/tG2E+36W0127p40XSN8I7gUK8jacTPi
RDlMgSC02p8cwS8FChZ/ASHjuWeoZh0792NoXibeo1MwUTAdBgNVHQ4EFgQUkMoz
HKUjovjl6UzDP3UlhPztyrswHwYDVR0jBBgwFoAUkMozHKUjovjl6UzDP3UlhPzt
yrswDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiA6XKklIwYrbnIx
gHiXNPXhLpdukJ3y1TGdZ5HoUwE9jAIhANnvlEC+87gjhZeC1ANDC3Ve0+4oua5W
bEY//Hw9USbO
-----END CERTIFICATE-----
`;

describe('generated deploy files', () => {
  test('the chart templates, CRD copies, rule and dashboard copies are up to date', () => {
    const files = generateSources();
    const { stale, extra } = compare(files, ROOT, false);
    assert.deepEqual(stale, [], `out of date: ${stale.join(', ')}: ${FIX}`);
    assert.deepEqual(extra, [], `no longer generated: ${extra.join(', ')}: ${FIX}`);
  });

  test('the chart CRDs are byte-for-byte deploy/crds (the single source)', () => {
    for (const f of ['kttl.dev_ttlpolicies.yaml', 'kttl.dev_clusterttlpolicies.yaml']) {
      assert.equal(
        readFileSync(join(ROOT, 'deploy/helm/kttl/crds', f), 'utf8'),
        readFileSync(join(ROOT, 'deploy/crds', f), 'utf8'),
        f,
      );
    }
  });

  const helm = findHelm();
  test('the manifests rendered with helm (deploy/manifests, deploy/rbac/rbac.yaml) are up to date', {
    skip: helm
      ? false
      : 'no helm binary: run `bash hack/testbed/build --helm` (chart.test.ts checks this too)',
  }, () => {
    const files = generateAll(helm);
    const { stale, extra } = compare(files, ROOT, true);
    assert.deepEqual(stale, [], `out of date: ${stale.join(', ')}: ${FIX}`);
    assert.deepEqual(extra, [], `no longer generated: ${extra.join(', ')}: ${FIX}`);
  });
});

describe('RBAC rules (deploy/rbac/rules.yaml)', () => {
  const src = readRbacSource();
  const all = (blocks: typeof src.controller) => blocks.flatMap((b) => b.rules);
  const grants = (rules: PolicyRule[], group: string, resource: string, verb: string) =>
    rules.some(
      (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
    );

  test('every built-in custom kind can be watched, re-read and deleted', () => {
    const builtin = src.controller.filter((b) => b.when === 'builtinKinds').flatMap((b) => b.rules);
    for (const key of Object.keys(BUILTIN_FINISH_RULES)) {
      const i = key.lastIndexOf('/');
      const k = builtinKind(key.slice(0, i), key.slice(i + 1));
      assert.ok(k, key);
      for (const verb of KIND_VERBS)
        assert.ok(
          grants(builtin, k.group, k.plural, verb),
          `${verb} ${k.plural}.${k.group} (${key}) missing`,
        );
    }
    const groups = new Set(Object.keys(BUILTIN_FINISH_RULES).map((k) => k.slice(0, k.lastIndexOf('/'))));
    for (const r of builtin)
      for (const g of r.apiGroups) assert.ok(groups.has(g), `${g}: not a built-in kind's group`);
  });

  test('every kind of the registry is granted under its gate, by its registry plural', () => {
    for (const k of BUILTIN_KINDS) {
      const rules = src.controller.filter((b) => b.when === k.gate).flatMap((b) => b.rules);
      for (const verb of KIND_VERBS)
        assert.ok(grants(rules, k.group, k.plural, verb), `${verb} ${k.plural}.${k.group} (when: ${k.gate})`);
    }
  });

  test('rules.yaml lists no built-in kind by hand (they come from src/rules/kinds.ts)', () => {
    const raw = parse(readFileSync(join(ROOT, 'deploy/rbac/rules.yaml'), 'utf8')) as Record<
      string,
      Array<{ rules?: PolicyRule[] }>
    >;
    const builtin = new Set(BUILTIN_KINDS.map((k) => `${k.plural}.${k.group}`));
    for (const blocks of Object.values(raw))
      for (const r of blocks.flatMap((b) => b.rules ?? []))
        for (const g of r.apiGroups)
          for (const res of r.resources)
            assert.ok(
              !builtin.has(`${res}.${g}`),
              `${res}.${g}: use kinds: registry, not a hand-written rule`,
            );
    assert.deepEqual(registryRules('pods'), [{ apiGroups: [''], resources: ['pods'], verbs: KIND_VERBS }]);
  });

  test('what the controller does is granted', () => {
    const c = all(src.controller);
    for (const verb of KIND_VERBS) {
      assert.ok(grants(c, 'batch', 'jobs', verb), `${verb} jobs`);
      assert.ok(grants(c, '', 'pods', verb), `${verb} pods`);
    }
    for (const p of ['ttlpolicies', 'clusterttlpolicies']) {
      for (const verb of ['get', 'list', 'watch']) assert.ok(grants(c, 'kttl.dev', p, verb), `${verb} ${p}`);
      assert.ok(grants(c, 'kttl.dev', `${p}/status`, 'patch'), `patch ${p}/status`);
    }
    for (const verb of ['list', 'watch']) assert.ok(grants(c, '', 'namespaces', verb), `${verb} namespaces`);
    assert.ok(grants(c, '', 'events', 'create'), 'create events');
    const leases = all(src.controllerNamespace);
    for (const verb of ['get', 'create', 'update'])
      assert.ok(grants(leases, 'coordination.k8s.io', 'leases', verb), `${verb} leases`);
  });

  test("the archive's reads are granted only under when: archive, by the registry's Pod plural", () => {
    const archive = src.controller.filter((b) => b.when === 'archive').flatMap((b) => b.rules);
    for (const verb of READ_VERBS) assert.ok(grants(archive, '', 'pods', verb), `${verb} pods (archive)`);
    assert.ok(grants(archive, '', 'pods/log', 'get'), 'get pods/log');
    assert.ok(grants(archive, '', 'events', 'list'), 'list events (involvedObject.uid)');
    for (const b of src.controller.filter((x) => x.when !== 'archive'))
      assert.ok(!grants(b.rules, '', 'pods/log', 'get'), `pods/log only under when: archive (${b.when})`);
    assert.ok(
      !archive.some((r) => r.verbs.some((v) => v !== 'get' && v !== 'list')),
      'the archive only reads',
    );
    assert.deepEqual(readRules([{ group: '', kind: 'Pod' }]), [
      { apiGroups: [''], resources: ['pods'], verbs: READ_VERBS },
    ]);
    assert.throws(() => readRules([{ group: '', kind: 'Widget' }]), /not a kind of src\/rules\/kinds\.ts/);
    const tpl = readFileSync(join(ROOT, 'deploy/helm/kttl/templates/rbac.yaml'), 'utf8');
    assert.ok(
      tpl.includes('{{- if ne (include "kttl.archive" . | fromJson).mode "off" }}'),
      'archive condition',
    );
  });

  test('nothing broader: no wildcards, no secrets, no writes beyond delete/status/events/leases', () => {
    const sections = {
      controller: src.controller,
      controllerNamespace: src.controllerNamespace,
      webhook: src.webhook,
      archiveReaders: src.archiveReaders,
    };
    for (const [name, blocks] of Object.entries(sections)) {
      for (const r of all(blocks)) {
        const where = `${name}: ${JSON.stringify(r)}`;
        for (const x of [...r.apiGroups, ...r.resources, ...r.verbs]) assert.notEqual(x, '*', where);
        assert.ok(!r.resources.some((x) => /secret|configmap|serviceaccount|role/.test(x)), where);
        assert.ok(
          !r.verbs.some((v) => ['escalate', 'bind', 'impersonate', 'deletecollection'].includes(v)),
          where,
        );
        for (const v of r.verbs.filter((x) => ['create', 'update', 'patch'].includes(x))) {
          const ok = r.resources.every(
            (res) => res.endsWith('/status') || res === 'events' || res === 'leases',
          );
          assert.ok(ok, `${where}: ${v} only on */status, events and leases`);
        }
      }
    }
    // The webhook only reads (its policy store lists and watches).
    for (const r of all(src.webhook)) assert.deepEqual(r.verbs, ['list', 'watch']);
    // Lease get/update are limited to kttl's own Lease.
    const named = all(src.controllerNamespace).filter((r) => r.verbs.includes('update'));
    assert.ok(named.length > 0 && named.every((r) => r.resourceNames?.length === 1));
  });

  test("users' archive role: get/list deletedobjects and get deletedobjects/log, nothing more, aggregated to view/edit/admin", () => {
    const rules = all(src.archiveReaders);
    assert.deepEqual(
      rules.map((r) => ({ ...r })),
      [
        { apiGroups: ['archive.kttl.dev'], resources: ['deletedobjects'], verbs: ['get', 'list'] },
        { apiGroups: ['archive.kttl.dev'], resources: ['deletedobjects/log'], verbs: ['get'] },
      ],
    );
    const tpl = readFileSync(join(ROOT, 'deploy/helm/kttl/templates/rbac.yaml'), 'utf8');
    assert.ok(tpl.includes('{{- if include "kttl.archiveApi" . }}'), 'only with the archive API');
    for (const r of ['view', 'edit', 'admin'])
      assert.ok(tpl.includes(`rbac.authorization.k8s.io/aggregate-to-${r}: "true"`), r);
    assert.ok(tpl.includes('  name: system:auth-delegator'), 'SubjectAccessReviews');
    assert.ok(tpl.includes('  name: extension-apiserver-authentication-reader'), 'the front proxy CA');
  });

  test('the rendered template carries the same rules (chart value conditions only)', () => {
    const tpl = readFileSync(join(ROOT, 'deploy/helm/kttl/templates/rbac.yaml'), 'utf8');
    for (const r of all(src.controller))
      for (const res of r.resources) assert.ok(tpl.includes(`"${res}"`), `${res} in templates/rbac.yaml`);
    for (const cond of [
      '.Values.controller.pods',
      '.Values.controller.builtinKinds',
      '.Values.controller.policies',
    ])
      assert.ok(tpl.includes(`{{- if ${cond} }}`), cond);
  });
});

describe('the kind sections (scripts/gen-kinds.ts: chart values and docs from src/rules/kinds.ts)', () => {
  test('every marked section is what the registry renders', () => {
    for (const [file, names] of Object.entries(SECTION_FILES)) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      assert.equal(text, renderSections(file, text, names), `${file}: ${FIX}`);
    }
  });

  test("the chart's webhook.rules are the resources of `kttl webhook config`", () => {
    const values = parse(readFileSync(join(ROOT, 'deploy/helm/kttl/values.yaml'), 'utf8')) as {
      webhook: { rules: Array<Record<string, unknown>> };
    };
    const cfg = webhookConfiguration({
      url: 'https://kttl.example/mutate',
      caBundlePem: TEST_CA,
      namespace: 'kttl',
    }) as { webhooks: Array<{ rules: Array<Record<string, unknown>> }> };
    const ours = cfg.webhooks[0]?.rules.map(({ operations: _, ...r }) => r);
    assert.deepEqual(values.webhook.rules, ours);
    for (const k of BUILTIN_KINDS)
      assert.ok(
        values.webhook.rules.some(
          (r) => (r.apiGroups as string[]).includes(k.group) && (r.resources as string[]).includes(k.plural),
        ),
        `${k.plural}.${k.group}`,
      );
  });

  test('the docs table has a row naming each kind with its group', () => {
    const table = terminalTable();
    for (const k of BUILTIN_KINDS) {
      const row = table
        .split('\n')
        .find(
          (l) => l.includes(`\`${k.kind}\``) && l.includes(k.group === '' ? '(core)' : `(\`${k.group}\`)`),
        );
      assert.ok(row, `${k.group}/${k.kind}`);
      assert.ok(
        row.includes(k.terminal.succeeded) && row.includes(k.terminal.interim),
        `${k.kind} terminal states`,
      );
    }
  });

  test('renderSections: inline and block Markdown, YAML lines; a lost marker is an error', () => {
    const sections = { a: { md: 'X, Y' }, b: { yaml: (i: string) => [`${i}- 1`, `${i}- 2`] } };
    assert.equal(
      renderSections('f', 'see <!-- kinds:a:begin -->old<!-- kinds:a:end -->.', ['a'], sections),
      'see <!-- kinds:a:begin -->X, Y<!-- kinds:a:end -->.',
    );
    assert.equal(
      renderSections('f', '<!-- kinds:a:begin -->\nold\nlines\n<!-- kinds:a:end -->\n', ['a'], sections),
      '<!-- kinds:a:begin -->\nX, Y\n<!-- kinds:a:end -->\n',
    );
    assert.equal(
      renderSections('f', 'l:\n  # kinds:b:begin (gen)\n  - 0\n  # kinds:b:end\nm: 1\n', ['b'], sections),
      'l:\n  # kinds:b:begin (gen)\n  - 1\n  - 2\n  # kinds:b:end\nm: 1\n',
    );
    assert.throws(() => renderSections('f.md', 'no markers', ['a'], sections), /f\.md: markers/);
    assert.throws(() => renderSections('f.yaml', 'x: 1\n', ['b'], sections), /f\.yaml: marker lines/);
  });
});

describe('dashboard and alerts', () => {
  const registry = new Registry();
  createMetrics(registry);
  createArchiveMetrics(registry);
  createSafetyMetrics(registry);
  const known = new Set<string>();
  for (const m of registry.getMetricsAsArray()) {
    known.add(m.name);
    if (String(m.type) === 'histogram')
      for (const s of ['_bucket', '_sum', '_count']) known.add(`${m.name}${s}`);
  }
  const used = (text: string) => new Set(text.match(/\bkttl_[a-z_]+\b/g) ?? []);

  test('the dashboard queries only metrics kttl exports, and shows each documented metric', () => {
    const text = readFileSync(join(ROOT, 'deploy/grafana/kttl-dashboard.json'), 'utf8');
    const names = used(text);
    for (const n of names)
      assert.ok(known.has(n), `${n}: no such metric in src/controller/metrics.ts or src/archive/metrics.ts`);
    for (const n of [
      'kttl_deletions_total',
      'kttl_deletion_lateness_seconds_bucket',
      'kttl_tracked_objects',
      'kttl_invalid_ttl_total',
      'kttl_clock_skew_seconds',
      'kttl_api_requests_total',
      'kttl_leader',
      'kttl_archive_records_total',
      'kttl_archive_pending',
      'kttl_archive_failures_total',
      'kttl_archive_stored_bytes',
      'kttl_archive_write_seconds_bucket',
      'kttl_deletions_paused',
      'kttl_notifications_dropped_total',
    ])
      assert.ok(names.has(n), `${n} not on the dashboard`);
  });

  test('dashboard panels have unique ids and do not overlap', () => {
    const d = dashboard() as {
      panels: Array<{ id: number; type: string; gridPos: { x: number; y: number; w: number; h: number } }>;
    };
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    const cells = new Set<string>();
    for (const p of d.panels) {
      const g = p.gridPos;
      assert.ok(g.x >= 0 && g.x + g.w <= 24, `panel ${p.id} outside the 24-column grid`);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          const k = `${x},${y}`;
          assert.ok(!cells.has(k), `panel ${p.id} overlaps another at ${k}`);
          cells.add(k);
        }
    }
    // Deletions by kind, outcome and source; lateness quantiles.
    const text = JSON.stringify(d);
    for (const by of ['sum by (kind)', 'sum by (outcome)', 'sum by (source)', 'histogram_quantile(0.99'])
      assert.ok(text.includes(by), by);
  });

  test('the alerts query only metrics kttl exports and cover the required conditions', () => {
    const text = readFileSync(join(ROOT, 'deploy/prometheus/kttl-rules.yaml'), 'utf8');
    for (const n of used(text)) assert.ok(known.has(n), `${n}: no such metric`);
    const doc = parse(text) as {
      kind: string;
      spec: {
        groups: Array<{
          rules: Array<{
            alert: string;
            expr: string;
            for?: string;
            labels: { severity: string };
            annotations: Record<string, string>;
          }>;
        }>;
      };
    };
    assert.equal(doc.kind, 'PrometheusRule');
    const rules = doc.spec.groups.flatMap((g) => g.rules);
    const byName = new Map(rules.map((r) => [r.alert, r]));
    for (const [alert, metric] of [
      ['KttlControllerDown', 'up{job="kttl"}'],
      ['KttlDeletionLatenessHigh', 'kttl_deletion_lateness_seconds_bucket'],
      ['KttlInvalidTtlsRising', 'kttl_invalid_ttl_total'],
      ['KttlNoLeader', 'kttl_leader'],
      ['KttlDeletionsPaused', 'kttl_deletions_paused'],
      ['KttlNotificationsDropped', 'kttl_notifications_dropped_total'],
    ] as const) {
      const r = byName.get(alert);
      assert.ok(r, `alert ${alert} missing`);
      assert.ok(r.expr.includes(metric), `${alert} should use ${metric}`);
    }
    assert.match(byName.get('KttlDeletionLatenessHigh')!.expr, /histogram_quantile\(0\.99/);
    for (const r of rules) {
      assert.ok(['critical', 'warning', 'info'].includes(r.labels.severity), `${r.alert} severity`);
      assert.ok(r.annotations.summary && r.annotations.description, `${r.alert} annotations`);
      // Balanced parentheses and braces: a cheap guard against a broken expression.
      for (const [open, close] of [
        ['(', ')'],
        ['{', '}'],
        ['[', ']'],
      ] as const)
        assert.equal(r.expr.split(open).length, r.expr.split(close).length, `${r.alert}: ${open}${close}`);
    }
  });
});
