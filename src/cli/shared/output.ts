// Output: kubectl-style borderless tables (cli-table3), JSON, YAML; colour only on a terminal
// (and never with NO_COLOR); a quiet exit when the reader of stdout goes away (`kttl list | head`).
import Table from 'cli-table3';
import pc from 'picocolors';
import { stringify } from 'yaml';

export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export type Colors = ReturnType<typeof pc.createColors>;

export function colors(stream: NodeJS.WriteStream = process.stdout): Colors {
  const on = stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
  return pc.createColors(on);
}

let epipeHandled = false;

/** `kttl list | head`: when the pipe closes, stop quietly instead of throwing EPIPE. */
export function exitQuietlyOnEpipe(): void {
  if (epipeHandled) return;
  epipeHandled = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function err(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

const NO_BORDER = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '',
};

/** A kubectl-like table: upper-case headers, columns three spaces apart, no borders. */
export function table(head: string[], rows: string[][]): string {
  const t = new Table({
    head,
    chars: NO_BORDER,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 3, compact: true },
  });
  for (const r of rows) t.push(r);
  return t
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

export function yaml(value: unknown): string {
  // JSON first drops undefined fields, as json() does, so both formats hold the same data.
  return stringify(JSON.parse(JSON.stringify(value)), { lineWidth: 0 }).trimEnd();
}
