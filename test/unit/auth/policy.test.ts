/**
 * Policy sessions (Part 1 §19.7, Part 3 §23): every digest update is recomputed here from the
 * spec's formula with node:crypto, then checked against PolicyGetDigest; real policy sessions
 * are then used to authorize and each recorded condition is shown to be enforced.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RH, TPM_ST } from '../../../src/tpm/constants.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import { callWithSessions, digest, startSession, type ClientSession } from '../../helpers/session-client.js';

const SHA256 = TPM_ALG.SHA256;
const H = (...p: Uint8Array[]) => digest(SHA256, ...p);
const ZERO: Uint8Array = new Uint8Array(32);
const TRIAL = 3;
const POLICY = 1;

function getDigest(t: TestTpm, s: ClientSession): Uint8Array {
  const r = t.call(TPM_CC.PolicyGetDigest, { handles: [s.handle] });
  expect(r.rc).toBe(0);
  return r.body.slice(2);
}

const call = (t: TestTpm, code: number, s: ClientSession, params: Uint8Array = new Uint8Array(0)) => t.call(code, { handles: [s.handle], params }).rc;

describe('policy digests in a trial session (known answers from the spec\'s formulas)', () => {
  test('CommandCode, AuthValue, Password, PhysicalPresence, Locality, NvWritten chain', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: TRIAL });
    let d: Uint8Array = ZERO;
    expect(call(t, TPM_CC.PolicyCommandCode, s, be.u32(TPM_CC.HierarchyChangeAuth))).toBe(0);
    d = H(d, be.u32(TPM_CC.PolicyCommandCode), be.u32(TPM_CC.HierarchyChangeAuth));
    expect(hex(getDigest(t, s))).toBe(hex(d));
    expect(call(t, TPM_CC.PolicyAuthValue, s)).toBe(0);
    d = H(d, be.u32(TPM_CC.PolicyAuthValue));
    expect(call(t, TPM_CC.PolicyPassword, s)).toBe(0);
    d = H(d, be.u32(TPM_CC.PolicyAuthValue)); // PolicyPassword extends with PolicyAuthValue's code
    expect(call(t, TPM_CC.PolicyPhysicalPresence, s)).toBe(0);
    d = H(d, be.u32(TPM_CC.PolicyPhysicalPresence));
    expect(call(t, TPM_CC.PolicyLocality, s, be.u8(0x03))).toBe(0);
    d = H(d, be.u32(TPM_CC.PolicyLocality), be.u8(0x03));
    expect(call(t, TPM_CC.PolicyNvWritten, s, be.u8(1))).toBe(0);
    d = H(d, be.u32(TPM_CC.PolicyNvWritten), be.u8(1));
    expect(hex(getDigest(t, s))).toBe(hex(d));
    expect(call(t, TPM_CC.PolicyRestart, s)).toBe(0);
    expect(hex(getDigest(t, s))).toBe(hex(ZERO));
  });

  test('PolicyPCR uses the current PCR values; PolicyOR hashes the list from zeros', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: TRIAL });
    // PCRs 0 and 16 in the SHA-256 bank: 0 is zeros after Startup at locality 0, 16 is zeros.
    const sel = cat(be.u32(1), be.u16(SHA256), be.u8(3), new Uint8Array([0x01, 0x00, 0x01]));
    expect(call(t, TPM_CC.PolicyPCR, s, cat(be.u16(0), sel))).toBe(0);
    const pcrs = H(new Uint8Array(32), new Uint8Array(32));
    const d1 = H(ZERO, be.u32(TPM_CC.PolicyPCR), sel, pcrs);
    expect(hex(getDigest(t, s))).toBe(hex(d1));
    const other = H(new TextEncoder().encode('other branch'));
    expect(call(t, TPM_CC.PolicyOR, s, cat(be.u32(2), be.b2(d1), be.b2(other)))).toBe(0);
    expect(hex(getDigest(t, s))).toBe(hex(H(ZERO, be.u32(TPM_CC.PolicyOR), d1, other)));
    // A list of one is TPM_RC_SIZE+P1.
    expect(call(t, TPM_CC.PolicyOR, s, cat(be.u32(1), be.b2(d1)))).toBe(0x1d5);
  });

  test('CpHash, NameHash, Template, DuplicationSelect, CounterTimer', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: TRIAL });
    const cp = H(new TextEncoder().encode('cp'));
    expect(call(t, TPM_CC.PolicyCpHash, s, be.b2(cp))).toBe(0);
    let d = H(ZERO, be.u32(TPM_CC.PolicyCpHash), cp);
    expect(hex(getDigest(t, s))).toBe(hex(d));
    // The cpHash slot is taken: NameHash is TPM_RC_CPHASH, a wrong size TPM_RC_SIZE+P1.
    expect(call(t, TPM_CC.PolicyNameHash, s, be.b2(cp))).toBe(0x151);
    expect(call(t, TPM_CC.PolicyCpHash, s, be.b2(new Uint8Array(20)))).toBe(0x1d5);
    const s2 = startSession(t, { type: TRIAL });
    expect(call(t, TPM_CC.PolicyNameHash, s2, be.b2(cp))).toBe(0);
    expect(hex(getDigest(t, s2))).toBe(hex(H(ZERO, be.u32(TPM_CC.PolicyNameHash), cp)));
    expect(call(t, TPM_CC.PolicyRestart, s2)).toBe(0);
    expect(call(t, TPM_CC.PolicyTemplate, s2, be.b2(cp))).toBe(0);
    expect(hex(getDigest(t, s2))).toBe(hex(H(ZERO, be.u32(TPM_CC.PolicyTemplate), cp)));
    expect(call(t, TPM_CC.PolicyRestart, s2)).toBe(0);
    const obj = cat(be.u16(SHA256), H(be.u8(1)));
    const parent = cat(be.u16(SHA256), H(be.u8(2)));
    expect(call(t, TPM_CC.PolicyDuplicationSelect, s2, cat(be.b2(obj), be.b2(parent), be.u8(1)))).toBe(0);
    expect(hex(getDigest(t, s2))).toBe(hex(H(ZERO, be.u32(TPM_CC.PolicyDuplicationSelect), obj, parent, be.u8(1))));
    const s3 = startSession(t, { type: TRIAL });
    const operand = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 5]);
    expect(call(t, TPM_CC.PolicyCounterTimer, s3, cat(be.b2(operand), be.u16(8), be.u16(3)))).toBe(0);
    const args = H(operand, be.u16(8), be.u16(3));
    expect(hex(getDigest(t, s3))).toBe(hex(H(ZERO, be.u32(TPM_CC.PolicyCounterTimer), args)));
    void d;
    d = ZERO;
  });

  test('PolicySecret and PolicyAuthorize in a trial session', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: TRIAL });
    const ref = new TextEncoder().encode('ref');
    const r = t.call(TPM_CC.PolicySecret, {
      handles: [TPM_RH.OWNER, s.handle],
      passwords: [''],
      params: cat(be.u16(0), be.u16(0), be.b2(ref), be.u32(0)),
    });
    expect(r.rc).toBe(0);
    const d = H(H(ZERO, be.u32(TPM_CC.PolicySecret), be.u32(TPM_RH.OWNER)), ref);
    expect(hex(getDigest(t, s))).toBe(hex(d));
    const keySign = cat(be.u16(SHA256), H(be.u8(9)));
    const nullTicket = cat(be.u16(TPM_ST.VERIFIED), be.u32(TPM_RH.NULL), be.u16(0));
    expect(call(t, TPM_CC.PolicyAuthorize, s, cat(be.b2(d), be.b2(ref), be.b2(keySign), nullTicket))).toBe(0);
    expect(hex(getDigest(t, s))).toBe(hex(H(H(ZERO, be.u32(TPM_CC.PolicyAuthorize), keySign), ref)));
    // keySign must be a Name: TPM_RC_SIZE+P3.
    expect(call(t, TPM_CC.PolicyAuthorize, s, cat(be.b2(d), be.b2(ref), be.b2(be.u16(SHA256)), nullTicket))).toBe(0x3d5);
  });
});

/** Sets ownerPolicy by SetPrimaryPolicy (owner password empty). */
function setOwnerPolicy(t: TestTpm, policy: Uint8Array): void {
  expect(t.call(TPM_CC.SetPrimaryPolicy, { handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(policy), be.u16(SHA256)) }).rc).toBe(0);
}

