/**
 * Part 3 §18 attestation (Quote, Certify, CertifyCreation, GetTime) and §31.16 NV_Certify in the
 * engine: every TPMS_ATTEST field against values computed here with node:crypto (PCR digests,
 * Qualified Names, the OBFUSCATE KDFa), signatures verified by OpenSSL, unsigned attestations,
 * and the response codes of the reference's order of checks.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_GENERATED_VALUE, TPM_RC, TPM_RH, TPM_ST, TPMA_NV } from '../../../src/tpm/constants.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { TPM2B_ATTEST, TPMS_ATTEST } from '../../../src/tpm/marshal/attest.js';
import { decode, encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import {
  TPM2B_NAME,
  TPMA_OBJECT,
  TPMT_SIGNATURE,
  TPMT_TK_CREATION,
  type TPMT_PUBLIC,
} from '../../../src/tpm/marshal/objects.js';
import { TPM2B_DIGEST, TPMS_TIME_INFO, TPMT_TK_HASHCHECK } from '../../../src/tpm/marshal/structures.js';
import { be, buildCommand, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import {
  AES128_CFB as AES128,
  createPrimary,
  ECDSA_SHA256,
  eccTemplate,
  hmacTemplate as hmacKey,
  NO_SYM,
  NULL_SCHEME,
  type Primary,
  rsaTemplate as rsa,
  type Scheme,
  SIGN,
  STORAGE,
} from '../../helpers/templates.js';
import { xorshift32 } from '../../helpers/xorshift.js';

const A = TPMA_OBJECT;
const ecc = (attributes = SIGN, scheme: Scheme = NULL_SCHEME, symmetric: object = NO_SYM) => eccTemplate(attributes, { scheme, symmetric });

const sha256 = (...parts: Uint8Array[]) => {
  const h = nodeCrypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
/** Part 1 §16: a primary's Qualified Name is nameAlg || H(hierarchy handle || Name). */
const primaryQualifiedName = (hierarchy: number, name: Uint8Array) => cat(be.u16(TPM_ALG.SHA256), sha256(be.u32(hierarchy), name));

const scheme = (alg: number, hashAlg?: number) => (hashAlg === undefined ? be.u16(alg) : cat(be.u16(alg), be.u16(hashAlg)));
const NULL_IN = scheme(TPM_ALG.NULL);
const pcrSelection = (hashAlg: number, ...pcrs: number[]) => {
  const bitmap = new Uint8Array(3);
  for (const p of pcrs) bitmap[p >> 3]! |= 1 << (p & 7);
  return cat(be.u32(1), be.u16(hashAlg), be.u8(3), bitmap);
};

interface Attested {
  rc: number;
  attest: TPMS_ATTEST | null;
  bytes: Uint8Array;
  signature: TPMT_SIGNATURE | null;
}
function attestResponse(r: { rc: number; params(): Uint8Array }): Attested {
  if (r.rc !== 0) return { rc: r.rc, attest: null, bytes: new Uint8Array(0), signature: null };
  const reader = new Reader(r.params());
  const size = reader.u16();
  const bytes = new Uint8Array(reader.bytes(size));
  const signature = TPMT_SIGNATURE.read(reader);
  return { rc: 0, attest: decode(TPMS_ATTEST, bytes), bytes, signature };
}

const quote = (t: TestTpm, key: number, data: Uint8Array, inScheme: Uint8Array, pcrs: Uint8Array, pw = '') =>
  attestResponse(t.call(TPM_CC.Quote, { handles: [key], passwords: [pw], params: cat(be.b2(data), inScheme, pcrs) }));
const certify = (t: TestTpm, object: number, key: number, data: Uint8Array, inScheme = NULL_IN) =>
  attestResponse(t.call(TPM_CC.Certify, { handles: [object, key], passwords: ['', ''], params: cat(be.b2(data), inScheme) }));
const getTime = (t: TestTpm, key: number, data: Uint8Array, inScheme = NULL_IN, endorsementPw = '') =>
  attestResponse(t.call(TPM_CC.GetTime, { handles: [TPM_RH.ENDORSEMENT, key], passwords: [endorsementPw, ''], params: cat(be.b2(data), inScheme) }));

function readClock(t: TestTpm) {
  const r = t.call(TPM_CC.ReadClock);
  return TPMS_TIME_INFO.read(new Reader(r.params()));
}

