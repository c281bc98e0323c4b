/**
 * Part 1 §23 TPM2B_PRIVATE: the outer wrap recomputed here with node:crypto from the formulas
 * (KDFa "STORAGE"/"INTEGRITY", AES-CFB under a random IV, HMAC over IV area, ciphertext and
 * Name), a round trip, and every changed byte or wrong Name/parent refused.
 */
import { createCipheriv, createHmac } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_RC } from '../../../src/tpm/constants.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { TPMT_SENSITIVE } from '../../../src/tpm/marshal/sensitive.js';
import { privateToSensitive, sensitiveToPrivate, type Protector } from '../../../src/tpm/commands/object-private.js';
import { TpmError } from '../../../src/tpm/errors.js';
import { cat, hex, unhex } from '../../helpers/engine.js';

/** KDFa (Part 1 §11.4.10.2) written out independently for one or two SHA-256 blocks. */
function kdfaSha256(key: Uint8Array, label: string, u: Uint8Array, v: Uint8Array, bits: number): Uint8Array {
  const out: Buffer[] = [];
  for (let i = 1; out.length * 32 < bits / 8; i++) {
    const h = createHmac('sha256', key);
    const n = Buffer.alloc(4);
    n.writeUInt32BE(i);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(bits);
    h.update(n).update(Buffer.from(label + '\0')).update(u).update(v).update(b);
    out.push(h.digest());
  }
  return new Uint8Array(Buffer.concat(out).subarray(0, bits / 8));
}

const parent: Protector = { nameAlg: TPM_ALG.SHA256, seed: unhex('11'.repeat(32)), symKeyBits: 128 };
const name = unhex('000b' + '22'.repeat(32));
const sensitive = {
  sensitiveType: TPM_ALG.KEYEDHASH,
  authValue: cat(unhex('616263'), new Uint8Array(29)),
  seedValue: unhex('33'.repeat(32)),
  sensitive: unhex('736563726574'),
};
const iv = unhex('44'.repeat(16));

function rc(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    if (e instanceof TpmError) return e.rc;
    throw e;
  }
  return 0;
}

describe('TPM2B_PRIVATE outer wrap', () => {
  test('layout and values as Part 1 §23 and the reference define them', () => {
    const blob = sensitiveToPrivate(sensitive, name, parent, iv);
    const inner = encode(TPMT_SENSITIVE, sensitive);
    const plain = cat(new Uint8Array([inner.length >> 8, inner.length & 0xff]), inner);
    const symKey = kdfaSha256(parent.seed, 'STORAGE', name, new Uint8Array(0), 128);
    const c = createCipheriv('aes-128-cfb', symKey, iv);
    const encrypted = new Uint8Array(Buffer.concat([c.update(plain), c.final()]));
    const ivArea = cat(unhex('0010'), iv);
    const hmacKey = kdfaSha256(parent.seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256);
    const integrity = createHmac('sha256', hmacKey).update(ivArea).update(encrypted).update(name).digest();
    expect(hex(blob)).toBe(hex(cat(unhex('0020'), integrity, ivArea, encrypted)));
  });

  test('round trip; any changed byte, another Name or another parent seed is TPM_RC_INTEGRITY', () => {
    const blob = sensitiveToPrivate(sensitive, name, parent, iv);
    const back = privateToSensitive(blob, name, parent);
    expect(hex(encode(TPMT_SENSITIVE, back))).toBe(hex(encode(TPMT_SENSITIVE, sensitive)));
    for (let i = 2; i < blob.length; i++) {
      const bad = blob.slice();
      bad[i]! ^= 0x01;
      expect(rc(() => privateToSensitive(bad, name, parent)), `byte ${i}`).toBe(TPM_RC.INTEGRITY);
    }
    const otherName = name.slice();
    otherName[5]! ^= 1;
    expect(rc(() => privateToSensitive(blob, otherName, parent))).toBe(TPM_RC.INTEGRITY);
    expect(rc(() => privateToSensitive(blob, name, { ...parent, seed: unhex('12'.repeat(32)) }))).toBe(TPM_RC.INTEGRITY);
    // A cut blob: the integrity field no longer fits.
    expect(rc(() => privateToSensitive(blob.subarray(0, 10), name, parent))).toBe(TPM_RC.INSUFFICIENT);
  });

  test('a different IV gives a different blob that opens to the same sensitive area', () => {
    const a = sensitiveToPrivate(sensitive, name, parent, iv);
    const b = sensitiveToPrivate(sensitive, name, parent, unhex('55'.repeat(16)));
    expect(hex(a)).not.toBe(hex(b));
    expect(hex(encode(TPMT_SENSITIVE, privateToSensitive(b, name, parent)))).toBe(hex(encode(TPMT_SENSITIVE, sensitive)));
  });
});
