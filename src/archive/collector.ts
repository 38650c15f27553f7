// Reads what the archive keeps besides the object itself: its pods' last log lines and the Events
// of the object and its pods (docs/archive.md). Pure I/O on the archive's own KubeHttp (its own
// budget). Only pods, pods/log and events are read — never Secrets. It never throws for an API
// failure: what could not be read is in `errors` (worth retrying: the caller decides whether the
// deletion waits), and a log that does not exist (a container that never started, a kubelet that
// has no such log) is an entry with `error`.
//
// Requests, with P pods and C containers that ran:
//   pods   — Pod: 0 when `object` is given, else 1 GET; Job: 1 list (2 when no pod carries the
//            batch.kubernetes.io/controller-uid label: the older controller-uid label is tried);
//            other kinds: 1 list of the namespace's pods (owner references), +1 with `podLabel`.
//   logs   — 1 per container that ran; 2 when its last lines exceed logBytes, 3 when the lines that
//            fitted were shorter than the last ones (see readLog).
//   events — 1 list per uid (object + P pods) with fieldSelector involvedObject.uid, while that is
//            at most EVENT_LISTS_PER_UID_MAX lists; past it, one list of the namespace's Events
//            filtered here (fewer requests; pages of 500).
import { limitConcurrency } from '../kube/concurrency.ts';
import { isApiError } from '../kube/errors.ts';
import type { KubeHttp } from '../kube/http.ts';
import type { ArchivedEvent, ContainerLog } from './types.ts';

export interface CollectTarget {
  apiVersion: string;
  kind: string;
  /** '' for a cluster-scoped object (it then has Events but no pods found here). */
  namespace: string;
  name: string;
  uid: string;
}

export interface CollectOptions {
  /** Read container logs (--archive-logs); Events are read either way. */
  logs: boolean;
  /** Last lines per container (--archive-log-lines). */
  logLines?: number;
  /** At most this many bytes per container (--archive-log-bytes). */
  logBytes?: number;
  /** Requests in flight at once for this object. */
  concurrency?: number;
  /** A label whose value is the object's name on its pods (e.g. workflows.argoproj.io/workflow). */
  podLabel?: string;
  /** The object as judged, when the caller has it: for a Pod it saves the GET. */
  object?: Record<string, unknown>;
  /** Per request. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface Collected {
  logs: ContainerLog[];
  events: ArchivedEvent[];
  /** Reads that failed and may succeed if retried (API unreachable, 5xx, 429, 403, timeouts). */
  errors: string[];
}

export const DEFAULT_LOG_LINES = 200;
export const DEFAULT_LOG_BYTES = 256 * 1024;
export const DEFAULT_CONCURRENCY = 4;
/** Up to this many uids, one Events list per uid; beyond, one list of the namespace. */
export const EVENT_LISTS_PER_UID_MAX = 8;
const PAGE = 500;
const DEFAULT_TIMEOUT_MS = 30_000;
/** Per container, when its last lines exceed logBytes (see readLog). */
export const MAX_LOG_REQUESTS = 3;

interface PodLike {
  metadata?: { name?: string; namespace?: string; uid?: string; ownerReferences?: { uid?: string }[] };
  spec?: {
    nodeName?: string;
    containers?: { name: string }[];
    initContainers?: { name: string }[];
    ephemeralContainers?: { name: string }[];
  };
  status?: {
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
    ephemeralContainerStatuses?: ContainerStatus[];
  };
}

interface ContainerStatus {
  name: string;
  restartCount?: number;
  state?: { running?: unknown; terminated?: unknown; waiting?: { reason?: string } };
  lastState?: { terminated?: unknown };
}

interface EventLike {
  involvedObject?: { kind?: string; name?: string; uid?: string };
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  eventTime?: string | null;
  series?: { count?: number; lastObservedTime?: string | null } | null;
  source?: { component?: string; host?: string };
  reportingComponent?: string;
}

interface ListPage<T> {
  items?: T[];
  metadata?: { continue?: string };
}

const enc = encodeURIComponent;
const LABEL_VALUE = /^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export async function collect(http: KubeHttp, target: CollectTarget, o: CollectOptions): Promise<Collected> {
  const c = new Collection(http, target, o);
  return await c.run();
}

class Collection {
  readonly #http: KubeHttp;
  readonly #t: CollectTarget;
  readonly #o: CollectOptions;
  readonly #lines: number;
  readonly #bytes: number;
  readonly #errors: string[] = [];
  readonly #run: <T>(fn: () => T | Promise<T>) => Promise<T>;

  constructor(http: KubeHttp, target: CollectTarget, o: CollectOptions) {
    this.#http = http;
    this.#t = target;
    this.#o = o;
    this.#lines = positiveInt(o.logLines, DEFAULT_LOG_LINES, 'logLines');
    this.#bytes = positiveInt(o.logBytes, DEFAULT_LOG_BYTES, 'logBytes');
    this.#run = limitConcurrency(positiveInt(o.concurrency, DEFAULT_CONCURRENCY, 'concurrency'));
  }

