/**
 * Part 3 §24 HierarchyControl, Clear, ClearControl, ChangeEPS, ChangePPS; §22.7-8
 * PCR_SetAuthPolicy/Value; §26.2 PP_Commands: effects and the reference's response codes.
 */
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RH, TPMA_NV, TPMA_PERMANENT, TPMA_STARTUP_CLEAR } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { deserializePersistent, manufacture, PERSISTENT_VERSION, serializePersistent } from '../../../src/tpm/state/persistent.js';
import { serializeState } from '../../../src/tpm/state/serialize.js';
import { be, buildCommand, cat, createTestTpm, hex, parseResponse, restoreTestTpm, type TestTpm } from '../../helpers/engine.js';
import { callWithSessions, startSession } from '../../helpers/session-client.js';
import { createPrimaryParams, ECC_STORAGE_NODA, evict, flush, handleOf, property } from '../../helpers/templates.js';

/** CreatePrimary of the storage template: its handle and Name (hex). */
function primary(t: TestTpm, hierarchy: number, pw = ''): { rc: number; handle: number; name: string } {
  const r = t.call(TPM_CC.CreatePrimary, { handles: [hierarchy], passwords: [pw], params: createPrimaryParams(ECC_STORAGE_NODA) });
  if (r.rc !== 0) return { rc: r.rc, handle: 0, name: '' };
  const rd = new Reader(r.params(1));
  TPM2B_PUBLIC.read(rd);
  rd.bytes(rd.u16()); // creationData
  rd.bytes(rd.u16()); // creationHash
  rd.u16();
  rd.u32();
  rd.bytes(rd.u16()); // ticket
  return { rc: 0, handle: handleOf(r.body), name: hex(rd.bytes(rd.u16())) };
}
const hierarchyControl = (t: TestTpm, auth: number, enable: number, state: number, pw = '') =>
  t.call(TPM_CC.HierarchyControl, { handles: [auth], passwords: [pw], params: cat(be.u32(enable), be.u8(state)) }).rc;
const clear = (t: TestTpm, auth: number = TPM_RH.LOCKOUT, pw = '') => t.call(TPM_CC.Clear, { handles: [auth], passwords: [pw] }).rc;
const clearControl = (t: TestTpm, auth: number, disable: number) =>
  t.call(TPM_CC.ClearControl, { handles: [auth], passwords: [''], params: be.u8(disable) }).rc;
const changeAuth = (t: TestTpm, handle: number, oldPw: string, newPw: string) =>
  t.call(TPM_CC.HierarchyChangeAuth, { handles: [handle], passwords: [oldPw], params: be.b2(newPw) }).rc;
const nvDefine = (t: TestTpm, auth: number, index: number, attributes: number) =>
  t.call(TPM_CC.NV_DefineSpace, {
    handles: [auth],
    passwords: [''],
    params: cat(be.b2(''), be.b2(cat(be.u32(index), be.u16(TPM_ALG.SHA256), be.u32(attributes >>> 0), be.b2(''), be.u16(8)))),
  }).rc;
const nvReadPublic = (t: TestTpm, index: number) => t.call(TPM_CC.NV_ReadPublic, { handles: [index] }).rc;
const readPublic = (t: TestTpm, handle: number) => t.call(TPM_CC.ReadPublic, { handles: [handle] }).rc;

const startupClear = (t: TestTpm) => property(t, 0x201);
const ALL_ENABLED = TPMA_STARTUP_CLEAR.phEnable | TPMA_STARTUP_CLEAR.shEnable | TPMA_STARTUP_CLEAR.ehEnable | TPMA_STARTUP_CLEAR.phEnableNV;

function ppList(t: TestTpm): number[] {
  const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(3), be.u32(0), be.u32(64)) });
  const rd = new Reader(r.body.subarray(1 + 4));
  return Array.from({ length: rd.u32() }, () => rd.u32());
}

