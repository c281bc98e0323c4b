/**
 * PolicySigned, PolicyNV and PolicyAuthorizeNV (Part 3 §23.3, §23.9, §23.22): each digest update
 * is recomputed here from the spec's formula with node:crypto; signatures come from OpenSSL
 * (an external key loaded with LoadExternal) and from keys the TPM made (TPM2_Sign); the
 * checks' error codes are the reference's.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE, TPM_RC, TPM_RH, TPM_ST, TPMA_NV } from '../../../src/tpm/constants.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC, TPMA_OBJECT, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import { callWithSessions, digest, startSession, type ClientSession } from '../../helpers/session-client.js';

const SHA256 = TPM_ALG.SHA256;
const H = (...p: Uint8Array[]) => digest(SHA256, ...p);
const ZERO = new Uint8Array(32);
const TRIAL = 3;
const POLICY = 1;
const enc = (s: string) => new TextEncoder().encode(s);
const P = (rc: number, param: number) => withPosition(rc, { param });

function getDigest(t: TestTpm, s: ClientSession): Uint8Array {
  const r = t.call(TPM_CC.PolicyGetDigest, { handles: [s.handle] });
  expect(r.rc).toBe(0);
  return r.body.slice(2);
}

/** An OpenSSL P-256 key pair, its public area loaded with LoadExternal into `hierarchy`, and its Name. */
function externalEcc(t: TestTpm, hierarchy: number = TPM_RH.OWNER) {
  const { privateKey, publicKey } = nodeCrypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const pub = {
    type: TPM_ALG.ECC, nameAlg: SHA256, objectAttributes: TPMA_OBJECT.sign | TPMA_OBJECT.userWithAuth, authPolicy: new Uint8Array(0),
    parameters: { symmetric: { algorithm: TPM_ALG.NULL, keyBits: null, mode: null }, scheme: { scheme: TPM_ALG.NULL, details: null }, curveID: TPM_ECC_CURVE.NIST_P256, kdf: { scheme: TPM_ALG.NULL, details: null } },
    unique: { x: new Uint8Array(Buffer.from(jwk.x!, 'base64url')), y: new Uint8Array(Buffer.from(jwk.y!, 'base64url')) },
  } as TPMT_PUBLIC;
  const publicBytes = encode(TPM2B_PUBLIC, pub);
  const r = t.call(TPM_CC.LoadExternal, { params: cat(be.u16(0), publicBytes, be.u32(hierarchy)) });
  expect(r.rc).toBe(0);
  const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
  const name = cat(be.u16(SHA256), H(publicBytes.subarray(2)));
  return { handle, name, privateKey };
}

/**
 * TPMT_SIGNATURE (ECDSA, SHA-256) by an OpenSSL key over aHash = SHA-256(nonceTPM || expiration
 * || cpHashA || policyRef): OpenSSL hashes the concatenation and signs the digest.
 */
function ecdsaSignature(privateKey: nodeCrypto.KeyObject, message: Uint8Array): Uint8Array {
  const rs = new Uint8Array(nodeCrypto.sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
  return cat(be.u16(TPM_ALG.ECDSA), be.u16(SHA256), be.b2(rs.subarray(0, 32)), be.b2(rs.subarray(32)));
}

const signedMessage = (nonceTPM: Uint8Array, expiration: number, cpHashA: Uint8Array, policyRef: Uint8Array) =>
  cat(nonceTPM, be.u32(expiration >>> 0), cpHashA, policyRef);

const signedParams = (nonceTPM: Uint8Array, cpHashA: Uint8Array, policyRef: Uint8Array, expiration: number, signature: Uint8Array) =>
  cat(be.b2(nonceTPM), be.b2(cpHashA), be.b2(policyRef), be.u32(expiration >>> 0), signature);

const SIGN_ATTRS = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign;
const NO_SYM = { algorithm: TPM_ALG.NULL, keyBits: null, mode: null };

/** A signing primary of the owner hierarchy; returns its handle and Name (from the TPM's public area, hashed here). */
function primary(t: TestTpm, template: TPMT_PUBLIC) {
  const sensitive = cat(be.b2(new Uint8Array(0)), be.b2(new Uint8Array(0)));
  const r = t.call(TPM_CC.CreatePrimary, { handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(sensitive), encode(TPM2B_PUBLIC, template), be.b2(new Uint8Array(0)), be.u32(0)) });
  expect(r.rc).toBe(0);
  const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
  const out = TPM2B_PUBLIC.read(new Reader(r.params(1))) as TPMT_PUBLIC;
  return { handle, name: cat(be.u16(SHA256), H(encode(TPM2B_PUBLIC, out).subarray(2))) };
}

