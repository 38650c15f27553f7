// Shared machinery of the benchmarks (bench/run.ts): a real control plane (test/testbed) with the
// job controller off, finished Jobs written fast through the status subresource, a watch that
// records when each Job is marked for deletion, per-identity request counts from the apiserver,
// and RSS/CPU of the controller process under test (the native TTL controller or kttl).
//
// Attribution of API requests: the controller under test runs as its own user (`bench-controller`,
// bound to cluster-admin), and the bench installs API Priority and Fairness FlowSchemas that match
// only that user, one per verb on batch/jobs (plus events and "anything else"). The apiserver's
// `apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}` then counts exactly the
// requests of the controller, by verb, server-side; `apiserver_request_total{resource="jobs"}` is
// kept too (all clients: it also holds the garbage collector's requests finishing Foreground deletes).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { freePort, isAlive, sleep, startProcess, stopPid, waitFor } from '../test/testbed/processes.ts';
import { NATIVE_TTL_CONTROLLER, REPO_ROOT, Testbed } from '../test/testbed/testbed.ts';

/** kube-controller-manager controllers of every bench testbed: no job controller (Jobs are written
 *  finished directly), the garbage collector (it finishes Foreground deletes), service accounts and
 *  namespaces. The native TTL controller never runs in this process (see startNative). */
export const BENCH_CONTROLLERS = [
  'garbage-collector-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'namespace-controller',
] as const;

export const CONTROLLER_USER = 'bench-controller';
export const KTTL_BUNDLE = join(REPO_ROOT, 'dist/kttl.mjs');

export interface BundleInfo {
  /** The private copy every kttl run of this bench process uses. */
  path: string;
  md5: string;
  /** mtime of dist/kttl.mjs when it was copied. */
  builtAt: string;
}

let bundle: BundleInfo | undefined;

/**
 * dist/kttl.mjs, copied once per bench process: the tree is shared, and a rebuild by someone else
 * in the middle of a long run must not change the controller between scenarios.
 */
export function kttlBundle(): BundleInfo {
  if (bundle) return bundle;
  if (!existsSync(KTTL_BUNDLE)) throw new Error(`${KTTL_BUNDLE} missing: run node scripts/build.ts`);
  const dir = mkdtempSync(join(tmpdir(), 'kttl-bench-bundle-'));
  const path = join(dir, 'kttl.mjs');
  const builtAt = statSync(KTTL_BUNDLE).mtime.toISOString();
  copyFileSync(KTTL_BUNDLE, path);
  // Its map beside it, as in the image (used only with --enable-source-maps).
  if (existsSync(`${KTTL_BUNDLE}.map`)) copyFileSync(`${KTTL_BUNDLE}.map`, `${path}.map`);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const md5 = createHash('md5').update(readFileSync(path)).digest('hex');
  bundle = { path, md5, builtAt };
  return bundle;
}

export interface Budget {
  qps: number;
  burst: number;
}

export function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${t}] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// Admin HTTP client (undici Pool of keep-alive connections with the testbed's admin client cert)
// ---------------------------------------------------------------------------------------------

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

export class AdminApi {
  readonly pool: Pool;
  readonly origin: string;

  constructor(tb: Testbed, connections = 16) {
    const { pki } = tb.state;
    this.origin = tb.state.server;
    this.pool = new Pool(this.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
      connect: {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
      },
    });
  }

  async req<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<ApiResponse<T>> {
    const res = await this.pool.request({
      path,
      method: method as 'GET',
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON (e.g. /metrics)
    }
    return { status: res.statusCode, body: parsed as T };
  }

  /** Like req, but a non-2xx answer throws with the server's message. */
  async must<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const r = await this.req<T>(method, path, body, contentType);
    if (r.status < 200 || r.status >= 300) {
      const msg = (r.body as { message?: string } | undefined)?.message ?? JSON.stringify(r.body);
      throw new Error(`${method} ${path}: HTTP ${r.status}: ${msg}`);
    }
    return r.body;
  }

  async text(path: string): Promise<string> {
    const res = await this.pool.request({ path, method: 'GET' });
    return await res.body.text();
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Prometheus text
// ---------------------------------------------------------------------------------------------

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m?.[1] || m[3] === undefined) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Request accounting
// ---------------------------------------------------------------------------------------------

