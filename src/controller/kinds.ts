// Which kinds the controller watches: Jobs, Pods, the built-in custom kinds (Argo, Tekton,
// Kubeflow, Ray, Spark) and any kind a policy names — each once it is installed. A kind that is not
// installed is reported once and looked for again every interval, so a CRD installed later is
// picked up and a missing one never makes a crash loop.
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.ts';
import { discoverResource } from '../kube/discovery.ts';
import { summarizeError } from '../kube/errors.ts';
import type { KubeHttp } from '../kube/http.ts';
import { BUILTIN_FINISH_RULES, type FinishRule } from '../rules/finish.ts';
import type { TtlController } from './controller.ts';

export interface KindSource {
  /** Kinds named by policies, with the rule a policy gives them (null: use the built-in). */
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
  intervalMs?: number;
}

const key = (group: string, kind: string) => `${group}/${kind}`;

export class KindManager {
  readonly #o: KindManagerOptions;
  readonly #reportedMissing = new Set<string>();
  #timer: TimerHandle | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;
  #podsTargeted = false;
  /** Finish rules currently in force per watched custom kind (JSON), to notice policy changes. */
  readonly #rules = new Map<string, string>();

  constructor(o: KindManagerOptions) {
    this.#o = o;
    this.#podsTargeted = o.policies?.targetsPods() ?? false;
  }

  start(): void {
    this.sync();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#o.clock.clearTimer(this.#timer);
  }

  /** Re-evaluates the wanted kinds (call on policy changes); serialised. */
  sync(): Promise<void> {
    this.#running = this.#running
      .then(() => this.#sync())
      .catch((err) => this.#o.logger.warn({ err: summarizeError(err) }, 'kind discovery failed'));
    return this.#running;
  }

  #wanted(): Map<string, { group: string; kind: string; version?: string }> {
    const wanted = new Map<string, { group: string; kind: string; version?: string }>();
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

  async #sync(): Promise<void> {
    if (this.#stopped) return;
    const { controller, http, logger, policies } = this.#o;
    let missing = 0;
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
          if (this.#stopped) return;
          await controller.restartKind(want.group, want.kind, rules);
        }
        continue;
      }
      if (!hasRule) {
        if (!this.#reportedMissing.has(`${k}|rule`)) {
          this.#reportedMissing.add(`${k}|rule`);
          logger.warn(
            { kind: k },
            'a policy names this kind without a `finished` rule and kttl has no built-in one: not watched',
          );
        }
        continue;
      }
      const resource = await discoverResource(http, want.group, want.kind, want.version);
      if (this.#stopped) return; // stopped while we asked: add nothing to a stopping controller
      if (!resource) {
        missing++;
        if (!this.#reportedMissing.has(k)) {
          this.#reportedMissing.add(k);
          logger.info({ kind: k }, 'kind not installed (no such API); will look again');
        }
        continue;
      }
      this.#reportedMissing.delete(k);
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
    if (!this.#stopped) {
      if (this.#timer) this.#o.clock.clearTimer(this.#timer);
      this.#timer = this.#o.clock.setTimer(() => void this.sync(), this.#o.intervalMs ?? 30_000);
    }
    void missing;
  }
}
