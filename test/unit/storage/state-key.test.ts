// State encryption at rest in swtpm's layout (swtpm-compat §5.2, §5.3): files under --key,
// GET/SET_STATEBLOB blobs under --key and --migration-key.
import { createDecipheriv, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StateFileError, unwrapState, wrapState } from '../../../src/storage/envelope.js';
import { exportStateBlob, importStateBlob, StateBlobError } from '../../../src/storage/state-blob.js';
import { stateKey } from '../../../src/storage/state-key.js';
import { parseTlvs } from '../../../src/storage/tlv.js';

const k128 = stateKey(new Uint8Array(16).fill(0x11));
const k256 = stateKey(new Uint8Array(32).fill(0x22));
const other256 = stateKey(new Uint8Array(32).fill(0x23));
const data = new Uint8Array(100).map((_, i) => i);

function reason(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof StateBlobError ? e.reason : String(e);
  }
  return 'accepted';
}

describe('state file under --key', () => {
  it.each([
    [k128, 0x01],
    [k256, 0x09],
  ])('layout: header flags, TLV 2 (ciphertext), 3 (HMAC over ciphertext ‖ IV), 6 (IV as long as the key)', (key, flags) => {
    const file = wrapState(data, key);
    const v = new DataView(file.buffer);
    expect([v.getUint8(0), v.getUint8(1), v.getUint16(2), v.getUint16(4), v.getUint32(6)]).toEqual([2, 1, 10, flags, file.length]);
    const recs = parseTlvs(file.subarray(10), (w) => new Error(w));
    expect([...recs.keys()]).toEqual([2, 3, 6]);
    const ct = recs.get(2)!;
    const iv = recs.get(6)!;
    const keyLen = key.bytes.length;
    expect(iv.length).toBe(keyLen);
    // padded up to a multiple of the key length (not the AES block), pad bytes = pad length
    const padLen = keyLen - (data.length % keyLen);
    expect(ct.length).toBe(data.length + padLen);
    expect(Buffer.from(recs.get(3)!)).toEqual(createHmac('sha256', key.bytes).update(ct).update(iv).digest());
    const d = createDecipheriv(keyLen === 32 ? 'aes-256-cbc' : 'aes-128-cbc', key.bytes, iv.subarray(0, 16)).setAutoPadding(false);
    const plain = Buffer.concat([d.update(ct), d.final()]);
    expect(plain.subarray(0, data.length)).toEqual(Buffer.from(data));
    expect([...plain.subarray(data.length)]).toEqual(new Array(padLen).fill(padLen));
    expect(unwrapState(file, 'f', key)).toEqual(data);
  });

  it('a fresh IV every write', () => {
    expect(Buffer.from(wrapState(data, k256))).not.toEqual(Buffer.from(wrapState(data, k256)));
  });

  it('wrong key, wrong key size, missing key, unexpected key: clear errors', () => {
    const file = wrapState(data, k256);
    expect(() => unwrapState(file, 'f', other256)).toThrow(/cannot decrypt f: the HMAC does not match.*--key/);
    expect(() => unwrapState(file, 'f', k128)).toThrow(/256-bit key, the key given has 128 bits/);
    expect(() => unwrapState(file, 'f')).toThrow(/f is encrypted; give the --key/);
    expect(() => unwrapState(wrapState(data), 'f', k256)).toThrow(/not encrypted, but --key was given/);
    const bad = file.slice();
    bad[20] ^= 1;
    expect(() => unwrapState(bad, 'f', k256)).toThrow(StateFileError);
  });
});

describe('state blobs under --key and --migration-key', () => {
  it('file key only: flags 0x04|0x01|0x08 and ENCRYPTED, unless DECRYPTED was asked for', () => {
    const enc = exportStateBlob(data, { file: k256 });
    expect(enc.encrypted).toBe(true);
    expect(new DataView(enc.blob.buffer).getUint16(4)).toBe(0x0d);
    expect(importStateBlob(enc.blob, false, { file: k256 })).toEqual(data);
    expect(reason(() => importStateBlob(enc.blob))).toBe('encrypted');
    const dec = exportStateBlob(data, { file: k256 }, true);
    expect(dec.encrypted).toBe(false);
    expect(new DataView(dec.blob.buffer).getUint16(4)).toBe(0x04);
    expect(importStateBlob(dec.blob)).toEqual(data);
  });

  it('migration key: TLVs 5, 3, 7 with flags 0x02|0x04(|0x10); round trip; missing/wrong/size errors', () => {
    for (const [mig, flags] of [
      [k128, 0x06],
      [k256, 0x16],
    ] as const) {
      const { blob } = exportStateBlob(data, { migration: mig });
      expect(new DataView(blob.buffer).getUint16(4)).toBe(flags);
      expect([...parseTlvs(blob.subarray(10), (w) => new Error(w)).keys()]).toEqual([5, 3, 7]);
      expect(importStateBlob(blob, false, { migration: mig })).toEqual(data);
      expect(reason(() => importStateBlob(blob))).toBe('encrypted');
    }
    const { blob } = exportStateBlob(data, { migration: k256 });
    expect(reason(() => importStateBlob(blob, false, { migration: other256 }))).toBe('wrong-key');
    expect(reason(() => importStateBlob(blob, false, { migration: k128 }))).toBe('key-size');
  });

  it('both keys: the file-key layer inside the migration layer; a plain blob is accepted under keys', () => {
    const { blob, encrypted } = exportStateBlob(data, { file: k128, migration: k256 });
    expect(encrypted).toBe(true);
    expect(new DataView(blob.buffer).getUint16(4)).toBe(0x17);
    expect(importStateBlob(blob, false, { file: k128, migration: k256 })).toEqual(data);
    expect(reason(() => importStateBlob(blob, false, { migration: k256 }))).toBe('encrypted');
    expect(importStateBlob(exportStateBlob(data).blob, false, { file: k128, migration: k256 })).toEqual(data);
  });
});

describe('AES-CBC', () => {
  it('FIPS 197 appendix C examples (one block, zero IV) and OpenSSL on longer data', async () => {
    const { aesCbcDecrypt, aesCbcEncrypt } = await import('../../../src/tpm/crypto/index.js');
    const { createCipheriv, randomBytes } = await import('node:crypto');
    const pt = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const zero = new Uint8Array(16);
    for (const [key, ct] of [
      ['000102030405060708090a0b0c0d0e0f', '69c4e0d86a7b0430d8cdb78070b4c55a'],
      ['000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', '8ea2b7ca516745bfeafc49904b496089'],
    ] as const) {
      const k = Buffer.from(key, 'hex');
      expect(Buffer.from(aesCbcEncrypt(k, zero, pt)).toString('hex')).toBe(ct);
      expect(Buffer.from(aesCbcDecrypt(k, zero, Buffer.from(ct, 'hex')))).toEqual(pt);
    }
    for (const len of [16, 32]) {
      const k = randomBytes(len);
      const iv = randomBytes(16);
      const msg = randomBytes(16 * 37);
      const c = createCipheriv(len === 32 ? 'aes-256-cbc' : 'aes-128-cbc', k, iv).setAutoPadding(false);
      const expected = Buffer.concat([c.update(msg), c.final()]);
      expect(Buffer.from(aesCbcEncrypt(k, iv, msg))).toEqual(expected);
      expect(Buffer.from(aesCbcDecrypt(k, iv, expected))).toEqual(msg);
    }
  });
});
