// Outbound notifications (docs/operations.md "Safety rails"): one bounded queue per sink
// (`--notify-url`), drained by one sender that batches what is waiting, signs it and retries with
// back-off. notify() only enqueues: a deletion never waits for a receiver, and a receiver that is
// down costs queued notifications (dropped and counted when the queue is full), never a deletion.
import { createHmac, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { Clock } from '../clock.ts';
import type { NotificationDrop, SafetyMetrics } from '../controller/safety-metrics.ts';
import { type Envelope, type NotifyFormat, render } from './format.ts';
import type { Notification, Notifier } from './types.ts';

/** The header with the HMAC-SHA256 of the body (hex), as `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'x-kttl-signature-256';

export interface NotifierOptions {
  urls: readonly string[];
  format: NotifyFormat;
  /** CloudEvents `source`, e.g. `kttl/<cluster-name>`. */
  source: string;
  /** PEM bundle to trust (else the system's). */
  ca?: string;
  /** Files read before every send (a rotated Secret is picked up): a bearer token, an HMAC key. */
  tokenFile?: string;
  hmacKeyFile?: string;
  clock: Clock;
  logger: Logger;
  metrics: SafetyMetrics;
  /** Per sink (default 10,000). */
  queueSize?: number;
  /** Notifications per request (default 100). */
  batchMax?: number;
  /** How long the first queued notification waits for others to join its batch (default 1 s). */
  batchDelayMs?: number;
  /** Sends of one batch before it is dropped (default 8: ~1 minute of back-off). */
  maxAttempts?: number;
  /** First back-off; doubles up to maxBackoffMs, jittered ×[0.5, 1.5] (default 500 ms, 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
}

export interface RunningNotifier extends Notifier {
  /** For tests and shutdown: resolves when every queue is empty and no send is in flight (or after timeoutMs). */
  drain(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export { notifyUrlError } from './url.ts';

interface Sink {
  label: string;
  url: string;
  queue: Envelope[];
  sending: boolean;
  wake?: () => void;
}

export function startNotifier(o: NotifierOptions): RunningNotifier {
  const queueSize = o.queueSize ?? 10_000;
  const batchMax = o.batchMax ?? 100;
  const batchDelayMs = o.batchDelayMs ?? 1000;
  const maxAttempts = o.maxAttempts ?? 8;
  const backoffMs = o.backoffMs ?? 500;
  const maxBackoffMs = o.maxBackoffMs ?? 30_000;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const m = o.metrics;
  const dispatcher = new Agent({ connect: o.ca ? { ca: o.ca } : {}, keepAliveTimeout: 30_000 });
  let stopped = false;
  const sinks: Sink[] = o.urls.map((url, i) => ({ label: String(i), url, queue: [], sending: false }));
  for (const s of sinks) m.notificationQueue.set({ sink: s.label }, 0);
  const sleeps = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        sleeps.delete(done);
        o.clock.clearTimer(t);
        resolve();
      };
      const t = o.clock.setTimer(done, ms);
      sleeps.add(done);
    });
  const drop = (s: Sink, n: number, reason: NotificationDrop) =>
    m.notificationsDropped.inc({ sink: s.label, reason }, n);

  const headers = async (body: string, contentType: string): Promise<Record<string, string>> => {
    const h: Record<string, string> = { 'content-type': contentType, 'user-agent': 'kttl' };
    if (o.tokenFile) h.authorization = `Bearer ${(await readFile(o.tokenFile, 'utf8')).trim()}`;
    if (o.hmacKeyFile) {
      const key = (await readFile(o.hmacKeyFile, 'utf8')).trim();
      h[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
    }
    return h;
  };

  /** One request; 'retry' for no answer, 408, 429 and 5xx; 'rejected' for other non-2xx. */
  const send = async (s: Sink, batch: Envelope[]): Promise<'ok' | 'retry' | 'rejected'> => {
    const { body, contentType } = render(o.format, o.source, batch);
    try {
      const res = await request(s.url, {
        method: 'POST',
        body,
        headers: await headers(body, contentType),
        dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) return 'ok';
      o.logger.warn({ sink: s.label, code: res.statusCode }, 'notification receiver refused a batch');
      return res.statusCode === 408 || res.statusCode === 429 || res.statusCode >= 500 ? 'retry' : 'rejected';
    } catch (err) {
      o.logger.warn({ sink: s.label, err: String((err as Error)?.cause ?? err) }, 'notification not sent');
      return 'retry';
    }
  };

  const run = async (s: Sink): Promise<void> => {
    s.sending = true;
    try {
      while (!stopped && s.queue.length > 0) {
        if (s.queue.length < batchMax) await sleep(batchDelayMs);
        const batch = s.queue.splice(0, batchMax);
        m.notificationQueue.set({ sink: s.label }, s.queue.length);
        let result: 'ok' | 'retry' | 'rejected' = 'retry';
        for (let attempt = 1; attempt <= maxAttempts; attempt++) {
          result = await send(s, batch);
          if (result !== 'retry' || stopped) break;
          if (attempt === maxAttempts) break;
          m.notificationRetries.inc({ sink: s.label });
          const base = Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1));
          await sleep(base * (0.5 + Math.random()));
        }
        if (result === 'ok') m.notificationsSent.inc({ sink: s.label }, batch.length);
        else drop(s, batch.length, result === 'rejected' ? 'rejected' : 'retries-exhausted');
      }
    } finally {
      s.sending = false;
      for (const w of idle.splice(0)) w();
    }
  };
  const idle: Array<() => void> = [];

  return {
    notify(n: Notification): void {
      if (stopped) return;
      const e: Envelope = {
        notification: n,
        id: randomUUID(),
        time: n.time ?? new Date(o.clock.now()).toISOString(),
      };
      for (const s of sinks) {
        if (s.queue.length >= queueSize) {
          drop(s, 1, 'queue-full');
          continue;
        }
        s.queue.push(e);
        m.notificationQueue.set({ sink: s.label }, s.queue.length);
        if (!s.sending) void run(s);
      }
    },
    async drain(waitMs = 30_000): Promise<void> {
      const deadline = Date.now() + waitMs;
      while (sinks.some((s) => s.sending || s.queue.length > 0) && Date.now() < deadline)
        await new Promise<void>((r) => {
          idle.push(r);
          setTimeout(r, 100);
        });
    },
    async stop(): Promise<void> {
      stopped = true;
      for (const w of [...sleeps]) w();
      // A send in flight gets a moment; a receiver that does not answer must not hold the shutdown.
      await this.drain(2000);
      await dispatcher.destroy().catch(() => undefined);
    },
  };
}