/** Verbs (as the apiserver's RequestInfo names them) counted per FlowSchema for the controller. */
const JOB_VERBS = [
  'get',
  'list',
  'watch',
  'delete',
  'patch',
  'update',
  'create',
  'deletecollection',
] as const;
const FS_PREFIX = 'bench-ctl-';

export interface RequestCounts {
  /** Requests of the controller under test on batch/jobs, by verb (APF FlowSchema counts). */
  controllerJobs: Record<string, number>;
  /** Its Event writes (events, core and events.k8s.io). */
  controllerEvents: number;
  /** Its reads of pods (the archive's pod lists and GETs). */
  controllerPods: number;
  /** Its reads of pods/log, if APF saw them (it does not: log is a long-running subresource,
   *  outside API Priority and Fairness; see allPodLogs). */
  controllerPodLogs: number;
  /** Its requests on coordination.k8s.io leases (leader election; none with --leader-elect=false). */
  controllerLeases: number;
  /** Anything else it sent (discovery, /version, ...). */
  controllerOther: number;
  /** apiserver_request_total on jobs (all clients), by VERB (+ "/status" subresource). */
  allJobs: Record<string, number>;
  /** apiserver_request_total on pods/log (all clients). */
  allPodLogs: number;
}

export function diffCounts(a: RequestCounts, b: RequestCounts): RequestCounts {
  const sub = (x: Record<string, number>, y: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
      const d = (y[k] ?? 0) - (x[k] ?? 0);
      if (d !== 0) out[k] = d;
    }
    return out;
  };
  return {
    controllerJobs: sub(a.controllerJobs, b.controllerJobs),
    controllerEvents: b.controllerEvents - a.controllerEvents,
    controllerPods: b.controllerPods - a.controllerPods,
    controllerPodLogs: b.controllerPodLogs - a.controllerPodLogs,
    controllerLeases: b.controllerLeases - a.controllerLeases,
    controllerOther: b.controllerOther - a.controllerOther,
    allJobs: sub(a.allJobs, b.allJobs),
    allPodLogs: b.allPodLogs - a.allPodLogs,
  };
}

// ---------------------------------------------------------------------------------------------
// The bench testbed
// ---------------------------------------------------------------------------------------------

export interface JobBatch {
  namespace: string;
  n: number;
  /** Name prefix; names are `${prefix}${i}`. */
  prefix: string;
  /** lastTransitionTime of the Complete condition (ms; whole seconds are what the API keeps). */
  finishedAtMs: number;
  ttlSeconds: number;
  /** Parallel connections/workers (16 by default). */
  concurrency?: number;
  /** Annotations of Job i (bench/annotation-bomb.ts). */
  annotations?: (i: number) => Record<string, string>;
  /** A pod per Job (`${name}-pod`, owned by it, labelled as the job controller labels its pods),
   *  bound to this kwok node: kwok runs it to Succeeded (bench/archive.ts). */
  podOnNode?: string;
  onProgress?: (done: number) => void;
}

export interface BenchOptions {
  /** etcd's --quota-backend-bytes (etcd's default: 2 GiB). */
  etcdQuotaBytes?: number;
}

/** The bench's etcd quota (bench/run.ts): room for 300,000 Jobs, each written twice (create, then
 *  status) plus their history until the API server compacts; 8 GiB is etcd's recommended maximum. */
export const BENCH_ETCD_QUOTA_BYTES = 8 * 2 ** 30;

/** Bare Pods bound to kwok fake nodes (no scheduler): bench/run.ts's running scenario. */
export interface PodBatch {
  namespace: string;
  n: number;
  /** Name prefix; names are `${prefix}${i}`. */
  prefix: string;
  /** Pod i is bound to nodes[i % nodes.length] (spec.nodeName). */
  nodes: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  restartPolicy?: 'Always' | 'Never';
  concurrency?: number;
  onProgress?: (done: number) => void;
}

export interface PodCounts {
  total: number;
  /** Not marked for deletion. */
  live: number;
  byPhase: Record<string, number>;
}

export class Bench {
  readonly tb: Testbed;
  readonly api: AdminApi;
  /** Kubeconfig of the controller under test (user bench-controller, cluster-admin). */
  readonly controllerKubeconfig: string;

  private constructor(tb: Testbed, controllerKubeconfig: string) {
    this.tb = tb;
    this.api = new AdminApi(tb);
    this.controllerKubeconfig = controllerKubeconfig;
  }

