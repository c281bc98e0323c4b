/**
 * Part 3 §14 ECC primitives and §30.3 TestParms in the engine: ECDH_ZGen against the NIST CAVS
 * CDH vector, ECDH_KeyGen's Z agreeing with ZGen on the ephemeral point, off-curve points,
 * ECC_Parameters against FIPS 186's P-256 domain parameters byte for byte, TestParms' answers.
 * EC_Ephemeral and ZGen_2Phase against a second party computed with @noble/curves; commit counts
 * across the 128 slots, a Restart and a TPM Reset.
 */
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { TPM2B_PUBLIC, TPMA_OBJECT, TPMT_SIGNATURE, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_SENSITIVE } from '../../../src/tpm/marshal/sensitive.js';
import { be, cat, createTestTpm, hex, unhex, type TestTpm } from '../../helpers/engine.js';
import { fromHex, loadVectors } from '../crypto/vectors.js';

const A = TPMA_OBJECT;
const EMPTY = new Uint8Array(0);
const NO_SYM = { algorithm: TPM_ALG.NULL, keyBits: null, mode: null };
const NULL_KDF = { scheme: TPM_ALG.NULL, details: null };
const DECRYPT = A.userWithAuth | A.decrypt;
const rc = (code: number, position: { param: number } | { handle: number }) => withPosition(code, position);

const eccPublic = (attributes: number, point: { x: Uint8Array; y: Uint8Array }, scheme: { scheme: number; details: { hashAlg: number } | null } = { scheme: TPM_ALG.NULL, details: null }) => ({
  type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: attributes, authPolicy: EMPTY,
  parameters: { symmetric: NO_SYM, scheme, curveID: TPM_ECC_CURVE.NIST_P256, kdf: NULL_KDF },
  unique: point,
}) as TPMT_PUBLIC;

function loadExternal(t: TestTpm, pub: TPMT_PUBLIC, d: Uint8Array | null): number {
  const s = d ? encode(TPM2B_SENSITIVE, { sensitiveType: TPM_ALG.ECC, authValue: EMPTY, seedValue: EMPTY, sensitive: d }) : be.u16(0);
  const r = t.call(TPM_CC.LoadExternal, { params: cat(s, encode(TPM2B_PUBLIC, pub), be.u32(TPM_RH.NULL)) });
  expect(r.rc).toBe(0);
  return new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
}

const point = (p: { x: Uint8Array; y: Uint8Array }) => be.b2(cat(be.b2(p.x), be.b2(p.y)));

/** Reads a TPM2B_ECC_POINT at `at`; returns it and the offset after it. */
function readPoint(b: Uint8Array, at: number): [{ x: Uint8Array; y: Uint8Array }, number] {
  const u16 = (i: number) => (b[i]! << 8) | b[i + 1]!;
  const end = at + 2 + u16(at);
  const xs = u16(at + 2);
  const x = b.slice(at + 4, at + 4 + xs);
  const y = b.slice(at + 6 + xs, end);
  return [{ x, y }, end];
}

function zGen(t: TestTpm, key: number, inPoint: Uint8Array) {
  const r = t.call(TPM_CC.ECDH_ZGen, { handles: [key], passwords: [''], params: inPoint });
  return { rc: r.rc, point: r.rc === 0 ? readPoint(r.params(), 0)[0] : null };
}

interface CdhVector { Name: string; QCAVSx: string; QCAVSy: string; dIUT: string; QIUTx: string; QIUTy: string; ZIUT: string }

