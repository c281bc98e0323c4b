/**
 * Part 3 §12.5 ActivateCredential and §12.6 MakeCredential on the in-process engine. Credentials
 * are built in the test with node:crypto from Part 1 §24 (seed under RSA-OAEP "IDENTITY" or ECDH
 * + KDFe, KDFa "STORAGE"/"INTEGRITY", AES-CFB from a zero IV, HMAC over ciphertext || Name) and
 * activated by the engine; the engine's credentials activate too; every tampered part gets the
 * reference's code and position.
 */
import { constants, createCipheriv, createECDH, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC, TPMA_OBJECT as A, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { TPM_RS_PW, TPM_ST } from '../../../src/tpm/constants.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import { digest, kdfa, kdfe, mac, startSession } from '../../helpers/session-client.js';

const RC_P = 0x40;
const P = (rc: number, n: number) => rc | RC_P | (n << 8);
const H = (rc: number, n: number) => rc | (n << 8);

const AES128 = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const NULL_SYM = { algorithm: TPM_ALG.NULL, keyBits: null, mode: null };
const NULL_SCHEME = { scheme: TPM_ALG.NULL, details: null };
const EK_ATTRS = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.decrypt;

function rsaEk(): TPMT_PUBLIC {
  return {
    type: TPM_ALG.RSA, nameAlg: TPM_ALG.SHA256, objectAttributes: EK_ATTRS, authPolicy: new Uint8Array(0),
    parameters: { symmetric: AES128, scheme: NULL_SCHEME, keyBits: 2048, exponent: 0 }, unique: new Uint8Array(0),
  } as TPMT_PUBLIC;
}
function ecc(attributes: number, symmetric: object, scheme: object): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: attributes, authPolicy: new Uint8Array(0),
    parameters: { symmetric, scheme, curveID: 0x0003, kdf: NULL_SCHEME }, unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
  } as TPMT_PUBLIC;
}
const eccEk = () => ecc(EK_ATTRS, AES128, NULL_SCHEME);
const signer = () => ecc(A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign, NULL_SYM, { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } });

interface Loaded {
  handle: number;
  pub: TPMT_PUBLIC;
  name: Uint8Array;
}

function primary(t: TestTpm, hierarchy: number, template: TPMT_PUBLIC): Loaded {
  const r = t.call(TPM_CC.CreatePrimary, {
    handles: [hierarchy], passwords: [''],
    params: cat(be.b2(cat(be.b2(''), be.b2(''))), encode(TPM2B_PUBLIC, template), be.b2(''), be.u32(0)),
  });
  expect(r.rc).toBe(0);
  const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
  const rd = new Reader(r.params(1));
  const pub = TPM2B_PUBLIC.read(rd);
  rd.bytes(rd.u16());
  rd.bytes(rd.u16());
  rd.u16();
  rd.u32();
  rd.bytes(rd.u16());
  const name = rd.bytes(rd.u16()).slice();
  return { handle, pub, name };
}

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** Part 1 §24: the seed and its secret for the EK, built with node:crypto only. */
function seedFor(ek: TPMT_PUBLIC, label = 'IDENTITY'): { seed: Uint8Array; secret: Uint8Array } {
  if (ek.type === TPM_ALG.RSA) {
    const seed = new Uint8Array(randomBytes(32));
    const key = createPublicKey({ key: { kty: 'RSA', n: b64url(ek.unique as Uint8Array), e: 'AQAB' }, format: 'jwk' });
    const secret = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from(`${label}\0`) }, seed);
    return { seed, secret: new Uint8Array(secret) };
  }
  const q = ek.unique as { x: Uint8Array; y: Uint8Array };
  const e = createECDH('prime256v1');
  e.generateKeys();
  const pub = new Uint8Array(e.getPublicKey());
  const qx = pub.subarray(1, 33);
  const z = new Uint8Array(e.computeSecret(cat(new Uint8Array([4]), q.x, q.y)));
  return { seed: kdfe(TPM_ALG.SHA256, z, label, qx, q.x, 256), secret: cat(be.b2(qx), be.b2(pub.subarray(33))) };
}

/** TPM2B_ID_OBJECT contents: integrity HMAC || AES-128-CFB(zero IV) of TPM2B_DIGEST credential. */
function credentialBlob(seed: Uint8Array, name: Uint8Array, inner: Uint8Array): Uint8Array {
  const symKey = kdfa(TPM_ALG.SHA256, seed, 'STORAGE', name, new Uint8Array(0), 128);
  const c = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  const encIdentity = new Uint8Array(Buffer.concat([c.update(inner), c.final()]));
  const hmacKey = kdfa(TPM_ALG.SHA256, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256);
  return cat(be.b2(mac(TPM_ALG.SHA256, hmacKey, encIdentity, name)), encIdentity);
}

