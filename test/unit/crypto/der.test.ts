/**
 * The DER pieces of X.509 certification against encodings written out from X.690 and RFC 5280
 * examples, and the reader's limits.
 */
import { describe, expect, test } from 'vitest';
import {
  derBitString,
  derBitStringValue,
  derContext,
  derLength,
  derNull,
  derOid,
  derRead,
  derSequence,
  derUint32,
  derUnsigned,
} from '../../../src/tpm/crypto/der.js';
import { hex, unhex } from '../../helpers/engine.js';

describe('DER encoding', () => {
  test('lengths: short form, 0x81 and 0x82 long forms', () => {
    expect(hex(derLength(0))).toBe('00');
    expect(hex(derLength(127))).toBe('7f');
    expect(hex(derLength(128))).toBe('8180');
    expect(hex(derLength(255))).toBe('81ff');
    expect(hex(derLength(256))).toBe('820100');
    expect(hex(derLength(0x1234))).toBe('821234');
  });

  test('object identifiers', () => {
    expect(hex(derOid('1.2.840.113549.1.1.11'))).toBe('06092a864886f70d01010b'); // sha256WithRSAEncryption
    expect(hex(derOid('1.2.840.10045.3.1.7'))).toBe('06082a8648ce3d030107'); // prime256v1
    expect(hex(derOid('2.5.29.15'))).toBe('0603551d0f'); // keyUsage
    expect(hex(derOid('2.23.133.10.1.1.1'))).toBe('06076781050a010101'); // TCG tpmaObject
    expect(hex(derOid('1.3.132.0.34'))).toBe('06052b81040022'); // secp384r1
  });

  test('unsigned integers: leading zeros dropped, a zero before a set high bit', () => {
    expect(hex(derUint32(2))).toBe('020102');
    expect(hex(derUint32(0))).toBe('020100');
    expect(hex(derUint32(65537))).toBe('0203010001');
    expect(hex(derUint32(0x80))).toBe('02020080');
    expect(hex(derUnsigned(unhex('0000ff01')))).toBe('020300ff01');
    expect(hex(derUnsigned(unhex('7f')))).toBe('02017f');
  });

  test('SEQUENCE, NULL, BIT STRING and context tags', () => {
    expect(hex(derSequence(derOid('1.2.840.113549.1.1.1'), derNull()))).toBe('300d06092a864886f70d0101010500');
    expect(hex(derBitString(unhex('04aabb')))).toBe('03040004aabb');
    expect(hex(derContext(0, derUint32(2)))).toBe('a003020102');
    const long = derSequence(new Uint8Array(200));
    expect(hex(long.subarray(0, 3))).toBe('3081c8');
    expect(long.length).toBe(203);
  });
});

describe('DER reading', () => {
  test('tag, value and end of short and long forms', () => {
    expect(derRead(unhex('3003020102'), 0)).toEqual({ tag: 0x30, start: 0, valueStart: 2, end: 5 });
    const long = derSequence(new Uint8Array(300));
    expect(derRead(long, 0)).toEqual({ tag: 0x30, start: 0, valueStart: 4, end: 304 });
    // A non-minimal 0x81 form is read as the reference reads it.
    expect(derRead(unhex('308101aa'), 0)).toEqual({ tag: 0x30, start: 0, valueStart: 3, end: 4 });
  });

  test('refuses high tag numbers, 0x83+ lengths, 0x82 lengths over 0x7fff and overruns', () => {
    expect(derRead(unhex('1f0100'), 0)).toBeNull();
    expect(derRead(unhex('308300000100'), 0)).toBeNull();
    expect(derRead(unhex('30828000'), 0)).toBeNull();
    expect(derRead(unhex('300301'), 0)).toBeNull();
    expect(derRead(unhex('30'), 0)).toBeNull();
    expect(derRead(unhex('3002aabb'), 0, 3)).toBeNull();
  });

  test('BIT STRING values are left-justified in 32 bits', () => {
    // KeyUsage digitalSignature (bit 0): 03 02 07 80.
    expect(derBitStringValue(unhex('0780'))).toBe(0x80000000);
    // digitalSignature | keyCertSign (bits 0 and 5): 03 02 02 84.
    expect(derBitStringValue(unhex('0284'))).toBe(0x84000000);
    // decipherOnly (bit 8): 03 03 07 00 80.
    expect(derBitStringValue(unhex('070080'))).toBe(0x00800000);
    expect(derBitStringValue(unhex('0000060472'))).toBe(0x00060472);
    expect(derBitStringValue(unhex('00'))).toBe(0);
    expect(derBitStringValue(unhex(''))).toBeNull();
    expect(derBitStringValue(unhex('08ff'))).toBeNull();
    expect(derBitStringValue(unhex('01'))).toBeNull();
    expect(derBitStringValue(unhex('000102030405'))).toBeNull();
  });
});
