/**
 * Part 3 §29 ClockSet, ClockRateAdjust, ReadClock and Part 1 §36.3 Clock: forward only, the
 * adjusted rate, the NV update interval and the safe flag, resetCount/restartCount across
 * Reset, Restart, Resume and a restore of the permanent state.
 */
import { describe, expect, test } from 'vitest';
import { TPM_CC, TPM_RH } from '../../../src/tpm/constants.js';
import { be, cat, createTestTpm, restoreTestTpm, type TestTpm } from '../../helpers/engine.js';

interface TimeInfo {
  time: bigint;
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
}
function readClock(t: TestTpm): TimeInfo {
  const r = t.call(TPM_CC.ReadClock);
  expect(r.rc).toBe(0);
  const v = new DataView(r.body.buffer, r.body.byteOffset);
  return { time: v.getBigUint64(0), clock: v.getBigUint64(8), resetCount: v.getUint32(16), restartCount: v.getUint32(20), safe: v.getUint8(24) === 1 };
}
const u64 = (v: bigint) => cat(be.u32(Number(v >> 32n)), be.u32(Number(v & 0xffffffffn)));
const clockSet = (t: TestTpm, v: bigint, auth: number = TPM_RH.OWNER) =>
  t.call(TPM_CC.ClockSet, { handles: [auth], passwords: [''], params: u64(v) }).rc;
const rateAdjust = (t: TestTpm, step: number, auth: number = TPM_RH.OWNER) =>
  t.call(TPM_CC.ClockRateAdjust, { handles: [auth], passwords: [''], params: be.u8(step & 0xff) }).rc;

/** A daemon restart: the permanent state as last saved, in a new engine; no Shutdown unless asked. */
function restart(t: TestTpm, saved: Uint8Array, type = 0): TestTpm {
  const u = restoreTestTpm(t, saved);
  expect(u.call(TPM_CC.Startup, { params: be.u16(type) }).rc).toBe(0);
  return u;
}

describe('ClockSet', () => {
  test('moves Clock forward under owner or platform authorization; backwards or past 0xFFFF000000000000 is TPM_RC_VALUE+P1', () => {
    const t = createTestTpm();
    t.clock.advance(1500);
    expect(readClock(t).clock).toBe(1500n);
    expect(clockSet(t, 1499n)).toBe(0x1c4);
    expect(clockSet(t, 1_000_000n)).toBe(0);
    t.clock.advance(10);
    expect(readClock(t).clock).toBe(1_000_010n);
    expect(clockSet(t, 1_000_009n, TPM_RH.PLATFORM)).toBe(0x1c4);
    expect(clockSet(t, 1_000_010n, TPM_RH.PLATFORM)).toBe(0);
    expect(clockSet(t, 0xffff000000000001n)).toBe(0x1c4);
    expect(clockSet(t, 0xffff000000000000n)).toBe(0);
    expect(readClock(t).clock).toBe(0xffff000000000000n);
    expect(clockSet(t, 1n, TPM_RH.LOCKOUT)).toBe(0x184); // TPMI_RH_PROVISION
    expect(clockSet(t, 1n, TPM_RH.ENDORSEMENT)).toBe(0x184);
  });
});

describe('ClockRateAdjust', () => {
  test('coarse, medium and fine steps scale Clock and time by 30000/rate; out-of-range steps are TPM_RC_VALUE+P1', () => {
    const t = createTestTpm();
    expect(rateAdjust(t, 4)).toBe(0x1c4);
    expect(rateAdjust(t, -4)).toBe(0x1c4);
    expect(rateAdjust(t, 0, TPM_RH.LOCKOUT)).toBe(0x184);
    const start = readClock(t);
    expect(rateAdjust(t, -3)).toBe(0); // coarse slower: rate 30300
    t.clock.advance(30_300);
    const slow = readClock(t);
    expect(slow.clock - start.clock).toBe(30_000n);
    expect(slow.time - start.time).toBe(30_000n);
    expect(rateAdjust(t, 3)).toBe(0);
    expect(rateAdjust(t, 3, TPM_RH.PLATFORM)).toBe(0); // coarse faster from nominal: 29700
    t.clock.advance(29_700);
    expect(readClock(t).clock - slow.clock).toBe(30_000n);
    expect(rateAdjust(t, 1)).toBe(0); // fine faster: 29699
    expect(rateAdjust(t, -2)).toBe(0); // medium slower: 29729
    const before = readClock(t).clock;
    t.clock.advance(29_729);
    expect(readClock(t).clock - before).toBe(30_000n);
  });

  test('the rate stays within ±5000 of nominal and returns to nominal at _TPM_Init', () => {
    const t = createTestTpm();
    for (let i = 0; i < 30; i++) expect(rateAdjust(t, -3)).toBe(0);
    let before = readClock(t).clock;
    t.clock.advance(35_000);
    expect(readClock(t).clock - before).toBe(30_000n);
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(0) }).rc).toBe(0);
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    before = readClock(t).clock;
    t.clock.advance(30_000);
    expect(readClock(t).clock - before).toBe(30_000n);
  });
});

