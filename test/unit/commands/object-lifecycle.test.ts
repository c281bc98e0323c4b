/**
 * Part 3 §12 Create, Load, LoadExternal, CreateLoaded, Unseal, ObjectChangeAuth on the
 * in-process engine: what comes back is recomputed in the test (Names, qualified Names,
 * creation tickets), and every refusal has the reference's code and position.
 */
import { createHash, createHmac } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { decode, encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC, TPMA_OBJECT as A, TPMS_CREATION_DATA, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { TPM2B_SENSITIVE } from '../../../src/tpm/marshal/sensitive.js';
import { be, cat, createTestTpm, hex, unhex, type TestTpm } from '../../helpers/engine.js';

const NULL_SYM = { algorithm: TPM_ALG.NULL, keyBits: null, mode: null };
const AES128 = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const FIXED = A.fixedTPM | A.fixedParent | A.userWithAuth;

function ecc(attributes: number, symmetric: object = NULL_SYM, scheme: object = { scheme: TPM_ALG.NULL, details: null }): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attributes,
    authPolicy: new Uint8Array(0),
    parameters: { symmetric, scheme, curveID: 0x0003, kdf: { scheme: TPM_ALG.NULL, details: null } },
    unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
  } as TPMT_PUBLIC;
}
const storageTemplate = () => ecc(FIXED | A.sensitiveDataOrigin | A.restricted | A.decrypt | A.noDA, AES128);
const signingTemplate = () => ecc(FIXED | A.sensitiveDataOrigin | A.sign, NULL_SYM, { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } });
function keyedHash(attributes: number, scheme: object = { scheme: TPM_ALG.NULL, details: null }): TPMT_PUBLIC {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attributes,
    authPolicy: new Uint8Array(0),
    parameters: { scheme },
    unique: new Uint8Array(0),
  } as TPMT_PUBLIC;
}
const sealTemplate = () => keyedHash(FIXED);

const sha256 = (...p: Uint8Array[]) => {
  const h = createHash('sha256');
  p.forEach((x) => h.update(x));
  return new Uint8Array(h.digest());
};
const sensitiveCreate = (auth = '', data: Uint8Array = new Uint8Array(0)) => be.b2(cat(be.b2(auth), be.b2(data)));
const handleOf = (body: Uint8Array) => new DataView(body.buffer, body.byteOffset).getUint32(0);

function primary(t: TestTpm, template = storageTemplate()): number {
  const r = t.call(TPM_CC.CreatePrimary, {
    handles: [TPM_RH.OWNER],
    passwords: [''],
    params: cat(sensitiveCreate(), encode(TPM2B_PUBLIC, template), be.b2(''), be.u32(0)),
  });
  expect(r.rc).toBe(0);
  return handleOf(r.body);
}

interface Created {
  rc: number;
  private: Uint8Array;
  public: TPMT_PUBLIC;
  publicBytes: Uint8Array;
  creationData: Uint8Array;
  creationHash: Uint8Array;
  ticket: { tag: number; hierarchy: number; digest: Uint8Array };
}

function create(t: TestTpm, parent: number, template: TPMT_PUBLIC, auth = '', data?: Uint8Array, parentAuth = ''): Created {
  const r = t.call(TPM_CC.Create, {
    handles: [parent],
    passwords: [parentAuth],
    params: cat(sensitiveCreate(auth, data), encode(TPM2B_PUBLIC, template), be.b2('out'), be.u32(0)),
  });
  if (r.rc !== 0) return { rc: r.rc } as Created;
  const rd = new Reader(r.params());
  const priv = rd.bytes(rd.u16()).slice();
  const pubStart = rd.pos;
  const pub = TPM2B_PUBLIC.read(rd);
  const publicBytes = r.params().slice(pubStart, rd.pos);
  const creationData = rd.bytes(rd.u16()).slice();
  const creationHash = rd.bytes(rd.u16()).slice();
  const ticket = { tag: rd.u16(), hierarchy: rd.u32(), digest: rd.bytes(rd.u16()).slice() };
  return { rc: 0, private: priv, public: pub, publicBytes, creationData, creationHash, ticket };
}