function eccVerify(p: TPMT_PUBLIC, data: Uint8Array, sig: TPMT_SIGNATURE, hashName = 'sha256'): boolean {
  const u = p.unique as { x: Uint8Array; y: Uint8Array };
  const key = nodeCrypto.createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(u.x).toString('base64url'), y: Buffer.from(u.y).toString('base64url') }, format: 'jwk' });
  const s = sig.signature as { signatureR: Uint8Array; signatureS: Uint8Array };
  return nodeCrypto.verify(hashName, data, { key, dsaEncoding: 'ieee-p1363' }, cat(s.signatureR, s.signatureS));
}
function rsaVerify(p: TPMT_PUBLIC, data: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  const key = nodeCrypto.createPublicKey({ key: { kty: 'RSA', n: Buffer.from(p.unique as Uint8Array).toString('base64url'), e: 'AQAB' }, format: 'jwk' });
  return nodeCrypto.verify('sha256', data, key, (sig.signature as { sig: Uint8Array }).sig);
}

/** KDFa (SP 800-108 counter mode, HMAC-SHA512) for 128 bits: one block. */
function obfuscation(shProof: Uint8Array, qualifiedSigner: Uint8Array) {
  const block = nodeCrypto.createHmac('sha512', shProof)
    .update(cat(be.u32(1), new TextEncoder().encode('OBFUSCATE\0'), qualifiedSigner, be.u32(128)))
    .digest();
  return { firmware: block.readBigUInt64LE(0), o1: block.readBigUInt64LE(8) };
}
const FIRMWARE = 0x2019102300163636n;

