// The container image (Dockerfile, built by `bash hack/image` with buildah; layers cached, so an
// unchanged tree rebuilds in seconds) run with podman as the chart runs it (test/testbed/podman.ts
// turns the rendered Deployment into podman's flags): the chart's ServiceAccount token mounted where
// the kubelet puts it, in-cluster config, read-only root, uid 65532, no capabilities, the chart's
// args, volumes and probes. The controller becomes leader, deletes an expired Job, answers the
// kubelet's probes and exits 0 on SIGTERM within terminationGracePeriodSeconds, releasing its Lease;
// the webhook image serves the chart's certificate and the real kube-apiserver calls it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { applyObjects as apply } from '../testbed/clients.ts';
import { scrape } from '../testbed/controller.ts';
import { waitForJobDeletion } from '../testbed/jobs.ts';
import {
  containerLogs,
  containerState,
  kubeletProbe,
  podman,
  podmanAvailable,
  podRun,
  probeOk,
  removeContainer,
  startPod,
} from '../testbed/podman.ts';
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

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are read field by field
type Obj = Record<string, any>;

const missing = podmanAvailable();
if (missing) console.log(`# SKIP image.test.ts: ${missing}`);

async function render(release: string, ns: string, sets: string[]): Promise<Obj[]> {
  const args = ['template', release, CHART, '--namespace', ns];
  for (const s of sets) args.push('--set', s);
  const { stdout } = await run(binaries().helm, args, { maxBuffer: 64 * 1024 * 1024 });
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((d): d is Obj => !!d?.kind);
}
const one = (docs: Obj[], kind: string, name: string): Obj => {
  const m = docs.filter((d) => d.kind === kind && d.metadata.name === name);
  assert.equal(m.length, 1, `one ${kind} ${name}`);
  return m[0]!;
};