function activate(t: TestTpm, object: Loaded, ek: Loaded, blob: Uint8Array, secret: Uint8Array) {
  const r = t.call(TPM_CC.ActivateCredential, { handles: [object.handle, ek.handle], passwords: ['', ''], params: cat(be.b2(blob), be.b2(secret)) });
  if (r.rc !== 0) return { rc: r.rc, certInfo: new Uint8Array(0) };
  const p = r.params();
  return { rc: 0, certInfo: p.slice(2, 2 + ((p[0]! << 8) | p[1]!)) };
}

function make(t: TestTpm, ek: Loaded, credential: Uint8Array, name: Uint8Array) {
  const r = t.call(TPM_CC.MakeCredential, { handles: [ek.handle], params: cat(be.b2(credential), be.b2(name)) });
  if (r.rc !== 0) return { rc: r.rc, blob: new Uint8Array(0), secret: new Uint8Array(0) };
  const rd = new Reader(r.params());
  const blob = rd.bytes(rd.u16()).slice();
  const secret = rd.bytes(rd.u16()).slice();
  return { rc: 0, blob, secret };
}

const CREDENTIAL = new TextEncoder().encode('a secret for the AK');

describe('ActivateCredential of a credential made outside the TPM', () => {
  for (const [label, template] of [['RSA-2048', rsaEk], ['ECC P-256', eccEk]] as const) {
    test(`${label} EK: activates; each changed part gets its code`, () => {
      const t = createTestTpm();
      const ek = primary(t, TPM_RH.ENDORSEMENT, template());
      const ak = primary(t, TPM_RH.OWNER, signer());
      const { seed, secret } = seedFor(ek.pub);
      const blob = credentialBlob(seed, ak.name, be.b2(CREDENTIAL));
      expect(activate(t, ak, ek, blob, secret)).toEqual({ rc: 0, certInfo: CREDENTIAL });

      // Any changed byte of the integrity or the ciphertext: TPM_RC_INTEGRITY+P1.
      for (let i = 2; i < blob.length; i++) {
        const bad = blob.slice();
        bad[i]! ^= 0x80;
        expect(activate(t, ak, ek, bad, secret).rc, `byte ${i}`).toBe(P(TPM_RC.INTEGRITY, 1));
      }
      // A credential for another object (here the EK itself): TPM_RC_INTEGRITY+P1.
      expect(activate(t, ek, ek, blob, secret).rc).toBe(P(TPM_RC.INTEGRITY, 1));
      // A secret made with the label "DUPLICATE": RSA-OAEP's label check fails (TPM_RC_VALUE+P2);
      // under ECC the label only changes the seed, so the blob fails its integrity.
      const other = seedFor(ek.pub, 'DUPLICATE').secret;
      expect(activate(t, ak, ek, blob, other).rc).toBe(ek.pub.type === TPM_ALG.RSA ? P(TPM_RC.VALUE, 2) : P(TPM_RC.INTEGRITY, 1));
      // A blob cut short of its integrity: unmarshalling, TPM_RC_INSUFFICIENT+P1.
      expect(activate(t, ak, ek, blob.subarray(0, 20), secret).rc).toBe(P(TPM_RC.INSUFFICIENT, 1));
      // The credential inside followed by a stray byte: TPM_RC_SIZE+P1.
      expect(activate(t, ak, ek, credentialBlob(seed, ak.name, cat(be.b2(CREDENTIAL), new Uint8Array([0]))), secret).rc).toBe(P(TPM_RC.SIZE, 1));

      if (ek.pub.type === TPM_ALG.RSA) {
        const bad = secret.slice();
        bad[100]! ^= 1;
        expect(activate(t, ak, ek, blob, bad).rc).toBe(P(TPM_RC.VALUE, 2));
        expect(activate(t, ak, ek, blob, secret.subarray(1)).rc).toBe(P(TPM_RC.SIZE, 2));
      } else {
        const bad = secret.slice();
        bad[10]! ^= 1; // x of the ephemeral point: off the curve
        expect(activate(t, ak, ek, blob, bad).rc).toBe(P(TPM_RC.ECC_POINT, 2));
        expect(activate(t, ak, ek, blob, secret.subarray(0, 30)).rc).toBe(P(TPM_RC.INSUFFICIENT, 2));
      }
      // keyHandle must be an asymmetric restricted decryption key: TPM_RC_TYPE+H2.
      expect(activate(t, ek, ak, blob, secret).rc).toBe(H(TPM_RC.TYPE, 2));
    });
  }
});

