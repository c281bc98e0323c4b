/**
 * RSA objects in the engine: CreatePrimary of RSA templates (checked by OpenSSL and by the
 * template checks' response codes), deterministic derivation and its cache, and Part 3 §14.2/14.3
 * RSA_Encrypt/RSA_Decrypt with their scheme selection and errors.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC, TPMA_OBJECT, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { Engine } from '../../../src/tpm/engine.js';
import { be, buildCommand, cat, createTestTpm, hex, parseResponse, type TestTpm } from '../../helpers/engine.js';

const A = TPMA_OBJECT;
const STORAGE = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.decrypt;
const DECRYPT = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.decrypt;
const SIGN = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign;
const NULL_SCHEME = { scheme: TPM_ALG.NULL, details: null };
const AES128CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const NO_SYM = { algorithm: TPM_ALG.NULL, keyBits: null, mode: null };

function rsaTemplate(attributes: number, opts: { keyBits?: number; exponent?: number; scheme?: { scheme: number; details: { hashAlg: number } | null }; symmetric?: unknown; unique?: Uint8Array } = {}): TPMT_PUBLIC {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attributes,
    authPolicy: new Uint8Array(0),
    parameters: {
      symmetric: opts.symmetric ?? ((attributes & A.restricted) && (attributes & A.decrypt) ? AES128CFB : NO_SYM),
      scheme: opts.scheme ?? NULL_SCHEME,
      keyBits: opts.keyBits ?? 2048,
      exponent: opts.exponent ?? 0,
    },
    unique: opts.unique ?? new Uint8Array(0),
  } as TPMT_PUBLIC;
}

function createPrimary(t: TestTpm, template: TPMT_PUBLIC, data = new Uint8Array(0), hierarchy: number = TPM_RH.OWNER) {
  const sensitive = cat(be.b2(new Uint8Array(0)), be.b2(data));
  const params = cat(be.b2(sensitive), encode(TPM2B_PUBLIC, template), be.b2(new Uint8Array(0)), be.u32(0));
  const r = t.call(TPM_CC.CreatePrimary, { handles: [hierarchy], passwords: [''], params });
  if (r.rc !== 0) return { rc: r.rc, handle: 0, outPublic: null as unknown as TPMT_PUBLIC };
  const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
  return { rc: 0, handle, outPublic: TPM2B_PUBLIC.read(new Reader(r.params(1))) };
}

function flush(t: TestTpm, handle: number) {
  expect(t.call(TPM_CC.FlushContext, { params: be.u32(handle) }).rc).toBe(0);
}

function scheme(alg: number, hashAlg?: number): Uint8Array {
  return hashAlg === undefined ? be.u16(alg) : cat(be.u16(alg), be.u16(hashAlg));
}

function encrypt(t: TestTpm, handle: number, message: Uint8Array, inScheme: Uint8Array, label = new Uint8Array(0)) {
  const r = t.call(TPM_CC.RSA_Encrypt, { handles: [handle], params: cat(be.b2(message), inScheme, be.b2(label)) });
  const p = r.params();
  return { rc: r.rc, out: r.rc === 0 ? p.slice(2, 2 + ((p[0]! << 8) | p[1]!)) : new Uint8Array(0) };
}

function decrypt(t: TestTpm, handle: number, cipher: Uint8Array, inScheme: Uint8Array, label = new Uint8Array(0)) {
  const r = t.call(TPM_CC.RSA_Decrypt, { handles: [handle], passwords: [''], params: cat(be.b2(cipher), inScheme, be.b2(label)) });
  const p = r.params();
  return { rc: r.rc, out: r.rc === 0 ? p.slice(2, 2 + ((p[0]! << 8) | p[1]!)) : new Uint8Array(0) };
}

const publicKeyOf = (p: TPMT_PUBLIC) =>
  nodeCrypto.createPublicKey({ key: { kty: 'RSA', n: Buffer.from(p.unique as Uint8Array).toString('base64url'), e: 'AQAB' }, format: 'jwk' });

describe('CreatePrimary: RSA', () => {
  test('an RSA-2048 storage key: a 2048-bit modulus, the same key again and under the same seed after a restart', () => {
    const t = createTestTpm();
    const a = createPrimary(t, rsaTemplate(STORAGE));
    expect(a.rc).toBe(0);
    const n = a.outPublic.unique as Uint8Array;
    expect(n).toHaveLength(256);
    expect(n[0]! & 0x80).toBe(0x80);
    flush(t, a.handle);
    const b = createPrimary(t, rsaTemplate(STORAGE));
    expect(hex(b.outPublic.unique as Uint8Array)).toBe(hex(n));
    flush(t, b.handle);
    // A fresh engine on the same persistent state (a daemon restart), without the cache.
    const again = createTestTpm();
    expect(hex(createPrimary(again, rsaTemplate(STORAGE)).outPublic.unique as Uint8Array)).toBe(hex(n));
    // Another hierarchy, other inSensitive.data, another unique in the template: other keys.
    expect(hex(createPrimary(t, rsaTemplate(STORAGE), new Uint8Array(0), TPM_RH.ENDORSEMENT).outPublic.unique as Uint8Array)).not.toBe(hex(n));
    const other = createPrimary(t, rsaTemplate(STORAGE, { unique: new Uint8Array(256) }));
    expect(other.rc).toBe(0);
    expect(hex(other.outPublic.unique as Uint8Array)).not.toBe(hex(n));
  });

  test('a repeated CreatePrimary comes from the cache (the key, not the object: a new handle each time)', () => {
    const t = createTestTpm();
    const t0 = performance.now();
    const a = createPrimary(t, rsaTemplate(DECRYPT, { keyBits: 1024 }));
    const uncached = performance.now() - t0;
    flush(t, a.handle);
    const t1 = performance.now();
    const b = createPrimary(t, rsaTemplate(DECRYPT, { keyBits: 1024 }));
    const cached = performance.now() - t1;
    expect(hex(b.outPublic.unique as Uint8Array)).toBe(hex(a.outPublic.unique as Uint8Array));
    // Generous: a cached CreatePrimary is about 0.3 ms, a 1024-bit search several ms.
    expect(cached).toBeLessThan(Math.max(uncached, 50));
  });

  test('RSA-1024 and RSA-3072 signing keys; OpenSSL verifies a signature made with the derived key', () => {
    const t = createTestTpm();
    for (const keyBits of [1024, 3072]) {
      const k = createPrimary(t, rsaTemplate(SIGN, { keyBits, scheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } } }));
      expect(k.rc).toBe(0);
      expect(k.outPublic.unique as Uint8Array).toHaveLength(keyBits / 8);
      flush(t, k.handle);
    }
  });

  test.each([
    ['a restricted decrypt key without a symmetric algorithm', rsaTemplate(STORAGE, { symmetric: NO_SYM }), TPM_RC.SYMMETRIC],
    ['a storage key with a scheme', rsaTemplate(STORAGE, { scheme: { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA256 } } }), TPM_RC.SCHEME],
    ['a decrypt key with a signing scheme', rsaTemplate(DECRYPT, { scheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } } }), TPM_RC.SCHEME],
    ['a signing key with an encryption scheme', rsaTemplate(SIGN, { scheme: { scheme: TPM_ALG.RSAES, details: null } }), TPM_RC.SCHEME],
    ['a restricted signing key without a scheme', rsaTemplate(SIGN | A.restricted), TPM_RC.SCHEME],
    ['an unrestricted decrypt key with a symmetric algorithm', rsaTemplate(DECRYPT, { symmetric: AES128CFB }), TPM_RC.SYMMETRIC],
    ['sign and decrypt with a scheme', rsaTemplate(SIGN | A.decrypt, { scheme: { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA256 } } }), TPM_RC.SCHEME],
    ['no sensitiveDataOrigin', rsaTemplate(DECRYPT & ~A.sensitiveDataOrigin), TPM_RC.ATTRIBUTES],
  ])('%s: template check', (_label, template, rc) => {
    const t = createTestTpm();
    expect(createPrimary(t, template, new Uint8Array(0)).rc).toBe(rc | 0x40 | 0x200);
  });

  test('an exponent below 65537 or not prime is TPM_RC_RANGE', () => {
    const t = createTestTpm();
    expect(createPrimary(t, rsaTemplate(DECRYPT, { exponent: 3 })).rc & 0x0bf).toBe(TPM_RC.RANGE);
    expect(createPrimary(t, rsaTemplate(DECRYPT, { exponent: 65536 })).rc & 0x0bf).toBe(TPM_RC.RANGE);
  });

  test('a context of an RSA key saves and loads, and the loaded key decrypts', () => {
    const t = createTestTpm();
    const k = createPrimary(t, rsaTemplate(DECRYPT, { keyBits: 1024 }));
    const saved = t.call(TPM_CC.ContextSave, { handles: [k.handle] });
    expect(saved.rc).toBe(0);
    flush(t, k.handle);
    const loaded = t.call(TPM_CC.ContextLoad, { params: saved.params() });
    expect(loaded.rc).toBe(0);
    const handle = new DataView(loaded.body.buffer, loaded.body.byteOffset).getUint32(0);
    const c = nodeCrypto.publicEncrypt({ key: publicKeyOf(k.outPublic), padding: nodeCrypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('hi'));
    expect(Buffer.from(decrypt(t, handle, new Uint8Array(c), scheme(TPM_ALG.OAEP, TPM_ALG.SHA256)).out).toString()).toBe('hi');
  });
});

test('a loaded RSA key survives the volatile state (STORE_VOLATILE, then _TPM_Init and restore)', () => {
  const t = createTestTpm();
  const k = createPrimary(t, rsaTemplate(DECRYPT, { keyBits: 1024 }));
  const blob = t.engine.volatileBlob();
  const fresh = Engine.restore(t.engine.permanentBlob(), t.env);
  fresh.init();
  fresh.restoreVolatile(blob);
  const c = nodeCrypto.publicEncrypt({ key: publicKeyOf(k.outPublic), padding: nodeCrypto.constants.RSA_PKCS1_PADDING }, Buffer.from('still here'));
  const cmd = buildCommand(TPM_CC.RSA_Decrypt, { handles: [k.handle], passwords: [''], params: cat(be.b2(new Uint8Array(c)), scheme(TPM_ALG.RSAES), be.b2(new Uint8Array(0))) });
  const r = parseResponse(fresh.execute(cmd, 0));
  expect(r.rc).toBe(0);
  expect(Buffer.from(r.params().subarray(2)).toString()).toBe('still here');
});

describe('RSA_Encrypt / RSA_Decrypt', () => {
  const t = createTestTpm();
  const key = createPrimary(t, rsaTemplate(DECRYPT));
  const oaepKey = createPrimary(t, rsaTemplate(DECRYPT, { keyBits: 1024, scheme: { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA1 } } }));
  const message = new TextEncoder().encode('secret message');

  test('round trips for RSAES, OAEP (each hash, with a label) and raw RSA', () => {
    for (const s of [scheme(TPM_ALG.RSAES), scheme(TPM_ALG.OAEP, TPM_ALG.SHA1), scheme(TPM_ALG.OAEP, TPM_ALG.SHA256), scheme(TPM_ALG.OAEP, TPM_ALG.SHA512)]) {
      const label = new TextEncoder().encode('my label\0');
      const c = encrypt(t, key.handle, message, s, label);
      expect(c.rc).toBe(0);
      expect(c.out).toHaveLength(256);
      expect(Buffer.from(decrypt(t, key.handle, c.out, s, label).out).toString()).toBe('secret message');
    }
    const raw = encrypt(t, key.handle, message, scheme(TPM_ALG.NULL));
    const back = decrypt(t, key.handle, raw.out, scheme(TPM_ALG.NULL)).out;
    expect(back).toHaveLength(256);
    expect(Buffer.from(back.subarray(256 - message.length)).toString()).toBe('secret message');
  });

  test('what the TPM encrypts OpenSSL decrypts, and the other way round, with the public area\'s key', () => {
    const pub = publicKeyOf(key.outPublic);
    const c = nodeCrypto.publicEncrypt({ key: pub, padding: nodeCrypto.constants.RSA_PKCS1_PADDING }, Buffer.from(message));
    expect(Buffer.from(decrypt(t, key.handle, new Uint8Array(c), scheme(TPM_ALG.RSAES)).out).toString()).toBe('secret message');
    const o = nodeCrypto.publicEncrypt({ key: pub, padding: nodeCrypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384', oaepLabel: Buffer.from('L\0') }, Buffer.from(message));
    expect(Buffer.from(decrypt(t, key.handle, new Uint8Array(o), scheme(TPM_ALG.OAEP, TPM_ALG.SHA384), new TextEncoder().encode('L\0')).out).toString()).toBe('secret message');
  });

  test('the key\'s scheme is used when the command gives NULL; a different one is TPM_RC_SCHEME+P2', () => {
    const c = encrypt(t, oaepKey.handle, message, scheme(TPM_ALG.NULL));
    expect(c.rc).toBe(0);
    expect(Buffer.from(decrypt(t, oaepKey.handle, c.out, scheme(TPM_ALG.OAEP, TPM_ALG.SHA1)).out).toString()).toBe('secret message');
    expect(encrypt(t, oaepKey.handle, message, scheme(TPM_ALG.RSAES)).rc).toBe(TPM_RC.SCHEME | 0x40 | 0x200);
    expect(decrypt(t, oaepKey.handle, c.out, scheme(TPM_ALG.OAEP, TPM_ALG.SHA256)).rc).toBe(TPM_RC.SCHEME | 0x40 | 0x200);
  });

  test('errors: label without its 0, sizes, wrong keys, bad schemes', () => {
    expect(encrypt(t, key.handle, message, scheme(TPM_ALG.OAEP, TPM_ALG.SHA256), new TextEncoder().encode('x')).rc).toBe(TPM_RC.VALUE | 0x40 | 0x300);
    expect(decrypt(t, key.handle, new Uint8Array(256), scheme(TPM_ALG.OAEP, TPM_ALG.SHA256), new TextEncoder().encode('x')).rc).toBe(TPM_RC.VALUE | 0x40 | 0x300);
    // A message too long for OAEP-SHA-256 under a 2048-bit key.
    expect(encrypt(t, key.handle, new Uint8Array(191), scheme(TPM_ALG.OAEP, TPM_ALG.SHA256)).rc).toBe(TPM_RC.VALUE);
    expect(decrypt(t, key.handle, new Uint8Array(255), scheme(TPM_ALG.RSAES)).rc).toBe(TPM_RC.SIZE);
    expect(decrypt(t, key.handle, new Uint8Array(256), scheme(TPM_ALG.RSAES)).rc).toBe(TPM_RC.VALUE);
    // Unmarshalling: RSASSA is no TPMI_ALG_RSA_DECRYPT (TPM_RC_VALUE+P2); OAEP needs a hash.
    expect(encrypt(t, key.handle, message, scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256)).rc).toBe(TPM_RC.VALUE | 0x40 | 0x200);
    expect(encrypt(t, key.handle, message, scheme(TPM_ALG.OAEP, TPM_ALG.NULL)).rc).toBe(TPM_RC.HASH | 0x40 | 0x200);
  });

  test('a restricted key may encrypt but not decrypt; a signing key neither; a non-RSA key is TPM_RC_KEY', () => {
    const u = createTestTpm();
    const storage = createPrimary(u, rsaTemplate(STORAGE, { keyBits: 1024 }));
    const c = encrypt(u, storage.handle, message, scheme(TPM_ALG.OAEP, TPM_ALG.SHA256));
    expect(c.rc).toBe(0);
    expect(decrypt(u, storage.handle, c.out, scheme(TPM_ALG.OAEP, TPM_ALG.SHA256)).rc).toBe(TPM_RC.ATTRIBUTES | 0x80 | 0x100);
    flush(u, storage.handle);
    const signer = createPrimary(u, rsaTemplate(SIGN, { keyBits: 1024 }));
    expect(encrypt(u, signer.handle, message, scheme(TPM_ALG.RSAES)).rc).toBe(TPM_RC.ATTRIBUTES | 0x80 | 0x100);
    expect(decrypt(u, signer.handle, new Uint8Array(128), scheme(TPM_ALG.RSAES)).rc).toBe(TPM_RC.ATTRIBUTES | 0x80 | 0x100);
    flush(u, signer.handle);
    const aes = createPrimary(u, {
      type: TPM_ALG.SYMCIPHER, nameAlg: TPM_ALG.SHA256, objectAttributes: DECRYPT, authPolicy: new Uint8Array(0),
      parameters: { sym: AES128CFB }, unique: new Uint8Array(0),
    } as TPMT_PUBLIC);
    expect(aes.rc).toBe(0);
    expect(encrypt(u, aes.handle, message, scheme(TPM_ALG.RSAES)).rc).toBe(TPM_RC.KEY | 0x80 | 0x100);
  });
});
