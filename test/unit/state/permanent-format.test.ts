/**
 * The permanent state's format 5 (binary body) against states the JSON formats wrote.
 *
 * test/vectors/state/permanent-v4-*.bin were written by the format-4 code (JSON bodies), before
 * format 5 existed:
 * - provisioned: `vtpmd setup --createek --create-ek-cert --create-platform-cert --lock-nvram`,
 *   then over one Startup(CLEAR): NV indices 0x01500000 (ordinary, 2048 B; PATTERN(256, 3)
 *   written at 0 and PATTERN(256, 5) at 1024), 0x01500001 (counter, incremented 5 times),
 *   0x01500002 (bits, 0x8000000000000011 set), 0x01500003 (extend, SHA-256, "abc" extended),
 *   0x01500004 (orderly counter, 3 increments), 0x01500005 (orderly, "orderly-data-123"),
 *   0x01500006 (PIN pass, auth "pin", 0/5), 0x01500007 (policy, auth "idxauth"), 0x01500008
 *   (0 bytes); an ECC P-256 storage primary persistent at 0x81000001; the owner policy, DA
 *   parameters 7/100/200, SHA-256 command audit of NV_Read, ClockSet to 2^60 + 12345,
 *   PCR_SetAuthPolicy on PCR 20, SetAlgorithmSet 0x12345678, PCR 16 extended, owner auth
 *   "ownerpw", ClearControl(YES), Shutdown(STATE);
 * - fresh: a new TPM; allocate: a new TPM after Startup and PCR_Allocate (SHA-1 and SHA-256);
 * - profile: a new TPM with a profile that leaves out GetRandom.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { deserializePersistent, PERSISTENT_VERSION, serializePersistent, type PersistentState } from '../../../src/tpm/state/persistent.js';
import { BODY_ENCODING, deserializeState, serializeState, StateFormatError } from '../../../src/tpm/state/serialize.js';
import { be, buildCommand, cat, createTestTpm, hex, parseResponse, restoreTestTpm, seededRandom, TestClock, type TestTpm } from '../../helpers/engine.js';

const FIXTURES = ['provisioned', 'fresh', 'allocate', 'profile'] as const;
const fixture = (name: (typeof FIXTURES)[number]): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`../../vectors/state/permanent-v4-${name}.bin`, import.meta.url)));
const header = (blob: Uint8Array) => {
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  return { encoding: v.getUint8(5), version: v.getUint16(6), minVersion: v.getUint16(8) };
};
const PATTERN = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff);

/** An engine on `blob` with a fixed environment: two of them given the same blob answer alike. */
function boot(blob: Uint8Array): TestTpm {
  const clock = new TestClock();
  const env = { random: seededRandom('format'), now: () => clock.ms, log: () => {}, logs: [] as string[] };
  const engine = Engine.restore(blob, env);
  engine.init();
  const send = (bytes: Uint8Array, locality = 0) => parseResponse(engine.execute(bytes, locality));
  return { engine, env, clock, send, call: (code, o = {}) => send(buildCommand(code, o), o.locality ?? 0), powerCycle: () => engine.init() };
}

const OWNER_PW = 'ownerpw';
const nvRead = (t: TestTpm, index: number, size: number, offset = 0, pw = OWNER_PW) =>
  t.call(TPM_CC.NV_Read, { handles: [TPM_RH.OWNER, index], passwords: [pw], params: cat(be.u16(size), be.u16(offset)) });
const readData = (t: TestTpm, index: number, size: number, offset = 0) => {
  const r = nvRead(t, index, size, offset);
  expect(r.rc).toBe(0);
  return r.params().subarray(2);
};
const ECC_PRIMARY = cat(be.u16(4), be.u16(0), be.u16(0), be.b2(cat(be.u16(0x0023), be.u16(0x000b), be.u32(0x00030072), be.u16(0),
  be.u16(0x0006), be.u16(128), be.u16(0x0043), be.u16(0x0010), be.u16(0x0003), be.u16(0x0010), be.u16(0), be.u16(0))), be.u16(0), be.u32(0));

