/**
 * Part 2 codecs: golden bytes written by hand (not by the encoder), decoded and re-encoded,
 * and every validation error with the response code the spec names.
 */
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CAP, TPM_RC, TPM_RH, TPM_ST } from '../../../src/tpm/constants.js';
import { decode, encode, list, sized, struct, tpm2b, UINT16, UINT32, Codec } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { Writer } from '../../../src/tpm/marshal/writer.js';
import {
  TPM2B_DIGEST,
  TPML_DIGEST_VALUES,
  TPML_PCR_SELECTION,
  TPMS_CLOCK_INFO,
  TPMT_HA,
  TPMT_TK_HASHCHECK,
} from '../../../src/tpm/marshal/structures.js';
import { TPMS_CAPABILITY_DATA } from '../../../src/tpm/marshal/capability.js';
import { TPMI_ALG_HASH, TPMI_DH_OBJECT, TPMI_DH_PCR, TPMI_ST_COMMAND_TAG, TPM_SU_CODEC } from '../../../src/tpm/marshal/tpmi.js';
import { hex, unhex } from '../../helpers/engine.js';
import { tpmErrorRc } from '../../helpers/tpm-error.js';

function roundTrip<T>(codec: Codec<T>, golden: string, expected: T): void {
  const value = decode(codec, unhex(golden));
  expect(value).toEqual(expected);
  expect(hex(encode(codec, value))).toBe(golden.replace(/\s+/g, ''));
}

describe('Reader and Writer', () => {
  test('big-endian integers and bytes', () => {
    const w = new Writer(1);
    w.u8(0x01);
    w.u16(0x0203);
    w.u32(0x04050607);
    w.u64(0x08090a0b0c0d0e0fn);
    w.bytes(unhex('1011'));
    expect(hex(w.finish())).toBe('01020304050607' + '08090a0b0c0d0e0f' + '1011');
    const r = new Reader(w.finish());
    expect([r.u8(), r.u16(), r.u32(), r.u64(), hex(r.bytes(2))]).toEqual([1, 0x0203, 0x04050607, 0x08090a0b0c0d0e0fn, '1011']);
    expect(r.remaining).toBe(0);
  });

  test('the writer grows past its initial capacity without losing bytes', () => {
    const w = new Writer(2);
    const chunk = new Uint8Array(1000).map((_, i) => i & 0xff);
    w.u32(0xdeadbeef);
    w.bytes(chunk);
    w.u16(0xcafe);
    const out = w.finish();
    expect(out.length).toBe(1006);
    expect(hex(out.subarray(0, 4))).toBe('deadbeef');
    expect(out.subarray(4, 1004)).toEqual(chunk);
    expect(hex(out.subarray(1004))).toBe('cafe');
  });

  test('size prefixes are filled in after the fact', () => {
    const w = new Writer();
    const close = w.sizePrefix(4);
    w.u16(7);
    close();
    expect(hex(w.finish())).toBe('000000020007');
  });

  test('short-lived results share a slab yet never alias one another or a later writer', () => {
    const outs: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) {
      const w = new Writer();
      w.u32(i);
      w.bytes(new Uint8Array(i % 40).fill(i & 0xff));
      outs.push(w.finishShortLived());
    }
    // 3000 results of 4-43 bytes: several slabs, each result still what was written.
    expect(new Set(outs.map((o) => o.buffer)).size).toBeGreaterThan(1);
    expect(new Set(outs.map((o) => o.buffer)).size).toBeLessThan(outs.length / 10);
    outs.forEach((o, i) => {
      expect(o.length).toBe(4 + (i % 40));
      expect(new DataView(o.buffer, o.byteOffset).getUint32(0)).toBe(i);
      expect(o.subarray(4).every((b) => b === (i & 0xff))).toBe(true);
    });
    // A result larger than a quarter slab gets a buffer of its own.
    const big = new Writer();
    big.bytes(new Uint8Array(8192).fill(7));
    const own = big.finishShortLived();
    expect(own.byteOffset).toBe(0);
    expect(own.buffer.byteLength).toBe(8192);
  });

  test('reading past the end is TPM_RC_INSUFFICIENT', () => {
    expect(tpmErrorRc(() => new Reader(unhex('0102')).u32())).toBe(TPM_RC.INSUFFICIENT);
  });
});

