// Container logs of kwok's fake pods. kwok's kubelet-style server answers /containerLogs from a
// file per container, chosen by a Logs object (one pod, by name) or a ClusterLogs object (pods
// selected by namespace and name); the testbed runs kwok with --enable-crds=Logs,ClusterLogs so a
// test creates those objects at run time. The files are in the CRI log format the kubelet reads,
// so tailLines and limitBytes are applied by the kubelet's own log reader.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Testbed } from './testbed.ts';

/** CRI log lines (`<RFC 3339 nano> stdout F <text>`), one per entry, one microsecond apart. */
export function criLog(
  lines: readonly string[],
  stream: 'stdout' | 'stderr' = 'stdout',
  startMs = 0,
): string {
  const base = startMs || Date.now() - 60_000;
  return lines
    .map((text, i) => {
      const t = new Date(base + Math.floor(i / 1000)).toISOString(); // ms precision
      const nanos = String((i % 1000) * 1000).padStart(6, '0');
      return `${t.replace('Z', nanos)}Z ${stream} F ${text}\n`;
    })
    .join('');
}

let fileCounter = 0;

/** Writes a CRI log file with these lines under the testbed's dir; returns its path. */
export function writeContainerLog(
  tb: Testbed,
  lines: readonly string[],
  stream?: 'stdout' | 'stderr',
): string {
  const dir = join(tb.state.dir, 'pod-logs');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${process.pid}-${++fileCounter}.log`);
  writeFileSync(path, criLog(lines, stream));
  return path;
}

/** Container name -> log file. A key '*' is the file of every container not named. */
export type ContainerLogFiles = Record<string, string>;

function logEntries(files: ContainerLogFiles): object[] {
  return Object.entries(files).map(([container, logsFile]) =>
    container === '*' ? { logsFile } : { containers: [container], logsFile },
  );
}

/**
 * A ClusterLogs object giving the containers of the namespace's pods (all, or those named) these
 * log files. Cluster-scoped: delete it when done (its name is returned).
 */
export async function setNamespaceLogs(
  tb: Testbed,
  namespace: string,
  files: ContainerLogFiles,
  podNames?: readonly string[],
): Promise<string> {
  const name = `ns-${namespace}`.slice(0, 253);
  await tb.kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterLogs',
      metadata: { name },
      spec: {
        selector: { matchNamespaces: [namespace], ...(podNames ? { matchNames: podNames } : {}) },
        logs: logEntries(files),
      },
    }),
  );
  return name;
}

/** A Logs object for one pod (it takes precedence over any ClusterLogs for that pod). */
export async function setPodLogs(
  tb: Testbed,
  namespace: string,
  pod: string,
  files: ContainerLogFiles,
): Promise<void> {
  await tb.kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Logs',
      metadata: { name: pod, namespace },
      spec: { logs: logEntries(files) },
    }),
  );
}

export async function deleteNamespaceLogs(tb: Testbed, name: string): Promise<void> {
  await tb.kubectl(['delete', 'clusterlogs.kwok.x-k8s.io', name, '--ignore-not-found']);
}
