// When does a finished object expire? Mirrors upstream kubernetes
// pkg/controller/ttlafterfinished (`needsCleanup`, `getFinishAndExpireTime`, `timeLeft`,
// `processTTL`): expireAt = finishAt + ttl; expired when timeLeft <= 0, i.e. expireAt <= now.
// All times are epoch milliseconds on the API server's clock (the caller corrects for skew).

import type { ObjectSummary, TtlDecision } from './types.ts';

export type JudgeState =
  /** Not finished: never deleted, whatever its TTL says. */
  | 'not-finished'
  /** Finished, but no TTL applies. */
  | 'no-ttl'
  /** kttl.dev/keep: never deleted. */
  | 'keep'
  /** A TTL source holds an unusable value: never deleted, a Warning is raised. */
  | 'invalid'
  /** deletionTimestamp is set: someone (maybe we) is already deleting it; nothing to do. */
  | 'being-deleted'
  /** Finished with a TTL but no finish time (a Job condition without lastTransitionTime, which
   *  upstream treats as an error; or a 'firstSeen' finish the controller has not stamped yet). */
  | 'no-finish-time'
  /** Expires later: re-check at expireAtMs. */
  | 'pending'
  /** expireAt <= now: delete. */
  | 'expired';

export interface Judgement {
  state: JudgeState;
  /** Set for 'pending' and 'expired'. */
  expireAtMs?: number;
  /** expireAtMs - now; <= 0 when expired. Set for 'pending' and 'expired'. */
  leftMs?: number;
  /** The finish time is later than now (clock skew): deletion is only deferred, as upstream. */
  finishInFuture?: boolean;
}

/** finishAt + ttl, in epoch ms. */
export function expireAtMs(finishAtMs: number, ttlSeconds: number): number {
  return finishAtMs + ttlSeconds * 1000;
}

/** How long until expiry; <= 0 means expired (upstream: `*t <= 0`). */
export function timeLeftMs(expireAt: number, nowMs: number): number {
  return expireAt - nowMs;
}

export function judge(obj: ObjectSummary, decision: TtlDecision, nowMs: number): Judgement {
  // Upstream checks DeletionTimestamp first (processTTL) and never acts on such an object.
  if (obj.deletionMs !== null) return { state: 'being-deleted' };
  // kttl.dev/expires (src/rules/retention.ts): an absolute time, finished or not.
  if (decision.action === 'ttl' && decision.expireAtMs !== undefined) {
    const leftMs = timeLeftMs(decision.expireAtMs, nowMs);
    return { state: leftMs <= 0 ? 'expired' : 'pending', expireAtMs: decision.expireAtMs, leftMs };
  }
  // An unusable kttl.dev/expires is invalid whether or not the object finished (warned, kept).
  if (decision.action === 'invalid' && decision.source === 'expires') return { state: 'invalid' };
  const finish = obj.finish;
  if (finish === null) return { state: 'not-finished' };
  switch (decision.action) {
    case 'none':
      return { state: 'no-ttl' };
    case 'keep':
      return { state: 'keep' };
    case 'invalid':
      return { state: 'invalid' };
    case 'ttl':
      break;
  }
  if (finish.atMs === null) return { state: 'no-finish-time' };
  const expireAt = expireAtMs(finish.atMs, decision.seconds);
  const leftMs = timeLeftMs(expireAt, nowMs);
  const out: Judgement = { state: leftMs <= 0 ? 'expired' : 'pending', expireAtMs: expireAt, leftMs };
  if (finish.atMs > nowMs) out.finishInFuture = true;
  return out;
}
