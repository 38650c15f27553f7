// What kttl writes into each TTLPolicy/ClusterTTLPolicy's status (matchedObjects, errors,
// observedGeneration and the Valid condition, docs/policies.md), and the leader's pass that counts
// the objects each policy wins and writes them every 30 s.
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.ts';
import { isApiError } from '../kube/errors.ts';
import type { KubeHttp } from '../kube/http.ts';
import type { RawObject } from '../kube/objects.ts';
import { objectPath, type ResourceRef } from '../kube/resources.ts';
import type { FinishChoice } from '../rules/finish.ts';
import type { ObjectSummary } from '../rules/types.ts';
import type { Policy } from './schema.ts';

/** The status condition kttl writes: True when the policy parses, False with the errors otherwise. */
export const VALID_CONDITION = 'Valid';

const MAX_CONDITION_MESSAGE = 32_768;

export interface RawStatus {
  observedGeneration?: unknown;
  matchedObjects?: unknown;
  errors?: unknown;
  conditions?: unknown;
}

/**
 * A cached policy object, as the writer needs it. The writer updates `resourceVersion` and `status`
 * from the objects it reads and writes (same uid only), so an equal write before the watch event
 * arrives is a no-op.
 */
export interface StatusTarget {
  resource: ResourceRef;
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  resourceVersion: string;
  status: RawStatus;
}

export interface StatusStats {
  statusPatches: number;
  statusSkipped: number;
  statusConflicts: number;
}

export interface StatusWriterOptions {
  http: KubeHttp;
  clock: Clock;
  logger: Logger;
  /** The cached policy of a ref, or undefined when not (or no longer) known. */
  target: (ref: string) => StatusTarget | undefined;
  /** Counted into (the store's stats). */
  stats: StatusStats;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameStrings(a: readonly unknown[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

export class PolicyStatusWriter {
  readonly #o: StatusWriterOptions;
  /** Serializes status writes per policy, so equal concurrent calls send one PATCH. */
  readonly #chains = new Map<string, Promise<unknown>>();

  constructor(o: StatusWriterOptions) {
    this.#o = o;
  }

  /**
   * Writes the status through the status subresource (JSON merge patch), only when something
   * differs from the cached status; `errors` is read when the write's turn comes. Resolves true when
   * a PATCH was sent and accepted; false when nothing changed, the policy is not known, or it was
   * deleted or replaced meanwhile (the patch carries the cached resourceVersion as a precondition;
   * on a conflict the object is read again and, if it is the same one, the write retried once).
   * Other API errors reject.
   */
  write(ref: string, matchedObjects: number, errors: () => readonly string[]): Promise<boolean> {
    const prev = this.#chains.get(ref) ?? Promise.resolve();
    const run = () => this.#write(ref, matchedObjects, errors());
    // One write at a time per policy: the second of two equal calls sees the first one's result.
    const next = prev.then(run, run);
    this.#chains.set(ref, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.#chains.get(ref) === next) this.#chains.delete(ref);
      });
    return next;
  }

  async #write(ref: string, matchedObjects: number, errorList: readonly string[]): Promise<boolean> {
    const e = this.#o.target(ref);
    if (!e) return false;
    const { stats } = this.#o;
    const errors = [...errorList];
    const valid = errors.length === 0;
    const status = valid ? 'True' : 'False';
    const reason = valid ? 'Valid' : 'InvalidSpec';
    const message = (valid ? 'the policy is valid' : errors.join('; ')).slice(0, MAX_CONDITION_MESSAGE);
    const objPath = objectPath(e.resource, e.namespace, e.name);
    const path = `${objPath}/status`;
    // Two attempts: the cached resourceVersion may be behind (a write the watch has not shown yet).
    for (let attempt = 1; ; attempt++) {
      const cur = e.status;
      const conditions = Array.isArray(cur.conditions) ? cur.conditions : [];
      const existing = conditions.find((c) => isObj(c) && c.type === VALID_CONDITION) as
        | Record<string, unknown>
        | undefined;
      const unchanged =
        cur.observedGeneration === e.generation &&
        cur.matchedObjects === matchedObjects &&
        sameStrings(Array.isArray(cur.errors) ? cur.errors : undefined, errors) &&
        existing?.status === status &&
        existing.reason === reason &&
        existing.message === message &&
        existing.observedGeneration === e.generation;
      if (unchanged) {
        stats.statusSkipped++;
        return false;
      }
      const condition = {
        type: VALID_CONDITION,
        status,
        reason,
        message,
        observedGeneration: e.generation,
        // As metav1.Condition: the time changes only when the status flips.
        lastTransitionTime:
          existing?.status === status && typeof existing.lastTransitionTime === 'string'
            ? existing.lastTransitionTime
            : new Date(this.#o.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      };
      const body = {
        // resourceVersion is a precondition (409 when the object changed since it was cached). It
        // also keeps a policy deleted and recreated under the same name from getting the old one's
        // status: the API server ignores metadata.uid in a status patch, but never reuses a version.
        metadata: { resourceVersion: e.resourceVersion },
        status: {
          observedGeneration: e.generation,
          matchedObjects,
          errors,
          conditions: [...conditions.filter((c) => !(isObj(c) && c.type === VALID_CONDITION)), condition],
        },
      };
      try {
        const updated = await this.#o.http.request<RawObject>('patch', 'PATCH', path, {
          body,
          contentType: 'application/merge-patch+json',
          timeoutMs: 30_000,
        });
        stats.statusPatches++;
        // The answer is the object as stored: cache it now, so an equal call before the watch event
        // arrives is a no-op.
        adopt(e, updated);
        return true;
      } catch (err) {
        if (isApiError(err, 404)) return false; // deleted meanwhile
        if (!isApiError(err, 409)) throw err;
        stats.statusConflicts++;
        if (attempt > 1) {
          this.#o.logger.debug({ ref }, 'policy status not written: the policy keeps changing; next pass');
          return false;
        }
        // Stale cache: read the object; the same object (uid) is retried once, a new one is not ours.
        let fresh: RawObject;
        try {
          fresh = await this.#o.http.request<RawObject>('get', 'GET', objPath, { timeoutMs: 30_000 });
        } catch (getErr) {
          if (isApiError(getErr, 404)) return false;
          throw getErr;
        }
        if (fresh.metadata?.uid !== e.uid) return false;
        adopt(e, fresh);
      }
    }
  }
}

