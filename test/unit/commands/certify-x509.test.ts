/**
 * Part 3 §18.8 TPM2_CertifyX509 in the engine: the certificate built from partialCertificate,
 * addedToCertificate and the signature is parsed and verified by node:crypto (X509Certificate),
 * the serial number and tbsDigest are recomputed here, and the response codes of bad inputs.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { DER, derBitString, derContext, derOid, derRead, derSequence, derTlv } from '../../../src/tpm/crypto/der.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPMA_OBJECT, TPMT_SIGNATURE } from '../../../src/tpm/marshal/objects.js';
import { TPM2B_DIGEST, TPM2B_MAX_BUFFER } from '../../../src/tpm/marshal/structures.js';
import { be, buildCommand, cat, createTestTpm, type TestTpm } from '../../helpers/engine.js';
import { createPrimary, eccTemplate, hmacTemplate as hmacKey, type Primary, rsaTemplate as rsa, SIGN } from '../../helpers/templates.js';
import { xorshift32 } from '../../helpers/xorshift.js';

const A = TPMA_OBJECT;
const DECRYPT = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.decrypt;
const ecc = (attributes: number, curveID?: number) => eccTemplate(attributes, { curveID });
type Key = Primary;

const set = (...c: Uint8Array[]) => derTlv(0x31, ...c);
const utf8 = (s: string) => derTlv(0x0c, new TextEncoder().encode(s));
const utcTime = (s: string) => derTlv(0x17, new TextEncoder().encode(s));
const rdn = (cn: string) => derSequence(set(derSequence(derOid('2.5.4.3'), utf8(cn))));
const ISSUER = rdn('vtpmd test CA');
const VALIDITY = derSequence(utcTime('250101000000Z'), utcTime('350101000000Z'));
const SUBJECT = rdn('vtpmd test key');
/** Extension { extnID, critical TRUE, extnValue OCTET STRING { value } }. */
const extension = (oid: string, value: Uint8Array) => derSequence(derOid(oid), Uint8Array.of(0x01, 0x01, 0xff), derTlv(DER.OCTET_STRING, value));
/** KeyUsage as a BIT STRING of its named bits (bit 0 = digitalSignature). */
function keyUsage(...bits: number[]): Uint8Array {
  const octets = new Uint8Array(2);
  for (const b of bits) octets[b >> 3]! |= 0x80 >> (b & 7);
  const used = octets[1] ? 2 : 1;
  return extension('2.5.29.15', derTlv(DER.BIT_STRING, Uint8Array.of(0), octets.subarray(0, used)));
}
const tpmaObject = (attributes: number) => extension('2.23.133.10.1.1.1', derBitString(be.u32(attributes)));
const extensions = (...list: Uint8Array[]) => derContext(3, derSequence(...list));
const DIGITAL_SIGNATURE = 0;
const KEY_ENCIPHERMENT = 2;
const partial = (ext: Uint8Array, sigAlg?: Uint8Array) => derSequence(...(sigAlg ? [sigAlg] : []), ISSUER, VALIDITY, SUBJECT, ext);

const scheme = (alg: number, hashAlg?: number) => (hashAlg === undefined ? be.u16(alg) : cat(be.u16(alg), be.u16(hashAlg)));
const ECDSA_SHA256 = scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256);

interface Answer {
  rc: number;
  added: Uint8Array;
  tbsDigest: Uint8Array;
  signature: TPMT_SIGNATURE | null;
}
function certifyX509(t: TestTpm, object: number, key: number, cert: Uint8Array, inScheme = scheme(TPM_ALG.NULL), reserved = new Uint8Array(0)): Answer {
  const params = cat(be.b2(reserved), inScheme, encode(TPM2B_MAX_BUFFER, cert));
  const r = t.call(TPM_CC.CertifyX509, { handles: [object, key], passwords: ['', ''], params });
  if (r.rc !== 0) return { rc: r.rc, added: new Uint8Array(0), tbsDigest: new Uint8Array(0), signature: null };
  const reader = new Reader(r.params());
  const added = new Uint8Array(reader.bytes(reader.u16()));
  const tbsDigest = TPM2B_DIGEST.read(reader);
  return { rc: 0, added, tbsDigest, signature: TPMT_SIGNATURE.read(reader) };
}

