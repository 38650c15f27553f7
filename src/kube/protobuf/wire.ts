// The protobuf wire format, read only: varints, fixed-width fields, length-delimited fields, and
// skipping any field by its wire type without looking inside it. Just what the decoders of
// src/kube/protobuf/k8s.ts need to pick a few fields out of an API object and jump over the rest
// (managedFields, pod templates) by length, without materialising them.
// Wire format: https://protobuf.dev/programming-guides/encoding/ (no generated code, no schema).

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_SGROUP = 3;
export const WIRE_EGROUP = 4;
export const WIRE_I32 = 5;

export class ProtobufError extends Error {
  constructor(message: string) {
    super(`protobuf: ${message}`);
    this.name = 'ProtobufError';
  }
}

/**
 * A cursor over `buf[pos, end)`. Sub-messages are read in place (enter()/leave() move `end`), so
 * nothing is copied until a string is decoded.
 */
export class Reader {
  readonly buf: Buffer;
  pos: number;
  /** Moves with enter()/leave() while a nested message is read. */
  end: number;
  /** High 32 bits of the last varint read by #varint (two's complement, as a signed int). */
  #hi = 0;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    if (pos < 0 || end > buf.length || pos > end) throw new ProtobufError('reader bounds outside the buffer');
    this.buf = asBuffer(buf);
    this.pos = pos;
    this.end = end;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint: returns its low 32 bits (unsigned), keeps the high 32 bits in #hi. At most 10 bytes. */
  #varint(): number {
    const buf = this.buf;
    const end = this.end;
    let p = this.pos;
    let lo = 0;
    let b: number;
    for (let shift = 0; shift < 28; shift += 7) {
      if (p >= end) throw new ProtobufError('truncated varint');
      b = buf[p++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = p;
        this.#hi = 0;
        return lo >>> 0;
      }
    }
    // The 5th byte holds bits 28-31 of the low word and bits 0-2 of the high one.
    if (p >= end) throw new ProtobufError('truncated varint');
    b = buf[p++]!;
    lo |= (b & 0x0f) << 28;
    let hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (let shift = 3; ; shift += 7) {
        if (shift > 31) throw new ProtobufError('varint longer than 10 bytes');
        if (p >= end) throw new ProtobufError('truncated varint');
        b = buf[p++]!;
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = p;
    this.#hi = hi | 0;
    return lo >>> 0;
  }

  /** int32: negative values come as 10-byte sign-extended varints. */
  int32(): number {
    return this.#varint() | 0;
  }

  /** int64 as a number: exact within ±2^53. */
  int64(): number {
    const lo = this.#varint();
    return this.#hi * 4294967296 + lo;
  }

  bool(): boolean {
    const lo = this.#varint();
    return lo !== 0 || this.#hi !== 0;
  }

  /** A field's key: `field << 3 | wireType`. */
  tag(): number {
    return this.#varint();
  }

  /** The length of a length-delimited field, checked against the end; pos is left at its first byte. */
  #length(): number {
    const len = this.#varint();
    if (this.#hi !== 0 || len > this.end - this.pos)
      throw new ProtobufError('length past the end of the message');
    return len;
  }

  /**
   * Enters a length-delimited field (a nested message) in place: `end` becomes its end. Returns
   * the outer end, to give to leave() — no Reader allocated per nested message.
   */
  enter(): number {
    const len = this.#length();
    const outer = this.end;
    this.end = this.pos + len;
    return outer;
  }

  /** Leaves the field entered last (skipping what was not read of it). */
  leave(outer: number): void {
    this.pos = this.end;
    this.end = outer;
  }

  /** A length-delimited field's bytes, a view into the buffer (no copy). */
  bytes(): Uint8Array {
    const len = this.#length();
    const start = this.pos;
    this.pos += len;
    return this.buf.subarray(start, start + len);
  }

  string(): string {
    const len = this.#length();
    const start = this.pos;
    this.pos += len;
    // Invalid UTF-8 becomes U+FFFD, as in JSON.parse of the server's text (the API server stores
    // valid UTF-8 only). The result is a flat string of its own, as JSON.parse gives.
    return this.buf.toString('utf8', start, start + len);
  }

  /** Skips one field's value of this wire type (a group up to its matching end tag). */
  skip(wireType: number, field = 0): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.#varint();
        return;
      case WIRE_I64:
        this.#advance(8);
        return;
      case WIRE_LEN: {
        // Not `this.pos += this.#length()`: that reads pos before #length moves it past the prefix.
        const len = this.#length();
        this.pos += len;
        return;
      }
      case WIRE_I32:
        this.#advance(4);
        return;
      case WIRE_SGROUP:
        for (;;) {
          if (this.done) throw new ProtobufError('unterminated group');
          const t = this.tag();
          if ((t & 7) === WIRE_EGROUP) {
            if (t >>> 3 !== field) throw new ProtobufError('mismatched end group');
            return;
          }
          this.skip(t & 7, t >>> 3);
        }
      default:
        throw new ProtobufError(`invalid wire type ${wireType}`);
    }
  }

  #advance(n: number): void {
    if (n > this.end - this.pos) throw new ProtobufError('truncated fixed-width field');
    this.pos += n;
  }
}

/** A Buffer view of the same bytes (no copy): its toString is the fastest UTF-8 decode in Node. */
function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}
