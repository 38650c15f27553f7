// API discovery of the archive's group, as the aggregation layer and kubectl read it:
// /apis (APIGroupList), /apis/archive.kttl.dev (APIGroup), /apis/archive.kttl.dev/v1alpha1
// (APIResourceList). The aggregator asks for the aggregated (v2) form first and falls back to
// these when the answer is plain JSON.
import { GROUP, GROUP_VERSION, KIND, RESOURCE, VERSION } from './resources.ts';

export function apiGroup(): Record<string, unknown> {
  const version = { groupVersion: GROUP_VERSION, version: VERSION };
  return { kind: 'APIGroup', apiVersion: 'v1', name: GROUP, versions: [version], preferredVersion: version };
}

export function apiGroupList(): Record<string, unknown> {
  const { kind: _k, apiVersion: _a, ...group } = apiGroup();
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [group] };
}

export function apiResourceList(): Record<string, unknown> {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: GROUP_VERSION,
    resources: [
      { name: RESOURCE, singularName: 'deletedobject', namespaced: true, kind: KIND, verbs: ['get', 'list'] },
      { name: `${RESOURCE}/log`, singularName: '', namespaced: true, kind: KIND, verbs: ['get'] },
    ],
  };
}
