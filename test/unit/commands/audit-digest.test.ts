/**
 * Part 3 §18.5 GetSessionAuditDigest and §18.6 GetCommandAuditDigest in the engine: the attested
 * digests against values computed here, the signature verified by node:crypto, the reference's
 * order of checks, and when the command audit digest restarts.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE, TPM_RC, TPM_RH, TPM_ST } from '../../../src/tpm/constants.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { TPM2B_ATTEST, type TPMS_ATTEST } from '../../../src/tpm/marshal/attest.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { TPM2B_PUBLIC, TPMA_OBJECT, TPMT_SIGNATURE, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import { callWithSessions, digest, startSession } from '../../helpers/session-client.js';

const SHA256 = TPM_ALG.SHA256;
const H = (...p: Uint8Array[]) => digest(SHA256, ...p);
const AUDIT = 0x80;
const CONTINUE = 0x01;
const NULL_SCHEME = be.u16(TPM_ALG.NULL);

/** An ECDSA-SHA256 P-256 signing primary in the endorsement hierarchy; its handle and public point. */
function signingKey(t: TestTpm, sign = true): { handle: number; x: Uint8Array; y: Uint8Array } {
  const a = TPMA_OBJECT;
  const template = {
    type: TPM_ALG.ECC, nameAlg: SHA256, authPolicy: new Uint8Array(0),
    objectAttributes: a.fixedTPM | a.fixedParent | a.sensitiveDataOrigin | a.userWithAuth | (sign ? a.sign : a.decrypt),
    parameters: {
      symmetric: { algorithm: TPM_ALG.NULL, keyBits: null, mode: null },
      scheme: sign ? { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } } : { scheme: TPM_ALG.NULL, details: null },
      curveID: TPM_ECC_CURVE.NIST_P256, kdf: { scheme: TPM_ALG.NULL, details: null },
    },
    unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
  } as TPMT_PUBLIC;
  const params = cat(be.b2(cat(be.b2(new Uint8Array(0)), be.b2(new Uint8Array(0)))), encode(TPM2B_PUBLIC, template), be.b2(new Uint8Array(0)), be.u32(0));
  const r = t.call(TPM_CC.CreatePrimary, { handles: [TPM_RH.ENDORSEMENT], passwords: [''], params });
  expect(r.rc).toBe(0);
  const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
  const pub = TPM2B_PUBLIC.read(new Reader(r.params(1))) as TPMT_PUBLIC;
  const { x, y } = pub.unique as { x: Uint8Array; y: Uint8Array };
  return { handle, x, y };
}

/** The attestation and its signature from a Get*AuditDigest response. */
function attested(r: { params: (n?: number) => Uint8Array }, handles = 0): { attest: TPMS_ATTEST; bytes: Uint8Array; signature: ReturnType<typeof TPMT_SIGNATURE.read> } {
  const reader = new Reader(r.params(handles));
  const size = new DataView(r.params(handles).buffer, r.params(handles).byteOffset).getUint16(0);
  const bytes = r.params(handles).slice(2, 2 + size);
  const attest = TPM2B_ATTEST.read(reader);
  return { attest, bytes, signature: TPMT_SIGNATURE.read(reader) };
}