describe('Quote', () => {
  const t = createTestTpm();
  // PCR 16 extended once with a known SHA-256 digest.
  const event = sha256(new TextEncoder().encode('event'));
  expect(t.call(TPM_CC.PCR_Extend, { handles: [16], passwords: [''], params: cat(be.u32(1), be.u16(TPM_ALG.SHA256), event) }).rc).toBe(0);
  const pcr16 = sha256(new Uint8Array(32), event);
  const ek = createPrimary(t, ecc(SIGN, ECDSA_SHA256), TPM_RH.ENDORSEMENT);

  test('every field of an endorsement-hierarchy quote, and the ECDSA signature verifies with OpenSSL', () => {
    const nonce = new TextEncoder().encode('nonce-1234');
    const before = readClock(t);
    const q = quote(t, ek.handle, nonce, NULL_IN, pcrSelection(TPM_ALG.SHA256, 0, 16));
    expect(q.rc).toBe(0);
    const a = q.attest!;
    expect(a.magic).toBe(TPM_GENERATED_VALUE);
    expect(a.type).toBe(TPM_ST.ATTEST_QUOTE);
    expect(hex(a.qualifiedSigner)).toBe(hex(primaryQualifiedName(TPM_RH.ENDORSEMENT, ek.name)));
    expect(hex(a.extraData)).toBe(hex(nonce));
    // Not obfuscated in the endorsement hierarchy.
    expect(a.firmwareVersion).toBe(FIRMWARE);
    expect(a.clockInfo.resetCount).toBe(before.clockInfo.resetCount);
    expect(a.clockInfo.restartCount).toBe(before.clockInfo.restartCount);
    expect(a.clockInfo.clock >= before.clockInfo.clock).toBe(true);
    expect(a.clockInfo.safe).toBe(true);
    // PCR 0 after Startup at locality 0 is all zeros.
    const { pcrSelect, pcrDigest } = a.attested as { pcrSelect: { hash: number; pcrSelect: Uint8Array }[]; pcrDigest: Uint8Array };
    expect(pcrSelect.map((s) => [s.hash, hex(s.pcrSelect)])).toEqual([[TPM_ALG.SHA256, '010001']]);
    expect(hex(pcrDigest)).toBe(hex(sha256(new Uint8Array(32), pcr16)));
    expect(q.signature!.sigAlg).toBe(TPM_ALG.ECDSA);
    expect(eccVerify(ek.outPublic, q.bytes, q.signature!)).toBe(true);
    const tampered = q.bytes.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(eccVerify(ek.outPublic, tampered, q.signature!)).toBe(false);
  });

  test('the PCR digest uses the scheme hash; a SHA-1 bank digested with SHA-384', () => {
    const key = createPrimary(t, ecc(), TPM_RH.ENDORSEMENT);
    const q = quote(t, key.handle, new Uint8Array(0), scheme(TPM_ALG.ECDSA, TPM_ALG.SHA384), pcrSelection(TPM_ALG.SHA1, 1, 2));
    expect(q.rc).toBe(0);
    const zeros = new Uint8Array(20);
    expect(hex((q.attest!.attested as { pcrDigest: Uint8Array }).pcrDigest)).toBe(hex(new Uint8Array(nodeCrypto.createHash('sha384').update(zeros).update(zeros).digest())));
    expect(eccVerify(key.outPublic, q.bytes, q.signature!, 'sha384')).toBe(true);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) }).rc).toBe(0);
  });

  test('owner-hierarchy keys get resetCount, restartCount and firmwareVersion offset by KDFa(shProof, "OBFUSCATE", qualifiedSigner)', () => {
    const key = createPrimary(t, ecc(SIGN, ECDSA_SHA256), TPM_RH.OWNER);
    const clock = readClock(t).clockInfo;
    const q = quote(t, key.handle, new Uint8Array(0), NULL_IN, pcrSelection(TPM_ALG.SHA256, 16));
    expect(q.rc).toBe(0);
    const qn = primaryQualifiedName(TPM_RH.OWNER, key.name);
    expect(hex(q.attest!.qualifiedSigner)).toBe(hex(qn));
    const o = obfuscation(t.engine.tpm.persistent.shProof, qn);
    expect(q.attest!.firmwareVersion).toBe(BigInt.asUintN(64, FIRMWARE + o.firmware));
    expect(q.attest!.clockInfo.resetCount).toBe((clock.resetCount + Number(o.o1 >> 32n)) >>> 0);
    expect(q.attest!.clockInfo.restartCount).toBe((clock.restartCount + Number(o.o1 & 0xffffffffn)) >>> 0);
    expect(eccVerify(key.outPublic, q.bytes, q.signature!)).toBe(true);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) }).rc).toBe(0);
  });

  test('a restricted signing key quotes, and still may not Sign a digest without a ticket', () => {
    const key = createPrimary(t, ecc(SIGN | A.restricted, ECDSA_SHA256), TPM_RH.ENDORSEMENT);
    const q = quote(t, key.handle, new Uint8Array(0), NULL_IN, pcrSelection(TPM_ALG.SHA256, 16));
    expect(q.rc).toBe(0);
    expect(eccVerify(key.outPublic, q.bytes, q.signature!)).toBe(true);
    // The digest of a TPM_GENERATED_VALUE structure signed without a hash-check ticket: refused.
    const nullTicket = encode(TPMT_TK_HASHCHECK, { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });
    const r = t.call(TPM_CC.Sign, { handles: [key.handle], passwords: [''], params: cat(be.b2(sha256(q.bytes)), NULL_IN, nullTicket) });
    expect(r.rc).toBe(withPosition(TPM_RC.TICKET, { param: 3 }));
    // A Hash of attestation-like data gets no ticket either.
    const h = t.call(TPM_CC.Hash, { params: cat(be.b2(q.bytes), be.u16(TPM_ALG.SHA256), be.u32(TPM_RH.ENDORSEMENT)) });
    expect(h.rc).toBe(0);
    const reader = new Reader(h.params());
    TPM2B_DIGEST.read(reader);
    expect(TPMT_TK_HASHCHECK.read(reader).hierarchy).toBe(TPM_RH.NULL);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) }).rc).toBe(0);
  });

  test('an HMAC key signs a quote with an HMAC over the structure', () => {
    const key = createPrimary(t, hmacKey(), TPM_RH.ENDORSEMENT);
    const q = quote(t, key.handle, new Uint8Array(0), NULL_IN, pcrSelection(TPM_ALG.SHA256, 16));
    expect(q.rc).toBe(0);
    expect(q.signature!.sigAlg).toBe(TPM_ALG.HMAC);
    // Verified by the TPM itself: VerifySignature over H(attest).
    const v = t.call(TPM_CC.VerifySignature, { handles: [key.handle], params: cat(be.b2(sha256(q.bytes)), encode(TPMT_SIGNATURE, q.signature!)) });
    expect(v.rc).toBe(0);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) }).rc).toBe(0);
  });

  test('unallocated PCRs are dropped from pcrSelect and the digest', () => {
    const u = createTestTpm();
    // Only SHA-256 PCR 16 allocated, from the next TPM Reset.
    const alloc = cat(be.u32(2), be.u16(TPM_ALG.SHA1), be.u8(3), new Uint8Array(3), be.u16(TPM_ALG.SHA256), be.u8(3), new Uint8Array([0, 0, 1]));
    expect(u.call(TPM_CC.PCR_Allocate, { handles: [TPM_RH.PLATFORM], passwords: [''], params: alloc }).rc).toBe(0);
    u.powerCycle();
    expect(u.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    const key = createPrimary(u, ecc(SIGN, ECDSA_SHA256), TPM_RH.ENDORSEMENT);
    const both = cat(be.u32(2), be.u16(TPM_ALG.SHA256), be.u8(3), new Uint8Array([1, 0, 1]), be.u16(TPM_ALG.SHA1), be.u8(3), new Uint8Array([1, 0, 0]));
    const q = quote(u, key.handle, new Uint8Array(0), NULL_IN, both);
    expect(q.rc).toBe(0);
    const quoted = q.attest!.attested as { pcrSelect: { hash: number; pcrSelect: Uint8Array }[]; pcrDigest: Uint8Array };
    expect(quoted.pcrSelect.map((s) => [s.hash, hex(s.pcrSelect)])).toEqual([[TPM_ALG.SHA256, '000001'], [TPM_ALG.SHA1, '000000']]);
    expect(hex(quoted.pcrDigest)).toBe(hex(sha256(new Uint8Array(32))));
  });

  test('errors: a key that cannot sign is TPM_RC_KEY+H1; schemes that do not fit are TPM_RC_SCHEME+P2; TPM_RH_NULL has no hash', () => {
    const storage = createPrimary(t, ecc(STORAGE, NULL_SCHEME, AES128), TPM_RH.OWNER);
    const pcrs = pcrSelection(TPM_ALG.SHA256, 16);
    expect(quote(t, storage.handle, new Uint8Array(0), NULL_IN, pcrs).rc).toBe(withPosition(TPM_RC.KEY, { handle: 1 }));
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(storage.handle) }).rc).toBe(0);
    // An RSA scheme for an ECC key; a different hash than the key's own scheme.
    expect(quote(t, ek.handle, new Uint8Array(0), scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256), pcrs).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    expect(quote(t, ek.handle, new Uint8Array(0), scheme(TPM_ALG.ECDSA, TPM_ALG.SHA384), pcrs).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    // A key without a scheme, asked for none.
    const noScheme = createPrimary(t, ecc(), TPM_RH.ENDORSEMENT);
    expect(quote(t, noScheme.handle, new Uint8Array(0), NULL_IN, pcrs).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(noScheme.handle) }).rc).toBe(0);
    expect(quote(t, TPM_RH.NULL, new Uint8Array(0), NULL_IN, pcrs).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    // qualifyingData longer than a TPMT_HA.
    expect(quote(t, ek.handle, new Uint8Array(67), NULL_IN, pcrs).rc).toBe(withPosition(TPM_RC.SIZE, { param: 1 }));
  });

  test('a persistent signing key quotes, and signs with TPM2_Sign, where it is', () => {
    const key = createPrimary(t, ecc(SIGN, ECDSA_SHA256), TPM_RH.ENDORSEMENT);
    const PERSISTENT = 0x81010001;
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, key.handle], passwords: [''], params: be.u32(PERSISTENT) }).rc).toBe(0);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) }).rc).toBe(0);
    const q = quote(t, PERSISTENT, new Uint8Array(0), NULL_IN, pcrSelection(TPM_ALG.SHA256, 16));
    expect(q.rc).toBe(0);
    expect(eccVerify(key.outPublic, q.bytes, q.signature!)).toBe(true);
    const nullTicket = encode(TPMT_TK_HASHCHECK, { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });
    const digest = sha256(new TextEncoder().encode('message'));
    const r = t.call(TPM_CC.Sign, { handles: [PERSISTENT], passwords: [''], params: cat(be.b2(digest), NULL_IN, nullTicket) });
    expect(r.rc).toBe(0);
    const sig = TPMT_SIGNATURE.read(new Reader(r.params())).signature as { signatureR: Uint8Array; signatureS: Uint8Array };
    const u = key.outPublic.unique as { x: Uint8Array; y: Uint8Array };
    const pub = nodeCrypto.createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(u.x).toString('base64url'), y: Buffer.from(u.y).toString('base64url') }, format: 'jwk' });
    expect(nodeCrypto.verify('sha256', new TextEncoder().encode('message'), { key: pub, dsaEncoding: 'ieee-p1363' }, cat(sig.signatureR, sig.signatureS))).toBe(true);
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, PERSISTENT], passwords: [''], params: be.u32(PERSISTENT) }).rc).toBe(0);
  });

  test('a wrong password for the signing key fails authorization', () => {
    const key = createPrimary(t, ecc(SIGN | A.noDA, ECDSA_SHA256), TPM_RH.ENDORSEMENT, 'secret');
    const pcrs = pcrSelection(TPM_ALG.SHA256, 16);
    expect(quote(t, key.handle, new Uint8Array(0), NULL_IN, pcrs, 'wrong').rc).toBe(withPosition(TPM_RC.BAD_AUTH, { session: 1 }));
    expect(quote(t, key.handle, new Uint8Array(0), NULL_IN, pcrs, 'secret').rc).toBe(0);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(key.handle) }).rc).toBe(0);
  });
});

