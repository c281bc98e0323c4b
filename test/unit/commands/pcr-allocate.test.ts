/** Part 3 §22.5 TPM2_PCR_Allocate: the answer, and the new banks after the next TPM Reset only. */
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';

const ALL = new Uint8Array([0xff, 0xff, 0xff]);
const NONE = new Uint8Array(3);
const selection = (banks: [number, Uint8Array][]) => cat(be.u32(banks.length), ...banks.map(([alg, bits]) => cat(be.u16(alg), be.u8(bits.length), bits)));

const allocate = (t: TestTpm, banks: [number, Uint8Array][], handle: number = TPM_RH.PLATFORM) =>
  t.call(TPM_CC.PCR_Allocate, { handles: [handle], passwords: [''], params: selection(banks) });

/** GetCapability(TPM_CAP_PCRS) → alg → bitmap hex. */
function banks(t: TestTpm): Map<number, string> {
  const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(5), be.u32(0), be.u32(1)) });
  expect(r.rc).toBe(0);
  const v = new DataView(r.body.buffer, r.body.byteOffset);
  const out = new Map<number, string>();
  let off = 5;
  const n = v.getUint32(off);
  off += 4;
  for (let i = 0; i < n; i++) {
    const alg = v.getUint16(off);
    const size = v.getUint8(off + 2);
    out.set(alg, hex(r.body.subarray(off + 3, off + 3 + size)));
    off += 3 + size;
  }
  return out;
}

function restart(t: TestTpm, shutdown = 0) {
  expect(t.call(TPM_CC.Shutdown, { params: be.u16(shutdown) }).rc).toBe(0);
  t.powerCycle();
  expect(t.call(TPM_CC.Startup, { params: be.u16(shutdown) }).rc).toBe(0);
}

describe('PCR_Allocate', () => {
  test('sha256 only: allocationSuccess YES, maxPCR 24, sizeNeeded 24×32, sizeAvailable 24×164', () => {
    const t = createTestTpm();
    const r = allocate(t, [[TPM_ALG.SHA256, ALL], [TPM_ALG.SHA1, NONE], [TPM_ALG.SHA384, NONE], [TPM_ALG.SHA512, NONE]]);
    expect(r.rc).toBe(0);
    // parameterSize, then YES, maxPCR, sizeNeeded, sizeAvailable.
    expect(hex(r.body)).toBe(`0000000d01${'00000018'}${(24 * 32).toString(16).padStart(8, '0')}${(24 * 164).toString(16).padStart(8, '0')}0000010000`);
  });

  test('the banks change at the next TPM Reset, not before, and survive restarts', () => {
    const t = createTestTpm();
    expect(allocate(t, [[TPM_ALG.SHA256, ALL], [TPM_ALG.SHA1, NONE]]).rc).toBe(0);
    expect(banks(t).get(TPM_ALG.SHA1)).toBe('ffffff');
    restart(t);
    const after = banks(t);
    expect(after.get(TPM_ALG.SHA1)).toBe('000000');
    expect(after.get(TPM_ALG.SHA256)).toBe('ffffff');
    // Banks the request left out keep their PCRs.
    expect(after.get(TPM_ALG.SHA384)).toBe('ffffff');
    // A deallocated bank reads nothing.
    const read = t.call(TPM_CC.PCR_Read, { params: selection([[TPM_ALG.SHA1, ALL]]) });
    expect(hex(read.body.subarray(4))).toBe('0000000100040300000000000000');
    restart(t);
    expect(banks(t).get(TPM_ALG.SHA1)).toBe('000000');
  });

  test('the allocation is in the permanent state', () => {
    const t = createTestTpm();
    expect(allocate(t, [[TPM_ALG.SHA512, NONE]]).rc).toBe(0);
    expect(t.engine.takePermanentChanges()).not.toBeNull();
  });

  test('Shutdown(STATE) after an allocation is TPM_RC_TYPE+P1; Shutdown(CLEAR) is fine', () => {
    const t = createTestTpm();
    expect(allocate(t, [[TPM_ALG.SHA1, NONE]]).rc).toBe(0);
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(1) }).rc).toBe(TPM_RC.TYPE | 0x040 | 0x100);
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(0) }).rc).toBe(0);
  });

  test('TPM_RC_PCR when no bank would keep PCR 0 or PCR 17; nothing changes', () => {
    const t = createTestTpm();
    const none: [number, Uint8Array][] = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512].map((a) => [a, NONE]);
    expect(allocate(t, none).rc).toBe(TPM_RC.PCR);
    const noDrtm = new Uint8Array([0xff, 0xff, 0x00]);
    expect(allocate(t, none.map(([a]) => [a, noDrtm])).rc).toBe(TPM_RC.PCR);
    restart(t);
    expect(banks(t).get(TPM_ALG.SHA1)).toBe('ffffff');
  });

  test('only the platform hierarchy may allocate', () => {
    const t = createTestTpm();
    expect(allocate(t, [[TPM_ALG.SHA1, NONE]], TPM_RH.OWNER).rc).toBe(TPM_RC.VALUE | 0x100 | 0x080);
  });
});