describe('Clock in NV and the safe flag', () => {
  test('Clock reaches the permanent state each 2^12 ms; a restart without Shutdown resumes from there with safe NO until the next write', () => {
    const t = createTestTpm();
    t.engine.takePermanentChanges();
    t.clock.advance(1000);
    readClock(t);
    expect(t.engine.takePermanentChanges()).toBeNull(); // within the first interval
    t.clock.advance(4000); // crosses 4096
    expect(readClock(t).clock).toBe(5000n);
    const saved = t.engine.takePermanentChanges();
    expect(saved).not.toBeNull();
    t.clock.advance(2000); // 7000: not written
    readClock(t);
    expect(t.engine.takePermanentChanges()).toBeNull();

    // The daemon dies: no Shutdown. The next one starts from the clock last written.
    const u = restart(t, saved!);
    const after = readClock(u);
    expect(after.clock).toBe(5000n);
    expect(after.safe).toBe(false);
    expect(after.resetCount).toBe(2);
    expect(after.restartCount).toBe(0);
    u.clock.advance(4000); // crosses 8192: written, safe again
    const healed = readClock(u);
    expect(healed.clock).toBe(9000n);
    expect(healed.safe).toBe(true);
    expect(u.engine.takePermanentChanges()).not.toBeNull();
  });

  test('a ClockSet that crosses an interval writes Clock and makes it safe; one within an interval writes nothing', () => {
    const t = createTestTpm();
    const saved = t.engine.permanentBlob();
    const u = restart(t, saved); // not orderly: safe NO
    expect(readClock(u).safe).toBe(false);
    u.engine.takePermanentChanges();
    expect(clockSet(u, 100n)).toBe(0);
    expect(readClock(u).safe).toBe(false);
    expect(clockSet(u, 5000n)).toBe(0);
    expect(readClock(u).safe).toBe(true);
  });

  test('resetCount and restartCount: Reset, Restart, Resume, and an orderly daemon restart that keeps Clock and safe', () => {
    const t = createTestTpm();
    const cycle = (shutdown: number | null, startup: number) => {
      if (shutdown !== null) expect(t.call(TPM_CC.Shutdown, { params: be.u16(shutdown) }).rc).toBe(0);
      t.powerCycle();
      expect(t.call(TPM_CC.Startup, { params: be.u16(startup) }).rc).toBe(0);
      const c = readClock(t);
      return [c.resetCount, c.restartCount, c.safe];
    };
    expect(readClock(t).resetCount).toBe(1);
    expect(cycle(1, 1)).toEqual([1, 1, true]); // Resume
    expect(cycle(1, 0)).toEqual([1, 2, true]); // Restart
    expect(cycle(0, 0)).toEqual([2, 0, true]); // Reset
    expect(cycle(null, 0)).toEqual([3, 0, false]); // Reset without Shutdown
    t.clock.advance(3333);
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(1) }).rc).toBe(0);
    const clock = readClock(t).clock;
    const u = restart(t, t.engine.permanentBlob(), 1);
    const c = readClock(u);
    expect([c.resetCount, c.restartCount, c.safe]).toEqual([3, 1, true]);
    expect(c.clock).toBeGreaterThanOrEqual(clock);
  });
});