describe('Certify and CertifyCreation', () => {
  const t = createTestTpm();
  const signer = createPrimary(t, rsa(), TPM_RH.ENDORSEMENT);
  const object = createPrimary(t, ecc(SIGN, ECDSA_SHA256), TPM_RH.OWNER);

  test('Certify: the object Name and Qualified Name, signed RSASSA-SHA256 (the key has no scheme: the one asked for)', () => {
    const c = certify(t, object.handle, signer.handle, new TextEncoder().encode('q'), scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256));
    expect(c.rc).toBe(0);
    expect(c.attest!.type).toBe(TPM_ST.ATTEST_CERTIFY);
    const info = c.attest!.attested as { name: Uint8Array; qualifiedName: Uint8Array };
    expect(hex(info.name)).toBe(hex(object.name));
    expect(hex(info.qualifiedName)).toBe(hex(primaryQualifiedName(TPM_RH.OWNER, object.name)));
    expect(c.signature!.sigAlg).toBe(TPM_ALG.RSASSA);
    expect(rsaVerify(signer.outPublic, c.bytes, c.signature!)).toBe(true);
  });

  test('Certify with TPM_RH_NULL: an unsigned, obfuscated attestation whose qualifiedSigner is TPM_RH_NULL', () => {
    const clock = readClock(t).clockInfo;
    const c = certify(t, object.handle, TPM_RH.NULL, new Uint8Array(0), scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256));
    expect(c.rc).toBe(0);
    expect(c.signature).toEqual({ sigAlg: TPM_ALG.NULL, signature: null });
    expect(hex(c.attest!.qualifiedSigner)).toBe('40000007');
    const o = obfuscation(t.engine.tpm.persistent.shProof, be.u32(TPM_RH.NULL));
    expect(c.attest!.clockInfo.resetCount).toBe((clock.resetCount + Number(o.o1 >> 32n)) >>> 0);
    expect(c.attest!.firmwareVersion).toBe(BigInt.asUintN(64, FIRMWARE + o.firmware));
  });

  test('Certify errors: the signing key is handle 2; the object needs its ADMIN authorization', () => {
    expect(certify(t, object.handle, object.handle, new Uint8Array(0)).rc).toBe(0);
    const storage = createPrimary(t, rsa(STORAGE & ~A.restricted & ~A.decrypt | A.decrypt), TPM_RH.OWNER);
    expect(certify(t, object.handle, storage.handle, new Uint8Array(0), scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256)).rc).toBe(withPosition(TPM_RC.KEY, { handle: 2 }));
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(storage.handle) }).rc).toBe(0);
    expect(certify(t, object.handle, signer.handle, new Uint8Array(0), scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256)).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    const r = t.call(TPM_CC.Certify, { handles: [object.handle, signer.handle], passwords: ['x', ''], params: cat(be.b2(''), scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256)) });
    expect(r.rc).toBe(withPosition(TPM_RC.AUTH_FAIL, { session: 1 }));
    t.call(TPM_CC.DictionaryAttackLockReset, { handles: [TPM_RH.LOCKOUT], passwords: [''] });
  });

  const certifyCreation = (key: number, obj: Primary, creationHash: Uint8Array, inScheme: Uint8Array, ticket = obj.ticket) =>
    attestResponse(t.call(TPM_CC.CertifyCreation, {
      handles: [key, obj.handle],
      passwords: [''],
      params: cat(be.b2('cc'), be.b2(creationHash), inScheme, encode(TPMT_TK_CREATION, ticket)),
    }));

  test('CertifyCreation: the object Name and its creationHash, with the creation ticket CreatePrimary gave', () => {
    const c = certifyCreation(object.handle, object, object.creationHash, NULL_IN);
    expect(c.rc).toBe(0);
    expect(c.attest!.type).toBe(TPM_ST.ATTEST_CREATION);
    expect(c.attest!.attested).toEqual({ objectName: object.name, creationHash: object.creationHash });
    expect(hex(c.attest!.extraData)).toBe(hex(new TextEncoder().encode('cc')));
    expect(eccVerify(object.outPublic, c.bytes, c.signature!)).toBe(true);
  });

  test('CertifyCreation errors: another creationHash or ticket is TPM_RC_TICKET+P4; the scheme is P3', () => {
    const other = object.creationHash.slice();
    other[0]! ^= 1;
    expect(certifyCreation(object.handle, object, other, NULL_IN).rc).toBe(withPosition(TPM_RC.TICKET, { param: 4 }));
    expect(certifyCreation(object.handle, object, object.creationHash, NULL_IN, { ...object.ticket, hierarchy: TPM_RH.ENDORSEMENT }).rc)
      .toBe(withPosition(TPM_RC.TICKET, { param: 4 }));
    expect(certifyCreation(object.handle, object, object.creationHash, scheme(TPM_ALG.RSAPSS, TPM_ALG.SHA256)).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 3 }));
    // The key check comes first.
    const aes = createPrimary(t, ecc(STORAGE, NULL_SCHEME, AES128), TPM_RH.OWNER);
    expect(certifyCreation(aes.handle, object, other, NULL_IN).rc).toBe(withPosition(TPM_RC.KEY, { handle: 1 }));
  });
});

