// Kubernetes label selectors (metav1.LabelSelector), pure: validation and matching with the API
// server's semantics (k8s.io/apimachinery labels.Selector built by LabelSelectorAsSelector).
//
// One deliberate difference: upstream turns a *nil* selector into "matches nothing"; here an absent
// selector matches everything, because in a policy an absent `selector`/`namespaceSelector` means
// "no restriction" (as an absent namespaceSelector does in a webhook configuration).

export type LabelSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: LabelSelectorOperator;
  values?: readonly string[];
}

export interface LabelSelector {
  matchLabels?: Readonly<Record<string, string>>;
  matchExpressions?: readonly LabelSelectorRequirement[];
}

const OPERATORS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

// Label keys: optional DNS-subdomain prefix (≤ 253) + "/" + name (≤ 63); values: ≤ 63, may be
// empty. Same rules as apimachinery's IsQualifiedName / IsValidLabelValue.
const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function has(o: Readonly<Record<string, string>>, key: string): boolean {
  return Object.hasOwn(o, key);
}

function q(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

/** Why `key` is not a valid label key, or null. */
export function labelKeyError(key: string): string | null {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? '' : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0) {
    if (prefix === '' || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) {
      return `invalid label key ${q(key)}: the prefix must be a DNS subdomain (e.g. "example.com/name")`;
    }
  }
  if (name === '' || name.length > 63 || !NAME_PART.test(name)) {
    return `invalid label key ${q(key)}: the name must be 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  }
  return null;
}

/** Why `value` is not a valid label value, or null. */
export function labelValueError(value: string): string | null {
  if (value === '') return null;
  if (value.length > 63 || !NAME_PART.test(value)) {
    return `invalid label value ${q(value)}: must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  }
  return null;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export type SelectorResult = { ok: true; selector: LabelSelector } | { ok: false; errors: string[] };

/**
 * Validates an untrusted selector (as read from the API) and returns a clean copy whose maps have
 * no prototype (a label key such as `constructor` can never hit Object.prototype). Errors are
 * one-liners prefixed with `path` (e.g. `spec.selector.matchExpressions[0].values`).
 * Unknown fields are ignored, as the API server would prune them.
 */
export function validateLabelSelector(raw: unknown, path = 'selector'): SelectorResult {
  const errors: string[] = [];
  if (!isPlainObject(raw)) return { ok: false, errors: [`${path}: must be an object`] };
  const out: { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] } = {};

  const ml = raw.matchLabels;
  if (ml !== undefined && ml !== null) {
    if (!isPlainObject(ml)) {
      errors.push(`${path}.matchLabels: must be a map of strings`);
    } else {
      const labels: Record<string, string> = Object.create(null);
      for (const key of Object.keys(ml)) {
        const value = ml[key];
        const where = `${path}.matchLabels[${q(key)}]`;
        const ke = labelKeyError(key);
        if (ke) errors.push(`${where}: ${ke}`);
        if (typeof value !== 'string') {
          errors.push(`${where}: value must be a string`);
          continue;
        }
        const ve = labelValueError(value);
        if (ve) errors.push(`${where}: ${ve}`);
        labels[key] = value;
      }
      out.matchLabels = labels;
    }
  }

  const me = raw.matchExpressions;
  if (me !== undefined && me !== null) {
    if (!Array.isArray(me)) {
      errors.push(`${path}.matchExpressions: must be a list`);
    } else {
      const reqs: LabelSelectorRequirement[] = [];
      me.forEach((r: unknown, i) => {
        const where = `${path}.matchExpressions[${i}]`;
        if (!isPlainObject(r)) {
          errors.push(`${where}: must be an object with key and operator`);
          return;
        }
        const { key, operator, values } = r;
        let ok = true;
        if (typeof key !== 'string') {
          errors.push(`${where}.key: must be a string`);
          ok = false;
        } else {
          const ke = labelKeyError(key);
          if (ke) {
            errors.push(`${where}.key: ${ke}`);
            ok = false;
          }
        }
        if (typeof operator !== 'string' || !OPERATORS.includes(operator)) {
          errors.push(`${where}.operator: must be one of In, NotIn, Exists, DoesNotExist`);
          ok = false;
        }
        let vals: string[] = [];
        if (values !== undefined && values !== null) {
          if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) {
            errors.push(`${where}.values: must be a list of strings`);
            ok = false;
          } else {
            vals = [...values];
            for (const v of vals) {
              const ve = labelValueError(v);
              if (ve) {
                errors.push(`${where}.values: ${ve}`);
                ok = false;
              }
            }
          }
        }
        // As upstream: In/NotIn need values, Exists/DoesNotExist must have none.
        if (operator === 'In' || operator === 'NotIn') {
          if (vals.length === 0) {
            errors.push(`${where}.values: must not be empty for operator ${operator}`);
            ok = false;
          }
        } else if ((operator === 'Exists' || operator === 'DoesNotExist') && vals.length > 0) {
          errors.push(`${where}.values: must be empty for operator ${operator}`);
          ok = false;
        }
        if (ok) {
          const req: LabelSelectorRequirement = {
            key: key as string,
            operator: operator as LabelSelectorOperator,
          };
          if (operator === 'In' || operator === 'NotIn') req.values = vals;
          reqs.push(req);
        }
      });
      out.matchExpressions = reqs;
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, selector: out };
}

/**
 * Whether `labels` satisfy `selector`: every matchLabels pair AND every matchExpression.
 * Absent or empty selector: true. NotIn and DoesNotExist are satisfied by an absent key (as
 * upstream). A requirement with an unknown operator, or In/NotIn without values, matches nothing
 * (upstream refuses to build such a selector; failing closed never selects an object by mistake).
 */
export function matchesLabelSelector(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (selector === undefined) return true;
  const ml = selector.matchLabels;
  if (ml) {
    for (const key of Object.keys(ml)) {
      if (!has(labels, key) || labels[key] !== ml[key]) return false;
    }
  }
  for (const r of selector.matchExpressions ?? []) {
    const present = has(labels, r.key);
    const values = r.values ?? [];
    switch (r.operator) {
      case 'In':
        if (values.length === 0 || !present || !values.includes(labels[r.key]!)) return false;
        break;
      case 'NotIn':
        if (values.length === 0) return false;
        if (present && values.includes(labels[r.key]!)) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** True when the selector selects everything (absent, or no labels and no expressions). */
export function isEmptySelector(selector: LabelSelector | undefined): boolean {
  return (
    selector === undefined ||
    (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)
  );
}

/** `team=a,env in (x,y),!legacy` — kubectl's rendering, for explain output and logs. */
export function formatLabelSelector(selector: LabelSelector | undefined): string {
  if (isEmptySelector(selector)) return '<everything>';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const r of selector?.matchExpressions ?? []) {
    const vals = [...(r.values ?? [])].join(',');
    if (r.operator === 'In') parts.push(`${r.key} in (${vals})`);
    else if (r.operator === 'NotIn') parts.push(`${r.key} notin (${vals})`);
    else if (r.operator === 'Exists') parts.push(r.key);
    else parts.push(`!${r.key}`);
  }
  return parts.join(',');
}
