// Whether an optional API is served (a CRD's kind: the policy kinds, Argo Workflows, …), looked at
// again every interval so that one installed later is picked up and a missing one never makes a
// crash loop. Used for the policy CRDs (src/policy/store.ts) and the custom kinds the controller
// watches (src/controller/kinds.ts).
//
// A "not served" answer may have to be confirmed before it counts: N answers in a row over at
// least T (docs/decisions.md, "A 404 is not proof"). Until then the resource is uncertain, and the
// loop looks again every 2 s.
import type { Clock, TimerHandle } from '../clock.ts';
import { summarizeError } from './errors.ts';

export type Presence = 'unknown' | 'present' | 'absent';

/** When "not served" counts as absent: after `answers` such answers in a row over at least `overMs`. */
export interface AbsenceRule {
  answers: number;
  overMs: number;
}

/** The first "not served" answer counts. */
export const ABSENT_AT_ONCE: AbsenceRule = { answers: 1, overMs: 0 };

/** What one look found; `was` is the presence before it. */
export type LookResult<T> =
  | { state: 'present'; value: T; was: Presence }
  /** Not served, confirmed (`was` tells whether that is news). */
  | { state: 'absent'; was: Presence }
  /** Not served, not yet confirmed: `uncertain` says so. */
  | { state: 'unconfirmed'; was: Presence }
  /** No answer either way (no permission yet, API server restarting). */
  | { state: 'error'; error: unknown; was: Presence };

export interface OptionalResourceOptions<T> {
  clock: Clock;
  /** One look: the value when served, null when not (a 404, not in discovery); throws otherwise. */
  look: (signal?: AbortSignal) => Promise<T | null>;
  absence?: AbsenceRule;
}

export class OptionalResource<T> {
  readonly #o: OptionalResourceOptions<T>;
  readonly #absence: AbsenceRule;
  #presence: Presence = 'unknown';
  #uncertain: string | null = null;
  /** "Not served" answers in a row, and when the first of them came. */
  #notServed = 0;
  #notServedSinceMs = 0;

  constructor(o: OptionalResourceOptions<T>) {
    this.#o = o;
    this.#absence = o.absence ?? ABSENT_AT_ONCE;
  }

  get presence(): Presence {
    return this.#presence;
  }

  /**
   * Why what was read of the resource cannot be trusted now, or null: a "not served" answer not yet
   * confirmed, or (while present) an error.
   */
  get uncertain(): string | null {
    return this.#uncertain;
  }

  async look(signal?: AbortSignal): Promise<LookResult<T>> {
    const was = this.#presence;
    let value: T | null;
    try {
      value = await this.#o.look(signal);
    } catch (error) {
      this.#notServed = 0;
      // Present, but it cannot be read: what was read of it may be stale.
      if (was === 'present') this.#uncertain = `cannot be read (${summarizeError(error).message ?? 'error'})`;
      return { state: 'error', error, was };
    }
    if (value !== null) {
      this.#presence = 'present';
      this.#notServed = 0;
      this.#uncertain = null;
      return { state: 'present', value, was };
    }
    // One 404 is not proof (a CRD briefly not served, an API server starting): where acting on
    // absence drops something, the rule asks for several answers over a while.
    const now = this.#o.clock.now();
    if (this.#notServed === 0) this.#notServedSinceMs = now;
    this.#notServed++;
    if (
      was === 'absent' ||
      (this.#notServed >= this.#absence.answers && now - this.#notServedSinceMs >= this.#absence.overMs)
    ) {
      this.#presence = 'absent';
      this.#uncertain = null;
      return { state: 'absent', was };
    }
    const n = this.#notServed;
    this.#uncertain = `answer 404 (${n} time${n > 1 ? 's' : ''} since ${new Date(this.#notServedSinceMs).toISOString()}); not yet confirmed gone`;
    return { state: 'unconfirmed', was };
  }
}

/** How a round of looks went: errors make the next one come sooner, with back-off. */
export interface ProbeRound {
  /** A look had no answer (other than "not served"). */
  failed: boolean;
  /** A "not served" answer awaits confirmation. */
  uncertain: boolean;
}

export interface ProbeLoopOptions {
  clock: Clock;
  /** Between rounds when all is well. */
  intervalMs: number;
  /** One round of looks; the signal aborts on stop. */
  round: (signal: AbortSignal) => Promise<ProbeRound>;
  /** A round threw (a bug): reported, and the loop goes on as after a failed round. */
  onError: (err: unknown) => void;
}

/** While a "not served" answer awaits confirmation, look this often. */
export const UNCERTAIN_PROBE_MS = 2_000;
/** First retry after a failed round (doubling up to the interval). */
export const PROBE_BACKOFF_START_MS = 1_000;

/** The delay before the next round. */
export function nextProbeDelayMs(intervalMs: number, failuresInARow: number, uncertain: boolean): number {
  const delay =
    failuresInARow === 0
      ? intervalMs
      : Math.min(intervalMs, PROBE_BACKOFF_START_MS * 2 ** Math.min(failuresInARow - 1, 10));
  return uncertain ? Math.min(delay, UNCERTAIN_PROBE_MS) : delay;
}

/**
 * Runs rounds of looks: one at start, then one every interval (sooner after a failed round, with
 * back-off, and every 2 s while uncertain), one at a time; wake() asks for one now.
 */
export class ProbeLoop {
  readonly #o: ProbeLoopOptions;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #timer: TimerHandle | undefined;
  #interrupt: (() => void) | undefined;
  /** wake() came during a round: run the next one at once. */
  #again = false;
  #waiters: Array<() => void> = [];
  #stopped = false;

  constructor(o: ProbeLoopOptions) {
    this.#o = o;
  }

  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = this.#loop();
  }

  /** A round now (or right after the one under way); resolves when it is done (or on stop). */
  wake(): Promise<void> {
    if (this.#stopped || !this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#again = true;
      this.#interrupt?.();
    });
  }

  /** Stops; resolves when the round under way (its looks aborted) has returned. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#interrupt?.();
    for (const w of this.#waiters.splice(0)) w();
    await this.#running;
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      this.#again = false;
      const waiters = this.#waiters.splice(0);
      let r: ProbeRound;
      try {
        r = await this.#o.round(this.#abort.signal);
      } catch (err) {
        if (!this.#stopped) this.#o.onError(err);
        r = { failed: true, uncertain: false };
      }
      for (const w of waiters) w();
      if (this.#stopped) break;
      failures = r.failed ? failures + 1 : 0;
      if (!this.#again) await this.#sleep(nextProbeDelayMs(this.#o.intervalMs, failures, r.uncertain));
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.#timer) this.#o.clock.clearTimer(this.#timer);
        this.#timer = undefined;
        this.#interrupt = undefined;
        resolve();
      };
      this.#timer = this.#o.clock.setTimer(done, ms);
      this.#interrupt = done;
    });
  }
}