describe('GetTime', () => {
  const t = createTestTpm();
  t.clock.advance(5000);

  test('time, clock and firmware version in the clear in the arm; the header obfuscated for an owner key', () => {
    const key = createPrimary(t, ecc(SIGN, ECDSA_SHA256), TPM_RH.OWNER);
    const before = readClock(t);
    const g = getTime(t, key.handle, new TextEncoder().encode('when'));
    expect(g.rc).toBe(0);
    const a = g.attest!;
    expect(a.type).toBe(TPM_ST.ATTEST_TIME);
    const info = a.attested as { time: { time: bigint; clockInfo: { clock: bigint; resetCount: number; restartCount: number; safe: boolean } }; firmwareVersion: bigint };
    expect(info.firmwareVersion).toBe(FIRMWARE);
    expect(info.time.clockInfo.resetCount).toBe(before.clockInfo.resetCount);
    expect(info.time.clockInfo.restartCount).toBe(before.clockInfo.restartCount);
    expect(info.time.time).toBe(before.time);
    expect(info.time.clockInfo.clock).toBe(a.clockInfo.clock);
    const o = obfuscation(t.engine.tpm.persistent.shProof, a.qualifiedSigner);
    expect(a.firmwareVersion).toBe(BigInt.asUintN(64, FIRMWARE + o.firmware));
    expect(a.clockInfo.restartCount).toBe((before.clockInfo.restartCount + Number(o.o1 & 0xffffffffn)) >>> 0);
    expect(eccVerify(key.outPublic, g.bytes, g.signature!)).toBe(true);
  });

  test('errors: the endorsement authorization, and the signing key at handle 2', () => {
    expect(getTime(t, TPM_RH.NULL, new Uint8Array(0)).rc).toBe(0);
    expect(getTime(t, TPM_RH.NULL, new Uint8Array(0), NULL_IN, 'wrong').rc).toBe(withPosition(TPM_RC.BAD_AUTH, { session: 1 }));
    const r = t.call(TPM_CC.GetTime, { handles: [TPM_RH.OWNER, TPM_RH.NULL], passwords: ['', ''], params: cat(be.b2(''), NULL_IN) });
    expect(r.rc).toBe(withPosition(TPM_RC.VALUE, { handle: 1 }));
    const aes = createPrimary(t, ecc(STORAGE, NULL_SCHEME, AES128), TPM_RH.OWNER);
    expect(getTime(t, aes.handle, new Uint8Array(0)).rc).toBe(withPosition(TPM_RC.KEY, { handle: 2 }));
  });
});

