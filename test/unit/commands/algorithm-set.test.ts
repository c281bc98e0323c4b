/**
 * Part 3 §26.3 TPM2_SetAlgorithmSet: platform authorization only, the value GetCapability
 * reports as TPM_PT_ALGORITHM_SET, kept across a daemon restart and a TPM2_Clear.
 */
import { describe, expect, test } from 'vitest';
import { TPM_CC, TPM_RH } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { be, buildCommand, cat, createTestTpm, parseResponse, type TestTpm } from '../../helpers/engine.js';

const TPM_CAP_TPM_PROPERTIES = 6;
const TPM_PT_ALGORITHM_SET = 0x20c;

function algorithmSet(call: TestTpm['call']): number {
  const r = call(TPM_CC.GetCapability, { params: cat(be.u32(TPM_CAP_TPM_PROPERTIES), be.u32(TPM_PT_ALGORITHM_SET), be.u32(1)) });
  expect(r.rc).toBe(0);
  const v = new DataView(r.body.buffer, r.body.byteOffset);
  // moreData, capability, count, then (property, value) pairs
  expect(v.getUint32(9)).toBe(TPM_PT_ALGORITHM_SET);
  return v.getUint32(13);
}
const setAlgorithmSet = (t: TestTpm, value: number, auth: number = TPM_RH.PLATFORM) =>
  t.call(TPM_CC.SetAlgorithmSet, { handles: [auth], passwords: [''], params: be.u32(value) }).rc;

describe('SetAlgorithmSet', () => {
  test('0 on a new TPM; the platform sets any 32-bit value, GetCapability reports it', () => {
    const t = createTestTpm();
    expect(algorithmSet(t.call)).toBe(0);
    expect(setAlgorithmSet(t, 0xdeadbeef)).toBe(0);
    expect(algorithmSet(t.call)).toBe(0xdeadbeef);
    expect(setAlgorithmSet(t, 7)).toBe(0);
    expect(algorithmSet(t.call)).toBe(7);
  });

  test('only TPM_RH_PLATFORM: other hierarchies are TPM_RC_VALUE+H1 (TPMI_RH_PLATFORM), a wrong password TPM_RC_BAD_AUTH+S1', () => {
    const t = createTestTpm();
    expect(setAlgorithmSet(t, 1, TPM_RH.OWNER)).toBe(0x184);
    expect(setAlgorithmSet(t, 1, TPM_RH.ENDORSEMENT)).toBe(0x184);
    expect(setAlgorithmSet(t, 1, TPM_RH.LOCKOUT)).toBe(0x184);
    expect(t.call(TPM_CC.HierarchyChangeAuth, { handles: [TPM_RH.PLATFORM], passwords: [''], params: cat(be.u16(2), new Uint8Array([1, 2])) }).rc).toBe(0);
    expect(setAlgorithmSet(t, 1)).toBe(0x9a2); // platformAuth is not DA-protected: TPM_RC_BAD_AUTH
    expect(t.call(TPM_CC.SetAlgorithmSet, { handles: [TPM_RH.PLATFORM], passwords: ['\x01\x02'], params: be.u32(1) }).rc).toBe(0);
    expect(algorithmSet(t.call)).toBe(1);
  });

  test('persists: written before the response leaves, kept by a restart and by TPM2_Clear', () => {
    const t = createTestTpm();
    t.engine.takePermanentChanges();
    expect(setAlgorithmSet(t, 0x1234)).toBe(0);
    const saved = t.engine.takePermanentChanges();
    expect(saved).not.toBeNull();
    const engine = Engine.restore(saved!, t.env);
    engine.init();
    const call: TestTpm['call'] = (code, o = {}) => parseResponse(engine.execute(buildCommand(code, o), o.locality ?? 0));
    expect(call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(algorithmSet(call)).toBe(0x1234);
    expect(call(TPM_CC.Clear, { handles: [TPM_RH.PLATFORM], passwords: [''] }).rc).toBe(0);
    expect(algorithmSet(call)).toBe(0x1234);
  });
});