function load(t: TestTpm, parent: number, c: { private: Uint8Array; publicBytes: Uint8Array }) {
  const r = t.call(TPM_CC.Load, { handles: [parent], passwords: [''], params: cat(be.b2(c.private), c.publicBytes) });
  if (r.rc !== 0) return { rc: r.rc, handle: 0, name: new Uint8Array(0) };
  const rd = new Reader(r.params(1));
  return { rc: 0, handle: handleOf(r.body), name: rd.bytes(rd.u16()).slice() };
}

function readPublic(t: TestTpm, handle: number) {
  const r = t.call(TPM_CC.ReadPublic, { handles: [handle] });
  const rd = new Reader(r.body);
  TPM2B_PUBLIC.read(rd);
  return { name: rd.bytes(rd.u16()).slice(), qualifiedName: rd.bytes(rd.u16()).slice() };
}

describe('Create and Load', () => {
  test('an ECC signing key: Name, qualified Name, creation data and ticket as the spec defines them', () => {
    const t = createTestTpm();
    const parent = primary(t);
    const c = create(t, parent, signingTemplate());
    expect(c.rc).toBe(0);
    const { x, y } = c.public.unique as { x: Uint8Array; y: Uint8Array };
    expect(() => p256.Point.fromBytes(cat(new Uint8Array([4]), x, y))).not.toThrow();
    const name = cat(unhex('000b'), sha256(c.publicBytes.subarray(2)));
    const parentNames = readPublic(t, parent);
    const cd = decode(TPMS_CREATION_DATA, c.creationData);
    expect(cd.parentNameAlg).toBe(TPM_ALG.SHA256);
    expect(hex(cd.parentName)).toBe(hex(parentNames.name));
    expect(hex(cd.parentQualifiedName)).toBe(hex(parentNames.qualifiedName));
    expect(hex(c.creationHash)).toBe(hex(sha256(c.creationData)));
    const proof = t.engine.tpm.persistent.shProof;
    const ticket = createHmac('sha512', proof).update(unhex('8021')).update(name).update(c.creationHash).digest('hex');
    expect(c.ticket).toEqual({ tag: 0x8021, hierarchy: TPM_RH.OWNER, digest: unhex(ticket) });

    const l = load(t, parent, c);
    expect(l.rc).toBe(0);
    expect(l.handle).toBe(0x80000001);
    expect(hex(l.name)).toBe(hex(name));
    const qn = readPublic(t, l.handle).qualifiedName;
    expect(hex(qn)).toBe('000b' + hex(sha256(parentNames.qualifiedName, name)));
    // Two keys from one template differ: ordinary keys are random, not derived.
    expect(hex(create(t, parent, signingTemplate()).publicBytes)).not.toBe(hex(c.publicBytes));
  });

  test('sealed data: Create -i, Load, Unseal gives it back; the authValue guards it', () => {
    const t = createTestTpm();
    const parent = primary(t);
    const secret = new TextEncoder().encode('my secret');
    const c = create(t, parent, sealTemplate(), 'pw', secret);
    expect(c.rc).toBe(0);
    const l = load(t, parent, c);
    const u = t.call(TPM_CC.Unseal, { handles: [l.handle], passwords: ['pw'] });
    expect(u.rc).toBe(0);
    expect(new TextDecoder().decode(u.params().subarray(2))).toBe('my secret');
    expect(t.call(TPM_CC.Unseal, { handles: [l.handle], passwords: ['nope'] }).rc).toBe(0x98e);
    // Unseal of a key that signs: attributes; of an ECC key: type.
    const k = load(t, parent, create(t, parent, signingTemplate()));
    expect(t.call(TPM_CC.Unseal, { handles: [k.handle], passwords: [''] }).rc).toBe(0x18a);
    t.call(TPM_CC.FlushContext, { params: be.u32(k.handle) });
    const h = load(t, parent, create(t, parent, keyedHash(FIXED | A.sensitiveDataOrigin | A.sign, { scheme: TPM_ALG.HMAC, details: { hashAlg: TPM_ALG.SHA256 } })));
    expect(t.call(TPM_CC.Unseal, { handles: [h.handle], passwords: [''] }).rc).toBe(0x182);
  });

  test('AES and HMAC keys under an AES-128 storage parent load; unique is bound to the secret', () => {
    const t = createTestTpm();
    const parent = primary(t);
    const aes = create(t, parent, { ...keyedHash(0), type: TPM_ALG.SYMCIPHER, objectAttributes: FIXED | A.sensitiveDataOrigin | A.decrypt | A.sign, parameters: { sym: AES128 } } as TPMT_PUBLIC);
    expect(aes.rc).toBe(0);
    expect(load(t, parent, aes).rc).toBe(0);
    const hmacKey = create(t, parent, keyedHash(FIXED | A.sensitiveDataOrigin | A.sign, { scheme: TPM_ALG.HMAC, details: { hashAlg: TPM_ALG.SHA256 } }));
    expect(hmacKey.rc).toBe(0);
    expect(load(t, parent, hmacKey).rc).toBe(0);
    expect(load(t, parent, hmacKey).rc).toBe(TPM_RC.OBJECT_MEMORY);
  });

  test('a changed byte, another parent or another public area is TPM_RC_INTEGRITY and nothing loads', () => {
    const t = createTestTpm();
    const parent = primary(t);
    const c = create(t, parent, sealTemplate(), '', new Uint8Array([1, 2, 3]));
    const bad = c.private.slice();
    bad[40]! ^= 0x80;
    expect(load(t, parent, { ...c, private: bad }).rc).toBe(0x1df);
    expect(t.engine.tpm.objects.count).toBe(1);
    const otherPublic = create(t, parent, sealTemplate(), '', new Uint8Array([1, 2, 3]));
    expect(load(t, parent, { private: c.private, publicBytes: otherPublic.publicBytes }).rc).toBe(0x1df);
    // Another storage primary (another template: another key and seed).
    const other = primary(t, { ...storageTemplate(), objectAttributes: storageTemplate().objectAttributes & ~A.noDA });
    expect(load(t, other, c).rc).toBe(0x1df);
    expect(load(t, parent, { ...c, private: new Uint8Array(0) }).rc).toBe(0x1d5);
  });

  test('parents and templates: TPM_RC_TYPE for a non-storage parent, the spec codes for attributes', () => {
    const t = createTestTpm();
    const parent = primary(t);
    const signer = load(t, parent, create(t, parent, signingTemplate()));
    expect(create(t, signer.handle, sealTemplate(), '', new Uint8Array([1])).rc).toBe(0x18a);
    // sensitiveDataOrigin with supplied data, a sealed object without data, fixedTPM without fixedParent.
    expect(create(t, parent, keyedHash(FIXED | A.sensitiveDataOrigin | A.sign, { scheme: TPM_ALG.HMAC, details: { hashAlg: TPM_ALG.SHA256 } }), '', new Uint8Array([1])).rc).toBe(0x2c2);
    expect(create(t, parent, sealTemplate()).rc).toBe(0x2c2);
    expect(create(t, parent, { ...signingTemplate(), objectAttributes: (FIXED | A.sensitiveDataOrigin | A.sign) & ~A.fixedParent }).rc).toBe(0x2c2);
    // A child storage key must use its fixedParent parent's nameAlg and symmetric algorithm.
    expect(create(t, parent, { ...storageTemplate(), nameAlg: TPM_ALG.SHA384 }).rc).toBe(0x2c3);
    expect(create(t, parent, ecc(storageTemplate().objectAttributes, { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB })).rc).toBe(0x2d6);
    // userAuth longer than a SHA-256 digest.
    expect(create(t, parent, sealTemplate(), 'x'.repeat(33), new Uint8Array([1])).rc).toBe(0x1d5);
    // A child storage key is a parent itself (Create, as the reference, wants a free slot).
    t.call(TPM_CC.FlushContext, { params: be.u32(signer.handle) });
    const child = create(t, parent, storageTemplate());
    const childHandle = load(t, parent, child).handle;
    expect(create(t, childHandle, sealTemplate(), '', new Uint8Array([1])).rc).toBe(0);
  });
});

