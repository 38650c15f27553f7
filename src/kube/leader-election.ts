// Leader election on a coordination.k8s.io/v1 Lease, ported from client-go's leaderelection:
// a lease is judged by the LOCAL time at which we last saw its record change (never by comparing
// its renewTime with our clock, which would make it skew-sensitive); updates are optimistic (the
// resourceVersion we read); a leader that cannot renew within the renew deadline stops leading.
//
// The fence: we lead only until renewDeadline after the last successful renew was SENT, on the
// local monotonic clock. Another replica starts counting our lease no earlier than that send, so
// it cannot take over before leaseDuration > renewDeadline has passed; isLeader() computes this
// from the clock (not from a flag a timer clears), so a process paused past its lease, or a DELETE
// that waited for a QPS token, sees false at once. GET and PUT of a round share one deadline.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { isApiError } from './errors.ts';
import type { KubeHttp } from './http.ts';
import { collectionPath, LEASES, objectPath } from './resources.ts';

export interface LeaderElectionOptions {
  http: Pick<KubeHttp, 'request'>;
  /** Timers, and the wall-clock times written into the record. */
  clock: Clock;
  /** Local monotonic ms (default performance.now()): all lease judgements; a wall-clock step changes none. */
  monotonic?: () => number;
  logger: Logger;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStartedLeading: () => void;
  /** Called once when leadership is lost (not on a graceful release). */
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  readonly #o: LeaderElectionOptions;
  readonly #mono: () => number;
  #observedRecord = '';
  /** Monotonic ms at which we last saw the record change. */
  #observedAt = 0;
  #lease: Lease | undefined;
  #leader = false;
  /** Monotonic ms until which our last successful write lets us lead (see the header). */
  #validUntil = -Infinity;
  #stopped = false;
  #lastLeader = '';
  #wake: (() => void) | undefined;

  constructor(o: LeaderElectionOptions) {
    this.#o = o;
    this.#mono = o.monotonic ?? (() => performance.now());
  }

  /** The fence: true only while our lease is valid on the monotonic clock, checked now. */
  isLeader(): boolean {
    return this.#leader && this.#mono() < this.#validUntil;
  }