  async run(): Promise<Collected> {
    const pods = await this.#pods();
    const logs = this.#o.logs ? this.#podLogs(pods) : Promise.resolve([]);
    const events = this.#events(pods.map((p) => p.metadata?.uid ?? '').filter(Boolean));
    return { logs: await logs, events: await events, errors: this.#errors };
  }

  #fail(what: string, err: unknown): void {
    this.#errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }

  get #opts() {
    return { timeoutMs: this.#o.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: this.#o.signal };
  }

  async #list<T>(path: string, query: Record<string, string>): Promise<T[]> {
    const items: T[] = [];
    let cont: string | undefined;
    do {
      const page = await this.#run(() =>
        this.#http.request<ListPage<T>>('list', 'GET', path, {
          ...this.#opts,
          query: { ...query, limit: PAGE, continue: cont },
        }),
      );
      items.push(...(page.items ?? []));
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return items;
  }

  async #pods(): Promise<PodLike[]> {
    const { apiVersion, kind, namespace, name, uid } = this.#t;
    if (!namespace) return [];
    const podsPath = `/api/v1/namespaces/${enc(namespace)}/pods`;
    try {
      if (apiVersion === 'v1' && kind === 'Pod') {
        const given = this.#o.object as PodLike | undefined;
        if (given?.spec) return [given];
        return [
          await this.#run(() =>
            this.#http.request<PodLike>('get', 'GET', `${podsPath}/${enc(name)}`, this.#opts),
          ),
        ];
      }
      if (apiVersion === 'batch/v1' && kind === 'Job') {
        const pods = await this.#list<PodLike>(podsPath, {
          labelSelector: `batch.kubernetes.io/controller-uid=${uid}`,
        });
        if (pods.length) return sortPods(pods);
        return sortPods(await this.#list<PodLike>(podsPath, { labelSelector: `controller-uid=${uid}` }));
      }
      const [owned, labelled] = await Promise.all([
        this.#list<PodLike>(podsPath, {}).then((all) =>
          all.filter((p) => (p.metadata?.ownerReferences ?? []).some((r) => r.uid === uid)),
        ),
        // A name that cannot be a label value (over 63 characters…) is on no pod's label.
        this.#o.podLabel && LABEL_VALUE.test(name)
          ? this.#list<PodLike>(podsPath, { labelSelector: `${this.#o.podLabel}=${name}` })
          : Promise.resolve([]),
      ]);
      const byUid = new Map<string, PodLike>();
      for (const p of [...owned, ...labelled]) byUid.set(p.metadata?.uid ?? p.metadata?.name ?? '', p);
      return sortPods([...byUid.values()]);
    } catch (err) {
      // The object's own Events can still be read.
      if (!isApiError(err, 404)) this.#fail(`pods of ${kind} ${namespace}/${name}`, err);
      return [];
    }
  }

  async #podLogs(pods: PodLike[]): Promise<ContainerLog[]> {
    const jobs: Promise<ContainerLog>[] = [];
    for (const pod of pods) {
      const podName = pod.metadata?.name ?? '';
      const spec = pod.spec ?? {};
      const groups: [ContainerLog['containerType'], { name: string }[], ContainerStatus[]][] = [
        ['init', spec.initContainers ?? [], pod.status?.initContainerStatuses ?? []],
        ['regular', spec.containers ?? [], pod.status?.containerStatuses ?? []],
        ['ephemeral', spec.ephemeralContainers ?? [], pod.status?.ephemeralContainerStatuses ?? []],
      ];
      for (const [containerType, containers, statuses] of groups) {
        for (const { name: container } of containers) {
          const entry: ContainerLog = { pod: podName, container, containerType, text: '', truncated: false };
          const why = notStarted(
            spec.nodeName,
            statuses.find((s) => s.name === container),
          );
          if (why) {
            jobs.push(Promise.resolve({ ...entry, error: why }));
            continue;
          }
          jobs.push(this.#readLog(pod.metadata?.namespace ?? this.#t.namespace, entry));
        }
      }
    }
    return await Promise.all(jobs);
  }

  /**
   * The container's last `logLines` lines, at most `logBytes`. Asks one line and one byte more than
   * kept, so truncation is known exactly. The kubelet applies limitBytes from the start of the
   * selected lines, so when they do not fit the answer is their beginning, not the log's end: then
   * it asks for as many last lines as fitted (lines of even length: that is the answer), and once
   * more for at most half as many (the last lines were longer). When even those do not fit, the
   * text kept is the start of the last lines asked for, cut at logBytes.
   */
  async #readLog(namespace: string, entry: ContainerLog): Promise<ContainerLog> {
    const what = `log of ${namespace}/${entry.pod} container ${entry.container}`;
    try {
      let tail = this.#lines + 1;
      for (let attempt = 1; ; attempt++) {
        const body = await this.#get(namespace, entry, tail);
        if (body.length <= this.#bytes) {
          if (attempt > 1) return { ...entry, text: decode(body), truncated: true };
          const { text, dropped } = lastLines(decode(body), this.#lines);
          return { ...entry, text, truncated: dropped };
        }
        const head = cutAt(body, this.#bytes);
        if (attempt === MAX_LOG_REQUESTS || tail === 1)
          return { ...entry, text: decode(head), truncated: true };
        const fitted = countNewlines(head);
        tail = Math.max(1, attempt === 1 ? fitted : Math.min(fitted, Math.floor(tail / 2)));
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // 400/404: the kubelet has no such log, the pod is gone — nothing a retry would bring back.
      if (!isApiError(err, 400) && !isApiError(err, 404)) this.#fail(what, err);
      return { ...entry, error: message };
    }
  }

  async #get(namespace: string, entry: ContainerLog, tailLines: number): Promise<Uint8Array> {
    const path = `/api/v1/namespaces/${enc(namespace)}/pods/${enc(entry.pod)}/log`;
    return await this.#run(() =>
      this.#http.bytes(path, {
        ...this.#opts,
        query: { container: entry.container, tailLines, limitBytes: this.#bytes + 1 },
      }),
    );
  }

  async #events(podUids: string[]): Promise<ArchivedEvent[]> {
    const { namespace, uid, kind, name } = this.#t;
    // A Pod is its own pod: one list for its uid.
    const uids = [...new Set([uid, ...podUids])];
    const path = namespace ? `/api/v1/namespaces/${enc(namespace)}/events` : '/api/v1/events';
    try {
      let items: EventLike[];
      if (uids.length <= EVENT_LISTS_PER_UID_MAX) {
        const lists = await Promise.all(
          uids.map((u) => this.#list<EventLike>(path, { fieldSelector: `involvedObject.uid=${u}` })),
        );
        items = lists.flat();
      } else {
        const wanted = new Set(uids);
        items = (await this.#list<EventLike>(path, {})).filter((e) =>
          wanted.has(e.involvedObject?.uid ?? ''),
        );
      }
      return items.map(toArchivedEvent).sort(byTime);
    } catch (err) {
      this.#fail(`events of ${kind} ${namespace}/${name} and its pods`, err);
      return [];
    }
  }
}