/** The permanent state restored into a new engine and started (a daemon restart). */
function restart(t: TestTpm, type = 0): TestTpm {
  const u = restoreTestTpm(t);
  expect(u.call(TPM_CC.Startup, { params: be.u16(type) }).rc).toBe(0);
  return u;
}
function powerCycle(t: TestTpm, shutdown: number | null, startup: number): void {
  if (shutdown !== null) expect(t.call(TPM_CC.Shutdown, { params: be.u16(shutdown) }).rc).toBe(0);
  t.powerCycle();
  expect(t.call(TPM_CC.Startup, { params: be.u16(startup) }).rc).toBe(0);
}

describe('HierarchyControl', () => {
  test('the owner disables the storage hierarchy: TPM_RC_HIERARCHY for its handle, objects flushed, persistent objects and owner NV look undefined', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.OWNER);
    expect(evict(t, TPM_RH.OWNER, p.handle, 0x81000001)).toBe(0);
    expect(nvDefine(t, TPM_RH.OWNER, 0x01000001, TPMA_NV.OWNERREAD | TPMA_NV.OWNERWRITE)).toBe(0);
    expect(nvDefine(t, TPM_RH.PLATFORM, 0x01400001, TPMA_NV.PPREAD | TPMA_NV.PPWRITE | TPMA_NV.PLATFORMCREATE)).toBe(0);
    const e = primary(t, TPM_RH.ENDORSEMENT);

    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.OWNER, 0)).toBe(0);
    expect(startupClear(t) & ALL_ENABLED).toBe(ALL_ENABLED & ~TPMA_STARTUP_CLEAR.shEnable);
    expect(primary(t, TPM_RH.OWNER).rc).toBe(0x185); // TPM_RC_HIERARCHY + H1
    expect(readPublic(t, p.handle)).toBe(0x910); // flushed: TPM_RC_REFERENCE_H0
    expect(readPublic(t, e.handle)).toBe(0); // the endorsement primary stays
    expect(readPublic(t, 0x81000001)).toBe(0x18b); // TPM_RC_HANDLE + H1
    expect(nvReadPublic(t, 0x01000001)).toBe(0x18b);
    expect(nvReadPublic(t, 0x01400001)).toBe(0);
    // Owner authorization can no longer switch it back; platform authorization can.
    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.OWNER, 1)).toBe(0x185);
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.OWNER, 1)).toBe(0);
    expect(readPublic(t, 0x81000001)).toBe(0);
    expect(nvReadPublic(t, 0x01000001)).toBe(0);

    // Disabled again, it is back after Startup(CLEAR) ...
    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.OWNER, 0)).toBe(0);
    powerCycle(t, 0, 0);
    expect(startupClear(t) & ALL_ENABLED).toBe(ALL_ENABLED);
    // ... but a Resume keeps the state-clear data, across a daemon restart too.
    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.OWNER, 0)).toBe(0);
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(1) }).rc).toBe(0);
    const u = restart(t, 1);
    expect(startupClear(u) & TPMA_STARTUP_CLEAR.shEnable).toBe(0);
    expect(primary(u, TPM_RH.OWNER).rc).toBe(0x185);
  });

  test('endorsement: disabled by its own authorization, re-enabled only by the platform; EvictControl still sees its persistent objects', () => {
    const t = createTestTpm();
    const e = primary(t, TPM_RH.ENDORSEMENT);
    expect(evict(t, TPM_RH.OWNER, e.handle, 0x81010001)).toBe(0);
    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.ENDORSEMENT, 0)).toBe(0x124); // TPM_RC_AUTH_TYPE
    expect(hierarchyControl(t, TPM_RH.ENDORSEMENT, TPM_RH.OWNER, 0)).toBe(0x124);
    expect(hierarchyControl(t, TPM_RH.ENDORSEMENT, TPM_RH.ENDORSEMENT, 0)).toBe(0);
    expect(startupClear(t) & TPMA_STARTUP_CLEAR.ehEnable).toBe(0);
    expect(hierarchyControl(t, TPM_RH.ENDORSEMENT, TPM_RH.ENDORSEMENT, 1)).toBe(0x185);
    expect(readPublic(t, e.handle)).toBe(0x910);
    expect(readPublic(t, 0x81010001)).toBe(0x18b);
    // EvictControl may still remove it (ms-tpm ObjectLoadEvict).
    expect(evict(t, TPM_RH.OWNER, 0x81010001, 0x81010001)).toBe(0);
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.ENDORSEMENT, 1)).toBe(0);
    expect(primary(t, TPM_RH.ENDORSEMENT).name).toBe(e.name);
  });

  test('platform and platformNV: platform authorization only; phEnable returns at every Startup, phEnableNV only at Startup(CLEAR)', () => {
    const t = createTestTpm();
    expect(nvDefine(t, TPM_RH.PLATFORM, 0x01400001, TPMA_NV.PPREAD | TPMA_NV.PPWRITE | TPMA_NV.PLATFORMCREATE)).toBe(0);
    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.PLATFORM, 0)).toBe(0x124);
    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.PLATFORM_NV, 0)).toBe(0x124);
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.PLATFORM_NV, 0)).toBe(0);
    expect(nvReadPublic(t, 0x01400001)).toBe(0x18b);
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.PLATFORM, 0)).toBe(0);
    expect(startupClear(t) & ALL_ENABLED).toBe(TPMA_STARTUP_CLEAR.shEnable | TPMA_STARTUP_CLEAR.ehEnable);
    // With phEnable clear the platform handle is gone, so nothing can switch it back.
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.PLATFORM, 1)).toBe(0x185);
    expect(primary(t, TPM_RH.PLATFORM).rc).toBe(0x185);
    powerCycle(t, 1, 1); // Resume
    expect(startupClear(t) & ALL_ENABLED).toBe(ALL_ENABLED & ~TPMA_STARTUP_CLEAR.phEnableNV);
    powerCycle(t, 0, 0);
    expect(startupClear(t) & ALL_ENABLED).toBe(ALL_ENABLED);
    expect(nvReadPublic(t, 0x01400001)).toBe(0);
  });

  test('bad values: enable TPM_RC_VALUE+P1 (NULL included), state TPM_RC_VALUE+P2, authHandle lockout TPM_RC_VALUE+H1', () => {
    const t = createTestTpm();
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.NULL, 0)).toBe(0x1c4);
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.LOCKOUT, 0)).toBe(0x1c4);
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.OWNER, 2)).toBe(0x2c4);
    expect(hierarchyControl(t, TPM_RH.LOCKOUT, TPM_RH.OWNER, 0)).toBe(0x184);
    // Enabling what is enabled changes nothing and leaves the orderly state alone.
    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.OWNER, 1)).toBe(0);
  });
});

