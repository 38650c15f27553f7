// The pure parts of the safety rails (docs/operations.md "Safety rails"): the `N/D` of
// `--max-deletions` / `maxDeletions`, and when a `DeletionScheduled` notice is due.
import { formatDuration, parseDuration } from './duration.ts';

/** At most `limit` deletions within any `windowMs` (a sliding window). */
export interface DeletionLimit {
  limit: number;
  windowMs: number;
  /** As written (normalised), e.g. `500/10m`. */
  text: string;
}

export type LimitResult = { ok: true; value: DeletionLimit } | { ok: false; error: string };

/** `500/10m`: a positive whole number, a slash, a duration (docs/rules.md grammar) above zero. */
export function parseDeletionLimit(text: string): LimitResult {
  const m = /^\s*([0-9]+)\s*\/\s*(\S+)\s*$/.exec(text);
  if (!m) return { ok: false, error: `"${text}" is not N/DURATION (e.g. "500/10m")` };
  const limit = Number(m[1]);
  if (!Number.isSafeInteger(limit) || limit < 1)
    return { ok: false, error: `"${text}": the count must be a whole number of at least 1` };
  const d = parseDuration(m[2]!);
  if (!d.ok) return { ok: false, error: `"${text}": ${d.error}` };
  if (d.seconds < 1) return { ok: false, error: `"${text}": the window must be at least 1s` };
  return {
    ok: true,
    value: { limit, windowMs: d.seconds * 1000, text: `${limit}/${formatDuration(d.seconds)}` },
  };
}

/**
 * When the notice of a deletion is due (epoch ms, server clock), or undefined: no notice is given
 * (none asked, or the TTL is not longer than the notice: the object would be noticed before it
 * finished, or at the moment it did).
 */
export function noticeAtMs(
  expireAtMs: number,
  ttlSeconds: number,
  noticeSeconds: number | undefined,
): number | undefined {
  if (noticeSeconds === undefined || !(noticeSeconds > 0)) return undefined;
  if (!(ttlSeconds > noticeSeconds)) return undefined;
  return expireAtMs - noticeSeconds * 1000;
}