/** TPM2_Sign of SHA-256(message) with the scheme given as bytes; the TPMT_SIGNATURE bytes. */
function tpmSign(t: TestTpm, handle: number, message: Uint8Array, scheme: Uint8Array): Uint8Array {
  const nullTicket = cat(be.u16(TPM_ST.HASHCHECK), be.u32(TPM_RH.NULL), be.u16(0));
  const r = t.call(TPM_CC.Sign, { handles: [handle], passwords: [''], params: cat(be.b2(H(message)), scheme, nullTicket) });
  expect(r.rc).toBe(0);
  return r.params().slice();
}

describe('PolicySigned', () => {
  test('trial digest: H(H(0…0 || CC_PolicySigned || authName) || policyRef), no signature checked', () => {
    const t = createTestTpm();
    const key = externalEcc(t);
    const s = startSession(t, { type: TRIAL });
    const ref = enc('ref');
    const r = t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(new Uint8Array(0), new Uint8Array(0), ref, 0, cat(be.u16(TPM_ALG.ECDSA), be.u16(SHA256), be.u16(0), be.u16(0))) });
    expect(r.rc).toBe(0);
    expect(hex(getDigest(t, s))).toBe(hex(H(H(ZERO, be.u32(TPM_CC.PolicySigned), key.name), ref)));
  });

  test('an OpenSSL ECDSA signature over nonceTPM || expiration || cpHashA || policyRef', () => {
    const t = createTestTpm();
    const key = externalEcc(t);
    const s = startSession(t, { type: POLICY });
    const ref = enc('approved');
    const sig = ecdsaSignature(key.privateKey, signedMessage(s.nonceTPM, 0, new Uint8Array(0), ref));
    // A signature over another nonce does not verify: TPM_RC_SIGNATURE+P5.
    const other = ecdsaSignature(key.privateKey, signedMessage(new Uint8Array(32), 0, new Uint8Array(0), ref));
    expect(t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(s.nonceTPM, new Uint8Array(0), ref, 0, other) }).rc).toBe(P(TPM_RC.SIGNATURE, 5));
    // A nonce that is not the session's: TPM_RC_NONCE+P1.
    expect(t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(new Uint8Array(32).fill(1), new Uint8Array(0), ref, 0, sig) }).rc).toBe(P(TPM_RC.NONCE, 1));
    // A cpHashA that is not a SHA-256 digest: TPM_RC_SIZE+P2.
    expect(t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(s.nonceTPM, new Uint8Array(20), ref, 0, sig) }).rc).toBe(P(TPM_RC.SIZE, 2));
    const r = t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(s.nonceTPM, new Uint8Array(0), ref, 0, sig) });
    expect(r.rc).toBe(0);
    // No ticket without a negative expiration: an empty timeout and the NULL TPMT_TK_AUTH.
    expect(hex(r.params())).toBe(hex(cat(be.u16(0), be.u16(TPM_ST.AUTH_SIGNED), be.u32(TPM_RH.NULL), be.u16(0))));
    expect(hex(getDigest(t, s))).toBe(hex(H(H(ZERO, be.u32(TPM_CC.PolicySigned), key.name), ref)));
  });

  test.each([
    ['RSASSA', 'rsassa'],
    ['RSA-PSS', 'rsapss'],
    ['ECDSA', 'ecdsa'],
    ['HMAC', 'hmac'],
  ])('a %s signature made by a TPM key (TPM2_Sign) is accepted; a changed one is TPM_RC_SIGNATURE+P5', (_n, kind) => {
    const t = createTestTpm();
    const templates: Record<string, [TPMT_PUBLIC, Uint8Array]> = {
      rsassa: [{ type: TPM_ALG.RSA, nameAlg: SHA256, objectAttributes: SIGN_ATTRS, authPolicy: new Uint8Array(0), parameters: { symmetric: NO_SYM, scheme: { scheme: TPM_ALG.NULL, details: null }, keyBits: 2048, exponent: 0 }, unique: new Uint8Array(0) } as TPMT_PUBLIC, cat(be.u16(TPM_ALG.RSASSA), be.u16(SHA256))],
      rsapss: [{ type: TPM_ALG.RSA, nameAlg: SHA256, objectAttributes: SIGN_ATTRS, authPolicy: new Uint8Array(0), parameters: { symmetric: NO_SYM, scheme: { scheme: TPM_ALG.NULL, details: null }, keyBits: 2048, exponent: 0 }, unique: new Uint8Array(0) } as TPMT_PUBLIC, cat(be.u16(TPM_ALG.RSAPSS), be.u16(SHA256))],
      ecdsa: [{ type: TPM_ALG.ECC, nameAlg: SHA256, objectAttributes: SIGN_ATTRS, authPolicy: new Uint8Array(0), parameters: { symmetric: NO_SYM, scheme: { scheme: TPM_ALG.NULL, details: null }, curveID: TPM_ECC_CURVE.NIST_P384, kdf: { scheme: TPM_ALG.NULL, details: null } }, unique: { x: new Uint8Array(0), y: new Uint8Array(0) } } as TPMT_PUBLIC, cat(be.u16(TPM_ALG.ECDSA), be.u16(SHA256))],
      hmac: [{ type: TPM_ALG.KEYEDHASH, nameAlg: SHA256, objectAttributes: SIGN_ATTRS, authPolicy: new Uint8Array(0), parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: SHA256 } } }, unique: new Uint8Array(0) } as TPMT_PUBLIC, be.u16(TPM_ALG.NULL)],
    };
    const [template, scheme] = templates[kind]!;
    const key = primary(t, template);
    const s = startSession(t, { type: POLICY });
    const cpHashA = H(enc('the command'));
    const message = signedMessage(s.nonceTPM, 0, cpHashA, new Uint8Array(0));
    const sig = tpmSign(t, key.handle, message, scheme);
    const bad = sig.slice();
    bad[bad.length - 1]! ^= 1;
    expect(t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(s.nonceTPM, cpHashA, new Uint8Array(0), 0, bad) }).rc).toBe(P(TPM_RC.SIGNATURE, 5));
    expect(t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(s.nonceTPM, cpHashA, new Uint8Array(0), 0, sig) }).rc).toBe(0);
    expect(hex(getDigest(t, s))).toBe(hex(H(H(ZERO, be.u32(TPM_CC.PolicySigned), key.name), new Uint8Array(0))));
  });

  test('a negative expiration returns a TPMT_TK_AUTH that PolicyTicket redeems until it expires', () => {
    const t = createTestTpm();
    const key = externalEcc(t, TPM_RH.OWNER);
    const s = startSession(t, { type: POLICY });
    const ref = enc('r');
    const expiration = -100;
    const sig = ecdsaSignature(key.privateKey, signedMessage(s.nonceTPM, expiration, new Uint8Array(0), ref));
    const r = t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(s.nonceTPM, new Uint8Array(0), ref, expiration, sig) });
    expect(r.rc).toBe(0);
    const out = r.params();
    const timeout = out.slice(0, 10);
    expect(timeout[0]! * 256 + timeout[1]!).toBe(8);
    const ticket = out.slice(10);
    // TPMT_TK_AUTH: TPM_ST_AUTH_SIGNED, the key's hierarchy, a SHA-512 HMAC.
    expect(hex(ticket.subarray(0, 6))).toBe(hex(cat(be.u16(TPM_ST.AUTH_SIGNED), be.u32(TPM_RH.OWNER))));
    expect(ticket[6]! * 256 + ticket[7]!).toBe(64);
    const want = H(H(ZERO, be.u32(TPM_CC.PolicySigned), key.name), ref);
    expect(hex(getDigest(t, s))).toBe(hex(want));
    const s2 = startSession(t, { type: POLICY });
    const ticketParams = (tk: Uint8Array) => cat(timeout, be.u16(0), be.b2(ref), be.b2(key.name), tk);
    const forged = ticket.slice();
    forged[forged.length - 1]! ^= 1;
    expect(t.call(TPM_CC.PolicyTicket, { handles: [s2.handle], params: ticketParams(forged) }).rc).toBe(P(TPM_RC.TICKET, 5));
    expect(t.call(TPM_CC.PolicyTicket, { handles: [s2.handle], params: ticketParams(ticket) }).rc).toBe(0);
    expect(hex(getDigest(t, s2))).toBe(hex(want));
    // PolicyTicket in a trial session: TPM_RC_ATTRIBUTES+H1 (as libtpms).
    const trial = startSession(t, { type: TRIAL });
    expect(t.call(TPM_CC.PolicyTicket, { handles: [trial.handle], params: ticketParams(ticket) }).rc).toBe(withPosition(TPM_RC.ATTRIBUTES, { handle: 1 }));
    // 100 s after the session started the ticket has expired: TPM_RC_EXPIRED+P1.
    t.clock.advance(101_000);
    for (const h of [s.handle, trial.handle]) expect(t.call(TPM_CC.FlushContext, { params: be.u32(h) }).rc).toBe(0);
    const s3 = startSession(t, { type: POLICY });
    expect(t.call(TPM_CC.PolicyTicket, { handles: [s3.handle], params: ticketParams(ticket) }).rc).toBe(P(TPM_RC.EXPIRED, 1));
  });

  test('a key of the NULL hierarchy gets a ticket under the NULL proof, accepted until TPM Reset', () => {
    const t = createTestTpm();
    const key = externalEcc(t, TPM_RH.NULL);
    const s = startSession(t, { type: POLICY });
    const sig = ecdsaSignature(key.privateKey, signedMessage(s.nonceTPM, -60, new Uint8Array(0), new Uint8Array(0)));
    const r = t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(s.nonceTPM, new Uint8Array(0), new Uint8Array(0), -60, sig) });
    expect(r.rc).toBe(0);
    const out = r.params();
    expect(hex(out.subarray(10, 16))).toBe(hex(cat(be.u16(TPM_ST.AUTH_SIGNED), be.u32(TPM_RH.NULL))));
    const s2 = startSession(t, { type: POLICY });
    expect(t.call(TPM_CC.PolicyTicket, { handles: [s2.handle], params: cat(out.subarray(0, 10), be.u16(0), be.u16(0), be.b2(key.name), out.subarray(10)) }).rc).toBe(0);
  });
});