describe('Clear and ClearControl', () => {
  test('Clear: new owner seed and proofs, auths and policies gone, owner objects and NV gone, platform ones kept, DA and clock reset', () => {
    const t = createTestTpm();
    const owner = primary(t, TPM_RH.OWNER);
    const endorsement = primary(t, TPM_RH.ENDORSEMENT);
    const platform = primary(t, TPM_RH.PLATFORM);
    expect(evict(t, TPM_RH.OWNER, owner.handle, 0x81000001)).toBe(0);
    expect(evict(t, TPM_RH.OWNER, endorsement.handle, 0x81010001)).toBe(0);
    expect(evict(t, TPM_RH.PLATFORM, platform.handle, 0x81800001)).toBe(0);
    expect(nvDefine(t, TPM_RH.OWNER, 0x01000001, TPMA_NV.OWNERREAD | TPMA_NV.OWNERWRITE)).toBe(0);
    expect(nvDefine(t, TPM_RH.PLATFORM, 0x01400001, TPMA_NV.PPREAD | TPMA_NV.PPWRITE | TPMA_NV.PLATFORMCREATE)).toBe(0);
    expect(changeAuth(t, TPM_RH.OWNER, '', 'o')).toBe(0);
    expect(changeAuth(t, TPM_RH.ENDORSEMENT, '', 'e')).toBe(0);
    expect(changeAuth(t, TPM_RH.LOCKOUT, '', 'l')).toBe(0);
    expect(t.call(TPM_CC.SetPrimaryPolicy, { handles: [TPM_RH.OWNER], passwords: ['o'], params: cat(be.b2(new Uint8Array(32).fill(1)), be.u16(TPM_ALG.SHA256)) }).rc).toBe(0);
    expect(t.call(TPM_CC.DictionaryAttackParameters, { handles: [TPM_RH.LOCKOUT], passwords: ['l'], params: cat(be.u32(9), be.u32(7), be.u32(5)) }).rc).toBe(0);
    powerCycle(t, 1, 0); // a restart: restartCount 1
    t.clock.advance(50_000);
    expect(hierarchyControl(t, TPM_RH.OWNER, TPM_RH.OWNER, 0, 'o')).toBe(0);
    const before = t.engine.tpm.persistent;
    const [sps, eps, pps, shProof, ehProof, phProof] = [before.sps, before.eps, before.pps, before.shProof, before.ehProof, before.phProof].map(hex);

    expect(clear(t, TPM_RH.LOCKOUT, 'l')).toBe(0);
    const p = t.engine.tpm.persistent;
    expect([hex(p.sps), hex(p.shProof), hex(p.ehProof)].some((v, i) => v === [sps, shProof, ehProof][i])).toBe(false);
    expect([hex(p.eps), hex(p.pps), hex(p.phProof)]).toEqual([eps, pps, phProof]);
    expect(startupClear(t) & ALL_ENABLED).toBe(ALL_ENABLED);
    expect(property(t, 0x200) & (TPMA_PERMANENT.ownerAuthSet | TPMA_PERMANENT.endorsementAuthSet | TPMA_PERMANENT.lockoutAuthSet)).toBe(0);
    expect(p.policies?.owner.digest.length).toBe(0);
    expect(readPublic(t, 0x81000001)).toBe(0x18b);
    expect(readPublic(t, 0x81010001)).toBe(0x18b);
    expect(readPublic(t, 0x81800001)).toBe(0);
    expect(nvReadPublic(t, 0x01000001)).toBe(0x18b);
    expect(nvReadPublic(t, 0x01400001)).toBe(0);
    // DA: libtpms' defaults again (TPM_PT_LOCKOUT_COUNTER, MAX_AUTH_FAIL, LOCKOUT_INTERVAL, LOCKOUT_RECOVERY).
    expect([0x20e, 0x20f, 0x210, 0x211].map((pt) => property(t, pt))).toEqual([0, 3, 1000, 1000]);
    // Clock and counters start over.
    const time = t.call(TPM_CC.ReadClock).body;
    expect(new DataView(time.buffer, time.byteOffset).getBigUint64(8)).toBeLessThan(10n);
    expect(hex(time.subarray(16, 25))).toBe('000000000000000001');
    // The owner primary is new, the endorsement and platform ones are not.
    expect(primary(t, TPM_RH.OWNER).name).not.toBe(owner.name);
    expect(primary(t, TPM_RH.ENDORSEMENT).name).toBe(endorsement.name);
    // Permanent: a restarted TPM has the new seed.
    const u = restart(t);
    expect(primary(u, TPM_RH.OWNER).name).not.toBe(owner.name);
  });

  test('Clear needs lockout or platform authorization: owner is TPM_RC_VALUE+H1, a wrong lockout password TPM_RC_AUTH_FAIL', () => {
    const t = createTestTpm();
    expect(clear(t, TPM_RH.OWNER)).toBe(0x184);
    expect(changeAuth(t, TPM_RH.LOCKOUT, '', 'l')).toBe(0);
    expect(clear(t, TPM_RH.LOCKOUT, 'x')).toBe(0x98e);
    expect(clear(t, TPM_RH.PLATFORM)).toBe(0);
  });

  test('ClearControl: lockout sets disableClear, only the platform clears it; Clear is TPM_RC_DISABLED meanwhile; it persists', () => {
    const t = createTestTpm();
    expect(clearControl(t, TPM_RH.LOCKOUT, 1)).toBe(0);
    expect(property(t, 0x200) & TPMA_PERMANENT.disableClear).toBe(TPMA_PERMANENT.disableClear);
    expect(clear(t, TPM_RH.LOCKOUT)).toBe(0x120);
    expect(clear(t, TPM_RH.PLATFORM)).toBe(0x120);
    expect(clearControl(t, TPM_RH.LOCKOUT, 0)).toBe(0x08e);
    expect(clearControl(t, TPM_RH.OWNER, 0)).toBe(0x184);
    expect(clearControl(t, TPM_RH.PLATFORM, 2)).toBe(0x1c4);
    const u = restart(t);
    expect(clear(u)).toBe(0x120);
    expect(clearControl(u, TPM_RH.PLATFORM, 0)).toBe(0);
    expect(property(u, 0x200) & TPMA_PERMANENT.disableClear).toBe(0);
    expect(clear(u)).toBe(0);
  });
});

