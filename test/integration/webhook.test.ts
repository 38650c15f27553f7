// The admission webhook through the real kube-apiserver of the testbed: the webhook server runs in
// this process on 127.0.0.1 with a serving certificate signed by the testbed CA; a
// MutatingWebhookConfiguration (made by src/webhook/config.ts) points the API server at it over
// TLS. Its namespaceSelector matches only namespaces labelled with this run's id, so no other test
// file's objects ever reach it; it is deleted at the end (and fails open anyway).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { systemClock } from '../../src/clock.ts';
import { KubeHttp } from '../../src/kube/http.ts';
import { PolicyStore } from '../../src/policy/store.ts';
import { webhookConfiguration } from '../../src/webhook/config.ts';
import { startWebhookServer, type WebhookServer } from '../../src/webhook/server.ts';
import { issueServingCert } from '../testbed/certs.ts';
import { type InProcess, runOptions, startInProcess } from '../testbed/controller.ts';
import { controllerKubeconfigPath, webhookKubeconfigPath } from '../testbed/identities.ts';
import { waitForJobDeletion } from '../testbed/jobs.ts';
import { freePort, httpsStatus } from '../testbed/processes.ts';
import { REPO_ROOT, type Testbed } from '../testbed/testbed.ts';
import {
  type Clients,
  clientsFor,
  installPolicyCrds,
  jobManifest,
  jobState,
  kubeConfigFromFile,
  newNamespace,
  sleep,
  TEST_LABELS,
  ttlPolicy,
  useTestbed,
  waitFor,
  waitForJob,
} from '../testbed/use.ts';

