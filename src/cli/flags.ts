// Flag value parsers with kube-style spelling (`--leader-elect=false`, `--lease-duration 15s`).
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../rules/duration.ts';

export function parseBool(value: string | undefined): boolean {
  if (value === undefined) return true; // a bare `--flag`
  const v = value.toLowerCase();
  if (['true', '1', 't', 'yes'].includes(v)) return true;
  if (['false', '0', 'f', 'no'].includes(v)) return false;
  throw new InvalidArgumentError(`"${value}" is not a boolean (use true or false)`);
}

export function parseDurationMs(value: string): number {
  const d = parseDuration(value);
  if (!d.ok) throw new InvalidArgumentError(d.error);
  return d.seconds * 1000;
}

export function parseDurationSeconds(value: string): number {
  const d = parseDuration(value);
  if (!d.ok) throw new InvalidArgumentError(d.error);
  return d.seconds;
}

export function parseNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`"${value}" is not a number`);
  return n;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return n;
}

/** Comma-separated list; repeated flags accumulate. */
export function parseList(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return [...(previous ?? []), ...items];
}

const QUANTITY = /^([0-9]+)(Ki|Mi|Gi|Ti|K|M|G|T|k)?$/;
const QUANTITY_FACTORS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A byte size as Kubernetes quantities spell it: `256Ki`, `10Gi`, `500M`, `1024`. */
export function parseBytes(value: string): number {
  const m = QUANTITY.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a size (e.g. 256Ki, 10Gi, 500M, 1024)`);
  return Number(m[1]) * (QUANTITY_FACTORS[m[2] ?? ''] ?? 1);
}

export function oneOf<T extends string>(allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if ((allowed as readonly string[]).includes(value)) return value as T;
    throw new InvalidArgumentError(`"${value}" is not one of ${allowed.join(', ')}`);
  };
}
