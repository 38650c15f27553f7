// Which API groups gained or lost a served kind, learnt from a metadata-only watch on
// CustomResourceDefinitions and APIServices, so the kinds kttl waits for (the optional custom
// kinds, the policy CRDs) are looked up when something changes instead of every 30 s. Idle, kttl
// then makes no request beyond its watches and lease renewals (docs/decisions.md, "Optional kinds
// are found by a watch, not a poll").
//
// A CRD is named `<plural>.<group>`, an APIService `<version>.<group>`: both tell the group that
// changed. Whoever polls asks `changedSince(group, mark)` with the mark it took before its last
// look; the answer is also true while the watch is not synced or after it failed, so a gap in
// the watch falls back to looking (never to missing a kind).
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { isApiError, summarizeError } from './errors.ts';
import type { KubeHttp } from './http.ts';
import { Reflector } from './reflector.ts';
import type { ResourceRef } from './resources.ts';

export const CUSTOM_RESOURCE_DEFINITIONS: ResourceRef = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
};
export const API_SERVICES: ResourceRef = {
  group: 'apiregistration.k8s.io',
  version: 'v1',
  kind: 'APIService',
  plural: 'apiservices',
  namespaced: false,
};

/** After a change, discovery may lag the watch a little: a kind of that group is looked for this long. */
export const SETTLE_MS = 30_000;

interface Seen {
  group: string;
  rv: string;
}

/** The group a CRD or APIService name stands for (`widgets.example.com` → `example.com`). */
export function groupOfApiName(name: string): string {
  const i = name.indexOf('.');
  return i < 0 ? '' : name.slice(i + 1);
}

export interface ApiChangesOptions {
  http: KubeHttp;
  clock: Clock;
  logger: Logger;
  minWatchTimeoutSeconds?: number;
}

export class ApiChanges {
  readonly #o: ApiChangesOptions;
  readonly #reflectors: Reflector<Seen>[];
  #seq = 0;
  /** The sequence number at the last failure (or start): marks before it saw a gap. */
  #gapSeq = 0;
  readonly #groupSeq = new Map<string, number>();
  readonly #groupChangedAt = new Map<string, number>();
  readonly #listeners = new Set<() => void>();
  /** The resources whose first list is complete. */
  readonly #listedOnce = new Set<string>();
  /** Forbidden: this identity may not watch them (a namespace-only install); polling it is. */
  #disabled = false;

  constructor(o: ApiChangesOptions) {
    this.#o = o;
    this.#reflectors = [CUSTOM_RESOURCE_DEFINITIONS, API_SERVICES].map(
      (resource) =>
        new Reflector<Seen>({
          http: o.http,
          resource,
          clock: o.clock,
          logger: o.logger.child({ kind: resource.kind }),
          metadataOnly: true,
          watchList: false, // two tiny paginated lists
          ...(o.minWatchTimeoutSeconds ? { minWatchTimeoutSeconds: o.minWatchTimeoutSeconds } : {}),
          transform: (raw) => ({
            group: groupOfApiName(raw.metadata?.name ?? ''),
            rv: raw.metadata?.resourceVersion ?? '',
          }),
          handler: {
            upsert: (_key, obj, old) => {
              if (old === undefined || old.rv !== obj.rv) this.#changed(obj.group);
            },
            remove: (_key, old) => this.#changed(old.group),
            listed: () => {
              if (this.#listedOnce.has(resource.plural)) return;
              this.#listedOnce.add(resource.plural);
              if (this.#listedOnce.size === this.#reflectors.length) this.#notify();
            },
            failed: (err) => this.#failed(resource, err),
          },
        }),
    );
  }

  start(): void {
    for (const r of this.#reflectors) r.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#reflectors.map((r) => r.stop()));
  }

  /** Calls fn (synchronously, keep it cheap) after any change, and when the watch fails. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** A mark to take right before a look; pass it to changedSince next time. */
  mark(): number {
    return this.#seq;
  }

  /** Whether the watch cannot vouch that nothing of `group` changed since `mark`. */
  changedSince(group: string, mark: number): boolean {
    if (this.#disabled || this.#listedOnce.size < this.#reflectors.length) return true;
    return this.#gapSeq > mark || (this.#groupSeq.get(group) ?? 0) > mark;
  }

  /** Whether `group` changed within SETTLE_MS (discovery may not show it yet). */
  settling(group: string): boolean {
    const at = this.#groupChangedAt.get(group);
    return at !== undefined && this.#o.clock.now() - at < SETTLE_MS;
  }

  #changed(group: string): void {
    this.#seq++;
    this.#groupSeq.set(group, this.#seq);
    this.#groupChangedAt.set(group, this.#o.clock.now());
    if (this.#listedOnce.size === this.#reflectors.length) this.#notify();
  }

  #failed(resource: ResourceRef, err: unknown): void {
    this.#seq++;
    this.#gapSeq = this.#seq;
    if (isApiError(err, 403) && !this.#disabled) {
      // Not an outage: this identity may not read them (e.g. a namespace-only install). Stop
      // asking; the callers look for their kinds on their interval as before.
      this.#disabled = true;
      this.#o.logger.info(
        { resource: resource.plural, err: summarizeError(err) },
        'may not watch CustomResourceDefinitions/APIServices: optional kinds are looked for every interval instead',
      );
      for (const r of this.#reflectors) void r.stop();
    }
    this.#notify();
  }

  #notify(): void {
    for (const fn of this.#listeners) {
      try {
        fn();
      } catch (err) {
        this.#o.logger.error({ err: summarizeError(err) }, 'API change listener failed');
      }
    }
  }
}