describe('NV_Certify', () => {
  const t = createTestTpm();
  const IDX = 0x01500010;
  const ATTRS = TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD | TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE | TPMA_NV.NO_DA;
  const define = (handle: number, attributes: number, size: number) =>
    t.call(TPM_CC.NV_DefineSpace, {
      handles: [TPM_RH.OWNER], passwords: [''],
      params: cat(be.b2(''), be.b2(cat(be.u32(handle), be.u16(TPM_ALG.SHA256), be.u32(attributes), be.b2(''), be.u16(size)))),
    }).rc;
  expect(define(IDX, ATTRS, 16)).toBe(0);
  const data = new TextEncoder().encode('0123456789abcdef');
  expect(t.call(TPM_CC.NV_Write, { handles: [TPM_RH.OWNER, IDX], passwords: [''], params: cat(be.b2(data), be.u16(0)) }).rc).toBe(0);
  const key = createPrimary(t, ecc(SIGN, ECDSA_SHA256), TPM_RH.ENDORSEMENT);
  const nvName = () => {
    const r = t.call(TPM_CC.NV_ReadPublic, { handles: [IDX] });
    const reader = new Reader(r.params());
    reader.bytes(reader.u16());
    return TPM2B_NAME.read(reader);
  };
  const nvCertify = (size: number, offset: number, auth: number = TPM_RH.OWNER, index = IDX, signHandle = key.handle, inScheme = NULL_IN) =>
    attestResponse(t.call(TPM_CC.NV_Certify, {
      handles: [signHandle, auth, index], passwords: ['', ''],
      params: cat(be.b2('nv'), inScheme, be.u16(size), be.u16(offset)),
    }));

  test('a range of the index: its Name, the offset and those bytes', () => {
    const c = nvCertify(6, 4);
    expect(c.rc).toBe(0);
    expect(c.attest!.type).toBe(TPM_ST.ATTEST_NV);
    expect(c.attest!.attested).toEqual({ indexName: nvName(), offset: 4, nvContents: data.slice(4, 10) });
    expect(eccVerify(key.outPublic, c.bytes, c.signature!)).toBe(true);
    // The index authorizing itself.
    expect(nvCertify(16, 0, IDX).rc).toBe(0);
  });

  test('size and offset 0: TPM_ST_ATTEST_NV_DIGEST over the whole index with the scheme hash', () => {
    const c = nvCertify(0, 0);
    expect(c.rc).toBe(0);
    expect(c.attest!.type).toBe(TPM_ST.ATTEST_NV_DIGEST);
    expect(c.attest!.attested).toEqual({ indexName: nvName(), nvDigest: sha256(data) });
    const u = nvCertify(0, 0, TPM_RH.OWNER, IDX, TPM_RH.NULL);
    expect(u.attest!.attested).toEqual({ indexName: nvName(), nvDigest: new Uint8Array(0) });
    expect(u.signature!.sigAlg).toBe(TPM_ALG.NULL);
  });

  test('errors in the reference order: key, scheme, read access, range, size', () => {
    expect(nvCertify(17, 0).rc).toBe(TPM_RC.NV_RANGE);
    expect(nvCertify(8, 9).rc).toBe(TPM_RC.NV_RANGE);
    expect(nvCertify(4, 0, TPM_RH.PLATFORM).rc).toBe(TPM_RC.NV_AUTHORIZATION);
    expect(nvCertify(4, 0, TPM_RH.OWNER, IDX, key.handle, scheme(TPM_ALG.HMAC, TPM_ALG.SHA256)).rc).toBe(withPosition(TPM_RC.SCHEME, { param: 2 }));
    expect(define(IDX + 1, ATTRS, 16)).toBe(0);
    expect(nvCertify(4, 0, TPM_RH.OWNER, IDX + 1).rc).toBe(TPM_RC.NV_UNINITIALIZED);
    const aes = createPrimary(t, ecc(STORAGE, NULL_SCHEME, AES128), TPM_RH.OWNER);
    expect(nvCertify(17, 0, TPM_RH.OWNER, IDX, aes.handle).rc).toBe(withPosition(TPM_RC.KEY, { handle: 1 }));
  });
});

