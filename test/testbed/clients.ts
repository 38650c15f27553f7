// API clients for tests: the admin identity's, a kubeconfig file's, a ServiceAccount token's.
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import type { Testbed } from './testbed.ts';

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

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: number }).code === 404;
}

/** A kubeconfig with the ServiceAccount's token (no client certificate: only the SA's rights). */
export async function tokenKubeconfig(tb: Testbed, ns: string, sa: string): Promise<string> {
  const { path, token } = await tb.serviceAccountKubeconfig(ns, sa);
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
  return path;
}

/** `kubectl apply` of these objects as one List (cluster-admin). */
export async function applyObjects(tb: Testbed, objects: object[]): Promise<void> {
  await tb.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
}
