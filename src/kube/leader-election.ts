// Leader election on a coordination.k8s.io/v1 Lease, ported from client-go's leaderelection:
// a lease is judged by the LOCAL time at which we last saw its record change (never by comparing
// its renewTime with our clock, which would make it skew-sensitive); updates are optimistic (the
// resourceVersion we read); a leader that cannot renew within the renew deadline stops leading.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { isApiError } from './errors.ts';
import type { KubeHttp } from './http.ts';
import { collectionPath, LEASES, objectPath } from './resources.ts';

export interface LeaderElectionOptions {
  http: KubeHttp;
  clock: Clock;
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
  #observedRecord = '';
  #observedTimeMs = 0;
  #lease: Lease | undefined;
  #leader = false;
  #stopped = false;
  #lastLeader = '';
  #wake: (() => void) | undefined;

  constructor(o: LeaderElectionOptions) {
    this.#o = o;
  }

  isLeader(): boolean {
    return this.#leader;
  }

  /** Acquires, then renews until leadership is lost or stop() is called. */
  async run(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, clock, logger } = this.#o;
    while (!this.#stopped && !(await this.#tryAcquireOrRenew())) {
      await this.#sleep(retryPeriodMs * (1 + Math.random() * 0.2));
    }
    if (this.#stopped) return;
    this.#leader = true;
    logger.info(
      { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity },
      'became leader',
    );
    this.#o.onStartedLeading();
    let lastRenew = clock.now();
    while (!this.#stopped) {
      await this.#sleep(retryPeriodMs);
      if (this.#stopped) break;
      if (await this.#tryAcquireOrRenew()) {
        lastRenew = clock.now();
        continue;
      }
      if (clock.now() - lastRenew >= renewDeadlineMs) {
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

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { http, clock, namespace, name, identity, leaseDurationMs, logger } = this.#o;
    const now = clock.now();
    const path = objectPath(LEASES, namespace, name);
    const leaseDurationSeconds = Math.max(1, Math.round(leaseDurationMs / 1000));
    let current: Lease;
    try {
      current = await http.request<Lease>('get', 'GET', path, {
        unlimited: true,
        timeoutMs: this.#o.renewDeadlineMs,
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
        this.#lease = await http.request<Lease>('create', 'POST', collectionPath(LEASES, namespace), {
          body: fresh,
          unlimited: true,
          timeoutMs: this.#o.renewDeadlineMs,
        });
        this.#observe(this.#lease.spec, clock.now());
        return true;
      } catch {
        return false;
      }
    }
    const rec = current.spec ?? {};
    const recKey = JSON.stringify(rec);
    if (recKey !== this.#observedRecord) {
      this.#observe(rec, clock.now());
    }
    const holder = rec.holderIdentity ?? '';
    const heldByOther = holder !== '' && holder !== identity;
    const recDurationMs = (rec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (heldByOther && this.#observedTimeMs + recDurationMs > now) {
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
      this.#lease = await http.request<Lease>('update', 'PUT', path, {
        body: { ...current, spec },
        unlimited: true,
        timeoutMs: this.#o.renewDeadlineMs,
      });
      this.#observe(this.#lease.spec, clock.now());
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

  #observe(rec: LeaseSpec, atMs: number): void {
    this.#observedRecord = JSON.stringify(rec);
    this.#observedTimeMs = atMs;
  }
}
