// Confirmation before anything destructive: `--yes` skips it; without a terminal on stdin we
// refuse rather than guess (a script must say --yes).
import { createInterface } from 'node:readline/promises';
import { UserError } from '../errors.ts';

export interface ConfirmOptions {
  yes: boolean;
  /** What would happen, for the refusal message: `delete 3 objects`. */
  action: string;
}

/** Throws the refusal if confirmation would be needed but cannot be asked for. */
export function ensureCanAsk(o: ConfirmOptions): void {
  if (!o.yes && !process.stdin.isTTY) {
    throw new UserError(`refusing to ${o.action} without confirmation: stdin is not a terminal (pass --yes)`);
  }
}

/** true: go ahead. false: the user said no. Throws a UserError when it cannot ask. */
export async function confirm(question: string, o: ConfirmOptions): Promise<boolean> {
  if (o.yes) return true;
  ensureCanAsk(o);
  // The question goes to stderr so stdout stays clean for what the command prints.
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // Ctrl-D (end of input) or Ctrl-C: a no, never a hang.
  const closed = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
  rl.on('SIGINT', () => {
    process.stderr.write('\n');
    rl.close();
  });
  try {
    const answer = await Promise.race([rl.question(`${question} [y/N] `), closed]);
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** The user answered no: exit 1 with a one-line message; nothing was changed. */
export function aborted(what: string): UserError {
  return new UserError(`aborted: ${what}`);
}
