/** Part 3 §9 Startup/Shutdown: TPM Reset, Restart and Resume (Part 1 §12.2.3). */
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { be, cat, createTestTpm, hex, parseResponse, buildCommand, TestTpm } from '../../helpers/engine.js';

const CLEAR = be.u16(0);
const STATE = be.u16(1);

function clockInfo(t: TestTpm) {
  const r = t.call(TPM_CC.ReadClock);
  const v = new DataView(r.body.buffer, r.body.byteOffset);
  return { time: v.getBigUint64(0), clock: v.getBigUint64(8), resetCount: v.getUint32(16), restartCount: v.getUint32(20), safe: r.body[24] };
}

function pcr(t: TestTpm, n: number): string {
  const select = new Uint8Array(3);
  select[n >> 3] = 1 << (n & 7);
  const r = t.call(TPM_CC.PCR_Read, { params: cat(be.u32(1), be.u16(TPM_ALG.SHA256), be.u8(3), select) });
  return hex(r.body.subarray(20, 52));
}

function extend(t: TestTpm, n: number) {
  const r = t.call(TPM_CC.PCR_Extend, { handles: [n], passwords: [''], params: cat(be.u32(1), be.u16(TPM_ALG.SHA256), new Uint8Array(32).fill(7)) });
  expect(r.rc).toBe(0);
}

/** A daemon restart: the permanent state is saved, `offMs` pass with no TPM, a new engine loads it. */
function restart(t: TestTpm, offMs = 0): TestTpm {
  const blob = t.engine.permanentBlob();
  t.clock.advance(offMs);
  const engine = Engine.restore(blob, t.env);
  engine.init();
  return { ...t, engine, send: (bytes, loc = 0) => parseResponse(engine.execute(bytes, loc)), call: (code, o = {}) => parseResponse(engine.execute(buildCommand(code, o), o.locality ?? 0)), powerCycle: () => engine.init() };
}

describe('Startup', () => {
  test('first Startup(CLEAR) is a TPM Reset: resetCount 1, restartCount 0, clock safe', () => {
    const t = createTestTpm();
    expect(clockInfo(t)).toMatchObject({ resetCount: 1, restartCount: 0, safe: 1 });
  });

  test('Startup(STATE) without Shutdown(STATE) is TPM_RC_VALUE+P1', () => {
    const t = createTestTpm({ started: false });
    expect(t.call(TPM_CC.Startup, { params: STATE }).rc).toBe(0x1c4);
  });

  test('Startup from locality 1 is TPM_RC_LOCALITY', () => {
    const t = createTestTpm({ started: false });
    expect(t.call(TPM_CC.Startup, { params: CLEAR, locality: 1 }).rc).toBe(TPM_RC.LOCALITY);
  });

  test('a bad startup type is TPM_RC_VALUE+P1', () => {
    const t = createTestTpm({ started: false });
    expect(t.call(TPM_CC.Startup, { params: be.u16(2) }).rc).toBe(0x1c4);
  });

  test('Shutdown(STATE) then Startup(STATE) is a Resume: saved PCRs come back, 16 does not', () => {
    let t = createTestTpm();
    extend(t, 5);
    extend(t, 16);
    const pcr5 = pcr(t, 5);
    expect(t.call(TPM_CC.Shutdown, { params: STATE }).rc).toBe(0);
    t = restart(t);
    expect(t.call(TPM_CC.Startup, { params: STATE }).rc).toBe(0);
    expect(pcr(t, 5)).toBe(pcr5);
    expect(pcr(t, 16)).toBe('00'.repeat(32));
    expect(clockInfo(t)).toMatchObject({ resetCount: 1, restartCount: 1, safe: 1 });
    // The saved state is used once.
    t = restart(t);
    expect(t.call(TPM_CC.Startup, { params: STATE }).rc).toBe(0x1c4);
  });

  test('Shutdown(STATE) then Startup(CLEAR) is a Restart: PCRs reset, restartCount grows', () => {
    let t = createTestTpm();
    extend(t, 5);
    expect(t.call(TPM_CC.Shutdown, { params: STATE }).rc).toBe(0);
    t = restart(t);
    expect(t.call(TPM_CC.Startup, { params: CLEAR }).rc).toBe(0);
    expect(pcr(t, 5)).toBe('00'.repeat(32));
    expect(clockInfo(t)).toMatchObject({ resetCount: 1, restartCount: 1 });
  });

  test('Shutdown(CLEAR) then Startup(CLEAR) is a Reset', () => {
    let t = createTestTpm();
    expect(t.call(TPM_CC.Shutdown, { params: CLEAR }).rc).toBe(0);
    t = restart(t);
    expect(t.call(TPM_CC.Startup, { params: STATE }).rc).toBe(0x1c4);
    expect(t.call(TPM_CC.Startup, { params: CLEAR }).rc).toBe(0);
    expect(clockInfo(t)).toMatchObject({ resetCount: 2, restartCount: 0, safe: 1 });
  });

  test('a restart without Shutdown is a Reset and the clock is no longer safe', () => {
    let t = createTestTpm();
    t.clock.advance(5000);
    t = restart(t);
    expect(t.call(TPM_CC.Startup, { params: CLEAR }).rc).toBe(0);
    expect(clockInfo(t)).toMatchObject({ resetCount: 2, safe: 0 });
  });

  test('a PCR change after Shutdown(STATE) cancels the saved state', () => {
    let t = createTestTpm();
    expect(t.call(TPM_CC.Shutdown, { params: STATE }).rc).toBe(0);
    extend(t, 3);
    t = restart(t);
    expect(t.call(TPM_CC.Startup, { params: STATE }).rc).toBe(0x1c4);
  });
});

describe('clock', () => {
  test('time counts from power-on; clock keeps counting across restarts', () => {
    let t = createTestTpm();
    t.clock.advance(1500);
    const a = clockInfo(t);
    expect(a.time).toBe(1500n);
    expect(a.clock).toBe(1500n);
    expect(t.call(TPM_CC.Shutdown, { params: CLEAR }).rc).toBe(0);
    t.clock.advance(100);
    t = restart(t, 10_000);
    t.clock.advance(200);
    expect(t.call(TPM_CC.Startup, { params: CLEAR }).rc).toBe(0);
    const b = clockInfo(t);
    expect(b.time).toBe(200n);
    // 1500 + 100 while powered, then 200 after the restart; the 10 s off do not count.
    expect(b.clock).toBe(1800n);
  });
});
