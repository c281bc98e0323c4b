// H-CRTM / DRTM (_TPM_Hash_Start/Data/End) and the volatile state, on the in-process engine.
// Known answers: Debian's swtpm 0.7.1 with `swtpm_ioctl -h 1234` before and after Startup(CLEAR).
import { describe, expect, it } from 'vitest';
import { TPM_CC } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { StateFormatError } from '../../../src/tpm/state/serialize.js';
import { be, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';

const SHA1 = 0x0004;
const SHA256 = 0x000b;
const data = new TextEncoder().encode('1234');
const pcr = (t: TestTpm, alg: number, n: number) => hex(t.engine.tpm.pcrs.get(alg, n)!);
const startup = (t: TestTpm, su = 0) => t.call(TPM_CC.Startup, { params: be.u16(su) }).rc;

function measure(engine: Engine, bytes = data): void {
  engine.hashStart();
  engine.hashData(bytes);
  engine.hashEnd();
}

describe('_TPM_Hash_Start/Data/End', () => {
  it('DRTM after Startup: PCR 17 = H(0 || H(data)) in every bank (swtpm 0.7.1 values)', () => {
    const t = createTestTpm();
    expect(t.engine.tpmEstablished).toBe(false);
    measure(t.engine);
    expect(pcr(t, SHA256, 17)).toBe('fca5d649bfb0c922fd330f79b20043289dafd60d01a4c4373cf28adb56c9b454');
    expect(pcr(t, SHA1, 17)).toBe('97e976e4f22cd6d24afd212085ad7a86647f2ae5');
    // PCRs 18–22 reset from all-ones to 0; PCR 0 untouched
    expect(pcr(t, SHA256, 18)).toBe('00'.repeat(32));
    expect(pcr(t, SHA256, 23)).toBe('00'.repeat(32));
    expect(pcr(t, SHA256, 16)).toBe('00'.repeat(32));
    expect(pcr(t, SHA256, 0)).toBe('00'.repeat(32));
    expect(t.engine.tpmEstablished).toBe(true);
    expect(t.engine.tpm.objects.count).toBe(0);
    // restartCount goes up and the permanent state must be saved
    expect(t.engine.tpm.persistent.restartCount).toBe(1);
    expect(t.engine.takePermanentChanges()).not.toBeNull();
  });

  it('H-CRTM before Startup: PCR 0 = H(0…04 || H(data)) at the next Startup; then DRTM (swtpm 0.7.1 values)', () => {
    const t = createTestTpm({ started: false });
    measure(t.engine);
    expect(t.engine.tpmEstablished).toBe(true);
    expect(startup(t)).toBe(0);
    measure(t.engine);
    expect(pcr(t, SHA256, 0)).toBe('340a233fac4ca014986e45dd95ec776a7a3f86a21074f43a4390c5b8c3abeaf4');
    expect(pcr(t, SHA1, 0)).toBe('650ef867669ee66b4afb2d348823d8b7021f6727');
    expect(pcr(t, SHA256, 17)).toBe('fca5d649bfb0c922fd330f79b20043289dafd60d01a4c4373cf28adb56c9b454');
  });

  it('data in several chunks gives the same digest; HASH_DATA/END without HASH_START do nothing', () => {
    const t = createTestTpm();
    t.engine.hashData(data);
    t.engine.hashEnd();
    expect(pcr(t, SHA256, 17)).toBe('ff'.repeat(32));
    expect(t.engine.tpmEstablished).toBe(false);
    t.engine.hashStart();
    t.engine.hashData(data.subarray(0, 1));
    t.engine.hashData(data.subarray(1));
    t.engine.hashEnd();
    expect(pcr(t, SHA256, 17)).toBe('fca5d649bfb0c922fd330f79b20043289dafd60d01a4c4373cf28adb56c9b454');
  });

  it('HASH_START with every object slot taken flushes the first loaded object', () => {
    const t = createTestTpm();
    const handles: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = t.call(TPM_CC.HashSequenceStart, { params: new Uint8Array([0, 0, 0, 0x0b]) });
      expect(r.rc).toBe(0);
      handles.push(new DataView(r.body.buffer, r.body.byteOffset).getUint32(0));
    }
    t.engine.hashStart();
    expect(t.engine.tpm.objects.get(handles[0]!)?.kind).toBe('event');
    expect(t.engine.tpm.objects.count).toBe(3);
    t.engine.hashData(data);
    t.engine.hashEnd();
    expect(t.engine.tpm.objects.handles()).toEqual(handles.slice(1));
    expect(pcr(t, SHA256, 17)).toBe('fca5d649bfb0c922fd330f79b20043289dafd60d01a4c4373cf28adb56c9b454');
  });

  it('a second HASH_START discards the running sequence', () => {
    const t = createTestTpm();
    t.engine.hashStart();
    t.engine.hashData(new TextEncoder().encode('garbage'));
    measure(t.engine);
    expect(pcr(t, SHA256, 17)).toBe('fca5d649bfb0c922fd330f79b20043289dafd60d01a4c4373cf28adb56c9b454');
    expect(t.engine.tpm.objects.count).toBe(0);
  });
});