const RUN = `wh${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
/** Namespace label the webhook configuration selects on: only this file's namespaces carry it. */
const RUN_LABEL_KEY = 'kttl.test/webhook-run';
const CONFIG_NAME = `kttl-test-${RUN}`;
/** The API server's wait for the webhook; the "slow" case delays beyond it. */
const TIMEOUT_SECONDS = 2;

interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The testbed's kubectl with stdin, returning stdout AND stderr (tb.kubectl gives stdout only). */
function kubectl(tb: Testbed, args: string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      tb.bins.kubectl,
      [`--kubeconfig=${tb.kubeconfigPath}`, ...args],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(stdin ?? '');
  });
}

/** A Job CREATE review as the API server would send it. */
function reviewFor(namespace: string) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'cli-test',
      kind: { group: 'batch', version: 'v1', kind: 'Job' },
      namespace,
      operation: 'CREATE',
      object: jobManifest({ name: 'x', namespace, suspend: true }),
    },
  };
}

function postRaw(port: number, ca: Buffer, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate',
        method: 'POST',
        ca,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const JOBS = { apiVersion: 'batch/v1', kind: 'Job' };
const PODS = { apiVersion: 'v1', kind: 'Pod' };

describe('admission webhook through the real kube-apiserver', () => {
  let tb: Testbed;
  let c: Clients;
  let http: KubeHttp;
  let store: PolicyStore | undefined;
  let server: WebhookServer | undefined;
  let port: number;
  let ca: Buffer;
  let tls: { certFile: string; keyFile: string };
  let delayMs = 0;
  const namespaces: string[] = [];
  let controller: InProcess | undefined;
  const logFile = () => join(tb.state.dir, 'logs', `webhook-${RUN}.log`);
  let logger: pino.Logger;
  /** ns: TTLPolicy short-lived {Job, Pod} ttl 1h. */
  let nsPlain: string;
  /** ns: TTLPolicy short-lived {Job} ttl 1h, enforce: max. */
  let nsMax: string;
  /** ns: TTLPolicy by-outcome {Job} ttlSucceeded 2s, ttlFailed 1h. */
  let nsOutcome: string;
  /** ns: no policy. */
  let nsNone: string;

  const startServer = async () => {
    server = await startWebhookServer({
      bindAddress: `127.0.0.1:${port}`,
      tls,
      policies: store!,
      logger,
      beforeMutate: () => (delayMs > 0 ? sleep(delayMs) : undefined),
    });
  };

  async function namespace(prefix: string): Promise<string> {
    const ns = await newNamespace(c, prefix);
    namespaces.push(ns);
    await tb.kubectl(['label', 'namespace', ns, `${RUN_LABEL_KEY}=${RUN}`]);
    return ns;
  }

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    logger = pino({ level: 'debug' }, pino.destination({ dest: logFile(), sync: true }));
    // The webhook's policy store runs as the chart's webhook ServiceAccount (read-only role).
    http = new KubeHttp({ kubeConfig: kubeConfigFromFile(webhookKubeconfigPath(tb)), clock: systemClock });

    await installPolicyCrds(tb);

    nsPlain = await namespace('wh-plain');
    nsMax = await namespace('wh-max');
    nsOutcome = await namespace('wh-outcome');
    nsNone = await namespace('wh-none');
    const policies = [
      ttlPolicy(nsPlain, 'short-lived', { resources: [JOBS, PODS], ttl: '1h' }),
      ttlPolicy(nsMax, 'short-lived', { resources: [JOBS], ttl: '1h', enforce: 'max' }),
      ttlPolicy(nsOutcome, 'by-outcome', { resources: [JOBS], ttlSucceeded: '2s', ttlFailed: '1h' }),
    ];
    await tb.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policies }),
    );

    store = new PolicyStore({ http, clock: systemClock, logger: logger.child({ component: 'policies' }) });
    store.start();
    await store.synced;
    await waitFor(
      'the webhook sees the policies',
      async () => store!.policies().filter((p) => namespaces.includes(p.namespace ?? '')).length === 3,
      30_000,
      50,
    );

    // A serving certificate for IP:127.0.0.1 signed by the testbed CA (the API server trusts it via caBundle).
    const serving = issueServingCert(
      tb.state.dir,
      tb.state.pki,
      `webhook-${RUN}`,
      'kttl-webhook',
      'IP:127.0.0.1',
    );
    tls = { certFile: serving.cert, keyFile: serving.key };
    ca = readFileSync(tb.state.pki.caCert);
    port = await freePort();
    await startServer();

    const config = webhookConfiguration({
      name: CONFIG_NAME,
      url: `https://127.0.0.1:${port}/mutate`,
      caBundlePem: ca.toString(),
      namespace: 'kttl',
      timeoutSeconds: TIMEOUT_SECONDS,
      builtinKinds: false,
      namespaceMatchLabels: { [RUN_LABEL_KEY]: RUN },
    });
    await tb.kubectl(['apply', '-f', '-'], JSON.stringify(config));
    // The API server loads webhook configurations asynchronously: wait until a dry-run create is patched.
    await waitFor(
      'the API server calls the webhook',
      async () => {
        const r = await kubectl(
          tb,
          ['create', '--dry-run=server', '-o', 'json', '-f', '-'],
          JSON.stringify(jobManifest({ name: 'probe', namespace: nsPlain, suspend: true })),
        );
        return r.code === 0 && JSON.parse(r.stdout).spec.ttlSecondsAfterFinished === 3600;
      },
      30_000,
      200,
    );
  });

  after(async () => {
    // First the registration, so nothing calls a server that is going away.
    if (tb)
      await tb
        .kubectl(['delete', 'mutatingwebhookconfiguration', CONFIG_NAME, '--ignore-not-found'])
        .catch(() => '');
    await controller?.stop();
    await server?.stop();
    await store?.stop();
    for (const ns of namespaces) await c.core.deleteNamespace({ name: ns }).catch(() => undefined);
    await http?.close();
  });

  test("a Job created without a TTL in a namespace under a policy comes back with the policy's", async () => {
    const job = await c.batch.createNamespacedJob({
      namespace: nsPlain,
      body: jobManifest({ name: 'no-ttl', namespace: nsPlain, suspend: true }),
    });
    assert.equal(job.spec?.ttlSecondsAfterFinished, 3600, 'the create answer carries the patch');
    const stored = await c.batch.readNamespacedJob({ name: 'no-ttl', namespace: nsPlain });
    assert.equal(stored.spec?.ttlSecondsAfterFinished, 3600, 'and so does the stored object');
    assert.equal(stored.metadata?.annotations?.['kttl.dev/ttl'], undefined);
  });

  test('a Job with its own TTL is unchanged', async () => {
    const job = await c.batch.createNamespacedJob({
      namespace: nsPlain,
      body: jobManifest({ name: 'own-ttl', namespace: nsPlain, suspend: true, ttlSecondsAfterFinished: 100 }),
    });
    assert.equal(job.spec?.ttlSecondsAfterFinished, 100);
    const annotated = await c.batch.createNamespacedJob({
      namespace: nsPlain,
      body: jobManifest({
        name: 'own-annotation',
        namespace: nsPlain,
        suspend: true,
        annotations: { 'kttl.dev/ttl': '7d' },
      }),
    });
    assert.equal(annotated.spec?.ttlSecondsAfterFinished, undefined);
    assert.deepEqual(annotated.metadata?.annotations, { 'kttl.dev/ttl': '7d' });
  });

  test('a Pod under a policy gets the kttl.dev/ttl annotation; a namespace without a policy gets nothing', async () => {
    const pod = await c.core.createNamespacedPod({
      namespace: nsPlain,
      body: {
        metadata: { name: 'bare', labels: { [TEST_LABELS.run]: 'true' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
      },
    });
    assert.equal(pod.metadata?.annotations?.['kttl.dev/ttl'], '1h');
    const job = await c.batch.createNamespacedJob({
      namespace: nsNone,
      body: jobManifest({ name: 'no-policy', namespace: nsNone, suspend: true }),
    });
    assert.equal(job.spec?.ttlSecondsAfterFinished, undefined);
  });

  test('enforce: max lowers a longer TTL and kubectl shows the admission warning', async () => {
    const r = await kubectl(
      tb,
      ['create', '-o', 'json', '-f', '-'],
      JSON.stringify(
        jobManifest({ name: 'week', namespace: nsMax, suspend: true, ttlSecondsAfterFinished: 604800 }),
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).spec.ttlSecondsAfterFinished, 3600);
    assert.match(
      r.stderr,
      new RegExp(
        `^Warning: kttl: ttlSecondsAfterFinished lowered from 604800 to 3600 by TTLPolicy/${nsMax}/short-lived \\(enforce: max\\)$`,
        'm',
      ),
    );
    // Shorter: unchanged, no warning.
    const short = await kubectl(
      tb,
      ['create', '-o', 'json', '-f', '-'],
      JSON.stringify(
        jobManifest({ name: 'minute', namespace: nsMax, suspend: true, ttlSecondsAfterFinished: 60 }),
      ),
    );
    assert.equal(JSON.parse(short.stdout).spec.ttlSecondsAfterFinished, 60);
    assert.doesNotMatch(short.stderr, /Warning/);
    // An invalid annotation is not touched, and the warning says why the object will be kept.
    const typo = await kubectl(
      tb,
      ['create', '-o', 'json', '-f', '-'],
      JSON.stringify(
        jobManifest({
          name: 'typo',
          namespace: nsMax,
          suspend: true,
          annotations: { 'kttl.dev/ttl': '5 minutes' },
        }),
      ),
    );
    assert.equal(typo.code, 0);
    assert.equal(JSON.parse(typo.stdout).metadata.annotations['kttl.dev/ttl'], '5 minutes');
    assert.match(
      typo.stderr,
      /^Warning: kttl: annotation kttl\.dev\/ttl: invalid duration "5 minutes".*kept until it is fixed$/m,
    );
  });

  test('kubectl create --dry-run=server -o yaml shows the patched TTL and creates nothing', async () => {
    const r = await kubectl(
      tb,
      ['create', '--dry-run=server', '-o', 'yaml', '-f', '-'],
      JSON.stringify(jobManifest({ name: 'dry', namespace: nsPlain, suspend: true })),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}ttlSecondsAfterFinished: 3600$/m);
    assert.equal(await jobState(c, nsPlain, 'dry'), 'gone');
  });

  test('outcome-specific TTLs: the Job gets the annotations, and the controller applies them after the finish', async () => {
    controller = await startInProcess(tb, runOptions([nsOutcome], { discoveryIntervalMs: 1000 }));
    const ok = await c.batch.createNamespacedJob({
      namespace: nsOutcome,
      body: jobManifest({ name: 'succeeds', namespace: nsOutcome }),
    });
    assert.equal(ok.spec?.ttlSecondsAfterFinished, undefined, 'one native field cannot hold two outcomes');
    assert.deepEqual(ok.metadata?.annotations, {
      'kttl.dev/ttl-succeeded': '2s',
      'kttl.dev/ttl-failed': '1h',
    });
    const bad = await c.batch.createNamespacedJob({
      namespace: nsOutcome,
      body: jobManifest({ name: 'fails', namespace: nsOutcome, podLabels: { [TEST_LABELS.fail]: 'true' } }),
    });
    assert.deepEqual(bad.metadata?.annotations, {
      'kttl.dev/ttl-succeeded': '2s',
      'kttl.dev/ttl-failed': '1h',
    });
    // As a status-time webhook would (TTL by outcome, after the finish): the succeeded one goes ~2 s
    // after its finish, the failed one stays (1 h).
    await waitForJob(c, nsOutcome, 'fails', 'Failed', 60_000);
    await waitForJob(c, nsOutcome, 'succeeds', 'Complete', 60_000);
    await waitForJobDeletion(c, nsOutcome, 'succeeds', 30_000);
    await sleep(2500);
    assert.equal(await jobState(c, nsOutcome, 'fails'), 'Failed');
    await controller.stop();
    controller = undefined;
  });

  test('a malformed AdmissionReview sent to the server → 400 with a clear message; it keeps serving', async () => {
    const notJson = await postRaw(port, ca, '{"kind":');
    assert.equal(notJson.status, 400);
    assert.match(JSON.parse(notJson.body).message, /^malformed AdmissionReview: body is not JSON: /);
    const noUid = await postRaw(
      port,
      ca,
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { operation: 'CREATE' },
      }),
    );
    assert.equal(noUid.status, 400);
    assert.equal(
      JSON.parse(noUid.body).message,
      'malformed AdmissionReview: request.uid must be a non-empty string, got none',
    );
    const v1beta1 = await postRaw(
      port,
      ca,
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview' }),
    );
    assert.equal(v1beta1.status, 400);
    assert.match(JSON.parse(v1beta1.body).message, /apiVersion must be "admission\.k8s\.io\/v1"/);
    // Still serving the API server.
    const job = await c.batch.createNamespacedJob({
      namespace: nsPlain,
      body: jobManifest({ name: 'after-garbage', namespace: nsPlain, suspend: true }),
    });
    assert.equal(job.spec?.ttlSecondsAfterFinished, 3600);
  });

  test('the webhook slow (beyond timeoutSeconds): the Job is still created, unchanged (fails open)', async () => {
    delayMs = (TIMEOUT_SECONDS + 2) * 1000;
    try {
      const started = Date.now();
      const job = await c.batch.createNamespacedJob({
        namespace: nsPlain,
        body: jobManifest({ name: 'slow', namespace: nsPlain, suspend: true }),
      });
      const took = Date.now() - started;
      assert.equal(job.spec?.ttlSecondsAfterFinished, undefined, 'admitted without the patch');
      assert.ok(took >= TIMEOUT_SECONDS * 1000 - 200, `the API server waited ${took} ms`);
      assert.ok(took < delayMs + 1000, `the API server gave up before the webhook answered (${took} ms)`);
    } finally {
      delayMs = 0;
    }
    await sleep(TIMEOUT_SECONDS * 1000); // let the delayed answer drain
  });

  test('the webhook down: the Job is still created, unchanged (fails open); back up, patched again', async () => {
    await server!.stop();
    server = undefined;
    const job = await c.batch.createNamespacedJob({
      namespace: nsPlain,
      body: jobManifest({ name: 'down', namespace: nsPlain, suspend: true }),
    });
    assert.equal(job.spec?.ttlSecondsAfterFinished, undefined);
    await startServer();
    const back = await waitFor(
      'the webhook answers again',
      async () => {
        const r = await kubectl(
          tb,
          ['create', '--dry-run=server', '-o', 'json', '-f', '-'],
          JSON.stringify(jobManifest({ name: 'back', namespace: nsPlain, suspend: true })),
        );
        return r.code === 0 && JSON.parse(r.stdout).spec.ttlSecondsAfterFinished === 3600 ? true : undefined;
      },
      30_000,
      200,
    );
    assert.equal(back, true);
  });

  /** Runs `kttl ARGS` (src/main.ts) until its JSON log has a line matching `pred`; returns it and the child. */
  async function spawnKttl(args: string[], pred: (line: Record<string, unknown>) => boolean) {
    const child = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'src/main.ts'),
        '--kubeconfig',
        // Each command with the identity the chart gives it: `webhook` its own, `run` the controller's.
        args[0] === 'webhook' ? webhookKubeconfigPath(tb) : controllerKubeconfigPath(tb),
        ...args,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`no matching log line; stdout ${out} stderr ${err}`)),
        30_000,
      );
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        for (const l of out.split('\n')) {
          try {
            const j = JSON.parse(l) as Record<string, unknown>;
            if (pred(j)) {
              clearTimeout(t);
              resolve(j);
            }
          } catch {
            // partial line
          }
        }
      });
      void exited.then((code) => reject(new Error(`kttl exited ${code}: ${err}${out}`)));
    });
    return { child, line, exited };
  }

  test('kttl webhook (the command): a self-signed pair for development, ready once policies are listed, clean exit', async () => {
    const p = await freePort();
    const { child, line, exited } = await spawnKttl(
      ['webhook', '--bind-address', `127.0.0.1:${p}`],
      (l) => typeof l.certFile === 'string',
    );
    try {
      const selfCa = readFileSync(line.certFile as string);
      await waitFor(
        'kttl webhook /readyz',
        async () => (await httpsStatus(`https://127.0.0.1:${p}/readyz`, selfCa)) === 200,
        30_000,
        100,
      );
      const r = await postRaw(p, selfCa, JSON.stringify(reviewFor(nsPlain)));
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(Buffer.from(JSON.parse(r.body).response.patch, 'base64').toString()), [
        { op: 'add', path: '/spec/ttlSecondsAfterFinished', value: 3600 },
      ]);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  test('kttl run --webhook serves the webhook beside the controller', async () => {
    const p = await freePort();
    const { child, exited } = await spawnKttl(
      [
        'run',
        '--leader-elect=false',
        '--namespaces',
        nsNone,
        '--metrics-bind-address',
        '0',
        '--health-probe-bind-address',
        '0',
        '--webhook',
        '--webhook-bind-address',
        `127.0.0.1:${p}`,
        '--tls-cert-file',
        tls.certFile,
        '--tls-private-key-file',
        tls.keyFile,
      ],
      (l) => l.msg === 'serving the admission webhook',
    );
    try {
      await waitFor(
        'kttl run --webhook /readyz',
        async () => (await httpsStatus(`https://127.0.0.1:${p}/readyz`, ca)) === 200,
        30_000,
        100,
      );
      const r = await postRaw(p, ca, JSON.stringify(reviewFor(nsPlain)));
      assert.equal(r.status, 200);
      assert.ok(JSON.parse(r.body).response.patch);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });
});