describe('ChangeEPS and ChangePPS', () => {
  test('ChangeEPS: new endorsement primaries, its objects and persistent objects gone, auth and policy emptied, owner untouched', () => {
    const t = createTestTpm();
    const e = primary(t, TPM_RH.ENDORSEMENT);
    const o = primary(t, TPM_RH.OWNER);
    expect(evict(t, TPM_RH.OWNER, e.handle, 0x81010001)).toBe(0);
    expect(changeAuth(t, TPM_RH.ENDORSEMENT, '', 'e')).toBe(0);
    expect(hierarchyControl(t, TPM_RH.ENDORSEMENT, TPM_RH.ENDORSEMENT, 0, 'e')).toBe(0);
    expect(t.call(TPM_CC.ChangeEPS, { handles: [TPM_RH.OWNER], passwords: [''] }).rc).toBe(0x184);
    expect(t.call(TPM_CC.ChangeEPS, { handles: [TPM_RH.PLATFORM], passwords: [''] }).rc).toBe(0);
    expect(startupClear(t) & TPMA_STARTUP_CLEAR.ehEnable).toBe(TPMA_STARTUP_CLEAR.ehEnable);
    expect(readPublic(t, e.handle)).toBe(0x910);
    expect(readPublic(t, o.handle)).toBe(0);
    expect(readPublic(t, 0x81010001)).toBe(0x18b);
    expect(property(t, 0x200) & TPMA_PERMANENT.endorsementAuthSet).toBe(0);
    expect(flush(t, o.handle)).toBe(0);
    expect(primary(t, TPM_RH.ENDORSEMENT).name).not.toBe(e.name);
    expect(primary(t, TPM_RH.OWNER).name).toBe(o.name);
  });

  test('ChangePPS: new platform primaries, platform persistent objects and PCR policy gone, platform NV indices kept', () => {
    const t = createTestTpm();
    const p = primary(t, TPM_RH.PLATFORM);
    expect(evict(t, TPM_RH.PLATFORM, p.handle, 0x81800001)).toBe(0);
    expect(nvDefine(t, TPM_RH.PLATFORM, 0x01400001, TPMA_NV.PPREAD | TPMA_NV.PPWRITE | TPMA_NV.PLATFORMCREATE)).toBe(0);
    expect(setPcrPolicy(t, 21, new Uint8Array(32).fill(5), TPM_ALG.SHA256)).toBe(0);
    expect(t.call(TPM_CC.ChangePPS, { handles: [TPM_RH.PLATFORM], passwords: [''] }).rc).toBe(0);
    expect(readPublic(t, p.handle)).toBe(0x910);
    expect(readPublic(t, 0x81800001)).toBe(0x18b);
    expect(nvReadPublic(t, 0x01400001)).toBe(0);
    expect(t.engine.tpm.persistent.pcrPolicy).toBeUndefined();
    expect(primary(t, TPM_RH.PLATFORM).name).not.toBe(p.name);
  });
});