/** The elements directly inside a DER SEQUENCE. */
function children(seq: Uint8Array): Uint8Array[] {
  const outer = derRead(seq, 0)!;
  const out: Uint8Array[] = [];
  for (let at = outer.valueStart; at < outer.end; ) {
    const e = derRead(seq, at)!;
    out.push(seq.subarray(e.start, e.end));
    at = e.end;
  }
  return out;
}

/** X.509 signatureValue bits: PKCS#1 or PSS as is, ECDSA as the DER Ecdsa-Sig-Value. */
function signatureBits(sig: TPMT_SIGNATURE): Uint8Array {
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    const { signatureR, signatureS } = sig.signature as { signatureR: Uint8Array; signatureS: Uint8Array };
    const int = (b: Uint8Array) => {
      let i = 0;
      while (i < b.length - 1 && b[i] === 0) i++;
      const v = b.subarray(i);
      return derTlv(DER.INTEGER, ...(v[0]! & 0x80 ? [Uint8Array.of(0)] : []), v);
    };
    return derSequence(int(signatureR), int(signatureS));
  }
  return (sig.signature as { sig: Uint8Array }).sig;
}

/** The full certificate: TBSCertificate assembled from the caller's and the TPM's parts, the algorithm, the signature. */
function assemble(cert: Uint8Array, answer: Answer): { der: Uint8Array; tbs: Uint8Array; serial: Uint8Array } {
  const given = children(cert);
  const added = children(answer.added);
  const [version, serial] = added as [Uint8Array, Uint8Array];
  const sigAlg = given.length === 5 ? given[0]! : added[2]!;
  const spki = added[added.length - 1]!;
  const [issuer, validity, subject, ext] = given.slice(-4) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const tbs = derSequence(version, serial, sigAlg, issuer, validity, subject, spki, ext);
  return { der: derSequence(tbs, sigAlg, derBitString(signatureBits(answer.signature!))), tbs, serial };
}

