/**
 * Part 3 §13 Duplicate, Rewrap and Import on the in-process engine. The wrappers are checked
 * with node:crypto and @noble/curves from Part 1 §23.3: a bare duplicate is the sensitive area
 * whose scalar gives the key's public point; the inner wrapper decrypts (AES-CFB, zero IV) to
 * H(plain || Name) || plain; a key made in the test, wrapped inner and outer (ECDH + KDFe
 * "DUPLICATE") by the test, imports, loads and signs. Every refusal has the reference's code.
 */
import { createCipheriv, createDecipheriv, createECDH, randomBytes } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH, TPM_ST } from '../../../src/tpm/constants.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { objectName, TPM2B_PUBLIC, TPMA_OBJECT as A, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { TPMT_TK_HASHCHECK } from '../../../src/tpm/marshal/structures.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import { callWithSessions, digest, kdfa, kdfe, mac, startSession } from '../../helpers/session-client.js';

const P = (rc: number, n: number) => rc | 0x40 | (n << 8);
const H = (rc: number, n: number) => rc | (n << 8);

const AES128 = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const NULL_SYM = { algorithm: TPM_ALG.NULL, keyBits: null, mode: null };
const NULL_SCHEME = { scheme: TPM_ALG.NULL, details: null };
const ECDSA = { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } };
/** PolicyCommandCode(TPM2_Duplicate) from an empty policy: H(0^32 || CC_PolicyCommandCode || CC_Duplicate). */
const DUP_POLICY = digest(TPM_ALG.SHA256, new Uint8Array(32), be.u32(TPM_CC.PolicyCommandCode), be.u32(TPM_CC.Duplicate));

function ecc(attributes: number, symmetric: object, scheme: object, authPolicy: Uint8Array = new Uint8Array(0), unique: { x: Uint8Array; y: Uint8Array } = { x: new Uint8Array(0), y: new Uint8Array(0) }): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: attributes, authPolicy,
    parameters: { symmetric, scheme, curveID: 0x0003, kdf: NULL_SCHEME }, unique,
  } as TPMT_PUBLIC;
}
const STORAGE = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.decrypt | A.noDA;
const storage = () => ecc(STORAGE, AES128, NULL_SCHEME);
const DUPLICABLE = A.sensitiveDataOrigin | A.userWithAuth | A.sign;
const duplicable = (extra = 0) => ecc(DUPLICABLE | extra, NULL_SYM, ECDSA, DUP_POLICY);

interface Loaded {
  handle: number;
  pub: TPMT_PUBLIC;
  name: Uint8Array;
}
const point = (l: { pub: TPMT_PUBLIC }) => l.pub.unique as { x: Uint8Array<ArrayBuffer>; y: Uint8Array<ArrayBuffer> };
const handleOf = (body: Uint8Array) => new DataView(body.buffer, body.byteOffset).getUint32(0);
const sensitiveCreate = (auth: string) => be.b2(cat(be.b2(auth), be.b2('')));

function primary(t: TestTpm, hierarchy: number, template = storage()): Loaded {
  const r = t.call(TPM_CC.CreatePrimary, {
    handles: [hierarchy], passwords: [''],
    params: cat(sensitiveCreate(''), encode(TPM2B_PUBLIC, template), be.b2(''), be.u32(0)),
  });
  expect(r.rc).toBe(0);
  const pub = TPM2B_PUBLIC.read(new Reader(r.params(1)));
  return { handle: handleOf(r.body), pub, name: objectName(pub) };
}

/** Create + Load under a parent; the key's password is "kauth". */
function child(t: TestTpm, parent: Loaded, template: TPMT_PUBLIC): Loaded & { rc: number } {
  const c = t.call(TPM_CC.Create, {
    handles: [parent.handle], passwords: [''],
    params: cat(sensitiveCreate('kauth'), encode(TPM2B_PUBLIC, template), be.b2(''), be.u32(0)),
  });
  if (c.rc !== 0) return { rc: c.rc } as Loaded & { rc: number };
  const rd = new Reader(c.params());
  const priv = rd.bytes(rd.u16()).slice();
  const pub = TPM2B_PUBLIC.read(rd);
  const l = t.call(TPM_CC.Load, { handles: [parent.handle], passwords: [''], params: cat(be.b2(priv), encode(TPM2B_PUBLIC, pub)) });
  expect(l.rc).toBe(0);
  return { rc: 0, handle: handleOf(l.body), pub, name: objectName(pub) };
}

