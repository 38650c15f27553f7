// The Helm chart (docs/operations.md): helm built from Go modules in the testbed cache; `helm lint`, `helm
// template` with the default values and the webhook/cert-manager/monitoring variants, values the
// schema refuses; the generated manifests up to date; then the rendered CRDs, RBAC and webhook
// configuration applied to the real control plane, kttl run as a local process with the chart's
// ServiceAccount token, and `kttl webhook` served with the chart's own certificate secret.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { compare, generateAll } from '../../scripts/gen-deploy.ts';
import { applyObjects as apply, tokenKubeconfig } from '../testbed/clients.ts';
import { scrape } from '../testbed/controller.ts';
import { waitForJobDeletion } from '../testbed/jobs.ts';
import { freePort, httpsStatus } from '../testbed/processes.ts';
import { binaries, REPO_ROOT, type Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  jobManifest,
  newNamespace,
  sleep,
  useTestbed,
  waitFor,
} from '../testbed/use.ts';

const run = promisify(execFile);
const CHART = join(REPO_ROOT, 'deploy/helm/kttl');
const BUNDLE = join(REPO_ROOT, 'dist/kttl.mjs');

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: rendered objects are checked field by field
  [k: string]: any;
}

function docsOf(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => !!d?.kind);
}

/** helm, built into the testbed cache if missing (`bash hack/testbed/build --helm`); null if it cannot be. */
function ensureHelm(): { helm: string | null; why: string } {
  const helm = binaries().helm;
  if (existsSync(helm)) return { helm, why: '' };
  try {
    console.log('# building helm from Go modules (bash hack/testbed/build --helm), ~3 min the first time');
    execFileSync('bash', [join(REPO_ROOT, 'hack/testbed/build'), '--helm'], { stdio: 'inherit' });
  } catch (err) {
    return {
      helm: null,
      why: `helm missing and could not be built: ${(err as Error).message.split('\n')[0]}`,
    };
  }
  return existsSync(helm) ? { helm, why: '' } : { helm: null, why: `helm still missing at ${helm}` };
}

const found = ensureHelm();
const skip = found.helm ? false : `${found.why} — run \`bash hack/testbed/build --helm\``;

