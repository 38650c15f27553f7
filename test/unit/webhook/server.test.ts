// The webhook's HTTPS server in-process (src/webhook/server.ts): /mutate, /healthz, /readyz, the
// limits (body size, request timeout), JSON errors, and certificate reloading from files.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import pino from 'pino';
import { type Policy, parsePolicy } from '../../../src/policy/schema.ts';
import {
  selfSignedPair,
  startWebhookServer,
  type TlsFiles,
  type WebhookServer,
} from '../../../src/webhook/server.ts';

function policy(): Policy {
  const r = parsePolicy({
    apiVersion: 'kttl.dev/v1alpha1',
    kind: 'TTLPolicy',
    metadata: { name: 'p', namespace: 'team-a', uid: 'u1' },
    spec: { resources: [{ apiVersion: 'batch/v1', kind: 'Job' }], ttl: '1h' },
  });
  assert.ok(r.ok);
  return r.policy;
}

function review(uid = 'abc') {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: 'batch', version: 'v1', kind: 'Job' },
      namespace: 'team-a',
      operation: 'CREATE',
      object: { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: {} },
    },
  };
}

interface Res {
  status: number;
  body: string;
  fingerprint: string;
}

function call(
  port: number,
  ca: Buffer,
  path: string,
  o: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: o.method ?? (o.body === undefined ? 'GET' : 'POST'),
        ca,
        agent: false,
        headers: { 'content-type': 'application/json', ...o.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const sock = res.socket as import('node:tls').TLSSocket;
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            fingerprint: sock.getPeerCertificate?.()?.fingerprint256 ?? '',
          });
        });
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** The SHA-256 fingerprint of the certificate a new TLS connection is served. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

