/**
 * Salted sessions and parameter encryption (Part 1 §19.6.13, §21; Part 3 §11.1): the client
 * side is test/helpers/session-client.ts, written with node:crypto alone, so every salt,
 * session key, mask, CFB key and HMAC here is computed independently of the engine.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RH } from '../../../src/tpm/constants.js';
import { decryptParameter, encryptParameter, xorObfuscate } from '../../../src/tpm/auth/param-encryption.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import {
  callWithSessions,
  digest,
  paramCrypt,
  startSession,
  SYM_AES128,
  SYM_AES256,
  SYM_NULL,
  SYM_XOR,
  type Symmetric,
} from '../../helpers/session-client.js';

const CONTINUE = 0x01;
const DECRYPT = 0x20;
const ENCRYPT = 0x40;

/**
 * The Linux kernel's NULL-hierarchy primary (drivers/char/tpm/tpm2-sessions.c): ECC P-256,
 * SHA-256, fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA|restricted|decrypt,
 * AES-128-CFB, no scheme, no KDF, an empty unique point.
 */
const KERNEL_NULL_KEY = cat(
  be.u16(TPM_ALG.ECC), be.u16(TPM_ALG.SHA256), be.u32(0x00030472), be.u16(0),
  be.u16(TPM_ALG.AES), be.u16(128), be.u16(TPM_ALG.CFB), be.u16(TPM_ALG.NULL), be.u16(0x0003), be.u16(TPM_ALG.NULL),
  be.u16(0), be.u16(0),
);

/** A keyed-hash (sealed data) template and an ECC signing template, for the tpmKey checks. */
const KEYEDHASH_TEMPLATE = cat(be.u16(TPM_ALG.KEYEDHASH), be.u16(TPM_ALG.SHA256), be.u32(0x00040472), be.u16(0), be.u16(TPM_ALG.HMAC), be.u16(TPM_ALG.SHA256), be.u16(0));
const ECC_SIGNING_TEMPLATE = cat(
  be.u16(TPM_ALG.ECC), be.u16(TPM_ALG.SHA256), be.u32(0x00040472), be.u16(0),
  be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.ECDSA), be.u16(TPM_ALG.SHA256), be.u16(0x0003), be.u16(TPM_ALG.NULL),
  be.u16(0), be.u16(0),
);

function createPrimary(t: TestTpm, template: Uint8Array, hierarchy: number = TPM_RH.NULL) {
  const sensitive = cat(be.b2(new Uint8Array(0)), be.b2(new Uint8Array(0)));
  const r = t.call(TPM_CC.CreatePrimary, {
    handles: [hierarchy],
    passwords: [''],
    params: cat(be.b2(sensitive), be.b2(template), be.b2(new Uint8Array(0)), be.u32(0)),
  });
  expect(r.rc).toBe(0);
  const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
  const pub = TPM2B_PUBLIC.read(new Reader(r.params(1)));
  const unique = pub.unique as { x: Uint8Array; y: Uint8Array };
  return { handle, x: unique.x, y: unique.y };
}

const hashParams = (data: Uint8Array) => cat(be.b2(data), be.u16(TPM_ALG.SHA256), be.u32(TPM_RH.NULL));

describe('parameter encryption primitives', () => {
  test.each([
    ['XOR', SYM_XOR],
    ['AES-128-CFB', SYM_AES128],
    ['AES-256-CFB', SYM_AES256],
  ] as [string, Symmetric][])('%s matches an independent client both ways', (_n, sym) => {
    const key = randomBytes(40);
    const newer = randomBytes(32);
    const older = randomBytes(16);
    const data = randomBytes(77);
    const symmetric = { algorithm: sym.algorithm, keyBits: sym.keyBits, mode: TPM_ALG.CFB };
    const ours = encryptParameter(symmetric, TPM_ALG.SHA256, key, newer, older, data);
    expect(hex(ours)).toBe(hex(paramCrypt(sym, TPM_ALG.SHA256, key, newer, older, data, true)));
    expect(hex(ours)).not.toBe(hex(data));
    expect(hex(decryptParameter(symmetric, TPM_ALG.SHA256, key, newer, older, ours))).toBe(hex(data));
  });

  test('XOR obfuscation over more than one digest uses the KDFa stream with the full bit count', () => {
    const key = new Uint8Array(0);
    const data = new Uint8Array(100);
    const mask = xorObfuscate(TPM_ALG.SHA1, key, new Uint8Array([1]), new Uint8Array([2]), data);
    expect(hex(mask)).toBe(hex(paramCrypt(SYM_XOR, TPM_ALG.SHA1, key, new Uint8Array([1]), new Uint8Array([2]), data, true)));
  });
});