const setPcrPolicy = (t: TestTpm, pcr: number, digest: Uint8Array, alg: number) =>
  t.call(TPM_CC.PCR_SetAuthPolicy, { handles: [TPM_RH.PLATFORM], passwords: [''], params: cat(be.b2(digest), be.u16(alg), be.u32(pcr)) }).rc;
const extend = (t: TestTpm, pcr: number, pw: string) =>
  t.call(TPM_CC.PCR_Extend, { handles: [pcr], passwords: [pw], locality: 2, params: cat(be.u32(1), be.u16(TPM_ALG.SHA256), new Uint8Array(32)) }).rc;

describe('PCR_SetAuthPolicy and PCR_SetAuthValue (one group: PCRs 20-22, as libtpms 0.9)', () => {
  test('PCR_SetAuthValue: the group needs the authValue to extend; other PCRs are TPM_RC_VALUE; state-clear', () => {
    const t = createTestTpm();
    const setAuth = (pcr: number, auth: string, pw = '') => t.call(TPM_CC.PCR_SetAuthValue, { handles: [pcr], passwords: [pw], params: be.b2(auth) }).rc;
    expect(setAuth(0, 'pcr')).toBe(0x084);
    expect(setAuth(16, 'pcr')).toBe(0x084);
    expect(setAuth(24, 'pcr')).toBe(0x184); // TPMI_DH_PCR
    expect(setAuth(20, 'pcr')).toBe(0);
    for (const pcr of [20, 21, 22]) expect(extend(t, pcr, '')).toBe(0x9a2);
    expect(extend(t, 21, 'pcr')).toBe(0);
    expect(extend(t, 16, '')).toBe(0);
    expect(setAuth(22, '', 'pcr')).toBe(0);
    expect(extend(t, 20, '')).toBe(0);
    expect(setAuth(20, 'again')).toBe(0);
    powerCycle(t, 1, 1);
    expect(extend(t, 20, 'again')).toBe(0);
    powerCycle(t, 1, 0);
    expect(extend(t, 20, '')).toBe(0);
    // Clear empties it too (PCR_ClearAuth).
    expect(setAuth(20, 'x')).toBe(0);
    expect(clear(t)).toBe(0);
    expect(extend(t, 20, '')).toBe(0);
  });

  test('PCR_SetAuthPolicy: size must match hashAlg (TPM_RC_SIZE+P1), the PCR must be in the group (TPM_RC_VALUE+P3); persistent', () => {
    const t = createTestTpm();
    expect(setPcrPolicy(t, 20, new Uint8Array(20), TPM_ALG.SHA256)).toBe(0x1d5);
    expect(setPcrPolicy(t, 0, new Uint8Array(32), TPM_ALG.SHA256)).toBe(0x3c4);
    expect(setPcrPolicy(t, 20, new Uint8Array(32), 0x0999)).toBe(0x2c3); // TPM_RC_HASH+P2
    expect(t.call(TPM_CC.PCR_SetAuthPolicy, { handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(''), be.u16(TPM_ALG.NULL), be.u32(20)) }).rc).toBe(0x184);
    expect(setPcrPolicy(t, 22, new Uint8Array(32).fill(7), TPM_ALG.SHA256)).toBe(0);
    expect(hex(t.engine.tpm.entityAuthPolicy(20))).toBe('07'.repeat(32));
    expect(t.engine.tpm.entityAuthPolicy(0).length).toBe(0);
    const u = restart(t);
    expect(hex(u.engine.tpm.entityAuthPolicy(21))).toBe('07'.repeat(32));
    expect(setPcrPolicy(u, 20, new Uint8Array(0), TPM_ALG.NULL)).toBe(0);
    expect(u.engine.tpm.entityAuthPolicy(21).length).toBe(0);
  });

  test('a policy session authorizes a PCR of the group when its digest is the group policy; outside the group the policy is unavailable', () => {
    const t = createTestTpm();
    const policyExtend = (pcr: number) => {
      // A policy session with no assertion has the all-zero digest.
      const session = startSession(t, { type: 1 });
      const params = cat(be.u32(1), be.u16(TPM_ALG.SHA256), new Uint8Array(32));
      const rc = callWithSessions(t, { code: TPM_CC.PCR_Extend, handles: [pcr], params }, [{ session, attrs: 0 }], 2).r.rc;
      if (rc !== 0) expect(flush(t, session.handle)).toBe(0);
      return rc;
    };
    expect(policyExtend(21)).toBe(0x99d); // TPM_RC_POLICY_FAIL + S1: the group has no policy yet
    expect(policyExtend(16)).toBe(0x12f); // TPM_RC_AUTH_UNAVAILABLE
    expect(setPcrPolicy(t, 20, new Uint8Array(32), TPM_ALG.SHA256)).toBe(0);
    expect(policyExtend(21)).toBe(0);
    expect(policyExtend(16)).toBe(0x12f);
    expect(t.call(TPM_CC.ChangePPS, { handles: [TPM_RH.PLATFORM], passwords: [''] }).rc).toBe(0);
    expect(policyExtend(22)).toBe(0x99d);
  });
});

