// The leadership fence (src/kube/leader-election.ts) on a fake monotonic clock, against an
// in-memory Lease endpoint with optimistic concurrency; and the fence in KubeHttp / the deleter,
// against a loopback HTTP server behind the real token bucket.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setImmediate as flush } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import fc from 'fast-check';
import pino from 'pino';
import { type Clock, FakeClock } from '../../../src/clock.ts';
import { deleteWithPreconditions } from '../../../src/kube/deleter.ts';
import { ApiError, TransportError } from '../../../src/kube/errors.ts';
import { FencedError, KubeHttp, type RequestOptions } from '../../../src/kube/http.ts';
import { LeaderElector } from '../../../src/kube/leader-election.ts';
import { TokenBucket } from '../../../src/kube/token-bucket.ts';

const LEASE_MS = 15_000;
const RENEW_MS = 10_000;
const RETRY_MS = 2_000;

interface Spec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  renewTime?: string;
  leaseTransitions?: number;
}
interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: Spec;
}

/** How the endpoint answers one request: after `delayMs`, or never (`hang`: the caller's timeout ends it). */
type Answer = { outcome: 'ok' | 'fail' | 'hang'; delayMs: number };

interface Sent {
  method: string;
  atMono: number;
  timeoutMs: number;
}

/**
 * A Lease endpoint: a write is applied when it is SENT (it reaches the server at once, the answer
 * may come late or never), a PUT with a stale resourceVersion is refused with 409.
 */
class LeaseApi {
  lease: Lease | undefined;
  #rv = 0;
  readonly sent: Sent[] = [];
  /** Monotonic ms of the last write that named `identity`, as the server applied it. */
  lastWriteBy = new Map<string, number>();
  answer: (method: string) => Answer = () => ({ outcome: 'ok', delayMs: 0 });
  readonly clock: FakeClock;
  readonly mono: () => number;

  constructor(clock: FakeClock, mono: () => number) {
    this.clock = clock;
    this.mono = mono;
  }

