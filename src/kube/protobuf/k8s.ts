// Decoders for the API server's protobuf encoding (application/vnd.kubernetes.protobuf) of the two
// built-in kinds with fixed finish rules, batch/v1 Job and v1 Pod: list bodies and watch frames.
// They read ONLY the fields src/rules/summary.ts (summarizeObject), src/rules/finish.ts (jobFinish,
// podFinish) and the controller's ingest (isOwnedByJob) read, into a small plain object of the
// same shape as the API server's JSON; everything else (managedFields, the pod template, the
// spec of a Pod, …) is skipped by length without being looked into. CRDs have no protobuf
// encoding and stay JSON.
//
// Field numbers are those of Kubernetes v1.37's generated.proto files (k8s.io/api@v0.37.2,
// k8s.io/apimachinery@v0.37.2 in the Go module cache of the testbed build, hack/testbed/build):
//   runtime.Unknown {typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4}
//   runtime.RawExtension {raw=1}; meta.v1.WatchEvent {type=1, object=2 (RawExtension)}
//   meta.v1.ListMeta {resourceVersion=2, continue=3}; meta.v1.Time {seconds=1, nanos=2}
//   meta.v1.ObjectMeta {name=1, namespace=3, uid=5, resourceVersion=6, creationTimestamp=8,
//     deletionTimestamp=9, labels=11, annotations=12, ownerReferences=13, finalizers=14}
//   meta.v1.OwnerReference {kind=1, name=3, uid=4, apiVersion=5, controller=6}
//   meta.v1.Status {status=2, message=3, reason=4, code=6}
//   batch.v1 Job/Pod {metadata=1, spec=2, status=3}; JobList/PodList {metadata=1, items=2}
//   batch.v1 JobSpec {ttlSecondsAfterFinished=8}; JobStatus {conditions=1}
//   batch.v1 JobCondition {type=1, status=2, lastTransitionTime=4}
//   core.v1 PodStatus {phase=1, containerStatuses=8, initContainerStatuses=10,
//     ephemeralContainerStatuses=13}; ContainerStatus {state=2}; ContainerState {terminated=3};
//     ContainerStateTerminated {finishedAt=6}
// test/integration/protobuf.test.ts checks on a real API server that summarizeObject gives the
// same summary from these objects as from the JSON of the same objects.
import type { RawObject } from '../objects.ts';
import { ProtobufError, Reader, WIRE_LEN, WIRE_VARINT } from './wire.ts';

export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** `k8s\0`: the magic prefix of every protobuf-encoded API object (k8s.io/apimachinery runtime/serializer/protobuf). */
const MAGIC = [0x6b, 0x38, 0x73, 0x00] as const;

const tag = (field: number, wire: number) => (field << 3) | wire;
const LEN = (field: number) => tag(field, WIRE_LEN);
const VARINT = (field: number) => tag(field, WIRE_VARINT);

type Obj = Record<string, unknown>;

function skip(r: Reader, t: number): void {
  r.skip(t & 7, t >>> 3);
}

