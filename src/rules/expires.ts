// kttl.dev/expires: an absolute time a person wrote (kube-janitor's janitor/expires). RFC 3339
// (`2026-12-31T18:00:00Z`, `2026-12-31T18:00:00+02:00`, fractions allowed) or a date `YYYY-MM-DD`
// meaning 00:00 UTC of that day. Anything else — and any time past the native TTL's horizon
// (MAX_TTL_SECONDS from now, about 68 years) — is invalid: the object is kept and warned about.
import { MAX_TTL_SECONDS } from './duration.ts';

export type ExpiresResult = { ok: true; atMs: number } | { ok: false; error: string };

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return d <= days;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/** Parses a kttl.dev/expires value; `nowMs` bounds it (no date past MAX_TTL_SECONDS from now). */
export function parseExpires(text: string, nowMs: number): ExpiresResult {
  const bad = (why: string): ExpiresResult => ({
    ok: false,
    error: `${quote(text)} ${why} (use an RFC 3339 time such as 2026-12-31T18:00:00Z, or a date 2026-12-31 meaning 00:00 UTC)`,
  });
  let atMs: number;
  const date = DATE.exec(text);
  if (date) {
    const [y, m, d] = [Number(date[1]), Number(date[2]), Number(date[3])];
    if (!validDate(y, m, d)) return bad('is not a calendar date');
    atMs = Date.UTC(y, m - 1, d);
  } else {
    const t = RFC3339.exec(text);
    if (!t) return bad('is not a time');
    const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(t[i]));
    if (!validDate(y!, mo!, d!) || h! > 23 || mi! > 59 || s! > 60) return bad('is not a valid time');
    if (t[9] !== undefined && (Number(t[9]) > 23 || Number(t[10]) > 59)) return bad('has an invalid offset');
    // A leap second (…:60) is read as the next second, as most parsers do.
    const frac = t[7] === undefined ? 0 : Math.floor(Number(`0${t[7]}`) * 1000);
    const offsetMin =
      t[9] === undefined ? 0 : (t[8]!.startsWith('-') ? -1 : 1) * (Number(t[9]) * 60 + Number(t[10]));
    atMs = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!) + frac - offsetMin * 60_000;
  }
  if (!Number.isFinite(atMs)) return bad('is not a time');
  if (atMs - nowMs > MAX_TTL_SECONDS * 1000)
    return bad('is further away than the maximum TTL (about 68 years)');
  return { ok: true, atMs };
}
