// Many finished Jobs, fast (test/integration/brake.test.ts): each is created suspended (no pod is
// ever made) and its /status is then written as the job controller writes a finished Job's
// (startTime, completionTime, succeeded: 1, SuccessCriteriaMet and Complete with the finish time;
// the same bodies as bench/lib.ts createFinishedJobs). A finished Job is left alone by the job
// controller, so it stays as written. Several requests in flight on one keep-alive client.
import { systemClock } from '../../src/clock.ts';
import { KubeHttp } from '../../src/kube/http.ts';
import { kubeConfigFor } from './clients.ts';
import type { Testbed } from './testbed.ts';

export interface FinishedJobs {
  namespace: string;
  n: number;
  /** Names are `${prefix}${i}`. */
  prefix: string;
  /** The finish time (ms; the API keeps whole seconds). */
  finishedAtMs: number;
  labels?: Record<string, string>;
  annotations?: (i: number) => Record<string, string>;
  /** Requests in flight (default 16). */
  concurrency?: number;
}

function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Creates the Jobs; resolves with the elapsed ms. */
export async function createFinishedJobs(tb: Testbed, o: FinishedJobs): Promise<number> {
  const started = Date.now();
  const http = new KubeHttp({ kubeConfig: kubeConfigFor(tb), clock: systemClock, userAgent: 'kttl-test' });
  const finished = rfc3339(o.finishedAtMs);
  const cond = (type: string, reason: string) => ({
    type,
    status: 'True',
    reason,
    message: 'Reached expected number of succeeded pods',
    lastProbeTime: finished,
    lastTransitionTime: finished,
  });
  const status = {
    status: {
      startTime: rfc3339(o.finishedAtMs - 1000),
      completionTime: finished,
      succeeded: 1,
      conditions: [cond('SuccessCriteriaMet', 'CompletionsReached'), cond('Complete', 'CompletionsReached')],
    },
  };
  const base = `/apis/batch/v1/namespaces/${o.namespace}/jobs`;
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= o.n) return;
      const name = `${o.prefix}${i}`;
      await http.request('create', 'POST', base, {
        body: {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: {
            name,
            namespace: o.namespace,
            ...(o.labels ? { labels: o.labels } : {}),
            ...(o.annotations ? { annotations: o.annotations(i) } : {}),
          },
          spec: {
            suspend: true,
            backoffLimit: 0,
            template: {
              spec: {
                restartPolicy: 'Never',
                containers: [{ name: 'main', image: 'busybox', command: ['true'] }],
              },
            },
          },
        },
      });
      await http.request('patch', 'PATCH', `${base}/${name}/status`, {
        body: status,
        contentType: 'application/merge-patch+json',
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency ?? 16 }, worker));
  } finally {
    await http.close();
  }
  return Date.now() - started;
}
