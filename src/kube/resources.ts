// Where a kind lives in the API (group, version, plural) and its URL paths.

export interface ResourceRef {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export const JOBS: ResourceRef = {
  group: 'batch',
  version: 'v1',
  kind: 'Job',
  plural: 'jobs',
  namespaced: true,
};
export const PODS: ResourceRef = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
export const LEASES: ResourceRef = {
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  namespaced: true,
};
export const EVENTS: ResourceRef = {
  group: 'events.k8s.io',
  version: 'v1',
  kind: 'Event',
  plural: 'events',
  namespaced: true,
};

export function apiVersionOf(r: Pick<ResourceRef, 'group' | 'version'>): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

function prefix(r: ResourceRef): string {
  return r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
}

/** The collection: all namespaces when namespace is undefined (or the kind is cluster-scoped). */
export function collectionPath(r: ResourceRef, namespace?: string): string {
  if (r.namespaced && namespace)
    return `${prefix(r)}/namespaces/${encodeURIComponent(namespace)}/${r.plural}`;
  return `${prefix(r)}/${r.plural}`;
}

export function objectPath(r: ResourceRef, namespace: string, name: string): string {
  return `${collectionPath(r, r.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
}

/** `Job` / `batch/Job` / `jobs.batch` style key used in logs and metric labels. */
export function kindKey(r: Pick<ResourceRef, 'group' | 'kind'>): string {
  return r.group ? `${r.group}/${r.kind}` : r.kind;
}
