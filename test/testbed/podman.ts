// Runs a rendered Deployment's container with podman the way the kubelet runs it (the parts kttl's
// chart uses): its args and env, the pod's and container's securityContext (user, read-only root,
// capabilities, no privilege escalation), its volumes (emptyDir → tmpfs, secret → its files, claim →
// a directory owned by fsGroup), the ServiceAccount token, CA and namespace at
// /var/run/secrets/kubernetes.io/serviceaccount and KUBERNETES_SERVICE_HOST/PORT — on the host's
// network (the testbed's API server is on loopback). And probes as the kubelet sends them.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Testbed } from './testbed.ts';

const run = promisify(execFile);

/** podman's flags for this machine (runc, cgroupfs: hack/setup's containers.conf drop-in also says so). */
const PODMAN_GLOBAL = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];

export function podmanAvailable(): string | false {
  try {
    execFileSync('podman', [...PODMAN_GLOBAL, 'version', '--format', '{{.Client.Version}}'], {
      stdio: 'ignore',
    });
    execFileSync('buildah', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'podman/buildah not installed (bash hack/setup installs them)';
  }
}

export async function podman(args: string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await run('podman', [...PODMAN_GLOBAL, ...args], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: timeoutMs,
  });
  return stdout;
}

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field
type Obj = Record<string, any>;

const MEMORY_UNITS: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
function bytesOf(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  if (!m) throw new Error(`quantity ${q} not understood`);
  return Number(m[1]) * (m[2] ? MEMORY_UNITS[m[2]]! : 1);
}

export interface PodRun {
  name: string;
  /** The podman command's arguments after `run` (without the container's args). */
  args: string[];
  container: Obj;
  pod: Obj;
  /** containerPort by port name. */
  ports: Map<string, number>;
}

/**
 * podman arguments for the Deployment's first container. `secrets` are the rendered Secrets (by
 * name); a claim becomes a fresh directory under `dir`.
 */
