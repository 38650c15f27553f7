// Go/Run:ai-style durations for TTLs: `90s`, `5m`, `3h`, `4d`, `2w`, `1h30m`, `1.5h`, `0`.
//
// Differences from Go's time.ParseDuration, on purpose:
// - `d` (24 h) and `w` (7 d) are accepted: the Run:ai docs promise `--ttl-after-finish 4d`.
// - `ns`, `us`, `µs`, `ms` are rejected: a TTL is a whole number of seconds, like the native
//   `.spec.ttlSecondsAfterFinished`.
// - Negative values are rejected, and so is any result that is not a whole number of seconds or
//   that exceeds the native field's maximum (int32, 2,147,483,647 s, about 68 years).
// Like Go: units are case-sensitive (`1H` is an error), a unit may repeat (`1m1m` = 2m), a number
// may be fractional (`1.5h`, `.5m`), and a bare `0` means "at once". A bare `0` is the only
// number accepted without a unit.
//
// Arithmetic is exact (BigInt over a power-of-ten denominator), so `0.1h` is exactly 360 s and
// `1.0000000001h` is rejected rather than rounded.

/** The maximum of the native `ttlSecondsAfterFinished` (int32). */
export const MAX_TTL_SECONDS = 2147483647;

export type DurationResult = { ok: true; seconds: number } | { ok: false; error: string };

const UNIT_SECONDS: Readonly<Record<string, bigint>> = Object.freeze({
  s: 1n,
  m: 60n,
  h: 3600n,
  d: 86400n,
  w: 604800n,
});

const UNITS_HINT = 's, m, h, d or w';
/** Longer inputs are rejected before parsing: no real TTL needs this many characters. */
const MAX_INPUT_LENGTH = 128;
/** How much of a bad input an error message quotes. */
const MAX_QUOTED_LENGTH = 64;
const MAX_BIG = BigInt(MAX_TTL_SECONDS);

function quote(text: string): string {
  const shown = text.length > MAX_QUOTED_LENGTH ? `${text.slice(0, MAX_QUOTED_LENGTH)}…` : text;
  // JSON.stringify escapes quotes and control characters, so the message stays one line.
  return JSON.stringify(shown);
}

function fail(input: string, why: string): { ok: false; error: string } {
  return { ok: false, error: `invalid duration ${quote(input)}: ${why}` };
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

/**
 * Parses a duration into whole seconds. Never throws; every error is one sentence that quotes the
 * input.
 */
export function parseDuration(text: string): DurationResult {
  if (typeof text !== 'string') return { ok: false, error: 'invalid duration: not a string' };
  const s = text.trim();
  if (s === '') return fail(text, 'empty (use e.g. "90s", "5m", "1h30m", "4d" or "0")');
  if (s.length > MAX_INPUT_LENGTH) return fail(text, `longer than ${MAX_INPUT_LENGTH} characters`);
  if (/\s/.test(s)) return fail(text, 'must not contain spaces (write e.g. "1h30m")');

  let i = 0;
  if (s[0] === '-') return fail(text, 'must not be negative');
  if (s[0] === '+') i = 1;
  const body = s.slice(i);
  if (body === '0') return { ok: true, seconds: 0 };
  if (body === '') return fail(text, `expected a number followed by a unit (${UNITS_HINT}), e.g. "90s"`);

  // total = numerator / 10^scale, exact.
  let numerator = 0n;
  let scale = 0;
  while (i < s.length) {
    // Number: digits, optionally "." and digits; at least one digit overall.
    const numStart = i;
    let intDigits = '';
    let fracDigits = '';
    while (i < s.length && isDigit(s[i]!)) intDigits += s[i++];
    if (i < s.length && s[i] === '.') {
      i++;
      while (i < s.length && isDigit(s[i]!)) fracDigits += s[i++];
    }
    if (intDigits === '' && fracDigits === '') {
      if (numStart === 0 || (numStart === 1 && s[0] === '+')) {
        return fail(text, `expected a number followed by a unit (${UNITS_HINT}), e.g. "90s" or "1h30m"`);
      }
      return fail(
        text,
        `expected a number at ${quote(s.slice(numStart))} (units: ${UNITS_HINT}, e.g. "1h30m")`,
      );
    }
    const number = s.slice(numStart, i);
    // Unit: everything up to the next digit or dot (as Go does), so "5ms" reports "ms".
    const unitStart = i;
    while (i < s.length && !isDigit(s[i]!) && s[i] !== '.') i++;
    const unit = s.slice(unitStart, i);
    if (unit === '') {
      return fail(text, `missing unit after ${quote(number)} (use ${UNITS_HINT}, e.g. "${number}s")`);
    }
    const unitSeconds = Object.hasOwn(UNIT_SECONDS, unit) ? UNIT_SECONDS[unit] : undefined;
    if (unitSeconds === undefined) {
      return fail(text, `unknown unit ${quote(unit)} (use ${UNITS_HINT})`);
    }
    // Bring the running total and this component to a common denominator 10^scale.
    const k = fracDigits.length;
    const value = BigInt(intDigits === '' ? '0' : intDigits) * 10n ** BigInt(k) + BigInt(fracDigits || '0');
    const component = value * unitSeconds; // = seconds * 10^k
    if (k > scale) {
      numerator *= 10n ** BigInt(k - scale);
      scale = k;
      numerator += component;
    } else {
      numerator += component * 10n ** BigInt(scale - k);
    }
    // Early overflow check on the whole-seconds lower bound keeps numbers small.
    if (numerator / 10n ** BigInt(scale) > MAX_BIG) {
      return fail(text, `longer than the maximum of ${MAX_TTL_SECONDS} seconds (about 68 years)`);
    }
  }
  const denominator = 10n ** BigInt(scale);
  if (numerator % denominator !== 0n) return fail(text, 'not a whole number of seconds');
  const seconds = numerator / denominator;
  if (seconds > MAX_BIG) {
    return fail(text, `longer than the maximum of ${MAX_TTL_SECONDS} seconds (about 68 years)`);
  }
  return { ok: true, seconds: Number(seconds) };
}

const FORMAT_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['w', 604800],
  ['d', 86400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];

/**
 * Canonical shortest form using w, d, h, m, s, largest unit first, zero parts omitted:
 * 5400 → `1h30m`, 345600 → `4d`, 0 → `0s`. parseDuration(formatDuration(n)) = n.
 * Throws a RangeError for a negative, fractional or non-finite number (a programming error).
 */
export function formatDuration(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new RangeError(`formatDuration: expected a non-negative whole number of seconds, got ${seconds}`);
  }
  if (seconds === 0) return '0s';
  let rest = seconds;
  let out = '';
  for (const [unit, size] of FORMAT_UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