describe('container image (Dockerfile) run as the chart runs it', { skip: missing }, () => {
  let tb: Testbed;
  let c: Clients;
  let image: string;
  const containers: string[] = [];
  const clusterObjects: string[] = [];

  before(
    async () => {
      tb = await useTestbed();
      c = clientsFor(tb);
      const t0 = Date.now();
      const { stdout, stderr } = await run('bash', [join(REPO_ROOT, 'hack/image')], {
        maxBuffer: 64 * 1024 * 1024,
        timeout: 20 * 60_000,
      });
      image = stdout.trim().split('\n').pop()!;
      const size = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', image])).trim());
      console.log(
        `# bash hack/image: ${image} in ${((Date.now() - t0) / 1000).toFixed(1)} s (cached layers reused when nothing changed), ${(size / 1e6).toFixed(1)} MB uncompressed`,
      );
      assert.ok(size < 150e6, `image ≤ 150 MB (got ${size})\n${stderr}`);
    },
    { timeout: 25 * 60_000 },
  );

  after(async () => {
    for (const n of containers) await removeContainer(n);
    for (const o of clusterObjects)
      await tb?.kubectl(['delete', o, '--ignore-not-found']).catch(() => undefined);
  });

  test('the image has no shell, runs as 65532 with a read-only root, and its Node is 24', async () => {
    const out = await podman(['run', '--rm', '--network', 'none', '--read-only', image, '--version']);
    assert.equal(out.trim(), JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version);
    const cfg = JSON.parse(await podman(['image', 'inspect', image]))[0] as Obj;
    assert.equal(cfg.Config.User, '65532:65532');
    assert.match(cfg.Config.Env.join(' '), /NODE_OPTIONS=--max-semi-space-size=1/);
    await assert.rejects(
      podman(['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', image, '-c', 'true']),
      (err: Error & { stderr?: string }) => {
        assert.match(String(err.stderr ?? err.message), /\/bin\/sh.*(no such file|not found)/i);
        return true;
      },
      'no /bin/sh in the runtime image',
    );
  });

  test('controller: in-cluster config, leader, deletes an expired Job, kubelet probes, SIGTERM exit 0 within the grace period', async () => {
    const ns = await newNamespace(c, 'image');
    const target = await newNamespace(c, 'image-target');
    const release = `img-${process.pid}`;
    const [metricsPort, healthPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    // The chart's ports are values: free ones here (host network, other testbeds on this machine).
    const docs = await render(release, ns, [
      `metrics.port=${metricsPort},health.port=${healthPort},archive.api.port=${apiPort}`,
      `controller.namespaces={${target}},webhook.enabled=false`,
    ]);
    const wanted = new Set([
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'Secret',
    ]);
    const objects = docs.filter((d) => wanted.has(d.kind));
    await apply(tb, objects);
    for (const o of objects)
      if (!o.metadata.namespace) clusterObjects.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
    const dep = one(docs, 'Deployment', `${release}-kttl`);
    const secrets = new Map(
      docs.filter((d) => d.kind === 'Secret').map((s) => [s.metadata.name as string, s]),
    );
    const dir = join(tb.state.dir, `image-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const name = `kttl-it-${process.pid}-controller`;
    containers.push(name);
    const p = await podRun(tb, dep, image, { name, dir, secrets });
    console.log(`# podman run ${p.args.join(' ')} ${image} ${p.container.args.join(' ')}`);
    assert.ok(p.args.includes('--read-only') && p.args.includes('--cap-drop=ALL'));
    assert.ok(p.args.includes('65532:65532'));
    const t0 = Date.now();
    await startPod(p, image);

    const alive = async () => {
      const s = await containerState(name);
      if (!s.running) throw new Error(`container exited ${s.exitCode}:\n${await containerLogs(name)}`);
    };
    await waitFor(
      'the liveness probe passes',
      async () => {
        await alive();
        return probeOk(await kubeletProbe(p, p.container.livenessProbe));
      },
      60_000,
      250,
    );
    const readyMs = await waitFor(
      'the readiness probe passes',
      async () => {
        await alive();
        return probeOk(await kubeletProbe(p, p.container.readinessProbe)) ? Date.now() - t0 : undefined;
      },
      60_000,
      250,
    );
    const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    await waitFor('leader', async () => scrape(await metrics(), 'kttl_leader') === 1, 30_000, 250);
    const lease = JSON.parse(
      await tb.kubectl(['-n', ns, 'get', 'lease', `${release}-kttl`, '-o', 'json']),
    ) as Obj;
    const holder = lease.spec.holderIdentity as string;
    assert.ok(holder?.startsWith(name), `the Lease is held by the container (${holder})`);

    await c.batch.createNamespacedJob({
      namespace: target,
      body: jobManifest({ name: 'expired', namespace: target, annotations: { 'kttl.dev/ttl': '1s' } }),
    });
    await c.batch.createNamespacedJob({
      namespace: target,
      body: jobManifest({ name: 'keeps', namespace: target, annotations: { 'kttl.dev/ttl': '1h' } }),
    });
    await waitForJobDeletion(c, target, 'expired', 60_000);
    const kept = await c.batch.readNamespacedJob({ name: 'keeps', namespace: target });
    assert.ok(kept.metadata?.uid, 'the Job whose TTL has not passed is kept');
    const logs = await containerLogs(name);
    assert.doesNotMatch(logs, /forbidden/i, "the chart's role suffices");
    assert.doesNotMatch(logs, /EROFS|read-only file system/i, 'nothing written outside its volumes');

    // SIGTERM as the kubelet sends it; SIGKILL only after terminationGracePeriodSeconds.
    const grace = p.pod.terminationGracePeriodSeconds as number;
    const s0 = Date.now();
    await podman(['stop', '--time', String(grace), name], (grace + 30) * 1000);
    const stopMs = Date.now() - s0;
    const st = await containerState(name);
    assert.equal(st.exitCode, 0, `exit code 0 on SIGTERM:\n${await containerLogs(name)}`);
    assert.ok(stopMs < grace * 1000, `stopped in ${stopMs} ms, within ${grace} s`);
    const after = JSON.parse(
      await tb.kubectl(['-n', ns, 'get', 'lease', `${release}-kttl`, '-o', 'json']),
    ) as Obj;
    assert.notEqual(after.spec.holderIdentity ?? '', holder, 'the Lease is released on SIGTERM');
    console.log(
      `# controller container: ready in ${readyMs} ms, leader ${holder}, deleted the expired Job, SIGTERM → exit 0 in ${stopMs} ms (grace ${grace} s)`,
    );
  });

  test("webhook: serves the chart's certificate; the real kube-apiserver calls the container", async () => {
    const ns = await newNamespace(c, 'image-wh');
    const target = await newNamespace(c, 'image-wh-target');
    const release = `imgwh-${process.pid}`;
    const port = await freePort();
    const docs = await render(release, ns, [
      `webhook.port=${port},webhook.url=https://127.0.0.1:${port}/mutate,webhook.extraIpAddresses={127.0.0.1}`,
    ]);
    const wanted = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Secret']);
    const objects = docs.filter((d) => wanted.has(d.kind));
    await apply(tb, objects);
    for (const o of objects)
      if (!o.metadata.namespace) clusterObjects.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
    await tb.kubectl(['apply', '-f', join(CHART, 'crds')]);
    await tb.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/ttlpolicies.kttl.dev']);
    await apply(tb, [
      {
        apiVersion: 'kttl.dev/v1alpha1',
        kind: 'TTLPolicy',
        metadata: { name: 'stamp', namespace: target },
        spec: { resources: [{ apiVersion: 'batch/v1', kind: 'Job' }], ttl: '90s' },
      },
    ]);
    const dep = one(docs, 'Deployment', `${release}-kttl-webhook`);
    const secrets = new Map(
      docs.filter((d) => d.kind === 'Secret').map((s) => [s.metadata.name as string, s]),
    );
    const secret = one(docs, 'Secret', `${release}-kttl-webhook-tls`);
    const ca = Buffer.from(secret.data['ca.crt'], 'base64').toString();
    const dir = join(tb.state.dir, `image-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const name = `kttl-it-${process.pid}-webhook`;
    containers.push(name);
    const p = await podRun(tb, dep, image, { name, dir, secrets });
    await startPod(p, image);
    await waitFor(
      'webhook ready (kubelet probe), its certificate verified with the chart CA',
      async () => {
        const s = await containerState(name);
        if (!s.running) throw new Error(`container exited ${s.exitCode}:\n${await containerLogs(name)}`);
        return (
          probeOk(await kubeletProbe(p, p.container.readinessProbe)) &&
          (await httpsStatus(`https://127.0.0.1:${port}/readyz`, ca)) === 200
        );
      },
      60_000,
      250,
    );
    const mwc = docs.find((d) => d.kind === 'MutatingWebhookConfiguration')!;
    assert.equal(mwc.webhooks[0].clientConfig.url, `https://127.0.0.1:${port}/mutate`);
    await apply(tb, [mwc]);
    clusterObjects.push(`mutatingwebhookconfiguration/${mwc.metadata.name}`);
    try {
      const created = await waitFor(
        'a Job created gets the policy TTL from the webhook container',
        async () => {
          const job = await c.batch.createNamespacedJob({
            namespace: target,
            body: jobManifest({ name: `stamped-${Date.now()}`, namespace: target }),
          });
          return job.spec?.ttlSecondsAfterFinished === 90 ? job : undefined;
        },
        30_000,
        500,
      );
      console.log(`# webhook container: ${created.metadata?.name} admitted with ttlSecondsAfterFinished 90`);
    } finally {
      await tb.kubectl(['delete', 'mutatingwebhookconfiguration', mwc.metadata.name, '--ignore-not-found']);
    }
    await sleep(100);
    const grace = p.pod.terminationGracePeriodSeconds ?? 30;
    await podman(['stop', '--time', String(grace), name], (grace + 30) * 1000);
    assert.equal(
      (await containerState(name)).exitCode,
      0,
      `webhook exit 0 on SIGTERM:\n${await containerLogs(name)}`,
    );
    assert.doesNotMatch(await containerLogs(name), /forbidden/i);
  });
});