  /** A fresh control plane: etcd, kube-apiserver, kube-controller-manager (BENCH_CONTROLLERS),
   *  kube-scheduler, kwok; plus the controller identity and its FlowSchemas. */
  static async start(kcmBudget: Budget, o: BenchOptions = {}): Promise<Bench> {
    const started = Date.now();
    const tb = await Testbed.start({
      controllers: BENCH_CONTROLLERS,
      kcmQps: kcmBudget.qps,
      kcmBurst: kcmBudget.burst,
      ...(o.etcdQuotaBytes ? { etcdQuotaBytes: o.etcdQuotaBytes } : {}),
    });
    try {
      const kc = tb.userKubeconfig(CONTROLLER_USER);
      const b = new Bench(tb, kc);
      await b.#setupIdentity();
      log(`testbed up in ${((Date.now() - started) / 1000).toFixed(1)} s (${tb.state.server})`);
      return b;
    } catch (err) {
      await tb.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    // destroy, not close: close() would wait for a long-running watch to end.
    await this.api.pool.destroy().catch(() => undefined);
    await this.tb.stop();
  }

  async #setupIdentity(): Promise<void> {
    await this.api.must('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: CONTROLLER_USER },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: CONTROLLER_USER }],
    });
    const subjects = [{ kind: 'User', user: { name: CONTROLLER_USER } }];
    const schema = (name: string, precedence: number, rule: Record<string, unknown>) => ({
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'FlowSchema',
      metadata: { name: FS_PREFIX + name },
      // exempt: counted, never queued, so attribution does not change what is measured.
      spec: {
        priorityLevelConfiguration: { name: 'exempt' },
        matchingPrecedence: precedence,
        rules: [{ subjects, ...rule }],
      },
    });
    const schemas = [
      ...JOB_VERBS.map((verb) =>
        schema(`jobs-${verb}`, 50, {
          resourceRules: [
            {
              verbs: [verb],
              apiGroups: ['batch'],
              resources: ['jobs'],
              namespaces: ['*'],
              clusterScope: true,
            },
          ],
        }),
      ),
      schema('events', 51, {
        resourceRules: [
          {
            verbs: ['*'],
            apiGroups: ['', 'events.k8s.io'],
            resources: ['events'],
            namespaces: ['*'],
            clusterScope: true,
          },
        ],
      }),
      schema('pods', 51, {
        resourceRules: [
          { verbs: ['*'], apiGroups: [''], resources: ['pods'], namespaces: ['*'], clusterScope: true },
        ],
      }),
      schema('pods-log', 51, {
        resourceRules: [
          { verbs: ['*'], apiGroups: [''], resources: ['pods/log'], namespaces: ['*'], clusterScope: true },
        ],
      }),
      schema('leases', 51, {
        resourceRules: [
          {
            verbs: ['*'],
            apiGroups: ['coordination.k8s.io'],
            resources: ['leases'],
            namespaces: ['*'],
            clusterScope: true,
          },
        ],
      }),
      schema('other', 52, {
        resourceRules: [
          { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true },
        ],
        nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
      }),
    ];
    for (const s of schemas)
      await this.api.must('POST', '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas', s);
    // The APF config controller writes a Dangling condition once it has taken a schema in.
    await waitFor(
      'FlowSchemas in effect',
      async () => {
        const list = await this.api.must<{
          items: Array<{ metadata: { name: string }; status?: { conditions?: Array<{ type: string }> } }>;
        }>('GET', '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas');
        const ours = list.items.filter((i) => i.metadata.name.startsWith(FS_PREFIX));
        return (
          ours.length === schemas.length &&
          ours.every((i) => i.status?.conditions?.some((c) => c.type === 'Dangling'))
        );
      },
      30_000,
      200,
    );
    await sleep(1000);
  }

  /** kttl's policy CRDs (deploy/crds, as the chart installs them): without them kttl looks for
   *  them again every 30 s. Resolves once they are served. */
  async installPolicyCrds(): Promise<void> {
    await this.tb.kubectl(['apply', '-f', join(REPO_ROOT, 'deploy/crds')]);
    await this.tb.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/ttlpolicies.kttl.dev',
      'crd/clusterttlpolicies.kttl.dev',
    ]);
  }

  async createNamespace(name: string): Promise<void> {
    await this.api.must('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    });
  }

  /**
   * Writes `n` finished Jobs: POST with suspend: true (the job controller is off anyway, and no
   * pod is ever created), then a merge PATCH of /status with startTime, completionTime,
   * succeeded: 1 and the conditions SuccessCriteriaMet=True and Complete=True (1.37's status
   * validation wants all of them), lastTransitionTime = finishedAtMs. 16 workers on 16 keep-alive
   * connections. Returns the elapsed time in ms.
   */
  async createFinishedJobs(b: JobBatch): Promise<number> {
    const started = Date.now();
    const finished = new Date(Math.floor(b.finishedAtMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    const startTime = new Date(Math.floor(b.finishedAtMs / 1000) * 1000 - 1000)
      .toISOString()
      .replace('.000Z', 'Z');
    const status = {
      status: {
        startTime,
        completionTime: finished,
        succeeded: 1,
        conditions: [
          {
            type: 'SuccessCriteriaMet',
            status: 'True',
            reason: 'CompletionsReached',
            message: 'Reached expected number of succeeded pods',
            lastProbeTime: finished,
            lastTransitionTime: finished,
          },
          {
            type: 'Complete',
            status: 'True',
            reason: 'CompletionsReached',
            message: 'Reached expected number of succeeded pods',
            lastProbeTime: finished,
            lastTransitionTime: finished,
          },
        ],
      },
    };
    const statusBody = JSON.stringify(status);
    const base = `/apis/batch/v1/namespaces/${b.namespace}/jobs`;
    let next = 0;
    let done = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= b.n) return;
        const name = `${b.prefix}${i}`;
        const job = {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: {
            name,
            namespace: b.namespace,
            ...(b.annotations ? { annotations: b.annotations(i) } : {}),
          },
          spec: {
            suspend: true,
            ttlSecondsAfterFinished: b.ttlSeconds,
            backoffLimit: 0,
            template: {
              spec: {
                restartPolicy: 'Never',
                containers: [{ name: 'main', image: 'busybox', command: ['true'] }],
              },
            },
          },
        };
        const created = await retry(
          () => this.api.must<{ metadata: { uid: string } }>('POST', base, job),
          `create ${name}`,
          [409],
        );
        if (b.podOnNode) {
          const uid =
            created?.metadata.uid ??
            (await this.api.must<{ metadata: { uid: string } }>('GET', `${base}/${name}`)).metadata.uid;
          await retry(
            () => this.api.must('POST', `/api/v1/namespaces/${b.namespace}/pods`, jobPod(name, uid, b)),
            `create pod of ${name}`,
            [409],
          );
        }
        await retry(
          () => this.api.must('PATCH', `${base}/${name}/status`, statusBody, 'application/merge-patch+json'),
          `status ${name}`,
        );
        done++;
        if (b.onProgress && done % 1000 === 0) b.onProgress(done);
      }
    };
    await Promise.all(Array.from({ length: b.concurrency ?? 16 }, worker));
    return Date.now() - started;
  }

  /** The collection's current resourceVersion (a consistent LIST of one item). */
  async currentResourceVersion(namespace: string): Promise<string> {
    const list = await this.api.must<{ metadata: { resourceVersion: string } }>(
      'GET',
      `/apis/batch/v1/namespaces/${namespace}/jobs?limit=1`,
    );
    return list.metadata.resourceVersion;
  }

  /** Number of Jobs in the namespace that are not marked for deletion (paginated LIST). */
  async countLiveJobs(namespace: string): Promise<{ total: number; live: number }> {
    let cont = '';
    let total = 0;
    let live = 0;
    do {
      const page = await this.api.must<{
        metadata: { continue?: string };
        items: Array<{ metadata: { deletionTimestamp?: string } }>;
      }>(
        'GET',
        `/apis/batch/v1/namespaces/${namespace}/jobs?limit=5000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`,
      );
      total += page.items.length;
      live += page.items.filter((i) => !i.metadata.deletionTimestamp).length;
      cont = page.metadata.continue ?? '';
    } while (cont);
    return { total, live };
  }

  /**
   * kwok fake nodes (annotation kwok.x-k8s.io/node=fake, as Testbed.createFakeNode makes them, but
   * POSTed in parallel and without the taint removal: Pods bound by nodeName ignore NoSchedule).
   * Resolves once kwok has marked every one Ready. Returns the elapsed time in ms.
   */
  async createFakeNodes(names: string[], timeoutMs = 600_000): Promise<number> {
    const started = Date.now();
    let next = 0;
    const worker = async () => {
      for (;;) {
        const name = names[next++];
        if (name === undefined) return;
        await retry(
          () =>
            this.api.must('POST', '/api/v1/nodes', {
              apiVersion: 'v1',
              kind: 'Node',
              metadata: {
                name,
                annotations: { 'kwok.x-k8s.io/node': 'fake' },
                labels: { type: 'kwok', 'kubernetes.io/hostname': name, 'bench.kttl.dev/node': 'true' },
              },
              spec: {},
            }),
          `create node ${name}`,
          [409],
        );
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const want = new Set(names);
    await waitFor(
      `${names.length} fake nodes Ready`,
      async () => {
        const list = await this.api.must<{
          items: Array<{
            metadata: { name: string };
            status?: { conditions?: Array<{ type: string; status: string }> };
          }>;
        }>('GET', '/api/v1/nodes?labelSelector=bench.kttl.dev%2Fnode%3Dtrue');
        const ready = list.items.filter(
          (i) =>
            want.has(i.metadata.name) &&
            i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length;
        return ready === want.size;
      },
      timeoutMs,
      500,
    );
    return Date.now() - started;
  }

  /** Writes `n` bare Pods bound to kwok nodes (spec.nodeName set: no scheduling). Returns ms. */
  async createPods(b: PodBatch): Promise<number> {
    const started = Date.now();
    const path = `/api/v1/namespaces/${b.namespace}/pods`;
    let next = 0;
    let done = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= b.n) return;
        const name = `${b.prefix}${i}`;
        const pod = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name,
            namespace: b.namespace,
            ...(b.labels ? { labels: b.labels } : {}),
            ...(b.annotations ? { annotations: b.annotations } : {}),
          },
          spec: {
            nodeName: b.nodes[i % b.nodes.length],
            restartPolicy: b.restartPolicy ?? 'Always',
            containers: [{ name: 'main', image: 'busybox', command: ['sleep', 'infinity'] }],
          },
        };
        await retry(() => this.api.must('POST', path, pod), `create pod ${name}`, [409]);
        done++;
        if (b.onProgress && done % 1000 === 0) b.onProgress(done);
      }
    };
    await Promise.all(Array.from({ length: b.concurrency ?? 16 }, worker));
    return Date.now() - started;
  }

  /** Whether any Pod of the namespace matches the selectors (a LIST with limit=1). */
  async anyPod(namespace: string, selectors: { field?: string; label?: string }): Promise<boolean> {
    const q = [
      'limit=1',
      ...(selectors.field ? [`fieldSelector=${encodeURIComponent(selectors.field)}`] : []),
      ...(selectors.label ? [`labelSelector=${encodeURIComponent(selectors.label)}`] : []),
    ].join('&');
    const list = await this.api.must<{ items: unknown[] }>(
      'GET',
      `/api/v1/namespaces/${namespace}/pods?${q}`,
    );
    return list.items.length > 0;
  }

  /** The namespace's Pods by phase (paginated LIST). */
  async countPods(namespace: string): Promise<PodCounts> {
    let cont = '';
    const out: PodCounts = { total: 0, live: 0, byPhase: {} };
    do {
      const page = await this.api.must<{
        metadata: { continue?: string };
        items: Array<{ metadata: { deletionTimestamp?: string }; status?: { phase?: string } }>;
      }>(
        'GET',
        `/api/v1/namespaces/${namespace}/pods?limit=5000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`,
      );
      for (const p of page.items) {
        out.total++;
        if (!p.metadata.deletionTimestamp) out.live++;
        const phase = p.status?.phase ?? 'none';
        out.byPhase[phase] = (out.byPhase[phase] ?? 0) + 1;
      }
      cont = page.metadata.continue ?? '';
    } while (cont);
    return out;
  }

  async requestCounts(): Promise<RequestCounts> {
    const samples = parseProm(await this.api.text('/metrics'));
    const counts: RequestCounts = {
      controllerJobs: {},
      controllerEvents: 0,
      controllerPods: 0,
      controllerPodLogs: 0,
      controllerLeases: 0,
      controllerOther: 0,
      allJobs: {},
      allPodLogs: 0,
    };
    for (const s of samples) {
      if (s.name === 'apiserver_flowcontrol_dispatched_requests_total') {
        const fs = s.labels.flow_schema ?? '';
        if (!fs.startsWith(FS_PREFIX)) continue;
        const what = fs.slice(FS_PREFIX.length);
        if (what.startsWith('jobs-')) counts.controllerJobs[what.slice(5)] = s.value;
        else if (what === 'events') counts.controllerEvents = s.value;
        else if (what === 'pods') counts.controllerPods = s.value;
        else if (what === 'pods-log') counts.controllerPodLogs = s.value;
        else if (what === 'leases') counts.controllerLeases = s.value;
        else if (what === 'other') counts.controllerOther = s.value;
      } else if (
        s.name === 'apiserver_request_total' &&
        s.labels.resource === 'jobs' &&
        s.labels.group === 'batch'
      ) {
        const key = `${s.labels.verb}${s.labels.subresource ? `/${s.labels.subresource}` : ''}`;
        counts.allJobs[key] = (counts.allJobs[key] ?? 0) + s.value;
      } else if (
        s.name === 'apiserver_request_total' &&
        s.labels.resource === 'pods' &&
        s.labels.subresource === 'log'
      ) {
        counts.allPodLogs += s.value;
      }
    }
    return counts;
  }

  /** Watches the namespace's Jobs from `resourceVersion` and records when each is first seen
   *  marked for deletion (deletionTimestamp set) or deleted. */
  watchDeletions(namespace: string, resourceVersion: string): DeletionWatch {
    return new DeletionWatch(this.api, namespace, resourceVersion);
  }
}

