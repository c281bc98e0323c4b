// TPM2_CertifyX509 sent raw to vtpmd and to Debian's swtpm (libtpms 0.9) with the same keys,
// loaded from the same key material with LoadExternal so both TPMs have the same Names: the
// response codes of good and bad requests match, addedToCertificate and tbsDigest are
// byte-identical (the serial number depends only on the request and the Names), and each
// signature verifies over tbsDigest with node:crypto.
import * as nodeCrypto from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { expect, it } from 'vitest';
import { startDaemon, swtpmAvailable, vtpmdAvailable } from '../helpers/daemon.js';
import { command, dataTarget, paramsOf, pwAuthArea, rcHex, TpmClient, W } from '../helpers/tpm.js';
import { xorshift32 } from '../helpers/xorshift.js';
import { derContext, derOid, derSequence, derTlv } from '../../src/tpm/crypto/der.js';

const FLAGS = ['not-need-init', 'startup-clear'];
const NULL_HIERARCHY = 0x40000007;
// noDA: the first authorization of a DA-protected object after startup is TPM_RC_RETRY in libtpms 0.9.
const USER_WITH_AUTH = 0x40 | 0x400;
const SIGN = 0x40000;
const DECRYPT = 0x20000;
const b64 = (s: string | undefined) => Buffer.from(s!, 'base64url');

const eccPair = nodeCrypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaPair = nodeCrypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaObjectPair = nodeCrypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const eccObjectPair = nodeCrypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });

function eccPublic(key: nodeCrypto.KeyObject, attributes: number, curve: number): Buffer {
  const j = key.export({ format: 'jwk' });
  return new W().u16(0x23).u16(0x0b).u32(attributes).tpm2b(new Uint8Array(0)).u16(0x10).u16(0x10).u16(curve).u16(0x10).tpm2b(b64(j.x)).tpm2b(b64(j.y)).build();
}
function rsaPublic(key: nodeCrypto.KeyObject, attributes: number): Buffer {
  const j = key.export({ format: 'jwk' });
  return new W().u16(0x01).u16(0x0b).u32(attributes).tpm2b(new Uint8Array(0)).u16(0x10).u16(0x10).u16(2048).u32(0).tpm2b(b64(j.n)).build();
}
const sensitive = (type: number, secret: Buffer) => new W().u16(type).tpm2b(new Uint8Array(0)).tpm2b(new Uint8Array(0)).tpm2b(secret).build();
const loadExternal = (inPublic: Buffer, inPrivate?: Buffer) =>
  command({ cc: 0x167, params: new W().tpm2b(inPrivate ?? new Uint8Array(0)).tpm2b(inPublic).u32(NULL_HIERARCHY).build() });

const set = (c: Uint8Array) => derTlv(0x31, c);
const rdn = (cn: string) => derSequence(set(derSequence(derOid('2.5.4.3'), derTlv(0x0c, Buffer.from(cn)))));
const VALIDITY = derSequence(derTlv(0x17, Buffer.from('250101000000Z')), derTlv(0x17, Buffer.from('350101000000Z')));
const extension = (oid: string, bits: Uint8Array) => derSequence(derOid(oid), derTlv(0x04, derTlv(0x03, bits)));
const keyUsage = (octet: number) => extension('2.5.29.15', Uint8Array.of(0, octet));
const tpmaObject = (a: number) => extension('2.23.133.10.1.1.1', Uint8Array.of(0, a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff));
const partial = (...ext: Uint8Array[]) => derSequence(rdn('CA'), VALIDITY, rdn('key'), derContext(3, derSequence(...ext)));
const DIGITAL_SIGNATURE = 0x80;
const KEY_ENCIPHERMENT = 0x20;
const NON_REPUDIATION = 0x40;

