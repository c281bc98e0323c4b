/**
 * The few DER (X.690) pieces X.509 certification needs: encoding of tag/length, SEQUENCE,
 * INTEGER, OBJECT IDENTIFIER, NULL, BIT STRING and context tags, and a tag/length reader with the
 * reference's limits (short lengths and the 0x81/0x82 long forms up to 0x7fff, no high tag
 * numbers).
 */
import { concatBytes } from './bytes.js';

export const DER = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  /** Constructed context-specific [n] is CONTEXT + n. */
  CONTEXT: 0xa0,
} as const;

/** The length octets: short form below 128, else the fewest octets after 0x80 | count. */
export function derLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n & 0xff);
  return Uint8Array.of(0x80 | octets.length, ...octets);
}

export function derTlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const value = concatBytes(...content);
  return concatBytes(Uint8Array.of(tag), derLength(value.length), value);
}

export const derSequence = (...content: Uint8Array[]): Uint8Array => derTlv(DER.SEQUENCE, ...content);
export const derContext = (n: number, ...content: Uint8Array[]): Uint8Array => derTlv(DER.CONTEXT + n, ...content);
export const derNull = (): Uint8Array => Uint8Array.of(DER.NULL, 0);

/** A non-negative big-endian integer: leading zeros dropped (one kept for zero), a zero added before a set high bit. */
export function derUnsigned(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  return (value[0] ?? 0) & 0x80 ? derTlv(DER.INTEGER, Uint8Array.of(0), value) : derTlv(DER.INTEGER, value.length ? value : Uint8Array.of(0));
}

export const derUint32 = (n: number): Uint8Array => derUnsigned(Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));

/** An OBJECT IDENTIFIER from its dotted form (first two arcs in one octet, base-128 arcs). */
export function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const octets: number[] = [];
  const push = (arc: number) => {
    const groups = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) groups.unshift((n & 0x7f) | 0x80);
    octets.push(...groups);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) push(arc);
  return derTlv(DER.OID, Uint8Array.from(octets));
}

/** A BIT STRING holding whole octets (no unused bits). */
export const derBitString = (octets: Uint8Array): Uint8Array => derTlv(DER.BIT_STRING, Uint8Array.of(0), octets);

/** One element read: its tag, where its value starts and ends, and where the element began. */
export interface DerElement {
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

/**
 * The element at `at`, which must end by `limit`; null when the tag is a high tag number, the
 * length form is not short, 0x81 or 0x82 (first octet below 0x80), or it runs past `limit`.
 */
export function derRead(buf: Uint8Array, at: number, limit: number = buf.length): DerElement | null {
  if (at >= limit) return null;
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) return null;
  let p = at + 1;
  if (p >= limit) return null;
  const first = buf[p++]!;
  let length = first;
  if (first >= 0x80) {
    const count = first & 0x7f;
    if (p + count > limit) return null;
    if (first === 0x81) length = buf[p++]!;
    else if (first === 0x82) {
      if (buf[p]! >= 0x80) return null;
      length = (buf[p]! << 8) | buf[p + 1]!;
      p += 2;
    } else return null;
  }
  if (p + length > limit) return null;
  return { tag, start: at, valueStart: p, end: p + length };
}

/**
 * The value of a BIT STRING of up to 32 bits, left-justified in a UINT32 (the first bit is bit
 * 31), as the reference reads KeyUsage and TPMA_OBJECT extensions; null when malformed or longer.
 */
export function derBitStringValue(value: Uint8Array): number | null {
  if (value.length < 1) return null;
  const unused = value[0]!;
  const octets = value.length - 1;
  if (unused >= 8 || (octets === 0 && unused !== 0)) return null;
  const bits = 8 * octets - unused;
  if (bits > 32) return null;
  let v = 0;
  for (let i = 1; i < value.length; i++) v = v * 256 + value[i]!;
  v = Math.floor(v / 2 ** unused);
  return bits > 0 ? (v * 2 ** (32 - bits)) >>> 0 : 0;
}
