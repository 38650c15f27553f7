// The HTTPS server of `kttl webhook`: POST /mutate (AdmissionReview v1), GET /healthz and /readyz.
//
// Certificates: read from --tls-cert-file/--tls-private-key-file and polled every 10 s; when the
// content changes (a renewed cert-manager Secret, a kubelet symlink swap, an editor's rewrite) and
// the new pair is valid and matches, it replaces the old one with server.setSecureContext, for new
// connections; a half-written or mismatched pair is logged and the old one kept. Polling the content
// (not fs.watch) is on purpose: Secret volumes update by swapping a `..data` symlink, which fs.watch
// on the file misses. Without files, a self-signed pair for development is made with the openssl
// command line (node:crypto makes keys but cannot sign certificates).
//
// Limits: a body over maxBodyBytes is answered 413, a request that takes longer than
// requestTimeoutMs to arrive is cut by Node (408), a body that is not JSON or not an AdmissionReview
// is answered 400 with a metav1.Status whose message says what is wrong (the API server logs it).
// Any of these, and the webhook being down, lets the object through: failurePolicy Ignore.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { parseBindAddress } from '../controller/servers.ts';
import type { Policy } from '../policy/schema.ts';
import { type MutateContext, mutate } from './mutate.ts';

/** What the server needs from a PolicyStore. */
export interface PolicySource {
  policies(): readonly Policy[];
  namespaceLabels(ns: string): Readonly<Record<string, string>> | undefined;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface WebhookServerOptions {
  /** host:port, e.g. `0.0.0.0:9443` or `127.0.0.1:0` (a free port). */
  bindAddress: string;
  tls: TlsFiles;
  policies: PolicySource;
  /** Readiness (policies listed); /readyz answers 503 until true. Default: always ready. */
  ready?: () => boolean;
  logger: Logger;
  /** Default 6 MiB: an AdmissionReview carries the object (at most ~3 MiB, the API server's limit) and overhead. */
  maxBodyBytes?: number;
  /** The whole request must arrive within this (default 10 s; the API server gives up after timeoutSeconds). */
  requestTimeoutMs?: number;
  /** How often the certificate files are read for changes (default 10 s; 0 turns reloading off). */
  reloadIntervalMs?: number;
  /** Test seam: awaited before each /mutate answer (tests use it to make the webhook slow). */
  beforeMutate?: () => Promise<void> | void;
}

export interface WebhookStats {
  reviews: number;
  patched: number;
  warned: number;
  badRequests: number;
  internalErrors: number;
  certReloads: number;
  certReloadErrors: number;
}

export interface WebhookServer {
  readonly server: Server;
  readonly port: number;
  readonly stats: WebhookStats;
  /** Reads the certificate files now; resolves true when a new pair was installed. */
  reloadCertificates(): Promise<boolean>;
  stop(): Promise<void>;
}

const DEFAULT_MAX_BODY = 6 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_RELOAD_MS = 10_000;

interface Pair {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks a cert/key pair: both parse, and the key belongs to the (first) certificate. */
async function readPair(files: TlsFiles): Promise<Pair> {
  const [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  checkPair(cert, key, files);
  return { cert, key };
}

function checkPair(cert: Buffer, key: Buffer, files: TlsFiles): void {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${files.certFile}: not a PEM certificate (${(err as Error).message})`);
  }
  try {
    // Throws when the key does not parse or does not match the certificate.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(
      `${files.keyFile}: not the private key of ${files.certFile} (${x509.subject.replace(/\n/g, ', ')}): ${(err as Error).message}`,
    );
  }
}

function sameBytes(a: Pair, b: Pair): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key);
}

function describeCert(cert: Buffer): { subject: string; notAfter: string; san: string } {
  try {
    const x = new X509Certificate(cert);
    return { subject: x.subject.replace(/\n/g, ', '), notAfter: x.validTo, san: x.subjectAltName ?? '' };
  } catch {
    return { subject: '?', notAfter: '?', san: '' };
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A metav1.Status, which the API server's client decodes and logs with its message. */
function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServer> {
  const log = o.logger;
  const maxBody = o.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const bind = parseBindAddress(o.bindAddress);
  if (bind === null) throw new Error(`invalid bind address "${o.bindAddress}": the webhook needs host:port`);
  let current = await readPair(o.tls);
  const stats: WebhookStats = {
    reviews: 0,
    patched: 0,
    warned: 0,
    badRequests: 0,
    internalErrors: 0,
    certReloads: 0,
    certReloadErrors: 0,
  };
  const ctx: MutateContext = {
    get policies() {
      return o.policies.policies();
    },
    namespaceLabels: (ns) => o.policies.namespaceLabels(ns),
  };

  const handleMutate = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      sendStatus(
        res,
        405,
        'MethodNotAllowed',
        `${req.method} is not allowed on /mutate: POST an AdmissionReview`,
      );
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, maxBody);
    } catch (err) {
      stats.badRequests++;
      if (err instanceof BodyTooLarge) {
        res.setHeader('connection', 'close');
        sendStatus(res, 413, 'RequestEntityTooLarge', `request body larger than ${maxBody} bytes`);
        return;
      }
      throw err;
    }
    let review: unknown;
    try {
      review = JSON.parse(body.toString('utf8'));
    } catch (err) {
      stats.badRequests++;
      sendStatus(
        res,
        400,
        'BadRequest',
        `malformed AdmissionReview: body is not JSON: ${(err as Error).message}`,
      );
      return;
    }
    await o.beforeMutate?.();
    const result = mutate(review, ctx);
    if (result.status === 400) {
      stats.badRequests++;
      log.warn({ message: result.message }, 'bad admission request');
      sendStatus(res, 400, 'BadRequest', result.message);
      return;
    }
    stats.reviews++;
    const r = result.response.response;
    if (r.patch) stats.patched++;
    if (r.warnings) stats.warned++;
    if (result.internalError) {
      stats.internalErrors++;
      log.error(
        { uid: r.uid, err: result.internalError },
        'internal error in mutate; object allowed unchanged',
      );
    } else if (r.patch || r.warnings) {
      const request = (review as { request?: Record<string, unknown> }).request ?? {};
      // Stamps are routine (debug); warnings (lowered, invalid, dry-run) are worth a line (info).
      log[r.warnings ? 'info' : 'debug'](
        {
          uid: r.uid,
          kind: (request.kind as { kind?: string } | undefined)?.kind,
          namespace: request.namespace,
          name: request.name,
          dryRun: request.dryRun === true,
          patch: r.patch ? Buffer.from(r.patch, 'base64').toString('utf8') : undefined,
          warnings: r.warnings,
        },
        'admission: mutated or warned',
      );
    }
    sendJson(res, 200, result.response);
  };

  const requestTimeout = o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const server = createServer(
    {
      cert: current.cert,
      key: current.key,
      minVersion: 'TLSv1.2',
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 10_000),
      // Node checks the timeouts above only this often (default 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, requestTimeout / 4)),
      // The API server keeps connections to webhooks alive; keep ours open a little longer than idle.
      keepAliveTimeout: 65_000,
    },
    (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const done = (err: unknown) => {
        log.error({ err: String((err as Error)?.stack ?? err) }, 'webhook request failed');
        if (!res.headersSent) sendStatus(res, 500, 'InternalError', `internal error: ${String(err)}`);
        else res.destroy();
      };
      try {
        if (path === '/mutate') {
          handleMutate(req, res).catch(done);
        } else if (path === '/healthz' || path === '/livez') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        } else if (path === '/readyz') {
          const ok = o.ready?.() ?? true;
          res
            .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
            .end(ok ? 'ok' : 'policies not listed yet\n');
        } else {
          sendStatus(
            res,
            404,
            'NotFound',
            `no such path ${JSON.stringify(path)} (use /mutate, /healthz, /readyz)`,
          );
        }
      } catch (err) {
        done(err);
      }
    },
  );
  // A broken TLS handshake or a client that vanishes must not take the server down.
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug({ err: err.message, code: err.code }, 'client error');
    const status =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(bind.port, bind.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err: err.message }, 'webhook server error'));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : bind.port;
  log.info({ port, ...describeCert(current.cert) }, 'webhook serving');

  let lastError = '';
  const reloadCertificates = async (): Promise<boolean> => {
    let next: Pair;
    try {
      next = await readPair(o.tls);
    } catch (err) {
      const msg = (err as Error).message;
      stats.certReloadErrors++;
      if (msg !== lastError) log.warn({ err: msg }, 'certificate reload failed; keeping the current pair');
      lastError = msg;
      return false;
    }
    lastError = '';
    if (sameBytes(next, current)) return false;
    server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
    current = next;
    stats.certReloads++;
    log.info(describeCert(next.cert), 'serving certificate reloaded');
    return true;
  };

  const interval = o.reloadIntervalMs ?? DEFAULT_RELOAD_MS;
  let reloading = false;
  const timer =
    interval > 0
      ? setInterval(() => {
          if (reloading) return;
          reloading = true;
          void reloadCertificates().finally(() => {
            reloading = false;
          });
        }, interval)
      : undefined;
  timer?.unref();

  return {
    server,
    port,
    stats,
    reloadCertificates,
    async stop() {
      if (timer) clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A self-signed serving pair for development, made by the openssl command line in a new temporary
 * directory: CN kttl-webhook, SANs localhost, 127.0.0.1, ::1, this host's name and `extraSans`
 * (`DNS:name` or `IP:addr`). The certificate is its own CA: give it to `kttl webhook config
 * --ca-bundle-file`.
 */
export async function selfSignedPair(extraSans: readonly string[] = []): Promise<TlsFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'kttl-webhook-'));
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const sans = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1', `DNS:${hostname()}`, ...extraSans];
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        '365',
        '-subj',
        '/CN=kttl-webhook',
        '-addext',
        `subjectAltName=${[...new Set(sans)].join(',')}`,
        '-addext',
        'extendedKeyUsage=serverAuth',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer; message: string };
    if (e.code === 'ENOENT') {
      throw new Error(
        'no --tls-cert-file/--tls-private-key-file given and the openssl command is not installed to make a self-signed pair',
      );
    }
    throw new Error(`openssl could not make a self-signed pair: ${e.stderr?.toString().trim() || e.message}`);
  }
  // Same checks as for files given by flag.
  checkPair(readFileSync(certFile), readFileSync(keyFile), { certFile, keyFile });
  return { certFile, keyFile };
}
