import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { HTTP } from 'cloudevents';
import pino from 'pino';
import { Registry } from 'prom-client';
import { systemClock } from '../../../src/clock.ts';
import { createSafetyMetrics } from '../../../src/controller/safety-metrics.ts';
import { render } from '../../../src/notify/format.ts';
import { notifyUrlError, startNotifier } from '../../../src/notify/notifier.ts';
import type { Notification } from '../../../src/notify/types.ts';

const deleted = (name: string): Notification => ({
  type: 'object.deleted',
  subject: `namespaces/a/jobs.batch/${name}`,
  data: { kind: 'Job', namespace: 'a', name, rule: 'ttl 1h (annotation kttl.dev/ttl=1h)' },
});

describe('notification bodies', () => {
  test('one CloudEvent: structured mode; several: batched mode, each a structured event', () => {
    const one = render('cloudevents', 'kttl/c1', [
      { notification: deleted('x'), id: 'i1', time: '2026-12-02T10:00:00.000Z' },
    ]);
    assert.match(one.contentType, /^application\/cloudevents\+json/);
    const e = HTTP.toEvent({ headers: { 'content-type': one.contentType }, body: one.body });
    assert.ok(!Array.isArray(e));
    assert.equal(e.type, 'dev.kttl.object.deleted');
    assert.equal(e.source, 'kttl/c1');
    assert.equal(e.id, 'i1');
    const two = render('cloudevents', 'kttl/c1', [
      { notification: deleted('x'), id: 'i1', time: '2026-12-02T10:00:00.000Z' },
      { notification: deleted('y'), id: 'i2', time: '2026-12-02T10:00:01.000Z' },
    ]);
    assert.match(two.contentType, /^application\/cloudevents-batch\+json/);
    const es = HTTP.toEvent({ headers: { 'content-type': two.contentType }, body: two.body });
    assert.ok(Array.isArray(es));
    assert.deepEqual(
      es.map((x) => x.subject),
      ['namespaces/a/jobs.batch/x', 'namespaces/a/jobs.batch/y'],
    );
  });

  test('slack: one line per notification, mrkdwn escaped', () => {
    const b = render('slack', 'kttl/c1', [
      { notification: deleted('x'), id: 'i1', time: 't' },
      {
        notification: {
          type: 'brake.tripped',
          subject: 'TTLPolicy/a/p',
          data: { message: 'paused <all> & more' },
        },
        id: 'i2',
        time: 't',
      },
    ]);
    assert.equal(b.contentType, 'application/json');
    assert.deepEqual(JSON.parse(b.body), {
      text: '• *kttl deleted* Job a/x: ttl 1h (annotation kttl.dev/ttl=1h)\n• *kttl DELETIONS PAUSED* TTLPolicy/a/p: paused &lt;all&gt; &amp; more',
    });
  });

  test('https only', () => {
    assert.equal(notifyUrlError('https://hooks.example/x'), null);
    assert.match(notifyUrlError('http://hooks.example/x')!, /https:\/\/ only/);
    assert.match(notifyUrlError('not a url')!, /not a URL/);
  });
});

describe('the queue', () => {
  test('bounded: past queueSize notifications are dropped and counted; notify never blocks', async () => {
    // A loopback port that accepts and never answers: the first batch stays in flight.
    const server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const registry = new Registry();
    const metrics = createSafetyMetrics(registry);
    const n = startNotifier({
      urls: [`https://127.0.0.1:${port}/`],
      format: 'cloudevents',
      source: 'kttl/t',
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      metrics,
      queueSize: 3,
      batchDelayMs: 10_000,
      timeoutMs: 60_000,
    });
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) n.notify(deleted(`j${i}`));
    assert.ok(performance.now() - t0 < 50, 'notify does not wait');
    const dropped = await registry.getSingleMetric('kttl_notifications_dropped_total')!.get();
    assert.deepEqual(
      dropped.values.map((v) => [v.labels.reason, v.value]),
      [['queue-full', 2]],
    );
    const queue = await registry.getSingleMetric('kttl_notification_queue')!.get();
    assert.equal(queue.values[0]!.value, 3);
    await n.stop();
    server.close();
  });
});
