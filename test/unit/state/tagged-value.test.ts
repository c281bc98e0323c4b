/**
 * The binary body encoding of state blobs (state/tagged-value.ts): the layout its header
 * describes, round trips of every kind of value at its edges, and refusal of damaged input.
 */
import { describe, expect, test } from 'vitest';
import { decodeTaggedValue, encodeTaggedValue } from '../../../src/tpm/state/tagged-value.js';
import { hex, unhex } from '../../helpers/engine.js';

const roundTrip = (v: unknown): unknown => decodeTaggedValue(encodeTaggedValue(v));

describe('tagged values', () => {
  test('the layout: tag bytes, LEB128 counts and lengths, keys before their values', () => {
    // {a: [1, 'x'], b: {a: true}}: OBJECT 2, key "a", ARRAY 2 (UINT 1, STRING "x"), key "b",
    // OBJECT 1, key "a", TRUE.
    expect(hex(encodeTaggedValue({ a: [1, 'x'], b: { a: true } }))).toBe('0b02' + '0161' + '0a02' + '0301' + '080178' + '0162' + '0b01' + '0161' + '02');
    // More than 127 properties: a two-byte count.
    const wide = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, i % 2 ? undefined : i]));
    expect(hex(encodeTaggedValue(wide).subarray(0, 3))).toBe('0b6402');
    const manyKeys = Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`k${i}`, i]));
    expect(hex(encodeTaggedValue(manyKeys).subarray(0, 3))).toBe('0b8201');
    expect(decodeTaggedValue(encodeTaggedValue(wide))).toEqual(JSON.parse(JSON.stringify(wide)));
    expect(decodeTaggedValue(encodeTaggedValue(manyKeys))).toEqual(manyKeys);
    expect(hex(encodeTaggedValue(300))).toBe('03ac02');
    expect(hex(encodeTaggedValue(-2))).toBe('0402');
    expect(hex(encodeTaggedValue(0x1234n))).toBe('06021234');
    expect(hex(encodeTaggedValue(-1n))).toBe('070101');
    expect(hex(encodeTaggedValue(new Uint8Array([9, 8])))).toBe('09020908');
    expect(hex(encodeTaggedValue(new Map([[7, null]])))).toBe('0c01' + '0307' + '00');
    expect(hex(encodeTaggedValue(0.5))).toBe('053fe0000000000000');
    expect(hex(encodeTaggedValue(null))).toBe('00');
    expect(hex(encodeTaggedValue(false))).toBe('01');
  });

  test('numbers, bigints and strings at their edges', () => {
    const numbers = [0, 1, 127, 128, 16383, 16384, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, -1, -128, Number.MIN_SAFE_INTEGER,
      2 ** 53, -(2 ** 60), 1.5, -0.25, 1e300, Number.MIN_VALUE, Infinity, -Infinity];
    for (const n of numbers) expect(roundTrip(n)).toBe(n);
    expect(roundTrip(NaN)).toBeNaN();
    const bigints = [0n, 1n, 255n, 256n, 2n ** 53n + 1n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 200n + 12345n, -1n, -(2n ** 64n) - 1n];
    for (const b of bigints) expect(roundTrip(b)).toBe(b);
    for (const s of ['', 'a', 'ünïcødé ✓ 🔑', 'x'.repeat(70000)]) expect(roundTrip(s)).toBe(s);
  });

  test('byte strings of any length come back as Uint8Arrays with buffers of their own', () => {
    for (const n of [0, 1, 63, 64, 65, 127, 128, 4096, 70000]) {
      const b = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      const out = roundTrip(b) as Uint8Array;
      expect(out).toBeInstanceOf(Uint8Array);
      expect(out).toEqual(b);
      expect(out.byteOffset).toBe(0);
      expect(out.buffer.byteLength).toBe(n);
    }
    // A view into a larger buffer (and a Buffer) is written as its own bytes only.
    const big = new Uint8Array(100).map((_, i) => i);
    expect(roundTrip(big.subarray(10, 20))).toEqual(big.slice(10, 20));
    expect(roundTrip(Buffer.from('abc'))).toEqual(new Uint8Array([0x61, 0x62, 0x63]));
  });

  test('arrays, Maps and objects, empty and nested, as JSON would keep them', () => {
    expect(roundTrip([])).toEqual([]);
    expect(roundTrip({})).toEqual({});
    const empty = roundTrip(new Map());
    expect(empty).toBeInstanceOf(Map);
    expect((empty as Map<unknown, unknown>).size).toBe(0);
    const m = new Map<unknown, unknown>([[1, new Uint8Array([1])], [0x81000001, { x: 1n }], ['k', [null, true]]]);
    expect(roundTrip(m)).toEqual(m);
    // Undefined properties are left out; undefined array elements become null (JSON.stringify's rules).
    expect(roundTrip({ a: undefined, b: 1 })).toEqual({ b: 1 });
    expect(Object.keys(roundTrip({ a: undefined, b: 1 }) as object)).toEqual(['b']);
    expect(roundTrip([undefined, 1])).toEqual([null, 1]);
    // Key order is kept; many objects with the same keys decode with them.
    const list = Array.from({ length: 300 }, (_, i) => ({ z: i, a: `v${i}`, m: { z: i % 3 } }));
    expect(roundTrip(list)).toEqual(list);
    expect(Object.keys((roundTrip(list) as object[])[299]!)).toEqual(['z', 'a', 'm']);
    // A key named __proto__ is data, not the prototype.
    const odd = JSON.parse('{"__proto__": {"polluted": 1}, "b": 2}') as Record<string, unknown>;
    const back = roundTrip(odd) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toEqual(['__proto__', 'b']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('values a state never holds are refused instead of lost', () => {
    expect(() => encodeTaggedValue(new Set([1]))).toThrow(TypeError);
    expect(() => encodeTaggedValue({ a: new Uint16Array(2) })).toThrow(TypeError);
    expect(() => encodeTaggedValue({ f: () => 1 })).toThrow(TypeError);
    expect(() => encodeTaggedValue([Symbol('s')])).toThrow(TypeError);
    expect(() => encodeTaggedValue(undefined)).toThrow(TypeError);
  });

  test('damaged input throws: every truncation, trailing bytes, unknown tags, counts past the end', () => {
    const whole = encodeTaggedValue({ eps: new Uint8Array(64).fill(1), nv: [{ data: new Uint8Array(300), n: 2n ** 70n }], m: new Map([[1, 'x']]) });
    for (let n = 0; n < whole.length; n++) expect(() => decodeTaggedValue(whole.subarray(0, n)), `${n} bytes`).toThrow();
    expect(() => decodeTaggedValue(new Uint8Array([...whole, 0]))).toThrow(/trailing/);
    expect(() => decodeTaggedValue(unhex('0d'))).toThrow(/unknown tag 13/);
    expect(() => decodeTaggedValue(unhex('0affffffff0f'))).toThrow(/past the end/);
    expect(() => decodeTaggedValue(unhex('09ffffffff0f00'))).toThrow(/past the end/);
    expect(() => decodeTaggedValue(unhex('03ffffffffffffffffff01'))).toThrow(/too long/);
    expect(() => decodeTaggedValue(unhex('0802c328'))).toThrow(TypeError);
  });

  test('encoding twice gives the same bytes (the writer is reused between saves)', () => {
    const a = { big: new Uint8Array(50000).fill(7), k: 'x' };
    const first = encodeTaggedValue(a);
    encodeTaggedValue({ other: [1, 2, 3] });
    expect(encodeTaggedValue(a)).toEqual(first);
    expect(encodeTaggedValue(a, 12).subarray(12)).toEqual(first);
    expect(encodeTaggedValue(a, 12).subarray(0, 12)).toEqual(new Uint8Array(12));
  });
});