describe('TPM2B', () => {
  test('TPM2B_DIGEST round trip', () => {
    roundTrip(TPM2B_DIGEST, '0003 aabbcc', unhex('aabbcc'));
    roundTrip(TPM2B_DIGEST, '0000', new Uint8Array(0));
  });

  test('a size over the maximum is TPM_RC_SIZE', () => {
    expect(tpmErrorRc(() => decode(TPM2B_DIGEST, unhex('0041' + '00'.repeat(65))))).toBe(TPM_RC.SIZE);
  });

  test('a size over the data is TPM_RC_INSUFFICIENT', () => {
    expect(tpmErrorRc(() => decode(tpm2b(10), unhex('0005 0102')))).toBe(TPM_RC.INSUFFICIENT);
  });

  test('sized(): the inner structure must fill the size exactly', () => {
    const inner = struct({ a: UINT16 });
    expect(decode(sized(inner), unhex('0002 1234'))).toEqual({ a: 0x1234 });
    expect(tpmErrorRc(() => decode(sized(inner), unhex('0003 123456')))).toBe(TPM_RC.SIZE);
    expect(tpmErrorRc(() => decode(sized(inner), unhex('0000')))).toBe(TPM_RC.SIZE);
    expect(decode(sized(inner, true), unhex('0000'))).toBeNull();
    expect(hex(encode(sized(inner), { a: 7 }))).toBe('00020007');
  });

  test('trailing bytes after a whole structure are TPM_RC_SIZE', () => {
    expect(tpmErrorRc(() => decode(UINT16, unhex('000102')))).toBe(TPM_RC.SIZE);
  });
});

describe('TPMI types', () => {
  test('TPMI_ALG_HASH accepts implemented hashes, NULL only with +', () => {
    expect(decode(TPMI_ALG_HASH, unhex('000b'))).toBe(TPM_ALG.SHA256);
    expect(tpmErrorRc(() => decode(TPMI_ALG_HASH, unhex('0010')))).toBe(TPM_RC.HASH);
    expect(decode(TPMI_ALG_HASH.plus, unhex('0010'))).toBe(TPM_ALG.NULL);
    expect(tpmErrorRc(() => decode(TPMI_ALG_HASH, unhex('0006')))).toBe(TPM_RC.HASH);
  });

  test('TPMI_DH_PCR: 0..23, NULL only with +', () => {
    expect(decode(TPMI_DH_PCR, unhex('00000017'))).toBe(23);
    expect(tpmErrorRc(() => decode(TPMI_DH_PCR, unhex('00000018')))).toBe(TPM_RC.VALUE);
    expect(tpmErrorRc(() => decode(TPMI_DH_PCR, unhex('40000007')))).toBe(TPM_RC.VALUE);
    expect(decode(TPMI_DH_PCR.plus, unhex('40000007'))).toBe(TPM_RH.NULL);
  });

  test('TPMI_DH_OBJECT: one transient handle per object slot, any persistent handle', () => {
    expect(decode(TPMI_DH_OBJECT, unhex('80000002'))).toBe(0x80000002);
    expect(tpmErrorRc(() => decode(TPMI_DH_OBJECT, unhex('80000003')))).toBe(TPM_RC.VALUE);
    expect(decode(TPMI_DH_OBJECT, unhex('81000001'))).toBe(0x81000001);
    expect(tpmErrorRc(() => decode(TPMI_DH_OBJECT, unhex('40000001')))).toBe(TPM_RC.VALUE);
  });

  test('TPMI_ST_COMMAND_TAG: no tag at all is VALUE, another tag is BAD_TAG', () => {
    expect(decode(TPMI_ST_COMMAND_TAG, unhex('8002'))).toBe(TPM_ST.SESSIONS);
    expect(tpmErrorRc(() => decode(TPMI_ST_COMMAND_TAG, unhex('1234')))).toBe(TPM_RC.VALUE);
    expect(tpmErrorRc(() => decode(TPMI_ST_COMMAND_TAG, unhex('8000')))).toBe(TPM_RC.BAD_TAG);
  });

  test('TPM_SU: CLEAR and STATE only', () => {
    expect(decode(TPM_SU_CODEC, unhex('0001'))).toBe(1);
    expect(tpmErrorRc(() => decode(TPM_SU_CODEC, unhex('0002')))).toBe(TPM_RC.VALUE);
  });
});