describe('MakeCredential', () => {
  for (const [label, template] of [['RSA-2048', rsaEk], ['ECC P-256', eccEk]] as const) {
    test(`${label} EK: the layout of Part 1 §24, activated by the same TPM`, () => {
      const t = createTestTpm();
      const ek = primary(t, TPM_RH.ENDORSEMENT, template());
      const ak = primary(t, TPM_RH.OWNER, signer());
      const m = make(t, ek, CREDENTIAL, ak.name);
      expect(m.rc).toBe(0);
      // integrity (TPM2B of a SHA-256 HMAC) || encrypted TPM2B_DIGEST of the credential.
      expect(m.blob.length).toBe(2 + 32 + 2 + CREDENTIAL.length);
      expect(hex(m.blob.subarray(0, 2))).toBe('0020');
      // RSA: one modulus-sized OAEP block; ECC: a TPMS_ECC_POINT of two 32-byte coordinates.
      expect(m.secret.length).toBe(ek.pub.type === TPM_ALG.RSA ? 256 : 2 + 32 + 2 + 32);
      expect(activate(t, ak, ek, m.blob, m.secret)).toEqual({ rc: 0, certInfo: CREDENTIAL });
      // A fresh seed every time.
      expect(hex(make(t, ek, CREDENTIAL, ak.name).secret)).not.toBe(hex(m.secret));
    });
  }

  test('refusals: not a restricted decryption key (TPM_RC_TYPE+H1), a credential longer than a digest (TPM_RC_SIZE+P1)', () => {
    const t = createTestTpm();
    const ek = primary(t, TPM_RH.ENDORSEMENT, eccEk());
    const ak = primary(t, TPM_RH.OWNER, signer());
    expect(make(t, ak, CREDENTIAL, ek.name).rc).toBe(H(TPM_RC.TYPE, 1));
    expect(make(t, ek, new Uint8Array(33), ak.name).rc).toBe(P(TPM_RC.SIZE, 1));
    expect(make(t, ek, new Uint8Array(32), ak.name).rc).toBe(0);
  });
});

describe('ActivateCredential roles', () => {
  test('the activated object in the ADMIN role: with adminWithPolicy a password is TPM_RC_AUTH_TYPE, a PolicyCommandCode(ActivateCredential) session works', () => {
    const t = createTestTpm();
    const ek = primary(t, TPM_RH.ENDORSEMENT, eccEk());
    const policy = digest(TPM_ALG.SHA256, new Uint8Array(32), be.u32(TPM_CC.PolicyCommandCode), be.u32(TPM_CC.ActivateCredential));
    const ak = primary(t, TPM_RH.OWNER, { ...signer(), objectAttributes: signer().objectAttributes | A.adminWithPolicy, authPolicy: policy });
    const m = make(t, ek, CREDENTIAL, ak.name);
    expect(activate(t, ak, ek, m.blob, m.secret).rc).toBe(TPM_RC.AUTH_TYPE);
    const withPolicy = (cc: number) => {
      const s = startSession(t, { type: 1 });
      expect(t.call(TPM_CC.PolicyCommandCode, { handles: [s.handle], params: be.u32(cc) }).rc).toBe(0);
      const area = cat(be.u32(s.handle), be.b2(new Uint8Array(16).fill(1)), be.u8(0), be.b2(''), be.u32(TPM_RS_PW), be.b2(''), be.u8(0), be.b2(''));
      const body = cat(be.u32(ak.handle), be.u32(ek.handle), be.u32(area.length), area, be.b2(m.blob), be.b2(m.secret));
      const r = t.send(cat(be.u16(TPM_ST.SESSIONS), be.u32(10 + body.length), be.u32(TPM_CC.ActivateCredential), body));
      if (r.rc !== 0) t.call(TPM_CC.FlushContext, { params: be.u32(s.handle) });
      return r;
    };
    const ok = withPolicy(TPM_CC.ActivateCredential);
    expect(ok.rc).toBe(0);
    expect(hex(ok.params().subarray(2))).toBe(hex(CREDENTIAL));
    // A policy for another command is another digest: TPM_RC_POLICY_FAIL on the first session.
    expect(withPolicy(TPM_CC.Duplicate).rc).toBe(TPM_RC.POLICY_FAIL | 0x100 | 0x800);
  });
});