describe('PolicySigned authorizes', () => {
  const setOwnerPolicy = (t: TestTpm, policy: Uint8Array) =>
    expect(t.call(TPM_CC.SetPrimaryPolicy, { handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(policy), be.u16(SHA256)) }).rc).toBe(0);
  const changeOwnerAuth = (t: TestTpm, s: ClientSession, newAuth: string) =>
    callWithSessions(t, { code: TPM_CC.HierarchyChangeAuth, handles: [TPM_RH.OWNER], params: be.b2(newAuth) }, [{ session: s, attrs: 1 }]).r.rc;

  test('only the command whose cpHash was signed, and only before the signed expiration', () => {
    const t = createTestTpm();
    const key = externalEcc(t);
    setOwnerPolicy(t, H(H(ZERO, be.u32(TPM_CC.PolicySigned), key.name), new Uint8Array(0)));
    // The signer approves HierarchyChangeAuth(owner, "pw") only.
    const cpHashA = H(be.u32(TPM_CC.HierarchyChangeAuth), be.u32(TPM_RH.OWNER), be.b2('pw'));
    const s = startSession(t, { type: POLICY });
    const sig = ecdsaSignature(key.privateKey, signedMessage(s.nonceTPM, 0, cpHashA, new Uint8Array(0)));
    expect(t.call(TPM_CC.PolicySigned, { handles: [key.handle, s.handle], params: signedParams(s.nonceTPM, cpHashA, new Uint8Array(0), 0, sig) }).rc).toBe(0);
    expect(changeOwnerAuth(t, s, 'other')).toBe(withPosition(TPM_RC.POLICY_FAIL, { session: 1 }));
    expect(changeOwnerAuth(t, s, 'pw')).toBe(0);
    expect(t.call(TPM_CC.HierarchyChangeAuth, { handles: [TPM_RH.OWNER], passwords: ['pw'], params: be.b2('') }).rc).toBe(0);
    // Good for 10 s from the session's start: 11 s later the authorization is TPM_RC_EXPIRED+S1.
    const s2 = startSession(t, { type: POLICY });
    const sig2 = ecdsaSignature(key.privateKey, signedMessage(s2.nonceTPM, 10, new Uint8Array(0), new Uint8Array(0)));
    expect(t.call(TPM_CC.PolicySigned, { handles: [key.handle, s2.handle], params: signedParams(s2.nonceTPM, new Uint8Array(0), new Uint8Array(0), 10, sig2) }).rc).toBe(0);
    t.clock.advance(11_000);
    expect(changeOwnerAuth(t, s2, 'x')).toBe(withPosition(TPM_RC.EXPIRED, { session: 1 }));
  });
});

