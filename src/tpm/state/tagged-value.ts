/**
 * A compact binary encoding of the values state bodies are made of: null, booleans, numbers,
 * strings, bigints, byte strings, arrays, Maps and plain objects (any other object is its own
 * enumerable properties, as in JSON). It holds exactly what the JSON body (serialize.ts) holds,
 * without hex or decimal text, so saving the permanent state after every NV write costs a walk
 * and some copies instead of a JSON.stringify with a replacer.
 *
 * Each value is a tag byte and its content; lengths and counts are unsigned LEB128 varints, an
 * object's keys are length-prefixed UTF-8 before their values. As in JSON, an object property
 * that is undefined is left out and an undefined array element reads back as null.
 */

const TAG = {
  NULL: 0,
  FALSE: 1,
  TRUE: 2,
  /** A safe integer ≥ 0: varint. */
  UINT: 3,
  /** A safe integer < 0: varint of its magnitude. */
  NEGINT: 4,
  /** Any other number: IEEE 754 double, big-endian. */
  FLOAT: 5,
  /** bigint ≥ 0 / < 0: varint length, magnitude big-endian. */
  BIGINT: 6,
  NEGBIGINT: 7,
  STRING: 8,
  BYTES: 9,
  ARRAY: 10,
  OBJECT: 11,
  MAP: 12,
} as const;

const utf8 = new TextEncoder();
/** UTF-8 of object keys: the same few dozen names are written at every save. */
const keyBytes = new Map<string, Uint8Array>();
const KEY_CACHE_LIMIT = 4096;
function keyUtf8(k: string): Uint8Array {
  let b = keyBytes.get(k);
  if (b === undefined) {
    b = utf8.encode(k);
    if (keyBytes.size < KEY_CACHE_LIMIT) keyBytes.set(k, b);
  }
  return b;
}
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

class Writer {
  buf = new Uint8Array(8192);
  view = new DataView(this.buf.buffer);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  varint(n: number): void {
    this.ensure(8);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    this.varint(n);
    this.ensure(n);
    // TypedArray.set has a fixed cost that a short loop does not.
    if (n < 64) for (let i = 0; i < n; i++) this.buf[this.pos + i] = b[i]!;
    else this.buf.set(b, this.pos);
    this.pos += n;
  }


  tag(t: number): void {
    this.ensure(1);
    this.buf[this.pos++] = t;
  }

  object(o: Record<string, unknown>): void {
    const keys = Object.keys(o);
    this.tag(TAG.OBJECT);
    // The count is one byte below 128: it is written after the properties, in one pass.
    let at = -1;
    if (keys.length < 0x80) {
      this.ensure(1);
      at = this.pos++;
    } else {
      let n = 0;
      for (let i = 0; i < keys.length; i++) if (o[keys[i]!] !== undefined) n++;
      this.varint(n);
    }
    let n = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const x = o[k];
      if (x === undefined) continue;
      n++;
      this.bytes(keyUtf8(k));
      this.value(x);
    }
    if (at >= 0) this.buf[at] = n;
  }

  value(v: unknown): void {
    switch (typeof v) {
      case 'number':
        if (Number.isSafeInteger(v)) {
          this.tag(v >= 0 ? TAG.UINT : TAG.NEGINT);
          this.varint(Math.abs(v));
        } else {
          this.tag(TAG.FLOAT);
          this.ensure(8);
          this.view.setFloat64(this.pos, v);
          this.pos += 8;
        }
        return;
      case 'string':
        this.tag(TAG.STRING);
        return this.bytes(utf8.encode(v));
      case 'boolean':
        return this.tag(v ? TAG.TRUE : TAG.FALSE);
      case 'bigint': {
        this.tag(v >= 0n ? TAG.BIGINT : TAG.NEGBIGINT);
        const hex = (v >= 0n ? v : -v).toString(16);
        return this.bytes(Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex'));
      }
      case 'object': {
        if (v === null) return this.tag(TAG.NULL);
        if (v instanceof Uint8Array) {
          this.tag(TAG.BYTES);
          return this.bytes(v);
        }
        if (Array.isArray(v)) {
          this.tag(TAG.ARRAY);
          this.varint(v.length);
          for (let i = 0; i < v.length; i++) this.value(v[i] ?? null);
          return;
        }
        if (v instanceof Map) {
          this.tag(TAG.MAP);
          this.varint(v.size);
          for (const [k, x] of v) {
            this.value(k);
            this.value(x);
          }
          return;
        }
        // Nothing in a state is a Set or another typed array; JSON would have lost it quietly.
        if (v instanceof Set || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
          throw new TypeError(`state cannot hold a ${v.constructor.name}`);
        }
        return this.object(v as Record<string, unknown>);
      }
      default:
        throw new TypeError(`state cannot hold a ${typeof v}`);
    }
  }
}

