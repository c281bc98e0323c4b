/**
 * Codec combinators in Part 2's own notation. A structure is declared once and that one
 * declaration both reads (with the spec's validation and response codes) and writes.
 *
 * Validation errors are thrown without a position; the engine adds the handle or parameter
 * number of the top-level field being read (Part 2 §6.6.3).
 */
import { TPM_ALG, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { Reader, type ProfileDomain } from './reader.js';
import { Writer } from './writer.js';

export interface Codec<T> {
  read(r: Reader): T;
  write(w: Writer, v: T): void;
  /**
   * Set on TPM2B types: the bytes after this 2-byte size field are what parameter encryption
   * covers when the type is a command's or response's first parameter (Part 1 §21.1).
   */
  readonly sizedBuffer?: true;
}

/** A struct field whose layout depends on fields read before it (a union's selector, a count). */
export interface FieldCodec<T> {
  readonly dependent: true;
  read(r: Reader, parent: Readonly<Record<string, unknown>>): T;
  write(w: Writer, v: T, parent: Readonly<Record<string, unknown>>): void;
}

export type Infer<C> = C extends Codec<infer T> ? T : C extends FieldCodec<infer T> ? T : never;

export const UINT8: Codec<number> = { read: (r) => r.u8(), write: (w, v) => w.u8(v) };
export const UINT16: Codec<number> = { read: (r) => r.u16(), write: (w, v) => w.u16(v) };
export const UINT32: Codec<number> = { read: (r) => r.u32(), write: (w, v) => w.u32(v) };
export const UINT64: Codec<bigint> = { read: (r) => r.u64(), write: (w, v) => w.u64(v) };
export const INT32: Codec<number> = {
  read: (r) => r.u32() | 0,
  write: (w, v) => w.u32(v >>> 0),
};
export const BYTE = UINT8;
export const BOOL: Codec<boolean> = {
  // Part 2 §5.2 TPMI_YES_NO: anything but 0 or 1 is TPM_RC_VALUE.
  read(r) {
    const v = r.u8();
    if (v > 1) throw new TpmError(TPM_RC.VALUE);
    return v === 1;
  },
  write: (w, v) => w.u8(v ? 1 : 0),
};

/** Nothing on the wire: the empty arm of a union (TPMS_EMPTY, a NULL selector). */
export const EMPTY: Codec<null> = { read: () => null, write: () => undefined };

/** Exactly n bytes, copied out of the command buffer. */
export function fixedBytes(n: number): Codec<Uint8Array> {
  // A copy, and a plain Uint8Array even when the command arrived in a Buffer (whose slice is a view).
  return { read: (r) => new Uint8Array(r.bytes(n)), write: (w, v) => w.bytes(v) };
}

/** Part 2 §10.4 TPM2B: a u16 size then that many bytes; a size over `max` is TPM_RC_SIZE. */
export function tpm2b(max: number): Codec<Uint8Array> {
  return {
    sizedBuffer: true,
    read(r) {
      const size = r.u16();
      if (size > max) throw new TpmError(TPM_RC.SIZE);
      return new Uint8Array(r.bytes(size));
    },
    write(w, v) {
      w.u16(v.length);
      w.bytes(v);
    },
  };
}

/**
 * A TPM2B wrapping a structure (TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, ...): the structure must
 * consume exactly `size` bytes, else TPM_RC_SIZE. An empty one is TPM_RC_SIZE unless `optional`,
 * where it reads as null.
 */
export function sized<T>(inner: Codec<T>, optional: true): Codec<T | null>;
export function sized<T>(inner: Codec<T>, optional?: false): Codec<T>;
export function sized<T>(inner: Codec<T>, optional = false): Codec<T | null> {
  return {
    sizedBuffer: true,
    read(r) {
      const size = r.u16();
      if (size === 0) {
        if (optional) return null;
        throw new TpmError(TPM_RC.SIZE);
      }
      if (size > r.remaining) throw new TpmError(TPM_RC.INSUFFICIENT);
      const outerEnd = r.end;
      r.end = r.pos + size;
      try {
        const v = inner.read(r);
        if (r.pos !== r.end) throw new TpmError(TPM_RC.SIZE);
        return v;
      } finally {
        r.end = outerEnd;
      }
    },
    write(w, v) {
      const close = w.sizePrefix(2);
      if (v !== null) inner.write(w, v);
      close();
    },
  };
}

/**
 * A TPMI type: `base` restricted to the values `allowed` accepts, else `rc`. `.plus` is the same
 * type with the spec's `+` (the NULL value is accepted too).
 */
export interface TpmiCodec extends Codec<number> {
  readonly plus: Codec<number>;
}

export function tpmi(
  base: Codec<number>,
  allowed: (v: number) => boolean,
  rc: number,
  nullValue?: number,
  domain?: ProfileDomain,
): TpmiCodec {
  const make = (withNull: boolean): Codec<number> => ({
    read(r) {
      const v = base.read(r);
      if (withNull && v === nullValue) return v;
      // A value the TPM's profile disables answers as an unimplemented one (libtpms' unmarshal).
      if (allowed(v) && (domain === undefined || r.profile === undefined || r.profile.allows(domain, v))) return v;
      throw new TpmError(rc);
    },
    write: (w, v) => base.write(w, v),
  });
  return Object.assign(make(false), { plus: make(true) });
}

/** Shorthand for a TPMI over a fixed list of values. */
export function oneOf(base: Codec<number>, values: readonly number[], rc: number, nullValue?: number, domain?: ProfileDomain): TpmiCodec {
  const set = new Set(values);
  return tpmi(base, (v) => set.has(v), rc, nullValue, domain);
}

/**
 * Part 2 §9 TPMI_ALG_*: an implemented TPM_ALG_ID from `values` that the TPM's profile enables,
 * else `rc`; `.plus` accepts TPM_ALG_NULL.
 */
export function algorithm(values: readonly number[] | ((v: number) => boolean), rc: number): TpmiCodec {
  const allowed = typeof values === 'function' ? values : (v: number) => values.includes(v);
  return tpmi(UINT16, allowed, rc, TPM_ALG.NULL, 'alg');
}

/** A TPMA bit field: reserved bits set is TPM_RC_RESERVED_BITS (Part 2 §8). */
export function bits(base: Codec<number>, reservedMask: number): Codec<number> {
  return {
    read(r) {
      const v = base.read(r);
      if ((v & reservedMask) !== 0) throw new TpmError(TPM_RC.RESERVED_BITS);
      return v;
    },
    write: (w, v) => base.write(w, v),
  };
}

/** Part 2 §10.9 TPML: a u32 count (at most `max`, else `rc`) then that many items. */
export function list<T>(item: Codec<T>, max: number, rc: number = TPM_RC.SIZE, min = 0): Codec<T[]> {
  return {
    read(r) {
      const count = r.u32();
      if (count > max || count < min) throw new TpmError(rc);
      const out: T[] = new Array(count);
      for (let i = 0; i < count; i++) out[i] = item.read(r);
      return out;
    },
    write(w, v) {
      w.u32(v.length);
      for (const x of v) item.write(w, x);
    },
  };
}

type AnyField = Codec<any> | FieldCodec<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type StructOf<F extends Record<string, AnyField>> = { -readonly [K in keyof F]: Infer<F[K]> };

function isDependent(c: AnyField): c is FieldCodec<unknown> {
  return (c as FieldCodec<unknown>).dependent === true;
}

/** A TPMS/TPMT: fields in declaration order. */
export function struct<F extends Record<string, AnyField>>(fields: F): Codec<StructOf<F>> {
  const entries = Object.entries(fields);
  return {
    read(r) {
      const out: Record<string, unknown> = {};
      for (const [name, codec] of entries) {
        out[name] = isDependent(codec) ? codec.read(r, out) : (codec as Codec<unknown>).read(r);
      }
      return out as StructOf<F>;
    },
    write(w, v) {
      const obj = v as Record<string, unknown>;
      for (const [name, codec] of entries) {
        if (isDependent(codec)) codec.write(w, obj[name], obj);
        else (codec as Codec<unknown>).write(w, obj[name]);
      }
    },
  };
}

/** A field whose codec is chosen from the fields before it. */
export function dependent<T>(pick: (parent: Readonly<Record<string, unknown>>) => Codec<T>): FieldCodec<T> {
  return {
    dependent: true,
    read: (r, parent) => pick(parent).read(r),
    write: (w, v, parent) => pick(parent).write(w, v),
  };
}

/**
 * Part 2 §11 TPMU: the arm is chosen by the earlier sibling `selector`. A selector with no arm
 * is `rc` (TPM_RC_SELECTOR unless the spec names another).
 */
export function union<M extends Record<number, Codec<unknown>>>(
  selector: string,
  arms: M,
  rc: number = TPM_RC.SELECTOR,
): FieldCodec<Infer<M[keyof M]>> {
  const table = new Map<number, Codec<unknown>>(Object.entries(arms).map(([k, c]) => [Number(k), c]));
  const pick = (parent: Readonly<Record<string, unknown>>): Codec<unknown> => {
    const arm = table.get(parent[selector] as number);
    if (!arm) throw new TpmError(rc);
    return arm;
  };
  return dependent(pick) as FieldCodec<Infer<M[keyof M]>>;
}

/** Encodes one value with one codec: names, hashes and tests use the same bytes as the wire. */
export function encode<T>(codec: Codec<T>, v: T): Uint8Array {
  const w = new Writer();
  codec.write(w, v);
  return w.finish();
}

/** Decodes a whole buffer; trailing bytes are TPM_RC_SIZE. */
export function decode<T>(codec: Codec<T>, bytes: Uint8Array): T {
  const r = new Reader(bytes);
  const v = codec.read(r);
  if (r.remaining !== 0) throw new TpmError(TPM_RC.SIZE);
  return v;
}