export async function podRun(
  tb: Testbed,
  deployment: Obj,
  image: string,
  opts: { name: string; dir: string; secrets: Map<string, Obj> },
): Promise<PodRun> {
  const pod = deployment.spec.template.spec as Obj;
  const c = pod.containers[0] as Obj;
  const psc = (pod.securityContext ?? {}) as Obj;
  const csc = (c.securityContext ?? {}) as Obj;
  const ns = deployment.metadata.namespace as string;
  // The pod's name is its hostname (kttl's Lease identity), not the host's.
  const args = ['--name', opts.name, '--hostname', opts.name, '--network', 'host', '--pull', 'never'];

  const uid = csc.runAsUser ?? psc.runAsUser;
  const gid = csc.runAsGroup ?? psc.runAsGroup;
  if (uid !== undefined) args.push('--user', gid !== undefined ? `${uid}:${gid}` : String(uid));
  if (psc.fsGroup !== undefined) args.push('--group-add', String(psc.fsGroup));
  if (csc.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  for (const cap of csc.capabilities?.drop ?? []) args.push(`--cap-drop=${cap}`);
  for (const cap of csc.capabilities?.add ?? []) args.push(`--cap-add=${cap}`);
  if (csc.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');

  // The ServiceAccount's token, as the kubelet projects it, and the in-cluster environment.
  const sa = pod.serviceAccountName as string;
  const saDir = join(opts.dir, `${opts.name}-serviceaccount`);
  mkdirSync(saDir, { recursive: true });
  const { token } = await tb.serviceAccountKubeconfig(ns, sa);
  writeFileSync(join(saDir, 'token'), token);
  writeFileSync(join(saDir, 'ca.crt'), readFileSync(tb.state.pki.caCert));
  writeFileSync(join(saDir, 'namespace'), ns);
  args.push('-v', `${saDir}:/var/run/secrets/kubernetes.io/serviceaccount:ro`);
  const server = new URL(tb.state.server);
  args.push(
    '-e',
    `KUBERNETES_SERVICE_HOST=${server.hostname}`,
    '-e',
    `KUBERNETES_SERVICE_PORT=${server.port}`,
  );
  for (const e of (c.env ?? []) as Obj[]) {
    if (e.value === undefined) throw new Error(`env ${e.name}: only literal values are supported here`);
    args.push('-e', `${e.name}=${e.value}`);
  }

  const volumes = new Map<string, Obj>(((pod.volumes ?? []) as Obj[]).map((v) => [v.name as string, v]));
  for (const m of (c.volumeMounts ?? []) as Obj[]) {
    const v = volumes.get(m.name);
    if (!v) throw new Error(`volumeMount ${m.name} has no volume`);
    const ro = m.readOnly ? 'ro' : 'rw';
    if (v.emptyDir) {
      const size = v.emptyDir.sizeLimit ? `,size=${bytesOf(v.emptyDir.sizeLimit)}` : '';
      args.push('--tmpfs', `${m.mountPath}:rw,mode=1777${size}`);
    } else if (v.secret) {
      const s = opts.secrets.get(v.secret.secretName);
      if (!s) throw new Error(`secret ${v.secret.secretName} not rendered`);
      const d = join(opts.dir, `${opts.name}-secret-${v.name}`);
      mkdirSync(d, { recursive: true });
      for (const [k, b64] of Object.entries((s.data ?? {}) as Record<string, string>))
        writeFileSync(join(d, k), Buffer.from(b64, 'base64'), { mode: 0o644 });
      args.push('-v', `${d}:${m.mountPath}:${ro}`);
    } else if (v.persistentVolumeClaim) {
      const d = join(opts.dir, `${opts.name}-claim-${v.name}`);
      mkdirSync(d, { recursive: true });
      // The volume's group is the pod's fsGroup, writable by it (the kubelet's fsGroup ownership).
      chownSync(d, 0, psc.fsGroup ?? 0);
      chmodSync(d, 0o2775);
      args.push('-v', `${d}:${m.mountPath}:${ro}`);
    } else {
      throw new Error(`volume ${v.name}: kind not supported here`);
    }
  }
  const ports = new Map<string, number>(
    ((c.ports ?? []) as Obj[]).map((p) => [p.name as string, p.containerPort]),
  );
  return { name: opts.name, args, container: c, pod, ports };
}

/** Starts it detached; the container's id. */
export async function startPod(p: PodRun, image: string): Promise<string> {
  return (await podman(['run', '-d', ...p.args, image, ...((p.container.args ?? []) as string[])])).trim();
}

/** One probe as the kubelet sends it: httpGet on the host (host network), its timeout, kube-probe UA. */
export function kubeletProbe(p: PodRun, probe: Obj): Promise<number> {
  const g = probe.httpGet as Obj;
  const port = typeof g.port === 'number' ? g.port : p.ports.get(g.port);
  if (!port) throw new Error(`probe port ${g.port} not declared`);
  const https = g.scheme === 'HTTPS';
  const url = `${https ? 'https' : 'http'}://127.0.0.1:${port}${g.path ?? '/'}`;
  const timeout = (probe.timeoutSeconds ?? 1) * 1000;
  return new Promise((resolve) => {
    const headers = { 'User-Agent': 'kube-probe/1.35', Accept: '*/*' };
    // The kubelet does not verify the certificate of an HTTPS probe.
    const req = https
      ? httpsRequest(url, { headers, timeout, rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
      : httpRequest(url, { headers, timeout }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** The kubelet's verdict: 200–399 is success. */
export const probeOk = (status: number) => status >= 200 && status < 400;

export async function containerState(name: string): Promise<{ running: boolean; exitCode: number }> {
  const out = await podman(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', name]);
  const [running, code] = out.trim().split(' ');
  return { running: running === 'true', exitCode: Number(code) };
}

export async function containerLogs(name: string): Promise<string> {
  const { stdout, stderr } = await run('podman', [...PODMAN_GLOBAL, 'logs', name], {
    maxBuffer: 64 * 1024 * 1024,
  }).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
  return stdout + stderr;
}

export async function removeContainer(name: string): Promise<void> {
  await podman(['rm', '-f', '-t', '0', name]).catch(() => undefined);
}