/** What a client sees of a TPM: every handle, NV index, persistent object, PCR and a derived primary. */
function observe(t: TestTpm, ownerPw: string, startup: number): string[] {
  const out: string[] = [];
  const log = (r: { bytes: Uint8Array }) => out.push(hex(r.bytes));
  log(t.call(TPM_CC.Startup, { params: be.u16(startup) }));
  const handles = (first: number) => {
    const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(1), be.u32(first), be.u32(200)) });
    log(r);
    const v = new DataView(r.body.buffer, r.body.byteOffset);
    return Array.from({ length: v.getUint32(5) }, (_, i) => v.getUint32(9 + 4 * i));
  };
  for (const nv of handles(0x01000000)) {
    const pub = t.call(TPM_CC.NV_ReadPublic, { handles: [nv] });
    log(pub);
    const size = new DataView(pub.body.buffer, pub.body.byteOffset).getUint16(2 + 4 + 2 + 4 + 2 + new DataView(pub.body.buffer, pub.body.byteOffset).getUint16(2 + 4 + 2 + 4));
    for (let off = 0; off < size; off += 512) log(nvRead(t, nv, Math.min(512, size - off), off, ownerPw));
  }
  for (const h of handles(0x81000000)) log(t.call(TPM_CC.ReadPublic, { handles: [h] }));
  for (const cap of [[5, 0], [6, 0x100], [6, 0x200], [2, 0x100]]) log(t.call(TPM_CC.GetCapability, { params: cat(be.u32(cap[0]!), be.u32(cap[1]!), be.u32(100)) }));
  log(t.call(TPM_CC.PCR_Read, { params: cat(be.u32(1), be.u16(0x000b), be.u8(3), be.u8(0xff), be.u8(0xff), be.u8(0xff)) }));
  log(t.call(TPM_CC.ReadClock));
  log(t.call(TPM_CC.CreatePrimary, { handles: [TPM_RH.ENDORSEMENT], passwords: [''], params: ECC_PRIMARY }));
  log(t.call(TPM_CC.NV_Increment, { handles: [TPM_RH.OWNER, 0x01500001], passwords: [ownerPw] }));
  log(t.call(TPM_CC.GetRandom, { params: be.u16(16) }));
  return out;
}

