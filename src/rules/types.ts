// Shared vocabulary of the pure rules. Nothing here does I/O.

export type Outcome = 'succeeded' | 'failed';

/** How a finish time was obtained (documented in docs/rules.md). */
export type FinishTimeSource = 'condition' | 'containerFinishedAt' | 'field' | 'firstSeen';

export interface Finish {
  outcome: Outcome;
  /** Epoch milliseconds on the API server's clock; null when the object carries no such time yet. */
  atMs: number | null;
  timeSource: FinishTimeSource;
  /** What made it finished, e.g. `condition Complete=True` or `.status.phase=Failed`. */
  reason: string;
}

export type PropagationPolicy = 'Foreground' | 'Background' | 'Orphan';

/** Whether a record is archived before deleting (docs/archive.md): off, best-effort, or required (no record, no deletion). */
export type ArchiveMode = 'off' | 'best-effort' | 'required';

/** The annotation keys kttl reads. Only these are kept by the watch cache. */
export const ANNOTATIONS = {
  keep: 'kttl.dev/keep',
  ttl: 'kttl.dev/ttl',
  ttlSucceeded: 'kttl.dev/ttl-succeeded',
  ttlFailed: 'kttl.dev/ttl-failed',
  kotsHook: 'kots.io/hook-delete-policy',
  helmHook: 'helm.sh/hook-delete-policy',
  /** An absolute time (RFC 3339, or YYYY-MM-DD = 00:00 UTC): deleted then, finished or not (src/rules/expires.ts). */
  expires: 'kttl.dev/expires',
  /** The pods of a finished object go this long after the finish (src/rules/pods.ts). */
  ttlPods: 'kttl.dev/ttl-pods',
} as const;

export const RELEVANT_ANNOTATIONS: readonly string[] = Object.values(ANNOTATIONS);

/**
 * A relevant annotation value longer than this (UTF-8 bytes) is invalid and cut at ingest
 * (src/rules/summary.ts): no real value needs it, and parsing 256 KiB per object per evaluation
 * stalls the event loop (bench/annotation-bomb.ts).
 */
export const MAX_ANNOTATION_BYTES = 1024;

export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
}

/**
 * The few fields of an object that the rules need. The watch cache keeps only this (no
 * managedFields, no pod template, no status beyond the finish), which is what keeps memory
 * small at 100,000 objects.
 */
export interface ObjectSummary {
  apiVersion: string;
  kind: string;
  /** '' for cluster-scoped objects. */
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  creationMs: number;
  labels: Readonly<Record<string, string>>;
  /** Only the keys in RELEVANT_ANNOTATIONS; a value over MAX_ANNOTATION_BYTES is kept cut (see oversized). */
  annotations: Readonly<Record<string, string>>;
  /** The relevant annotations whose value was over MAX_ANNOTATION_BYTES: key → its size in bytes. */
  oversized?: Readonly<Record<string, number>>;
  deletionMs: number | null;
  finalizers: readonly string[];
  owners: readonly OwnerRef[];
  /** Jobs: `.spec.ttlSecondsAfterFinished`; null when unset, unusable or not a Job. */
  nativeTtlSeconds: number | null;
  /**
   * Jobs: a `.spec.ttlSecondsAfterFinished` that is set but no whole number of seconds in range, as
   * JSON (only at admission, before the API server validates it: src/webhook/mutate.ts).
   */
  nativeTtlInvalid?: string;
  /** null while the object is not finished (by the built-in rule, or the fixed Job/Pod one). */
  finish: Finish | null;
  /** Custom kinds that policies give finish rules: the finish under each rule, by rule key. */
  finishes?: import('./finish.ts').RuleFinishes;
}

/** Where the TTL that applies to an object came from (the `source` metric label). */
export type TtlSource =
  | 'keep'
  | 'hook'
  | 'annotation'
  | 'field'
  | 'policy'
  | 'none'
  /** The retention rules (src/rules/retention.ts): they replace or cap the decision above. */
  | 'expires'
  | 'history'
  | 'keepLatest'
  | 'cap';

/** `owner` (same controlling owner), `label:<key>` or `annotation:<key>` (src/rules/history.ts). */
export type GroupBy = { by: 'owner' } | { by: 'label' | 'annotation'; key: string };

/** A policy's `history` or `keepLatest`: how many of each outcome, per group. */
export interface GroupLimit {
  succeeded?: number;
  failed?: number;
  groupBy: GroupBy;
}

/** The cap of the ClusterTTLPolicies that select an object (src/rules/caps.ts): seconds per outcome. */
export interface TtlCap {
  succeeded?: { seconds: number; ref: string; field: string };
  failed?: { seconds: number; ref: string; field: string };
  /** Whether kttl.dev/keep escapes the cap (false if any capping policy says allowKeep: false). */
  allowKeep: boolean;
}

/** The part of a policy that resolveTtl needs, already matched to the object. */
export interface PolicyTtl {
  /** `TTLPolicy/ns/name` or `ClusterTTLPolicy/name`. */
  ref: string;
  ttl?: string;
  ttlSucceeded?: string;
  ttlFailed?: string;
  propagationPolicy?: PropagationPolicy;
  dryRun?: boolean;
  /** The policy's `archive` (off | best-effort | required): overrides `kttl run --archive`. */
  archive?: ArchiveMode;
  /** `history`: only the newest N finished per outcome per group are kept (src/rules/history.ts). */
  history?: GroupLimit;
  /** `keepLatest`: the newest N finished per outcome per group outlive their TTL. */
  keepLatest?: GroupLimit;
  /** `ttlPods`, as written: the pods of a finished object go after it. */
  ttlPods?: string;
  /** The cluster maximum (ClusterTTLPolicy maxTtl*) over the object, from every policy that selects it. */
  cap?: TtlCap;
  /**
   * No policy may decide now (the policies are not known yet, or one that might select the object
   * cannot be judged): the object is kept, with this reason. See src/policy/store.ts policyFor.
   */
  hold?: string;
}

export type TtlDecision =
  /** Never deleted (kttl.dev/keep), or kept for now (keepLatest: among the newest of its group). */
  | { action: 'keep'; source: 'keep' | 'keepLatest'; detail: string }
  /** No TTL applies. */
  | { action: 'none'; source: 'none'; detail: string }
  /** A TTL source holds a value that cannot be used: nothing is deleted, a Warning Event is raised. */
  | { action: 'invalid'; source: TtlSource; key: string; value: string; message: string }
  /** Delete `seconds` after the finish time. */
  | {
      action: 'ttl';
      source: Exclude<TtlSource, 'keep' | 'none'>;
      seconds: number;
      /** Which key/field/policy gave it, e.g. `annotation kttl.dev/ttl-failed=7d`. */
      detail: string;
      propagationPolicy?: PropagationPolicy;
      dryRun?: boolean;
      /** kttl.dev/expires: an absolute expiry (epoch ms), which applies finished or not. */
      expireAtMs?: number;
    };