const IDX = 0x01000010;
const NV_ATTRS = TPMA_NV.OWNERREAD | TPMA_NV.OWNERWRITE | TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE;

function defineNv(t: TestTpm, size: number, handle = IDX, attributes = NV_ATTRS): Uint8Array {
  const pub = (a: number) => cat(be.u32(handle), be.u16(SHA256), be.u32(a >>> 0), be.u16(0), be.u16(size));
  expect(t.call(TPM_CC.NV_DefineSpace, { handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(''), be.b2(pub(attributes))) }).rc).toBe(0);
  // The Name once written: nameAlg || H(TPMS_NV_PUBLIC with TPMA_NV_WRITTEN).
  return cat(be.u16(SHA256), H(pub(attributes | TPMA_NV.WRITTEN)));
}
const nvWrite = (t: TestTpm, data: Uint8Array, handle = IDX) =>
  expect(t.call(TPM_CC.NV_Write, { handles: [TPM_RH.OWNER, handle], passwords: [''], params: cat(be.b2(data), be.u16(0)) }).rc).toBe(0);
const policyNv = (t: TestTpm, s: ClientSession, operandB: Uint8Array, offset: number, op: number, auth: number = TPM_RH.OWNER, handle = IDX) =>
  t.call(TPM_CC.PolicyNV, { handles: [auth, handle, s.handle], passwords: [''], params: cat(be.b2(operandB), be.u16(offset), be.u16(op)) }).rc;