describe('salted sessions with an ECC tpmKey', () => {
  test('the kernel pattern: NULL primary, salted AES-128 session, PCR_Extend and encrypted GetRandom', () => {
    const t = createTestTpm();
    const key = createPrimary(t, KERNEL_NULL_KEY);
    const s = startSession(t, { tpmKey: key, symmetric: SYM_AES128 });
    expect(s.rc).toBe(0);
    expect(s.salt.length).toBe(32);
    // PCR_Extend of PCR 16 with a SHA-256 digest, authorized by the salted session (PCR authValue empty).
    const value = digest(TPM_ALG.SHA256, new TextEncoder().encode('kernel'));
    const extend = callWithSessions(
      t,
      { code: TPM_CC.PCR_Extend, handles: [16], params: cat(be.u32(1), be.u16(TPM_ALG.SHA256), value) },
      [{ session: s, attrs: CONTINUE, authValue: new Uint8Array(0) }],
    );
    expect(extend.r.rc).toBe(0);
    expect(extend.hmacOk).toBe(true);
    const read = t.call(TPM_CC.PCR_Read, { params: cat(be.u32(1), be.u16(TPM_ALG.SHA256), be.u8(3), new Uint8Array([0, 0, 1])) });
    expect(hex(read.body.subarray(read.body.length - 32))).toBe(hex(digest(TPM_ALG.SHA256, new Uint8Array(32), value)));
    // GetRandom with the session only for response encryption: the client decrypts it.
    const random = callWithSessions(t, { code: TPM_CC.GetRandom, params: be.u16(32) }, [{ session: s, attrs: CONTINUE | ENCRYPT }]);
    expect(random.r.rc).toBe(0);
    expect(random.hmacOk).toBe(true);
    expect(random.params.length).toBe(34);
    expect(hex(random.params)).not.toBe(hex(random.r.params()));
  });

  test('an encrypted GetRandom decrypts to what the same TPM answers in clear', () => {
    const run = (attrs: number) => {
      const t = createTestTpm({ seed: 'same' });
      const key = createPrimary(t, KERNEL_NULL_KEY);
      const s = startSession(t, { tpmKey: key, symmetric: SYM_AES128 });
      return callWithSessions(t, { code: TPM_CC.GetRandom, params: be.u16(24) }, [{ session: s, attrs }]);
    };
    const clear = run(CONTINUE | ENCRYPT);
    expect(clear.hmacOk).toBe(true);
    const plain = run(CONTINUE);
    // Without encrypt a session that authorizes nothing has no purpose.
    expect(plain.r.rc).toBe(0x982);
    const t = createTestTpm({ seed: 'same' });
    createPrimary(t, KERNEL_NULL_KEY);
    t.call(TPM_CC.StartAuthSession, { handles: [TPM_RH.NULL, TPM_RH.NULL], params: cat(be.b2(new Uint8Array(32)), be.u16(0), be.u8(0), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.SHA256)) });
    expect(hex(t.call(TPM_CC.GetRandom, { params: be.u16(24) }).body)).toBe(hex(clear.params));
  });

  test.each([
    ['XOR', SYM_XOR],
    ['AES-128-CFB', SYM_AES128],
    ['AES-256-CFB', SYM_AES256],
  ] as [string, Symmetric][])('%s: Hash with its data decrypted and its digest encrypted', (_n, sym) => {
    const t = createTestTpm();
    const key = createPrimary(t, KERNEL_NULL_KEY);
    const s = startSession(t, { tpmKey: key, symmetric: sym });
    const data = new TextEncoder().encode('secret message for the TPM');
    const res = callWithSessions(t, { code: TPM_CC.Hash, params: hashParams(data) }, [{ session: s, attrs: CONTINUE | DECRYPT | ENCRYPT }]);
    expect(res.r.rc).toBe(0);
    expect(res.hmacOk).toBe(true);
    expect(hex(res.params.subarray(2, 34))).toBe(hex(digest(TPM_ALG.SHA256, data)));
    expect(hex(res.r.params().subarray(2, 34))).not.toBe(hex(digest(TPM_ALG.SHA256, data)));
  });

  test('the authValue of the authorized entity joins the key, bound or not (HierarchyChangeAuth newAuth)', () => {
    const t = createTestTpm();
    const ownerAuth = new TextEncoder().encode('owner');
    expect(t.call(TPM_CC.HierarchyChangeAuth, { handles: [TPM_RH.OWNER], passwords: [''], params: be.b2(ownerAuth) }).rc).toBe(0);
    // Bound to the owner: the HMAC leaves the authValue out, the encryption key does not.
    const s = startSession(t, { bind: TPM_RH.OWNER, bindAuth: ownerAuth, symmetric: SYM_AES128 });
    const res = callWithSessions(
      t,
      { code: TPM_CC.HierarchyChangeAuth, handles: [TPM_RH.OWNER], params: be.b2('next') },
      [{ session: s, attrs: CONTINUE | DECRYPT, authValue: new Uint8Array(0), encAuth: ownerAuth }],
    );
    expect(res.r.rc).toBe(0);
    expect(t.call(TPM_CC.HierarchyChangeAuth, { handles: [TPM_RH.OWNER], passwords: ['next'], params: be.b2('') }).rc).toBe(0);
  });

  test('separate authorization, decrypt and encrypt sessions: the first HMAC covers the others\' nonces', () => {
    const t = createTestTpm();
    const key = createPrimary(t, KERNEL_NULL_KEY);
    const auth = startSession(t);
    const dec = startSession(t, { tpmKey: key, symmetric: SYM_XOR });
    const encS = startSession(t, { symmetric: SYM_AES128, bind: TPM_RH.NULL });
    const data = new TextEncoder().encode('event data');
    const res = callWithSessions(
      t,
      { code: TPM_CC.PCR_Event, handles: [16], params: be.b2(data) },
      [
        { session: auth, attrs: CONTINUE, authValue: new Uint8Array(0) },
        { session: dec, attrs: CONTINUE | DECRYPT },
        { session: encS, attrs: CONTINUE | ENCRYPT },
      ],
    );
    expect(res.r.rc).toBe(0x982 + 0x200); // encrypt: PCR_Event answers a TPML, not a TPM2B (S3)
    const ok = callWithSessions(
      t,
      { code: TPM_CC.PCR_Event, handles: [16], params: be.b2(data) },
      [
        { session: auth, attrs: CONTINUE, authValue: new Uint8Array(0) },
        { session: dec, attrs: CONTINUE | DECRYPT },
      ],
    );
    expect(ok.r.rc).toBe(0);
    expect(ok.hmacOk).toBe(true);
    // The event digests prove the data arrived decrypted.
    expect(hex(ok.params)).toContain(hex(digest(TPM_ALG.SHA256, data)));
  });

  test('encryption rules: TPM2B only, one decrypt and one encrypt session, a symmetric algorithm', () => {
    const t = createTestTpm();
    const xor = startSession(t, { symmetric: SYM_XOR });
    const aes = startSession(t, { symmetric: SYM_AES128 });
    const none = startSession(t, { symmetric: SYM_NULL });
    const extend = cat(be.u32(1), be.u16(TPM_ALG.SHA256), new Uint8Array(32));
    // PCR_Extend's first parameter is a TPML: no decrypt; it answers nothing: no encrypt.
    expect(callWithSessions(t, { code: TPM_CC.PCR_Extend, handles: [16], params: extend }, [{ session: xor, attrs: CONTINUE | DECRYPT, authValue: new Uint8Array(0) }]).r.rc).toBe(0x982);
    expect(callWithSessions(t, { code: TPM_CC.PCR_Extend, handles: [16], params: extend }, [{ session: xor, attrs: CONTINUE | ENCRYPT, authValue: new Uint8Array(0) }]).r.rc).toBe(0x982);
    // Two decrypt sessions: the second is TPM_RC_ATTRIBUTES+S2.
    expect(callWithSessions(t, { code: TPM_CC.Hash, params: hashParams(new Uint8Array(4)) }, [
      { session: xor, attrs: CONTINUE | DECRYPT },
      { session: aes, attrs: CONTINUE | DECRYPT },
    ]).r.rc).toBe(0xa82);
    // A session without a symmetric algorithm cannot encrypt: TPM_RC_SYMMETRIC+S1.
    expect(callWithSessions(t, { code: TPM_CC.Hash, params: hashParams(new Uint8Array(4)) }, [{ session: none, attrs: CONTINUE | ENCRYPT }]).r.rc).toBe(0x996);
    // A wrong HMAC on an encryption-only session is TPM_RC_BAD_AUTH+S1 (no DA: it authorizes nothing).
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(none.handle) }).rc).toBe(0);
    const bad = startSession(t, { symmetric: SYM_XOR, bind: TPM_RH.OWNER });
    expect(callWithSessions(t, { code: TPM_CC.Hash, params: hashParams(new Uint8Array(4)) }, [{ session: bad, attrs: CONTINUE | DECRYPT, corrupt: true }]).r.rc).toBe(0x9a2);
    // A decrypt size larger than the parameter area is TPM_RC_SIZE+S1.
    const short = cat(be.u16(200), new Uint8Array(4));
    expect(callWithSessions(t, { code: TPM_CC.Hash, params: short }, [{ session: xor, attrs: CONTINUE | DECRYPT }]).r.rc).toBe(0x995);
  });
});