/** ECDSA P-256 verification of (r, s) over SHA-256(bytes) with node:crypto. */
function verifies(key: { x: Uint8Array; y: Uint8Array }, bytes: Uint8Array, sig: { signatureR: Uint8Array; signatureS: Uint8Array }): boolean {
  const jwk = { kty: 'EC', crv: 'P-256', x: Buffer.from(key.x).toString('base64url'), y: Buffer.from(key.y).toString('base64url') };
  const publicKey = nodeCrypto.createPublicKey({ key: jwk, format: 'jwk' });
  return nodeCrypto.verify('sha256', bytes, { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.concat([sig.signatureR, sig.signatureS]));
}

const sessionDigestCmd = (t: TestTpm, sign: number, session: number, qualifying = new Uint8Array([1, 2, 3])) =>
  t.call(TPM_CC.GetSessionAuditDigest, { handles: [TPM_RH.ENDORSEMENT, sign, session], passwords: ['', ''], params: cat(be.b2(qualifying), NULL_SCHEME) });
const commandDigestCmd = (t: TestTpm, sign: number) =>
  t.call(TPM_CC.GetCommandAuditDigest, { handles: [TPM_RH.ENDORSEMENT, sign], passwords: ['', ''], params: cat(be.b2(new Uint8Array(0)), NULL_SCHEME) });

describe('GetSessionAuditDigest', () => {
  test('attests the session digest H(H(0…0 || cp || rp)) and exclusivity, signed with the key; errors in the reference order', () => {
    const t = createTestTpm();
    const key = signingKey(t);
    const s = startSession(t, { bind: TPM_RH.OWNER, bindAuth: new Uint8Array(0) });
    const res = callWithSessions(t, { code: TPM_CC.GetRandom, params: be.u16(8) }, [{ session: s, attrs: CONTINUE | AUDIT }]);
    expect(res.r.rc).toBe(0);
    const rp = res.r.params().slice();
    const expected = H(new Uint8Array(32), H(be.u32(TPM_CC.GetRandom), be.u16(8)), H(be.u32(0), be.u32(TPM_CC.GetRandom), rp));

    const r = sessionDigestCmd(t, key.handle, s.handle);
    expect(r.rc).toBe(0);
    const { attest, bytes, signature } = attested(r);
    expect(attest.type).toBe(TPM_ST.ATTEST_SESSION_AUDIT);
    expect(hex(attest.extraData)).toBe('010203');
    if (attest.type !== TPM_ST.ATTEST_SESSION_AUDIT) throw new Error('type');
    expect(hex(attest.attested.sessionDigest)).toBe(hex(expected));
    expect(attest.attested.exclusiveSession).toBe(true);
    expect(signature.sigAlg).toBe(TPM_ALG.ECDSA);
    expect(verifies(key, bytes, signature.signature as { signatureR: Uint8Array; signatureS: Uint8Array })).toBe(true);

    // TPM_RH_NULL: the same structure, unsigned.
    const unsigned = sessionDigestCmd(t, TPM_RH.NULL, s.handle);
    expect(unsigned.rc).toBe(0);
    expect(attested(unsigned).signature.sigAlg).toBe(TPM_ALG.NULL);

    // A session never used for audit: TPM_RC_TYPE at the session handle, after the key checks.
    const plain = startSession(t, {});
    expect(sessionDigestCmd(t, key.handle, plain.handle).rc).toBe(withPosition(TPM_RC.TYPE, { handle: 3 }));
    const decryptKey = signingKey(t, false);
    expect(sessionDigestCmd(t, decryptKey.handle, plain.handle).rc).toBe(withPosition(TPM_RC.KEY, { handle: 2 }));
  });
});

describe('GetCommandAuditDigest', () => {
  test('attests the counter, hash, digest and the digest of the audited codes; a signed report restarts the digest, an unsigned one does not', () => {
    const t = createTestTpm();
    const key = signingKey(t);
    const set = t.call(TPM_CC.SetCommandCodeAuditStatus, {
      handles: [TPM_RH.OWNER], passwords: [''],
      params: cat(be.u16(TPM_ALG.NULL), be.u32(1), be.u32(TPM_CC.GetRandom), be.u32(0)),
    });
    expect(set.rc).toBe(0);
    const random = t.call(TPM_CC.GetRandom, { params: be.u16(4) });
    expect(random.rc).toBe(0);

    const unsigned = attested(commandDigestCmd(t, TPM_RH.NULL)).attest;
    const signed = commandDigestCmd(t, key.handle);
    expect(signed.rc).toBe(0);
    const { attest, bytes, signature } = attested(signed);
    if (attest.type !== TPM_ST.ATTEST_COMMAND_AUDIT || unsigned.type !== TPM_ST.ATTEST_COMMAND_AUDIT) throw new Error('type');
    // A new TPM's audit hash is SHA-512; both reports show the same digest (the unsigned one kept it).
    expect(attest.attested.digestAlg).toBe(TPM_ALG.SHA512);
    expect(attest.attested.auditDigest.length).toBe(64);
    expect(hex(unsigned.attested.auditDigest)).toBe(hex(attest.attested.auditDigest));
    // commandDigest: SHA-512 of the audited codes in ascending order (0x140, then GetRandom's 0x17b).
    const codes = cat(be.u32(TPM_CC.SetCommandCodeAuditStatus), be.u32(TPM_CC.GetRandom));
    expect(hex(attest.attested.commandDigest)).toBe(hex(new Uint8Array(nodeCrypto.createHash('sha512').update(codes).digest())));
    expect(verifies(key, bytes, signature.signature as { signatureR: Uint8Array; signatureS: Uint8Array })).toBe(true);

    // The signed report restarted the digest; the next audited command starts a new one and counts it.
    const after = attested(commandDigestCmd(t, key.handle)).attest;
    if (after.type !== TPM_ST.ATTEST_COMMAND_AUDIT) throw new Error('type');
    expect(after.attested.auditDigest.length).toBe(0);
    expect(after.attested.auditCounter).toBe(attest.attested.auditCounter);
    expect(t.call(TPM_CC.GetRandom, { params: be.u16(4) }).rc).toBe(0);
    const next = attested(commandDigestCmd(t, key.handle)).attest;
    if (next.type !== TPM_ST.ATTEST_COMMAND_AUDIT) throw new Error('type');
    expect(next.attested.auditCounter).toBe(attest.attested.auditCounter + 1n);
    expect(next.attested.auditDigest.length).toBe(64);

    const decryptKey = signingKey(t, false);
    expect(commandDigestCmd(t, decryptKey.handle).rc).toBe(withPosition(TPM_RC.KEY, { handle: 2 }));
  });
});