describe('ECDH_ZGen and ECDH_KeyGen', () => {
  const [v] = loadVectors<CdhVector>('ecdh.json');
  const peer = { x: fromHex(v!.QCAVSx), y: fromHex(v!.QCAVSy) };

  test.each([
    ['NULL', { scheme: TPM_ALG.NULL, details: null }],
    ['ECDH', { scheme: TPM_ALG.ECDH, details: { hashAlg: TPM_ALG.SHA256 } }],
  ])('CAVS %s: Z = dIUT·QCAVS, the whole point (scheme %s)', (_n, scheme) => {
    const t = createTestTpm();
    const key = loadExternal(t, eccPublic(DECRYPT, { x: fromHex(v!.QIUTx), y: fromHex(v!.QIUTy) }, scheme), fromHex(v!.dIUT));
    const r = zGen(t, key, point(peer));
    expect(r.rc).toBe(0);
    expect(hex(r.point!.x)).toBe(v!.ZIUT);
    const expected = p256.Point.fromAffine({ x: BigInt(`0x${v!.QCAVSx}`), y: BigInt(`0x${v!.QCAVSy}`) }).multiply(BigInt(`0x${v!.dIUT}`)).toAffine();
    expect(BigInt(`0x${hex(r.point!.y)}`)).toBe(expected.y);
  });

  test('KeyGen gives an ephemeral point whose ZGen under the key is the Z it returned; each call is fresh', () => {
    const t = createTestTpm();
    const key = loadExternal(t, eccPublic(DECRYPT, { x: fromHex(v!.QIUTx), y: fromHex(v!.QIUTy) }), fromHex(v!.dIUT));
    const zs = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = t.call(TPM_CC.ECDH_KeyGen, { handles: [key] });
      expect(r.rc).toBe(0);
      const [z, next] = readPoint(r.params(), 0);
      const [pub] = readPoint(r.params(), next);
      expect(z.x.length).toBe(32);
      expect(pub.x.length).toBe(32);
      expect(hex(zGen(t, key, point(pub)).point!.x)).toBe(hex(z.x));
      zs.add(hex(z.x));
    }
    expect(zs.size).toBe(3);
    // KeyGen needs only the public key.
    const publicOnly = loadExternal(t, eccPublic(DECRYPT, { x: fromHex(v!.QIUTx), y: fromHex(v!.QIUTy) }), null);
    expect(t.call(TPM_CC.ECDH_KeyGen, { handles: [publicOnly] }).rc).toBe(0);
  });

  test('each RC with its position', () => {
    const t = createTestTpm();
    const pub = { x: fromHex(v!.QIUTx), y: fromHex(v!.QIUTy) };
    const key = loadExternal(t, eccPublic(DECRYPT, pub), fromHex(v!.dIUT));
    // A point off the curve, an empty point, a coordinate longer than the curve's.
    expect(zGen(t, key, point({ x: peer.x, y: peer.x })).rc).toBe(rc(TPM_RC.ECC_POINT, { param: 1 }));
    expect(zGen(t, key, be.u16(0)).rc).toBe(rc(TPM_RC.SIZE, { param: 1 }));
    expect(zGen(t, key, point({ x: cat(new Uint8Array(1), peer.x), y: peer.y })).rc).toBe(rc(TPM_RC.ECC_POINT, { param: 1 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(key) });
    // A signing key: not decrypt.
    const signer = loadExternal(t, eccPublic(A.userWithAuth | A.sign, pub), fromHex(v!.dIUT));
    expect(zGen(t, signer, point(peer)).rc).toBe(rc(TPM_RC.ATTRIBUTES, { handle: 1 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(signer) });
    // Not an ECC key.
    const hmacKey = {
      type: TPM_ALG.KEYEDHASH, nameAlg: TPM_ALG.SHA256, objectAttributes: A.userWithAuth | A.sign, authPolicy: EMPTY,
      parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: TPM_ALG.SHA256 } } }, unique: EMPTY,
    } as TPMT_PUBLIC;
    const r = t.call(TPM_CC.CreatePrimary, {
      handles: [TPM_RH.OWNER], passwords: [''],
      params: cat(be.b2(cat(be.b2(EMPTY), be.b2(EMPTY))), encode(TPM2B_PUBLIC, { ...hmacKey, objectAttributes: hmacKey.objectAttributes | A.sensitiveDataOrigin | A.fixedTPM | A.fixedParent } as TPMT_PUBLIC), be.b2(EMPTY), be.u32(0)),
    });
    const hk = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
    expect(zGen(t, hk, point(peer)).rc).toBe(rc(TPM_RC.KEY, { handle: 1 }));
    expect(t.call(TPM_CC.ECDH_KeyGen, { handles: [hk] }).rc).toBe(rc(TPM_RC.KEY, { handle: 1 }));
    // A restricted decryption key (a storage key) is no ZGen key.
    t.call(TPM_CC.FlushContext, { params: be.u32(hk) });
    const storage = eccPublic(A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.decrypt, { x: EMPTY, y: EMPTY });
    const sp = t.call(TPM_CC.CreatePrimary, {
      handles: [TPM_RH.OWNER], passwords: [''],
      params: cat(be.b2(cat(be.b2(EMPTY), be.b2(EMPTY))), encode(TPM2B_PUBLIC, { ...storage, parameters: { ...(storage.parameters as object), symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } } } as TPMT_PUBLIC), be.b2(EMPTY), be.u32(0)),
    });
    expect(sp.rc).toBe(0);
    expect(zGen(t, new DataView(sp.body.buffer, sp.body.byteOffset).getUint32(0), point(peer)).rc).toBe(rc(TPM_RC.ATTRIBUTES, { handle: 1 }));
  });
});

