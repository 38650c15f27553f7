// Outbound notifications on the real control plane (docs/operations.md "Safety rails"): kttl run
// with --notify-url to a test-made HTTPS receiver on loopback (its certificate from
// test/testbed/certs.ts, trusted through --notify-ca-file) sends CloudEvents for notices, brake trips,
// deletions and invalid TTLs, with a bearer token and an HMAC-SHA256 signature read from files;
// a receiver answering 500 gets the same events again (back-off); a receiver that is down delays
// notifications, never deletions, and gets them when it is back.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { type CloudEvent, HTTP } from 'cloudevents';
import { parseDeletionLimit } from '../../src/rules/safety.ts';
import { issueServingCert, makePki, type Pki } from '../testbed/certs.ts';
import { type InProcess, metricValue, runOptions, startInProcess } from '../testbed/controller.ts';
import { createFinishedJobs } from '../testbed/finished-jobs.ts';
import { KTTL_NAMESPACE } from '../testbed/identities.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { type Clients, clientsFor, newNamespace, sleep, useTestbed, waitFor } from '../testbed/use.ts';

interface Received {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  events: CloudEvent<unknown>[];
}

/** An HTTPS receiver on loopback that answers `failNext` requests with 500, then 200. */
class Receiver {
  readonly got: Received[] = [];
  failNext = 0;
  #server: Server | undefined;
  port = 0;
  readonly #tls: { cert: string; key: string };

  constructor(tls: { cert: string; key: string }) {
    this.#tls = tls;
  }

  async start(port = 0): Promise<void> {
    const server = createServer(
      { cert: readFileSync(this.#tls.cert), key: readFileSync(this.#tls.key) },
      (req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => {
          body += d.toString();
        });
        req.on('end', () => {
          const status = this.failNext > 0 ? 500 : 200;
          if (this.failNext > 0) this.failNext--;
          const parsed = HTTP.toEvent({ headers: req.headers, body });
          const events = (Array.isArray(parsed) ? parsed : [parsed]) as CloudEvent<unknown>[];
          this.got.push({ status, headers: req.headers, body, events });
          res.writeHead(status).end();
        });
      },
    );
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }

  /** Events answered 200, by type. */
  delivered(type?: string): CloudEvent<unknown>[] {
    return this.got
      .filter((g) => g.status === 200)
      .flatMap((g) => g.events)
      .filter((e) => type === undefined || e.type === type);
  }
}

describe('outbound notifications', () => {
  let tb: Testbed;
  let c: Clients;
  let pki: Pki;
  let dir: string;
  let receiver: Receiver;
  let running: InProcess | undefined;
  const TOKEN = 's3cret-token';
  const KEY = 'hmac-key-for-tests';

  before(async () => {
    tb = await useTestbed();
    c = clientsFor(tb);
    dir = mkdtempSync(join(tmpdir(), 'kttl-notify-'));
    pki = makePki(dir);
    const tls = issueServingCert(dir, pki, 'receiver', 'receiver', 'IP:127.0.0.1');
    receiver = new Receiver(tls);
    await receiver.start();
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'hmac'), KEY);
  });
  // A failed test must not leave its controller running (it would keep the file from ending).
  afterEach(async () => {
    const r = running;
    running = undefined;
    await r?.stop();
  });
  after(async () => {
    await receiver.stop();
  });

