/**
 * Part 3 §20 TPM2_Sign and TPM2_VerifySignature in the engine: sign/verify round trips for
 * ECDSA (P-256, P-384), RSASSA, RSAPSS and HMAC keys, signatures checked by OpenSSL, a changed
 * digest refused, the verified ticket, scheme selection and the restricted-key ticket rule.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE, TPM_RC, TPM_RH, TPM_ST } from '../../../src/tpm/constants.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { objectName, TPMA_OBJECT, TPMT_SIGNATURE, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { TPMT_TK_HASHCHECK, TPMT_TK_VERIFIED } from '../../../src/tpm/marshal/structures.js';
import { be, cat, createTestTpm, type TestTpm } from '../../helpers/engine.js';
import { createPrimary, eccTemplate, hmacTemplate, NULL_SCHEME, rsaTemplate, type Scheme, SIGN } from '../../helpers/templates.js';

const A = TPMA_OBJECT;
const eccKey = (curveID: number, attributes = SIGN, scheme: Scheme = NULL_SCHEME) => eccTemplate(attributes, { curveID, scheme });

const scheme = (alg: number, hashAlg?: number) => (hashAlg === undefined ? be.u16(alg) : cat(be.u16(alg), be.u16(hashAlg)));
const nullTicket = () => encode(TPMT_TK_HASHCHECK, { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });

function sign(t: TestTpm, handle: number, digest: Uint8Array, inScheme: Uint8Array, ticket = nullTicket()) {
  const r = t.call(TPM_CC.Sign, { handles: [handle], passwords: [''], params: cat(be.b2(digest), inScheme, ticket) });
  return { rc: r.rc, signature: r.rc === 0 ? TPMT_SIGNATURE.read(new Reader(r.params())) : null, raw: r.rc === 0 ? r.params() : new Uint8Array(0) };
}

function verify(t: TestTpm, handle: number, digest: Uint8Array, signature: Uint8Array) {
  const r = t.call(TPM_CC.VerifySignature, { handles: [handle], params: cat(be.b2(digest), signature) });
  return { rc: r.rc, ticket: r.rc === 0 ? TPMT_TK_VERIFIED.read(new Reader(r.params())) : null };
}

const sha = (alg: string, data: string) => new Uint8Array(nodeCrypto.createHash(alg).update(data).digest());

function eccPublicKey(p: TPMT_PUBLIC, crv: string) {
  const u = p.unique as { x: Uint8Array; y: Uint8Array };
  return nodeCrypto.createPublicKey({ key: { kty: 'EC', crv, x: Buffer.from(u.x).toString('base64url'), y: Buffer.from(u.y).toString('base64url') }, format: 'jwk' });
}
const rsaPublicKey = (p: TPMT_PUBLIC) =>
  nodeCrypto.createPublicKey({ key: { kty: 'RSA', n: Buffer.from(p.unique as Uint8Array).toString('base64url'), e: 'AQAB' }, format: 'jwk' });

describe('Sign and VerifySignature', () => {
  const t = createTestTpm();

  test.each([
    ['P-256', TPM_ECC_CURVE.NIST_P256, 'sha256', TPM_ALG.SHA256],
    ['P-384', TPM_ECC_CURVE.NIST_P384, 'sha384', TPM_ALG.SHA384],
    ['P-384 with a SHA-256 digest', TPM_ECC_CURVE.NIST_P384, 'sha256', TPM_ALG.SHA256],
    ['P-256 with a SHA-512 digest (truncated)', TPM_ECC_CURVE.NIST_P256, 'sha512', TPM_ALG.SHA512],
    ['P-521', TPM_ECC_CURVE.NIST_P521, 'sha512', TPM_ALG.SHA512],
  ])('ECDSA %s: OpenSSL accepts the signature, VerifySignature accepts it and refuses a changed digest', (_, curve, hashName, hashAlg) => {
    const key = createPrimary(t, eccKey(curve));
    const digest = sha(hashName, 'message');
    const s = sign(t, key.handle, digest, scheme(TPM_ALG.ECDSA, hashAlg));
    expect(s.rc).toBe(0);
    expect(s.signature!.sigAlg).toBe(TPM_ALG.ECDSA);
    const { signatureR, signatureS } = s.signature!.signature as { signatureR: Uint8Array; signatureS: Uint8Array };
    const pub = eccPublicKey(key.outPublic, { [TPM_ECC_CURVE.NIST_P256]: 'P-256', [TPM_ECC_CURVE.NIST_P384]: 'P-384', [TPM_ECC_CURVE.NIST_P521]: 'P-521' }[curve]!);
    // OpenSSL hashes the message itself: check with the same hash over the same message.
    expect(nodeCrypto.verify(hashName, Buffer.from('message'), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.concat([signatureR, signatureS]))).toBe(true);
    const v = verify(t, key.handle, digest, s.raw);
    expect(v.rc).toBe(0);
    expect(v.ticket!.tag).toBe(TPM_ST.VERIFIED);
    expect(v.ticket!.hierarchy).toBe(TPM_RH.OWNER);
    expect(v.ticket!.digest.length).toBeGreaterThan(0);
    const changed = digest.slice();
    changed[0]! ^= 1;
    expect(verify(t, key.handle, changed, s.raw).rc).toBe(withPosition(TPM_RC.SIGNATURE, { param: 2 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) });
  });

  test.each([
    ['RSASSA', TPM_ALG.RSASSA, nodeCrypto.constants.RSA_PKCS1_PADDING],
    ['RSAPSS', TPM_ALG.RSAPSS, nodeCrypto.constants.RSA_PKCS1_PSS_PADDING],
  ])('%s: OpenSSL accepts the signature, VerifySignature accepts it and refuses a changed digest', (_, alg, padding) => {
    const key = createPrimary(t, rsaTemplate());
    const digest = sha('sha256', 'message');
    const s = sign(t, key.handle, digest, scheme(alg, TPM_ALG.SHA256));
    expect(s.rc).toBe(0);
    const { hash, sig } = s.signature!.signature as { hash: number; sig: Uint8Array };
    expect(hash).toBe(TPM_ALG.SHA256);
    expect(sig).toHaveLength(256);
    expect(nodeCrypto.verify('sha256', Buffer.from('message'), { key: rsaPublicKey(key.outPublic), padding, saltLength: -2 } as nodeCrypto.VerifyKeyObjectInput, sig)).toBe(true);
    expect(verify(t, key.handle, digest, s.raw).rc).toBe(0);
    const changed = digest.slice();
    changed[31]! ^= 0x80;
    expect(verify(t, key.handle, changed, s.raw).rc).toBe(withPosition(TPM_RC.SIGNATURE, { param: 2 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) });
  });

  test('HMAC: the key scheme is used when the command gives NULL; a changed digest fails', () => {
    const key = createPrimary(t, hmacTemplate(TPM_ALG.SHA384));
    const digest = sha('sha384', 'message');
    const s = sign(t, key.handle, digest, scheme(TPM_ALG.NULL));
    expect(s.rc).toBe(0);
    expect(s.signature!.sigAlg).toBe(TPM_ALG.HMAC);
    expect((s.signature!.signature as { hashAlg: number }).hashAlg).toBe(TPM_ALG.SHA384);
    expect(verify(t, key.handle, digest, s.raw).rc).toBe(0);
    const changed = digest.slice();
    changed[5]! ^= 1;
    expect(verify(t, key.handle, changed, s.raw).rc).toBe(withPosition(TPM_RC.SIGNATURE, { param: 2 }));
    // A scheme other than the key's is refused.
    expect(sign(t, key.handle, digest, scheme(TPM_ALG.HMAC, TPM_ALG.SHA256)).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) });
  });

  test('errors: no scheme, wrong digest size, a signature of another key type, a key that cannot sign', () => {
    const key = createPrimary(t, eccKey(TPM_ECC_CURVE.NIST_P256));
    const digest = sha('sha256', 'x');
    expect(sign(t, key.handle, digest, scheme(TPM_ALG.NULL)).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    expect(sign(t, key.handle, digest, scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256)).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    expect(sign(t, key.handle, digest.subarray(0, 20), scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256)).rc).toBe(withPosition(TPM_RC.SIZE, { param: 1 }));
    const hmacSig = encode(TPMT_SIGNATURE, { sigAlg: TPM_ALG.HMAC, signature: { hashAlg: TPM_ALG.SHA256, digest } });
    expect(verify(t, key.handle, digest, hmacSig).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) });
    const decrypt = createPrimary(t, eccKey(TPM_ECC_CURVE.NIST_P256, A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.decrypt));
    expect(sign(t, decrypt.handle, digest, scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256)).rc).toBe(withPosition(TPM_RC.KEY, { handle: 1 }));
    expect(verify(t, decrypt.handle, digest, hmacSig).rc).toBe(withPosition(TPM_RC.ATTRIBUTES, { handle: 1 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(decrypt.handle) });
  });

  test('a restricted key signs only a digest with a hash-check ticket from TPM2_Hash', () => {
    const key = createPrimary(t, eccKey(TPM_ECC_CURVE.NIST_P256, SIGN | A.restricted, { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }));
    const data = new TextEncoder().encode('plain data');
    const h = t.call(TPM_CC.Hash, { params: cat(be.b2(data), be.u16(TPM_ALG.SHA256), be.u32(TPM_RH.OWNER)) });
    expect(h.rc).toBe(0);
    const reader = new Reader(h.params());
    const len = reader.u16();
    const digest = reader.bytes(len);
    const ticket = TPMT_TK_HASHCHECK.read(reader);
    expect(ticket.hierarchy).toBe(TPM_RH.OWNER);
    expect(sign(t, key.handle, digest, scheme(TPM_ALG.NULL)).rc).toBe(withPosition(TPM_RC.TICKET, { param: 3 }));
    const s = sign(t, key.handle, digest, scheme(TPM_ALG.NULL), encode(TPMT_TK_HASHCHECK, ticket));
    expect(s.rc).toBe(0);
    expect(verify(t, key.handle, digest, s.raw).rc).toBe(0);
    const other = sha('sha256', 'other');
    expect(sign(t, key.handle, other, scheme(TPM_ALG.NULL), encode(TPMT_TK_HASHCHECK, ticket)).rc).toBe(withPosition(TPM_RC.TICKET, { param: 3 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) });
  });

  test('a key of the NULL hierarchy gets the NULL verified ticket', () => {
    const key = createPrimary(t, eccKey(TPM_ECC_CURVE.NIST_P256), TPM_RH.NULL);
    const digest = sha('sha256', 'm');
    const s = sign(t, key.handle, digest, scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256));
    const v = verify(t, key.handle, digest, s.raw);
    expect(v.rc).toBe(0);
    expect(v.ticket).toEqual({ tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });
    t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) });
  });

  test('the verified ticket is one PolicyAuthorize accepts for the signing key, and only for it', () => {
    const key = createPrimary(t, eccKey(TPM_ECC_CURVE.NIST_P256));
    const name = objectName(key.outPublic);
    const start = () => {
      const r = t.call(TPM_CC.StartAuthSession, {
        handles: [TPM_RH.NULL, TPM_RH.NULL],
        params: cat(be.b2(new Uint8Array(32).fill(7)), be.u16(0), be.u8(0x01), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.SHA256)),
      });
      expect(r.rc).toBe(0);
      return new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
    };
    const approvedPolicy = new Uint8Array(32);
    const policyRef = new TextEncoder().encode('ref');
    const aHash = new Uint8Array(nodeCrypto.createHash('sha256').update(approvedPolicy).update(policyRef).digest());
    const s = sign(t, key.handle, aHash, scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256));
    const v = verify(t, key.handle, aHash, s.raw);
    expect(v.rc).toBe(0);
    const authorize = (keySign: Uint8Array) => {
      const session = start();
      const r = t.call(TPM_CC.PolicyAuthorize, {
        handles: [session],
        params: cat(be.b2(approvedPolicy), be.b2(policyRef), be.b2(keySign), encode(TPMT_TK_VERIFIED, v.ticket!)),
      });
      t.call(TPM_CC.FlushContext, { params: be.u32(session) });
      return r.rc;
    };
    expect(authorize(name)).toBe(0);
    const otherName = name.slice();
    otherName[5]! ^= 1;
    expect(authorize(otherName)).toBe(withPosition(TPM_RC.VALUE, { param: 4 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) });
  });
});