const flush = (t: TestTpm, h: number) => expect(t.call(TPM_CC.FlushContext, { params: be.u32(h) }).rc).toBe(0);

interface Dup {
  rc: number;
  keyOut: Uint8Array;
  duplicate: Uint8Array;
  seed: Uint8Array;
}

/** TPM2_Duplicate authorized by a policy session with PolicyCommandCode(Duplicate). */
function duplicate(t: TestTpm, object: number, newParent: number, keyIn: Uint8Array, sym: 'aes' | 'null'): Dup {
  const s = startSession(t, { type: 1 });
  expect(s.rc).toBe(0);
  expect(t.call(TPM_CC.PolicyCommandCode, { handles: [s.handle], params: be.u32(TPM_CC.Duplicate) }).rc).toBe(0);
  const symDef = sym === 'aes' ? cat(be.u16(TPM_ALG.AES), be.u16(128), be.u16(TPM_ALG.CFB)) : be.u16(TPM_ALG.NULL);
  const { r } = callWithSessions(t, { code: TPM_CC.Duplicate, handles: [object, newParent], params: cat(be.b2(keyIn), symDef) }, [{ session: s, attrs: 0 }]);
  if (r.rc !== 0) {
    t.call(TPM_CC.FlushContext, { params: be.u32(s.handle) });
    return { rc: r.rc, keyOut: new Uint8Array(0), duplicate: new Uint8Array(0), seed: new Uint8Array(0) };
  }
  const rd = new Reader(r.params());
  return { rc: 0, keyOut: rd.bytes(rd.u16()).slice(), duplicate: rd.bytes(rd.u16()).slice(), seed: rd.bytes(rd.u16()).slice() };
}

function importTo(t: TestTpm, parent: number, key: Uint8Array, pub: TPMT_PUBLIC, dup: Uint8Array, seed: Uint8Array, sym: 'aes' | 'null', auth = '') {
  const symDef = sym === 'aes' ? cat(be.u16(TPM_ALG.AES), be.u16(128), be.u16(TPM_ALG.CFB)) : be.u16(TPM_ALG.NULL);
  const r = t.call(TPM_CC.Import, {
    handles: [parent], passwords: [auth],
    params: cat(be.b2(key), encode(TPM2B_PUBLIC, pub), be.b2(dup), be.b2(seed), symDef),
  });
  if (r.rc !== 0) return { rc: r.rc, outPrivate: new Uint8Array(0) };
  const p = r.params();
  return { rc: 0, outPrivate: p.slice(2, 2 + ((p[0]! << 8) | p[1]!)) };
}

function loadAndSign(t: TestTpm, parent: number, priv: Uint8Array, pub: TPMT_PUBLIC, auth: string): boolean {
  const l = t.call(TPM_CC.Load, { handles: [parent], passwords: [''], params: cat(be.b2(priv), encode(TPM2B_PUBLIC, pub)) });
  expect(l.rc).toBe(0);
  const handle = handleOf(l.body);
  const msg = digest(TPM_ALG.SHA256, new TextEncoder().encode('signed by the imported key'));
  const ticket = encode(TPMT_TK_HASHCHECK, { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });
  const s = t.call(TPM_CC.Sign, { handles: [handle], passwords: [auth], params: cat(be.b2(msg), be.u16(TPM_ALG.ECDSA), be.u16(TPM_ALG.SHA256), ticket) });
  expect(s.rc).toBe(0);
  flush(t, handle);
  const rd = new Reader(s.params());
  rd.u16();
  rd.u16();
  const r = rd.bytes(rd.u16());
  const sv = rd.bytes(rd.u16());
  const q = point({ pub });
  return p256.verify(cat(r, sv), msg, cat(new Uint8Array([4]), q.x, q.y), { prehash: false, lowS: false });
}

