/** Part 3 §24.8 HierarchyChangeAuth: new authValues, their lifetimes, and the response HMAC. */
import { createHmac, createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RH, TPM_ST } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { be, buildCommand, cat, createTestTpm, hex, parseResponse, type TestTpm } from '../../helpers/engine.js';

const enc = new TextEncoder();
const changeAuth = (t: TestTpm, handle: number, oldPw: string, newPw: string | Uint8Array) =>
  t.call(TPM_CC.HierarchyChangeAuth, { handles: [handle], passwords: [oldPw], params: be.b2(typeof newPw === 'string' ? enc.encode(newPw) : newPw) });
/** Any command that needs the hierarchy's auth: PCR-free, so HierarchyChangeAuth to the same value. */
const authOk = (t: TestTpm, handle: number, pw: string) => changeAuth(t, handle, pw, pw).rc === 0;

describe('HierarchyChangeAuth', () => {
  test('owner, endorsement and lockout auths change, persist, and are needed afterwards', () => {
    const t = createTestTpm();
    expect(changeAuth(t, TPM_RH.OWNER, '', 'owner-pw').rc).toBe(0);
    expect(changeAuth(t, TPM_RH.ENDORSEMENT, '', 'eh-pw').rc).toBe(0);
    expect(changeAuth(t, TPM_RH.LOCKOUT, '', 'lock-pw').rc).toBe(0);
    expect(changeAuth(t, TPM_RH.OWNER, '', 'x').rc).toBe(0x9a2); // exempt from DA
    expect(changeAuth(t, TPM_RH.LOCKOUT, 'nope', 'x').rc).toBe(0x98e); // DA-protected
    // They are permanent state: a TPM restored from it needs them.
    const other = Engine.restore(t.engine.permanentBlob(), t.env);
    other.init();
    other.execute(buildCommand(TPM_CC.Startup, { params: be.u16(0) }), 0);
    const u: TestTpm = { ...t, engine: other, call: (code, o = {}) => parseResponse(other.execute(buildCommand(code, o), o.locality ?? 0)) };
    expect(authOk(u, TPM_RH.OWNER, 'owner-pw')).toBe(true);
    expect(authOk(u, TPM_RH.ENDORSEMENT, '')).toBe(false);
  });

  test('platformAuth is state-clear: gone after Startup(CLEAR), kept by Shutdown(STATE)/Startup(STATE)', () => {
    const t = createTestTpm();
    expect(changeAuth(t, TPM_RH.PLATFORM, '', 'plat').rc).toBe(0);
    expect(authOk(t, TPM_RH.PLATFORM, 'plat')).toBe(true);
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(1) }).rc).toBe(0);
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(authOk(t, TPM_RH.PLATFORM, '')).toBe(true);
  });

  test('an authValue longer than SHA-512 (after trailing zeros) is TPM_RC_SIZE+P1; NULL is no hierarchy to change', () => {
    const t = createTestTpm();
    expect(changeAuth(t, TPM_RH.OWNER, '', cat(new Uint8Array(64).fill(1), new Uint8Array(0))).rc).toBe(0);
    const r = t.call(TPM_CC.HierarchyChangeAuth, { handles: [TPM_RH.NULL], passwords: [''], params: be.b2('x') });
    expect(r.rc).toBe(0x184);
  });

  test('through an HMAC session the response is authorized with the NEW authValue (Part 1 §19.6.6)', () => {
    const t = createTestTpm();
    const nonceCaller = new Uint8Array(16).fill(3);
    const s = t.call(TPM_CC.StartAuthSession, {
      handles: [TPM_RH.NULL, TPM_RH.NULL],
      params: cat(be.b2(nonceCaller), be.u16(0), be.u8(0), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.SHA256)),
    });
    const session = new DataView(s.body.buffer, s.body.byteOffset).getUint32(0);
    // nonceTPM is as long as nonceCaller (Part 1 §19.6.3).
    expect(s.body[4]! * 256 + s.body[5]!).toBe(16);
    const nonceTPM = s.body.slice(6, 22);
    const params = be.b2('new-owner');
    const cpHash = createHash('sha256').update(be.u32(TPM_CC.HierarchyChangeAuth)).update(be.u32(TPM_RH.OWNER)).update(params).digest();
    const mac = createHmac('sha256', new Uint8Array(0)).update(cpHash).update(nonceCaller).update(nonceTPM).update(be.u8(1)).digest();
    const area = cat(be.u32(session), be.b2(nonceCaller), be.u8(1), be.b2(new Uint8Array(mac)));
    const body = cat(be.u32(TPM_RH.OWNER), be.u32(area.length), area, params);
    const r = t.send(cat(be.u16(TPM_ST.SESSIONS), be.u32(10 + body.length), be.u32(TPM_CC.HierarchyChangeAuth), body));
    expect(r.rc).toBe(0);
    const after = r.body.subarray(4);
    const newNonce = after.subarray(2, 18);
    const rMac = after.subarray(18 + 3);
    const rpHash = createHash('sha256').update(be.u32(0)).update(be.u32(TPM_CC.HierarchyChangeAuth)).digest();
    const expected = createHmac('sha256', enc.encode('new-owner')).update(rpHash).update(newNonce).update(nonceCaller).update(be.u8(1)).digest();
    expect(hex(rMac)).toBe(expected.toString('hex'));
  });
});