describe('PolicyNV', () => {
  test('digest: H(digest || CC_PolicyNV || H(operandB || offset || operation) || nvName), in trial and real sessions alike', () => {
    const t = createTestTpm();
    const name = defineNv(t, 8);
    nvWrite(t, new Uint8Array([0, 0, 0, 0, 0, 0, 0x01, 0x00]));
    const operandB = new Uint8Array([0x01, 0x00]);
    const want = H(ZERO, be.u32(TPM_CC.PolicyNV), H(operandB, be.u16(6), be.u16(0)), name);
    const trial = startSession(t, { type: TRIAL });
    expect(policyNv(t, trial, operandB, 6, 0)).toBe(0);
    expect(hex(getDigest(t, trial))).toBe(hex(want));
    const real = startSession(t, { type: POLICY });
    expect(policyNv(t, real, operandB, 6, 0)).toBe(0);
    expect(hex(getDigest(t, real))).toBe(hex(want));
  });

  test('every TPM_EO comparison of the index data with operandB; a false one is TPM_RC_POLICY', () => {
    const t = createTestTpm();
    defineNv(t, 4);
    nvWrite(t, new Uint8Array([0x80, 0x00, 0x00, 0x05])); // -2147483643 signed, 2147483653 unsigned
    const s = startSession(t, { type: POLICY });
    const b = (v: number) => be.u32(v);
    const cases: [number, Uint8Array, boolean][] = [
      [0, b(0x80000005), true], [0, b(5), false], // EQ
      [1, b(5), true], [1, b(0x80000005), false], // NEQ
      [2, b(5), false], [2, b(0x80000000), true], // SIGNED_GT
      [3, b(5), true], [3, b(0x90000000), false], // UNSIGNED_GT
      [4, b(5), true], [4, b(0x80000000), false], // SIGNED_LT
      [5, b(0x90000000), true], [5, b(5), false], // UNSIGNED_LT
      [6, b(0x80000005), true], [6, b(0), false], // SIGNED_GE
      [7, b(0x80000005), true], [7, b(0x80000006), false], // UNSIGNED_GE
      [8, b(0x80000005), true], [8, b(0x80000004), false], // SIGNED_LE
      [9, b(0x80000005), true], [9, b(5), false], // UNSIGNED_LE
      [10, b(0x80000001), true], [10, b(0x00000002), false], // BITSET
      [11, b(0x00000002), true], [11, b(0x00000001), false], // BITCLEAR
    ];
    for (const [op, operand, holds] of cases) {
      expect([op, policyNv(t, s, operand, 0, op)]).toEqual([op, holds ? 0 : TPM_RC.POLICY]);
    }
    // A one-byte operand compares the first byte only: 0x80 is -128 signed.
    expect(policyNv(t, s, new Uint8Array([0x7f]), 0, 4)).toBe(0);
    // An operation past TPM_EO_BITCLEAR is TPM_RC_VALUE+P3.
    expect(policyNv(t, s, b(0), 0, 12)).toBe(P(TPM_RC.VALUE, 3));
  });

  test('read checks and ranges: unwritten, offset past the end, operand too long, no read authorization', () => {
    const t = createTestTpm();
    defineNv(t, 4);
    const s = startSession(t, { type: POLICY });
    expect(policyNv(t, s, be.u16(0), 0, 0)).toBe(TPM_RC.NV_UNINITIALIZED);
    nvWrite(t, be.u32(7));
    expect(policyNv(t, s, be.u16(0), 5, 0)).toBe(P(TPM_RC.VALUE, 2));
    expect(policyNv(t, s, be.u32(0), 1, 0)).toBe(P(TPM_RC.SIZE, 1));
    // An index without OWNERREAD cannot be read with owner authorization.
    defineNv(t, 4, IDX + 1, TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE);
    expect(t.call(TPM_CC.NV_Write, { handles: [IDX + 1, IDX + 1], passwords: [''], params: cat(be.b2(be.u32(1)), be.u16(0)) }).rc).toBe(0);
    expect(policyNv(t, s, be.u32(1), 0, 0, TPM_RH.OWNER, IDX + 1)).toBe(TPM_RC.NV_AUTHORIZATION);
    expect(policyNv(t, s, be.u32(1), 0, 0, IDX + 1, IDX + 1)).toBe(0);
  });
});