describe('TPMT, TPML, TPMS', () => {
  test('TPMT_HA selects the digest size from hashAlg', () => {
    roundTrip(TPMT_HA, '0004' + '11'.repeat(20), { hashAlg: TPM_ALG.SHA1, digest: unhex('11'.repeat(20)) });
    roundTrip(TPMT_HA, '000d' + '22'.repeat(64), { hashAlg: TPM_ALG.SHA512, digest: unhex('22'.repeat(64)) });
    expect(tpmErrorRc(() => decode(TPMT_HA, unhex('000b' + '11'.repeat(20))))).toBe(TPM_RC.INSUFFICIENT);
  });

  test('TPML_DIGEST_VALUES: count above the number of banks is TPM_RC_SIZE', () => {
    const one = '0004' + '11'.repeat(20);
    expect(decode(TPML_DIGEST_VALUES, unhex('00000001' + one))).toHaveLength(1);
    expect(tpmErrorRc(() => decode(TPML_DIGEST_VALUES, unhex('00000005' + one.repeat(5))))).toBe(TPM_RC.SIZE);
  });

  test('TPMS_PCR_SELECTION: sizeofSelect must be exactly 3 on a 24-PCR TPM', () => {
    roundTrip(TPML_PCR_SELECTION, '00000002 000b 03 ff0000 0004 03 000080', [
      { hash: TPM_ALG.SHA256, sizeofSelect: 3, pcrSelect: unhex('ff0000') },
      { hash: TPM_ALG.SHA1, sizeofSelect: 3, pcrSelect: unhex('000080') },
    ]);
    expect(tpmErrorRc(() => decode(TPML_PCR_SELECTION, unhex('00000001 000b 02 ffff')))).toBe(TPM_RC.VALUE);
    expect(tpmErrorRc(() => decode(TPML_PCR_SELECTION, unhex('00000001 000b 04 ffffffff')))).toBe(TPM_RC.VALUE);
    expect(tpmErrorRc(() => decode(TPML_PCR_SELECTION, unhex('00000001 0099 03 ffffff')))).toBe(TPM_RC.HASH);
  });

  test('TPMT_TK_HASHCHECK: tag must be TPM_ST_HASHCHECK', () => {
    roundTrip(TPMT_TK_HASHCHECK, '8024 40000007 0000', { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });
    expect(tpmErrorRc(() => decode(TPMT_TK_HASHCHECK, unhex('8021 40000007 0000')))).toBe(TPM_RC.TAG);
  });

  test('TPMS_CLOCK_INFO: safe is a TPMI_YES_NO', () => {
    roundTrip(TPMS_CLOCK_INFO, '0000000000000400 00000001 00000002 01', { clock: 1024n, resetCount: 1, restartCount: 2, safe: true });
    expect(tpmErrorRc(() => decode(TPMS_CLOCK_INFO, unhex('0000000000000400 00000001 00000002 02')))).toBe(TPM_RC.VALUE);
  });

  test('TPMS_CAPABILITY_DATA: the union follows the capability', () => {
    roundTrip(TPMS_CAPABILITY_DATA, '00000006 00000001 00000105 49424d00', {
      capability: TPM_CAP.TPM_PROPERTIES,
      data: [{ property: 0x105, value: 0x49424d00 }],
    });
    roundTrip(TPMS_CAPABILITY_DATA, '00000000 00000001 000b 00000004', {
      capability: TPM_CAP.ALGS,
      data: [{ alg: TPM_ALG.SHA256, algProperties: 4 }],
    });
    expect(tpmErrorRc(() => decode(TPMS_CAPABILITY_DATA, unhex('000000ff 00000000')))).toBe(TPM_RC.SELECTOR);
  });

  test('list() enforces its minimum and maximum', () => {
    const l = list(UINT32, 2, TPM_RC.SIZE, 1);
    expect(tpmErrorRc(() => decode(l, unhex('00000000')))).toBe(TPM_RC.SIZE);
    expect(tpmErrorRc(() => decode(l, unhex('00000003 00000001 00000002 00000003')))).toBe(TPM_RC.SIZE);
  });
});