interface Case {
  what: string;
  /** 'hmac': a keyed-hash object, which has no SubjectPublicKeyInfo. */
  object: 'rsa' | 'ecc' | 'hmac';
  /** 'object' signs with the object itself (a decryption key: no signing key). */
  signer: 'rsa' | 'ecc' | 'object';
  scheme: [number, number];
  cert: Uint8Array;
  reserved?: Uint8Array;
}
const CASES: Case[] = [
  { what: 'ECDSA-SHA256 over an RSA object', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: partial(keyUsage(KEY_ENCIPHERMENT)) },
  { what: 'RSASSA-SHA256 over an ECC object with TPMA_OBJECT', object: 'ecc', signer: 'rsa', scheme: [0x14, 0x0b], cert: partial(keyUsage(DIGITAL_SIGNATURE), tpmaObject(SIGN | USER_WITH_AUTH)) },
  { what: 'RSASSA-PSS-SHA384 over an ECC object', object: 'ecc', signer: 'rsa', scheme: [0x16, 0x0c], cert: partial(keyUsage(DIGITAL_SIGNATURE)) },
  { what: 'ECDSA-SHA512 with a given AlgorithmIdentifier', object: 'ecc', signer: 'ecc', scheme: [0x18, 0x0d], cert: derSequence(derSequence(derOid('1.2.840.10045.4.3.4')), ...[rdn('CA'), VALIDITY, rdn('key'), derContext(3, derSequence(keyUsage(DIGITAL_SIGNATURE)))]) },
  { what: 'RSASSA-SHA1', object: 'ecc', signer: 'rsa', scheme: [0x14, 0x04], cert: partial(keyUsage(DIGITAL_SIGNATURE)) },
  { what: 'RSASSA-PSS-SHA1 (parameters left out)', object: 'ecc', signer: 'rsa', scheme: [0x16, 0x04], cert: partial(keyUsage(DIGITAL_SIGNATURE)) },
  { what: 'RSASSA-PSS-SHA256', object: 'ecc', signer: 'rsa', scheme: [0x16, 0x0b], cert: partial(keyUsage(DIGITAL_SIGNATURE)) },
  { what: 'ECDSA-SHA1', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x04], cert: partial(keyUsage(KEY_ENCIPHERMENT)) },
  { what: 'ECDSA-SHA384', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0c], cert: partial(keyUsage(KEY_ENCIPHERMENT)) },
  { what: 'ECSchnorr: no AlgorithmIdentifier', object: 'rsa', signer: 'ecc', scheme: [0x1c, 0x0b], cert: partial(keyUsage(KEY_ENCIPHERMENT)) },
  { what: 'KeyUsage keyAgreement without restricted', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: partial(keyUsage(0x08)) },
  { what: 'a decryption key as signer', object: 'rsa', signer: 'object', scheme: [0x14, 0x0b], cert: partial(keyUsage(KEY_ENCIPHERMENT)) },
  { what: 'a keyed-hash object', object: 'hmac', signer: 'ecc', scheme: [0x18, 0x0b], cert: partial(keyUsage(DIGITAL_SIGNATURE)) },
  { what: 'reserved not empty', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: partial(keyUsage(KEY_ENCIPHERMENT)), reserved: Uint8Array.of(1) },
  { what: 'scheme of the other key type', object: 'rsa', signer: 'ecc', scheme: [0x14, 0x0b], cert: partial(keyUsage(KEY_ENCIPHERMENT)) },
  { what: 'a byte after the SEQUENCE', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: Buffer.concat([partial(keyUsage(KEY_ENCIPHERMENT)), Buffer.of(0)]) },
  { what: 'no extensions', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: derSequence(rdn('CA'), VALIDITY, rdn('key')) },
  { what: 'no KeyUsage', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: partial(tpmaObject(DECRYPT | USER_WITH_AUTH)) },
  { what: 'KeyUsage signing for a decryption key', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: partial(keyUsage(DIGITAL_SIGNATURE)) },
  { what: 'KeyUsage nonRepudiation without fixedTPM', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: partial(keyUsage(NON_REPUDIATION | KEY_ENCIPHERMENT)) },
  { what: 'TPMA_OBJECT not the object attributes', object: 'rsa', signer: 'ecc', scheme: [0x18, 0x0b], cert: partial(keyUsage(KEY_ENCIPHERMENT), tpmaObject(SIGN | USER_WITH_AUTH)) },
];

interface Outcome {
  rc: string;
  added?: string;
  tbsDigest?: string;
  verified?: boolean;
}

