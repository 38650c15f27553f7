// Registers an aggregated API server that listens on this host's loopback behind the testbed's
// aggregation layer. Endpoints refuse loopback addresses and the aggregator refuses ExternalName
// Services, so the aggregator reaches the server through a network namespace this helper creates
// (../shared/TESTBED-NOTES.md, "Second wave"): a veth pair 192.168.250.x/30, a relay inside the
// namespace listening on its address, carrying each connection over a UNIX socket to a relay on the
// host that connects to 127.0.0.1:PORT. A selector-less Service with an EndpointSlice names the
// namespace's address; the APIService points at the Service. Traffic stays on loopback or inside
// the namespace. Needs root, `ip` (iproute2) and `socat`.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep, waitFor } from './processes.ts';
import type { Testbed } from './testbed.ts';

const run = promisify(execFile);

export interface AggregatedOptions {
  /** The server's port on 127.0.0.1. */
  port: number;
  /** PEM of the CA that signed the server's certificate (the APIService's caBundle). */
  caBundle: string;
  group: string;
  version: string;
  /** Where the Service goes (created when missing); default `kttl-aggregated`. */
  serviceNamespace?: string;
  /** Default `<group's first label>-<x>`. */
  serviceName?: string;
  /** Milliseconds to wait for the APIService to turn Available (default 60 s). */
  availableTimeoutMs?: number;
}

export interface AggregatedRegistration {
  apiService: string;
  serviceNamespace: string;
  serviceName: string;
  /** The DNS name the aggregator checks the server's certificate for: `<service>.<namespace>.svc`. */
  serverName: string;
  netns: string;
  nsAddress: string;
  /** The relay's log (connections carried, errors). */
  logDir: string;
  unregister(): Promise<void>;
}

const NS_PORT = 8443;

async function ip(args: string[]): Promise<string> {
  return (await run('ip', args)).stdout;
}