async function helm(args: string[]): Promise<string> {
  const { stdout } = await run(found.helm!, args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

async function template(
  release: string,
  ns: string,
  sets: string[] = [],
  extra: string[] = [],
): Promise<Obj[]> {
  const args = ['template', release, CHART, '--namespace', ns, ...extra];
  // `json:a.b=[…]` is passed with --set-json, the others with --set.
  for (const s of sets) args.push(...(s.startsWith('json:') ? ['--set-json', s.slice(5)] : ['--set', s]));
  return docsOf(await helm(args));
}

const byKind = (docs: Obj[], kind: string) => docs.filter((d) => d.kind === kind);
const one = (docs: Obj[], kind: string, name?: string): Obj => {
  const m = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  assert.equal(m.length, 1, `one ${kind}${name ? ` ${name}` : ''} (got ${m.length})`);
  return m[0]!;
};
const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

interface Child {
  proc: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

function spawnKttl(tb: Testbed, args: string[], label: string): Child {
  const logFile = join(tb.state.dir, 'logs', `${label}-${process.pid}.log`);
  const out = createWriteStream(logFile);
  const proc = spawn(process.execPath, [BUNDLE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  return {
    proc,
    logFile,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

function webhookCommandBuilt(): boolean {
  try {
    execFileSync(process.execPath, [BUNDLE, 'webhook', 'config', '--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('Helm chart deploy/helm/kttl', { skip }, () => {
  let tb: Testbed;
  let c: Clients;
  const children: Child[] = [];
  const clusterObjects: string[] = [];

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    if (!existsSync(BUNDLE)) execFileSync(process.execPath, ['scripts/build.ts'], { cwd: REPO_ROOT });
    console.log(`# ${(await helm(['version', '--short'])).trim()} from ${found.helm}`);
  });

  after(async () => {
    for (const ch of children) await ch.stop();
    for (const o of clusterObjects.reverse())
      await tb.kubectl(['delete', '--ignore-not-found', '--wait=false', o]).catch(() => undefined);
  });

  test('helm lint --strict: default values and every variant', async () => {
    const variants = [
      [],
      ['--set', 'webhook.certManager.enabled=true'],
      ['--set', 'webhook.enabled=false'],
      ['--set', 'serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true'],
      [
        '--set',
        'controller.pods=false,controller.builtinKinds=false,controller.leaderElection.enabled=false',
      ],
      // The archive: SQLite (the default above), PostgreSQL from a Secret or a DSN, off, required.
      ['--set', 'archive.existingSecret=kttl-archive-dsn,controller.replicas=3'],
      ['--set', 'archive.dsn=postgres://kttl@db.example/kttl?sslmode=verify-full'],
      ['--set', 'archive.mode=off'],
      ['--set', 'archive.mode=required,archive.storage.storageClassName=fast'],
      // The archive's read API: the webhook off with cert-manager (it renders the certificate), or not served.
      ['--set', 'webhook.enabled=false,webhook.certManager.enabled=true'],
      ['--set', 'archive.api.enabled=false'],
      // Policy authority off; a namespace-only install (test/integration/namespace-scope.test.ts).
      ['--set', 'policyAuthority.enabled=false'],
      ['--set', 'scope=namespace,webhook.enabled=false,archive.api.enabled=false'],
      [
        '--set',
        'scope=namespace,webhook.enabled=false,archive.api.enabled=false,controller.namespaces={a,b}',
      ],
    ];
    for (const v of variants) {
      const out = await helm(['lint', '--strict', CHART, ...v]);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/, `lint ${v.join(' ')}`);
    }
    console.log(`# helm lint --strict: ${variants.length} value sets, 0 failures`);
  });

  test('helm template, default values: controller, RBAC, CRDs, webhook with a self-signed certificate', async () => {
    const docs = await template('kttl', 'kttl', [], ['--include-crds']);
    const kinds = docs.map((d) => d.kind).sort();
    console.log(`# default render: ${docs.length} objects: ${[...new Set(kinds)].join(', ')}`);

    // The CRDs are deploy/crds (the single source).
    const crds = byKind(docs, 'CustomResourceDefinition');
    for (const f of ['kttl.dev_ttlpolicies.yaml', 'kttl.dev_clusterttlpolicies.yaml']) {
      const src = parse(readFileSync(join(REPO_ROOT, 'deploy/crds', f), 'utf8')) as Obj;
      assert.deepEqual(
        crds.find((d) => d.metadata.name === src.metadata.name),
        src,
        f,
      );
    }

    // The controller.
    const dep = one(docs, 'Deployment', 'kttl');
    // One replica: the default archive is SQLite (one writer); the archive test below has the rest.
    assert.equal(dep.spec.replicas, 1);
    const pod = dep.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'kttl');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const ctr = pod.containers[0];
    assert.equal(ctr.securityContext.readOnlyRootFilesystem, true);
    assert.equal(ctr.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(ctr.securityContext.capabilities.drop, ['ALL']);
    assert.ok(ctr.resources.requests.cpu && ctr.resources.requests.memory && ctr.resources.limits.memory);
    assert.equal(ctr.livenessProbe.httpGet.path, '/healthz');
    assert.equal(ctr.livenessProbe.httpGet.port, 'health');
    assert.equal(ctr.readinessProbe.httpGet.path, '/readyz');
    assert.deepEqual(
      ctr.ports.map((p: { name: string; containerPort: number }) => `${p.name}:${p.containerPort}`),
      ['metrics:8080', 'health:8081'],
    );
    for (const flag of [
      'run',
      '--leader-elect=true',
      '--leader-elect-resource-namespace=kttl',
      '--leader-elect-resource-name=kttl',
      '--kube-api-qps=20',
      '--kube-api-burst=30',
      '--native-jobs=handle',
      '--dry-run=false',
      '--metrics-bind-address=:8080',
      '--health-probe-bind-address=:8081',
    ])
      assert.ok(ctr.args.includes(flag), `controller arg ${flag}`);

    // RBAC: the controller's ClusterRole, the lease Role in the release namespace, the webhook's.
    const role = one(docs, 'Role', 'kttl-leader-election');
    assert.equal(role.metadata.namespace, 'kttl');
    assert.deepEqual(role.rules[1].resourceNames, ['kttl']);
    one(docs, 'ClusterRole', 'kttl');
    one(docs, 'ClusterRole', 'kttl-webhook');
    assert.equal(byKind(docs, 'ServiceAccount').length, 2);
    for (const b of [...byKind(docs, 'ClusterRoleBinding'), ...byKind(docs, 'RoleBinding')])
      assert.equal(b.subjects[0].namespace, 'kttl');

    // The webhook: `kttl webhook` on 9443 with the chart's certificate.
    const wdep = one(docs, 'Deployment', 'kttl-webhook');
    const wargs: string[] = wdep.spec.template.spec.containers[0].args;
    assert.equal(wargs[0], 'webhook');
    assert.ok(wargs.includes('--bind-address=0.0.0.0:9443'));
    assert.ok(wargs.includes('--tls-cert-file=/etc/kttl/tls/tls.crt'));
    assert.ok(wargs.includes('--tls-private-key-file=/etc/kttl/tls/tls.key'));
    assert.equal(wdep.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem, true);
    const svc = one(docs, 'Service', 'kttl-webhook');
    assert.deepEqual(svc.spec.ports[0], { name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' });
    const mwc = one(docs, 'MutatingWebhookConfiguration', 'kttl');
    const wh = mwc.webhooks[0];
    assert.equal(wh.failurePolicy, 'Ignore');
    assert.equal(wh.sideEffects, 'None');
    assert.deepEqual(wh.clientConfig.service, {
      name: 'kttl-webhook',
      namespace: 'kttl',
      path: '/mutate',
      port: 443,
    });
    assert.deepEqual(wh.namespaceSelector.matchExpressions[0].values, ['kube-system', 'kttl']);

    // The self-signed pair: the serving cert is signed by the CA that the caBundle carries, names
    // the Service, and matches its key.
    const secret = one(docs, 'Secret', 'kttl-webhook-tls');
    assert.equal(secret.type, 'kubernetes.io/tls');
    assert.equal(wh.clientConfig.caBundle, secret.data['ca.crt']);
    const ca = new X509Certificate(b64(secret.data['ca.crt']));
    const cert = new X509Certificate(b64(secret.data['tls.crt']));
    assert.ok(ca.ca, 'ca.crt is a CA');
    assert.ok(cert.verify(ca.publicKey), 'tls.crt signed by ca.crt');
    assert.ok(cert.checkIssued(ca));
    assert.match(cert.subjectAltName ?? '', /DNS:kttl-webhook\.kttl\.svc\b/);
    assert.ok(cert.checkPrivateKey(createPrivateKey(b64(secret.data['tls.key']))), 'tls.key matches tls.crt');
    console.log(
      `# self-signed: CA "${ca.subject.replace(/\n/g, ' ')}", serving cert ${cert.subjectAltName}, valid to ${cert.validTo}`,
    );
  });

  test('helm template: cert-manager, monitoring and value variants', async () => {
    // cert-manager with the chart's self-signed Issuer.
    let docs = await template('kttl', 'kttl', ['webhook.certManager.enabled=true']);
    one(docs, 'Issuer', 'kttl-selfsigned');
    const cert = one(docs, 'Certificate', 'kttl-webhook');
    assert.equal(cert.spec.secretName, 'kttl-webhook-tls');
    assert.ok(cert.spec.dnsNames.includes('kttl-webhook.kttl.svc'));
    assert.deepEqual(cert.spec.issuerRef, {
      kind: 'Issuer',
      name: 'kttl-selfsigned',
      group: 'cert-manager.io',
    });
    const mwc = one(docs, 'MutatingWebhookConfiguration');
    assert.equal(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'kttl/kttl-webhook');
    assert.equal(mwc.webhooks[0].clientConfig.caBundle, undefined, 'the cainjector fills it');
    assert.equal(byKind(docs, 'Secret').length, 0, 'no key material rendered');

    // cert-manager with an existing ClusterIssuer.
    docs = await template('kttl', 'kttl', [
      'webhook.certManager.enabled=true,webhook.certManager.issuerRef.kind=ClusterIssuer,webhook.certManager.issuerRef.name=corp-ca',
    ]);
    assert.equal(byKind(docs, 'Issuer').length, 0);
    assert.deepEqual(one(docs, 'Certificate').spec.issuerRef, {
      kind: 'ClusterIssuer',
      name: 'corp-ca',
      group: 'cert-manager.io',
    });

    // Monitoring: the ServiceMonitor scrapes the metrics Service with job="kttl"; the PrometheusRule
    // and the dashboard are deploy/prometheus and deploy/grafana, alert templates intact.
    docs = await template('kttl', 'kttl', [
      'serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true',
    ]);
    const sm = one(docs, 'ServiceMonitor');
    const metricsSvc = one(docs, 'Service', 'kttl-metrics');
    assert.equal(sm.spec.jobLabel, 'app.kubernetes.io/name');
    assert.equal(metricsSvc.metadata.labels?.['app.kubernetes.io/name'], 'kttl');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>))
      assert.equal(metricsSvc.metadata.labels?.[k], v, `ServiceMonitor selects the metrics Service (${k})`);
    assert.equal(sm.spec.endpoints[0].port, metricsSvc.spec.ports[0].name);
    const rules = parse(readFileSync(join(REPO_ROOT, 'deploy/prometheus/kttl-rules.yaml'), 'utf8')) as Obj;
    assert.deepEqual(one(docs, 'PrometheusRule').spec, rules.spec);
    assert.match(JSON.stringify(one(docs, 'PrometheusRule').spec), /\{\{ \$labels\.namespace \}\}/);
    const cm = one(docs, 'ConfigMap', 'kttl-dashboard');
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
    assert.deepEqual(
      JSON.parse(cm.data['kttl-dashboard.json']),
      JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/grafana/kttl-dashboard.json'), 'utf8')),
    );

    // Values reach the flags, and turning a feature off removes its permissions (the archive off
    // too: it reads pods, and its own test below covers it).
    docs = await template('kttl', 'kttl', [
      'controller.pods=false,controller.builtinKinds=false,controller.dryRun=true,controller.nativeJobs=leave',
      'archive.mode=off',
      'controller.kubeApiQps=50,controller.kubeApiBurst=100,controller.helmHooks=false',
      'controller.namespaces={a,b},controller.excludeNamespaces={kube-system,c}',
      'json:controller.kinds=[{"group":"example.com","kind":"Build","resource":"builds"}]',
    ]);
    const args: string[] = one(docs, 'Deployment', 'kttl').spec.template.spec.containers[0].args;
    for (const flag of [
      '--pods=false',
      '--builtin-kinds=false',
      '--dry-run=true',
      '--native-jobs=leave',
      '--kube-api-qps=50',
      '--kube-api-burst=100',
      '--helm-hooks=false',
      '--namespaces=a,b',
      '--exclude-namespaces=kube-system,c',
      '--kinds=example.com/Build',
    ])
      assert.ok(args.includes(flag), flag);
    const cr = JSON.stringify(one(docs, 'ClusterRole', 'kttl').rules);
    assert.ok(!cr.includes('"pods"'), 'no pods rule with pods=false');
    assert.ok(!cr.includes('argoproj.io'), 'no built-in kinds with builtinKinds=false');
    assert.ok(
      cr.includes(
        '{"apiGroups":["example.com"],"resources":["builds"],"verbs":["get","list","watch","delete"]}',
      ),
    );

    docs = await template('kttl', 'kttl', ['controller.leaderElection.enabled=false,webhook.enabled=false']);
    assert.equal(byKind(docs, 'Role').length, 0, 'no lease Role without leader election');
    assert.equal(byKind(docs, 'MutatingWebhookConfiguration').length, 0);
    assert.ok(!docs.some((d) => d.metadata.name.includes('webhook')), 'no webhook objects');
    docs = await template('kttl', 'kttl', [
      'rbac.create=false,serviceAccount.create=false,serviceAccount.name=mine',
    ]);
    assert.equal(byKind(docs, 'ClusterRole').length + byKind(docs, 'ServiceAccount').length, 0);
    assert.equal(one(docs, 'Deployment', 'kttl').spec.template.spec.serviceAccountName, 'mine');
  });

  test('helm template, the archive: SQLite on a PVC (one replica, Recreate), PostgreSQL from a Secret, off', async () => {
    const ROLLING = { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
    const argsOf = (docs: Obj[]): string[] =>
      one(docs, 'Deployment', 'kttl').spec.template.spec.containers[0].args;
    const archiveRules = (docs: Obj[]) =>
      (one(docs, 'ClusterRole', 'kttl').rules as Array<{ resources: string[]; verbs: string[] }>).filter(
        (r) =>
          r.resources.includes('pods/log') || (r.resources.includes('events') && r.verbs.includes('list')),
      );
    const controllerPdbs = (docs: Obj[]) =>
      byKind(docs, 'PodDisruptionBudget').filter((d) => d.metadata.name === 'kttl');

    // The default: best-effort on SQLite (helm template cannot look for a StorageClass: it assumes one).
    let docs = await template('kttl', 'kttl');
    const pvc = one(docs, 'PersistentVolumeClaim', 'kttl-archive');
    assert.equal(pvc.metadata.namespace, 'kttl');
    assert.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
    assert.equal(pvc.spec.resources.requests.storage, '10Gi');
    assert.equal(pvc.spec.storageClassName, undefined, 'the default StorageClass');
    assert.equal(
      pvc.metadata.annotations?.['helm.sh/resource-policy'],
      'keep',
      'records outlive an uninstall',
    );
    let dep = one(docs, 'Deployment', 'kttl');
    assert.equal(dep.spec.replicas, 1, 'SQLite: one writer');
    assert.deepEqual(dep.spec.strategy, { type: 'Recreate' });
    const pod = dep.spec.template.spec;
    assert.deepEqual(
      pod.volumes.find((v: { name: string }) => v.name === 'archive'),
      { name: 'archive', persistentVolumeClaim: { claimName: 'kttl-archive' } },
    );
    assert.deepEqual(
      pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'archive'),
      { name: 'archive', mountPath: '/var/lib/kttl' },
    );
    for (const flag of [
      '--archive=best-effort',
      '--archive-dsn=/var/lib/kttl/archive.db',
      '--archive-logs=true',
      '--archive-log-lines=200',
      '--archive-log-bytes=256Ki',
      '--archive-retention=90d',
      '--archive-max-size=10Gi',
      '--archive-qps=100',
      '--archive-burst=200',
      '--cluster-name=default',
    ])
      assert.ok(argsOf(docs).includes(flag), `controller arg ${flag}`);
    assert.equal(controllerPdbs(docs).length, 0, 'no budget for one replica: it would block drains');
    assert.deepEqual(archiveRules(docs), [
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    ]);
    assert.ok(!JSON.stringify(one(docs, 'ClusterRole', 'kttl').rules).includes('secrets'), 'no secrets');

    // Values reach the flags and the claim.
    docs = await template('kttl', 'kttl', [
      'archive.mode=required,archive.logs=false,archive.logLines=50,archive.logBytes=64Ki,archive.retention=30d',
      'archive.maxSize=0,archive.qps=20,archive.burst=40,clusterName=prod-eu-1',
      'archive.storage.size=50Gi,archive.storage.storageClassName=fast,archive.storage.accessModes={ReadWriteOncePod}',
    ]);
    for (const flag of [
      '--archive=required',
      '--archive-logs=false',
      '--archive-log-lines=50',
      '--archive-log-bytes=64Ki',
      '--archive-retention=30d',
      '--archive-max-size=0',
      '--archive-qps=20',
      '--archive-burst=40',
      '--cluster-name=prod-eu-1',
    ])
      assert.ok(argsOf(docs).includes(flag), flag);
    const claim = one(docs, 'PersistentVolumeClaim', 'kttl-archive');
    assert.equal(claim.spec.storageClassName, 'fast');
    assert.equal(claim.spec.resources.requests.storage, '50Gi');
    assert.deepEqual(claim.spec.accessModes, ['ReadWriteOncePod']);

    // PostgreSQL, the DSN from an existing Secret: an env var, never in the Deployment; replicas
    // as configured, RollingUpdate, the budget back; no claim.
    docs = await template('kttl', 'kttl', [
      'archive.existingSecret=kttl-archive-dsn,archive.secretKey=url,controller.replicas=3',
      'json:controller.env=[{"name":"TZ","value":"UTC"}]',
    ]);
    assert.equal(byKind(docs, 'PersistentVolumeClaim').length, 0, 'no claim with PostgreSQL');
    dep = one(docs, 'Deployment', 'kttl');
    assert.equal(dep.spec.replicas, 3);
    assert.deepEqual(dep.spec.strategy, ROLLING);
    const ctr = dep.spec.template.spec.containers[0];
    assert.deepEqual(ctr.env, [
      { name: 'KTTL_ARCHIVE_DSN', valueFrom: { secretKeyRef: { name: 'kttl-archive-dsn', key: 'url' } } },
      { name: 'TZ', value: 'UTC' },
    ]);
    assert.ok(ctr.args.includes('--archive-dsn=$(KTTL_ARCHIVE_DSN)'), 'expanded by the kubelet from the env');
    assert.ok(ctr.args.includes('--archive=best-effort'));
    assert.ok(!ctr.volumeMounts.some((m: { name: string }) => m.name === 'archive'));
    assert.ok(!dep.spec.template.spec.volumes.some((v: { name: string }) => v.name === 'archive'));
    assert.equal(one(docs, 'PodDisruptionBudget', 'kttl').spec.maxUnavailable, 1);
    assert.equal(archiveRules(docs).length, 2, 'the archive reads, granted');
    assert.equal(byKind(docs, 'Secret').filter((d) => d.metadata.name === 'kttl-archive-dsn').length, 0);

    // PostgreSQL from archive.dsn (no password): passed as is, default replicas.
    const dsn = 'postgres://kttl@db.example:5432/kttl?sslmode=verify-full&sslrootcert=/etc/ssl/ca.crt';
    docs = await template('kttl', 'kttl', [`archive.dsn=${dsn}`]);
    assert.ok(argsOf(docs).includes(`--archive-dsn=${dsn}`));
    assert.equal(one(docs, 'Deployment', 'kttl').spec.replicas, 2);
    assert.equal(byKind(docs, 'PersistentVolumeClaim').length, 0);

    // Off: no claim, no archive flags beyond --archive=off, no archive permissions.
    docs = await template('kttl', 'kttl', ['archive.mode=off']);
    assert.equal(byKind(docs, 'PersistentVolumeClaim').length, 0, 'no claim when off');
    assert.ok(argsOf(docs).includes('--archive=off'));
    assert.ok(!argsOf(docs).some((a) => a.startsWith('--archive-')), 'no --archive-* flags when off');
    assert.equal(one(docs, 'Deployment', 'kttl').spec.replicas, 2);
    assert.deepEqual(one(docs, 'Deployment', 'kttl').spec.strategy, ROLLING);
    assert.deepEqual(archiveRules(docs), [], 'no pods/log, no events list when off');
    one(docs, 'PodDisruptionBudget', 'kttl');

    // Both a DSN and a Secret: a clear error.
    await assert.rejects(
      template('kttl', 'kttl', ['archive.dsn=postgres://a@b/c,archive.existingSecret=s']),
      /archive\.dsn and archive\.existingSecret are both set/,
    );
    console.log(
      '# archive renders: SQLite (PVC, 1 replica, Recreate), PostgreSQL (Secret env, 3 replicas), off',
    );
  });

  test('helm template, the archive API: APIService, Service, certificate, RBAC bindings, aggregated ClusterRole', async () => {
    const argsOf = (docs: Obj[]): string[] =>
      one(docs, 'Deployment', 'kttl').spec.template.spec.containers[0].args;
    const READER_RULES = [
      { apiGroups: ['archive.kttl.dev'], resources: ['deletedobjects'], verbs: ['get', 'list'] },
      { apiGroups: ['archive.kttl.dev'], resources: ['deletedobjects/log'], verbs: ['get'] },
    ];
    // The default (SQLite, best-effort): served and registered.
    let docs = await template('kttl', 'kttl');
    const api = one(docs, 'APIService', 'v1alpha1.archive.kttl.dev');
    assert.equal(api.metadata.namespace, undefined, 'cluster-scoped');
    assert.deepEqual(
      { ...api.spec, caBundle: undefined },
      {
        group: 'archive.kttl.dev',
        version: 'v1alpha1',
        service: { name: 'kttl-archive-api', namespace: 'kttl', port: 443 },
        groupPriorityMinimum: 1000,
        versionPriority: 15,
        caBundle: undefined,
      },
    );
    const svc = one(docs, 'Service', 'kttl-archive-api');
    assert.deepEqual(svc.spec.ports, [{ name: 'archive-api', port: 443, targetPort: 8443, protocol: 'TCP' }]);
    assert.deepEqual(svc.spec.selector, {
      'app.kubernetes.io/name': 'kttl',
      'app.kubernetes.io/instance': 'kttl',
      'app.kubernetes.io/component': 'controller',
    });
    // The controller serves it on 8443 with the mounted certificate.
    const dep = one(docs, 'Deployment', 'kttl');
    const pod = dep.spec.template.spec;
    for (const flag of [
      '--archive-api-bind-address=:8443',
      '--archive-api-tls-cert-file=/var/run/kttl/archive-api-tls/tls.crt',
      '--archive-api-tls-private-key-file=/var/run/kttl/archive-api-tls/tls.key',
    ])
      assert.ok(argsOf(docs).includes(flag), flag);
    assert.deepEqual(
      pod.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'archive-api-tls'),
      { name: 'archive-api-tls', mountPath: '/var/run/kttl/archive-api-tls', readOnly: true },
    );
    assert.deepEqual(
      pod.volumes.find((v: { name: string }) => v.name === 'archive-api-tls'),
      { name: 'archive-api-tls', secret: { secretName: 'kttl-webhook-tls' } },
    );
    // The chart's ONE certificate: its CA in both caBundles, naming both Services.
    const secret = one(docs, 'Secret', 'kttl-webhook-tls');
    assert.equal(api.spec.caBundle, secret.data['ca.crt']);
    assert.equal(
      one(docs, 'MutatingWebhookConfiguration').webhooks[0].clientConfig.caBundle,
      secret.data['ca.crt'],
    );
    const ca = new X509Certificate(b64(secret.data['ca.crt']));
    const cert = new X509Certificate(b64(secret.data['tls.crt']));
    assert.ok(ca.ca && cert.verify(ca.publicKey) && cert.checkIssued(ca), 'tls.crt signed by the caBundle');
    assert.match(cert.subjectAltName ?? '', /DNS:kttl-archive-api\.kttl\.svc\b/);
    assert.match(cert.subjectAltName ?? '', /DNS:kttl-webhook\.kttl\.svc\b/);
    assert.ok(cert.checkPrivateKey(createPrivateKey(b64(secret.data['tls.key']))));
    assert.match(
      b64(secret.data.names),
      /(^|,)kttl-archive-api\.kttl\.svc(,|$)/,
      'the names it was made for',
    );
    // The server's bindings: SubjectAccessReviews, and the front proxy's CA in kube-system.
    const delegator = one(docs, 'ClusterRoleBinding', 'kttl-archive-api-auth-delegator');
    assert.deepEqual(delegator.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'system:auth-delegator',
    });
    assert.deepEqual(delegator.subjects, [{ kind: 'ServiceAccount', name: 'kttl', namespace: 'kttl' }]);
    const reader = one(docs, 'RoleBinding', 'kttl-archive-api-auth-reader');
    assert.equal(reader.metadata.namespace, 'kube-system');
    assert.deepEqual(reader.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'extension-apiserver-authentication-reader',
    });
    assert.deepEqual(reader.subjects, [{ kind: 'ServiceAccount', name: 'kttl', namespace: 'kttl' }]);
    // Users: aggregated to view, edit and admin; reading records and their logs, nothing more.
    const view = one(docs, 'ClusterRole', 'kttl-archive-view');
    for (const r of ['view', 'edit', 'admin'])
      assert.equal(view.metadata.labels![`rbac.authorization.k8s.io/aggregate-to-${r}`], 'true', r);
    assert.deepEqual(view.rules, READER_RULES);
    assert.match(
      await helm([
        'template',
        'kttl',
        CHART,
        '--namespace',
        'kttl',
        '--show-only',
        'templates/archive-api.yaml',
      ]),
      /With SQLite the one replica \(the file's only writer\) serves reads/,
    );

    // PostgreSQL: every replica serves reads.
    docs = await template('kttl', 'kttl', ['archive.existingSecret=kttl-archive-dsn']);
    one(docs, 'APIService', 'v1alpha1.archive.kttl.dev');
    assert.equal(one(docs, 'Deployment', 'kttl').spec.replicas, 2);
    assert.match(
      await helm([
        'template',
        'kttl',
        CHART,
        '--namespace',
        'kttl',
        '--show-only',
        'templates/archive-api.yaml',
        '--set',
        'archive.existingSecret=kttl-archive-dsn',
      ]),
      /With PostgreSQL every ready replica serves reads/,
    );

    // The webhook off: the archive API renders the certificate itself.
    docs = await template('kttl', 'kttl', ['webhook.enabled=false']);
    const own = one(docs, 'Secret', 'kttl-archive-api-tls');
    assert.equal(
      one(docs, 'Deployment', 'kttl').spec.template.spec.volumes.find(
        (v: { name: string }) => v.name === 'archive-api-tls',
      ).secret.secretName,
      'kttl-archive-api-tls',
    );
    assert.equal(one(docs, 'APIService').spec.caBundle, own.data['ca.crt']);
    const ownCert = new X509Certificate(b64(own.data['tls.crt']));
    assert.match(ownCert.subjectAltName ?? '', /DNS:kttl-archive-api\.kttl\.svc\b/);
    assert.doesNotMatch(ownCert.subjectAltName ?? '', /kttl-webhook/);
    assert.equal(byKind(docs, 'MutatingWebhookConfiguration').length, 0);

    // cert-manager (webhook.certManager): one Certificate naming both Services, the CA injected into
    // the APIService too, no key material rendered; with the webhook off as well.
    for (const [set, name] of [
      ['webhook.certManager.enabled=true', 'kttl-webhook'],
      ['webhook.certManager.enabled=true,webhook.enabled=false', 'kttl-archive-api'],
    ] as const) {
      docs = await template('kttl', 'kttl', [set]);
      const crt = one(docs, 'Certificate', name);
      assert.equal(crt.spec.secretName, `${name}-tls`);
      assert.ok(crt.spec.dnsNames.includes('kttl-archive-api.kttl.svc'), set);
      one(docs, 'Issuer', 'kttl-selfsigned');
      const injected = one(docs, 'APIService', 'v1alpha1.archive.kttl.dev');
      assert.equal(injected.metadata.annotations!['cert-manager.io/inject-ca-from'], `kttl/${name}`);
      assert.equal(injected.spec.caBundle, undefined);
      assert.equal(byKind(docs, 'Secret').length, 0, `${set}: no key material rendered`);
    }

    // Not served: archive.api.enabled=false (records written, `--archive-api-bind-address=0`), or
    // no archive at all; neither registers an APIService nor grants anything.
    for (const set of ['archive.api.enabled=false', 'archive.mode=off']) {
      docs = await template('kttl', 'kttl', [set]);
      for (const [kind, name] of [
        ['APIService', 'v1alpha1.archive.kttl.dev'],
        ['Service', 'kttl-archive-api'],
        ['ClusterRole', 'kttl-archive-view'],
        ['ClusterRoleBinding', 'kttl-archive-api-auth-delegator'],
        ['RoleBinding', 'kttl-archive-api-auth-reader'],
      ] as const)
        assert.equal(
          docs.filter((d) => d.kind === kind && d.metadata.name === name).length,
          0,
          `${set}: no ${kind}`,
        );
      assert.ok(!argsOf(docs).some((a) => a.startsWith('--archive-api-tls')), set);
    }
    assert.ok(
      argsOf(await template('kttl', 'kttl', ['archive.api.enabled=false'])).includes(
        '--archive-api-bind-address=0',
      ),
    );
    console.log(
      '# archive API renders: APIService + Service + own CA (or cert-manager), bindings, aggregated view role; off with the archive or archive.api.enabled=false',
    );
  });

  test('values.schema.json refuses bad values before anything is rendered', async () => {
    const bad: Array<[string, RegExp]> = [
      ['controller.replicas=two', /\/controller\/replicas.*want integer/],
      ['controller.nativeJobs=sometimes', /\/controller\/nativeJobs/],
      ['controller.replica=2', /additional properties 'replica' not allowed/],
      ['controller.kubeApiQps=0', /\/controller\/kubeApiQps/],
      ['controller.leaderElection.leaseDuration=15 seconds', /\/controller\/leaderElection\/leaseDuration/],
      ['controller.propagationPolicy=Sideways', /\/controller\/propagationPolicy/],
      ['webhook.failurePolicy=Maybe', /\/webhook\/failurePolicy/],
      ['metrics.port=70000', /\/metrics\/port/],
      ['image.pullPolicy=Sometimes', /\/image\/pullPolicy/],
      ['json:controller.kinds=[{"group":"example.com","kind":"Build"}]', /\/controller\/kinds\/0.*resource/],
      ['archive.mode=sometimes', /\/archive\/mode/],
      ['archive.dsn=mysql://db/kttl', /\/archive\/dsn/],
      ['archive.logLines=0', /\/archive\/logLines/],
      ['archive.logBytes=256KB', /\/archive\/logBytes/],
      ['archive.retention=90 days', /\/archive\/retention/],
      ['archive.storage.accessModes={ReadOnlyMany}', /\/archive\/storage\/accessModes/],
      ['clusterName=prod cluster', /\/clusterName/],
    ];
    for (const [set, why] of bad) {
      await assert.rejects(template('kttl', 'kttl', [set]), (err: Error & { stderr?: string }) => {
        const msg = String(err.stderr ?? err.message);
        assert.match(msg, /values don't meet the specifications of the schema/, set);
        assert.match(msg, why, set);
        return true;
      });
    }
    console.log(`# schema: ${bad.length} bad value sets refused with the path of the bad value`);
  });

  test('deploy/manifests and deploy/rbac/rbac.yaml are the chart rendered; kustomize builds them', async () => {
    const { stale, extra } = compare(generateAll(found.helm), REPO_ROOT, true);
    assert.deepEqual([...stale, ...extra], [], 'run `node scripts/gen-deploy.ts`');
    const base = docsOf(await tb.kubectl(['kustomize', join(REPO_ROOT, 'deploy/manifests')]));
    const withWebhook = docsOf(await tb.kubectl(['kustomize', join(REPO_ROOT, 'deploy/manifests/webhook')]));
    const count = (docs: Obj[]) =>
      docs
        .map((d) => d.kind)
        .sort()
        .join(',');
    console.log(`# kustomize: base ${base.length} objects, with webhook ${withWebhook.length}`);
    assert.ok(count(base).includes('CustomResourceDefinition,CustomResourceDefinition'));
    one(base, 'Namespace', 'kttl');
    one(base, 'Deployment', 'kttl');
    assert.equal(byKind(base, 'MutatingWebhookConfiguration').length, 0);
    // Policy authority (test/integration/policy-authority.test.ts): in the base, webhook or not.
    one(base, 'ValidatingAdmissionPolicy', 'kttl-policy-authority');
    one(base, 'ValidatingAdmissionPolicyBinding', 'kttl-policy-authority');
    one(withWebhook, 'MutatingWebhookConfiguration', 'kttl');
    one(withWebhook, 'Certificate', 'kttl-webhook');
    one(withWebhook, 'Deployment', 'kttl-webhook');
  });

  test("the chart's webhook configuration is what `kttl webhook config` prints", {
    skip: webhookCommandBuilt() ? false : '`kttl webhook config` not in this build',
  }, async () => {
    const docs = await template('kttl', 'kttl');
    const mwc = one(docs, 'MutatingWebhookConfiguration');
    const caFile = join(tb.state.dir, `chart-ca-${process.pid}.crt`);
    writeFileSync(caFile, b64(mwc.webhooks[0].clientConfig.caBundle));
    const { stdout } = await run(process.execPath, [
      BUNDLE,
      'webhook',
      'config',
      '--service',
      'kttl-webhook',
      '--ca-bundle-file',
      caFile,
      '-n',
      'kttl',
    ]);
    const cli = parse(stdout) as Obj;
    assert.equal(cli.metadata.name, mwc.metadata.name);
    assert.deepEqual(mwc.webhooks, cli.webhooks);
  });

  test('on the control plane: rendered CRDs, RBAC and webhook configuration apply; kttl runs as the chart ServiceAccount', async () => {
    const ns = await newNamespace(c, 'chart');
    const release = `chart-${process.pid}`;
    const docs = await template(release, ns, [], ['--include-crds']);
    // Everything but the Deployments (no image in the testbed): CRDs, ServiceAccounts, roles and
    // bindings, the certificate Secret, Services, PodDisruptionBudgets, the webhook configuration.
    // Not the APIService: with no kttl behind its Service, the aggregator would report the group
    // unavailable to every other test's discovery (the archive API test below checks its RBAC).
    const objects = docs.filter((d) => d.kind !== 'Deployment' && d.kind !== 'APIService');
    await apply(tb, objects);
    for (const o of objects)
      if (!o.metadata.namespace && o.kind !== 'CustomResourceDefinition')
        clusterObjects.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
    for (const o of objects) {
      const ref = `${o.kind.toLowerCase()}/${o.metadata.name}`;
      const got = await tb.kubectl([
        'get',
        ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : []),
        ref,
        '-o',
        'name',
      ]);
      assert.ok(got.trim().length > 0, `${ref} exists`);
    }
    console.log(
      `# applied ${objects.length} rendered objects: ${[...new Set(objects.map((o) => o.kind))].join(', ')}`,
    );
    const mwc = JSON.parse(
      await tb.kubectl(['get', 'mutatingwebhookconfiguration', `${release}-kttl`, '-o', 'json']),
    ) as Obj;
    assert.equal(mwc.webhooks[0].failurePolicy, 'Ignore');

    // The webhook points at a Service with no pods: failurePolicy Ignore lets creates through.
    const other = await newNamespace(c, 'chart-other');
    const t0 = Date.now();
    await c.batch.createNamespacedJob({
      namespace: other,
      body: jobManifest({ name: 'admitted', namespace: other }),
    });
    const admitMs = Date.now() - t0;
    console.log(
      `# a Job create with the webhook unreachable: admitted in ${admitMs} ms (failurePolicy Ignore)`,
    );
    const job = await c.batch.readNamespacedJob({ name: 'admitted', namespace: other });
    assert.equal(job.spec?.ttlSecondsAfterFinished, undefined, 'admitted unchanged');

    // kttl as a local process with the chart's ServiceAccount token and the chart's arguments.
    const sa = one(docs, 'ServiceAccount', `${release}-kttl`).metadata.name;
    const dep = one(docs, 'Deployment', `${release}-kttl`);
    const chartArgs: string[] = dep.spec.template.spec.containers[0].args;
    const metricsPort = await freePort();
    const healthPort = await freePort();
    const args = [
      ...chartArgs
        .filter(
          (a) =>
            !/^--(metrics-bind-address|health-probe-bind-address|archive-api-tls-cert-file|archive-api-tls-private-key-file)=/.test(
              a,
            ),
        )
        // No archive API here: its certificate is in the pod's secret volume, and no APIService points here.
        .map((a) => (a.startsWith('--archive-api-bind-address=') ? '--archive-api-bind-address=0' : a))
        // The chart's SQLite file is on its claim in the pod; here, a file of this run.
        .map((a) =>
          a.startsWith('--archive-dsn=') ? `--archive-dsn=${join(tb.state.dir, `${release}.db`)}` : a,
        ),
      `--namespaces=${other}`,
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${healthPort}`,
    ];
    const k = spawnKttl(tb, ['--kubeconfig', await tokenKubeconfig(tb, ns, sa), ...args], 'chart-controller');
    children.push(k);
    // /healthz, not /readyz: policies are read cluster-wide, and one another test left naming a kind
    // outside the role keeps that watch unsynced (see the refusal check below).
    await waitFor(
      'kttl healthy',
      async () => {
        if (k.proc.exitCode !== null) throw new Error(`exited ${k.proc.exitCode}: ${k.logFile}`);
        return (await fetch(`http://127.0.0.1:${healthPort}/healthz`).catch(() => undefined))?.status === 200;
      },
      30_000,
    );
    const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    await waitFor('leader', async () => scrape(await metrics(), 'kttl_leader') === 1, 20_000, 200);
    await c.batch.createNamespacedJob({
      namespace: other,
      body: jobManifest({ name: 'ttl-1s', namespace: other, annotations: { 'kttl.dev/ttl': '1s' } }),
    });
    await waitForJobDeletion(c, other, 'ttl-1s', 30_000);
    const m = await metrics();
    // Nothing the chart's role covers is refused: any refusal names a kind outside it.
    const rules = one(docs, 'ClusterRole', `${release}-kttl`).rules as Array<{
      apiGroups: string[];
      resources: string[];
      verbs: string[];
    }>;
    const refused = readFileSync(k.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"forbidden: cannot list/watch'))
      .map((l) => JSON.parse(l) as { resource: string; group: string });
    for (const r of refused)
      assert.ok(
        !rules.some(
          (x) =>
            x.apiGroups.includes(r.group) && x.resources.includes(r.resource) && x.verbs.includes('list'),
        ),
        `${r.resource}.${r.group} is in the chart role but was refused`,
      );
    if (refused.length === 0) assert.equal(scrape(m, 'kttl_api_requests_total', { code: '403' }), 0);
    else
      console.log(
        `# refused only kinds outside the role (other tests' policies): ${refused.map((r) => `${r.resource}.${r.group}`)}`,
      );
    const lease = JSON.parse(
      await tb.kubectl(['-n', ns, 'get', 'lease', `${release}-kttl`, '-o', 'json']),
    ) as Obj;
    assert.ok(lease.spec.holderIdentity, `the Lease ${ns}/${release}-kttl is held`);
    console.log(
      `# kttl as ${ns}/${sa}: leader on its Lease, 1 deletion, ${scrape(m, 'kttl_api_requests_total')} requests, ${scrape(m, 'kttl_api_requests_total', { code: '403' })} refused (403)`,
    );
    await k.stop();
    // Leave no webhook configuration behind for the other test files.
    await tb.kubectl(['delete', 'mutatingwebhookconfiguration', `${release}-kttl`]);
  });

  test("`kttl webhook` with the chart's certificate secret and ServiceAccount stamps a policy TTL", {
    skip: webhookCommandBuilt() ? false : '`kttl webhook` not in this build',
  }, async () => {
    const ns = await newNamespace(c, 'chart-wh');
    const release = `chart-wh-${process.pid}`;
    const port = await freePort();
    // The webhook outside the cluster (a local process): the chart's url mode, with 127.0.0.1 in
    // the serving certificate it generates.
    const docs = await template(release, ns, [
      `webhook.url=https://127.0.0.1:${port}/mutate,webhook.extraIpAddresses={127.0.0.1}`,
    ]);
    const wanted = new Set([
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Secret',
      'MutatingWebhookConfiguration',
    ]);
    const objects = docs.filter((d) => wanted.has(d.kind));
    const mwc = one(objects, 'MutatingWebhookConfiguration');
    assert.equal(mwc.webhooks[0].clientConfig.url, `https://127.0.0.1:${port}/mutate`);
    const secret = one(objects, 'Secret');
    const dir = tb.state.dir;
    const files = { crt: join(dir, `${release}.crt`), key: join(dir, `${release}.key`) };
    writeFileSync(files.crt, b64(secret.data['tls.crt']));
    writeFileSync(files.key, b64(secret.data['tls.key']), { mode: 0o600 });
    const ca = b64(secret.data['ca.crt']);
    // The configuration last: nothing is sent to the webhook before it serves.
    await apply(
      tb,
      objects.filter((o) => o.kind !== 'MutatingWebhookConfiguration'),
    );
    for (const o of objects)
      if (!o.metadata.namespace) clusterObjects.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
    await tb.kubectl(['apply', '-f', join(REPO_ROOT, 'deploy/helm/kttl/crds')]);
    await tb.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/ttlpolicies.kttl.dev']);
    // Objects in the release namespace are never sent to the webhook: use another one.
    const target = await newNamespace(c, 'chart-wh-target');
    await apply(tb, [
      {
        apiVersion: 'kttl.dev/v1alpha1',
        kind: 'TTLPolicy',
        metadata: { name: 'stamp', namespace: target },
        spec: { resources: [{ apiVersion: 'batch/v1', kind: 'Job' }], ttl: '90s' },
      },
    ]);

    const wsa = one(objects, 'ServiceAccount', `${release}-kttl-webhook`).metadata.name;
    const w = spawnKttl(
      tb,
      [
        '--kubeconfig',
        await tokenKubeconfig(tb, ns, wsa),
        'webhook',
        `--bind-address=127.0.0.1:${port}`,
        `--tls-cert-file=${files.crt}`,
        `--tls-private-key-file=${files.key}`,
      ],
      'chart-webhook',
    );
    children.push(w);
    await waitFor(
      'webhook ready (TLS verified with the chart CA)',
      async () => {
        if (w.proc.exitCode !== null) throw new Error(`exited ${w.proc.exitCode}: ${w.logFile}`);
        return (await httpsStatus(`https://127.0.0.1:${port}/readyz`, ca)) === 200;
      },
      30_000,
      200,
    );
    await apply(tb, [mwc]);
    const created = await waitFor(
      'a Job created in the namespace gets the policy TTL from the webhook',
      async () => {
        const name = `stamped-${Date.now()}`;
        const job = await c.batch.createNamespacedJob({
          namespace: target,
          body: jobManifest({ name, namespace: target }),
        });
        return job.spec?.ttlSecondsAfterFinished === 90 ? job : undefined;
      },
      20_000,
      500,
    );
    console.log(
      `# webhook (chart cert, chart ServiceAccount): ${created.metadata?.name} admitted with ttlSecondsAfterFinished 90`,
    );
    await tb.kubectl(['delete', 'mutatingwebhookconfiguration', mwc.metadata.name]);
    await w.stop();
    assert.doesNotMatch(readFileSync(w.logFile, 'utf8'), /forbidden/i, 'the read-only webhook role suffices');
  });
  test('helm install on this control plane, which has no default StorageClass: best-effort falls back to off, no Pending pod; required fails', async () => {
    // The testbed has no StorageClass at all, as a bare cluster may (docs/decisions.md).
    const classes = JSON.parse(await tb.kubectl(['get', 'storageclasses', '-o', 'json'])) as { items: Obj[] };
    const isDefault = (sc: Obj) =>
      sc.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true';
    assert.equal(classes.items.filter(isDefault).length, 0, 'no default StorageClass in the testbed');
    const ns = await newNamespace(c, 'chart-install');
    const release = `inst-${process.pid}`;
    const onCluster = ['--namespace', ns, '--kubeconfig', tb.kubeconfigPath];
    // The webhook off: its configuration would reach the other tests' creates. The archive API off:
    // its APIService (one per cluster) would point the aggregator at pods that serve nothing.
    const common = [
      ...onCluster,
      '--skip-crds',
      '--set',
      'webhook.enabled=false',
      '--set',
      'archive.api.enabled=false',
    ];
    const dryRun = async (sets: string[]) =>
      docsOf(
        await helm([
          'install',
          release,
          CHART,
          ...common,
          '--dry-run=server',
          ...sets.flatMap((x) => ['--set', x]),
        ]),
      );

    // required: the install fails before anything is created, and says why and what to do.
    await assert.rejects(
      helm(['install', release, CHART, ...common, '--set', 'archive.mode=required']),
      (err: Error & { stderr?: string }) => {
        const msg = String(err.stderr ?? err.message);
        assert.match(msg, /archive\.mode=required with SQLite needs a PersistentVolumeClaim/);
        assert.match(msg, /no default StorageClass/);
        assert.match(msg, /archive\.storage\.storageClassName/);
        return true;
      },
    );
    assert.equal(
      (await tb.kubectl(['-n', ns, 'get', 'all,pvc', '-o', 'name'])).trim(),
      '',
      'nothing created',
    );

    // best-effort (the default), installed for real: archive off, NOTES says so, no claim. The
    // Deployment's pods need the deployment and replicaset controllers (not in the testbed's base).
    const controllers = [...tb.state.controllers];
    await tb.restartControllerManager([...controllers, 'deployment-controller', 'replicaset-controller']);
    const notes = await helm(['install', release, CHART, ...common]).catch(async (err: unknown) => {
      await tb.restartControllerManager(controllers);
      throw err;
    });
    try {
      assert.match(notes, /WARNING: the archive is OFF/);
      assert.match(notes, /no default StorageClass/);
      const objs = docsOf(await helm(['get', 'manifest', release, ...onCluster]));
      assert.equal(byKind(objs, 'PersistentVolumeClaim').length, 0);
      const dep = one(objs, 'Deployment', `${release}-kttl`);
      assert.ok(dep.spec.template.spec.containers[0].args.includes('--archive=off'));
      assert.equal(dep.spec.replicas, 2, 'no SQLite: the configured replicas');
      const rules = JSON.stringify(one(objs, 'ClusterRole', `${release}-kttl`).rules);
      assert.ok(!rules.includes('pods/log'), 'no archive permissions when it fell back to off');
      assert.equal((await tb.kubectl(['-n', ns, 'get', 'pvc', '-o', 'name'])).trim(), '');
      // The pods are scheduled (kwok's fake nodes run them): none Pending on an unbound claim.
      const pods = await waitFor(
        'the controller pods scheduled and running',
        async () => {
          const list = JSON.parse(
            await tb.kubectl([
              '-n',
              ns,
              'get',
              'pods',
              '-l',
              `app.kubernetes.io/instance=${release}`,
              '-o',
              'json',
            ]),
          ) as { items: Obj[] };
          return list.items.length === 2 && list.items.every((p) => p.status?.phase === 'Running')
            ? list.items
            : undefined;
        },
        60_000,
        500,
      ).catch(async (err: Error) => {
        const state = await tb
          .kubectl(['-n', ns, 'get', 'deploy,rs,pods,events', '-o', 'wide'])
          .catch(String);
        throw new Error(`${err.message}\n${state}`);
      });
      console.log(
        `# helm install, no default StorageClass: archive off (NOTES warns), ${pods.length} pods Running on ${[...new Set(pods.map((p) => p.spec.nodeName))].join(', ')}, no PVC`,
      );
    } finally {
      await helm(['uninstall', release, ...onCluster, '--wait']).catch(() => undefined);
      await tb.restartControllerManager(controllers);
    }

    // An explicit StorageClass: no lookup needed, the claim names it (server-side dry run).
    let docs = await dryRun(['archive.storage.storageClassName=fast']);
    assert.equal(one(docs, 'PersistentVolumeClaim').spec.storageClassName, 'fast');
    assert.equal(one(docs, 'Deployment').spec.replicas, 1);

    // A default StorageClass appears: the same install now archives to SQLite on a claim.
    const sc = `kttl-test-default-${process.pid}`;
    await apply(tb, [
      {
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: { name: sc, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
        provisioner: 'kttl.test/none',
      },
    ]);
    try {
      docs = await dryRun([]);
      one(docs, 'PersistentVolumeClaim', `${release}-kttl-archive`);
      assert.ok(
        one(docs, 'Deployment').spec.template.spec.containers[0].args.includes('--archive=best-effort'),
      );
      docs = await dryRun(['archive.mode=required']);
      assert.ok(one(docs, 'Deployment').spec.template.spec.containers[0].args.includes('--archive=required'));
    } finally {
      await tb.kubectl(['delete', 'storageclass', sc, '--ignore-not-found']);
    }

    // A claim already there (an upgrade, or a reinstall: helm.sh/resource-policy keep left the
    // release's claim behind) is used again, the default StorageClass gone since.
    await apply(tb, [
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: {
          name: `${release}-kttl-archive`,
          namespace: ns,
          labels: { 'app.kubernetes.io/managed-by': 'Helm' },
          annotations: { 'meta.helm.sh/release-name': release, 'meta.helm.sh/release-namespace': ns },
        },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    ]);
    docs = await dryRun([]);
    one(docs, 'PersistentVolumeClaim', `${release}-kttl-archive`);
    assert.ok(
      one(docs, 'Deployment').spec.template.spec.containers[0].args.includes('--archive=best-effort'),
    );
    console.log(
      '# server-side dry runs: storageClassName set, a default StorageClass, an existing claim → SQLite',
    );
  });
  test('helm upgrade between the archive backends: RollingUpdate ↔ Recreate, replicas 2 ↔ 1 (server-side apply)', async () => {
    const ns = await newNamespace(c, 'chart-upgrade');
    const release = `upg-${process.pid}`;
    const on = ['--namespace', ns, '--kubeconfig', tb.kubeconfigPath];
    const args = [
      ...on,
      '--skip-crds',
      '--set',
      'webhook.enabled=false',
      '--set',
      'archive.api.enabled=false',
    ];
    const live = async () =>
      JSON.parse(await tb.kubectl(['-n', ns, 'get', 'deploy', `${release}-kttl`, '-o', 'json'])).spec as Obj;
    const steps: Array<[string, string, number]> = [
      ['archive.mode=off', 'RollingUpdate', 2],
      // A defaulted rollingUpdate left beside type Recreate would be refused by the API server.
      ['archive.storage.storageClassName=kttl-test-none', 'Recreate', 1],
      ['archive.existingSecret=kttl-archive-dsn', 'RollingUpdate', 2],
      ['archive.storage.storageClassName=kttl-test-none', 'Recreate', 1],
    ];
    try {
      for (const [i, [set, type, replicas]] of steps.entries()) {
        await helm([i === 0 ? 'install' : 'upgrade', release, CHART, ...args, '--set', set]);
        const spec = await live();
        assert.equal(spec.strategy.type, type, set);
        assert.equal(spec.strategy.rollingUpdate === undefined, type === 'Recreate', `${set}: rollingUpdate`);
        assert.equal(spec.replicas, replicas, set);
      }
      console.log(`# helm upgrade: ${steps.map(([, t, r]) => `${t}/${r}`).join(' → ')}`);
    } finally {
      await helm(['uninstall', release, ...on, '--wait']).catch(() => undefined);
      await tb.kubectl(['-n', ns, 'delete', 'pvc', '--all', '--wait=false']).catch(() => undefined);
    }
  });
  test('on the control plane: the aggregated archive role gives view holders get/list deletedobjects in their namespace only', async () => {
    const release = `arbac-${process.pid}`;
    const home = await newNamespace(c, 'chart-arbac');
    const a = await newNamespace(c, 'chart-arbac-a');
    const b = await newNamespace(c, 'chart-arbac-b');
    const user = `archive-viewer-${process.pid}`;
    const docs = await template(release, home);
    const rbac = docs.filter(
      (d) =>
        (d.kind === 'ClusterRole' && d.metadata.name === `${release}-kttl-archive-view`) ||
        (d.kind === 'ClusterRoleBinding' &&
          d.metadata.name === `${release}-kttl-archive-api-auth-delegator`) ||
        (d.kind === 'RoleBinding' && d.metadata.name === `${release}-kttl-archive-api-auth-reader`) ||
        (d.kind === 'ServiceAccount' && d.metadata.name === `${release}-kttl`),
    );
    assert.equal(rbac.length, 4);
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'viewer', namespace: a },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    };
    try {
      await apply(tb, [...rbac, binding]);
      clusterObjects.push(
        `clusterrole/${release}-kttl-archive-view`,
        `clusterrolebinding/${release}-kttl-archive-api-auth-delegator`,
      );
      // kube-controller-manager's aggregation controller copies the rules into view.
      await waitFor(
        'view aggregates the archive role',
        async () =>
          (await tb.kubectl(['get', 'clusterrole', 'view', '-o', 'json'])).includes('deletedobjects/log'),
        30_000,
        200,
      );
      const canI = async (args: string[], as = user): Promise<boolean> => {
        const r = await run(binaries().kubectl, [
          '--kubeconfig',
          tb.kubeconfigPath,
          'auth',
          'can-i',
          ...args,
          '--as',
          as,
        ]).then(
          (x) => x.stdout,
          (err: { stdout?: string }) => err.stdout ?? '',
        );
        return r.trim().split('\n').at(-1) === 'yes';
      };
      // No APIService here, so kubectl cannot map deletedobjects to its group: `can-i --list`
      // (rules as the API server evaluates them for the user) and SubjectAccessReviews instead.
      const rulesIn = async (ns: string): Promise<string[]> =>
        (
          await run(binaries().kubectl, [
            '--kubeconfig',
            tb.kubeconfigPath,
            'auth',
            'can-i',
            '--list',
            '-n',
            ns,
            '--as',
            user,
          ])
        ).stdout
          .split('\n')
          .filter((l) => l.startsWith('deletedobjects'))
          .map((l) => l.replace(/\s+/g, ' ').trim());
      assert.deepEqual(await rulesIn(a), [
        'deletedobjects.archive.kttl.dev [] [] [get list]',
        'deletedobjects.archive.kttl.dev/log [] [] [get]',
      ]);
      assert.deepEqual(await rulesIn(b), [], 'nothing in another namespace');
      const sar = async (attrs: Record<string, string>): Promise<boolean> => {
        const out = await tb.kubectl(
          ['create', '-f', '-', '-o', 'json'],
          JSON.stringify({
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user,
              groups: ['system:authenticated'],
              resourceAttributes: { group: 'archive.kttl.dev', resource: 'deletedobjects', ...attrs },
            },
          }),
        );
        return (JSON.parse(out) as { status: { allowed?: boolean } }).status.allowed === true;
      };
      assert.equal(await sar({ verb: 'list', namespace: a }), true, 'list in the namespace with view');
      assert.equal(
        await sar({ verb: 'get', namespace: a, subresource: 'log' }),
        true,
        'get deletedobjects/log',
      );
      assert.equal(await sar({ verb: 'list', namespace: b }), false, 'not in another namespace');
      assert.equal(await sar({ verb: 'list' }), false, 'not cluster-wide');
      for (const verb of ['create', 'update', 'delete', 'watch'])
        assert.equal(await sar({ verb, namespace: a }), false, `no ${verb}`);
      // The server's own identity: SubjectAccessReviews, and the front proxy's CA.
      const sa = `system:serviceaccount:${home}:${release}-kttl`;
      assert.equal(
        await canI(['create', 'subjectaccessreviews.authorization.k8s.io'], sa),
        true,
        'create SARs',
      );
      assert.equal(
        await canI(['get', 'configmap/extension-apiserver-authentication', '-n', 'kube-system'], sa),
        true,
        'read the authentication ConfigMap',
      );
      console.log(
        `# kubectl auth can-i --as ${user} (view in ${a}): list/get/log deletedobjects there, nothing in ${b} or cluster-wide`,
      );
    } finally {
      await tb
        .kubectl([
          '-n',
          'kube-system',
          'delete',
          'rolebinding',
          `${release}-kttl-archive-api-auth-reader`,
          '--ignore-not-found',
        ])
        .catch(() => undefined);
    }
  });
  test('helm install --dry-run=server: a kept certificate secret is reused only when it names the archive API too', async () => {
    const ns = await newNamespace(c, 'chart-tls');
    const release = `tls-${process.pid}`;
    const secretName = `${release}-kttl-webhook-tls`;
    // The archive on (SQLite: a class named, since this cluster has no default StorageClass).
    const render = async (sets: string[]) =>
      docsOf(
        await helm([
          'install',
          release,
          CHART,
          '--namespace',
          ns,
          '--kubeconfig',
          tb.kubeconfigPath,
          '--skip-crds',
          '--dry-run=server',
          '--set',
          'archive.storage.storageClassName=kttl-test-none',
          ...sets.flatMap((x) => ['--set', x]),
        ]),
      );
    // A secret as an older chart made it: the webhook's names only, no `names` key.
    const first = await render(['archive.mode=off']);
    const older = one(first, 'Secret', secretName);
    delete older.data.names;
    const caOf = (docs: Obj[]) => one(docs, 'Secret', secretName).data['ca.crt'] as string;
    // As an installed release owns it (helm refuses to adopt an object that is not its own).
    const owned = (o: Obj): Obj => ({
      ...o,
      metadata: {
        ...o.metadata,
        annotations: { 'meta.helm.sh/release-name': release, 'meta.helm.sh/release-namespace': ns },
      },
    });
    await apply(tb, [owned(older)]);
    try {
      // The archive still off: the older secret is kept as it is.
      assert.equal(caOf(await render(['archive.mode=off'])), older.data['ca.crt'], 'older secret reused');
      // The archive API added: a new pair that names its Service, in both caBundles.
      const upgraded = await render([]);
      const fresh = one(upgraded, 'Secret', secretName);
      assert.notEqual(fresh.data['ca.crt'], older.data['ca.crt'], 'a new CA for the new names');
      const cert = new X509Certificate(b64(fresh.data['tls.crt']));
      assert.match(cert.subjectAltName ?? '', new RegExp(`DNS:${release}-kttl-archive-api\\.${ns}\\.svc\\b`));
      assert.equal(one(upgraded, 'APIService').spec.caBundle, fresh.data['ca.crt']);
      assert.equal(
        one(upgraded, 'MutatingWebhookConfiguration').webhooks[0].clientConfig.caBundle,
        fresh.data['ca.crt'],
      );
      // That secret, once stored, is reused as it is.
      await apply(tb, [owned(fresh)]);
      const again = await render([]);
      assert.equal(caOf(again), fresh.data['ca.crt'], 'the same names: reused');
      assert.equal(one(again, 'Secret', secretName).data['tls.key'], fresh.data['tls.key']);
      console.log(
        '# certificate secret: an older one kept while the archive API is off, replaced when it is added, then kept',
      );
    } finally {
      await tb
        .kubectl(['-n', ns, 'delete', 'secret', secretName, '--ignore-not-found'])
        .catch(() => undefined);
    }
  });
});