describe('ObjectChangeAuth', () => {
  test('a new private with the new authValue; the parent is checked by qualified Name', () => {
    const t = createTestTpm();
    const parent = primary(t);
    const c = create(t, parent, sealTemplate(), 'old', new Uint8Array([7]));
    const l = load(t, parent, c);
    const r = t.call(TPM_CC.ObjectChangeAuth, { handles: [l.handle, parent], passwords: ['old'], params: be.b2('new') });
    expect(r.rc).toBe(0);
    const newPrivate = r.params().subarray(2);
    // The loaded object keeps the old value.
    expect(t.call(TPM_CC.Unseal, { handles: [l.handle], passwords: ['old'] }).rc).toBe(0);
    t.call(TPM_CC.FlushContext, { params: be.u32(l.handle) });
    const n = load(t, parent, { private: newPrivate, publicBytes: c.publicBytes });
    expect(n.rc).toBe(0);
    expect(t.call(TPM_CC.Unseal, { handles: [n.handle], passwords: ['old'] }).rc).toBe(0x98e);
    expect(t.call(TPM_CC.Unseal, { handles: [n.handle], passwords: ['new'] }).rc).toBe(0);
    // Not its parent: the object itself; a new auth too long for SHA-256.
    expect(t.call(TPM_CC.ObjectChangeAuth, { handles: [n.handle, n.handle], passwords: ['new'], params: be.b2('x') }).rc).toBe(0x28a);
    expect(t.call(TPM_CC.ObjectChangeAuth, { handles: [n.handle, parent], passwords: ['new'], params: be.b2('x'.repeat(33)) }).rc).toBe(0x1d5);
  });
});

