/**
 * Dictionary-attack protection (Part 1 §19.8, Part 3 §25): failures of DA-protected
 * authorizations count, reach lockout, heal with time, lockoutAuth locks itself, the counters
 * persist and a shutdown that was not orderly after DA use counts as one more failure.
 */
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RH } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { serializeState } from '../../../src/tpm/state/serialize.js';
import { be, cat, createTestTpm, type TestTpm } from '../../helpers/engine.js';
import { callWithSessions, startSession, SYM_XOR } from '../../helpers/session-client.js';

const AUTH_FAIL_S1 = 0x98e;
const BAD_AUTH_S1 = 0x9a2;
const LOCKOUT = 0x921;

/** An ECC signing key without noDA (so DA-protected), authValue "pw". */
function protectedKey(t: TestTpm): number {
  const template = cat(
    be.u16(TPM_ALG.ECC), be.u16(TPM_ALG.SHA256), be.u32(0x00040072), be.u16(0),
    be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.ECDSA), be.u16(TPM_ALG.SHA256), be.u16(0x0003), be.u16(TPM_ALG.NULL),
    be.u16(0), be.u16(0),
  );
  const sensitive = cat(be.b2('pw'), be.u16(0));
  const r = t.call(TPM_CC.CreatePrimary, { handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(sensitive), be.b2(template), be.u16(0), be.u32(0)) });
  expect(r.rc).toBe(0);
  return new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
}

/** Uses the key's authValue (PolicySecret in a trial session authorizes its first handle). */
function useKey(t: TestTpm, key: number, session: number, password: string): number {
  return t.call(TPM_CC.PolicySecret, { handles: [key, session], passwords: [password], params: cat(be.u16(0), be.u16(0), be.u16(0), be.u32(0)) }).rc;
}

/** TPM_PT_LOCKOUT_COUNTER, MAX_AUTH_FAIL, LOCKOUT_INTERVAL, LOCKOUT_RECOVERY and TPMA_PERMANENT.inLockout. */
function daProperties(t: TestTpm) {
  const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(6), be.u32(0x20e), be.u32(4)) });
  const v = new DataView(r.body.buffer, r.body.byteOffset);
  const value = (i: number) => v.getUint32(9 + i * 8 + 4);
  const p = t.call(TPM_CC.GetCapability, { params: cat(be.u32(6), be.u32(0x200), be.u32(1)) });
  const permanent = new DataView(p.body.buffer, p.body.byteOffset).getUint32(13);
  return { failedTries: value(0), maxTries: value(1), recoveryTime: value(2), lockoutRecovery: value(3), inLockout: (permanent & (1 << 9)) !== 0 };
}

function setup(): { t: TestTpm; key: number; session: number } {
  const t = createTestTpm();
  const key = protectedKey(t);
  const session = startSession(t, { type: 3 }).handle;
  return { t, key, session };
}

