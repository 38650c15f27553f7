// Whether a user may read: one SubjectAccessReview per (user, verb, namespace, resource, name), as
// metrics-server's delegated authorizer does, cached briefly (allowed 10 s, denied 5 s) and bounded.
import type { KubeHttp } from '../../kube/http.ts';
import type { UserInfo } from './authn.ts';
import { GROUP, RESOURCE, VERSION } from './resources.ts';

export interface AccessRequest {
  user: UserInfo;
  verb: 'get' | 'list' | 'watch';
  namespace?: string;
  name?: string;
  subresource?: 'log';
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

export interface AuthorizerOptions {
  http: KubeHttp;
  now?: () => number;
  allowedTtlMs?: number;
  deniedTtlMs?: number;
  maxEntries?: number;
}

/** The SubjectAccessReview the API server gets for a request (pure). */
export function subjectAccessReview(a: AccessRequest): Record<string, unknown> {
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: a.user.name,
      groups: a.user.groups,
      ...(Object.keys(a.user.extra).length ? { extra: a.user.extra } : {}),
      resourceAttributes: {
        group: GROUP,
        version: VERSION,
        resource: RESOURCE,
        ...(a.subresource ? { subresource: a.subresource } : {}),
        verb: a.verb,
        ...(a.namespace ? { namespace: a.namespace } : {}),
        ...(a.name ? { name: a.name } : {}),
      },
    },
  };
}

export class Authorizer {
  readonly #http: KubeHttp;
  readonly #now: () => number;
  readonly #allowedTtl: number;
  readonly #deniedTtl: number;
  readonly #max: number;
  readonly #cache = new Map<string, { decision: Decision; until: number }>();
  /** SubjectAccessReviews sent (tests look at the cache through it). */
  reviews = 0;

  constructor(o: AuthorizerOptions) {
    this.#http = o.http;
    this.#now = o.now ?? Date.now;
    this.#allowedTtl = o.allowedTtlMs ?? 10_000;
    this.#deniedTtl = o.deniedTtlMs ?? 5_000;
    this.#max = o.maxEntries ?? 10_000;
  }

  async authorize(a: AccessRequest): Promise<Decision> {
    const body = subjectAccessReview(a);
    const key = JSON.stringify(body.spec);
    const now = this.#now();
    const hit = this.#cache.get(key);
    if (hit && hit.until > now) return hit.decision;
    this.reviews++;
    const res = await this.#http.request<{
      status?: { allowed?: boolean; denied?: boolean; reason?: string };
    }>('create', 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', { body });
    const decision = { allowed: res.status?.allowed === true, reason: res.status?.reason ?? '' };
    this.#cache.delete(key);
    if (this.#cache.size >= this.#max) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(key, { decision, until: now + (decision.allowed ? this.#allowedTtl : this.#deniedTtl) });
    return decision;
  }
}