describe('webhook server', () => {
  let server: WebhookServer;
  let files: TlsFiles;
  let ca: Buffer;
  let ready = false;
  const logger = pino({ level: 'silent' });

  before(async () => {
    files = await selfSignedPair();
    ca = readFileSync(files.certFile);
    server = await startWebhookServer({
      bindAddress: '127.0.0.1:0',
      tls: files,
      policies: { policies: () => [policy()], namespaceLabels: () => undefined },
      ready: () => ready,
      logger,
      maxBodyBytes: 64 * 1024,
      requestTimeoutMs: 1000,
      reloadIntervalMs: 100,
    });
  });
  after(async () => {
    await server.stop();
  });

  test('POST /mutate: an AdmissionReview with the patch', async () => {
    const res = await call(server.port, ca, '/mutate', { body: JSON.stringify(review('u-1')) });
    assert.equal(res.status, 200);
    const out = JSON.parse(res.body);
    assert.equal(out.apiVersion, 'admission.k8s.io/v1');
    assert.equal(out.response.uid, 'u-1');
    assert.equal(out.response.allowed, true);
    assert.deepEqual(JSON.parse(Buffer.from(out.response.patch, 'base64').toString()), [
      { op: 'add', path: '/spec/ttlSecondsAfterFinished', value: 3600 },
    ]);
    assert.ok(server.stats.patched >= 1);
  });

  test('not JSON → 400 Status with a clear message; the server keeps serving', async () => {
    const res = await call(server.port, ca, '/mutate', { body: '{"apiVersion": ' });
    assert.equal(res.status, 400);
    const status = JSON.parse(res.body);
    assert.equal(status.kind, 'Status');
    assert.equal(status.reason, 'BadRequest');
    assert.match(status.message, /^malformed AdmissionReview: body is not JSON: /);
    const bad = await call(server.port, ca, '/mutate', {
      body: JSON.stringify({ ...review(), apiVersion: 'v1' }),
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).message, /apiVersion must be "admission\.k8s\.io\/v1"/);
    const ok = await call(server.port, ca, '/mutate', { body: JSON.stringify(review()) });
    assert.equal(ok.status, 200);
  });

  test('a body over the limit → 413, declared or streamed', async () => {
    const big = JSON.stringify({ ...review(), padding: 'x'.repeat(100 * 1024) });
    const res = await call(server.port, ca, '/mutate', { body: big });
    assert.equal(res.status, 413);
    assert.match(JSON.parse(res.body).message, /larger than 65536 bytes/);
    const chunked = await call(server.port, ca, '/mutate', {
      body: Buffer.from(big),
      headers: { 'transfer-encoding': 'chunked' },
    });
    assert.equal(chunked.status, 413);
    assert.equal((await call(server.port, ca, '/mutate', { body: JSON.stringify(review()) })).status, 200);
  });

  test('GET /mutate → 405; unknown path → 404; /healthz; /readyz follows readiness', async () => {
    assert.equal((await call(server.port, ca, '/mutate')).status, 405);
    assert.equal((await call(server.port, ca, '/nope')).status, 404);
    assert.equal((await call(server.port, ca, '/healthz')).status, 200);
    ready = false;
    assert.equal((await call(server.port, ca, '/readyz')).status, 503);
    ready = true;
    assert.equal((await call(server.port, ca, '/readyz')).status, 200);
  });

  test('a request that does not arrive within the request timeout is cut', async () => {
    const started = Date.now();
    const outcome = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: server.port, ca }, () => {
        // Headers promise a body that never comes.
        s.write(
          'POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{',
        );
      });
      let data = '';
      s.on('data', (d: Buffer) => {
        data += d.toString();
      });
      s.on('close', () => resolve(data));
      s.on('error', () => resolve(data));
    });
    const took = Date.now() - started;
    assert.ok(took < 5000, `cut after ${took} ms`);
    assert.match(outcome, /^HTTP\/1\.1 408|^$/);
  });

  test('the serving certificate is reloaded when the files change; a bad pair is ignored', async () => {
    const before = await servedFingerprint(server.port);
    assert.equal(before, fingerprintOf(files.certFile));
    // A new pair written over the files (as a Secret update does): picked up by polling.
    const next = await selfSignedPair();
    copyFileSync(next.keyFile, files.keyFile);
    copyFileSync(next.certFile, files.certFile);
    const want = fingerprintOf(next.certFile);
    const deadline = Date.now() + 5000;
    while ((await servedFingerprint(server.port)) !== want) {
      assert.ok(Date.now() < deadline, 'new certificate not served within 5 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(server.stats.certReloads >= 1);
    // A key that does not match (half-way through an update): kept the current pair.
    const other = await selfSignedPair();
    const errorsBefore = server.stats.certReloadErrors;
    copyFileSync(other.certFile, files.certFile);
    assert.equal(await server.reloadCertificates(), false);
    assert.ok(server.stats.certReloadErrors > errorsBefore);
    assert.equal(await servedFingerprint(server.port), want);
    // Garbage: kept too.
    writeFileSync(files.certFile, 'not a certificate');
    assert.equal(await server.reloadCertificates(), false);
    assert.equal(await servedFingerprint(server.port), want);
    // Back to a good pair; clients that trust it connect.
    copyFileSync(next.certFile, files.certFile);
    const res = await call(server.port, readFileSync(next.certFile), '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.fingerprint, want);
  });
});

describe('webhook server: start-up errors', () => {
  test('a key that does not match the certificate is refused at start, with a clear message', async () => {
    const a = await selfSignedPair();
    const b = await selfSignedPair();
    await assert.rejects(
      startWebhookServer({
        bindAddress: '127.0.0.1:0',
        tls: { certFile: a.certFile, keyFile: b.keyFile },
        policies: { policies: () => [], namespaceLabels: () => undefined },
        logger: pino({ level: 'silent' }),
      }),
      /not the private key of/,
    );
  });

  test('a bind address without a port is refused', async () => {
    const a = await selfSignedPair();
    await assert.rejects(
      startWebhookServer({
        bindAddress: '0',
        tls: a,
        policies: { policies: () => [], namespaceLabels: () => undefined },
        logger: pino({ level: 'silent' }),
      }),
      /needs host:port/,
    );
  });
});
