// ClusterTTLPolicy maxTtl / maxTtlSucceeded / maxTtlFailed: no source may keep an object longer
// than the cluster policies that select it allow. Pure: src/policy/store.ts gathers the policies,
// src/rules/retention.ts applies the cap to a decision, src/webhook/mutate.ts lowers at admission.
import { parseDuration } from './duration.ts';
import type { Outcome, TtlCap } from './types.ts';

/** One cluster policy's caps as written (durations) and its allowKeep. */
export interface CapSpec {
  ref: string;
  maxTtl?: string;
  maxTtlSucceeded?: string;
  maxTtlFailed?: string;
  /** Default true. */
  allowKeep?: boolean;
}

/**
 * The strictest cap of several policies, per outcome (outcome-specific fields win over maxTtl
 * within one policy). A value that does not parse is skipped here (the policy is invalid and its
 * status says so): a missing cap only keeps longer, never deletes. Null when none caps anything.
 */
export function combineCaps(specs: readonly CapSpec[]): TtlCap | null {
  const cap: TtlCap = { allowKeep: true };
  let any = false;
  for (const spec of specs) {
    for (const outcome of ['succeeded', 'failed'] as const) {
      const field = outcome === 'succeeded' ? 'maxTtlSucceeded' : 'maxTtlFailed';
      const chosen = spec[field] !== undefined ? field : spec.maxTtl !== undefined ? 'maxTtl' : null;
      if (chosen === null) continue;
      const r = parseDuration(spec[chosen]!);
      if (!r.ok) continue;
      any = true;
      const cur = cap[outcome];
      if (cur === undefined || r.seconds < cur.seconds || (r.seconds === cur.seconds && spec.ref < cur.ref))
        cap[outcome] = { seconds: r.seconds, ref: spec.ref, field: `${chosen}=${spec[chosen]}` };
    }
    if (spec.allowKeep === false && (spec.maxTtl ?? spec.maxTtlSucceeded ?? spec.maxTtlFailed) !== undefined)
      cap.allowKeep = false;
  }
  return any ? cap : null;
}

/** The cap for one outcome, or undefined. */
export function capFor(cap: TtlCap | undefined, outcome: Outcome): TtlCap['succeeded'] {
  return cap?.[outcome];
}
