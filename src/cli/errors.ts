// Exit codes (docs/cli.md): 0 success, 1 a user error, 2 a cluster/API error.
import { ApiError, TransportError } from '../kube/errors.ts';

/** Something the user can fix: a bad duration, an unknown kind, a missing object. */
export class UserError extends Error {
  override readonly name = 'UserError';
}

export const EXIT_USER = 1;
export const EXIT_API = 2;

/** One clear line and an exit code for any error. */
export function describeFailure(err: unknown): { code: number; line: string } {
  if (err instanceof UserError) return { code: EXIT_USER, line: `error: ${err.message}` };
  if (err instanceof ApiError) {
    if (err.code === 403) return { code: EXIT_API, line: `error: forbidden: ${err.message}` };
    if (err.code === 401)
      return {
        code: EXIT_API,
        line: `error: unauthorized: the cluster refused our credentials (${err.message})`,
      };
    return {
      code: EXIT_API,
      line: `error: the API server answered ${err.code}${err.reason ? ` ${err.reason}` : ''}: ${err.message}`,
    };
  }
  if (err instanceof TransportError)
    return { code: EXIT_API, line: `error: cannot reach the cluster: ${err.message}` };
  if (err instanceof Error) return { code: EXIT_API, line: `error: ${err.message}` };
  return { code: EXIT_API, line: `error: ${String(err)}` };
}
