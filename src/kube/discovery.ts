// Finding where a kind is served (plural, namespaced, version) through the discovery API, so any
// custom resource can be watched by naming its group and kind. A kind that is not installed is
// reported as null (the caller retries later), never thrown.
import { isApiError } from './errors.ts';
import type { KubeHttp } from './http.ts';
import type { ResourceRef } from './resources.ts';

// Discovery repeats every 30 s for kinds not installed: it must not take tokens from deletions.
const NOT_ON_BUDGET = { unlimited: true, timeoutMs: 30_000 } as const;

interface APIGroup {
  versions?: Array<{ version: string }>;
  preferredVersion?: { version: string };
}

interface APIResourceList {
  resources?: Array<{
    name: string;
    kind: string;
    namespaced: boolean;
    singularName?: string;
    shortNames?: string[];
    verbs?: string[];
  }>;
}

/** A served kind with the names kubectl accepts for it (the CLI resolves them). */
export interface DiscoveredKind {
  resource: ResourceRef;
  /** The resource's singular name (`widget`); the lower-cased kind when the server gives none. */
  singular: string;
  shortNames: readonly string[];
  verbs: readonly string[];
}

/**
 * The resource of `group`/`kind`, at `version` when it is served, else the group's preferred
 * version. null when the group or kind is not installed.
 */
export async function discoverResource(
  http: KubeHttp,
  group: string,
  kind: string,
  version?: string,
): Promise<ResourceRef | null> {
  return (await discoverKind(http, group, kind, version))?.resource ?? null;
}

/** As discoverResource, with the resource's singular name, short names and verbs. */
export async function discoverKind(
  http: KubeHttp,
  group: string,
  kind: string,
  version?: string,
): Promise<DiscoveredKind | null> {
  let versions: string[];
  if (group === '') {
    versions = ['v1'];
  } else {
    let g: APIGroup;
    try {
      g = await http.request<APIGroup>('get', 'GET', `/apis/${group}`, NOT_ON_BUDGET);
    } catch (err) {
      if (isApiError(err, 404)) return null;
      throw err;
    }
    const served = (g.versions ?? []).map((v) => v.version);
    const preferred = g.preferredVersion?.version;
    versions = [
      ...new Set([version, preferred, ...served].filter((v): v is string => !!v && served.includes(v))),
    ];
  }
  for (const v of versions) {
    let list: APIResourceList;
    try {
      list = await http.request<APIResourceList>(
        'get',
        'GET',
        group ? `/apis/${group}/${v}` : '/api/v1',
        NOT_ON_BUDGET,
      );
    } catch (err) {
      if (isApiError(err, 404)) continue;
      throw err;
    }
    const r = (list.resources ?? []).find((x) => x.kind === kind && !x.name.includes('/'));
    if (r)
      return {
        resource: { group, version: v, kind, plural: r.name, namespaced: r.namespaced },
        singular: r.singularName || kind.toLowerCase(),
        shortNames: r.shortNames ?? [],
        verbs: r.verbs ?? [],
      };
  }
  return null;
}
