// The metrics and health endpoints, on separate addresses like controller-runtime
// (--metrics-bind-address :8080, --health-probe-bind-address :8081; "0" turns one off).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthChecks {
  /** Liveness: the process can still do its work. */
  healthy(): { ok: boolean; detail: string };
  /** Readiness: caches synced. */
  ready(): { ok: boolean; detail: string };
}

/** ":8080" → all interfaces, port 8080; "127.0.0.1:0" → a free port; "0" → off (null). */
export function parseBindAddress(addr: string): { host: string | undefined; port: number } | null {
  if (addr === '0' || addr === '') return null;
  const i = addr.lastIndexOf(':');
  if (i < 0) throw new Error(`invalid bind address "${addr}": expected host:port or :port`);
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`invalid port in bind address "${addr}"`);
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host || undefined, port };
}

async function listen(server: Server, addr: string): Promise<Server | null> {
  const parsed = parseBindAddress(addr);
  if (!parsed) return null;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(parsed.port, parsed.host, () => resolve());
  });
  return server;
}

export async function startMetricsServer(addr: string, registry: Registry): Promise<Server | null> {
  const server = createServer(async (req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    try {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(body);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  return listen(server, addr);
}

export async function startHealthServer(addr: string, checks: HealthChecks): Promise<Server | null> {
  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    const check =
      path === '/healthz' || path === '/livez'
        ? checks.healthy()
        : path === '/readyz'
          ? checks.ready()
          : null;
    if (!check) {
      res.writeHead(404).end('not found\n');
      return;
    }
    res
      .writeHead(check.ok ? 200 : 503, { 'content-type': 'text/plain' })
      .end(check.ok ? 'ok' : `${check.detail}\n`);
  });
  return listen(server, addr);
}

export function boundPort(server: Server | null): number | null {
  const a = server?.address();
  return a && typeof a === 'object' ? a.port : null;
}

export async function closeServer(server: Server | null): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}
