// Hook delete policies (`kots.io/hook-delete-policy`, `helm.sh/hook-delete-policy`).

export interface HookPolicy {
  /** `hook-succeeded`: delete right after the object finishes successfully. */
  succeeded: boolean;
  /** `hook-failed`: delete right after the object fails. */
  failed: boolean;
  /** Items that are none of the known values, as written (trimmed), in order. */
  unknown: string[];
}

/**
 * Parses a comma-separated hook delete policy. Whitespace around items is ignored, and so are
 * empty items (`hook-succeeded,,`). Values are case-sensitive, as in Helm. `before-hook-creation`
 * is recognised but has no effect here: it is about the next release, not about finishing.
 */
export function parseHookPolicy(value: string): HookPolicy {
  const out: HookPolicy = { succeeded: false, failed: false, unknown: [] };
  for (const part of value.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    if (item === 'hook-succeeded') out.succeeded = true;
    else if (item === 'hook-failed') out.failed = true;
    else if (item !== 'before-hook-creation') out.unknown.push(item);
  }
  return out;
}