describe('permanent state format 5', () => {
  test('states written as JSON (format 4) load, and saving them writes format 5 with the same content', () => {
    for (const name of FIXTURES) {
      const old = fixture(name);
      expect(header(old)).toMatchObject({ encoding: BODY_ENCODING.json, version: 4 });
      const state = deserializePersistent(old);
      const blob = serializePersistent(state);
      expect(header(blob)).toEqual({ encoding: BODY_ENCODING.binary, version: PERSISTENT_VERSION, minVersion: PERSISTENT_VERSION });
      expect(blob.length).toBeLessThan(old.length);
      expect(deserializePersistent(blob)).toEqual(state);
      // The engine's own blob after a restore holds the same state.
      expect(deserializePersistent(Engine.restore(old).permanentBlob())).toEqual({ ...state, clock: expect.any(BigInt) });
    }
  });

  test('a restored old state and its format-5 copy answer every command alike', () => {
    for (const name of FIXTURES) {
      const old = fixture(name);
      const again = serializePersistent(deserializePersistent(old));
      const pw = name === 'provisioned' ? OWNER_PW : '';
      const startup = name === 'provisioned' ? 1 : 0;
      const a = observe(boot(old), pw, startup);
      const b = observe(boot(again), pw, startup);
      expect(a.length).toBeGreaterThan(10);
      expect(b).toEqual(a);
    }
  });

  test('the provisioned fixture holds what was written into it', () => {
    const t = boot(serializePersistent(deserializePersistent(fixture('provisioned'))));
    expect(t.call(TPM_CC.Startup, { params: be.u16(1) }).rc).toBe(0);
    const written = readData(t, 0x01500000, 1024, 0);
    expect(written.subarray(0, 256)).toEqual(PATTERN(256, 3));
    expect(written.subarray(256)).toEqual(new Uint8Array(768).fill(0xff));
    expect(readData(t, 0x01500000, 256, 1024)).toEqual(PATTERN(256, 5));
    expect(hex(readData(t, 0x01500001, 8))).toBe('0000000000000005');
    expect(hex(readData(t, 0x01500002, 8))).toBe('8000000000000011');
    expect(readData(t, 0x01500003, 32)).toEqual(new Uint8Array(createHash('sha256').update(new Uint8Array(32)).update('abc').digest()));
    expect(hex(readData(t, 0x01500004, 8))).toBe('0000000000000003');
    expect(Buffer.from(readData(t, 0x01500005, 16)).toString()).toBe('orderly-data-123');
    const s = t.engine.tpm.persistent;
    expect(s.clock).toBeGreaterThanOrEqual(2n ** 60n + 12345n);
    expect(s.disableClear).toBe(true);
    expect(s.algorithmSet).toBe(0x12345678);
    expect(s.da?.maxTries).toBe(7);
    expect([...s.objects.keys()]).toContain(0x81000001);
    expect(s.nv.find((i) => i.public.nvIndex === 0x01500008)?.data).toEqual(new Uint8Array(0));
    const owner = t.call(TPM_CC.NV_Read, { handles: [TPM_RH.OWNER, 0x01500001], passwords: ['wrong'], params: cat(be.u16(8), be.u16(0)) });
    expect(owner.rc).toBe(withPosition(TPM_RC.BAD_AUTH, { session: 1 }));
  });

  test('every part round-trips, edge values included', () => {
    const s = deserializePersistent(fixture('provisioned'));
    const full: PersistentState = {
      ...s,
      pcrAllocationNext: deserializePersistent(fixture('allocate')).pcrAllocationNext!,
      profile: deserializePersistent(fixture('profile')).profile!,
      ppCommands: [TPM_CC.Clear, TPM_CC.HierarchyControl],
      nvMaxCounter: 2n ** 64n - 1n,
      clock: 2n ** 63n + 1n,
      lockoutAuth: new Uint8Array(0),
    };
    expect(full.pcrAllocationNext?.size).toBeGreaterThan(0);
    expect(full.savedState?.pcrs.size).toBeGreaterThan(0);
    const back = deserializePersistent(serializePersistent(full));
    expect(back).toEqual(full);
    expect(back.nvMaxCounter).toBe(2n ** 64n - 1n);
    // And the emptiest state: no objects, no indices, no optional fields.
    const bare: PersistentState = { ...s, objects: new Map(), nv: [], savedState: null, nvMaxCounter: 0n };
    for (const k of ['policies', 'da', 'audit', 'disableClear', 'pcrPolicy', 'ppCommands', 'algorithmSet', 'profile', 'pcrAllocationNext'] as const) delete bare[k];
    expect(deserializePersistent(serializePersistent(bare))).toEqual(bare);
  });

  test('states of every older version still load', () => {
    const s = deserializePersistent(fixture('fresh'));
    for (let version = 1; version <= 4; version++) {
      const restored = deserializePersistent(serializeState('permanent', version, 1, s));
      expect(restored).toEqual(s);
    }
  });

  test('a blob needing a newer version, an unknown body encoding or a damaged body is refused', () => {
    const blob = serializePersistent(deserializePersistent(fixture('fresh')));
    const newer = blob.slice();
    new DataView(newer.buffer).setUint16(8, PERSISTENT_VERSION + 1);
    expect(() => deserializePersistent(newer)).toThrow(`needs format version ${PERSISTENT_VERSION + 1}`);
    const unknown = blob.slice();
    unknown[5] = 7;
    expect(() => deserializePersistent(unknown)).toThrow(/body encoding \(7\)/);
    expect(() => deserializePersistent(blob.subarray(0, blob.length - 1))).toThrow(StateFormatError);
    const flipped = blob.slice();
    flipped[12] = 0x0d;
    expect(() => deserializePersistent(flipped)).toThrow(StateFormatError);
    expect(deserializeState('permanent', PERSISTENT_VERSION, blob).version).toBe(PERSISTENT_VERSION);
    // The volatile state keeps its JSON body.
    expect(header(createTestTpm().engine.volatileBlob()).encoding).toBe(BODY_ENCODING.json);
  });

  test('what an NV_Write, NV_Increment and EvictControl change is in the blob they leave, and back after a restore', () => {
    const t = createTestTpm();
    const define = (index: number, attributes: number, size: number) => t.call(TPM_CC.NV_DefineSpace, {
      handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(''), be.b2(cat(be.u32(index), be.u16(0x000b), be.u32(attributes), be.b2(''), be.u16(size)))),
    }).rc;
    expect(define(0x01000100, 0x00020002, 2048)).toBe(0);
    expect(define(0x01000101, 0x00020012, 8)).toBe(0);
    t.engine.takePermanentChanges();
    const data = PATTERN(256, 11);
    expect(t.call(TPM_CC.NV_Write, { handles: [TPM_RH.OWNER, 0x01000100], passwords: [''], params: cat(be.b2(data), be.u16(512)) }).rc).toBe(0);
    const afterWrite = t.engine.takePermanentChanges()!;
    expect(afterWrite).not.toBeNull();
    expect(t.call(TPM_CC.NV_Increment, { handles: [TPM_RH.OWNER, 0x01000101], passwords: [''] }).rc).toBe(0);
    const afterIncrement = t.engine.takePermanentChanges()!;
    const primary = t.call(TPM_CC.CreatePrimary, { handles: [TPM_RH.OWNER], passwords: [''], params: ECC_PRIMARY });
    expect(primary.rc).toBe(0);
    expect(t.engine.takePermanentChanges()).toBeNull();
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, new DataView(primary.body.buffer, primary.body.byteOffset).getUint32(0)], passwords: [''], params: be.u32(0x81000005) }).rc).toBe(0);
    const afterEvict = t.engine.takePermanentChanges()!;

    const w = restoreTestTpm(t, afterWrite);
    expect(w.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(nvRead(w, 0x01000100, 256, 512, '').params().subarray(2)).toEqual(data);
    expect(nvRead(w, 0x01000101, 8, 0, '').rc).toBe(TPM_RC.NV_UNINITIALIZED);
    const i = restoreTestTpm(t, afterIncrement);
    expect(i.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(hex(nvRead(i, 0x01000101, 8, 0, '').params().subarray(2))).toBe('0000000000000001');
    expect(i.call(TPM_CC.ReadPublic, { handles: [0x81000005] }).rc).not.toBe(0);
    const e = restoreTestTpm(t, afterEvict);
    expect(e.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(e.call(TPM_CC.ReadPublic, { handles: [0x81000005] }).bytes).toEqual(t.call(TPM_CC.ReadPublic, { handles: [0x81000005] }).bytes);
  });
});