describe('TPMS_ATTEST codec', () => {
  test('hand-written bytes of a quote decode and re-encode identically; a wrong magic or type is refused', () => {
    const bytes = cat(
      be.u32(0xff544347), // magic
      be.u16(0x8018), // type: TPM_ST_ATTEST_QUOTE
      be.b2(new Uint8Array([0x40, 0, 0, 7])), // qualifiedSigner
      be.b2(new Uint8Array([1, 2])), // extraData
      new Uint8Array([0, 0, 0, 0, 0, 0, 0, 9]), be.u32(1), be.u32(2), be.u8(1), // clockInfo
      new Uint8Array([0x20, 0x19, 0x10, 0x23, 0x00, 0x16, 0x36, 0x36]), // firmwareVersion
      be.u32(1), be.u16(TPM_ALG.SHA256), be.u8(3), new Uint8Array([1, 0, 0]), // pcrSelect
      be.b2(new Uint8Array(32)), // pcrDigest
    );
    const a = decode(TPMS_ATTEST, bytes);
    expect(a.clockInfo).toEqual({ clock: 9n, resetCount: 1, restartCount: 2, safe: true });
    expect(a.firmwareVersion).toBe(FIRMWARE);
    expect(hex(encode(TPMS_ATTEST, a))).toBe(hex(bytes));
    expect(hex(encode(TPM2B_ATTEST, a))).toBe(hex(cat(be.u16(bytes.length), bytes)));
    const badMagic = bytes.slice();
    badMagic[0] = 0;
    expect(() => decode(TPMS_ATTEST, badMagic)).toThrow();
    const badType = bytes.slice();
    badType[5] = 0x17 + 0x10;
    expect(() => decode(TPMS_ATTEST, badType)).toThrow();
  });
});