describe('ECC_Parameters', () => {
  test('P-256: FIPS 186-4 D.1.2.3 domain parameters, with the curve KDF libtpms reports', () => {
    const t = createTestTpm();
    const r = t.call(TPM_CC.ECC_Parameters, { params: be.u16(TPM_ECC_CURVE.NIST_P256) });
    expect(r.rc).toBe(0);
    const p = 'ffffffff00000001000000000000000000000000ffffffffffffffffffffffff';
    const expected = [
      '0003', '0100', // curveID, keySize
      '0020000b', // kdf: KDF1_SP800_56A with SHA-256
      '0010', // sign: TPM_ALG_NULL
      `0020${p}`,
      '0020ffffffff00000001000000000000000000000000fffffffffffffffffffffffc', // a = -3 mod p
      '00205ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b',
      '00206b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296',
      '00204fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5',
      '0020ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551',
      '000101', // h = 1
    ].join('');
    expect(hex(r.params())).toBe(expected);
  });

  test('P-384 and P-521: sizes, and the base point padded to p while n keeps its own length', () => {
    const t = createTestTpm();
    const p521 = t.call(TPM_CC.ECC_Parameters, { params: be.u16(TPM_ECC_CURVE.NIST_P521) });
    expect(p521.rc).toBe(0);
    const b = p521.params();
    expect(hex(b.subarray(0, 10))).toBe('000502090020000d0010'); // P-521, 521 bits, KDF with SHA-512, no scheme
    // p = 2^521 - 1 in 66 bytes.
    expect(hex(b.subarray(10, 12 + 66))).toBe(`0042${'01'}${'ff'.repeat(65)}`);
    expect(t.call(TPM_CC.ECC_Parameters, { params: be.u16(TPM_ECC_CURVE.NIST_P384) }).rc).toBe(0);
  });

  test('a curve without key support is TPM_RC_CURVE+P1', () => {
    const t = createTestTpm();
    expect(t.call(TPM_CC.ECC_Parameters, { params: be.u16(TPM_ECC_CURVE.BN_P256) }).rc).toBe(rc(TPM_RC.CURVE, { param: 1 }));
    expect(t.call(TPM_CC.ECC_Parameters, { params: be.u16(0x0001) }).rc).toBe(rc(TPM_RC.CURVE, { param: 1 }));
  });
});