/** The plain sensitive area of a bare duplicate: UINT16 size || TPMT_SENSITIVE. */
function parsePlain(plain: Uint8Array) {
  const rd = new Reader(plain);
  const size = rd.u16();
  expect(size + 2).toBe(plain.length);
  const type = rd.u16();
  const authValue = rd.bytes(rd.u16()).slice();
  const seedValue = rd.bytes(rd.u16()).slice();
  const d = rd.bytes(rd.u16()).slice();
  expect(rd.remaining).toBe(0);
  return { type, authValue, seedValue, d };
}

const cfb = (key: Uint8Array, data: Uint8Array, encrypt: boolean) => {
  const c = encrypt ? createCipheriv(`aes-${key.length * 8}-cfb`, key, Buffer.alloc(16)) : createDecipheriv(`aes-${key.length * 8}-cfb`, key, Buffer.alloc(16));
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
};

describe('Duplicate', () => {
  test('without wrappers: the sensitive area itself, whose scalar gives the public point; with an inner wrapper: H(plain || Name) || plain under AES-CFB', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.OWNER);
    const k = child(t, p, duplicable());
    const bare = duplicate(t, k.handle, TPM_RH.NULL, new Uint8Array(0), 'null');
    expect(bare.rc).toBe(0);
    expect(bare.seed.length).toBe(0);
    expect(bare.keyOut.length).toBe(0);
    const s = parsePlain(bare.duplicate);
    expect(s.type).toBe(TPM_ALG.ECC);
    expect(hex(s.authValue)).toBe(hex(cat(new TextEncoder().encode('kauth'), new Uint8Array(27))));
    const q = p256.Point.BASE.multiply(BigInt(`0x${hex(s.d)}`));
    expect(hex(q.toBytes(false))).toBe(hex(cat(new Uint8Array([4]), point(k).x, point(k).y)));

    const key = new Uint8Array(randomBytes(16));
    const given = duplicate(t, k.handle, TPM_RH.NULL, key, 'aes');
    expect(given.rc).toBe(0);
    expect(given.keyOut.length).toBe(0); // the caller's key is not echoed
    const plain = cfb(key, given.duplicate, false);
    expect(hex(plain.subarray(0, 2))).toBe('0020');
    expect(hex(plain.subarray(2, 34))).toBe(hex(digest(TPM_ALG.SHA256, plain.subarray(34), k.name)));
    expect(hex(plain.subarray(34))).toBe(hex(bare.duplicate));

    const generated = duplicate(t, k.handle, TPM_RH.NULL, new Uint8Array(0), 'aes');
    expect(generated.keyOut.length).toBe(16);
    expect(hex(cfb(generated.keyOut, generated.duplicate, false).subarray(34))).toBe(hex(bare.duplicate));
  });

  test('inner and outer wrapper to another parent: Import and Load there, the key signs; every changed byte is TPM_RC_INTEGRITY+P3', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.OWNER);
    const p2 = primary(t, TPM_RH.ENDORSEMENT);
    const k = child(t, p, duplicable());
    const key = new Uint8Array(randomBytes(16));
    const d = duplicate(t, k.handle, p2.handle, key, 'aes');
    expect(d.rc).toBe(0);
    expect(d.seed.length).toBe(2 + 32 + 2 + 32); // an ephemeral P-256 point
    flush(t, k.handle);
    const imp = importTo(t, p2.handle, key, k.pub, d.duplicate, d.seed, 'aes');
    expect(imp.rc).toBe(0);
    expect(loadAndSign(t, p2.handle, imp.outPrivate, k.pub, 'kauth')).toBe(true);
    // The new private belongs to p2 only.
    expect(t.call(TPM_CC.Load, { handles: [p.handle], passwords: [''], params: cat(be.b2(imp.outPrivate), encode(TPM2B_PUBLIC, k.pub)) }).rc).toBe(P(TPM_RC.INTEGRITY, 1));

    for (let i = 2; i < d.duplicate.length; i += 3) {
      const bad = d.duplicate.slice();
      bad[i]! ^= 0x04;
      expect(importTo(t, p2.handle, key, k.pub, bad, d.seed, 'aes').rc, `byte ${i}`).toBe(P(TPM_RC.INTEGRITY, 3));
    }
    const wrongKey = key.slice();
    wrongKey[0]! ^= 1;
    // The wrong key decrypts the inner integrity's size field to noise: almost always more than
    // a digest (an unmarshalling TPM_RC_SIZE, as the reference's CheckInnerIntegrity returns it).
    expect([P(TPM_RC.SIZE, 3), P(TPM_RC.INTEGRITY, 3)]).toContain(importTo(t, p2.handle, wrongKey, k.pub, d.duplicate, d.seed, 'aes').rc);
    // Under the wrong parent the seed decrypts to another value: the outer integrity fails.
    expect(importTo(t, p.handle, key, k.pub, d.duplicate, d.seed, 'aes').rc).toBe(P(TPM_RC.INTEGRITY, 3));
    const badSeed = d.seed.slice();
    badSeed[5]! ^= 1;
    expect(importTo(t, p2.handle, key, k.pub, d.duplicate, badSeed, 'aes').rc).toBe(P(TPM_RC.ECC_POINT, 4));
    // Another public area (the Name is in both wrappers).
    const otherPub = { ...k.pub, objectAttributes: k.pub.objectAttributes | A.noDA };
    expect(importTo(t, p2.handle, key, otherPub, d.duplicate, d.seed, 'aes').rc).toBe(P(TPM_RC.INTEGRITY, 3));
  });

  test('refusals in the reference order', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.OWNER);
    const fixed = child(t, p, ecc(A.fixedTPM | A.fixedParent | DUPLICABLE, NULL_SYM, ECDSA, DUP_POLICY));
    expect(duplicate(t, fixed.handle, TPM_RH.NULL, new Uint8Array(0), 'null').rc).toBe(H(TPM_RC.ATTRIBUTES, 1));
    flush(t, fixed.handle);
    const enc = child(t, p, duplicable(A.encryptedDuplication));
    expect(duplicate(t, enc.handle, p.handle, new Uint8Array(0), 'null').rc).toBe(P(TPM_RC.SYMMETRIC, 2));
    expect(duplicate(t, enc.handle, TPM_RH.NULL, new Uint8Array(0), 'aes').rc).toBe(H(TPM_RC.HIERARCHY, 2));
    expect(duplicate(t, enc.handle, p.handle, new Uint8Array(5), 'aes').rc).toBe(P(TPM_RC.SIZE, 1));
    expect(duplicate(t, enc.handle, p.handle, new Uint8Array(16), 'aes').rc).toBe(0);
    // A signing key is no new parent.
    const signer = child(t, p, ecc(A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign, NULL_SYM, ECDSA));
    expect(duplicate(t, enc.handle, signer.handle, new Uint8Array(16), 'aes').rc).toBe(H(TPM_RC.TYPE, 2));
    flush(t, signer.handle);
    const k = child(t, p, duplicable());
    expect(duplicate(t, k.handle, TPM_RH.NULL, new Uint8Array(16), 'null').rc).toBe(P(TPM_RC.SIZE, 1));
    // A password is no DUP authorization: a policy session is required.
    const pw = t.call(TPM_CC.Duplicate, { handles: [k.handle, TPM_RH.NULL], passwords: ['kauth'], params: cat(be.b2(''), be.u16(TPM_ALG.NULL)) });
    expect(pw.rc).toBe(TPM_RC.AUTH_TYPE);
  });
});

