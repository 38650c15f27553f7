// A protobuf wire WRITER for the tests of src/kube/protobuf/: the reference encoding (BigInt
// varints, every wire type), and encoders of Jobs/Pods/lists/watch frames from the JSON shape with
// the field numbers listed in src/kube/protobuf/k8s.ts. Deliberately independent of the reader.

export class Writer {
  readonly #parts: number[] = [];

  /** Any integer as a varint; negative ones as 10-byte two's complement (int32/int64 encoding). */
  varint(v: number | bigint): this {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n;
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.#parts.push(b);
    } while (x > 0n);
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  raw(bytes: Uint8Array | readonly number[]): this {
    for (const b of bytes) this.#parts.push(b);
    return this;
  }

  fixed32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return this.raw(b);
  }

  fixed64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v));
    return this.raw(b);
  }

  /** Field `field` as a varint. */
  int(field: number, v: number | bigint): this {
    return this.tag(field, 0).varint(v);
  }

  bool(field: number, v: boolean): this {
    return this.int(field, v ? 1 : 0);
  }

  bytes(field: number, bytes: Uint8Array): this {
    return this.tag(field, 2).varint(bytes.length).raw(bytes);
  }

  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }

  message(field: number, build: (w: Writer) => void): this {
    const w = new Writer();
    build(w);
    return this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

/** An unknown field of any wire type, to sprinkle between the known ones. */
export type UnknownField =
  | { field: number; wire: 0; value: bigint }
  | { field: number; wire: 1; value: bigint }
  | { field: number; wire: 2; value: Uint8Array }
  | { field: number; wire: 3; inner: UnknownField[] }
  | { field: number; wire: 5; value: number };

export function writeUnknown(w: Writer, u: UnknownField): void {
  switch (u.wire) {
    case 0:
      w.int(u.field, u.value);
      return;
    case 1:
      w.tag(u.field, 1).fixed64(u.value);
      return;
    case 2:
      w.bytes(u.field, u.value);
      return;
    case 3:
      w.tag(u.field, 3);
      for (const i of u.inner) writeUnknown(w, i);
      w.tag(u.field, 4);
      return;
    case 5:
      w.tag(u.field, 5).fixed32(u.value);
  }
}

type Obj = Record<string, unknown>;
const o = (v: unknown): Obj => (v ?? {}) as Obj;

/** metav1.Time from an RFC 3339 string (whole seconds); null: the zero time, an empty message. */
function time(w: Writer, field: number, v: unknown): void {
  if (v === undefined) return;
  if (v === null) {
    w.bytes(field, new Uint8Array(0));
    return;
  }
  const s = Math.floor(Date.parse(String(v)) / 1000);
  w.message(field, (t) => {
    t.int(1, s);
    t.int(2, 123_000); // nanos: the API server never sends them; the reader must ignore them
  });
}

/** `noise(w)` writes unknown fields wherever the real encoding has fields the reader skips. */
export type Noise = (w: Writer) => void;
const none: Noise = () => {};

export function encodeMeta(w: Writer, m: Obj, noise: Noise = none): void {
  noise(w);
  if (m.name !== undefined) w.string(1, String(m.name));
  w.string(2, 'generate-'); // generateName: skipped
  if (m.namespace !== undefined) w.string(3, String(m.namespace));
  noise(w);
  if (m.uid !== undefined) w.string(5, String(m.uid));
  if (m.resourceVersion !== undefined) w.string(6, String(m.resourceVersion));
  w.int(7, 3); // generation: skipped
  time(w, 8, m.creationTimestamp);
  time(w, 9, m.deletionTimestamp);
  w.int(10, 30); // deletionGracePeriodSeconds: skipped
  for (const [k, v] of Object.entries(o(m.labels)))
    w.message(11, (e) => {
      e.string(1, k);
      e.string(2, String(v));
    });
  for (const [k, v] of Object.entries(o(m.annotations)))
    w.message(12, (e) => {
      e.string(1, k);
      noise(e);
      e.string(2, String(v));
    });
  for (const ref of (m.ownerReferences ?? []) as Obj[])
    w.message(13, (r) => {
      if (ref.kind !== undefined) r.string(1, String(ref.kind));
      if (ref.name !== undefined) r.string(3, String(ref.name));
      if (ref.uid !== undefined) r.string(4, String(ref.uid));
      if (ref.apiVersion !== undefined) r.string(5, String(ref.apiVersion));
      if (ref.controller !== undefined) r.bool(6, ref.controller === true);
      r.bool(7, true); // blockOwnerDeletion: skipped
      noise(r);
    });
  for (const f of (m.finalizers ?? []) as string[]) w.string(14, f);
  // managedFields: the bulk of a real object, skipped by length
  w.message(17, (mf) => {
    mf.string(1, 'kube-controller-manager');
    mf.message(7, (fv) => fv.string(1, '{"f:status":{"f:conditions":{}}}'));
  });
  noise(w);
}

export function encodeJob(j: Obj, noise: Noise = none): Uint8Array {
  const w = new Writer();
  w.message(1, (m) => encodeMeta(m, o(j.metadata), noise));
  if (j.spec !== undefined)
    w.message(2, (s) => {
      const spec = o(j.spec);
      s.int(1, 1); // parallelism
      s.message(6, (t) => t.message(2, (ps) => ps.string(1, 'a pod template, skipped'))); // template
      if (spec.ttlSecondsAfterFinished !== undefined) s.int(8, Number(spec.ttlSecondsAfterFinished));
      s.bool(10, false); // suspend
      noise(s);
    });
  if (j.status !== undefined)
    w.message(3, (s) => {
      for (const c of (o(j.status).conditions ?? []) as Obj[])
        s.message(1, (cw) => {
          if (c.type !== undefined) cw.string(1, String(c.type));
          if (c.status !== undefined) cw.string(2, String(c.status));
          time(cw, 3, c.lastProbeTime);
          time(cw, 4, c.lastTransitionTime);
          cw.string(5, 'reason, skipped');
          noise(cw);
        });
      s.int(5, 1); // succeeded
      noise(s);
    });
  noise(w);
  return w.finish();
}

const POD_LISTS: Array<[string, number]> = [
  ['containerStatuses', 8],
  ['initContainerStatuses', 10],
  ['ephemeralContainerStatuses', 13],
];

export function encodePod(p: Obj, noise: Noise = none): Uint8Array {
  const w = new Writer();
  w.message(1, (m) => encodeMeta(m, o(p.metadata), noise));
  w.message(2, (s) => s.message(2, (c) => c.string(1, 'main'))); // spec: skipped whole
  if (p.status !== undefined)
    w.message(3, (s) => {
      const status = o(p.status);
      if (status.phase !== undefined) s.string(1, String(status.phase));
      s.string(5, '10.0.0.1'); // hostIP
      for (const [name, field] of POD_LISTS)
        for (const cs of (status[name] ?? []) as Obj[])
          s.message(field, (c) => {
            c.string(1, 'main');
            noise(c);
            const state = cs.state as Obj | undefined;
            if (state !== undefined)
              c.message(2, (st) => {
                if (state.running !== undefined) st.message(2, (r) => time(r, 1, '2026-01-01T00:00:00Z'));
                const term = state.terminated as Obj | undefined;
                if (term !== undefined)
                  st.message(3, (tw) => {
                    tw.int(1, 0);
                    time(tw, 5, '2026-01-01T00:00:00Z');
                    time(tw, 6, term.finishedAt);
                    noise(tw);
                  });
              });
          });
      noise(s);
    });
  return w.finish();
}

const MAGIC = [0x6b, 0x38, 0x73, 0x00];

/** `k8s\0` + runtime.Unknown{typeMeta, raw}. */
export function envelope(apiVersion: string, kind: string, raw: Uint8Array): Uint8Array {
  const w = new Writer().raw(MAGIC);
  w.message(1, (t) => {
    t.string(1, apiVersion);
    t.string(2, kind);
  });
  w.bytes(2, raw);
  w.string(4, ''); // contentType, empty as the API server sends it
  return w.finish();
}

export function encodeList(
  apiVersion: string,
  kind: string,
  items: Uint8Array[],
  meta: { resourceVersion?: string; continue?: string },
): Uint8Array {
  const w = new Writer();
  w.message(1, (m) => {
    if (meta.resourceVersion !== undefined) m.string(2, meta.resourceVersion);
    if (meta.continue !== undefined) m.string(3, meta.continue);
    m.int(4, 7); // remainingItemCount: skipped
  });
  for (const i of items) w.bytes(2, i);
  return envelope(apiVersion, kind, w.finish());
}

/** One watch frame's payload: WatchEvent{type, object: RawExtension{raw: envelope(object)}}. */
export function encodeEvent(type: string, objectEnvelope: Uint8Array): Uint8Array {
  const w = new Writer();
  w.string(1, type);
  w.message(2, (x) => x.bytes(1, objectEnvelope));
  return w.finish();
}

/** A 4-byte big-endian length and the bytes (a watch stream). */
export function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}
