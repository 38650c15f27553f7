// Finding the cluster as kubectl does: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else
// in-cluster. The environment is passed in by main, never read here.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
// The config module alone: the package index would pull in all 225 generated API modules.
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';

export interface KubeConfigSource {
  kubeconfig?: string;
  context?: string;
  env: Record<string, string | undefined>;
}

export interface LoadedKubeConfig {
  kubeConfig: KubeConfig;
  /** Where it came from, for messages. */
  origin: string;
  /** The namespace of the current context (or the pod's own namespace in-cluster). */
  namespace: string;
  inCluster: boolean;
}

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export function loadKubeConfig(src: KubeConfigSource): LoadedKubeConfig {
  const kc = new KubeConfig();
  let origin: string;
  let inCluster = false;
  if (src.kubeconfig) {
    if (!existsSync(src.kubeconfig)) throw new Error(`kubeconfig ${src.kubeconfig} does not exist`);
    kc.loadFromFile(src.kubeconfig);
    origin = src.kubeconfig;
  } else if (src.env.KUBECONFIG) {
    kc.loadFromDefault();
    origin = `$KUBECONFIG (${src.env.KUBECONFIG})`;
  } else if (existsSync(join(src.env.HOME ?? homedir(), '.kube', 'config'))) {
    kc.loadFromFile(join(src.env.HOME ?? homedir(), '.kube', 'config'));
    origin = '~/.kube/config';
  } else if (src.env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
    origin = 'in-cluster service account';
    inCluster = true;
  } else {
    throw new Error(
      'no cluster configured: pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config, or run in a pod',
    );
  }
  if (src.context) {
    if (!kc.getContextObject(src.context)) throw new Error(`context "${src.context}" not found in ${origin}`);
    kc.setCurrentContext(src.context);
  }
  if (!kc.getCurrentCluster()) throw new Error(`no current cluster in ${origin}`);
  let namespace = kc.getContextObject(kc.getCurrentContext())?.namespace ?? '';
  if (inCluster && existsSync(SA_NAMESPACE_FILE)) {
    try {
      namespace = (readFileSync(SA_NAMESPACE_FILE, 'utf8') || namespace).trim();
    } catch {
      // keep what we have
    }
  }
  return { kubeConfig: kc, origin, namespace: namespace || 'default', inCluster };
}