/** The pod the job controller would have made for Job `name` (uid): same labels, controller
 *  owner reference, bound to `b.podOnNode` (no scheduling). */
function jobPod(name: string, uid: string, b: JobBatch): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${name}-pod`,
      namespace: b.namespace,
      labels: {
        'batch.kubernetes.io/controller-uid': uid,
        'batch.kubernetes.io/job-name': name,
        'controller-uid': uid,
        'job-name': name,
      },
      ownerReferences: [
        { apiVersion: 'batch/v1', kind: 'Job', name, uid, controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      nodeName: b.podOnNode,
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: 'busybox', command: ['true'] }],
    },
  };
}

async function retry<T>(fn: () => Promise<T>, what: string, okCodes: number[] = []): Promise<T | undefined> {
  let last: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const m = String((err as Error).message ?? err).match(/HTTP (\d+)/);
      if (m && okCodes.includes(Number(m[1]))) return undefined;
      last = err;
      await sleep(100 * 2 ** attempt);
    }
  }
  throw new Error(`${what} failed: ${String((last as Error)?.message ?? last)}`);
}

export class DeletionWatch {
  /** Job name → local time (ms) it was first seen with a deletionTimestamp, or deleted. */
  readonly seen = new Map<string, number>();
  readonly #api: AdminApi;
  readonly #path: string;
  #rv: string;
  #stopped = false;
  #abort = new AbortController();
  #waiters: Array<() => void> = [];
  readonly done: Promise<void>;

  constructor(api: AdminApi, namespace: string, resourceVersion: string) {
    this.#api = api;
    this.#path = `/apis/batch/v1/namespaces/${namespace}/jobs`;
    this.#rv = resourceVersion;
    this.done = this.#loop();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      try {
        const res = await this.#api.pool.request({
          path: `${this.#path}?watch=1&allowWatchBookmarks=true&timeoutSeconds=3600&resourceVersion=${this.#rv}`,
          method: 'GET',
          headers: { accept: 'application/json' },
          signal: this.#abort.signal,
          bodyTimeout: 0,
        });
        if (res.statusCode !== 200) {
          const text = await res.body.text();
          throw new Error(`watch: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
        }
        const decoder = new TextDecoder();
        let buf = '';
        for await (const chunk of res.body) {
          buf += decoder.decode(chunk as Uint8Array, { stream: true });
          let nl = buf.indexOf('\n');
          while (nl >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim()) this.#onLine(line, Date.now());
            nl = buf.indexOf('\n');
          }
        }
      } catch (err) {
        if (this.#stopped) return;
        log(`bench watch: ${(err as Error).message}; re-watching from ${this.#rv}`);
        await sleep(200);
      }
    }
  }

  #onLine(line: string, now: number): void {
    const ev = JSON.parse(line) as {
      type: string;
      object: {
        metadata?: { name?: string; resourceVersion?: string; deletionTimestamp?: string };
        code?: number;
      };
    };
    if (ev.type === 'ERROR') throw new Error(`watch error event: ${line.slice(0, 200)}`);
    const md = ev.object.metadata;
    if (md?.resourceVersion) this.#rv = md.resourceVersion;
    if (ev.type === 'BOOKMARK' || !md?.name) return;
    if ((ev.type === 'DELETED' || md.deletionTimestamp) && !this.seen.has(md.name)) {
      this.seen.set(md.name, now);
      for (const w of this.#waiters) w();
    }
  }

  /** Resolves true when `n` Jobs were seen deleted, false at the deadline (epoch ms). */
  async waitForCount(n: number, deadlineMs: number, onProgress?: (count: number) => void): Promise<boolean> {
    let lastReport = Date.now();
    while (this.seen.size < n) {
      const left = deadlineMs - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.#waiters = [];
      if (onProgress && Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        onProgress(this.seen.size);
      }
    }
    return true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.done.catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Controller processes under test
// ---------------------------------------------------------------------------------------------

export interface ProcSample {
  rssKb: number;
  hwmKb: number;
}

export function procMemory(pid: number): ProcSample | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+)\\s+kB`, 'm'))?.[1] ?? Number.NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** utime + stime of the process, in seconds (from /proc/<pid>/stat; USER_HZ = 100 on Linux). */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: split after its closing parenthesis.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / 100;
}

export type ControllerName = 'native' | 'kttl';

export interface ControllerProc {
  name: ControllerName;
  pid: number;
  logFile: string;
  /** Local time the process was spawned (ms). */
  spawnedAt: number;
  /** Resolves to the local time (ms) the controller's cache is synced. */
  ready(timeoutMs: number): Promise<number>;
  memory(): ProcSample | null;
  /** Peak VmHWM seen by the sampler (the process's own VmHWM is the authority while it runs). */
  peakKb(): number;
  /** Extra figures from the controller's own /metrics (kttl only). */
  selfMetrics(): Promise<Sample[]>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function memorySampler(pid: number): { peak: () => number; stop: () => void } {
  let peak = 0;
  const tick = () => {
    const m = procMemory(pid);
    if (m) peak = Math.max(peak, m.hwmKb, m.rssKb);
  };
  const t = setInterval(tick, 250);
  tick();
  return {
    peak: () => {
      tick();
      return peak;
    },
    stop: () => clearInterval(t),
  };
}

/**
 * The native ttl-after-finished controller alone, in its own kube-controller-manager process
 * (identity bench-controller), so its RSS, CPU and requests are not mixed with the garbage
 * collector's (which keeps running in the testbed's kube-controller-manager, on its own budget).
 * Flags as the testbed's: --kube-api-qps/--kube-api-burst, --concurrent-ttl-after-finished-syncs 5.
 */
export async function startNative(bench: Bench, budget: Budget, label = 'native'): Promise<ControllerProc> {
  const tb = bench.tb;
  const port = await freePort();
  const logFile = join(tb.state.dir, 'logs', `${label}-kcm-${port}.log`);
  const kc = bench.controllerKubeconfig;
  const spawnedAt = Date.now();
  const p = startProcess(
    'kube-controller-manager (native ttl)',
    tb.bins.kubeControllerManager,
    [
      `--kubeconfig=${kc}`,
      `--authentication-kubeconfig=${kc}`,
      `--authorization-kubeconfig=${kc}`,
      `--controllers=${NATIVE_TTL_CONTROLLER}`,
      '--leader-elect=false',
      `--secure-port=${port}`,
      '--bind-address=127.0.0.1',
      '--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics',
      `--kube-api-qps=${budget.qps}`,
      `--kube-api-burst=${budget.burst}`,
      '--concurrent-ttl-after-finished-syncs=5',
    ],
    logFile,
  );
  tb.state.pids[`bench-${label}`] = p.pid; // tb.stop() kills it if we do not get to
  const sampler = memorySampler(p.pid);
  return {
    name: 'native',
    pid: p.pid,
    logFile,
    spawnedAt,
    async ready(timeoutMs) {
      // client-go logs "Waiting for caches to sync" and then "Caches are synced" for each
      // WaitForCacheSync (1.37 names no controller in them): the TTL controller's informer has
      // listed every Job once the controller has started and every wait has been answered.
      return await waitFor(
        'native TTL controller caches synced',
        async () => {
          if (!isAlive(p.pid)) throw new Error(`kube-controller-manager exited; see ${logFile}`);
          const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
          if (!text.includes('Starting TTL after finished controller')) return undefined;
          const waiting = text.split('"Waiting for caches to sync"').length - 1;
          const synced = text.split('"Caches are synced"').length - 1;
          return waiting > 0 && synced >= waiting ? Date.now() : undefined;
        },
        timeoutMs,
        25,
      );
    },
    memory: () => procMemory(p.pid),
    peakKb: () => sampler.peak(),
    selfMetrics: async () => [],
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      sampler.stop();
      await stopPid(p.pid, 10_000, signal);
      delete tb.state.pids[`bench-${label}`];
    },
  };
}

export interface KttlOptions {
  namespaces: string[];
  /** Extra arguments for node before the bundle (e.g. --heapsnapshot-signal=SIGUSR2, --cpu-prof). */
  nodeArgs?: string[];
  extraArgs?: string[];
  label?: string;
}

/**
 * kttl's built bundle (dist/kttl.mjs, see kttlBundle) as user bench-controller, leader election off, the same
 * budget as the native controller. Events have their own budget in kttl (best-effort, outside
 * the API budget); the bench sets it to almost nothing (--event-qps 0.001 --event-burst 1: at most
 * one Event per run) so the request counts are the deletion path's alone.
 */
export async function startKttl(bench: Bench, budget: Budget, o: KttlOptions): Promise<ControllerProc> {
  const { path: bundlePath } = kttlBundle();
  const tb = bench.tb;
  const label = o.label ?? 'kttl';
  const metricsPort = await freePort();
  const healthPort = await freePort();
  const logFile = join(tb.state.dir, 'logs', `${label}-${metricsPort}.log`);
  const spawnedAt = Date.now();
  const p = startProcess(
    'kttl',
    process.execPath,
    [
      ...(o.nodeArgs ?? []),
      bundlePath,
      '--kubeconfig',
      bench.controllerKubeconfig,
      'run',
      '--leader-elect=false',
      '--kube-api-qps',
      String(budget.qps),
      '--kube-api-burst',
      String(budget.burst),
      '--namespaces',
      o.namespaces.join(','),
      '--event-qps',
      '0.001',
      '--event-burst',
      '1',
      '--metrics-bind-address',
      `127.0.0.1:${metricsPort}`,
      '--health-probe-bind-address',
      `127.0.0.1:${healthPort}`,
      ...(o.extraArgs ?? []),
    ],
    logFile,
  );
  tb.state.pids[`bench-${label}`] = p.pid;
  const sampler = memorySampler(p.pid);
  return {
    name: 'kttl',
    pid: p.pid,
    logFile,
    spawnedAt,
    async ready(timeoutMs) {
      return await waitFor(
        'kttl /readyz',
        async () => {
          if (!isAlive(p.pid)) throw new Error(`kttl exited; see ${logFile}`);
          const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined);
          if (res) await res.body?.cancel();
          return res?.status === 200 ? Date.now() : undefined;
        },
        timeoutMs,
        25,
      );
    },
    memory: () => procMemory(p.pid),
    peakKb: () => sampler.peak(),
    async selfMetrics() {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      return parseProm(await res.text());
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      sampler.stop();
      await stopPid(p.pid, 15_000, signal);
      delete tb.state.pids[`bench-${label}`];
    },
  };
}

/**
 * node's flags of the image (Dockerfile): ENTRYPOINT `node /app/kttl.mjs` and
 * NODE_OPTIONS=--max-semi-space-size=1. startController gives them to kttl (kttlBundle copies the
 * source map beside the bundle, as the image has it); startKttl alone does not.
 */
export const KTTL_IMAGE_NODE_ARGS: readonly string[] = ['--max-semi-space-size=1'];

/** KTTL_IMAGE_NODE_ARGS, except a flag the caller sets itself, then the caller's. */
export function imageNodeArgs(extra: readonly string[] = []): string[] {
  const flag = (a: string) => a.split('=')[0]!.replace(/^--no-/, '--');
  const own = new Set(extra.map(flag));
  return [...KTTL_IMAGE_NODE_ARGS.filter((a) => !own.has(flag(a))), ...extra];
}

/**
 * The controller under test. kttl runs as the image runs it (KTTL_IMAGE_NODE_ARGS before
 * `o.nodeArgs`) unless `o.bareNode` is set.
 */
export async function startController(
  name: ControllerName,
  bench: Bench,
  budget: Budget,
  o: KttlOptions & { bareNode?: boolean },
): Promise<ControllerProc> {
  if (name === 'native') return await startNative(bench, budget);
  return await startKttl(bench, budget, {
    ...o,
    nodeArgs: o.bareNode ? [...(o.nodeArgs ?? [])] : imageNodeArgs(o.nodeArgs),
  });
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/** Nearest-rank percentile (p in 0..100) of an unsorted list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}