describe('Duplicate authorized by PolicyDuplicationSelect', () => {
  test('only to the new parent the policy names; another parent is TPM_RC_POLICY_FAIL', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.OWNER);
    const p2 = primary(t, TPM_RH.ENDORSEMENT);
    // H(0^32 || CC_PolicyDuplicationSelect || newParentName || NO): the object's Name left out.
    const policy = digest(TPM_ALG.SHA256, new Uint8Array(32), be.u32(TPM_CC.PolicyDuplicationSelect), p2.name, be.u8(0));
    const k = child(t, p, ecc(DUPLICABLE, NULL_SYM, ECDSA, policy));
    const dupTo = (newParent: Loaded) => {
      const s = startSession(t, { type: 1 });
      const sel = t.call(TPM_CC.PolicyDuplicationSelect, { handles: [s.handle], params: cat(be.b2(k.name), be.b2(p2.name), be.u8(0)) });
      expect(sel.rc).toBe(0);
      const { r } = callWithSessions(t, { code: TPM_CC.Duplicate, handles: [k.handle, newParent.handle], params: cat(be.b2(''), be.u16(TPM_ALG.NULL)) }, [{ session: s, attrs: 0 }]);
      if (r.rc !== 0) t.call(TPM_CC.FlushContext, { params: be.u32(s.handle) });
      return r.rc;
    };
    expect(dupTo(p2)).toBe(0);
    expect(dupTo(p)).toBe(TPM_RC.POLICY_FAIL | 0x100 | 0x800);
  });
});