describe('TestParms', () => {
  const sym = (alg: number, bits: number, mode: number) => cat(be.u16(alg), be.u16(bits), be.u16(mode));
  const cases: [string, Uint8Array, number][] = [
    ['RSA-2048', cat(be.u16(TPM_ALG.RSA), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.NULL), be.u16(2048), be.u32(0)), 0],
    ['RSA-3072 storage with AES-128-CFB', cat(be.u16(TPM_ALG.RSA), sym(TPM_ALG.AES, 128, TPM_ALG.CFB), be.u16(TPM_ALG.NULL), be.u16(3072), be.u32(0)), 0],
    ['ECC P-384 ECDSA SHA-384', cat(be.u16(TPM_ALG.ECC), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.ECDSA), be.u16(TPM_ALG.SHA384), be.u16(TPM_ECC_CURVE.NIST_P384), be.u16(TPM_ALG.NULL)), 0],
    ['AES-256-CTR', cat(be.u16(TPM_ALG.SYMCIPHER), sym(TPM_ALG.AES, 256, TPM_ALG.CTR)), 0],
    ['AES-128 mode NULL', cat(be.u16(TPM_ALG.SYMCIPHER), sym(TPM_ALG.AES, 128, TPM_ALG.NULL)), 0],
    ['keyed hash HMAC SHA-512', cat(be.u16(TPM_ALG.KEYEDHASH), be.u16(TPM_ALG.HMAC), be.u16(TPM_ALG.SHA512)), 0],
    ['RSA-1536', cat(be.u16(TPM_ALG.RSA), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.NULL), be.u16(1536), be.u32(0)), rc(TPM_RC.VALUE, { param: 1 })],
    ['ECC BN P-256', cat(be.u16(TPM_ALG.ECC), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.NULL), be.u16(TPM_ECC_CURVE.BN_P256), be.u16(TPM_ALG.NULL)), rc(TPM_RC.CURVE, { param: 1 })],
    ['AES-192', cat(be.u16(TPM_ALG.SYMCIPHER), sym(TPM_ALG.AES, 192, TPM_ALG.CFB)), rc(TPM_RC.VALUE, { param: 1 })],
    ['AES in a mode that is none', cat(be.u16(TPM_ALG.SYMCIPHER), sym(TPM_ALG.AES, 128, TPM_ALG.SHA256)), rc(TPM_RC.MODE, { param: 1 })],
    ['a hash as the object type', cat(be.u16(TPM_ALG.SHA256)), rc(TPM_RC.TYPE, { param: 1 })],
    ['keyed hash with an unknown hash', cat(be.u16(TPM_ALG.KEYEDHASH), be.u16(TPM_ALG.HMAC), be.u16(TPM_ALG.AES)), rc(TPM_RC.HASH, { param: 1 })],
  ];
  test.each(cases)('%s', (_n, parms, expected) => {
    const t = createTestTpm();
    expect(t.call(TPM_CC.TestParms, { params: parms }).rc).toBe(expected);
  });

  test('bytes after the parameters are TPM_RC_SIZE; a truncated one TPM_RC_INSUFFICIENT+P1', () => {
    const t = createTestTpm();
    expect(t.call(TPM_CC.TestParms, { params: cat(be.u16(TPM_ALG.KEYEDHASH), be.u16(TPM_ALG.NULL), unhex('00')) }).rc).toBe(TPM_RC.SIZE);
    expect(t.call(TPM_CC.TestParms, { params: cat(be.u16(TPM_ALG.RSA), be.u16(TPM_ALG.NULL)) }).rc).toBe(rc(TPM_RC.INSUFFICIENT, { param: 1 }));
  });
});

describe('ECSCHNORR signing and verification', () => {
  const CURVES = [
    ['P-256', TPM_ECC_CURVE.NIST_P256, TPM_ALG.SHA256, 'sha256'],
    ['P-384', TPM_ECC_CURVE.NIST_P384, TPM_ALG.SHA384, 'sha384'],
    ['P-521', TPM_ECC_CURVE.NIST_P521, TPM_ALG.SHA512, 'sha512'],
    ['P-256 with SHA-512 (challenge cut to 32 bytes)', TPM_ECC_CURVE.NIST_P256, TPM_ALG.SHA512, 'sha512'],
  ] as const;
  test.each(CURVES)('%s: Sign, then the Schnorr equation holds and VerifySignature accepts it', async (_n, curveID, hashAlg, nodeHash) => {
    const { createHash } = await import('node:crypto');
    const { p256: P256, p384, p521 } = await import('@noble/curves/nist.js');
    const noble = { [TPM_ECC_CURVE.NIST_P256]: P256, [TPM_ECC_CURVE.NIST_P384]: p384, [TPM_ECC_CURVE.NIST_P521]: p521 }[curveID];
    const t = createTestTpm();
    const template = {
      type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign,
      authPolicy: EMPTY, parameters: { symmetric: NO_SYM, scheme: { scheme: TPM_ALG.ECSCHNORR, details: { hashAlg } }, curveID, kdf: NULL_KDF },
      unique: { x: EMPTY, y: EMPTY },
    } as TPMT_PUBLIC;
    const r = t.call(TPM_CC.CreatePrimary, {
      handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(cat(be.b2(EMPTY), be.b2(EMPTY))), encode(TPM2B_PUBLIC, template), be.b2(EMPTY), be.u32(0)),
    });
    expect(r.rc).toBe(0);
    const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
    const pub = TPM2B_PUBLIC.read(new Reader(r.params(1))) as TPMT_PUBLIC;
    const q = pub.unique as { x: Uint8Array; y: Uint8Array };
    const digest = new Uint8Array(createHash(nodeHash).update('schnorr').digest());
    const nullTicket = cat(be.u16(0x8024), be.u32(TPM_RH.NULL), be.u16(0));
    const s = t.call(TPM_CC.Sign, { handles: [handle], passwords: [''], params: cat(be.b2(digest), be.u16(TPM_ALG.NULL), nullTicket) });
    expect(s.rc).toBe(0);
    const sig = TPMT_SIGNATURE.read(new Reader(s.params())) as { sigAlg: number; signature: { hash: number; signatureR: Uint8Array; signatureS: Uint8Array } };
    expect(sig.sigAlg).toBe(TPM_ALG.ECSCHNORR);
    expect(sig.signature.hash).toBe(hashAlg);
    const bytes = Math.ceil(Number(noble!.Point.CURVE().n.toString(2).length) / 8);
    expect(sig.signature.signatureR.length).toBe(bytes);
    expect(sig.signature.signatureS.length).toBe(bytes);
    // Part 1's Schnorr: E = [s]G - [r]Q, and r = H(E.x || digest) cut to the order's length.
    const n = noble!.Point.CURVE().n;
    const rv = BigInt(`0x${hex(sig.signature.signatureR)}`);
    const sv = BigInt(`0x${hex(sig.signature.signatureS)}`);
    const Q = noble!.Point.fromAffine({ x: BigInt(`0x${hex(q.x)}`), y: BigInt(`0x${hex(q.y)}`) });
    const E = noble!.Point.BASE.multiply(sv).add(Q.multiply(n - (rv % n))).toAffine();
    const ex = unhex(E.x.toString(16).padStart(bytes * 2, '0'));
    const challenge = createHash(nodeHash).update(ex).update(digest).digest().subarray(0, bytes);
    expect(BigInt(`0x${challenge.toString('hex')}`)).toBe(rv);
    // The TPM verifies it; a changed digest or a changed s does not.
    const verify = (d: Uint8Array, signature: Uint8Array) => t.call(TPM_CC.VerifySignature, { handles: [handle], params: cat(be.b2(d), signature) }).rc;
    expect(verify(digest, s.params())).toBe(0);
    const other = digest.slice();
    other[0]! ^= 1;
    expect(verify(other, s.params())).toBe(rc(TPM_RC.SIGNATURE, { param: 2 }));
    const tampered = s.params().slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(verify(digest, tampered)).toBe(rc(TPM_RC.SIGNATURE, { param: 2 }));
    // An ECDSA key refuses ECSCHNORR and the other way round.
    expect(t.call(TPM_CC.Sign, { handles: [handle], passwords: [''], params: cat(be.b2(digest), be.u16(TPM_ALG.ECDSA), be.u16(hashAlg), nullTicket) }).rc)
      .toBe(rc(TPM_RC.SCHEME, { param: 2 }));
  });
});