describe('PP_Commands and the physical-presence list', () => {
  const ppCommands = (t: TestTpm, set: number[], clr: number[], auth: number = TPM_RH.PLATFORM) =>
    t.call(TPM_CC.PP_Commands, {
      handles: [auth],
      passwords: [''],
      params: cat(be.u32(set.length), ...set.map(be.u32), be.u32(clr.length), ...clr.map(be.u32)),
    }).rc;

  test('a new TPM lists PP_Commands only; without physical presence PP_Commands fails TPM_RC_PP at session 1', () => {
    const t = createTestTpm();
    expect(ppList(t)).toEqual([TPM_CC.PP_Commands]);
    expect(ppCommands(t, [TPM_CC.Clear], [])).toBe(0x990);
    expect(ppCommands(t, [], [], TPM_RH.OWNER)).toBe(0x184);
    expect(ppList(t)).toEqual([TPM_CC.PP_Commands]);
  });

  test('with physical presence asserted, the list grows and shrinks as libtpms allows, persists, and gates platform authorization', () => {
    const t = createTestTpm();
    t.engine.tpm.physicalPresence = true;
    // GetRandom cannot need PP; NV_Certify is not implemented; PP_Commands cannot be taken off.
    expect(ppCommands(t, [TPM_CC.ClockSet, TPM_CC.Clear, TPM_CC.GetRandom, 0x184], [TPM_CC.PP_Commands])).toBe(0);
    expect(ppList(t)).toEqual([TPM_CC.Clear, TPM_CC.ClockSet, TPM_CC.PP_Commands]);
    expect(ppCommands(t, [], [TPM_CC.Clear])).toBe(0);
    expect(ppList(t)).toEqual([TPM_CC.ClockSet, TPM_CC.PP_Commands]);
    const u = restart(t);
    expect(ppList(u)).toEqual([TPM_CC.ClockSet, TPM_CC.PP_Commands]);
    const clockSet = (auth: number) => u.call(TPM_CC.ClockSet, { handles: [auth], passwords: [''], params: cat(be.u32(0x10), be.u32(0)) }).rc;
    expect(clockSet(TPM_RH.PLATFORM)).toBe(0x990);
    expect(clockSet(TPM_RH.OWNER)).toBe(0);
    u.engine.tpm.physicalPresence = true;
    expect(clockSet(TPM_RH.PLATFORM)).toBe(0);
  });
});

