// Object references as kubectl spells them: `job/NAME`, `jobs/NAME`, `pod/NAME`, `Job/NAME`,
// `jobs.batch/NAME`, and bare kinds (`jobs`, `pods`, `jobs,pods`) for commands that take a kind.
import { JOBS, PODS, type ResourceRef } from '../../kube/resources.ts';
import type { PropagationPolicy } from '../../rules/types.ts';
import { UserError } from '../errors.ts';

export interface KindInfo {
  resource: ResourceRef;
  /** Upstream's default cascade: Jobs Foreground, Pods Background (SPEC section 3). */
  defaultPropagation: PropagationPolicy;
  /** Short name for output: `job`, `pod`. */
  singular: string;
}

export const JOB_KIND: KindInfo = { resource: JOBS, defaultPropagation: 'Foreground', singular: 'job' };
export const POD_KIND: KindInfo = { resource: PODS, defaultPropagation: 'Background', singular: 'pod' };
export const KINDS: readonly KindInfo[] = [JOB_KIND, POD_KIND];

/** Every spelling of each kind, lower-cased (kubectl is case-insensitive about kinds). */
const ALIASES: ReadonlyMap<string, KindInfo> = new Map([
  ...['job', 'jobs', 'job.batch', 'jobs.batch', 'batch/job', 'job.v1.batch', 'jobs.v1.batch'].map(
    (a) => [a, JOB_KIND] as const,
  ),
  ...['pod', 'pods', 'po', 'pod.v1', 'pods.v1', 'v1/pod'].map((a) => [a, POD_KIND] as const),
]);

export const KIND_HINT = 'jobs or pods';

export function parseKind(text: string): KindInfo {
  const k = ALIASES.get(text.trim().toLowerCase());
  if (!k) throw new UserError(`unknown kind ${JSON.stringify(text)} (use ${KIND_HINT})`);
  return k;
}

/** `jobs`, `pods`, `jobs,pods` (duplicates dropped, order kept). */
export function parseKindList(text: string): KindInfo[] {
  const out: KindInfo[] = [];
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const k = parseKind(part);
    if (!out.includes(k)) out.push(k);
  }
  if (out.length === 0) throw new UserError(`unknown kind ${JSON.stringify(text)} (use ${KIND_HINT})`);
  return out;
}

export interface ObjectRef {
  kind: KindInfo;
  name: string;
  /** As typed, for messages. */
  text: string;
}

// A DNS-1123 subdomain (Job and Pod names), checked so that a typo gives a clear message rather
// than an odd URL.
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** `KIND/NAME`. A bare word is refused with a hint, since it could be a kind or a name. */
export function parseRef(text: string): ObjectRef {
  const slash = text.indexOf('/');
  if (slash < 0) {
    throw new UserError(
      `expected KIND/NAME, got ${JSON.stringify(text)} (e.g. job/${text || 'NAME'} or pod/${text || 'NAME'})`,
    );
  }
  // `batch/job/NAME` style: the kind may hold one slash (group/kind).
  const last = text.lastIndexOf('/');
  const kind = parseKind(text.slice(0, last));
  const name = text.slice(last + 1);
  if (!NAME.test(name)) {
    throw new UserError(
      `invalid name ${JSON.stringify(name)} in ${JSON.stringify(text)} (lower-case letters, digits, "-" and ".")`,
    );
  }
  return { kind, name, text };
}

/** `job/NAME` for messages and tables. */
export function refText(kind: KindInfo, name: string): string {
  return `${kind.singular}/${name}`;
}

/** `jobs.batch` / `pods`: the resource as RBAC and kubectl name it. */
export function resourceText(r: ResourceRef): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

/** `job.batch`, `pod`: the kind as kubectl prints it in `job.batch "x" deleted`. */
export function kubectlKind(kind: KindInfo): string {
  const r = kind.resource;
  return `${r.kind.toLowerCase()}${r.group ? `.${r.group}` : ''}`;
}

/** `job.batch/NAME`, `pod/NAME`. */
export function kubectlName(kind: KindInfo, name: string): string {
  return `${kubectlKind(kind)}/${name}`;
}