/** Takes status and resourceVersion from an object just read or written (same uid only). */
function adopt(e: StatusTarget, raw: RawObject | undefined): void {
  if (raw?.metadata?.uid !== e.uid) return;
  if (isObj(raw.status)) e.status = raw.status as RawStatus;
  if (typeof raw.metadata.resourceVersion === 'string') e.resourceVersion = raw.metadata.resourceVersion;
}

/** What the leader's pass reads from the policy store. */
export interface StatusSource {
  policies(): readonly Policy[];
  winnerFor(obj: ObjectSummary): Policy | null;
  finishChoiceFor(obj: ObjectSummary): FinishChoice;
  errorsOf(ref: string): string[] | undefined;
  invalid(): Array<{ ref: string; errors: string[] }>;
  updateStatus(ref: string, s: { matchedObjects: number; errors?: readonly string[] }): Promise<boolean>;
}

/** Objects that policies give different finish rules, per policy: an error in each one's status. */
export class FinishConflicts {
  readonly #byRef = new Map<string, { others: Set<string>; count: number; example: string; kind: string }>();

  add(obj: ObjectSummary, choice: FinishChoice): void {
    if (choice.kind !== 'conflict') return;
    for (const ref of choice.refs) {
      const e = this.#byRef.get(ref) ?? {
        others: new Set<string>(),
        count: 0,
        example: `${obj.namespace}/${obj.name}`,
        kind: obj.kind,
      };
      for (const other of choice.refs) if (other !== ref) e.others.add(other);
      e.count++;
      this.#byRef.set(ref, e);
    }
  }

  errorsOf(ref: string): string[] {
    const e = this.#byRef.get(ref);
    if (!e) return [];
    return [
      `finished: the rule for ${e.kind} conflicts with ${[...e.others].sort().join(', ')} on ${e.count} object(s) both select (e.g. ${e.example}): those objects are kept`,
    ];
  }
}

export interface PolicyStatusPasses {
  stop(): void;
  /** A policy changed: refresh the counts soon (after the re-judging settles). */
  poke(): void;
}

/** The leader writes each policy's status (objects it currently wins, its errors) every 30 s. */
export function startPolicyStatus(o: {
  store: StatusSource;
  /** Every object the controller has cached. */
  forEachObject: (fn: (obj: ObjectSummary) => void) => void;
  clock: Clock;
  isLeader: () => boolean;
  logger: Logger;
}): PolicyStatusPasses {
  const { store, clock } = o;
  let timer: TimerHandle | undefined;
  let stopped = false;
  let busy = false;
  const tick = async () => {
    if (stopped || busy) return;
    busy = true;
    if (timer) clock.clearTimer(timer);
    try {
      const policies = store.policies();
      if (o.isLeader() && policies.length > 0) {
        const counts = new Map<string, number>(policies.map((p) => [p.ref, 0]));
        const conflicts = new FinishConflicts();
        o.forEachObject((obj) => {
          const w = store.winnerFor(obj);
          if (w) counts.set(w.ref, (counts.get(w.ref) ?? 0) + 1);
          if (obj.finishes !== undefined) conflicts.add(obj, store.finishChoiceFor(obj));
        });
        for (const p of policies)
          await store.updateStatus(p.ref, {
            matchedObjects: counts.get(p.ref) ?? 0,
            errors: [...(store.errorsOf(p.ref) ?? []), ...conflicts.errorsOf(p.ref)],
          });
        for (const bad of store.invalid())
          await store.updateStatus(bad.ref, { matchedObjects: 0, errors: bad.errors });
      }
    } catch (err) {
      o.logger.warn({ err: String(err) }, 'could not write policy status');
    }
    busy = false;
    if (!stopped) timer = clock.setTimer(() => void tick(), 30_000);
  };
  timer = clock.setTimer(() => void tick(), 2_000);
  return {
    stop() {
      stopped = true;
      if (timer) clock.clearTimer(timer);
    },
    poke() {
      if (stopped || busy) return;
      if (timer) clock.clearTimer(timer);
      timer = clock.setTimer(() => void tick(), 1_000);
    },
  };
}