describe('Import of a key made outside the TPM', () => {
  /** A P-256 signing key made with node:crypto, in the wrappers asked for, built from Part 1 §23.3. */
  function external(parent: Loaded, opts: { inner: Uint8Array | null; outer: boolean; attributes?: number }) {
    const e = createECDH('prime256v1');
    e.generateKeys();
    const pubBytes = new Uint8Array(e.getPublicKey());
    const pub = ecc(opts.attributes ?? A.userWithAuth | A.sign, NULL_SYM, ECDSA, new Uint8Array(0), { x: pubBytes.slice(1, 33), y: pubBytes.slice(33) });
    const name = objectName(pub);
    const tpmt = cat(be.u16(TPM_ALG.ECC), be.b2(new TextEncoder().encode('xauth')), be.b2(''), be.b2(new Uint8Array(e.getPrivateKey())));
    let blob: Uint8Array = cat(be.u16(tpmt.length), tpmt);
    if (opts.inner) blob = cfb(opts.inner, cat(be.b2(digest(TPM_ALG.SHA256, blob, name)), blob), true);
    let seed: Uint8Array = new Uint8Array(0);
    if (opts.outer) {
      const pp = point(parent);
      const eph = createECDH('prime256v1');
      eph.generateKeys();
      const q = new Uint8Array(eph.getPublicKey());
      const z = new Uint8Array(eph.computeSecret(cat(new Uint8Array([4]), pp.x, pp.y)));
      const s = kdfe(TPM_ALG.SHA256, z, 'DUPLICATE', q.subarray(1, 33), pp.x, 256);
      const enc = cfb(kdfa(TPM_ALG.SHA256, s, 'STORAGE', name, new Uint8Array(0), 128), blob, true);
      const hmac = mac(TPM_ALG.SHA256, kdfa(TPM_ALG.SHA256, s, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256), enc, name);
      blob = cat(be.b2(hmac), enc);
      seed = cat(be.b2(q.subarray(1, 33)), be.b2(q.subarray(33)));
    }
    return { pub, blob, seed };
  }

  test('bare, inner only, outer only and both: imports, loads and signs', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.OWNER);
    const key = new Uint8Array(randomBytes(16));
    for (const [inner, outer] of [[null, false], [key, false], [null, true], [key, true]] as const) {
      const x = external(p, { inner, outer });
      const imp = importTo(t, p.handle, inner ?? new Uint8Array(0), x.pub, x.blob, x.seed, inner ? 'aes' : 'null');
      expect(imp.rc, `inner ${!!inner} outer ${outer}`).toBe(0);
      expect(loadAndSign(t, p.handle, imp.outPrivate, x.pub, 'xauth')).toBe(true);
    }
  });

  test('refusals in the reference order', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.OWNER);
    const key = new Uint8Array(16);
    const x = external(p, { inner: key, outer: true });
    const fixedPub = { ...x.pub, objectAttributes: x.pub.objectAttributes | A.fixedTPM | A.fixedParent };
    expect(importTo(t, p.handle, key, fixedPub, x.blob, x.seed, 'aes').rc).toBe(P(TPM_RC.ATTRIBUTES, 2));
    expect(importTo(t, p.handle, key.subarray(1), x.pub, x.blob, x.seed, 'aes').rc).toBe(P(TPM_RC.SIZE, 1));
    expect(importTo(t, p.handle, key, x.pub, x.blob, x.seed, 'null').rc).toBe(P(TPM_RC.SIZE, 1));
    const ed = external(p, { inner: key, outer: true, attributes: A.userWithAuth | A.sign | A.encryptedDuplication });
    expect(importTo(t, p.handle, new Uint8Array(0), ed.pub, ed.blob, ed.seed, 'null').rc).toBe(P(TPM_RC.ATTRIBUTES, 1));
    expect(importTo(t, p.handle, key, ed.pub, ed.blob, new Uint8Array(0), 'aes').rc).toBe(P(TPM_RC.ATTRIBUTES, 4));
    expect(importTo(t, p.handle, key, ed.pub, ed.blob, ed.seed, 'aes').rc).toBe(0);
    // A signing key is no parent.
    const signer = child(t, p, ecc(A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign, NULL_SYM, ECDSA));
    expect(importTo(t, signer.handle, key, x.pub, x.blob, x.seed, 'aes', 'kauth').rc).toBe(H(TPM_RC.TYPE, 1));
    // A scalar that does not give the public point: caught under a fixedTPM parent.
    const y = external(p, { inner: null, outer: false });
    expect(importTo(t, p.handle, new Uint8Array(0), x.pub, y.blob, new Uint8Array(0), 'null').rc).toBe(TPM_RC.BINDING);
  });
});