  test('CloudEvents for a notice, a deletion, an invalid TTL and a brake trip; signed; the same events again after 500s', async () => {
    const ns = await newNamespace(c, 'notify');
    const limit = parseDeletionLimit('3/10m');
    assert.ok(limit.ok);
    running = await startInProcess(
      tb,
      runOptions([ns], {
        // The Lease the brake's Event names (the controller's Role may read only kttl/kttl).
        leaderElectNamespace: KTTL_NAMESPACE,
        safety: {
          maxDeletions: limit.value,
          noticeBeforeSeconds: 3,
          notify: {
            urls: [`https://127.0.0.1:${receiver.port}/hook`],
            format: 'cloudevents',
            caFile: pki.caCert,
            tokenFile: join(dir, 'token'),
            hmacKeyFile: join(dir, 'hmac'),
            batchMax: 100,
          },
        },
      }),
    );
    const { registry } = running;
    receiver.failNext = 2;
    const finishedAtMs = Math.floor(Date.now() / 1000) * 1000;
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 1,
      prefix: 'soon-',
      finishedAtMs,
      annotations: () => ({ 'kttl.dev/ttl': '7s' }),
    });
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 1,
      prefix: 'typo-',
      finishedAtMs,
      annotations: () => ({ 'kttl.dev/ttl': '7 days' }),
    });
    const deleted = await waitFor(
      'the deletion notification',
      async () => receiver.delivered('dev.kttl.object.deleted').find((e) => e.subject?.endsWith('/soon-0')),
      60_000,
      200,
    );
    assert.equal(deleted.subject, `namespaces/${ns}/jobs.batch/soon-0`);
    const raw = receiver.got.find((g) => g.status === 200 && g.events.some((e) => e.id === deleted.id))!;
    console.log(`# content-type: ${raw.headers['content-type']}\n# ${JSON.stringify(deleted.toJSON())}`);
    assert.equal(deleted.source, 'kttl/default');
    assert.equal(deleted.specversion, '1.0');
    const data = deleted.data as Record<string, unknown>;
    assert.equal(data.kind, 'Job');
    assert.equal(data.namespace, ns);
    assert.equal(data.outcome, 'succeeded');
    assert.match(String(data.rule), /^ttl 7s \(annotation kttl.dev\/ttl=7s\)$/);
    const notice = receiver
      .delivered('dev.kttl.deletion.scheduled')
      .find((e) => e.subject?.endsWith('/soon-0'));
    assert.ok(notice, 'the notice was sent');
    assert.equal((notice.data as { expireAt: string }).expireAt, new Date(finishedAtMs + 7000).toISOString());
    const invalid = await waitFor(
      'the invalid-TTL notification',
      async () => receiver.delivered('dev.kttl.ttl.invalid').find((e) => e.subject?.endsWith('/typo-0')),
      30_000,
      200,
    );
    assert.match(String((invalid.data as { message: string }).message), /7 days/);
    // Three more due at once: the fourth deletion in 10 minutes trips --max-deletions 3/10m.
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 3,
      prefix: 'burst-',
      finishedAtMs: Date.now() - 3_600_000,
      annotations: () => ({ 'kttl.dev/ttl': '1m' }),
    });
    const trip = await waitFor(
      'the brake-trip notification',
      async () => receiver.delivered('dev.kttl.brake.tripped')[0],
      30_000,
      200,
    );
    assert.equal(trip.subject, `leases/${KTTL_NAMESPACE}/kttl`);
    assert.deepEqual(
      {
        brake: (trip.data as Record<string, unknown>).brake,
        limit: (trip.data as Record<string, unknown>).limit,
      },
      { brake: '*', limit: '3/10m' },
    );

    // Every request carried the token and a signature of its exact body.
    for (const g of receiver.got) {
      assert.equal(g.headers.authorization, `Bearer ${TOKEN}`);
      assert.equal(
        g.headers['x-kttl-signature-256'],
        `sha256=${createHmac('sha256', KEY).update(g.body).digest('hex')}`,
      );
    }
    // The two 500s: the same events were sent again (by id), and counted as retries.
    const failed = receiver.got.filter((g) => g.status === 500);
    assert.equal(failed.length, 2);
    const okIds = new Set(receiver.delivered().map((e) => e.id));
    for (const e of failed.flatMap((g) => g.events)) assert.ok(okIds.has(e.id), `${e.type} ${e.id} retried`);
    assert.ok((await metricValue(registry, 'kttl_notification_retries_total')) >= 2);
    assert.equal(await metricValue(registry, 'kttl_notifications_sent_total'), receiver.delivered().length);
    await running.stop();
    running = undefined;
  });

  test('a receiver that is down: deletions go ahead at once, notifications follow when it is back', async () => {
    const ns = await newNamespace(c, 'notify-down');
    const port = receiver.port;
    await receiver.stop();
    running = await startInProcess(
      tb,
      runOptions([ns], {
        safety: {
          notify: {
            urls: [`https://127.0.0.1:${port}/hook`],
            format: 'cloudevents',
            caFile: pki.caCert,
          },
        },
      }),
    );
    const { registry } = running;
    const started = Date.now();
    await createFinishedJobs(tb, {
      namespace: ns,
      n: 5,
      prefix: 'gone-',
      finishedAtMs: Date.now() - 3_600_000,
      annotations: () => ({ 'kttl.dev/ttl': '1m' }),
    });
    await waitFor(
      'the 5 Jobs deleted',
      async () => (await metricValue(registry, 'kttl_deletions_total', { dry_run: 'false' })) === 5,
      30_000,
      100,
    );
    console.log(`# 5 deletions with the receiver down in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await waitFor(
      'a failed send',
      async () => (await metricValue(registry, 'kttl_notification_retries_total')) >= 1,
      15_000,
    );
    assert.equal(
      receiver.delivered('dev.kttl.object.deleted').filter((e) => e.subject?.includes(ns)).length,
      0,
    );
    await sleep(1000);
    await receiver.start(port);
    await waitFor(
      'the 5 deletion notifications after the receiver is back',
      async () =>
        receiver.delivered('dev.kttl.object.deleted').filter((e) => e.subject?.includes(`/${ns}/`)).length ===
        5,
      60_000,
      200,
    );
    assert.equal(await metricValue(registry, 'kttl_notifications_dropped_total'), 0);
    await running.stop();
    running = undefined;
  });
});