describe('LoadExternal and CreateLoaded', () => {
  const pubKey = () => {
    const d = p256.utils.randomSecretKey();
    const point = p256.getPublicKey(d, false);
    return { d, x: point.subarray(1, 33), y: point.subarray(33) };
  };
  const external = (k: { x: Uint8Array; y: Uint8Array }) => ({ ...signingTemplate(), objectAttributes: A.userWithAuth | A.sign, unique: { x: k.x, y: k.y } }) as TPMT_PUBLIC;

  test('a public ECC key in any hierarchy; a key with its private part only in NULL', () => {
    const t = createTestTpm();
    const k = pubKey();
    const pub = external(k);
    const r = t.call(TPM_CC.LoadExternal, { params: cat(be.u16(0), encode(TPM2B_PUBLIC, pub), be.u32(TPM_RH.OWNER)) });
    expect(r.rc).toBe(0);
    const name = cat(unhex('000b'), sha256(encode(TPM2B_PUBLIC, pub).subarray(2)));
    expect(hex(r.body.subarray(4 + 2))).toBe(hex(name));
    // An external object's qualified Name is its Name.
    expect(hex(readPublic(t, handleOf(r.body)).qualifiedName)).toBe(hex(name));
    const sensitive = encode(TPM2B_SENSITIVE, { sensitiveType: TPM_ALG.ECC, authValue: new Uint8Array(0), seedValue: new Uint8Array(0), sensitive: k.d });
    expect(t.call(TPM_CC.LoadExternal, { params: cat(sensitive, encode(TPM2B_PUBLIC, pub), be.u32(TPM_RH.NULL)) }).rc).toBe(0);
    expect(t.call(TPM_CC.LoadExternal, { params: cat(sensitive, encode(TPM2B_PUBLIC, pub), be.u32(TPM_RH.OWNER)) }).rc).toBe(0x3c5);
    // Another key's private part does not match the point.
    const other = encode(TPM2B_SENSITIVE, { sensitiveType: TPM_ALG.ECC, authValue: new Uint8Array(0), seedValue: new Uint8Array(0), sensitive: pubKey().d });
    expect(t.call(TPM_CC.LoadExternal, { params: cat(other, encode(TPM2B_PUBLIC, pub), be.u32(TPM_RH.NULL)) }).rc).toBe(TPM_RC.BINDING);
    t.call(TPM_CC.FlushContext, { params: be.u32(0x80000001) });
    // A point off the curve; fixedTPM with a private part.
    const bad = { ...pub, unique: { x: k.x, y: k.x } } as TPMT_PUBLIC;
    expect(t.call(TPM_CC.LoadExternal, { params: cat(be.u16(0), encode(TPM2B_PUBLIC, bad), be.u32(TPM_RH.NULL)) }).rc).toBe(0x2e7);
    const fixed = { ...pub, objectAttributes: pub.objectAttributes | A.fixedTPM } as TPMT_PUBLIC;
    expect(t.call(TPM_CC.LoadExternal, { params: cat(sensitive, encode(TPM2B_PUBLIC, fixed), be.u32(TPM_RH.NULL)) }).rc).toBe(0x2c2);
  });

  test('a public-only storage key cannot be authorized as a parent, also after ContextSave/ContextLoad', () => {
    const t = createTestTpm();
    const k = pubKey();
    const pub = { ...storageTemplate(), objectAttributes: A.userWithAuth | A.restricted | A.decrypt, unique: { x: k.x, y: k.y } } as TPMT_PUBLIC;
    const r = t.call(TPM_CC.LoadExternal, { params: cat(be.u16(0), encode(TPM2B_PUBLIC, pub), be.u32(TPM_RH.OWNER)) });
    expect(r.rc).toBe(0);
    const h = handleOf(r.body);
    // Its authorization fails before the parent checks: an object without its sensitive area has
    // no authValue (ms-tpm IsAuthValueAvailable: TPM_RC_AUTH_UNAVAILABLE, swtpm's answer to
    // tpm2_create -C of a tpm2_loadexternal'd public key).
    expect(create(t, h, sealTemplate(), '', new Uint8Array([1])).rc).toBe(0x12f);
    const saved = t.call(TPM_CC.ContextSave, { handles: [h] });
    t.call(TPM_CC.FlushContext, { params: be.u32(h) });
    const back = handleOf(t.call(TPM_CC.ContextLoad, { params: saved.body }).body);
    expect(create(t, back, sealTemplate(), '', new Uint8Array([1])).rc).toBe(0x12f);
    // Nor can it be made persistent.
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, back], passwords: [''], params: be.u32(0x81000001) }).rc).toBe(0x282);
  });

  test('CreateLoaded: an ordinary object with its wrapped private, and a primary under a hierarchy', () => {
    const t = createTestTpm();
    const parent = primary(t);
    const template = encode(TPM2B_PUBLIC, sealTemplate());
    const r = t.call(TPM_CC.CreateLoaded, { handles: [parent], passwords: [''], params: cat(sensitiveCreate('', new Uint8Array([5, 6])), template) });
    expect(r.rc).toBe(0);
    const handle = handleOf(r.body);
    const rd = new Reader(r.params(1));
    const priv = rd.bytes(rd.u16()).slice();
    const pubStart = rd.pos;
    TPM2B_PUBLIC.read(rd);
    const publicBytes = r.params(1).slice(pubStart, rd.pos);
    expect(hex(t.call(TPM_CC.Unseal, { handles: [handle], passwords: [''] }).params().subarray(2))).toBe('0506');
    t.call(TPM_CC.FlushContext, { params: be.u32(handle) });
    expect(load(t, parent, { private: priv, publicBytes }).rc).toBe(0);
    t.call(TPM_CC.FlushContext, { params: be.u32(0x80000001) });
    // A primary: the same key CreatePrimary derives.
    const p = t.call(TPM_CC.CreateLoaded, { handles: [TPM_RH.OWNER], passwords: [''], params: cat(sensitiveCreate(), encode(TPM2B_PUBLIC, storageTemplate())) });
    expect(p.rc).toBe(0);
    const prd = new Reader(p.params(1));
    expect(prd.u16()).toBe(0);
    expect(hex(readPublic(t, handleOf(p.body)).name)).toBe(hex(readPublic(t, parent).name));
    // A NULL nameAlg is TPM_RC_HASH+P2 here (the template's nameAlg has no '+').
    const noName = { ...sealTemplate(), nameAlg: TPM_ALG.NULL } as TPMT_PUBLIC;
    expect(t.call(TPM_CC.CreateLoaded, { handles: [parent], passwords: [''], params: cat(sensitiveCreate('', new Uint8Array([1])), encode(TPM2B_PUBLIC, noName)) }).rc).toBe(0x2c3);
  });
});