describe('StartAuthSession tpmKey and symmetric checks (as the reference)', () => {
  const start = (t: TestTpm, tpmKey: number, salt: Uint8Array, sym: Uint8Array = be.u16(TPM_ALG.NULL), nonce: Uint8Array = new Uint8Array(32)) =>
    t.call(TPM_CC.StartAuthSession, { handles: [tpmKey, TPM_RH.NULL], params: cat(be.b2(nonce), be.b2(salt), be.u8(0), sym, be.u16(TPM_ALG.SHA256)) }).rc;

  test('a keyed-hash tpmKey is TPM_RC_KEY+H1; a signing key TPM_RC_ATTRIBUTES+H1; no salt TPM_RC_VALUE+P2', () => {
    const t = createTestTpm();
    const sealed = createPrimary(t, KEYEDHASH_TEMPLATE);
    expect(start(t, sealed.handle, new Uint8Array(68))).toBe(0x19c);
    const signer = createPrimary(t, ECC_SIGNING_TEMPLATE);
    expect(start(t, signer.handle, new Uint8Array(68))).toBe(0x182);
    const decrypter = createPrimary(t, KERNEL_NULL_KEY);
    expect(start(t, decrypter.handle, new Uint8Array(0))).toBe(0x2c4);
  });

  test('a point off the curve or a malformed salt is TPM_RC_VALUE+P2; a salt without tpmKey too', () => {
    const t = createTestTpm();
    const key = createPrimary(t, KERNEL_NULL_KEY);
    const offCurve = cat(be.b2(new Uint8Array(32).fill(1)), be.b2(new Uint8Array(32).fill(2)));
    expect(start(t, key.handle, offCurve)).toBe(0x2c4);
    expect(start(t, key.handle, new Uint8Array(3))).toBe(0x2c4);
    expect(start(t, TPM_RH.NULL, new Uint8Array(3))).toBe(0x2c4);
  });

  test('a block cipher in a mode other than CFB is TPM_RC_MODE+P4; a nonce over the digest size TPM_RC_SIZE+P1', () => {
    const t = createTestTpm();
    expect(start(t, TPM_RH.NULL, new Uint8Array(0), cat(be.u16(TPM_ALG.AES), be.u16(128), be.u16(TPM_ALG.CTR)))).toBe(0x4c9);
    expect(start(t, TPM_RH.NULL, new Uint8Array(0), be.u16(TPM_ALG.NULL), new Uint8Array(33))).toBe(0x1d5);
  });

  test('nonceTPM is as long as nonceCaller', () => {
    const t = createTestTpm();
    const s = startSession(t, { nonceSize: 20 });
    expect(s.nonceTPM.length).toBe(20);
  });
});