/**
 * The encoding of `value` after `offset` zero bytes (room for the caller's header, saving a
 * copy); throws TypeError for what it cannot hold (functions, symbols, Sets, other typed arrays).
 */
export function encodeTaggedValue(value: unknown, offset = 0): Uint8Array {
  // One writer, reused: its buffer has grown to the size of a state by the second save.
  const w = writer;
  w.pos = offset;
  w.buf.fill(0, 0, offset);
  w.value(value);
  return w.buf.slice(0, w.pos);
}

const writer = new Writer();

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  fail(what: string): never {
    throw new RangeError(`${what} at byte ${this.pos}`);
  }

  varint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.buf.length) this.fail('truncated number');
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 49) this.fail('number too long');
    }
    return n;
  }

  /** A count of items each at least one byte long: never more than the bytes left. */
  count(): number {
    const n = this.varint();
    if (n > this.buf.length - this.pos) this.fail('count past the end');
    return n;
  }

  take(n: number): Uint8Array {
    if (n > this.buf.length - this.pos) this.fail('length past the end');
    // A copy: every byte string owns its buffer, as the JSON body's do.
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  value(): unknown {
    if (this.pos >= this.buf.length) this.fail('truncated value');
    const tag = this.buf[this.pos++];
    switch (tag) {
      case TAG.NULL:
        return null;
      case TAG.FALSE:
        return false;
      case TAG.TRUE:
        return true;
      case TAG.UINT:
        return this.varint();
      case TAG.NEGINT:
        return -this.varint();
      case TAG.FLOAT: {
        const b = this.take(8);
        return new DataView(b.buffer).getFloat64(0);
      }
      case TAG.BIGINT:
      case TAG.NEGBIGINT: {
        const b = this.take(this.varint());
        const m = b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`);
        return tag === TAG.BIGINT ? m : -m;
      }
      case TAG.STRING:
        return fromUtf8.decode(this.take(this.varint()));
      case TAG.BYTES:
        return this.take(this.varint());
      case TAG.ARRAY: {
        const n = this.count();
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(this.value());
        return out;
      }
      case TAG.MAP: {
        const n = this.count();
        const out = new Map<unknown, unknown>();
        for (let i = 0; i < n; i++) {
          const k = this.value();
          out.set(k, this.value());
        }
        return out;
      }
      case TAG.OBJECT: {
        const n = this.count();
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = fromUtf8.decode(this.take(this.varint()));
          const v = this.value();
          // A key named __proto__ stays data, as JSON.parse keeps it.
          if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
          else out[k] = v;
        }
        return out;
      }
      default:
        return this.fail(`unknown tag ${tag}`);
    }
  }
}

/** Decodes what encodeTaggedValue wrote; throws RangeError (or TypeError for bad UTF-8) on damage. */
export function decodeTaggedValue(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  const value = r.value();
  if (r.pos !== bytes.length) r.fail('trailing bytes');
  return value;
}