/** EC_Ephemeral: the ephemeral point and its commit count. */
function ephemeral(t: TestTpm, curve: number = TPM_ECC_CURVE.NIST_P256) {
  const r = t.call(TPM_CC.EC_Ephemeral, { params: be.u16(curve) });
  if (r.rc !== 0) return { rc: r.rc, Q: null, counter: -1 };
  const [Q, at] = readPoint(r.params(), 0);
  return { rc: r.rc, Q, counter: (r.params()[at]! << 8) | r.params()[at + 1]! };
}

function zGen2(t: TestTpm, key: number, qsB: Uint8Array, qeB: Uint8Array, scheme: number, counter: number) {
  const r = t.call(TPM_CC.ZGen_2Phase, { handles: [key], passwords: [''], params: cat(qsB, qeB, be.u16(scheme), be.u16(counter)) });
  if (r.rc !== 0) return { rc: r.rc, z1: null, z2: null };
  const [z1, at] = readPoint(r.params(), 0);
  return { rc: r.rc, z1, z2: readPoint(r.params(), at)[0] };
}

/** A party's key pair on P-256, made here with @noble/curves. */
function party() {
  const d = p256.utils.randomSecretKey();
  const q = p256.Point.BASE.multiply(BigInt(`0x${hex(d)}`)).toAffine();
  const pad = (v: bigint) => unhex(v.toString(16).padStart(64, '0'));
  return { d, dBig: BigInt(`0x${hex(d)}`), Q: { x: pad(q.x), y: pad(q.y) } };
}
const mul = (d: bigint, q: { x: Uint8Array; y: Uint8Array }) =>
  p256.Point.fromAffine({ x: BigInt(`0x${hex(q.x)}`), y: BigInt(`0x${hex(q.y)}`) }).multiply(d).toAffine();
const asBig = (q: { x: Uint8Array; y: Uint8Array }) => ({ x: BigInt(`0x${hex(q.x)}`), y: BigInt(`0x${hex(q.y)}`) });

