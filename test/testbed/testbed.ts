// A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok, built from Go modules by hack/testbed/build, all on 127.0.0.1 with
// free ports and state in a temp dir. Nothing here is a mock.
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { addFrontProxy, issueClientCert, issueServingCert, makePki, type Pki } from './certs.ts';
import { freePort, isAlive, startProcess, stopPid, waitFor } from './processes.ts';
import { stagesYaml } from './stages.ts';

const run = promisify(execFile);
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** kube-controller-manager controllers every test needs; the TTL controller is added on demand. */
export const BASE_CONTROLLERS = [
  'job-controller',
  'garbage-collector-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'namespace-controller',
  // Fills view/edit/admin from ClusterRoles labelled aggregate-to-*, as the chart's archive roles are.
  'clusterrole-aggregation-controller',
] as const;
export const NATIVE_TTL_CONTROLLER = 'ttl-after-finished-controller';

export interface Versions {
  kubernetes: string;
  etcd: string;
  kwok: string;
  helm: string;
}

export function readVersions(): Versions {
  const env = readFileSync(join(REPO_ROOT, 'hack/testbed/versions.env'), 'utf8');
  const get = (k: string) => {
    const m = env.match(new RegExp(`^${k}=(.+)$`, 'm'));
    if (!m?.[1]) throw new Error(`versions.env has no ${k}`);
    return m[1].trim();
  };
  return {
    kubernetes: get('KUBERNETES_VERSION'),
    etcd: get('ETCD_VERSION'),
    kwok: get('KWOK_VERSION'),
    helm: get('HELM_VERSION'),
  };
}

export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kwok: string;
  kwokStages: string;
  /** kwok's Logs and ClusterLogs CRDs (copied from its module by hack/testbed/build). */
  kwokCrds: string;
  helm: string;
}

export function binaries(): Binaries {
  const v = readVersions();
  const cache = process.env.KTTL_TESTBED_CACHE ?? join(REPO_ROOT, '.cache/testbed');
  const k = join(cache, `kubernetes-${v.kubernetes}`);
  return {
    etcd: join(cache, `etcd-${v.etcd}`, 'etcd'),
    kubeApiserver: join(k, 'kube-apiserver'),
    kubeControllerManager: join(k, 'kube-controller-manager'),
    kubeScheduler: join(k, 'kube-scheduler'),
    kubectl: join(k, 'kubectl'),
    kwok: join(cache, `kwok-${v.kwok}`, 'kwok'),
    kwokStages: join(cache, `kwok-${v.kwok}`, 'stages'),
    kwokCrds: join(cache, `kwok-${v.kwok}`, 'crds'),
    helm: join(cache, `helm-${v.helm}`, 'helm'),
  };
}

export interface TestbedOptions {
  /** kube-controller-manager's --controllers; default BASE_CONTROLLERS (native TTL controller off). */
  controllers?: readonly string[];
  /** Start kube-controller-manager at all (benchmarks may want only their own). */
  controllerManager?: boolean;
  /** Client budget of kube-controller-manager (its defaults: 20/30). */
  kcmQps?: number;
  kcmBurst?: number;
  /** Number of kwok fake nodes. */
  nodes?: number;
  /** etcd's --quota-backend-bytes (its default: 2 GiB); the bench raises it for 300,000 Jobs. */
  etcdQuotaBytes?: number;
}

/** Everything needed to reach or stop a running testbed; written to `state.json` in its dir. */
export interface TestbedState {
  dir: string;
  etcdDataDir: string;
  kubeconfig: string;
  server: string;
  pki: Pki;
  ports: {
    etcdClient: number;
    etcdPeer: number;
    apiserver: number;
    kcm: number;
    scheduler: number;
    kwok: number;
  };
  pids: Record<string, number>;
  controllers: string[];
  kcmQps: number;
  kcmBurst: number;
  /** etcd's --quota-backend-bytes, when not its default (kept for a restart of etcd). */
  etcdQuotaBytes?: number;
  /** Token kubeconfigs of kttl's least-privilege ServiceAccounts (test/testbed/identities.ts). */
  identities?: { controller: string; webhook: string };
}

export class Testbed {
  readonly state: TestbedState;
  readonly bins: Binaries;

  private constructor(state: TestbedState) {
    this.state = state;
    this.bins = binaries();
  }