async function runAll(impl: 'vtpmd' | 'swtpm', cases: Case[] = CASES): Promise<Outcome[]> {
  const d = await startDaemon({ impl, flags: FLAGS });
  const c = await TpmClient.connect(dataTarget(d));
  try {
    const load = async (cmd: Buffer) => {
      const r = await c.call(cmd);
      expect(r.rc).toBe(0);
      return r.body.readUInt32BE(0);
    };
    const eccJ = eccPair.privateKey.export({ format: 'jwk' });
    const rsaJ = rsaPair.privateKey.export({ format: 'jwk' });
    // The objects need their private parts: ADMIN authorization by password needs an authValue, which a public-only object lacks.
    const rsaObjectSecret = sensitive(0x01, b64(rsaObjectPair.privateKey.export({ format: 'jwk' }).p));
    const eccObjectSecret = sensitive(0x23, b64(eccObjectPair.privateKey.export({ format: 'jwk' }).d));
    const handles = {
      signer: {
        ecc: await load(loadExternal(eccPublic(eccPair.publicKey, SIGN | USER_WITH_AUTH, 0x03), sensitive(0x23, b64(eccJ.d)))),
        rsa: await load(loadExternal(rsaPublic(rsaPair.publicKey, SIGN | USER_WITH_AUTH), sensitive(0x01, b64(rsaJ.p)))),
      },
      object: {
        rsa: await load(loadExternal(rsaPublic(rsaObjectPair.publicKey, DECRYPT | USER_WITH_AUTH), rsaObjectSecret)),
      } as Record<string, number>,
    };
    // A keyed-hash key: unique is H_nameAlg(seedValue || key).
    const hmacSeed = nodeCrypto.createHash('sha256').update('seed').digest();
    const hmacKey = nodeCrypto.createHash('sha256').update('key').digest();
    const hmacPublic = new W().u16(0x08).u16(0x0b).u32(SIGN | USER_WITH_AUTH).tpm2b(new Uint8Array(0)).u16(0x05).u16(0x0b)
      .tpm2b(nodeCrypto.createHash('sha256').update(hmacSeed).update(hmacKey).digest()).build();
    const hmacSecret = new W().u16(0x08).tpm2b(new Uint8Array(0)).tpm2b(hmacSeed).tpm2b(hmacKey).build();
    const out: Outcome[] = [];
    for (const k of cases) {
      if (k.object === 'hmac') {
        for (const [type, handle] of Object.entries(handles.object)) {
          expect((await c.call(command({ cc: 0x165, params: new W().u32(handle).build() }))).rc).toBe(0);
          delete handles.object[type];
        }
        const h = await load(loadExternal(hmacPublic, hmacSecret));
        const params = new W().tpm2b(new Uint8Array(0)).u16(k.scheme[0]).u16(k.scheme[1]).tpm2b(k.cert).build();
        const r = await c.call(command({ cc: 0x197, handles: [h, handles.signer.ecc], auth: pwAuthArea(new Uint8Array(0), 2), params }));
        expect((await c.call(command({ cc: 0x165, params: new W().u32(h).build() }))).rc).toBe(0);
        out.push({ rc: rcHex(r.rc) });
        continue;
      }
      // Three object slots: the ECC object takes the RSA object's place when needed.
      if (k.object === 'ecc' && handles.object.ecc === undefined) {
        if (handles.object.rsa !== undefined) expect((await c.call(command({ cc: 0x165, params: new W().u32(handles.object.rsa).build() }))).rc).toBe(0);
        delete handles.object.rsa;
        handles.object.ecc = await load(loadExternal(eccPublic(eccObjectPair.publicKey, SIGN | USER_WITH_AUTH, 0x04), eccObjectSecret));
      }
      if (k.object === 'rsa' && handles.object.rsa === undefined) {
        if (handles.object.ecc !== undefined) expect((await c.call(command({ cc: 0x165, params: new W().u32(handles.object.ecc).build() }))).rc).toBe(0);
        delete handles.object.ecc;
        handles.object.rsa = await load(loadExternal(rsaPublic(rsaObjectPair.publicKey, DECRYPT | USER_WITH_AUTH), rsaObjectSecret));
      }
      const params = new W().tpm2b(k.reserved ?? new Uint8Array(0)).u16(k.scheme[0]).u16(k.scheme[1]).tpm2b(k.cert).build();
      const r = await c.call(command({ cc: 0x197, handles: [handles.object[k.object]!, k.signer === 'object' ? handles.object[k.object]! : handles.signer[k.signer]], auth: pwAuthArea(new Uint8Array(0), 2), params }));
      if (r.rc !== 0) {
        out.push({ rc: rcHex(r.rc) });
        continue;
      }
      const p = paramsOf(r);
      const added = p.tpm2b();
      const tbsDigest = p.tpm2b();
      const sigAlg = p.u16();
      const hashAlg = p.u16();
      const hashName = { 0x04: 'sha1', 0x0b: 'sha256', 0x0c: 'sha384', 0x0d: 'sha512' }[hashAlg]!;
      let verified: boolean;
      if (sigAlg === 0x18) {
        const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(32 - b.length), b]);
        const sig = Buffer.concat([pad(p.tpm2b()), pad(p.tpm2b())]);
        verified = verifyDigest(eccPair.publicKey, hashName, tbsDigest, sig, 'ecdsa');
      } else {
        verified = verifyDigest(rsaPair.publicKey, hashName, tbsDigest, p.tpm2b(), sigAlg === 0x16 ? 'pss' : 'pkcs1');
      }
      out.push({ rc: rcHex(r.rc), added: added.toString('hex'), tbsDigest: tbsDigest.toString('hex'), verified });
    }
    return out;
  } finally {
    c.close();
    await d.stop();
  }
}