  /** Acquires, then renews until leadership is lost or stop() is called. */
  async run(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, logger } = this.#o;
    for (;;) {
      while (!this.#stopped && !(await this.#tryAcquireOrRenew(this.#mono() + this.#window()))) {
        await this.#sleep(retryPeriodMs * (1 + Math.random() * 0.2));
      }
      if (this.#stopped) return;
      // Acquired, but the answer came after our window closed (paused, slow): not leading yet;
      // the next round re-validates the lease (it names us, so it is renewed, not taken).
      if (this.#mono() < this.#validUntil) break;
      await this.#sleep(retryPeriodMs);
    }
    this.#leader = true;
    logger.info(
      { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity },
      'became leader',
    );
    this.#o.onStartedLeading();
    while (!this.#stopped) {
      // Wake by the deadline at the latest, so leadership is given up on time.
      await this.#sleep(Math.min(retryPeriodMs, Math.max(0, this.#validUntil - this.#mono())));
      if (this.#stopped) break;
      // One deadline for the whole series of attempts: the window of the last successful renew.
      if (this.#mono() < this.#validUntil && (await this.#tryAcquireOrRenew(this.#validUntil))) continue;
      if (this.#mono() >= this.#validUntil) {
        this.#leader = false;
        logger.error(
          { renewDeadlineMs },
          'failed to renew the leader lease within the renew deadline; stopping',
        );
        this.#o.onStoppedLeading();
        return;
      }
    }
  }

  /** How long a successful write lets us lead: renewDeadline, never more than the lease's duration. */
  #window(): number {
    const { renewDeadlineMs, leaseDurationMs } = this.#o;
    return Math.min(renewDeadlineMs, leaseDurationMs, this.#recordDurationMs());
  }

  /** The duration others read from the record (whole seconds: 1.4 s is written as 1 s). */
  #recordDurationMs(): number {
    return Math.max(1, Math.round(this.#o.leaseDurationMs / 1000)) * 1000;
  }

  /** Ms left before the deadline, for a request's timeout; 0 when it has passed (do not send). */
  #left(deadline: number): number {
    return Math.max(0, Math.floor(deadline - this.#mono()));
  }

  /** Stops; a leader releases the lease so another replica takes over without waiting for expiry. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    if (!this.#leader || !this.#lease) return;
    this.#leader = false;
    const lease = this.#lease;
    const body: Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: microTime(this.#o.clock.now()),
      },
    };
    try {
      await this.#o.http.request(
        'update',
        'PUT',
        objectPath(LEASES, lease.metadata.namespace, lease.metadata.name),
        { body, unlimited: true, timeoutMs: 5000 },
      );
      this.#o.logger.info('released the leader lease');
    } catch (err) {
      this.#o.logger.warn({ err: String(err) }, 'could not release the leader lease');
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = this.#o.clock.setTimer(() => resolve(), ms);
      this.#wake = () => {
        this.#o.clock.clearTimer(t);
        resolve();
      };
    });
  }

  /** One GET (+ PUT or POST) round, every request of it bounded by `deadline` (monotonic ms). */
  async #tryAcquireOrRenew(deadline: number): Promise<boolean> {
    const { http, clock, namespace, name, identity, logger } = this.#o;
    const now = clock.now();
    const nowMono = this.#mono();
    const path = objectPath(LEASES, namespace, name);
    const leaseDurationSeconds = this.#recordDurationMs() / 1000;
    let current: Lease;
    try {
      if (this.#left(deadline) === 0) return false;
      current = await http.request<Lease>('get', 'GET', path, {
        unlimited: true,
        timeoutMs: this.#left(deadline),
      });
    } catch (err) {
      if (!isApiError(err, 404)) {
        logger.warn({ err: String(err) }, 'error reading the leader lease');
        return false;
      }
      const fresh: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      };
      try {
        if (this.#left(deadline) === 0) return false;
        const sent = this.#mono();
        this.#lease = await http.request<Lease>('create', 'POST', collectionPath(LEASES, namespace), {
          body: fresh,
          unlimited: true,
          timeoutMs: this.#left(deadline),
        });
        this.#observe(this.#lease.spec, this.#mono());
        this.#validUntil = sent + this.#window();
        return true;
      } catch {
        return false;
      }
    }
    const rec = current.spec ?? {};
    const recKey = JSON.stringify(rec);
    if (recKey !== this.#observedRecord) {
      this.#observe(rec, this.#mono());
    }
    const holder = rec.holderIdentity ?? '';
    const heldByOther = holder !== '' && holder !== identity;
    const recDurationMs = (rec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (heldByOther && this.#observedAt + recDurationMs > nowMono) {
      if (holder !== this.#lastLeader) {
        this.#lastLeader = holder;
        this.#o.onNewLeader?.(holder);
      }
      return false;
    }
    const weHeld = holder === identity;
    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: weHeld ? rec.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: weHeld ? (rec.leaseTransitions ?? 0) : (rec.leaseTransitions ?? 0) + 1,
    };
    try {
      if (this.#left(deadline) === 0) return false;
      // Measured from the send: others start counting our lease no earlier than this.
      const sent = this.#mono();
      this.#lease = await http.request<Lease>('update', 'PUT', path, {
        body: { ...current, spec },
        unlimited: true,
        timeoutMs: this.#left(deadline),
      });
      this.#observe(this.#lease.spec, this.#mono());
      this.#validUntil = sent + this.#window();
      if (this.#lastLeader !== identity) {
        this.#lastLeader = identity;
        this.#o.onNewLeader?.(identity);
      }
      return true;
    } catch (err) {
      if (!isApiError(err, 409)) logger.warn({ err: String(err) }, 'error updating the leader lease');
      return false;
    }
  }

  #observe(rec: LeaseSpec, atMono: number): void {
    this.#observedRecord = JSON.stringify(rec);
    this.#observedAt = atMono;
  }
}