  /** Another replica writes the record (takes the lease). */
  write(spec: Spec): void {
    this.lease = {
      metadata: { name: 'kttl', namespace: 'kttl', resourceVersion: String(++this.#rv) },
      spec,
    };
    if (spec.holderIdentity) this.lastWriteBy.set(spec.holderIdentity, this.mono());
  }

  request = <T>(_verb: string, method: string, path: string, o: RequestOptions = {}): Promise<T> => {
    this.sent.push({ method, atMono: this.mono(), timeoutMs: o.timeoutMs ?? Infinity });
    const { outcome, delayMs } = this.answer(method);
    let result: () => T;
    if (method === 'GET') {
      const copy = this.lease && structuredClone(this.lease);
      result = () => {
        if (!copy) throw new ApiError('get', path, 404, 'NotFound', 'not found');
        return copy as T;
      };
    } else {
      const body = o.body as Lease;
      const conflict =
        method === 'PUT'
          ? body.metadata.resourceVersion !== this.lease?.metadata.resourceVersion
          : this.lease !== undefined;
      if (!conflict && outcome !== 'fail') this.write(body.spec);
      const stored = this.lease && structuredClone(this.lease);
      result = () => {
        if (conflict) throw new ApiError('update', path, 409, 'Conflict', 'conflict');
        return stored as T;
      };
    }
    return new Promise<T>((resolve, reject) => {
      const timeout =
        o.timeoutMs === undefined
          ? undefined
          : this.clock.setTimer(() => reject(new TransportError('x', path, 'timeout')), o.timeoutMs);
      if (outcome === 'hang') return;
      const settle = () => {
        if (timeout) this.clock.clearTimer(timeout);
        if (outcome === 'fail') reject(new TransportError('x', path, 'refused'));
        else {
          try {
            resolve(result());
          } catch (err) {
            reject(err);
          }
        }
      };
      if (delayMs === 0) settle();
      else this.clock.setTimer(settle, delayMs);
    });
  };
}

/** Fake time: timers follow `clock`; the monotonic clock also jumps by `paused` (a SIGSTOP: no timer ran). */
function setup(identity = 'me') {
  const clock = new FakeClock(0);
  let paused = 0;
  const mono = () => clock.now() + paused;
  const api = new LeaseApi(clock, mono);
  const events: string[] = [];
  // The wall clock can be stepped on its own (NTP, an operator); timers and monotonic time do not move.
  let wallStep = 0;
  const wall: Clock = {
    now: () => clock.now() + wallStep,
    setTimer: (fn, ms) => clock.setTimer(fn, ms),
    clearTimer: (h) => clock.clearTimer(h),
  };
  const elector = new LeaderElector({
    http: api,
    clock: wall,
    monotonic: mono,
    logger: pino({ level: 'silent' }),
    namespace: 'kttl',
    name: 'kttl',
    identity,
    leaseDurationMs: LEASE_MS,
    renewDeadlineMs: RENEW_MS,
    retryPeriodMs: RETRY_MS,
    onStartedLeading: () => events.push(`started@${mono()}`),
    onStoppedLeading: () => events.push(`stopped@${mono()}`),
  });
  const step = async (ms: number, by = 10) => {
    await flush();
    for (let t = 0; t < ms; t += by) {
      clock.advance(Math.min(by, ms - t));
      await flush();
    }
  };
  /** Stops (its release PUT answered at once). */
  const stop = async () => {
    api.answer = () => ({ outcome: 'ok', delayMs: 0 });
    await elector.stop();
  };
  return {
    clock,
    api,
    elector,
    events,
    mono,
    step,
    stop,
    pause: (ms: number) => {
      paused += ms;
    },
    stepWallClock: (ms: number) => {
      wallStep += ms;
    },
  };
}

const lastWrite = (api: LeaseApi, method = 'PUT') => api.sent.filter((s) => s.method === method).at(-1)!;

describe('LeaderElector: the fence', () => {
  test('leads only until renewDeadline after the last successful renew was sent, even if no renew attempt ran', async () => {
    const t = setup();
    void t.elector.run();
    await t.step(10);
    assert.ok(t.elector.isLeader(), 'acquired (lease created)');
    const sent = lastWrite(t.api, 'POST').atMono;
    // Paused: the monotonic clock moves, no timer runs, no renew is attempted.
    t.pause(RENEW_MS - 1 - (t.mono() - sent));
    assert.ok(t.elector.isLeader(), 'still within the window');
    t.pause(1);
    assert.equal(t.elector.isLeader(), false, 'renewDeadline since the send: no longer leading');
    t.pause(LEASE_MS);
    assert.equal(t.elector.isLeader(), false, 'past the lease duration: no longer leading');
    await t.stop();
  });

  test('measured from when the renewing PUT was sent, not from its answer', async () => {
    const t = setup();
    t.api.write({ holderIdentity: 'me', leaseDurationSeconds: 15, leaseTransitions: 3 });
    // The acquiring PUT is answered 4 s late; nothing after it is ever answered.
    let puts = 0;
    t.api.answer = (m) =>
      m === 'PUT' && ++puts === 1
        ? { outcome: 'ok', delayMs: 4000 }
        : m === 'GET' && puts === 0
          ? { outcome: 'ok', delayMs: 0 }
          : { outcome: 'hang', delayMs: 0 };
    void t.elector.run();
    await t.step(4100);
    assert.ok(t.elector.isLeader(), 'leading once the answer came');
    const sent = lastWrite(t.api).atMono;
    assert.equal(sent, 0);
    await t.step(RENEW_MS - 1 - (t.mono() - sent), 1);
    assert.ok(t.elector.isLeader());
    await t.step(1, 1);
    assert.equal(t.elector.isLeader(), false, 'renewDeadline after the send, although answered 4 s later');
    await t.stop();
  });

  test('GET and PUT of the renew rounds share one deadline; leadership is given up by it', async () => {
    const t = setup();
    void t.elector.run();
    await t.step(10);
    const acquired = lastWrite(t.api, 'POST').atMono;
    // From now on the GET answers after 3 s and the PUT never does.
    t.api.answer = (m) => (m === 'GET' ? { outcome: 'ok', delayMs: 3000 } : { outcome: 'hang', delayMs: 0 });
    await t.step(LEASE_MS + 5000, 50);
    const stopped = t.events.find((e) => e.startsWith('stopped@'));
    assert.ok(stopped, `gave up: ${t.events.join(', ')}`);
    const stoppedAt = Number(stopped.split('@')[1]);
    assert.ok(
      stoppedAt <= acquired + RENEW_MS + 50,
      `gave up at ${stoppedAt}, deadline ${acquired + RENEW_MS}`,
    );
    for (const s of t.api.sent.filter((x) => x.atMono > acquired))
      assert.ok(
        s.atMono + s.timeoutMs <= acquired + RENEW_MS,
        `${s.method} sent at ${s.atMono} with timeout ${s.timeoutMs} outlives the deadline`,
      );
    assert.ok(stoppedAt < acquired + LEASE_MS, 'before the lease can expire on another replica');
  });

  test('a leader paused past its lease does not lead after resume, and gives up without sending', async () => {
    const t = setup();
    void t.elector.run();
    await t.step(RETRY_MS * 3);
    assert.ok(t.elector.isLeader());
    const before = t.api.sent.length;
    t.pause(LEASE_MS + 5000);
    assert.equal(t.elector.isLeader(), false, 'false at once on resume, before any timer ran');
    // (Here timers follow the fake clock, which the pause did not move: the sleeping renew loop wakes
    // up to a retry period later; a real SIGCONT finds its timer already due.)
    await t.step(RETRY_MS + 100);
    assert.equal(t.events.at(-1)?.split('@')[0], 'stopped');
    assert.equal(t.api.sent.length, before, 'no lease request past the deadline');
  });

  test('a follower whose acquiring PUT is answered after a pause leads only once it has re-validated the lease', async () => {
    const t = setup();
    t.api.write({ holderIdentity: '', leaseDurationSeconds: 1 });
    let puts = 0;
    t.api.answer = (m) => ({ outcome: 'ok', delayMs: m === 'PUT' && ++puts === 1 ? 500 : 0 });
    void t.elector.run();
    await t.step(10);
    t.pause(LEASE_MS + 1000); // SIGSTOP while the acquiring PUT is in flight
    await t.step(600);
    assert.equal(t.elector.isLeader(), false, 'the late answer does not make us lead');
    assert.deepEqual(t.events, [], 'onStartedLeading not called on a stale acquisition');
    await t.step(RETRY_MS * 2);
    assert.ok(t.elector.isLeader(), 'a fresh round renewed our own lease');
    assert.equal(t.events.length, 1);
    assert.equal(t.api.lease?.spec.holderIdentity, 'me');
    assert.equal(t.api.lease?.spec.leaseTransitions, 1, 'renewed, not taken a second time');
    await t.stop();
  });

  test("another holder's lease is judged on the monotonic clock from when we saw its record change (a wall-clock step changes nothing)", async () => {
    const t = setup();
    t.api.write({ holderIdentity: 'other', leaseDurationSeconds: 15 });
    void t.elector.run();
    await t.step(1000, 50);
    t.stepWallClock(3600_000); // a wall-clock step does not age the record
    await t.step(LEASE_MS - 1500, 50);
    assert.equal(t.elector.isLeader(), false, 'the record is younger than its duration');
    await t.step(RETRY_MS * 2, 50);
    assert.ok(t.elector.isLeader(), 'unchanged for longer than its duration: taken over');
    await t.stop();
  });

  test('property: whenever isLeader() is true, no other replica can have taken the lease', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            outcome: fc.constantFrom('ok', 'ok', 'ok', 'fail', 'hang'),
            delayMs: fc.integer({ min: 0, max: 7000 }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        fc.array(
          fc.record({ atStep: fc.integer({ min: 0, max: 400 }), ms: fc.integer({ min: 0, max: 30_000 }) }),
          {
            maxLength: 3,
          },
        ),
        async (answers, pauses) => {
          const t = setup();
          let i = 0;
          t.api.answer = () => answers[i++ % answers.length]!;
          void t.elector.run();
          for (let s = 0; s < 400; s++) {
            for (const p of pauses) if (p.atStep === s) t.pause(p.ms);
            // A rival takes over the moment our last write is a lease duration old (its best case:
            // it saw the write the instant it was applied).
            const ours = t.api.lastWriteBy.get('me');
            if (
              ours !== undefined &&
              t.api.lease?.spec.holderIdentity === 'me' &&
              t.mono() >= ours + LEASE_MS
            )
              t.api.write({ holderIdentity: 'rival', leaseDurationSeconds: 3600 });
            if (t.elector.isLeader()) {
              assert.equal(t.api.lease?.spec.holderIdentity, 'me', 'leading while a rival holds the lease');
              assert.ok(t.mono() < ours! + RENEW_MS, 'leading later than renewDeadline after our last write');
            }
            await t.step(100, 50);
          }
          await t.stop();
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('the fence on a request', () => {
  let server: Server;
  const hits: string[] = [];
  let kc: KubeConfig;
  before(async () => {
    server = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          skipTLSVerify: true,
        },
      ],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('checked after the QPS wait: leadership lost while waiting for a token sends nothing', async () => {
    const clock = new FakeClock();
    const http = new KubeHttp({
      kubeConfig: kc,
      clock,
      limiter: new TokenBucket({ qps: 1, burst: 1, clock }),
    });
    hits.length = 0;
    let leading = true;
    await http.request('get', 'GET', '/api/v1/namespaces', { fence: () => leading });
    assert.equal(hits.length, 1, 'sent while leading');
    const waiting = http.request('get', 'GET', '/api/v1/namespaces', { fence: () => leading });
    await flush();
    leading = false; // the lease lapses while the request waits for its token
    clock.advance(1000);
    await assert.rejects(waiting, FencedError);
    assert.equal(hits.length, 1, 'nothing sent after leadership was lost');
    await http.close();
  });

  test('deleteWithPreconditions sends no DELETE when the fence does not hold', async () => {
    const clock = new FakeClock();
    const http = new KubeHttp({ kubeConfig: kc, clock });
    hits.length = 0;
    const job = { namespace: 'ns', name: 'j', uid: 'u1', resourceVersion: '7' };
    const jobs = { group: 'batch', version: 'v1', kind: 'Job', plural: 'jobs', namespaced: true } as const;
    await assert.rejects(
      deleteWithPreconditions(http, jobs, job, 'Background', () => false),
      FencedError,
    );
    assert.deepEqual(hits, []);
    assert.equal(await deleteWithPreconditions(http, jobs, job, 'Background', () => true), 'deleted');
    assert.deepEqual(hits, ['DELETE /apis/batch/v1/namespaces/ns/jobs/j']);
    await http.close();
  });
});
