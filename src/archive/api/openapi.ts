// The OpenAPI documents of the archive's group (v2 for the aggregator's merged /openapi/v2, v3 for
// `kubectl explain` through /openapi/v3). Schemas under names of their own, so the merge with the
// API server's documents never collides.
import { createHash } from 'node:crypto';
import { GROUP, GROUP_VERSION, KIND, LIST_KIND, RESOURCE, VERSION } from './resources.ts';

const PREFIX = 'dev.kttl.archive.v1alpha1.';

type Schema = Record<string, unknown>;

const str = (description: string): Schema => ({ type: 'string', description });
const int = (description: string): Schema => ({ type: 'integer', format: 'int64', description });
const map = (description: string): Schema => ({
  type: 'object',
  description,
  additionalProperties: { type: 'string' },
});
const gvk = (kind: string) => [{ group: GROUP, version: VERSION, kind }];

function schemas(ref: (name: string) => Schema): Record<string, Schema> {
  const objectMeta: Schema = {
    type: 'object',
    description: 'The record identity: its name is <kind>.<object name>.<first 8 characters of the uid>.',
    properties: {
      name: str('kind.name.uid-prefix of the deleted object'),
      namespace: str('The namespace the object was deleted from'),
      uid: str('The deleted object uid'),
      resourceVersion: str('The resourceVersion kttl judged and deleted'),
      creationTimestamp: { type: 'string', format: 'date-time', description: 'When kttl deleted it' },
      labels: map('The deleted object labels'),
    },
  };
  const identity: Schema = {
    type: 'object',
    description: 'What was deleted',
    properties: {
      apiVersion: str('apiVersion of the deleted object'),
      kind: str('kind of the deleted object'),
      name: str('name of the deleted object'),
      uid: str('uid of the deleted object'),
      resourceVersion: str('resourceVersion that was deleted'),
    },
  };
  const deletedObject: Schema = {
    type: 'object',
    description: 'What kttl archived about an object it deleted (docs/archive.md). Read-only.',
    properties: {
      apiVersion: str('archive.kttl.dev/v1alpha1'),
      kind: str('DeletedObject'),
      metadata: ref('ObjectMeta'),
      object: ref('ObjectIdentity'),
      cluster: str('--cluster-name of the kttl that deleted it'),
      outcome: str('succeeded or failed'),
      finishedAt: { type: 'string', format: 'date-time', description: 'When it finished (API server clock)' },
      finishTimeSource: str('condition, containerFinishedAt, field or firstSeen'),
      deletedAt: { type: 'string', format: 'date-time', description: 'When kttl deleted it' },
      ttl: {
        type: 'object',
        description: 'The TTL that expired',
        properties: {
          seconds: int('TTL in seconds'),
          source: str('annotation, field, policy or hook'),
          detail: str('Which key, field or policy gave it'),
        },
      },
      reason: str('kttl reason, as in its TTLExpired Event'),
      state: str('pending (committed before the DELETE) or deleted'),
      annotations: map('The deleted object annotations'),
      ownerReferences: { type: 'array', items: { type: 'object' }, description: 'Its owner references' },
      manifest: {
        type: 'object',
        description: 'The object as the API server returned it (no managedFields)',
      },
      events: { type: 'array', items: { type: 'object' }, description: 'Events about it and its pods' },
      logs: {
        type: 'array',
        description: 'Archived container logs (the text: the log subresource)',
        items: {
          type: 'object',
          properties: {
            pod: str('Pod name'),
            container: str('Container name'),
            containerType: str('regular, init or ephemeral'),
            truncated: { type: 'boolean', description: 'Only the last lines were kept' },
            bytes: int('Archived bytes'),
            error: str('Why no log could be read'),
          },
        },
      },
      captureErrors: { type: 'array', items: { type: 'string' }, description: 'What could not be captured' },
    },
    'x-kubernetes-group-version-kind': gvk(KIND),
  };
  const list: Schema = {
    type: 'object',
    description: 'A list of DeletedObjects, newest first (items carry the summary only).',
    required: ['items'],
    properties: {
      apiVersion: str('archive.kttl.dev/v1alpha1'),
      kind: str('DeletedObjectList'),
      metadata: {
        type: 'object',
        properties: { continue: str('Token of the next page'), resourceVersion: str('Always empty') },
      },
      items: { type: 'array', items: ref(KIND) },
    },
    'x-kubernetes-group-version-kind': gvk(LIST_KIND),
  };
  return { ObjectMeta: objectMeta, ObjectIdentity: identity, [KIND]: deletedObject, [LIST_KIND]: list };
}

const base = `/apis/${GROUP_VERSION}`;

function operation(id: string, action: string, kind: string, response: Schema, v3: boolean): Schema {
  const ok = v3
    ? { description: 'OK', content: { 'application/json': { schema: response } } }
    : { description: 'OK', schema: response };
  return {
    operationId: id,
    tags: ['archiveKttlDev_v1alpha1'],
    responses: { '200': ok, '401': { description: 'Unauthorized' } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group: GROUP, version: VERSION, kind },
  };
}

function paths(ref: (name: string) => Schema, v3: boolean): Record<string, unknown> {
  const text = v3
    ? { description: 'OK', content: { 'text/plain': { schema: { type: 'string' } } } }
    : { description: 'OK', schema: { type: 'string' } };
  return {
    [`${base}/${RESOURCE}`]: {
      get: operation('listArchiveV1alpha1DeletedObjectForAllNamespaces', 'list', KIND, ref(LIST_KIND), v3),
    },
    [`${base}/namespaces/{namespace}/${RESOURCE}`]: {
      get: operation('listArchiveV1alpha1NamespacedDeletedObject', 'list', KIND, ref(LIST_KIND), v3),
    },
    [`${base}/namespaces/{namespace}/${RESOURCE}/{name}`]: {
      get: operation('readArchiveV1alpha1NamespacedDeletedObject', 'get', KIND, ref(KIND), v3),
    },
    [`${base}/namespaces/{namespace}/${RESOURCE}/{name}/log`]: {
      get: {
        ...operation('readArchiveV1alpha1NamespacedDeletedObjectLog', 'get', KIND, {}, v3),
        responses: { '200': text },
      },
    },
  };
}

const info = { title: 'kttl archive', version: VERSION };

export function openApiV2(): Record<string, unknown> {
  const ref = (n: string) => ({ $ref: `#/definitions/${PREFIX}${n}` });
  const defs = Object.fromEntries(Object.entries(schemas(ref)).map(([k, v]) => [PREFIX + k, v]));
  return { swagger: '2.0', info, paths: paths(ref, false), definitions: defs };
}

export function openApiV3(): Record<string, unknown> {
  const ref = (n: string) => ({ $ref: `#/components/schemas/${PREFIX}${n}` });
  const s = Object.fromEntries(Object.entries(schemas(ref)).map(([k, v]) => [PREFIX + k, v]));
  return { openapi: '3.0.0', info, paths: paths(ref, true), components: { schemas: s } };
}

let v3Text: string | undefined;
/** The v3 document's text (it never changes while the process runs). */
export function openApiV3Text(): string {
  v3Text ??= JSON.stringify(openApiV3());
  return v3Text;
}

/** /openapi/v3: the index of group-version documents, with a hash so clients cache them. */
export function openApiV3Index(): Record<string, unknown> {
  const hash = createHash('sha512').update(openApiV3Text()).digest('hex').slice(0, 128).toUpperCase();
  return {
    paths: {
      [`apis/${GROUP_VERSION}`]: { serverRelativeURL: `/openapi/v3/apis/${GROUP_VERSION}?hash=${hash}` },
    },
  };
}