describe('permanent and volatile state from before these fields', () => {
  test('a permanent state without disableClear, PCR policy, PP list or saved state-clear data loads with the defaults', () => {
    const old = manufacture(() => new Uint8Array(64).fill(3));
    const blob = serializePersistent(old);
    const s = deserializePersistent(blob);
    expect(s.disableClear).toBeUndefined();
    expect(s.pcrPolicy).toBeUndefined();
    expect(s.ppCommands).toBeUndefined();
    const t = createTestTpm();
    const engine = Engine.restore(blob, t.env);
    engine.init();
    expect(parseResponse(engine.execute(buildCommand(TPM_CC.Startup, { params: be.u16(0) }))).rc).toBe(0);
    expect(engine.tpm.ppCommands()).toEqual([TPM_CC.PP_Commands]);
    expect(engine.tpm.shEnable && engine.tpm.ehEnable && engine.tpm.phEnableNV).toBe(true);
    // A Resume from a saved state written before state-clear data was kept gets the defaults.
    const saved = { ...old, orderly: 'STATE', savedState: { pcrs: new Map(), pcrUpdateCounter: 0, startupLocality: 0 } };
    const resumed = Engine.restore(serializeState('permanent', 2, 1, saved), t.env);
    resumed.tpm.shEnable = false;
    resumed.init();
    expect(parseResponse(resumed.execute(buildCommand(TPM_CC.Startup, { params: be.u16(1) }))).rc).toBe(0);
    expect(resumed.tpm.shEnable).toBe(true);
  });

  test('a state that uses them keeps them, in a format an older vtpmd refuses instead of dropping them', () => {
    const minVersion = (blob: Uint8Array) => new DataView(blob.buffer, blob.byteOffset).getUint16(8);
    const t = createTestTpm();
    expect(clearControl(t, TPM_RH.LOCKOUT, 1)).toBe(0);
    expect(minVersion(t.engine.permanentBlob())).toBe(PERSISTENT_VERSION);
    expect(deserializePersistent(t.engine.permanentBlob()).disableClear).toBe(true);
    // A Shutdown(STATE) with a hierarchy switched off.
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.OWNER, 0)).toBe(0);
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(1) }).rc).toBe(0);
    expect(deserializePersistent(t.engine.permanentBlob()).savedState?.stateClear?.shEnable).toBe(false);
    const u = createTestTpm();
    expect(setPcrPolicy(u, 20, new Uint8Array(32), TPM_ALG.SHA256)).toBe(0);
    expect(deserializePersistent(u.engine.permanentBlob()).pcrPolicy).toEqual({ alg: TPM_ALG.SHA256, digest: new Uint8Array(32) });
  });

  test('damaged new fields are refused', () => {
    const old = manufacture(() => new Uint8Array(64).fill(3));
    const bad = (extra: object) => () => deserializePersistent(serializeState('permanent', 2, 1, { ...old, ...extra }));
    expect(bad({ disableClear: 1 })).toThrow(/disableClear/);
    expect(bad({ pcrPolicy: { alg: 11, digest: 'x' } })).toThrow(/PCR policy/);
    expect(bad({ ppCommands: ['x'] })).toThrow(/physical-presence/);
    expect(bad({ savedState: { pcrs: new Map(), pcrUpdateCounter: 0, startupLocality: 0, stateClear: { shEnable: true } } })).toThrow(/state-clear/);
  });

  test('the volatile state carries the enables and the PCR authValue; one without them restores the defaults', () => {
    const t = createTestTpm();
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.ENDORSEMENT, 0)).toBe(0);
    expect(t.call(TPM_CC.PCR_SetAuthValue, { handles: [20], passwords: [''], params: be.b2('v') }).rc).toBe(0);
    const blob = t.engine.volatileBlob();
    t.powerCycle();
    t.engine.restoreVolatile(blob);
    expect(t.engine.tpm.ehEnable).toBe(false);
    expect(extend(t, 20, 'v')).toBe(0);
  });
});