/** A free /30 in 192.168.250.0/24: none of its addresses on any interface of this host. */
async function pickSubnet(): Promise<number> {
  const used = await ip(['-o', '-4', 'addr', 'show']);
  const taken = new Set((await ip(['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]));
  const start = (process.pid + Math.floor(Math.random() * 64)) % 64;
  for (let i = 0; i < 64; i++) {
    const k = (start + i) % 64;
    const x = k * 4;
    if (used.includes(`192.168.250.${x + 1}/`) || taken.has(`kttl-agg-${k}`)) continue;
    return k;
  }
  throw new Error('no free /30 in 192.168.250.0/24 for an aggregated API server');
}

function spawnRelay(cmd: string, args: string[], logFile: string): ChildProcess {
  const out = openSync(logFile, 'a');
  // Its own process group: socat forks a child per connection; teardown signals the whole group.
  const child = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  child.unref();
  if (process.env.KTTL_TESTBED_PIDFILE) appendFileSync(process.env.KTTL_TESTBED_PIDFILE, `${child.pid}\n`);
  return child;
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  await Promise.race([exited, sleep(3_000)]);
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {}
}

/** Makes `o.port` on 127.0.0.1 the backend of APIService `<version>.<group>`, Available when this resolves. */
export async function registerAggregated(tb: Testbed, o: AggregatedOptions): Promise<AggregatedRegistration> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'registerAggregated needs root (ip netns add, a veth pair): run the test as root (as CI does)',
    );
  }
  const k = await pickSubnet();
  const x = k * 4;
  const hostAddress = `192.168.250.${x + 1}`;
  const nsAddress = `192.168.250.${x + 2}`;
  const netns = `kttl-agg-${k}`;
  const hostVeth = `kttlh${k}`;
  const nsVeth = `kttln${k}`;
  const serviceNamespace = o.serviceNamespace ?? 'kttl-aggregated';
  const serviceName = o.serviceName ?? `${o.group.split('.')[0]}-${k}`;
  const apiService = `${o.version}.${o.group}`;
  const logDir = mkdtempSync(join(tmpdir(), 'kttl-aggregated-'));
  const socket = join(logDir, 'relay.sock');
  const relays: ChildProcess[] = [];
  let netnsMade = false;

  const unregister = async () => {
    await tb
      .kubectl(['delete', 'apiservice', apiService, '--ignore-not-found', '--wait=false'])
      .catch(() => {});
    await tb
      .kubectl([
        '-n',
        serviceNamespace,
        'delete',
        'service,endpointslice,endpoints',
        serviceName,
        '--ignore-not-found',
        '--wait=false',
      ])
      .catch(() => {});
    for (const r of relays) await stopGroup(r);
    // Deleting the namespace deletes its end of the veth pair, and with it the host's end.
    if (netnsMade) await ip(['netns', 'del', netns]).catch(() => {});
    await ip(['link', 'del', hostVeth]).catch(() => {});
    rmSync(logDir, { recursive: true, force: true });
  };

  try {
    await ip(['netns', 'add', netns]);
    netnsMade = true;
    await ip(['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth]);
    await ip(['link', 'set', nsVeth, 'netns', netns]);
    await ip(['addr', 'add', `${hostAddress}/30`, 'dev', hostVeth]);
    await ip(['link', 'set', hostVeth, 'up']);
    await ip(['netns', 'exec', netns, 'ip', 'addr', 'add', `${nsAddress}/30`, 'dev', nsVeth]);
    await ip(['netns', 'exec', netns, 'ip', 'link', 'set', nsVeth, 'up']);
    await ip(['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);

    relays.push(
      spawnRelay(
        'socat',
        [`UNIX-LISTEN:${socket},fork`, `TCP:127.0.0.1:${o.port}`],
        join(logDir, 'host-relay.log'),
      ),
    );
    await waitFor('the host relay socket', async () => existsSync(socket), 10_000, 20);
    relays.push(
      spawnRelay(
        'ip',
        [
          'netns',
          'exec',
          netns,
          'socat',
          `TCP-LISTEN:${NS_PORT},bind=${nsAddress},fork,reuseaddr`,
          `UNIX-CONNECT:${socket}`,
        ],
        join(logDir, 'ns-relay.log'),
      ),
    );
    await waitFor(
      'the namespace relay listening',
      async () => (await ip(['netns', 'exec', netns, 'ss', '-Hltn'])).includes(`${nsAddress}:${NS_PORT}`),
      10_000,
      20,
    ).catch(async (err) => {
      // `ss` may be missing: fall back to a short pause once the process is alive.
      if (relays[1]?.exitCode !== null) throw err;
      await sleep(200);
    });

    const manifests = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: serviceNamespace } },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: serviceName, namespace: serviceNamespace },
        spec: { ports: [{ name: 'https', port: 443, targetPort: NS_PORT, protocol: 'TCP' }] },
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: serviceName,
          namespace: serviceNamespace,
          labels: { 'kubernetes.io/service-name': serviceName },
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [nsAddress], conditions: { ready: true } }],
        ports: [{ name: 'https', port: NS_PORT, protocol: 'TCP' }],
      },
      {
        apiVersion: 'apiregistration.k8s.io/v1',
        kind: 'APIService',
        metadata: { name: apiService },
        spec: {
          group: o.group,
          version: o.version,
          service: { namespace: serviceNamespace, name: serviceName, port: 443 },
          caBundle: Buffer.from(o.caBundle).toString('base64'),
          groupPriorityMinimum: 1000,
          versionPriority: 15,
        },
      },
    ];
    await tb.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }),
    );
    try {
      await tb.kubectl([
        'wait',
        '--for=condition=Available',
        `--timeout=${Math.round((o.availableTimeoutMs ?? 60_000) / 1000)}s`,
        `apiservice/${apiService}`,
      ]);
    } catch (err) {
      const state = await tb
        .kubectl(['get', 'apiservice', apiService, '-o', 'jsonpath={.status}'])
        .catch(() => '');
      const relayLog = ['host-relay.log', 'ns-relay.log']
        .map((f) => join(logDir, f))
        .filter((f) => existsSync(f))
        .map((f) => readFileSync(f, 'utf8').slice(-2000))
        .join('\n');
      throw new Error(
        `APIService ${apiService} did not turn Available: ${state}\n${relayLog}\n${(err as Error).message}`,
      );
    }
  } catch (err) {
    await unregister();
    throw err;
  }
  return {
    apiService,
    serviceNamespace,
    serviceName,
    serverName: `${serviceName}.${serviceNamespace}.svc`,
    netns,
    nsAddress,
    logDir,
    unregister,
  };
}

/**
 * kttl's archive API (archive.kttl.dev/v1alpha1) served on 127.0.0.1:port with a certificate of the
 * testbed CA for `<serviceName>.<serviceNamespace>.svc`, registered through the aggregation layer.
 */
export function registerArchiveApi(
  tb: Testbed,
  o: { port: number; serviceNamespace: string; serviceName: string },
): Promise<AggregatedRegistration> {
  return registerAggregated(tb, {
    ...o,
    caBundle: readFileSync(tb.state.pki.caCert, 'utf8'),
    group: 'archive.kttl.dev',
    version: 'v1alpha1',
  });
}
