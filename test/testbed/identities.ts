// The least-privilege identities kttl runs with in the integration tests (docs/operations.md "Permissions"): every
// controller and webhook the tests start authenticates as the chart's ServiceAccount, bound to
// exactly the chart's rules — deploy/rbac/rbac.yaml (controller: ClusterRole + the lease Role in
// namespace kttl) and the webhook's ServiceAccount/ClusterRole from deploy/manifests/webhook. Both
// files are rendered from the chart and checked up to date by test/unit/deploy/generated.test.ts.
// The tests' own clients (creating Jobs, reading results) stay cluster-admin.
//
// KTTL_TEST_IDENTITY=admin runs kttl as cluster-admin instead, to tell an RBAC failure from another.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, type Testbed } from './testbed.ts';

/** The namespace and ServiceAccounts the chart renders (release and namespace `kttl`). */
export const KTTL_NAMESPACE = 'kttl';
export const CONTROLLER_SA = 'kttl';
export const WEBHOOK_SA = 'kttl-webhook';
/** The Lease the chart's lease Role allows (`--leader-elect-resource-name`, default kttl). */
export const LEASE_NAME = 'kttl';

/**
 * Custom kinds the tests add the way an operator does, with the chart value `controller.kinds`
 * ({group, kind, resource} → get/list/watch/delete on the resource, templates/rbac.yaml). Granted
 * by a ClusterRole of their own bound to the controller's ServiceAccount; the chart's role is
 * applied untouched.
 */
export const TEST_KINDS = [{ group: 'example.com', kind: 'Build', resource: 'builds' }] as const;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** The objects of a multi-document YAML file (empty documents skipped). */
export function loadDocs(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => !!d?.kind);
}

/** The webhook's identity from the rendered webhook manifests (not its Deployment, Service, …). */
function webhookIdentity(): K8sObject[] {
  const wanted = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']);
  const docs = loadDocs(join(REPO_ROOT, 'deploy/manifests/webhook/webhook.yaml')).filter(
    (d) => wanted.has(d.kind) && d.metadata.name === WEBHOOK_SA,
  );
  if (docs.length !== 3) throw new Error(`webhook.yaml: expected the webhook's SA, role and binding`);
  return docs;
}

function testKindsRole(): K8sObject[] {
  const name = 'kttl-test-kinds';
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name },
      rules: TEST_KINDS.map((k) => ({
        apiGroups: [k.group],
        resources: [k.resource],
        verbs: ['get', 'list', 'watch', 'delete'],
      })),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name: CONTROLLER_SA, namespace: KTTL_NAMESPACE }],
    },
  ];
}

/** Creates the identities once per testbed and records their token kubeconfigs in its state. */
export async function setUpIdentities(tb: Testbed): Promise<void> {
  if (tb.state.identities) return;
  const objects = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: KTTL_NAMESPACE } },
    ...loadDocs(join(REPO_ROOT, 'deploy/rbac/rbac.yaml')),
    ...webhookIdentity(),
    ...testKindsRole(),
  ];
  await tb.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
  // Long enough for any run of the suite; tokens stay valid across API server restarts (same key).
  const controller = await tb.serviceAccountKubeconfig(KTTL_NAMESPACE, CONTROLLER_SA, '6h');
  const webhook = await tb.serviceAccountKubeconfig(KTTL_NAMESPACE, WEBHOOK_SA, '6h');
  tb.state.identities = { controller: controller.path, webhook: webhook.path };
  tb.save();
}

function identityPath(tb: Testbed, which: 'controller' | 'webhook'): string {
  if (process.env.KTTL_TEST_IDENTITY === 'admin') return tb.kubeconfigPath;
  const path = tb.state.identities?.[which];
  if (!path) throw new Error('testbed has no kttl identities: setUpIdentities(tb) did not run');
  return path;
}

/** The kubeconfig kttl's controller (`kttl run`, its reflectors and policy store) uses in tests. */
export function controllerKubeconfigPath(tb: Testbed): string {
  return identityPath(tb, 'controller');
}

/** The kubeconfig `kttl webhook` (and its policy store) uses in tests. */
export function webhookKubeconfigPath(tb: Testbed): string {
  return identityPath(tb, 'webhook');
}

/**
 * The container args of the chart's Deployment (deploy/manifests/base/deployment.yaml, rendered
 * from the chart) for a local `kttl run`: its Lease in `leaseNamespace`, its archive's SQLite file
 * (on the chart's claim in a pod) at `dbFile`; the bind addresses are left to the caller.
 */
export function chartRunArgs(leaseNamespace: string, dbFile: string): string[] {
  const dep = loadDocs(join(REPO_ROOT, 'deploy/manifests/base/deployment.yaml')).find(
    (d) => d.kind === 'Deployment',
  );
  const spec = dep?.spec as { template: { spec: { containers: Array<{ args: string[] }> } } } | undefined;
  const args = spec?.template.spec.containers[0]?.args;
  if (args?.[0] !== 'run')
    throw new Error('deploy/manifests/base/deployment.yaml: the chart runs `kttl run`');
  return args
    .slice(1)
    .filter((a) => !/^--(metrics-bind-address|health-probe-bind-address)=/.test(a))
    .map((a) =>
      a.startsWith('--leader-elect-resource-namespace=')
        ? `--leader-elect-resource-namespace=${leaseNamespace}`
        : a,
    )
    .map((a) => (a.startsWith('--archive-dsn=') ? `--archive-dsn=${dbFile}` : a));
}