describe('volatile state', () => {
  it('round trip: started, PCRs, counter, tpmEstablished and sessions come back after _TPM_Init', () => {
    const t = createTestTpm();
    measure(t.engine);
    expect(t.call(TPM_CC.PCR_Extend, { handles: [10], passwords: [''], params: new Uint8Array([0, 0, 0, 1, 0, 0x0b, ...new Uint8Array(32).fill(7)]) }).rc).toBe(0);
    const pcr10 = pcr(t, SHA256, 10);
    const counter = t.engine.tpm.pcrs.updateCounter;
    const nullProof = hex(t.engine.tpm.nullProof);
    const blob = t.engine.volatileBlob();
    expect(Buffer.from(blob.subarray(0, 6)).toString('hex')).toBe('5654504d0200'); // "VTPM", kind 2

    const fresh = Engine.restore(t.engine.permanentBlob(), t.env);
    fresh.init();
    fresh.restoreVolatile(blob);
    expect(fresh.started).toBe(true);
    expect(hex(fresh.tpm.pcrs.get(SHA256, 10)!)).toBe(pcr10);
    expect(hex(fresh.tpm.pcrs.get(SHA256, 17)!)).toBe('fca5d649bfb0c922fd330f79b20043289dafd60d01a4c4373cf28adb56c9b454');
    expect(fresh.tpm.pcrs.updateCounter).toBe(counter);
    expect(fresh.tpmEstablished).toBe(true);
    expect(hex(fresh.tpm.nullProof)).toBe(nullProof);
    // no Startup needed (a second one is TPM_RC_INITIALIZE)
    const r = parse(fresh.execute(new Uint8Array([0x80, 1, 0, 0, 0, 12, 0, 0, 1, 0x44, 0, 0])));
    expect(r).toBe(0x100);
  });

  it('a pending H-CRTM survives a save before Startup', () => {
    const t = createTestTpm({ started: false });
    measure(t.engine);
    const blob = t.engine.volatileBlob();
    const fresh = Engine.restore(t.engine.permanentBlob(), t.env);
    fresh.init();
    fresh.restoreVolatile(blob);
    expect(fresh.started).toBe(false);
    expect(parse(fresh.execute(new Uint8Array([0x80, 1, 0, 0, 0, 12, 0, 0, 1, 0x44, 0, 0])))).toBe(0);
    expect(hex(fresh.tpm.pcrs.get(SHA256, 0)!)).toBe('340a233fac4ca014986e45dd95ec776a7a3f86a21074f43a4390c5b8c3abeaf4');
  });

  it('hash sequences are left out (logged); the slot is empty after restore', () => {
    const t = createTestTpm();
    expect(t.call(TPM_CC.HashSequenceStart, { params: new Uint8Array([0, 0, 0, 0x0b]) }).rc).toBe(0);
    const blob = t.engine.volatileBlob();
    expect(t.env.logs.at(-1)).toMatch(/leaves out hash\/event sequence 0x80000000/);
    const fresh = Engine.restore(t.engine.permanentBlob(), t.env);
    fresh.init();
    fresh.restoreVolatile(blob);
    expect(fresh.tpm.objects.count).toBe(0);
  });

  it('a damaged or foreign blob is refused and changes nothing', () => {
    const t = createTestTpm();
    const blob = t.engine.volatileBlob();
    const fresh = Engine.restore(t.engine.permanentBlob(), t.env);
    fresh.init();
    expect(() => fresh.restoreVolatile(t.engine.permanentBlob())).toThrow(StateFormatError);
    expect(() => fresh.restoreVolatile(blob.subarray(0, blob.length - 5))).toThrow(StateFormatError);
    const json = JSON.parse(Buffer.from(blob.subarray(12)).toString()) as Record<string, unknown>;
    json.startupLocality = 9;
    const bad = new Uint8Array([...blob.subarray(0, 12), ...Buffer.from(JSON.stringify(json))]);
    expect(() => fresh.restoreVolatile(bad)).toThrow(/startup locality/);
    // newer minVersion
    const newer = blob.slice();
    newer[9] = 99;
    expect(() => fresh.restoreVolatile(newer)).toThrow(/format version 99/);
    expect(fresh.started).toBe(false);
  });
});

function parse(rsp: Uint8Array): number {
  return new DataView(rsp.buffer, rsp.byteOffset).getUint32(6);
}