/** Verify a signature over a digest already made (the TPM signs tbsDigest itself). */
function verifyDigest(key: nodeCrypto.KeyObject, hashName: string, digest: Buffer, sig: Buffer, kind: 'ecdsa' | 'pkcs1' | 'pss'): boolean {
  if (kind === 'ecdsa') {
    const j = key.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.of(4), b64(j.x), b64(j.y)]);
    // Either S is a valid ECDSA signature: no low-S rule.
    return p256.verify(sig, digest, point, { prehash: false, format: 'compact', lowS: false });
  }
  if (kind === 'pss') return pssDigestVerify(key, hashName, digest, sig);
  const recovered = nodeCrypto.publicDecrypt({ key, padding: nodeCrypto.constants.RSA_PKCS1_PADDING }, sig);
  return recovered.subarray(recovered.length - digest.length).equals(digest);
}

/** RFC 8017 §9.1.2 EMSA-PSS-VERIFY over a digest, with the public-key operation done by OpenSSL. */
function pssDigestVerify(key: nodeCrypto.KeyObject, hashName: string, mHash: Buffer, sig: Buffer): boolean {
  const em = nodeCrypto.publicEncrypt({ key, padding: nodeCrypto.constants.RSA_NO_PADDING }, sig);
  const hLen = mHash.length;
  const modBits = (key.asymmetricKeyDetails!.modulusLength as number);
  const emLen = Math.ceil((modBits - 1) / 8);
  const e = em.subarray(em.length - emLen);
  if (e[e.length - 1] !== 0xbc) return false;
  const maskedDb = e.subarray(0, emLen - hLen - 1);
  const h = e.subarray(emLen - hLen - 1, emLen - 1);
  const mask = Buffer.alloc(maskedDb.length);
  for (let counter = 0, off = 0; off < mask.length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = nodeCrypto.createHash(hashName).update(h).update(c).digest();
    block.copy(mask, off);
    off += block.length;
  }
  const db = Buffer.from(maskedDb.map((b, i) => b ^ mask[i]!));
  db[0]! &= 0xff >> (8 * emLen - (modBits - 1));
  const one = db.indexOf(1);
  if (one < 0 || db.subarray(0, one).some((b) => b !== 0)) return false;
  const salt = db.subarray(one + 1);
  const hh = nodeCrypto.createHash(hashName).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return hh.equals(h);
}

it.skipIf(!vtpmdAvailable() || !swtpmAvailable())('CertifyX509: vtpmd answers as swtpm, addedToCertificate and tbsDigest byte-identical', async () => {
  const [ours, theirs] = [await runAll('vtpmd'), await runAll('swtpm')];
  const lines = (o: Outcome[]) => o.map((x, i) => `${CASES[i]!.what}: ${x.rc}${x.added ? ` ${x.added} ${x.tbsDigest}` : ''}`);
  expect(lines(ours)).toEqual(lines(theirs));
  for (const o of [...ours, ...theirs]) if (o.rc === '0x000') expect(o.verified).toBe(true);
  expect(ours.filter((o) => o.rc === '0x000')).toHaveLength(9);
}, 120_000);

/** The partial certificates of the first, second and fourth cases with 1-3 bytes changed, the same list for both TPMs (xorshift from a fixed seed). */
function mutatedCases(count: number): Case[] {
  const rnd = xorshift32(0x5eed);
  return Array.from({ length: count }, (_, i) => {
    const base = CASES[[0, 1, 3][i % 3]!]!;
    const cert = Buffer.from(base.cert);
    for (let m = 1 + Math.floor(rnd() * 3); m > 0; m--) cert[Math.floor(rnd() * cert.length)] = Math.floor(rnd() * 256);
    return { ...base, what: `mutation ${i}`, cert };
  });
}

it.skipIf(!vtpmdAvailable() || !swtpmAvailable())('CertifyX509: mutated partial certificates get the same answers from vtpmd and swtpm', async () => {
  const cases = mutatedCases(Number(process.env.X509_MUTATIONS ?? 300));
  const [ours, theirs] = [await runAll('vtpmd', cases), await runAll('swtpm', cases)];
  const lines = (o: Outcome[]) => o.map((x, i) => `${cases[i]!.what} ${Buffer.from(cases[i]!.cert).toString('hex')}: ${x.rc}${x.added ? ` ${x.added} ${x.tbsDigest}` : ''}`);
  expect(lines(ours)).toEqual(lines(theirs));
  expect(new Set(ours.map((o) => o.rc)).size).toBeGreaterThan(2);
}, 300_000);