describe('dictionary-attack protection', () => {
  test('defaults as libtpms: 3 tries, 1000 s, 1000 s', () => {
    const t = createTestTpm();
    expect(daProperties(t)).toEqual({ failedTries: 0, maxTries: 3, recoveryTime: 1000, lockoutRecovery: 1000, inLockout: false });
  });

  test('wrong passwords count (TPM_RC_AUTH_FAIL), then TPM_RC_LOCKOUT even for the right one; LockReset clears', () => {
    const { t, key, session } = setup();
    expect(useKey(t, key, session, 'pw')).toBe(0);
    expect(t.engine.takePermanentChanges()).not.toBeNull();
    for (let i = 1; i <= 3; i++) {
      expect(useKey(t, key, session, 'wrong')).toBe(AUTH_FAIL_S1);
      // Each failure is in the permanent state before the response leaves.
      expect(t.engine.takePermanentChanges()).not.toBeNull();
      expect(daProperties(t).failedTries).toBe(i);
    }
    expect(daProperties(t).inLockout).toBe(true);
    expect(useKey(t, key, session, 'pw')).toBe(LOCKOUT);
    // Exempt entities still work: the owner hierarchy (BAD_AUTH on a wrong password, no count).
    expect(t.call(TPM_CC.HierarchyChangeAuth, { handles: [TPM_RH.OWNER], passwords: ['nope'], params: be.b2('') }).rc).toBe(BAD_AUTH_S1);
    expect(t.call(TPM_CC.DictionaryAttackLockReset, { handles: [TPM_RH.LOCKOUT], passwords: [''] }).rc).toBe(0);
    expect(daProperties(t).failedTries).toBe(0);
    expect(useKey(t, key, session, 'pw')).toBe(0);
  });

  test('failedTries heals by one per recoveryTime seconds of TPM time', () => {
    const { t, key, session } = setup();
    expect(t.call(TPM_CC.DictionaryAttackParameters, { handles: [TPM_RH.LOCKOUT], passwords: [''], params: cat(be.u32(5), be.u32(10), be.u32(20)) }).rc).toBe(0);
    expect(daProperties(t)).toMatchObject({ maxTries: 5, recoveryTime: 10, lockoutRecovery: 20 });
    expect(useKey(t, key, session, 'x')).toBe(AUTH_FAIL_S1);
    expect(useKey(t, key, session, 'x')).toBe(AUTH_FAIL_S1);
    t.clock.advance(10_500);
    expect(daProperties(t).failedTries).toBe(1);
    t.clock.advance(10_000);
    expect(daProperties(t).failedTries).toBe(0);
    // recoveryTime 0 disables DA: failures are not counted.
    expect(t.call(TPM_CC.DictionaryAttackParameters, { handles: [TPM_RH.LOCKOUT], passwords: [''], params: cat(be.u32(5), be.u32(0), be.u32(20)) }).rc).toBe(0);
    expect(useKey(t, key, session, 'x')).toBe(AUTH_FAIL_S1);
    expect(daProperties(t).failedTries).toBe(0);
  });

  test('a wrong lockoutAuth disables lockoutAuth for lockoutRecovery seconds', () => {
    const t = createTestTpm();
    expect(t.call(TPM_CC.DictionaryAttackParameters, { handles: [TPM_RH.LOCKOUT], passwords: [''], params: cat(be.u32(3), be.u32(1000), be.u32(30)) }).rc).toBe(0);
    expect(t.call(TPM_CC.DictionaryAttackLockReset, { handles: [TPM_RH.LOCKOUT], passwords: ['bad'] }).rc).toBe(AUTH_FAIL_S1);
    expect(t.call(TPM_CC.DictionaryAttackLockReset, { handles: [TPM_RH.LOCKOUT], passwords: [''] }).rc).toBe(LOCKOUT);
    t.clock.advance(30_001);
    expect(t.call(TPM_CC.DictionaryAttackLockReset, { handles: [TPM_RH.LOCKOUT], passwords: [''] }).rc).toBe(0);
  });

  test('lockoutRecovery 0: lockoutAuth comes back only at the next Startup', () => {
    const t = createTestTpm();
    expect(t.call(TPM_CC.DictionaryAttackParameters, { handles: [TPM_RH.LOCKOUT], passwords: [''], params: cat(be.u32(3), be.u32(1000), be.u32(0)) }).rc).toBe(0);
    expect(t.call(TPM_CC.DictionaryAttackLockReset, { handles: [TPM_RH.LOCKOUT], passwords: ['bad'] }).rc).toBe(AUTH_FAIL_S1);
    t.clock.advance(10_000_000);
    expect(t.call(TPM_CC.DictionaryAttackLockReset, { handles: [TPM_RH.LOCKOUT], passwords: [''] }).rc).toBe(LOCKOUT);
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(t.call(TPM_CC.DictionaryAttackLockReset, { handles: [TPM_RH.LOCKOUT], passwords: [''] }).rc).toBe(0);
  });

  test('DA used, then power lost without Shutdown: the next Startup counts one failure; an orderly Shutdown does not', () => {
    const { t, key, session } = setup();
    expect(useKey(t, key, session, 'pw')).toBe(0);
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(daProperties(t).failedTries).toBe(1);
    // Without DA use since that Startup, another power loss counts nothing.
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(daProperties(t).failedTries).toBe(1);
    const key2 = protectedKey(t);
    const s2 = startSession(t, { type: 3 }).handle;
    expect(useKey(t, key2, s2, 'pw')).toBe(0);
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(0) }).rc).toBe(0);
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(daProperties(t).failedTries).toBe(1);
  });

  test('the counters survive a restart from the permanent blob; a version-1 blob loads with the defaults', () => {
    const { t, key, session } = setup();
    expect(useKey(t, key, session, 'no')).toBe(AUTH_FAIL_S1);
    const blob = t.engine.permanentBlob();
    const restored = Engine.restore(blob, t.env);
    restored.init();
    const r = restored.execute(cat(be.u16(0x8001), be.u32(12), be.u32(TPM_CC.Startup), be.u16(0)));
    expect(r[9]).toBe(0);
    const cap = restored.execute(cat(be.u16(0x8001), be.u32(22), be.u32(TPM_CC.GetCapability), be.u32(6), be.u32(0x20e), be.u32(1)));
    expect(new DataView(cap.buffer, cap.byteOffset).getUint32(10 + 9 + 4)).toBeGreaterThanOrEqual(1);
    // A state written before DA existed: no `da` field, version 1.
    const old = { ...t.engine.tpm.persistent };
    delete old.da;
    const v1 = Engine.restore(serializeState('permanent', 1, 1, old), t.env);
    v1.init();
    expect(v1.execute(cat(be.u16(0x8001), be.u32(12), be.u32(TPM_CC.Startup), be.u16(0)))[9]).toBe(0);
    const cap1 = v1.execute(cat(be.u16(0x8001), be.u32(22), be.u32(TPM_CC.GetCapability), be.u32(6), be.u32(0x20f), be.u32(1)));
    expect(new DataView(cap1.buffer, cap1.byteOffset).getUint32(10 + 9 + 4)).toBe(3);
  });

  test('an HMAC session bound to a DA-protected key is refused in lockout; an unbound one without the authValue is not counted', () => {
    const { t, key, session } = setup();
    for (let i = 0; i < 3; i++) useKey(t, key, session, 'x');
    expect(daProperties(t).inLockout).toBe(true);
    const bound = startSession(t, { bind: key, bindAuth: new TextEncoder().encode('pw'), symmetric: SYM_XOR });
    expect(bound.rc).toBe(0);
    // Even only for response encryption, its use is DA-protected.
    expect(callWithSessions(t, { code: TPM_CC.GetRandom, params: be.u16(8) }, [{ session: bound, attrs: 0x41 }]).r.rc).toBe(LOCKOUT);
    const free = startSession(t, { symmetric: SYM_XOR });
    expect(callWithSessions(t, { code: TPM_CC.GetRandom, params: be.u16(8) }, [{ session: free, attrs: 0x41 }]).r.rc).toBe(0);
  });
});
