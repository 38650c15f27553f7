// Object references and kinds as kubectl spells them, parsed without a cluster: `job/NAME`,
// `Workflow/NAME`, `jobs.batch/NAME`, `jobs.v1.batch/NAME`, `batch/job/NAME`, and bare kinds
// (`jobs`, `pods`, `jobs,pods`, `workflows.argoproj.io`). Which kind a spelling means is decided by
// the resolver (src/cli/shared/kinds.ts), which knows the built-in kinds, the policies and discovery.
import type { ResourceRef } from '../../kube/resources.ts';
import type { PropagationPolicy } from '../../rules/types.ts';
import { UserError } from '../errors.ts';

export interface KindInfo {
  resource: ResourceRef;
  /** The cascade of a DELETE without --propagation-policy: the registry's (src/rules/kinds.ts). */
  defaultPropagation: PropagationPolicy;
  /** The resource's singular name, for output: `job`, `pod`, `workflow`. */
  singular: string;
}

/**
 * One way to read a kind spelling: a resource name (plural, singular, short name or kind, all
 * lower-cased) with the group and version when they were written. A group of '' is the core group.
 */
export interface KindReading {
  name: string;
  group?: string;
  version?: string;
}

export interface KindSpelling {
  /** As typed, for messages. */
  text: string;
  /** The readings to try, in order (kubectl tries `name.version.group` before `name.group`). */
  readings: readonly KindReading[];
}

/** A DNS label (resource names, versions, each part of a group). */
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const VERSION = /^v[0-9]+((alpha|beta)[0-9]+)?$/;

const KIND_FORMS = 'KIND, KIND.GROUP or KIND.VERSION.GROUP, e.g. jobs, workflow, workflows.argoproj.io';

function malformed(text: string, why: string): UserError {
  return new UserError(`invalid kind ${JSON.stringify(text)}: ${why} (expected ${KIND_FORMS})`);
}

/** Parses one kind spelling (case-insensitive); a malformed one is a user error naming the problem. */
export function parseKindSpelling(text: string): KindSpelling {
  const t = text.trim().toLowerCase();
  if (t === '') throw malformed(text, 'empty');
  const bad = /[^-a-z0-9./]/.exec(t);
  if (bad) throw malformed(text, `${JSON.stringify(bad[0])} is not allowed`);
  if (/(^|[./])\.|\.($|[./])/.test(t)) throw malformed(text, 'empty part');
  const slashes = t.split('/');
  if (slashes.length > 3) throw malformed(text, 'too many "/"');
  if (slashes.some((s) => s === '')) throw malformed(text, 'empty part');
  let readings: KindReading[];
  if (slashes.length > 1) {
    // `GROUP/KIND`, `VERSION/KIND` (core group) or `GROUP/VERSION/KIND`, as in an apiVersion.
    const name = slashes.at(-1)!;
    if (name.includes('.')) throw malformed(text, `"." in the kind ${JSON.stringify(name)}`);
    if (slashes.length === 3) {
      readings = [{ name, group: slashes[0]!, version: slashes[1]! }];
    } else if (VERSION.test(slashes[0]!)) {
      readings = [{ name, group: '', version: slashes[0]! }];
    } else {
      readings = [{ name, group: slashes[0]! }];
    }
  } else {
    const dot = t.indexOf('.');
    if (dot < 0) {
      readings = [{ name: t }];
    } else {
      const name = t.slice(0, dot);
      const rest = t.slice(dot + 1);
      const second = rest.indexOf('.');
      readings = [];
      if (second < 0 && VERSION.test(rest)) {
        // `pods.v1`: the core group at a version.
        readings.push({ name, group: '', version: rest });
      } else if (second > 0 && VERSION.test(rest.slice(0, second))) {
        readings.push({ name, group: rest.slice(second + 1), version: rest.slice(0, second) });
      }
      readings.push({ name, group: rest });
    }
  }
  for (const r of readings) {
    if (!LABEL.test(r.name)) throw malformed(text, `${JSON.stringify(r.name)} is not a resource name`);
    if (r.version !== undefined && !VERSION.test(r.version))
      throw malformed(text, `${JSON.stringify(r.version)} is not a version`);
  }
  // The widest reading's group must be a DNS subdomain (each part a label).
  const group = readings.at(-1)!.group ?? '';
  if (group !== '' && group.split('.').some((p) => !LABEL.test(p)))
    throw malformed(text, `${JSON.stringify(group)} is not an API group`);
  return { text, readings };
}

/** `jobs`, `pods`, `jobs,pods,workflows` (empty items dropped, order kept). */
export function parseKindList(text: string): KindSpelling[] {
  const out: KindSpelling[] = [];
  for (const part of text.split(',')) if (part.trim() !== '') out.push(parseKindSpelling(part));
  if (out.length === 0) throw malformed(text, 'empty');
  return out;
}

/** A reference as typed, before its kind is resolved. */
export interface RefSpelling {
  kind: KindSpelling;
  name: string;
  /** As typed, for messages. */
  text: string;
}

/** A reference whose kind is resolved. */
export interface ObjectRef {
  kind: KindInfo;
  name: string;
  /** As typed, for messages. */
  text: string;
}

// A DNS-1123 subdomain (the names of Jobs, Pods and custom resources), checked so that a typo gives
// a clear message rather than an odd URL.
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** `KIND/NAME`. A bare word is refused with a hint, since it could be a kind or a name. */
export function parseRef(text: string): RefSpelling {
  const last = text.lastIndexOf('/');
  if (last < 0) {
    throw new UserError(
      `expected KIND/NAME, got ${JSON.stringify(text)} (e.g. job/${text || 'NAME'} or pod/${text || 'NAME'})`,
    );
  }
  // `batch/job/NAME` style: the kind may hold slashes (group/kind, group/version/kind).
  const name = text.slice(last + 1);
  if (!NAME.test(name)) {
    throw new UserError(
      `invalid name ${JSON.stringify(name)} in ${JSON.stringify(text)} (lower-case letters, digits, "-" and ".")`,
    );
  }
  return { kind: parseKindSpelling(text.slice(0, last)), name, text };
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