describe('attestation commands under mutation', () => {
  test('mutated Quote, Certify, CertifyCreation, GetTime and NV_Certify commands never reach the internal-error path', () => {
    const t = createTestTpm();
    const key = createPrimary(t, ecc(SIGN, ECDSA_SHA256), TPM_RH.ENDORSEMENT);
    const IDX = 0x01500020;
    t.call(TPM_CC.NV_DefineSpace, {
      handles: [TPM_RH.OWNER], passwords: [''],
      params: cat(be.b2(''), be.b2(cat(be.u32(IDX), be.u16(TPM_ALG.SHA256), be.u32(TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD), be.b2(''), be.u16(8)))),
    });
    t.call(TPM_CC.NV_Write, { handles: [TPM_RH.OWNER, IDX], passwords: [''], params: cat(be.b2('12345678'), be.u16(0)) });
    const seeds = [
      buildCommand(TPM_CC.Quote, { handles: [key.handle], passwords: [''], params: cat(be.b2('n'), NULL_IN, pcrSelection(TPM_ALG.SHA256, 1, 16)) }),
      buildCommand(TPM_CC.Certify, { handles: [key.handle, key.handle], passwords: ['', ''], params: cat(be.b2('n'), NULL_IN) }),
      buildCommand(TPM_CC.CertifyCreation, {
        handles: [key.handle, key.handle], passwords: [''],
        params: cat(be.b2('n'), be.b2(key.creationHash), NULL_IN, encode(TPMT_TK_CREATION, key.ticket)),
      }),
      buildCommand(TPM_CC.GetTime, { handles: [TPM_RH.ENDORSEMENT, key.handle], passwords: ['', ''], params: cat(be.b2('n'), NULL_IN) }),
      buildCommand(TPM_CC.NV_Certify, { handles: [key.handle, TPM_RH.OWNER, IDX], passwords: ['', ''], params: cat(be.b2('n'), NULL_IN, be.u16(4), be.u16(2)) }),
    ];
    for (const s of seeds) expect(t.send(s).rc).toBe(0);
    const rnd = xorshift32(0x5eed);
    for (let i = 0; i < 3000; i++) {
      const bytes = seeds[i % seeds.length]!.slice();
      for (let m = 1 + Math.floor(rnd() * 3); m > 0; m--) bytes[10 + Math.floor(rnd() * (bytes.length - 10))] = Math.floor(rnd() * 256);
      const r = t.send(bytes);
      expect(r.rc, `iteration ${i}`).not.toBe(TPM_RC.FAILURE);
      expect(r.size, `iteration ${i}`).toBe(r.bytes.length);
    }
  });
});