describe('PolicyAuthorizeNV', () => {
  test('the policy in the index: digest restarts as H(0…0 || CC_PolicyAuthorizeNV || nvName)', () => {
    const t = createTestTpm();
    // The approved policy: PolicyCommandCode(NV_Read).
    const approved = H(ZERO, be.u32(TPM_CC.PolicyCommandCode), be.u32(TPM_CC.NV_Read));
    const name = defineNv(t, 2 + 32);
    nvWrite(t, cat(be.u16(SHA256), approved));
    const want = H(ZERO, be.u32(TPM_CC.PolicyAuthorizeNV), name);
    const trial = startSession(t, { type: TRIAL });
    expect(t.call(TPM_CC.PolicyAuthorizeNV, { handles: [TPM_RH.OWNER, IDX, trial.handle], passwords: [''] }).rc).toBe(0);
    expect(hex(getDigest(t, trial))).toBe(hex(want));
    const s = startSession(t, { type: POLICY });
    // The session's digest is not the approved one yet: TPM_RC_VALUE.
    expect(t.call(TPM_CC.PolicyAuthorizeNV, { handles: [TPM_RH.OWNER, IDX, s.handle], passwords: [''] }).rc).toBe(TPM_RC.VALUE);
    expect(t.call(TPM_CC.PolicyCommandCode, { handles: [s.handle], params: be.u32(TPM_CC.NV_Read) }).rc).toBe(0);
    expect(t.call(TPM_CC.PolicyAuthorizeNV, { handles: [TPM_RH.OWNER, IDX, s.handle], passwords: [''] }).rc).toBe(0);
    expect(hex(getDigest(t, s))).toBe(hex(want));
  });

  test('an index holding another hash is TPM_RC_HASH; one too short for a TPMT_HA TPM_RC_INSUFFICIENT', () => {
    const t = createTestTpm();
    defineNv(t, 2 + 48);
    nvWrite(t, cat(be.u16(TPM_ALG.SHA384), new Uint8Array(48)));
    const s = startSession(t, { type: POLICY });
    expect(t.call(TPM_CC.PolicyAuthorizeNV, { handles: [TPM_RH.OWNER, IDX, s.handle], passwords: [''] }).rc).toBe(TPM_RC.HASH);
    defineNv(t, 10, IDX + 1);
    nvWrite(t, cat(be.u16(SHA256), new Uint8Array(8)), IDX + 1);
    expect(t.call(TPM_CC.PolicyAuthorizeNV, { handles: [TPM_RH.OWNER, IDX + 1, s.handle], passwords: [''] }).rc).toBe(TPM_RC.INSUFFICIENT);
  });
});