const sha256 = (...parts: Uint8Array[]) => {
  const h = nodeCrypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const rc = (code: number, at: { handle: number } | { param: number }) => withPosition(code, at);
/** libtpms 0.9's handle numbers in CertifyX509's response codes (swtpm answers so): signHandle 1, objectHandle 2. */
const SIGN_H = { handle: 1 };
const OBJECT_H = { handle: 2 };

describe('TPM2_CertifyX509', () => {
  // Three object slots: an ECC signer and an RSA object in one TPM, an RSA signer and an ECC object in another.
  const t = createTestTpm({ seed: 'certify-x509' });
  const eccSigner = createPrimary(t, ecc(SIGN));
  const rsaObject = createPrimary(t, rsa(DECRYPT));
  const t2 = createTestTpm({ seed: 'certify-x509-rsa' });
  const rsaSigner = createPrimary(t2, rsa(SIGN));
  const eccObject = createPrimary(t2, ecc(SIGN, TPM_ECC_CURVE.NIST_P384));

  function check(t: TestTpm, object: Key, signer: Key, cert: Uint8Array, inScheme: Uint8Array, digestName: string) {
    const answer = certifyX509(t, object.handle, signer.handle, cert, inScheme);
    expect(answer.rc).toBe(0);
    const { der, tbs, serial } = assemble(cert, answer);
    expect(Buffer.from(answer.tbsDigest)).toEqual(nodeCrypto.createHash(digestName).update(tbs).digest());
    const x509 = new nodeCrypto.X509Certificate(der);
    expect(x509.subject).toBe('CN=vtpmd test key');
    expect(x509.issuer).toBe('CN=vtpmd test CA');
    const signerKey = nodeCrypto.createPublicKey({ key: pemOf(signer), format: 'jwk' });
    expect(x509.verify(signerKey)).toBe(true);
    expect(x509.publicKey.export({ format: 'jwk' })).toEqual(pemOf(object));
    // Serial: the first 20 octets of SHA-256 (the signer's nameAlg) over the parts after it and both Names.
    const rest = children(tbs).slice(2);
    const expected = sha256(...rest, signer.name, object.name).subarray(0, 20);
    const serialValue = serial.subarray(derRead(serial, 0)!.valueStart);
    expect(BigInt('0x' + Buffer.from(serialValue).toString('hex'))).toBe(BigInt('0x' + Buffer.from(expected).toString('hex')));
    expect(x509.serialNumber.replace(/^0+/, '')).toBe(Buffer.from(expected).toString('hex').toUpperCase().replace(/^0+/, ''));
    return { answer, x509 };
  }
  function pemOf(k: Key): nodeCrypto.JsonWebKey {
    if (k.outPublic.type === TPM_ALG.RSA) return { kty: 'RSA', n: Buffer.from(k.outPublic.unique as Uint8Array).toString('base64url'), e: 'AQAB' };
    const u = k.outPublic.unique as { x: Uint8Array; y: Uint8Array };
    const crv = u.x.length === 32 ? 'P-256' : 'P-384';
    return { kty: 'EC', crv, x: Buffer.from(u.x).toString('base64url'), y: Buffer.from(u.y).toString('base64url') };
  }

  test('ECDSA-SHA256 signer, RSA object: a certificate OpenSSL parses and verifies', () => {
    const { answer, x509 } = check(t, rsaObject, eccSigner, partial(extensions(keyUsage(KEY_ENCIPHERMENT))), scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256), 'sha256');
    // addedToCertificate: version [0] 2, serial, ecdsa-with-SHA256, SubjectPublicKeyInfo.
    const added = children(answer.added);
    expect(added).toHaveLength(4);
    expect(Buffer.from(added[0]!).toString('hex')).toBe('a003020102');
    expect(Buffer.from(added[2]!).toString('hex')).toBe('300a06082a8648ce3d040302');
    expect(x509.publicKey.asymmetricKeyType).toBe('rsa');
    expect(answer.signature!.sigAlg).toBe(TPM_ALG.ECDSA);
  });

  test('RSASSA-SHA256 signer (the key default), ECC P-384 object', () => {
    const { answer, x509 } = check(t2, eccObject, rsaSigner, partial(extensions(keyUsage(DIGITAL_SIGNATURE), tpmaObject(SIGN))), scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256), 'sha256');
    expect(Buffer.from(children(answer.added)[2]!).toString('hex')).toBe('300d06092a864886f70d01010b0500');
    expect(x509.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });

  test('RSASSA-PSS with SHA-384: the PSS parameters name the hash, MGF1 and salt length', () => {
    const { answer } = check(t2, eccObject, rsaSigner, partial(extensions(keyUsage(DIGITAL_SIGNATURE))), scheme(TPM_ALG.RSAPSS, TPM_ALG.SHA384), 'sha384');
    const sha384 = '300d06096086480165030402020500';
    const pss = `06092a864886f70d01010a` + `3034` + `a00f${sha384}` + `a11c301a06092a864886f70d010108${sha384}` + `a203020130`;
    expect(Buffer.from(children(answer.added)[2]!).toString('hex')).toBe(`3041${pss}`);
  });

  test('a caller-given signature algorithm is used and not repeated in addedToCertificate', () => {
    const sigAlg = derSequence(derOid('1.2.840.10045.4.3.2'));
    const { answer } = check(t, rsaObject, eccSigner, partial(extensions(keyUsage(KEY_ENCIPHERMENT)), sigAlg), scheme(TPM_ALG.ECDSA, TPM_ALG.SHA256), 'sha256');
    expect(children(answer.added)).toHaveLength(3);
  });

  test('the same request gives the same serial number', () => {
    const cert = partial(extensions(keyUsage(KEY_ENCIPHERMENT)));
    const a = certifyX509(t, rsaObject.handle, eccSigner.handle, cert, ECDSA_SHA256);
    const b = certifyX509(t, rsaObject.handle, eccSigner.handle, cert, ECDSA_SHA256);
    expect([a.rc, b.rc]).toEqual([0, 0]);
    expect(children(a.added)[1]).toEqual(children(b.added)[1]);
    expect(a.tbsDigest).toEqual(b.tbsDigest);
  });

  test('response codes in the reference order', () => {
    const good = partial(extensions(keyUsage(KEY_ENCIPHERMENT)));
    const on = (cert: Uint8Array, o = rsaObject.handle, k = eccSigner.handle, s = ECDSA_SHA256, reserved = new Uint8Array(0)) =>
      certifyX509(t, o, k, cert, s, reserved).rc;
    expect(on(good, undefined, undefined, undefined, Uint8Array.of(1))).toBe(rc(TPM_RC.SIZE, { param: 1 }));
    expect(on(good, rsaObject.handle, rsaObject.handle)).toBe(rc(TPM_RC.KEY, SIGN_H));
    // TPM_RH_NULL has no key to hash the serial number with or to sign.
    expect(on(good, rsaObject.handle, TPM_RH.NULL, scheme(TPM_ALG.NULL))).toBe(rc(TPM_RC.KEY, SIGN_H));
    // An ECC key without a scheme of its own needs one given.
    expect(on(good, undefined, undefined, scheme(TPM_ALG.NULL))).toBe(rc(TPM_RC.SCHEME, { param: 2 }));
    expect(on(good, undefined, undefined, scheme(TPM_ALG.RSASSA, TPM_ALG.SHA256))).toBe(rc(TPM_RC.SCHEME, { param: 2 }));
    const hmac = createPrimary(t, hmacKey());
    expect(on(good, hmac.handle)).toBe(rc(TPM_RC.ASYMMETRIC, OBJECT_H));
    // partialCertificate: not one SEQUENCE spanning it, then its contents.
    expect(on(cat(good, Uint8Array.of(0)))).toBe(rc(TPM_RC.SIZE, { param: 3 }));
    expect(on(derSet(good))).toBe(rc(TPM_RC.SIZE, { param: 3 }));
    expect(on(new Uint8Array(0))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
    expect(on(derSequence(ISSUER, VALIDITY, SUBJECT))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
    expect(on(derSequence(VALIDITY, SUBJECT, extensions(keyUsage(KEY_ENCIPHERMENT))))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
    expect(on(derSequence(ISSUER, ISSUER, ISSUER, VALIDITY, SUBJECT, extensions(keyUsage(KEY_ENCIPHERMENT))))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
    expect(on(derSequence(ISSUER, VALIDITY, SUBJECT, extensions(keyUsage(KEY_ENCIPHERMENT)), extensions(keyUsage(KEY_ENCIPHERMENT))))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
    expect(on(derSequence(ISSUER, utf8('x'), VALIDITY, SUBJECT, extensions(keyUsage(KEY_ENCIPHERMENT))))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
    // An HMAC signer has no AlgorithmIdentifier to add.
    expect(on(good, rsaObject.handle, hmac.handle, scheme(TPM_ALG.NULL))).toBe(rc(TPM_RC.SCHEME, SIGN_H));
    // Extensions: KeyUsage required and consistent with the attributes, TPMA_OBJECT equal to them.
    expect(on(partial(extensions(tpmaObject(DECRYPT))))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
    expect(on(partial(extensions(keyUsage(DIGITAL_SIGNATURE))))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
    expect(on(partial(extensions(keyUsage(1))), undefined)).toBe(0); // nonRepudiation: fixedTPM is set
    expect(on(partial(extensions(keyUsage(4))))).toBe(rc(TPM_RC.VALUE, { param: 3 })); // keyAgreement needs restricted
    expect(on(partial(extensions(keyUsage(KEY_ENCIPHERMENT), tpmaObject(SIGN))))).toBe(rc(TPM_RC.ATTRIBUTES, OBJECT_H));
    expect(on(partial(extensions(keyUsage(KEY_ENCIPHERMENT), tpmaObject(DECRYPT))))).toBe(0);
    expect(on(partial(derContext(3, derSequence(Uint8Array.of(0x04, 0x00)))))).toBe(rc(TPM_RC.VALUE, { param: 3 }));
  });

  test('mutated partial certificates never reach the internal-error path', () => {
    const cert = partial(extensions(keyUsage(KEY_ENCIPHERMENT), tpmaObject(DECRYPT)));
    const seed = buildCommand(TPM_CC.CertifyX509, {
      handles: [rsaObject.handle, eccSigner.handle], passwords: ['', ''],
      params: cat(be.b2(new Uint8Array(0)), ECDSA_SHA256, encode(TPM2B_MAX_BUFFER, cert)),
    });
    expect(t.send(seed).rc).toBe(0);
    const certAt = seed.length - cert.length;
    const rnd = xorshift32(0x5eed);
    const answers = new Set<number>();
    for (let i = 0; i < 3000; i++) {
      const bytes = seed.slice();
      for (let m = 1 + Math.floor(rnd() * 3); m > 0; m--) bytes[certAt + Math.floor(rnd() * cert.length)] = Math.floor(rnd() * 256);
      const r = t.send(bytes);
      expect(r.rc, `iteration ${i}`).not.toBe(TPM_RC.FAILURE);
      expect(r.size, `iteration ${i}`).toBe(r.bytes.length);
      answers.add(r.rc);
    }
    // Mutations inside names and times still certify; structural ones are refused.
    expect(answers.has(0)).toBe(true);
    expect(answers.has(rc(TPM_RC.VALUE, { param: 3 }))).toBe(true);
  });
});

const derSet = (c: Uint8Array) => derTlv(0x31, c);