describe('a disabled hierarchy in command parameters', () => {
  test('LoadExternal into it is TPM_RC_HIERARCHY+P3, ContextLoad of its object TPM_RC_HIERARCHY+P1, NV_DefineSpace by the platform without phEnableNV TPM_RC_HIERARCHY+H1', () => {
    const t = createTestTpm();
    const e = primary(t, TPM_RH.ENDORSEMENT);
    const saved = t.call(TPM_CC.ContextSave, { handles: [e.handle] });
    expect(saved.rc).toBe(0);
    expect(hierarchyControl(t, TPM_RH.ENDORSEMENT, TPM_RH.ENDORSEMENT, 0)).toBe(0);
    expect(t.call(TPM_CC.ContextLoad, { params: saved.body }).rc).toBe(0x1c5);
    const loadExternal = (h: number) => t.call(TPM_CC.LoadExternal, { params: cat(be.u16(0), encode(TPM2B_PUBLIC, ECC_STORAGE_NODA), be.u32(h)) }).rc;
    expect(loadExternal(TPM_RH.ENDORSEMENT)).toBe(0x3c5);
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.ENDORSEMENT, 1)).toBe(0);
    expect(t.call(TPM_CC.ContextLoad, { params: saved.body }).rc).toBe(0);
    expect(hierarchyControl(t, TPM_RH.PLATFORM, TPM_RH.PLATFORM_NV, 0)).toBe(0);
    expect(nvDefine(t, TPM_RH.PLATFORM, 0x01400002, TPMA_NV.PPREAD | TPMA_NV.PPWRITE | TPMA_NV.PLATFORMCREATE)).toBe(0x185);
    expect(nvDefine(t, TPM_RH.OWNER, 0x01000002, TPMA_NV.OWNERREAD | TPMA_NV.OWNERWRITE)).toBe(0);
  });
});