const changeOwnerAuth = (t: TestTpm, s: ClientSession, authValue: Uint8Array, newAuth: string, locality = 0) =>
  callWithSessions(t, { code: TPM_CC.HierarchyChangeAuth, handles: [TPM_RH.OWNER], params: be.b2(newAuth) }, [{ session: s, attrs: 1, authValue }], locality);

describe('policy sessions authorize what their digest allows, and only that', () => {
  test('CommandCode + AuthValue on ownerPolicy: HierarchyChangeAuth through the policy', () => {
    const t = createTestTpm();
    const policy = H(H(ZERO, be.u32(TPM_CC.PolicyCommandCode), be.u32(TPM_CC.HierarchyChangeAuth)), be.u32(TPM_CC.PolicyAuthValue));
    setOwnerPolicy(t, policy);
    const s = startSession(t, { type: POLICY });
    expect(call(t, TPM_CC.PolicyCommandCode, s, be.u32(TPM_CC.HierarchyChangeAuth))).toBe(0);
    expect(call(t, TPM_CC.PolicyAuthValue, s)).toBe(0);
    expect(hex(getDigest(t, s))).toBe(hex(policy));
    // A policy session's nonce from the last command is needed for its HMAC.
    const r = changeOwnerAuth(t, s, new Uint8Array(0), 'pw');
    expect(r.r.rc).toBe(0);
    // After an authorization the policy starts over (the nonce rolled).
    expect(hex(getDigest(t, s))).toBe(hex(ZERO));
    // A wrong digest now: TPM_RC_POLICY_FAIL+S1.
    expect(changeOwnerAuth(t, s, new TextEncoder().encode('pw'), '').r.rc).toBe(0x99d);
  });

  test('a policy for another command is TPM_RC_POLICY_CC; an empty authPolicy TPM_RC_AUTH_UNAVAILABLE', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: POLICY });
    expect(call(t, TPM_CC.PolicyCommandCode, s, be.u32(TPM_CC.CreatePrimary))).toBe(0);
    expect(changeOwnerAuth(t, s, new Uint8Array(0), 'x').r.rc).toBe(0x12f);
    setOwnerPolicy(t, getDigest(t, s));
    expect(changeOwnerAuth(t, s, new Uint8Array(0), 'x').r.rc).toBe(0x9a4);
  });

  test('PolicyPassword: the authValue in clear in the HMAC field; the response HMAC is empty', () => {
    const t = createTestTpm();
    setOwnerPolicy(t, H(ZERO, be.u32(TPM_CC.PolicyAuthValue)));
    expect(t.call(TPM_CC.HierarchyChangeAuth, { handles: [TPM_RH.OWNER], passwords: [''], params: be.b2('secret') }).rc).toBe(0);
    const s = startSession(t, { type: POLICY });
    expect(call(t, TPM_CC.PolicyPassword, s)).toBe(0);
    const nonce = new Uint8Array(16).fill(7);
    const area = cat(be.u32(s.handle), be.b2(nonce), be.u8(1), be.b2('secret'));
    const body = cat(be.u32(TPM_RH.OWNER), be.u32(area.length), area, be.b2(''));
    const r = t.send(cat(be.u16(TPM_ST.SESSIONS), be.u32(10 + body.length), be.u32(TPM_CC.HierarchyChangeAuth), body));
    expect(r.rc).toBe(0);
    expect(hex(r.body.subarray(r.body.length - 2))).toBe('0000');
  });

  test('PolicyLocality and PolicyPhysicalPresence are enforced', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: POLICY });
    expect(call(t, TPM_CC.PolicyLocality, s, be.u8(0x08))).toBe(0); // locality 3 only
    // Narrowing to nothing is TPM_RC_RANGE+P1.
    const s2 = startSession(t, { type: POLICY });
    expect(call(t, TPM_CC.PolicyLocality, s2, be.u8(0x01))).toBe(0);
    expect(call(t, TPM_CC.PolicyLocality, s2, be.u8(0x02))).toBe(0x1cd);
    setOwnerPolicy(t, getDigest(t, s));
    expect(changeOwnerAuth(t, s, new Uint8Array(0), 'x').r.rc).toBe(0x907);
    const s3 = startSession(t, { type: POLICY });
    expect(call(t, TPM_CC.PolicyLocality, s3, be.u8(0x08))).toBe(0);
    expect(changeOwnerAuth(t, s3, new Uint8Array(0), 'x', 3).r.rc).toBe(0);
  });

  test('PolicyPCR: a PCR change after the assertion is TPM_RC_PCR_CHANGED', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: POLICY });
    const sel = cat(be.u32(1), be.u16(SHA256), be.u8(3), new Uint8Array([0, 0, 1]));
    // A wrong expected digest is TPM_RC_VALUE+P1.
    expect(call(t, TPM_CC.PolicyPCR, s, cat(be.b2(H(be.u8(1))), sel))).toBe(0x1c4);
    expect(call(t, TPM_CC.PolicyPCR, s, cat(be.u16(0), sel))).toBe(0);
    setOwnerPolicy(t, getDigest(t, s));
    // PCR 16 (debug) does not move the update counter; PCR 1 does.
    expect(t.call(TPM_CC.PCR_Extend, { handles: [1], passwords: [''], params: cat(be.u32(1), be.u16(SHA256), ZERO) }).rc).toBe(0);
    expect(changeOwnerAuth(t, s, new Uint8Array(0), 'x').r.rc).toBe(0x128);
  });

  test('PolicySecret: authorized like any command; its ticket redeemed by PolicyTicket gives the same digest', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: POLICY });
    const ref = new TextEncoder().encode('r');
    const r = t.call(TPM_CC.PolicySecret, {
      handles: [TPM_RH.OWNER, s.handle],
      passwords: [''],
      params: cat(be.b2(new Uint8Array(0)), be.u16(0), be.b2(ref), be.u32(-60 >>> 0)),
    });
    expect(r.rc).toBe(0);
    const expected = H(H(ZERO, be.u32(TPM_CC.PolicySecret), be.u32(TPM_RH.OWNER)), ref);
    expect(hex(getDigest(t, s))).toBe(hex(expected));
    const out = r.params();
    const timeout = out.slice(0, 10); // TPM2B_TIMEOUT of 8 bytes
    expect(timeout[0]! * 256 + timeout[1]!).toBe(8);
    const ticket = out.slice(10);
    const s2 = startSession(t, { type: POLICY });
    const params = cat(timeout, be.u16(0), be.b2(ref), be.b2(be.u32(TPM_RH.OWNER)), ticket);
    expect(t.call(TPM_CC.PolicyTicket, { handles: [s2.handle], params }).rc).toBe(0);
    expect(hex(getDigest(t, s2))).toBe(hex(expected));
    // A tampered ticket is TPM_RC_TICKET+P5.
    const bad = ticket.slice();
    bad[bad.length - 1]! ^= 1;
    expect(t.call(TPM_CC.PolicyTicket, { handles: [s2.handle], params: cat(timeout, be.u16(0), be.b2(ref), be.b2(be.u32(TPM_RH.OWNER)), bad) }).rc).toBe(0x5e0);
    // Past its expiry (60 s) the ticket is TPM_RC_EXPIRED+P1.
    t.clock.advance(61_000);
    expect(t.call(TPM_CC.PolicyTicket, { handles: [s2.handle], params }).rc).toBe(0x1e3);
  });

  test('PolicyAuthorize with a TPMT_TK_VERIFIED made from the owner proof', () => {
    const t = createTestTpm();
    const s = startSession(t, { type: POLICY });
    expect(call(t, TPM_CC.PolicyAuthValue, s)).toBe(0);
    const approved = getDigest(t, s);
    const ref = new Uint8Array(0);
    const keySign = cat(be.u16(SHA256), H(be.u8(42)));
    const aHash = H(approved, ref);
    const proof = t.engine.tpm.persistent.shProof;
    const mac = new Uint8Array(createHmac('sha512', proof).update(be.u16(TPM_ST.VERIFIED)).update(aHash).update(keySign).digest());
    const ticket = cat(be.u16(TPM_ST.VERIFIED), be.u32(TPM_RH.OWNER), be.b2(mac));
    const wrong = cat(be.u16(TPM_ST.VERIFIED), be.u32(TPM_RH.OWNER), be.b2(mac.map((b, i) => (i === 0 ? b ^ 1 : b))));
    expect(call(t, TPM_CC.PolicyAuthorize, s, cat(be.b2(approved), be.b2(ref), be.b2(keySign), wrong))).toBe(0x4c4);
    expect(call(t, TPM_CC.PolicyAuthorize, s, cat(be.b2(approved), be.b2(ref), be.b2(keySign), ticket))).toBe(0);
    expect(hex(getDigest(t, s))).toBe(hex(H(H(ZERO, be.u32(TPM_CC.PolicyAuthorize), keySign), ref)));
  });

  test('a trial session never authorizes; an HMAC session handle is not a policy session', () => {
    const t = createTestTpm();
    const trial = startSession(t, { type: TRIAL });
    expect(changeOwnerAuth(t, trial, new Uint8Array(0), 'x').r.rc).toBe(0x982);
    const h = startSession(t);
    expect(t.call(TPM_CC.PolicyGetDigest, { handles: [h.handle] }).rc).toBe(0x184);
  });
});

describe('SetPrimaryPolicy', () => {
  test('the policy is listed by GetCapability(TPM_CAP_AUTH_POLICIES); a digest of the wrong size is TPM_RC_SIZE+P1', () => {
    const t = createTestTpm();
    const policy = H(new TextEncoder().encode('endorsement policy'));
    expect(t.call(TPM_CC.SetPrimaryPolicy, { handles: [TPM_RH.ENDORSEMENT], passwords: [''], params: cat(be.b2(policy), be.u16(SHA256)) }).rc).toBe(0);
    expect(t.call(TPM_CC.SetPrimaryPolicy, { handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(new Uint8Array(20)), be.u16(SHA256)) }).rc).toBe(0x1d5);
    const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(9), be.u32(TPM_RH.ENDORSEMENT), be.u32(1)) });
    expect(r.rc).toBe(0);
    // moreData, capability, count 1, handle, TPMT_HA (SHA-256 and the digest).
    expect(hex(r.body.subarray(1))).toBe('00000009' + '00000001' + '4000000b' + '000b' + hex(policy));
    // The permanent state changed and is persisted.
    expect(t.engine.takePermanentChanges()).not.toBeNull();
  });
});
