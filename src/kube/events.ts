// Kubernetes Events on the objects kttl judges (core/v1, so `kubectl describe` and `kubectl get
// events` show them). Best-effort by design: they have their own small budget and never delay or
// block a deletion; when the budget is spent they are dropped and counted.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { KubeHttp } from './http.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
  resourceVersion?: string;
}

export interface EventBudget {
  tryTake(): boolean;
}

export interface EventRecorderOptions {
  http: KubeHttp;
  clock: Clock;
  logger: Logger;
  budget: EventBudget;
  component?: string;
  onDropped?: () => void;
  /** Namespace for events about cluster-scoped objects. */
  defaultNamespace?: string;
}

export class EventRecorder {
  readonly #o: EventRecorderOptions;
  #inFlight = new Set<Promise<void>>();

  constructor(o: EventRecorderOptions) {
    this.#o = o;
  }

  /**
   * Fire-and-forget; resolves immediately. `essential`: rare Events that say why kttl stopped
   * (the deletion brake, src/controller/safety.ts) are sent outside the budget.
   */
  record(
    target: EventTarget,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    o: { essential?: boolean } = {},
  ): void {
    if (!o.essential && !this.#o.budget.tryTake()) {
      this.#o.onDropped?.();
      return;
    }
    const p = this.#send(target, type, reason, message).finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
  }

  /** For shutdown and tests: wait for events already sent. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  async #send(target: EventTarget, type: string, reason: string, message: string): Promise<void> {
    const namespace = target.namespace || this.#o.defaultNamespace || 'default';
    const now = new Date(this.#o.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${target.name}.${randomBytes(8).toString('hex')}`, namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        namespace: target.namespace || undefined,
        name: target.name,
        uid: target.uid,
        resourceVersion: target.resourceVersion,
      },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: this.#o.component ?? 'kttl' },
      reportingComponent: this.#o.component ?? 'kttl',
      reportingInstance: this.#o.component ?? 'kttl',
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.#o.http.request(
        'create',
        'POST',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
        { body, unlimited: true, timeoutMs: 10_000 },
      );
    } catch (err) {
      this.#o.logger.warn(
        { err: String(err), reason, object: `${target.namespace}/${target.name}` },
        'could not record event',
      );
    }
  }
}