describe('Rewrap', () => {
  test('moves the outer wrapper from one parent to another; refusals', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.OWNER);
    const p2 = primary(t, TPM_RH.ENDORSEMENT);
    const k = child(t, p, duplicable());
    const d = duplicate(t, k.handle, p.handle, new Uint8Array(0), 'null');
    expect(d.rc).toBe(0);
    flush(t, k.handle);
    const rewrap = (oldParent: number, seed: Uint8Array) =>
      t.call(TPM_CC.Rewrap, { handles: [oldParent, p2.handle], passwords: [''], params: cat(be.b2(d.duplicate), be.b2(k.name), be.b2(seed)) });
    const r = rewrap(p.handle, d.seed);
    expect(r.rc).toBe(0);
    const rd = new Reader(r.params());
    const outDuplicate = rd.bytes(rd.u16()).slice();
    const outSymSeed = rd.bytes(rd.u16()).slice();
    // Still an outer wrapper of the same payload size; it now opens under p2 only.
    expect(outDuplicate.length).toBe(d.duplicate.length);
    expect(importTo(t, p.handle, new Uint8Array(0), k.pub, outDuplicate, outSymSeed, 'null').rc).toBe(P(TPM_RC.INTEGRITY, 3));
    const imp = importTo(t, p2.handle, new Uint8Array(0), k.pub, outDuplicate, outSymSeed, 'null');
    expect(imp.rc).toBe(0);
    expect(loadAndSign(t, p2.handle, imp.outPrivate, k.pub, 'kauth')).toBe(true);

    expect(rewrap(p.handle, new Uint8Array(0)).rc).toBe(H(TPM_RC.HANDLE, 1));
    const badSeed = d.seed.slice();
    badSeed[5]! ^= 1;
    expect(rewrap(p.handle, badSeed).rc).toBe(P(TPM_RC.VALUE, 3));
    const badDup = t.call(TPM_CC.Rewrap, { handles: [p.handle, p2.handle], passwords: [''], params: cat(be.b2(d.duplicate), be.b2(p.name), be.b2(d.seed)) });
    expect(badDup.rc).toBe(P(TPM_RC.INTEGRITY, 1));
  });
});
