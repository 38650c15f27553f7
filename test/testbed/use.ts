// What an integration test file uses: the shared testbed, API clients, a fresh namespace per test.
import { join } from 'node:path';
import { after } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { setUpIdentities } from './identities.ts';
import { waitFor } from './processes.ts';
import { REPO_ROOT, Testbed } from './testbed.ts';

export { sleep, waitFor } from './processes.ts';
export { TEST_LABELS } from './stages.ts';

let shared: Promise<Testbed> | undefined;

/** The run's testbed (started by the global setup); a file run on its own starts and stops its own. */
export function useTestbed(): Promise<Testbed> {
  if (!shared) {
    const stateFile = process.env.KTTL_TESTBED_STATE;
    if (stateFile) {
      shared = Promise.resolve(Testbed.attach(stateFile));
    } else {
      shared = Testbed.start().then(async (tb) => {
        await setUpIdentities(tb);
        return tb;
      });
      after(async () => (await shared)?.stop());
    }
  }
  return shared;
}

/** kttl's policy CRDs, as `crd/<name>` for kubectl. */
export const POLICY_CRDS = ['crd/ttlpolicies.kttl.dev', 'crd/clusterttlpolicies.kttl.dev'];

/**
 * Installs kttl's policy CRDs and waits until they are served. Idempotent (other files of the run
 * may have installed them). `source`: their single source by default, or a rendered file.
 */
export async function installPolicyCrds(tb: Testbed, source = join(REPO_ROOT, 'deploy/crds')): Promise<void> {
  await tb.kubectl(['apply', '-f', source]);
  await tb.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...POLICY_CRDS]);
}

/** The admin identity's client configuration (tests' own clients). */
export function kubeConfigFor(tb: Testbed): k8s.KubeConfig {
  return kubeConfigFromFile(tb.kubeconfigPath);
}

export function kubeConfigFromFile(path: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export interface Clients {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
  objects: k8s.KubernetesObjectApi;
}

export function clientsFor(tb: Testbed): Clients {
  const kc = kubeConfigFor(tb);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
  };
}

let nsCounter = 0;

/** A fresh namespace whose `default` ServiceAccount exists (pods are refused before it does). */
export async function newNamespace(
  c: Clients,
  prefix = 't',
  serviceAccountTimeoutMs = 30_000,
): Promise<string> {
  const name = `${prefix}-${process.pid}-${++nsCounter}-${Math.random().toString(36).slice(2, 7)}`.slice(
    0,
    63,
  );
  await c.core.createNamespace({ body: { metadata: { name, labels: { 'kttl.test/ns': 'true' } } } });
  await waitFor(
    `ServiceAccount default in ${name}`,
    async () => {
      try {
        await c.core.readNamespacedServiceAccount({ name: 'default', namespace: name });
        return true;
      } catch {
        return false;
      }
    },
    serviceAccountTimeoutMs,
  );
  return name;
}

export interface JobOptions {
  name: string;
  namespace: string;
  ttlSecondsAfterFinished?: number;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  /** Labels on the pod template (e.g. TEST_LABELS.fail = 'true'). */
  podLabels?: Record<string, string>;
  backoffLimit?: number;
  finalizers?: string[];
  suspend?: boolean;
}

export function jobManifest(o: JobOptions): k8s.V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: o.name,
      namespace: o.namespace,
      annotations: o.annotations,
      labels: o.labels,
      finalizers: o.finalizers,
    },
    spec: {
      ttlSecondsAfterFinished: o.ttlSecondsAfterFinished,
      backoffLimit: o.backoffLimit ?? 0,
      suspend: o.suspend,
      template: {
        metadata: { labels: o.podLabels },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] },
      },
    },
  };
}

export type JobState = 'Complete' | 'Failed' | 'running' | 'gone';

export async function jobState(c: Clients, namespace: string, name: string): Promise<JobState> {
  try {
    const job = await c.batch.readNamespacedJob({ name, namespace });
    for (const cond of job.status?.conditions ?? []) {
      if ((cond.type === 'Complete' || cond.type === 'Failed') && cond.status === 'True') return cond.type;
    }
    return 'running';
  } catch (err) {
    if (isNotFound(err)) return 'gone';
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: number }).code === 404;
}

export async function waitForJob(
  c: Clients,
  namespace: string,
  name: string,
  want: JobState,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    `job ${namespace}/${name} ${want}`,
    async () => (await jobState(c, namespace, name)) === want,
    timeoutMs,
    100,
  );
}

/** A CRD for a test custom kind: namespaced, status subresource, any shape (operators' CRDs are stricter). */
export function crdManifest(group: string, kind: string, plural: string, version: string): string {
  return JSON.stringify({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    // Groups under k8s.io need this annotation (the Spark operator's own CRDs carry one too).
    metadata: {
      name: `${plural}.${group}`,
      annotations: group.endsWith('k8s.io') ? { 'api-approved.kubernetes.io': 'unapproved, test only' } : {},
    },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  });
}

/** Installs a test CRD (idempotent) and waits until it is served. */
export async function installCrd(
  tb: Testbed,
  group: string,
  kind: string,
  plural: string,
  version: string,
): Promise<void> {
  await tb.kubectl(['apply', '-f', '-'], crdManifest(group, kind, plural, version));
  await tb.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${plural}.${group}`]);
}
