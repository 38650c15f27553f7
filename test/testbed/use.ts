// What an integration test file uses: the shared testbed, a fresh namespace per test, CRDs; and,
// re-exported, the API clients (clients.ts), the Job helpers every file needs (jobs.ts), waiting.
import { join } from 'node:path';
import { after } from 'node:test';
import type { Clients } from './clients.ts';
import { setUpIdentities } from './identities.ts';
import { waitFor } from './processes.ts';
import { REPO_ROOT, Testbed } from './testbed.ts';

export { type Clients, clientsFor, isNotFound, kubeConfigFor, kubeConfigFromFile } from './clients.ts';
export { createJob, type JobOptions, type JobState, jobManifest, jobState, waitForJob } from './jobs.ts';
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

/** A TTLPolicy object (docs/policies.md) to create or apply. */
export function ttlPolicy(namespace: string, name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'kttl.dev/v1alpha1', kind: 'TTLPolicy', metadata: { name, namespace }, spec };
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
