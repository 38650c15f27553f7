// Policy and namespace-label changes, batched for the store's listeners: one call after a burst
// (debounced), never later than a bound after its first change, so a steady stream still fires.
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.ts';
import { summarizeError } from '../kube/errors.ts';

/** What changed, for onChange listeners: re-judge everything, or only objects in these namespaces. */
export interface PolicyChange {
  /** A policy was added, changed (spec) or removed, or a policy kind appeared or vanished. */
  policies: boolean;
  /** Namespaces whose labels changed (or that appeared/vanished) while a namespaceSelector is in use. */
  namespaces: string[];
}

export interface ChangeBatcherOptions {
  clock: Clock;
  logger: Logger;
  /** Listeners are called this long after the last change of a burst… */
  debounceMs: number;
  /** …but no later than this after its first change. */
  maxDelayMs: number;
  /** Counted into at each call (the store's stats). */
  stats: { changes: number };
}

export class ChangeBatcher {
  readonly #o: ChangeBatcherOptions;
  readonly #listeners: Array<(change: PolicyChange) => void> = [];
  #pending: { policies: boolean; namespaces: Set<string>; firstMs: number } | null = null;
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(o: ChangeBatcherOptions) {
    this.#o = o;
  }

  /** Registers a listener; returns its removal. */
  listen(cb: (change: PolicyChange) => void): () => void {
    this.#listeners.push(cb);
    return () => {
      const i = this.#listeners.indexOf(cb);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** A change: policies (re-judge everything) and/or one namespace's labels. */
  add(policies: boolean, ns: string | undefined): void {
    if (this.#stopped) return;
    const { clock } = this.#o;
    const now = clock.now();
    if (this.#pending === null) this.#pending = { policies: false, namespaces: new Set(), firstMs: now };
    if (policies) this.#pending.policies = true;
    if (ns !== undefined) this.#pending.namespaces.add(ns);
    if (this.#timer) clock.clearTimer(this.#timer);
    const delay = Math.max(0, Math.min(this.#o.debounceMs, this.#pending.firstMs + this.#o.maxDelayMs - now));
    this.#timer = clock.setTimer(() => this.#fire(), delay);
  }

  /** No more calls. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimer(this.#timer);
  }

  #fire(): void {
    this.#timer = undefined;
    const p = this.#pending;
    this.#pending = null;
    if (p === null || this.#stopped) return;
    this.#o.stats.changes++;
    const change: PolicyChange = { policies: p.policies, namespaces: [...p.namespaces].sort() };
    for (const cb of [...this.#listeners]) {
      try {
        cb(change);
      } catch (err) {
        this.#o.logger.error({ err: summarizeError(err) }, 'policy change listener failed');
      }
    }
  }
}
