// Which kinds the controller watches: Jobs, Pods, the built-in custom kinds (src/rules/kinds.ts)
// and any kind a policy names — each once it is installed. A kind that is not
// installed is reported once and looked for again every interval (src/kube/optional-resource.ts),
// so a CRD installed later is picked up and a missing one never makes a crash loop.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { ApiChanges } from '../kube/api-changes.ts';
import { discoverResource } from '../kube/discovery.ts';
import { summarizeError } from '../kube/errors.ts';
import type { KubeHttp } from '../kube/http.ts';
import { OptionalResource, ProbeLoop, type ProbeRound } from '../kube/optional-resource.ts';
import type { ResourceRef } from '../kube/resources.ts';
import { BUILTIN_FINISH_RULES, type FinishRule } from '../rules/finish.ts';
import type { TtlController } from './controller.ts';

export interface KindSource {
  /** Kinds named by policies (with the version a policy names, if any). */
  namedKinds(): Array<{ group: string; kind: string; version?: string }>;
  /** The distinct finish rules policies give a kind (each applies only where its policy selects). */
  finishRulesOf(apiVersion: string, kind: string): Array<{ key: string; rule: FinishRule }>;
  targetsPods(): boolean;
}

export interface KindManagerOptions {
  http: KubeHttp;
  clock: Clock;
  logger: Logger;
  controller: TtlController;
  policies: KindSource | null;
  /** Watch the built-in custom kinds when installed. */
  builtins: boolean;
  /** Extra kinds from flags (`group/Kind`). */
  extra: Array<{ group: string; kind: string }>;
  /** How often kinds not installed are looked for again (default 30 s). */
  intervalMs?: number;
  /**
   * CRD/APIService changes: with them a kind not installed is looked for again only when its
   * group changed (or the watch cannot vouch for it), not every interval (src/kube/api-changes.ts).
   */
  apiChanges?: ApiChanges;
}

type Wanted = { group: string; kind: string; version?: string };
/** `mark`: o.apiChanges.mark() taken before the last look. */
type Installed = { want: Wanted; api: OptionalResource<ResourceRef>; mark: number };

const key = (group: string, kind: string) => `${group}/${kind}`;

export class KindManager {
  readonly #o: KindManagerOptions;
  /** Kinds named without a finish rule, already reported. */
  readonly #reportedNoRule = new Set<string>();
  /** Whether each wanted kind is installed, with the version currently wanted for it. */
  readonly #installed = new Map<string, Installed>();
  readonly #loop: ProbeLoop;
  #stopped = false;
  #unsubscribe: (() => void) | undefined;
  #podsTargeted = false;
  /** Finish rules currently in force per watched custom kind (JSON), to notice policy changes. */
  readonly #rules = new Map<string, string>();

  constructor(o: KindManagerOptions) {
    this.#o = o;
    this.#podsTargeted = o.policies?.targetsPods() ?? false;
    this.#loop = new ProbeLoop({
      clock: o.clock,
      intervalMs: o.intervalMs ?? 30_000,
      round: () => this.#sync(),
      onError: (err) => o.logger.warn({ err: summarizeError(err) }, 'kind discovery failed'),
    });
  }

  start(): void {
    this.#loop.start();
    this.#unsubscribe = this.#o.apiChanges?.onChange(() => void this.#loop.wake());
  }

  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    void this.#loop.stop();
  }

  /** Re-evaluates the wanted kinds now (call on policy changes); one pass at a time. */
  sync(): Promise<void> {
    return this.#loop.wake();
  }

  #wanted(): Map<string, Wanted> {
    const wanted = new Map<string, Wanted>();
    if (this.#o.builtins) {
      for (const k of Object.keys(BUILTIN_FINISH_RULES)) {
        const i = k.lastIndexOf('/');
        wanted.set(k, { group: k.slice(0, i), kind: k.slice(i + 1) });
      }
    }
    for (const k of this.#o.extra) wanted.set(key(k.group, k.kind), k);
    for (const k of this.#o.policies?.namedKinds() ?? []) wanted.set(key(k.group, k.kind), k);
    // Jobs and Pods are watched from the start.
    wanted.delete('batch/Job');
    wanted.delete('/Pod');
    return wanted;
  }

  /** Whether a kind is installed, and where it is served (kept across passes: reported once). */
  #api(k: string, want: Wanted): Installed {
    const known = this.#installed.get(k);
    if (known) {
      if (known.want.version !== want.version) known.mark = -1; // look again for the other version
      known.want = want; // a policy may name another version now
      return known;
    }
    const entry: Installed = {
      mark: -1,
      want,
      api: new OptionalResource<ResourceRef>({
        clock: this.#o.clock,
        look: () => discoverResource(this.#o.http, entry.want.group, entry.want.kind, entry.want.version),
      }),
    };
    this.#installed.set(k, entry);
    return entry;
  }

  async #sync(): Promise<ProbeRound> {
    const round = { failed: false, uncertain: false };
    if (this.#stopped) return round;
    const { controller, logger, policies } = this.#o;
    for (const [k, want] of this.#wanted()) {
      const watched = controller.hasKind(want.group, want.kind);
      const apiVersion = `${want.group}/${want.version ?? 'v1'}`;
      const rules = policies?.finishRulesOf(apiVersion, want.kind) ?? [];
      const hasRule = rules.length > 0 || Object.hasOwn(BUILTIN_FINISH_RULES, k);
      const rulesKey = rules.map((r) => r.key).join('\n');
      if (watched) {
        if (this.#rules.get(k) !== rulesKey) {
          this.#rules.set(k, rulesKey);
          logger.info({ kind: k }, 'finish rules changed: re-reading the kind');
          if (this.#stopped) return round;
          await controller.restartKind(want.group, want.kind, rules);
        }
        continue;
      }
      if (!hasRule) {
        if (!this.#reportedNoRule.has(k)) {
          this.#reportedNoRule.add(k);
          logger.warn(
            { kind: k },
            'a policy names this kind without a `finished` rule and kttl has no built-in one: not watched',
          );
        }
        continue;
      }
      const entry = this.#api(k, want);
      const changes = this.#o.apiChanges;
      if (
        changes &&
        entry.api.presence === 'absent' &&
        !changes.changedSince(want.group, entry.mark) &&
        !changes.settling(want.group)
      )
        continue; // nothing of its group changed since it was found missing: no request
      if (changes) entry.mark = changes.mark();
      const found = await entry.api.look();
      if (this.#stopped) return round; // stopped while we asked: add nothing to a stopping controller
      if (found.state === 'error') {
        round.failed = true;
        logger.warn({ kind: k, err: summarizeError(found.error) }, 'kind discovery failed');
        continue;
      }
      if (found.state !== 'present') {
        // Its group just changed: discovery may lag the CRD watch, look again soon.
        if (changes?.settling(want.group)) round.uncertain = true;
        if (found.was !== 'absent')
          logger.info({ kind: k }, 'kind not installed (no such API); will look again');
        continue;
      }
      const resource = found.value;
      this.#rules.set(k, rulesKey);
      controller.addKind({ resource, defaultPropagation: 'Background', finishRules: rules });
      logger.info({ kind: k, version: resource.version, plural: resource.plural }, 'watching kind');
    }
    const podsTargeted = policies?.targetsPods() ?? false;
    if (podsTargeted !== this.#podsTargeted) {
      this.#podsTargeted = podsTargeted;
      if (controller.hasKind('', 'Pod') && !this.#stopped) {
        logger.info({ podsTargeted }, 'a policy now names Pods (or no longer does): re-reading Pods');
        await controller.restartKind('', 'Pod');
      }
    }
    return round;
  }
}