/** Sets a key read from the wire as an own property, even `__proto__` (as JSON.parse does). */
function put(o: Obj, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

// metav1.Time: the API server's JSON gives whole seconds, RFC 3339 in UTC, and null for the zero
// time, which its protobuf leaves empty (k8s.io/apimachinery pkg/apis/meta/v1 time.go MarshalJSON,
// time_proto.go: nanos are never written).
const MIN_SECONDS = -62167219200; // 0000-01-01T00:00:00Z
const MAX_SECONDS = 253402300799; // 9999-12-31T23:59:59Z

function time(r: Reader): string | null {
  const outer = r.enter();
  let empty = true;
  let seconds = 0;
  while (!r.done) {
    empty = false;
    const t = r.tag();
    if (t === VARINT(1)) seconds = r.int64();
    else skip(r, t);
  }
  r.leave(outer);
  if (empty) return null;
  const d = new Date(seconds * 1000);
  if (Number.isNaN(d.getTime())) return `${seconds}s`; // beyond any Date: no reader takes it either
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z, or ±YYYYYY-… outside 0000-9999
  if (seconds >= MIN_SECONDS && seconds <= MAX_SECONDS) return `${iso.slice(0, 19)}Z`;
  // Go pads the year to 4 digits, with a sign when negative (time.Format), as no JSON write can set.
  const y = d.getUTCFullYear();
  const year = y < 0 ? `-${String(-y).padStart(4, '0')}` : String(y).padStart(4, '0');
  return `${year}${iso.slice(iso.indexOf('-', 1), -5)}Z`;
}

/** A map<string, string> entry list (labels, annotations); a repeated key keeps the last value, as in Go. */
function mapEntry(r: Reader, into: Obj): void {
  const outer = r.enter();
  let key = '';
  let value = '';
  while (!r.done) {
    const t = r.tag();
    if (t === LEN(1)) key = r.string();
    else if (t === LEN(2)) value = r.string();
    else skip(r, t);
  }
  r.leave(outer);
  put(into, key, value);
}

function ownerReference(r: Reader): Obj {
  const outer = r.enter();
  const o: Obj = {};
  while (!r.done) {
    const t = r.tag();
    switch (t) {
      case LEN(5):
        o.apiVersion = r.string();
        break;
      case LEN(1):
        o.kind = r.string();
        break;
      case LEN(3):
        o.name = r.string();
        break;
      case LEN(4):
        o.uid = r.string();
        break;
      case VARINT(6):
        o.controller = r.bool();
        break;
      default:
        skip(r, t);
    }
  }
  r.leave(outer);
  return o;
}

function objectMeta(r: Reader): Obj {
  const outer = r.enter();
  const m: Obj = {};
  let labels: Obj | undefined;
  let annotations: Obj | undefined;
  let owners: Obj[] | undefined;
  let finalizers: string[] | undefined;
  while (!r.done) {
    const t = r.tag();
    switch (t) {
      case LEN(1):
        m.name = r.string();
        break;
      case LEN(3):
        m.namespace = r.string();
        break;
      case LEN(5):
        m.uid = r.string();
        break;
      case LEN(6):
        m.resourceVersion = r.string();
        break;
      case LEN(8):
        m.creationTimestamp = time(r);
        break;
      case LEN(9):
        m.deletionTimestamp = time(r);
        break;
      case LEN(11):
        labels = labels ?? {};
        mapEntry(r, labels);
        break;
      case LEN(12):
        annotations = annotations ?? {};
        mapEntry(r, annotations);
        break;
      case LEN(13):
        owners = owners ?? [];
        owners.push(ownerReference(r));
        break;
      case LEN(14):
        finalizers = finalizers ?? [];
        finalizers.push(r.string());
        break;
      default:
        skip(r, t); // managedFields (17) above all: the bulk of a small object
    }
  }
  r.leave(outer);
  if (labels) m.labels = labels;
  if (annotations) m.annotations = annotations;
  if (owners) m.ownerReferences = owners;
  if (finalizers) m.finalizers = finalizers;
  return m;
}

function jobSpec(r: Reader): Obj {
  const outer = r.enter();
  const spec: Obj = {};
  while (!r.done) {
    const t = r.tag();
    if (t === VARINT(8)) spec.ttlSecondsAfterFinished = r.int32();
    else skip(r, t); // the pod template (6) is most of a Job
  }
  r.leave(outer);
  return spec;
}

function jobCondition(r: Reader): Obj {
  const outer = r.enter();
  const c: Obj = {};
  while (!r.done) {
    const t = r.tag();
    if (t === LEN(1)) c.type = r.string();
    else if (t === LEN(2)) c.status = r.string();
    else if (t === LEN(4)) c.lastTransitionTime = time(r);
    else skip(r, t);
  }
  r.leave(outer);
  return c;
}

function jobStatus(r: Reader): Obj {
  const outer = r.enter();
  const status: Obj = {};
  let conditions: Obj[] | undefined;
  while (!r.done) {
    const t = r.tag();
    if (t === LEN(1)) {
      conditions = conditions ?? [];
      conditions.push(jobCondition(r));
    } else skip(r, t);
  }
  r.leave(outer);
  if (conditions) status.conditions = conditions;
  return status;
}

/** ContainerStatus → {state: {terminated: {finishedAt}}}, the one path src/rules/finish.ts podFinish reads. */
function containerStatus(r: Reader): Obj {
  const outer = r.enter();
  const cs: Obj = {};
  while (!r.done) {
    const t = r.tag();
    if (t !== LEN(2)) {
      skip(r, t);
      continue;
    }
    const stateEnd = r.enter();
    const state: Obj = {};
    while (!r.done) {
      const st = r.tag();
      if (st !== LEN(3)) {
        skip(r, st);
        continue;
      }
      const termEnd = r.enter();
      const terminated: Obj = {};
      while (!r.done) {
        const tt = r.tag();
        if (tt === LEN(6)) terminated.finishedAt = time(r);
        else skip(r, tt);
      }
      r.leave(termEnd);
      state.terminated = terminated;
    }
    r.leave(stateEnd);
    cs.state = state;
  }
  r.leave(outer);
  return cs;
}

const POD_STATUS_LISTS: Readonly<Record<number, string>> = {
  [LEN(8)]: 'containerStatuses',
  [LEN(10)]: 'initContainerStatuses',
  [LEN(13)]: 'ephemeralContainerStatuses',
};

function podStatus(r: Reader): Obj {
  const outer = r.enter();
  const status: Obj = {};
  while (!r.done) {
    const t = r.tag();
    if (t === LEN(1)) {
      status.phase = r.string();
      continue;
    }
    const list = POD_STATUS_LISTS[t];
    if (list === undefined) {
      skip(r, t);
      continue;
    }
    const entries = (status[list] as Obj[] | undefined) ?? [];
    status[list] = entries;
    entries.push(containerStatus(r));
  }
  r.leave(outer);
  return status;
}

/** A kind this module decodes: how to read its spec and status (metadata is the same for all). */
export interface ProtobufKind {
  readonly apiVersion: string;
  readonly kind: string;
  readonly spec: ((r: Reader) => Obj) | null;
  readonly status: (r: Reader) => Obj;
}

const JOB: ProtobufKind = { apiVersion: 'batch/v1', kind: 'Job', spec: jobSpec, status: jobStatus };
const POD: ProtobufKind = { apiVersion: 'v1', kind: 'Pod', spec: null, status: podStatus };

/** The protobuf decoder of a built-in kind, or undefined (anything else, CRDs above all, stays JSON). */
export function protobufKind(group: string, version: string, kind: string): ProtobufKind | undefined {
  if (group === 'batch' && version === 'v1' && kind === 'Job') return JOB;
  if (group === '' && version === 'v1' && kind === 'Pod') return POD;
  return undefined;
}

/** The fields of one object (Job, Pod) up to the reader's end: {metadata, spec, status}. */
function objectFields(k: ProtobufKind, r: Reader): RawObject {
  const o: RawObject = {};
  while (!r.done) {
    const t = r.tag();
    if (t === LEN(1)) o.metadata = objectMeta(r) as RawObject['metadata'];
    else if (t === LEN(2) && k.spec) o.spec = k.spec(r);
    else if (t === LEN(3)) o.status = k.status(r);
    else skip(r, t);
  }
  return o;
}

/** One object held in the length-delimited field at the reader's position (a list item). */
function object(k: ProtobufKind, r: Reader): RawObject {
  const outer = r.enter();
  const o = objectFields(k, r);
  r.leave(outer);
  return o;
}

export interface Envelope {
  apiVersion: string;
  kind: string;
  raw: Uint8Array;
  contentEncoding: string;
  contentType: string;
}

export function hasMagic(buf: Uint8Array): boolean {
  return (
    buf.length >= 4 &&
    buf[0] === MAGIC[0] &&
    buf[1] === MAGIC[1] &&
    buf[2] === MAGIC[2] &&
    buf[3] === MAGIC[3]
  );
}

/** `k8s\0` + runtime.Unknown: the envelope of every protobuf-encoded object the API server sends. */
export function decodeEnvelope(buf: Uint8Array): Envelope {
  if (!hasMagic(buf)) throw new ProtobufError('no k8s\\0 prefix: not a Kubernetes protobuf object');
  const r = new Reader(buf, 4);
  const e: Envelope = {
    apiVersion: '',
    kind: '',
    raw: new Uint8Array(0),
    contentEncoding: '',
    contentType: '',
  };
  while (!r.done) {
    const t = r.tag();
    switch (t) {
      case LEN(1): {
        const outer = r.enter();
        while (!r.done) {
          const tt = r.tag();
          if (tt === LEN(1)) e.apiVersion = r.string();
          else if (tt === LEN(2)) e.kind = r.string();
          else skip(r, tt);
        }
        r.leave(outer);
        break;
      }
      case LEN(2):
        e.raw = r.bytes();
        break;
      case LEN(3):
        e.contentEncoding = r.string();
        break;
      case LEN(4):
        e.contentType = r.string();
        break;
      default:
        skip(r, t);
    }
  }
  // The API server never sets one (no encoding was ever implemented); refuse rather than misread.
  if (e.contentEncoding !== '') throw new ProtobufError(`unsupported contentEncoding ${e.contentEncoding}`);
  return e;
}

/** metav1.Status, as the JSON fields the callers read (src/kube/http.ts toApiError, the reflector). */
export function statusOf(buf: Uint8Array): Obj {
  const r = new Reader(buf);
  const s: Obj = { kind: 'Status', apiVersion: 'v1' };
  while (!r.done) {
    const t = r.tag();
    if (t === LEN(2)) s.status = r.string();
    else if (t === LEN(3)) s.message = r.string();
    else if (t === LEN(4)) s.reason = r.string();
    else if (t === VARINT(6)) s.code = r.int32();
    else skip(r, t);
  }
  return s;
}

/** A protobuf error body (a Status in its envelope) as the JSON text toApiError reads; null if it is not one. */
export function statusText(body: Uint8Array): string | null {
  try {
    const e = decodeEnvelope(body);
    return e.kind === 'Status' ? JSON.stringify(statusOf(e.raw)) : null;
  } catch {
    return null;
  }
}

export interface DecodedList {
  metadata: { resourceVersion?: string; continue?: string };
  items: RawObject[];
}

/** A JobList/PodList body (with its envelope). */
export function decodeList(k: ProtobufKind, body: Uint8Array): DecodedList {
  const e = decodeEnvelope(body);
  if (e.kind !== `${k.kind}List`)
    throw new ProtobufError(`expected a ${k.kind}List, got ${e.kind || 'no kind'}`);
  const r = new Reader(e.raw);
  const list: DecodedList = { metadata: {}, items: [] };
  while (!r.done) {
    const t = r.tag();
    if (t === LEN(2)) {
      list.items.push(object(k, r));
    } else if (t === LEN(1)) {
      const outer = r.enter();
      while (!r.done) {
        const tt = r.tag();
        if (tt === LEN(2)) list.metadata.resourceVersion = r.string();
        else if (tt === LEN(3)) list.metadata.continue = r.string();
        else skip(r, tt);
      }
      r.leave(outer);
    } else {
      skip(r, t);
    }
  }
  return list;
}

export interface DecodedEvent {
  type: string;
  object: RawObject & { code?: number; reason?: string; message?: string };
}

/**
 * One watch frame: a metav1.WatchEvent whose object is a RawExtension holding the object in its
 * own envelope (k8s.io/apiserver endpoints/handlers/watch.go). The envelope's type fills
 * apiVersion/kind as in a JSON watch event; an ERROR event's object is a Status.
 */
export function decodeWatchEvent(k: ProtobufKind, frame: Uint8Array): DecodedEvent {
  // A frame in its own envelope is unwrapped too (not what the API server sends, but cheap to allow).
  const r = new Reader(hasMagic(frame) ? decodeEnvelope(frame).raw : frame);
  let type = '';
  let raw: Uint8Array | undefined;
  while (!r.done) {
    const t = r.tag();
    if (t === LEN(1)) type = r.string();
    else if (t === LEN(2)) {
      const outer = r.enter();
      while (!r.done) {
        const tt = r.tag();
        if (tt === LEN(1)) raw = r.bytes();
        else skip(r, tt);
      }
      r.leave(outer);
    } else skip(r, t);
  }
  if (raw === undefined) return { type, object: {} };
  let apiVersion = '';
  let kind = '';
  let bytes = raw;
  if (hasMagic(raw)) {
    const e = decodeEnvelope(raw);
    apiVersion = e.apiVersion;
    kind = e.kind;
    bytes = e.raw;
  }
  if (kind === 'Status' || (type === 'ERROR' && kind === '')) return { type, object: statusOf(bytes) };
  const object = objectFields(k, new Reader(bytes));
  if (apiVersion) object.apiVersion = apiVersion;
  if (kind) object.kind = kind;
  return { type, object };
}

/**
 * Splits a protobuf watch stream into frames: each is a 4-byte big-endian length and that many
 * bytes (k8s.io/apimachinery pkg/util/framer LengthDelimitedFramer). Chunks arrive cut anywhere.
 */
export class FrameSplitter {
  #pending: Uint8Array | null = null;
  /** Frames larger than this end the stream (a corrupt length would otherwise buffer without bound). */
  readonly #maxFrame: number;

  constructor(maxFrameBytes = 64 * 1024 * 1024) {
    this.#maxFrame = maxFrameBytes;
  }

  /** The complete frames `chunk` ends; each a view valid until the next push (copy it to keep it). */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf = chunk;
    if (this.#pending) {
      const joined = new Uint8Array(this.#pending.length + chunk.length);
      joined.set(this.#pending, 0);
      joined.set(chunk, this.#pending.length);
      buf = joined;
      this.#pending = null;
    }
    const frames: Uint8Array[] = [];
    let p = 0;
    while (buf.length - p >= 4) {
      const len = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
      if (len > this.#maxFrame)
        throw new ProtobufError(`watch frame of ${len} bytes (over ${this.#maxFrame})`);
      if (buf.length - p - 4 < len) break;
      frames.push(buf.subarray(p + 4, p + 4 + len));
      p += 4 + len;
    }
    // Keep the tail as a copy: the chunk's buffer may be reused by the stream.
    if (p < buf.length) this.#pending = buf.slice(p);
    return frames;
  }

  /** Bytes of an incomplete frame held. */
  get pendingBytes(): number {
    return this.#pending?.length ?? 0;
  }
}