describe('EC_Ephemeral and ZGen_2Phase', () => {
  test('EC_Ephemeral: a point of the curve for each of P-256/384/521, counts 0, 1, 2, …; a curve without support is TPM_RC_CURVE+P1', () => {
    const t = createTestTpm();
    const seen = new Set<string>();
    for (const [i, curve] of [TPM_ECC_CURVE.NIST_P256, TPM_ECC_CURVE.NIST_P384, TPM_ECC_CURVE.NIST_P521, TPM_ECC_CURVE.NIST_P256].entries()) {
      const e = ephemeral(t, curve);
      expect(e.rc).toBe(0);
      expect(e.counter).toBe(i);
      const bytes = { [TPM_ECC_CURVE.NIST_P256]: 32, [TPM_ECC_CURVE.NIST_P384]: 48, [TPM_ECC_CURVE.NIST_P521]: 66 }[curve]!;
      expect(e.Q!.x.length).toBe(bytes);
      expect(e.Q!.y.length).toBe(bytes);
      seen.add(hex(e.Q!.x));
    }
    expect(seen.size).toBe(4);
    const p = ephemeral(t);
    expect(() => p256.Point.fromAffine(asBig(p.Q!)).assertValidity()).not.toThrow();
    expect(ephemeral(t, TPM_ECC_CURVE.BN_P256).rc).toBe(rc(TPM_RC.CURVE, { param: 1 }));
    expect(ephemeral(t, 0x7777).rc).toBe(rc(TPM_RC.CURVE, { param: 1 }));
  });

  test.each([
    ['NULL', { scheme: TPM_ALG.NULL, details: null }],
    ['ECDH', { scheme: TPM_ALG.ECDH, details: { hashAlg: TPM_ALG.SHA256 } }],
  ])('ECDH C(2e, 2s) with a %s-scheme key: outZ1 = dsA·QsB = dsB·QsA and outZ2 = deA·QeB = deB·QeA, computed from B\'s side', (_n, scheme) => {
    const t = createTestTpm();
    const a = party();
    const keyA = loadExternal(t, eccPublic(DECRYPT, a.Q, scheme), a.d);
    for (let round = 0; round < 3; round++) {
      const sB = party();
      const eB = party();
      const eA = ephemeral(t);
      expect(eA.rc).toBe(0);
      const z = zGen2(t, keyA, point(sB.Q), point(eB.Q), TPM_ALG.ECDH, eA.counter);
      expect(z.rc).toBe(0);
      expect(asBig(z.z1!)).toEqual(mul(sB.dBig, a.Q));
      expect(asBig(z.z2!)).toEqual(mul(eB.dBig, eA.Q!));
      // The ephemeral key is used once.
      expect(zGen2(t, keyA, point(sB.Q), point(eB.Q), TPM_ALG.ECDH, eA.counter).rc).toBe(rc(TPM_RC.VALUE, { param: 4 }));
    }
  });

  test('counts stay usable in any order until used; one never given, or of an earlier epoch of the 128 slots, is TPM_RC_VALUE+P4', () => {
    const t = createTestTpm();
    const a = party();
    const keyA = loadExternal(t, eccPublic(DECRYPT, a.Q), a.d);
    const eB = party();
    const first = ephemeral(t);
    const second = ephemeral(t);
    expect(zGen2(t, keyA, point(a.Q), point(eB.Q), TPM_ALG.ECDH, 7).rc).toBe(rc(TPM_RC.VALUE, { param: 4 }));
    const z2 = zGen2(t, keyA, point(a.Q), point(eB.Q), TPM_ALG.ECDH, second.counter);
    expect(asBig(z2.z2!)).toEqual(mul(eB.dBig, second.Q!));
    // Count 0 + 128 shares slot 0 but is of the next epoch, which has not been reached.
    expect(zGen2(t, keyA, point(a.Q), point(eB.Q), TPM_ALG.ECDH, first.counter + 128).rc).toBe(rc(TPM_RC.VALUE, { param: 4 }));
    const z1 = zGen2(t, keyA, point(a.Q), point(eB.Q), TPM_ALG.ECDH, first.counter);
    expect(asBig(z1.z2!)).toEqual(mul(eB.dBig, first.Q!));
    // 130 more counts: count 2's slot is given again to count 130, so count 2 is of a past epoch.
    const third = ephemeral(t);
    expect(third.counter).toBe(2);
    for (let i = 0; i < 128; i++) ephemeral(t);
    expect(zGen2(t, keyA, point(a.Q), point(eB.Q), TPM_ALG.ECDH, 2).rc).toBe(rc(TPM_RC.VALUE, { param: 4 }));
    expect(zGen2(t, keyA, point(a.Q), point(eB.Q), TPM_ALG.ECDH, 130).rc).toBe(0);
  });

  test('a commitment survives a Restart through the volatile state and dies with a TPM Reset', () => {
    const t = createTestTpm();
    const a = party();
    const eB = party();
    const e1 = ephemeral(t);
    const e2 = ephemeral(t);
    const blob = t.engine.volatileBlob();
    t.powerCycle();
    t.engine.restoreVolatile(blob);
    const keyA = loadExternal(t, eccPublic(DECRYPT, a.Q), a.d);
    expect(asBig(zGen2(t, keyA, point(a.Q), point(eB.Q), TPM_ALG.ECDH, e1.counter).z2!)).toEqual(mul(eB.dBig, e1.Q!));
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(0) }).rc).toBe(0);
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    const keyA2 = loadExternal(t, eccPublic(DECRYPT, a.Q), a.d);
    expect(zGen2(t, keyA2, point(a.Q), point(eB.Q), TPM_ALG.ECDH, e2.counter).rc).toBe(rc(TPM_RC.VALUE, { param: 4 }));
    expect(ephemeral(t).counter).toBe(0);
  });

  test('each RC with its position, in the reference\'s order', () => {
    const t = createTestTpm();
    const a = party();
    const sB = party();
    const e = ephemeral(t);
    const off = point({ x: sB.Q.x, y: sB.Q.x });
    const nullKey = loadExternal(t, eccPublic(DECRYPT, a.Q), a.d);
    // ECMQV and SM2 are not implemented: refused by the parameter's type.
    expect(zGen2(t, nullKey, point(sB.Q), point(sB.Q), TPM_ALG.ECMQV, e.counter).rc).toBe(rc(TPM_RC.SCHEME, { param: 3 }));
    expect(zGen2(t, nullKey, point(sB.Q), point(sB.Q), TPM_ALG.SM2, e.counter).rc).toBe(rc(TPM_RC.SCHEME, { param: 3 }));
    // Neither the key nor the command names a scheme.
    expect(zGen2(t, nullKey, off, off, TPM_ALG.NULL, e.counter).rc).toBe(rc(TPM_RC.SCHEME, { param: 3 }));
    expect(zGen2(t, nullKey, off, off, TPM_ALG.ECDH, 99).rc).toBe(rc(TPM_RC.ECC_POINT, { param: 1 }));
    expect(zGen2(t, nullKey, point(sB.Q), off, TPM_ALG.ECDH, 99).rc).toBe(rc(TPM_RC.ECC_POINT, { param: 2 }));
    expect(zGen2(t, nullKey, point(sB.Q), be.u16(0), TPM_ALG.ECDH, 99).rc).toBe(rc(TPM_RC.SIZE, { param: 2 }));
    expect(zGen2(t, nullKey, point(sB.Q), point(sB.Q), TPM_ALG.ECDH, 99).rc).toBe(rc(TPM_RC.VALUE, { param: 4 }));
    // A key with the ECDH scheme wants inScheme ECDH.
    const ecdhKey = loadExternal(t, eccPublic(DECRYPT, a.Q, { scheme: TPM_ALG.ECDH, details: { hashAlg: TPM_ALG.SHA256 } }), a.d);
    expect(zGen2(t, ecdhKey, off, off, TPM_ALG.NULL, 99).rc).toBe(rc(TPM_RC.SCHEME, { param: 3 }));
    // Attributes come before the scheme: a signing key, a key that is both.
    const signer = loadExternal(t, eccPublic(A.userWithAuth | A.sign, a.Q), a.d);
    expect(zGen2(t, signer, off, off, TPM_ALG.ECMQV + 0x100, 99).rc).toBe(rc(TPM_RC.SCHEME, { param: 3 })); // unmarshalling first
    expect(zGen2(t, signer, off, off, TPM_ALG.NULL, 99).rc).toBe(rc(TPM_RC.ATTRIBUTES, { handle: 1 }));
    // The commitment was not used by any of these.
    expect(zGen2(t, nullKey, point(sB.Q), point(sB.Q), TPM_ALG.ECDH, e.counter).rc).toBe(0);
  });
});