/** Why a container has no log to read, or undefined when it started at some point. */
export function notStarted(
  nodeName: string | undefined,
  status: ContainerStatus | undefined,
): string | undefined {
  if (!nodeName) return 'the pod was never scheduled to a node: no container ran';
  if (!status) return 'the container never started (no status)';
  const ran =
    !!status.state?.running ||
    !!status.state?.terminated ||
    !!status.lastState?.terminated ||
    (status.restartCount ?? 0) > 0;
  if (ran) return undefined;
  const reason = status.state?.waiting?.reason;
  return `the container never started${reason ? ` (waiting: ${reason})` : ''}`;
}

/** At most `n` last lines of `text` (whose lines end with '\n'); `dropped` when there were more. */
export function lastLines(text: string, n: number): { text: string; dropped: boolean } {
  const endsWithNewline = text.endsWith('\n');
  const lines = (endsWithNewline ? text.slice(0, -1) : text).split('\n');
  if (text === '' || lines.length <= n) return { text, dropped: false };
  return { text: lines.slice(-n).join('\n') + (endsWithNewline ? '\n' : ''), dropped: true };
}

export function countNewlines(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) if (b === 0x0a) n++;
  return n;
}

/** The first `max` bytes, moved back to a UTF-8 character boundary. */
export function cutAt(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  let end = max;
  // 0b10xxxxxx is a continuation byte: the character starting before it would be cut.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

const decoder = new TextDecoder('utf-8');
function decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function toArchivedEvent(e: EventLike): ArchivedEvent {
  // Events written through events.k8s.io/v1 (the scheduler's) show eventTime/series and
  // reportingComponent in core/v1 instead of first/lastTimestamp, count and source.
  const first = e.firstTimestamp || e.eventTime || null;
  const last = e.lastTimestamp || e.series?.lastObservedTime || e.eventTime || first;
  return {
    involvedKind: e.involvedObject?.kind ?? '',
    involvedName: e.involvedObject?.name ?? '',
    type: e.type ?? '',
    reason: e.reason ?? '',
    message: e.message ?? '',
    count: e.count || e.series?.count || 1,
    firstTime: first,
    lastTime: last,
    source: e.source?.component || e.reportingComponent || '',
  };
}

function byTime(a: ArchivedEvent, b: ArchivedEvent): number {
  const ta = a.firstTime ?? a.lastTime ?? '';
  const tb = b.firstTime ?? b.lastTime ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

function sortPods(pods: PodLike[]): PodLike[] {
  return pods.sort((a, b) => ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1));
}

function positiveInt(v: number | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  return v;
}
