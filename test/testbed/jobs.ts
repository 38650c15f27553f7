// Jobs in tests: their manifest, their state (finished, deleted, gone) and a watch that sees every
// change of a namespace's Jobs.
import type * as k8s from '@kubernetes/client-node';
import { type Clients, isNotFound, kubeConfigFor } from './clients.ts';
import { waitFor } from './processes.ts';
import type { Testbed } from './testbed.ts';

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

export async function createJob(c: Clients, o: JobOptions): Promise<void> {
  await c.batch.createNamespacedJob({ namespace: o.namespace, body: jobManifest(o) });
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

/** The Job's finish time (lastTransitionTime of its first Complete/Failed=True condition), ms. */
export async function jobFinishMs(c: Clients, namespace: string, name: string): Promise<number> {
  const job = await c.batch.readNamespacedJob({ name, namespace });
  for (const cond of job.status?.conditions ?? []) {
    if (
      (cond.type === 'Complete' || cond.type === 'Failed') &&
      cond.status === 'True' &&
      cond.lastTransitionTime
    ) {
      return new Date(cond.lastTransitionTime).getTime();
    }
  }
  throw new Error(`job ${namespace}/${name} is not finished`);
}

/** Polls (every 50 ms) until the Job is marked for deletion or gone; returns the local time seen. */
export async function waitForJobDeletion(
  c: Clients,
  namespace: string,
  name: string,
  timeoutMs = 30_000,
): Promise<number> {
  return waitFor(
    `job ${namespace}/${name} deleted`,
    async () => {
      try {
        const job = await c.batch.readNamespacedJob({ name, namespace });
        return job.metadata?.deletionTimestamp ? Date.now() : undefined;
      } catch (err) {
        if (isNotFound(err)) return Date.now();
        throw err;
      }
    },
    timeoutMs,
    50,
  );
}

export async function jobExists(
  c: Clients,
  namespace: string,
  name: string,
): Promise<{ exists: boolean; deleting: boolean; uid?: string }> {
  try {
    const job = await c.batch.readNamespacedJob({ name, namespace });
    return { exists: true, deleting: !!job.metadata?.deletionTimestamp, uid: job.metadata?.uid };
  } catch (err) {
    if (isNotFound(err)) return { exists: false, deleting: false };
    throw err;
  }
}

/** The Job is gone from the API (404), not merely marked for deletion. */
export async function jobGone(c: Clients, namespace: string, name: string): Promise<boolean> {
  return !(await jobExists(c, namespace, name)).exists;
}

export interface ObservedJob {
  uid?: string;
  /** lastTransitionTime of its first Complete/Failed=True condition, ms. */
  finishMs?: number;
  outcome?: 'Complete' | 'Failed';
  /** Local time the watch first showed it marked for deletion or deleted. */
  deletionSeenMs?: number;
}

/**
 * Watches every Job of a namespace from before the test creates them, so the finish time is known
 * even when a TTL of 0 deletes the Job a few milliseconds after it finished.
 */
export class JobObserver {
  readonly jobs = new Map<string, ObservedJob>();
  #abort: AbortController | undefined;
  #stopped = false;

  readonly kc: import('@kubernetes/client-node').KubeConfig;
  readonly namespace: string;

  private constructor(kc: import('@kubernetes/client-node').KubeConfig, namespace: string) {
    this.kc = kc;
    this.namespace = namespace;
  }

  static async start(tb: Testbed, namespace: string): Promise<JobObserver> {
    const o = new JobObserver(kubeConfigFor(tb), namespace);
    await o.#watch('');
    return o;
  }

  async #watch(resourceVersion: string): Promise<void> {
    const { Watch } = await import('@kubernetes/client-node');
    const w = new Watch(this.kc);
    // Its 30 s inactivity timeout ends a quiet watch; the done callback re-watches from rv.
    let rv = resourceVersion;
    this.#abort = await w.watch(
      `/apis/batch/v1/namespaces/${this.namespace}/jobs`,
      { resourceVersion: rv || undefined, allowWatchBookmarks: true },
      (
        type,
        obj: {
          metadata?: { name?: string; uid?: string; resourceVersion?: string; deletionTimestamp?: string };
          status?: { conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }> };
        },
      ) => {
        const name = obj.metadata?.name;
        rv = obj.metadata?.resourceVersion ?? rv;
        if (!name || type === 'BOOKMARK') return;
        const seen = Date.now();
        let j = this.jobs.get(name);
        if (!j || (obj.metadata?.uid && j.uid !== obj.metadata.uid)) {
          j = { uid: obj.metadata?.uid };
          this.jobs.set(name, j);
        }
        if (j.finishMs === undefined) {
          const cond = obj.status?.conditions?.find(
            (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
          );
          if (cond?.lastTransitionTime) {
            j.finishMs = Date.parse(cond.lastTransitionTime);
            j.outcome = cond.type as 'Complete' | 'Failed';
          }
        }
        if (j.deletionSeenMs === undefined && (type === 'DELETED' || obj.metadata?.deletionTimestamp))
          j.deletionSeenMs = seen;
      },
      () => {
        if (!this.#stopped) void this.#watch(rv);
      },
    );
  }

  async waitFor(name: string, what: 'finished' | 'deleted', timeoutMs = 30_000): Promise<ObservedJob> {
    return waitFor(
      `job ${this.namespace}/${name} ${what}`,
      async () => {
        const j = this.jobs.get(name);
        return j && (what === 'finished' ? j.finishMs !== undefined : j.deletionSeenMs !== undefined)
          ? j
          : undefined;
      },
      timeoutMs,
      20,
    );
  }

  stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
  }
}