  get kubeconfigPath(): string {
    return this.state.kubeconfig;
  }

  get stateFile(): string {
    return join(this.state.dir, 'state.json');
  }

  /** Re-attaches to a testbed started by another process (the test runner's global setup). */
  static attach(stateFile: string): Testbed {
    return new Testbed(JSON.parse(readFileSync(stateFile, 'utf8')) as TestbedState);
  }

  static async start(opts: TestbedOptions = {}): Promise<Testbed> {
    const bins = binaries();
    for (const [name, path] of Object.entries(bins)) {
      if (name !== 'helm' && !existsSync(path)) {
        throw new Error(`testbed binary ${name} missing at ${path}: run hack/testbed/build first`);
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'kttl-testbed-'));
    mkdirSync(join(dir, 'logs'));
    const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    const etcdDataDir = mkdtempSync(join(shm, 'kttl-etcd-'));
    const pki = makePki(dir);
    const ports = {
      etcdClient: await freePort(),
      etcdPeer: await freePort(),
      apiserver: await freePort(),
      kcm: await freePort(),
      scheduler: await freePort(),
      kwok: await freePort(),
    };
    const server = `https://127.0.0.1:${ports.apiserver}`;
    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(server, pki.caCert, pki.adminCert, pki.adminKey, 'admin'));
    const tb = new Testbed({
      dir,
      etcdDataDir,
      kubeconfig,
      server,
      pki,
      ports,
      pids: {},
      controllers: [...(opts.controllers ?? BASE_CONTROLLERS)],
      kcmQps: opts.kcmQps ?? 20,
      kcmBurst: opts.kcmBurst ?? 30,
      ...(opts.etcdQuotaBytes ? { etcdQuotaBytes: opts.etcdQuotaBytes } : {}),
    });
    // The aggregation layer's certificates are made while etcd starts (off the critical path).
    const frontProxy = addFrontProxy(dir, pki);
    frontProxy.catch(() => {});
    try {
      await tb.startEtcd();
      await frontProxy;
      await tb.startApiserver();
      // kwok watches its Logs/ClusterLogs CRDs from its start: install them (and make kwok's
      // serving cert) while the other components come up, off the critical path.
      const crds = tb.installKwokCrds().then(() => tb.kwokServingCert());
      crds.catch(() => {});
      if (opts.controllerManager !== false) await tb.startControllerManager();
      await tb.startScheduler();
      await crds;
      await tb.startKwok();
      for (let i = 0; i < (opts.nodes ?? 1); i++) await tb.createFakeNode(`kwok-node-${i}`);
      tb.save();
    } catch (err) {
      // stop() removes the logs: keep the end of the failing component's in the error.
      if (err instanceof Error) err.message += tb.logTails(err.message);
      await tb.stop();
      throw err;
    }
    return tb;
  }

  save(): void {
    writeFileSync(this.stateFile, JSON.stringify(this.state, null, 2));
  }

  /** The last lines of the logs of the components an error message names. */
  private logTails(message: string, lines = 20): string {
    let out = '';
    for (const name of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok']) {
      const file = this.log(name);
      if (!message.includes(name.replace(/^kube-/, '')) || !existsSync(file)) continue;
      const tail = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      out += `\n--- last ${lines} lines of ${name}.log ---\n${tail}`;
    }
    return out;
  }

  private log(name: string): string {
    return join(this.state.dir, 'logs', `${name}.log`);
  }

  async startEtcd(): Promise<void> {
    const { ports, etcdDataDir } = this.state;
    const client = `http://127.0.0.1:${ports.etcdClient}`;
    const peer = `http://127.0.0.1:${ports.etcdPeer}`;
    const p = startProcess(
      'etcd',
      this.bins.etcd,
      [
        '--name=default',
        `--data-dir=${etcdDataDir}`,
        '--unsafe-no-fsync',
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=default=${peer}`,
        '--log-level=warn',
        ...(this.state.etcdQuotaBytes ? [`--quota-backend-bytes=${this.state.etcdQuotaBytes}`] : []),
      ],
      this.log('etcd'),
    );
    this.state.pids.etcd = p.pid;
    await waitFor(
      'etcd /health',
      async () => (await httpGet(`${client}/health`)).includes('"health":"true"'),
      30_000,
    );
  }

  async startApiserver(): Promise<void> {
    const { ports, pki } = this.state;
    const p = startProcess(
      'kube-apiserver',
      this.bins.kubeApiserver,
      [
        `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
        `--secure-port=${ports.apiserver}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--tls-cert-file=${pki.serverCert}`,
        `--tls-private-key-file=${pki.serverKey}`,
        `--client-ca-file=${pki.caCert}`,
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        '--service-cluster-ip-range=10.96.0.0/16',
        '--authorization-mode=Node,RBAC',
        '--endpoint-reconciler-type=none',
        // pods/log and exec go to kwok's kubelet-style server on the fake nodes' InternalIP
        // (127.0.0.1; their Hostname does not resolve), whose serving cert our CA signed.
        `--kubelet-certificate-authority=${pki.caCert}`,
        '--kubelet-preferred-address-types=InternalIP',
        // The aggregation layer (test/testbed/aggregated.ts registers servers behind it).
        `--requestheader-client-ca-file=${pki.frontProxyCaCert}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${pki.proxyClientCert}`,
        `--proxy-client-key-file=${pki.proxyClientKey}`,
        '--enable-aggregator-routing=true',
        '--v=0',
      ],
      this.log('kube-apiserver'),
    );
    this.state.pids.apiserver = p.pid;
    await waitFor('kube-apiserver /readyz', async () => (await this.rawGet('/readyz')) === 'ok', 90_000, 250);
    this.save();
  }

  async stopApiserver(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.state.pids.apiserver) await stopPid(this.state.pids.apiserver, 10_000, signal);
    delete this.state.pids.apiserver;
    this.save();
  }

  private componentKubeconfig(name: string): string {
    const base = join(this.state.dir, `${name}.kubeconfig`);
    if (!existsSync(base))
      writeFileSync(
        base,
        kubeconfigYaml(
          this.state.server,
          this.state.pki.caCert,
          this.state.pki.adminCert,
          this.state.pki.adminKey,
          name,
        ),
      );
    return base;
  }

  async startControllerManager(
    controllers?: readonly string[],
    budget?: { qps: number; burst: number },
  ): Promise<void> {
    if (controllers) this.state.controllers = [...controllers];
    if (budget) {
      this.state.kcmQps = budget.qps;
      this.state.kcmBurst = budget.burst;
    }
    const kc = this.componentKubeconfig('kube-controller-manager');
    const { ports, pki } = this.state;
    const p = startProcess(
      'kube-controller-manager',
      this.bins.kubeControllerManager,
      [
        `--kubeconfig=${kc}`,
        `--authentication-kubeconfig=${kc}`,
        `--authorization-kubeconfig=${kc}`,
        `--controllers=${this.state.controllers.join(',')}`,
        '--leader-elect=false',
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.caCert}`,
        `--secure-port=${ports.kcm}`,
        '--bind-address=127.0.0.1',
        '--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics',
        `--kube-api-qps=${this.state.kcmQps}`,
        `--kube-api-burst=${this.state.kcmBurst}`,
        '--concurrent-ttl-after-finished-syncs=5',
      ],
      this.log('kube-controller-manager'),
    );
    this.state.pids.kcm = p.pid;
    await waitFor(
      'kube-controller-manager /healthz',
      async () => (await httpsGetInsecure(`https://127.0.0.1:${ports.kcm}/healthz`)) === 'ok',
      60_000,
      250,
    );
    this.save();
  }

  async stopControllerManager(): Promise<void> {
    if (this.state.pids.kcm) await stopPid(this.state.pids.kcm);
    delete this.state.pids.kcm;
    this.save();
  }

  /** Restarts kube-controller-manager with another controller list (e.g. with the native TTL controller). */
  async restartControllerManager(
    controllers: readonly string[],
    budget?: { qps: number; burst: number },
  ): Promise<void> {
    await this.stopControllerManager();
    await this.startControllerManager(controllers, budget);
  }

  async startScheduler(): Promise<void> {
    const kc = this.componentKubeconfig('kube-scheduler');
    const p = startProcess(
      'kube-scheduler',
      this.bins.kubeScheduler,
      [
        `--kubeconfig=${kc}`,
        `--authentication-kubeconfig=${kc}`,
        `--authorization-kubeconfig=${kc}`,
        '--leader-elect=false',
        `--secure-port=${this.state.ports.scheduler}`,
        '--bind-address=127.0.0.1',
      ],
      this.log('kube-scheduler'),
    );
    this.state.pids.scheduler = p.pid;
    await waitFor(
      'kube-scheduler /healthz',
      async () =>
        (await httpsGetInsecure(`https://127.0.0.1:${this.state.ports.scheduler}/healthz`)) === 'ok',
      60_000,
      250,
    );
  }

  /** Creates kwok's Logs and ClusterLogs CRDs and waits until they are served. */
  async installKwokCrds(): Promise<void> {
    // File by file: kubectl does not read a directory given as a symlink.
    const files = readdirSync(this.bins.kwokCrds).filter((f) => f.endsWith('.yaml'));
    await this.kubectl(['apply', ...files.flatMap((f) => ['-f', join(this.bins.kwokCrds, f)])]);
    await this.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/logs.kwok.x-k8s.io',
      'crd/clusterlogs.kwok.x-k8s.io',
    ]);
  }

  /** kwok's serving cert for 127.0.0.1, signed by the testbed CA (made once per testbed). */
  kwokServingCert(): { cert: string; key: string } {
    const cert = join(this.state.dir, 'kwok.crt');
    const key = join(this.state.dir, 'kwok.key');
    if (existsSync(cert) && existsSync(key)) return { cert, key };
    return issueServingCert(this.state.dir, this.state.pki, 'kwok', 'kwok', 'IP:127.0.0.1');
  }

  /**
   * kwok also serves the kubelet API of its fake nodes (/containerLogs, /exec…) on its port, over
   * TLS with a cert our CA signed; the nodes advertise it (InternalIP 127.0.0.1, kubeletEndpoint
   * port), so `kubectl logs` goes through the API server's real pods/log path. Which file a
   * container's log comes from: a Logs/ClusterLogs object (test/testbed/pod-logs.ts).
   */
  async startKwok(): Promise<void> {
    const config = join(this.state.dir, 'kwok-stages.yaml');
    writeFileSync(config, stagesYaml(this.bins.kwokStages));
    const tls = this.kwokServingCert();
    for (let attempt = 1; ; attempt++) {
      // Picked right before kwok binds it (not with the other ports seconds earlier): other
      // testbeds on this machine pick free ports too. Lost anyway: pick again.
      const port = await freePort();
      this.state.ports.kwok = port;
      const p = startProcess(
        'kwok',
        this.bins.kwok,
        [
          `--kubeconfig=${this.componentKubeconfig('kwok')}`,
          `--config=${config}`,
          '--manage-all-nodes=false',
          '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
          '--node-ip=127.0.0.1',
          `--node-port=${port}`,
          '--cidr=10.244.0.0/16',
          `--server-address=127.0.0.1:${port}`,
          `--tls-cert-file=${tls.cert}`,
          `--tls-private-key-file=${tls.key}`,
          '--enable-crds=Logs,ClusterLogs',
        ],
        this.log('kwok'),
      );
      this.state.pids.kwok = p.pid;
      const up = await waitFor(
        'kwok /healthz',
        async () => {
          if (!isAlive(p.pid)) return 'exited';
          return (await httpGet(`http://127.0.0.1:${port}/healthz`)) === 'ok' && 'ok';
        },
        30_000,
        250,
      );
      if (up === 'ok') return;
      delete this.state.pids.kwok;
      const lost = readFileSync(this.log('kwok'), 'utf8').includes(`${port}: bind: address already in use`);
      if (!lost || attempt === 3) throw new Error(`kwok exited at start (see its log)`);
    }
  }

  async createFakeNode(name: string): Promise<void> {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: { 'kwok.x-k8s.io/node': 'fake' },
        labels: { type: 'kwok', 'kubernetes.io/hostname': name },
      },
      spec: {},
    };
    await this.kubectl(['apply', '-f', '-'], JSON.stringify(node));
    // The NodeRestriction/TaintNodesByCondition admission adds not-ready:NoSchedule on create; the
    // node-lifecycle controller (not run here: kwok nodes send no heartbeats) would remove it.
    await this.kubectl(['taint', 'nodes', name, 'node.kubernetes.io/not-ready:NoSchedule-']).catch(() => '');
    await waitFor(
      `node ${name} Ready`,
      async () => {
        const out = await this.kubectl([
          'get',
          'node',
          name,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ]);
        return out.trim() === 'True';
      },
      30_000,
      250,
    );
  }

  /** Runs the testbed's own kubectl against it. */
  async kubectl(args: string[], stdin?: string): Promise<string> {
    const child = run(this.bins.kubectl, [`--kubeconfig=${this.state.kubeconfig}`, ...args], {
      maxBuffer: 64 * 1024 * 1024,
    });
    if (stdin !== undefined) {
      child.child.stdin?.end(stdin);
    }
    const { stdout } = await child;
    return stdout;
  }

  /** GET on the apiserver with the admin identity; resolves to the body, '' when unreachable. */
  async rawGet(path: string): Promise<string> {
    const { pki, ports } = this.state;
    return await new Promise((resolvePromise) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: ports.apiserver,
          path,
          method: 'GET',
          ca: readFileSync(pki.caCert),
          cert: readFileSync(pki.adminCert),
          key: readFileSync(pki.adminKey),
          timeout: 5000,
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
          });
          res.on('end', () => resolvePromise(body));
        },
      );
      req.on('error', () => resolvePromise(''));
      req.on('timeout', () => req.destroy());
      req.end();
    });
  }

  /** A client certificate for a user/group identity, for RBAC tests. Returns a kubeconfig path. */
  userKubeconfig(user: string, groups: string[] = []): string {
    const subject = `${groups.map((g) => `/O=${g}`).join('')}/CN=${user}`;
    const base = `user-${user.replace(/[^a-z0-9-]/gi, '_')}`;
    const { cert, key } = issueClientCert(this.state.dir, this.state.pki, base, subject);
    const path = join(this.state.dir, `${base}.kubeconfig`);
    writeFileSync(path, kubeconfigYaml(this.state.server, this.state.pki.caCert, cert, key, user));
    return path;
  }

  /** A kubeconfig holding a ServiceAccount's token (no client certificate: only the SA's rights). */
  async serviceAccountKubeconfig(
    namespace: string,
    serviceAccount: string,
    duration = '1h',
  ): Promise<{ path: string; token: string }> {
    const token = (
      await this.kubectl(['create', 'token', serviceAccount, '-n', namespace, '--duration', duration])
    ).trim();
    const ca = readFileSync(this.state.pki.caCert).toString('base64');
    const path = join(this.state.dir, `kubeconfig-${namespace}-${serviceAccount}`);
    const yaml = `apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster: {server: "${this.state.server}", certificate-authority-data: ${ca}}
users:
- name: ${serviceAccount}
  user: {token: ${token}}
contexts:
- name: sa
  context: {cluster: testbed, user: ${serviceAccount}, namespace: ${namespace}}
current-context: sa
`;
    writeFileSync(path, yaml, { mode: 0o600 });
    return { path, token };
  }

  /** Stops every process we started (by recorded pid) and removes the state. Safe to call twice. */
  async stop(): Promise<void> {
    const order = ['kwok', 'scheduler', 'kcm', 'apiserver', 'etcd'];
    for (const name of order) {
      const pid = this.state.pids[name];
      if (pid) await stopPid(pid);
      delete this.state.pids[name];
    }
    for (const pid of Object.values(this.state.pids)) await stopPid(pid);
    this.state.pids = {};
    rmSync(this.state.etcdDataDir, { recursive: true, force: true });
    if (!process.env.KTTL_TESTBED_KEEP_LOGS) rmSync(this.state.dir, { recursive: true, force: true });
  }

  alive(): Record<string, boolean> {
    return Object.fromEntries(Object.entries(this.state.pids).map(([k, pid]) => [k, isAlive(pid)]));
  }
}

export function kubeconfigYaml(
  server: string,
  caFile: string,
  certFile: string,
  keyFile: string,
  user: string,
): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(caFile)}
users:
- name: ${user}
  user:
    client-certificate-data: ${b64(certFile)}
    client-key-data: ${b64(keyFile)}
contexts:
- name: testbed
  context: {cluster: testbed, user: ${user}}
current-context: testbed
`;
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolvePromise) => {
    const req = httpRequest(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolvePromise(body));
    });
    req.on('error', () => resolvePromise(''));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

// The components' own serving certs are self-signed; /healthz is all we read from them.
function httpsGetInsecure(url: string): Promise<string> {
  return new Promise((resolvePromise) => {
    const req = request(url, { timeout: 3000, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolvePromise(body));
    });
    req.on('error', () => resolvePromise(''));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
