/** Part 3 §31 NV storage: each command's success and error paths, names, lifetimes, the budget. */
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RH, TPM_RS_PW, TPM_ST, TPMA_NV } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { deserializePersistent, type PersistentState } from '../../../src/tpm/state/persistent.js';
import { serializeState } from '../../../src/tpm/state/serialize.js';
import { be, buildCommand, cat, createTestTpm, hex, parseResponse, restoreTestTpm, type TestTpm } from '../../helpers/engine.js';

const A = TPMA_NV;
const OWNER_RW = A.OWNERREAD | A.OWNERWRITE;
const NT = (t: number) => t << 4;
const IDX = 0x01000001;

interface Def {
  handle?: number;
  attributes: number;
  size?: number;
  nameAlg?: number;
  policy?: Uint8Array;
  auth?: string | Uint8Array;
  hierarchy?: number;
}

const nvPublic = (d: Def) =>
  cat(be.u32(d.handle ?? IDX), be.u16(d.nameAlg ?? TPM_ALG.SHA256), be.u32(d.attributes >>> 0), be.b2(d.policy ?? new Uint8Array(0)), be.u16(d.size ?? 32));
const define = (t: TestTpm, d: Def) =>
  t.call(TPM_CC.NV_DefineSpace, {
    handles: [d.hierarchy ?? TPM_RH.OWNER],
    passwords: [''],
    params: cat(be.b2(d.auth ?? ''), be.b2(nvPublic(d))),
  }).rc;
const write = (t: TestTpm, data: Uint8Array | string, offset = 0, auth: number = TPM_RH.OWNER, pw = '', handle = IDX) =>
  t.call(TPM_CC.NV_Write, { handles: [auth, handle], passwords: [pw], params: cat(be.b2(data), be.u16(offset)) }).rc;
const read = (t: TestTpm, size: number, offset = 0, auth: number = TPM_RH.OWNER, pw = '', handle = IDX) => {
  const r = t.call(TPM_CC.NV_Read, { handles: [auth, handle], passwords: [pw], params: cat(be.u16(size), be.u16(offset)) });
  return { rc: r.rc, data: r.rc === 0 ? hex(r.params().subarray(2)) : '' };
};
const simple = (t: TestTpm, cc: number, auth: number = TPM_RH.OWNER, handle = IDX, params: Uint8Array = new Uint8Array(0), pw = '') =>
  t.call(cc, { handles: [auth, handle], passwords: [pw], params }).rc;
const increment = (t: TestTpm, auth: number = TPM_RH.OWNER, handle = IDX) => simple(t, TPM_CC.NV_Increment, auth, handle);
const readU64 = (t: TestTpm, handle = IDX) => BigInt(`0x${read(t, 8, 0, TPM_RH.OWNER, '', handle).data}`);
const startup = (t: TestTpm, su: number) => t.call(TPM_CC.Startup, { params: be.u16(su) }).rc;
const shutdown = (t: TestTpm, su: number) => t.call(TPM_CC.Shutdown, { params: be.u16(su) }).rc;
/** A daemon restart: the engine rebuilt from its permanent state, powered on, started. */
function restart(t: TestTpm, su = 0): TestTpm {
  const u = restoreTestTpm(t);
  expect(startup(u, su)).toBe(0);
  return u;
}
const readPublic = (t: TestTpm, handle = IDX) => {
  const r = t.call(TPM_CC.NV_ReadPublic, { handles: [handle] });
  if (r.rc !== 0) return { rc: r.rc, attributes: 0, pub: new Uint8Array(0), name: '' };
  const b = r.body;
  const pubSize = (b[0]! << 8) | b[1]!;
  const pub = b.subarray(2, 2 + pubSize);
  const name = b.subarray(4 + pubSize);
  return { rc: r.rc, attributes: new DataView(pub.buffer, pub.byteOffset).getUint32(6) >>> 0, pub, name: hex(name) };
};

describe('NV_DefineSpace and NV_ReadPublic', () => {
  test('the Name is nameAlg || H(TPMS_NV_PUBLIC), as swtpm computes it', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.AUTHREAD | A.AUTHWRITE, auth: 'pass' })).toBe(0);
    const p = readPublic(t);
    expect(p.rc).toBe(0);
    // tpm2_nvreadpublic on Debian's swtpm 0.7.1 for the same definition.
    expect(p.name).toBe('000b4eb66fadbd34409b81bd551c1d04592cc80c43177f346cd46e7095bdc4c140a3');
    expect(p.name).toBe(`000b${createHash('sha256').update(p.pub).digest('hex')}`);
    expect(p.attributes).toBe(0x60006);
    // WRITTEN changes the public area and so the Name.
    expect(write(t, 'x')).toBe(0);
    expect(readPublic(t).attributes).toBe((0x60006 | A.WRITTEN) >>> 0);
    expect(readPublic(t).name).not.toBe(p.name);
  });

  test('attribute and size checks in the reference order', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW, policy: new Uint8Array(20) })).toBe(0x2d5); // SIZE+P2: policy not a SHA-256 digest
    expect(define(t, { attributes: OWNER_RW, auth: new Uint8Array(33).fill(1) })).toBe(0x1d5); // SIZE+P1
    expect(define(t, { attributes: OWNER_RW | NT(3) })).toBe(0x2c2); // unknown type
    expect(define(t, { attributes: OWNER_RW | NT(1), size: 4 })).toBe(0x2d5); // counter of 4 bytes
    expect(define(t, { attributes: OWNER_RW | NT(4), size: 20 })).toBe(0x2d5); // extend not a digest
    expect(define(t, { attributes: OWNER_RW | NT(1) | A.CLEAR_STCLEAR, size: 8 })).toBe(0x2c2); // counters are never cleared
    expect(define(t, { attributes: OWNER_RW | NT(8), size: 8 })).toBe(0x2c2); // PIN fail without NO_DA
    expect(define(t, { attributes: OWNER_RW | A.AUTHWRITE | NT(9), size: 8 })).toBe(0x2c2); // PIN pass with AUTHWRITE
    expect(define(t, { attributes: OWNER_RW | A.WRITTEN })).toBe(0x2c2);
    expect(define(t, { attributes: A.OWNERWRITE })).toBe(0x2c2); // no way to read
    expect(define(t, { attributes: A.OWNERREAD })).toBe(0x2c2); // no way to write
    expect(define(t, { attributes: OWNER_RW | A.CLEAR_STCLEAR | A.WRITEDEFINE })).toBe(0x2c2);
    expect(define(t, { attributes: OWNER_RW | A.PLATFORMCREATE })).toBe(0x182); // ATTRIBUTES+H1
    expect(define(t, { attributes: A.PPREAD | A.PPWRITE, hierarchy: TPM_RH.PLATFORM })).toBe(0x182);
    expect(define(t, { attributes: OWNER_RW | A.POLICY_DELETE })).toBe(0x2c2);
    expect(define(t, { attributes: OWNER_RW | A.WRITEALL, size: 1025 })).toBe(0x2d5);
    expect(define(t, { attributes: OWNER_RW, size: 2049 })).toBe(0x2d5); // unmarshal: SIZE, P2
    expect(define(t, { attributes: OWNER_RW | (1 << 8) })).toBe(0x2e1); // RESERVED_BITS
    expect(define(t, { attributes: OWNER_RW, handle: 0x02000000 })).toBe(0x2c4); // VALUE: not an NV handle
    expect(define(t, { attributes: OWNER_RW, nameAlg: TPM_ALG.NULL })).toBe(0x2c3); // HASH
    expect(define(t, { attributes: OWNER_RW })).toBe(0);
    expect(define(t, { attributes: OWNER_RW })).toBe(0x14c); // NV_DEFINED
    expect(readPublic(t, 0x01000002).rc).toBe(0x18b); // HANDLE+H1: not defined
  });

  test('GetCapability lists the indices and the NV properties', () => {
    const t = createTestTpm();
    for (const h of [0x01000003, 0x01000001]) expect(define(t, { handle: h, attributes: OWNER_RW })).toBe(0);
    expect(define(t, { handle: 0x01000002, attributes: OWNER_RW | NT(1), size: 8 })).toBe(0);
    const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(1), be.u32(0x01000000), be.u32(10)) });
    expect(hex(r.body)).toBe('00' + '00000001' + '00000003' + '01000001' + '01000002' + '01000003');
    const prop = (pt: number) => {
      const c = t.call(TPM_CC.GetCapability, { params: cat(be.u32(6), be.u32(pt), be.u32(1)) });
      return new DataView(c.body.buffer, c.body.byteOffset).getUint32(13);
    };
    expect(prop(0x202)).toBe(3); // HR_NV_INDEX
    expect(prop(0x20a)).toBe(1); // NV_COUNTERS
    expect(prop(0x20b)).toBe(25); // NV_COUNTERS_AVAIL: limited by orderly RAM, as in libtpms
    expect(prop(0x209)).toBe(65); // HR_PERSISTENT_AVAIL
    expect(prop(0x117)).toBe(2048); // NV_INDEX_MAX
    expect(prop(0x12c)).toBe(1024); // NV_BUFFER_MAX
  });

  test('NV fills up with TPM_RC_NV_SPACE where swtpm does: 68 indices of 2048 bytes and one of 1900', () => {
    const t = createTestTpm();
    let n = 0;
    while (define(t, { handle: 0x01000000 + n, attributes: OWNER_RW, size: 2048 }) === 0) n++;
    expect(n).toBe(68);
    expect(define(t, { handle: 0x01800000, attributes: OWNER_RW, size: 1901 })).toBe(0x14b);
    expect(define(t, { handle: 0x01800000, attributes: OWNER_RW, size: 1900 })).toBe(0);
    expect(define(t, { handle: 0x01800001, attributes: OWNER_RW, size: 0 })).toBe(0x14b);
    // Counters have their own reserve.
    expect(define(t, { handle: 0x01800002, attributes: OWNER_RW | NT(1), size: 8 })).toBe(0);
    // Deleting one makes room again.
    expect(simple(t, TPM_CC.NV_UndefineSpace, TPM_RH.OWNER, 0x01000000)).toBe(0);
    expect(define(t, { handle: 0x01800001, attributes: OWNER_RW, size: 2048 })).toBe(0);
  });
});

describe('NV_Write and NV_Read', () => {
  test('writes and reads back; the first partial write leaves the rest erased (ones, as swtpm)', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW, size: 16 })).toBe(0);
    expect(read(t, 4).rc).toBe(0x14a); // NV_UNINITIALIZED
    expect(write(t, 'abcd', 4)).toBe(0);
    expect(read(t, 16).data).toBe('ffffffff61626364ffffffffffffffff');
    expect(read(t, 2, 5).data).toBe('6263');
    expect(write(t, new Uint8Array(17))).toBe(0x146); // NV_RANGE
    expect(write(t, 'ab', 15)).toBe(0x146);
    expect(write(t, '', 17)).toBe(0x2c4); // VALUE+P2
    expect(read(t, 17).rc).toBe(0x146);
    expect(read(t, 0, 17).rc).toBe(0x2c4);
    expect(read(t, 1025).rc).toBe(0x1c4); // VALUE+P1: over MAX_NV_BUFFER_SIZE
  });

  test('every write of new bytes changes the permanent state; rewriting the same bytes does not', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW, size: 4 })).toBe(0);
    expect(write(t, 'abcd')).toBe(0);
    expect(t.engine.takePermanentChanges()).not.toBeNull();
    expect(write(t, 'bc', 1)).toBe(0);
    expect(t.engine.takePermanentChanges()).toBeNull();
    expect(write(t, 'xy', 1)).toBe(0);
    expect(t.engine.takePermanentChanges()).not.toBeNull();
    expect(read(t, 4).data).toBe('61787964');
  });

  test('who may write and read: owner, platform or the index with its authValue', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: A.OWNERWRITE | A.AUTHREAD, auth: 'secret', size: 8 })).toBe(0);
    expect(write(t, '12345678', 0, TPM_RH.PLATFORM)).toBe(0x149); // NV_AUTHORIZATION
    expect(write(t, '12345678', 0, IDX, 'secret')).toBe(0x12f); // AUTH_UNAVAILABLE: no AUTHWRITE
    expect(write(t, '12345678')).toBe(0);
    expect(read(t, 8).rc).toBe(0x149); // owner may not read
    expect(read(t, 8, 0, IDX, 'wrong').rc).toBe(0x98e); // AUTH_FAIL: DA-protected
    expect(read(t, 8, 0, IDX, 'secret').data).toBe(hex(new TextEncoder().encode('12345678')));
    expect(read(t, 8, 0, 0x01000002).rc).toBe(0x18b); // HANDLE+H1: another, undefined index
  });

  test('NO_DA makes a wrong password TPM_RC_BAD_AUTH; WRITEALL needs the whole index', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.AUTHREAD | A.NO_DA | A.WRITEALL, auth: 'pw', size: 4 })).toBe(0);
    expect(write(t, 'ab')).toBe(0x146);
    expect(write(t, 'abcd')).toBe(0);
    expect(read(t, 4, 0, IDX, 'nope').rc).toBe(0x9a2);
  });

  test('NV_Write refuses counters, bits and extend indices (bare TPM_RC_ATTRIBUTES)', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | NT(1), size: 8 })).toBe(0);
    expect(write(t, '12345678')).toBe(0x082);
  });
});

describe('counters, bits, extend', () => {
  test('NV_Increment counts from 1, and a new counter starts above every deleted one', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | NT(1), size: 8 })).toBe(0);
    expect(read(t, 8).rc).toBe(0x14a);
    for (let i = 0; i < 5; i++) expect(increment(t)).toBe(0);
    expect(readU64(t)).toBe(5n);
    expect(simple(t, TPM_CC.NV_UndefineSpace, TPM_RH.OWNER, IDX)).toBe(0);
    expect(define(t, { attributes: OWNER_RW | NT(1), size: 8 })).toBe(0);
    expect(increment(t)).toBe(0);
    expect(readU64(t)).toBe(6n);
    expect(define(t, { handle: 0x01000002, attributes: OWNER_RW, size: 8 })).toBe(0);
    expect(increment(t, TPM_RH.OWNER, 0x01000002)).toBe(0x282); // ATTRIBUTES+H2
  });

  test('NV_SetBits ORs bits in; NV_Extend hashes old || new', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | NT(2), size: 8 })).toBe(0);
    expect(simple(t, TPM_CC.NV_SetBits, TPM_RH.OWNER, IDX, cat(be.u32(0), be.u32(0x1100)))).toBe(0);
    expect(simple(t, TPM_CC.NV_SetBits, TPM_RH.OWNER, IDX, cat(be.u32(1), be.u32(0x0022)))).toBe(0);
    expect(read(t, 8).data).toBe('0000000100001122');
    expect(define(t, { handle: 0x01000002, attributes: OWNER_RW | NT(4), size: 32 })).toBe(0);
    expect(simple(t, TPM_CC.NV_Extend, TPM_RH.OWNER, 0x01000002, be.b2('abc'))).toBe(0);
    const first = createHash('sha256').update(new Uint8Array(32)).update('abc').digest();
    expect(read(t, 32, 0, TPM_RH.OWNER, '', 0x01000002).data).toBe(first.toString('hex'));
    expect(simple(t, TPM_CC.NV_Extend, TPM_RH.OWNER, IDX, be.b2('abc'))).toBe(0x282);
    expect(simple(t, TPM_CC.NV_SetBits, TPM_RH.OWNER, 0x01000002, cat(be.u32(0), be.u32(1)))).toBe(0x282);
  });
});

describe('locks and Startup', () => {
  test('WRITE_STCLEAR and READ_STCLEAR locks last until the next Startup(CLEAR)', () => {
    let t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.WRITE_STCLEAR | A.READ_STCLEAR, size: 4 })).toBe(0);
    expect(write(t, 'abcd')).toBe(0);
    expect(simple(t, TPM_CC.NV_WriteLock)).toBe(0);
    expect(simple(t, TPM_CC.NV_WriteLock)).toBe(0); // already locked: no error
    expect(write(t, 'abcd')).toBe(0x148); // NV_LOCKED
    expect(simple(t, TPM_CC.NV_ReadLock)).toBe(0);
    expect(read(t, 4).rc).toBe(0x148);
    expect(shutdown(t, 0)).toBe(0);
    t = restart(t);
    expect(read(t, 4).data).toBe('61626364');
    expect(write(t, 'efgh')).toBe(0);
  });

  test('WRITEDEFINE locks for good once written; without either attribute WriteLock is refused', () => {
    let t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.WRITEDEFINE, size: 4 })).toBe(0);
    expect(define(t, { handle: 0x01000002, attributes: OWNER_RW, size: 4 })).toBe(0);
    expect(simple(t, TPM_CC.NV_WriteLock, TPM_RH.OWNER, 0x01000002)).toBe(0x282);
    expect(simple(t, TPM_CC.NV_WriteLock, TPM_RH.PLATFORM)).toBe(0x149);
    expect(write(t, 'abcd')).toBe(0);
    expect(simple(t, TPM_CC.NV_WriteLock)).toBe(0);
    t = restart(t);
    expect(write(t, 'abcd')).toBe(0x148);
    expect(simple(t, TPM_CC.NV_ReadLock)).toBe(0x282); // no READ_STCLEAR
  });

  test('NV_GlobalWriteLock locks GLOBALLOCK indices until Startup', () => {
    let t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.GLOBALLOCK, size: 4 })).toBe(0);
    expect(define(t, { handle: 0x01000002, attributes: OWNER_RW, size: 4 })).toBe(0);
    expect(t.call(TPM_CC.NV_GlobalWriteLock, { handles: [TPM_RH.OWNER], passwords: [''] }).rc).toBe(0);
    expect(write(t, 'abcd')).toBe(0x148);
    expect(write(t, 'abcd', 0, TPM_RH.OWNER, '', 0x01000002)).toBe(0);
    t = restart(t);
    expect(write(t, 'abcd')).toBe(0);
  });

  test('CLEAR_STCLEAR forgets the data at Startup(CLEAR) but not at Resume', () => {
    let t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.CLEAR_STCLEAR, size: 4 })).toBe(0);
    expect(write(t, 'abcd')).toBe(0);
    expect(shutdown(t, 1)).toBe(0);
    t = restart(t, 1);
    expect(read(t, 4).data).toBe('61626364');
    expect(shutdown(t, 0)).toBe(0);
    t = restart(t);
    expect(read(t, 4).rc).toBe(0x14a);
  });
});

describe('orderly indices', () => {
  test('data written to an orderly index survives an orderly shutdown and is lost by a crash', () => {
    let t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.ORDERLY, size: 4 })).toBe(0);
    t.engine.takePermanentChanges();
    expect(write(t, 'abcd')).toBe(0);
    expect(t.engine.takePermanentChanges()).toBeNull(); // the write stayed in RAM
    expect(shutdown(t, 1)).toBe(0);
    t = restart(t, 1);
    expect(read(t, 4).data).toBe('61626364');
    expect(write(t, 'wxyz')).toBe(0);
    t = restart(t); // no Shutdown: a crash
    expect(read(t, 4).rc).toBe(0x14a); // a TPM Reset clears WRITTEN of orderly non-counters
  });

  test('the volatile state (STORE_VOLATILE, then INIT) carries the RAM copies of orderly indices', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.ORDERLY, size: 4 })).toBe(0);
    expect(write(t, 'abcd')).toBe(0);
    const volatile = t.engine.volatileBlob();
    const engine = Engine.restore(t.engine.permanentBlob(), t.env);
    engine.init();
    engine.restoreVolatile(volatile);
    const u: TestTpm = { ...t, engine, call: (code, o = {}) => parseResponse(engine.execute(buildCommand(code, o), o.locality ?? 0)) };
    expect(read(u, 4).data).toBe('61626364');
  });

  test('an orderly counter never goes back: after a crash it moves past its unsaved increments', () => {
    let t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.ORDERLY | NT(1), size: 8 })).toBe(0);
    expect(increment(t)).toBe(0); // the first write is saved at once
    for (let i = 0; i < 9; i++) expect(increment(t)).toBe(0);
    expect(readU64(t)).toBe(10n);
    t = restart(t); // crash: only the value 1 was saved
    expect(readU64(t)).toBe(0xffn);
    expect(increment(t)).toBe(0);
    expect(readU64(t)).toBe(0x100n); // a roll-over of the low 8 bits is saved
    t = restart(t);
    expect(readU64(t)).toBe(0x1ffn);
    expect(shutdown(t, 0)).toBe(0);
    t = restart(t);
    expect(readU64(t)).toBe(0x1ffn); // after an orderly shutdown the value is exact
  });
});

describe('authorization details', () => {
  test('PIN Pass: reads with the authValue count against pinLimit, then it is unavailable', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | NT(9), size: 8, auth: 'pin' })).toBe(0);
    expect(read(t, 8, 0, IDX, 'pin').rc).toBe(0x12f); // not written yet
    expect(write(t, cat(be.u32(0), be.u32(2)))).toBe(0);
    expect(read(t, 8, 0, IDX, 'pin').data).toBe('0000000100000002'); // this use already counted
    expect(read(t, 8, 0, IDX, 'pin').rc).toBe(0);
    expect(read(t, 8, 0, IDX, 'pin').rc).toBe(0x12f);
  });

  test('PIN Fail: failures count, a success resets the count', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | NT(8) | A.NO_DA, size: 8, auth: 'pin' })).toBe(0);
    expect(write(t, cat(be.u32(0), be.u32(5)))).toBe(0);
    expect(read(t, 8, 0, IDX, 'bad').rc).toBe(0x9a2);
    expect(read(t, 8, 0, IDX, 'bad').rc).toBe(0x9a2);
    expect(read(t, 8).data).toBe('0000000200000005');
    expect(read(t, 8, 0, IDX, 'pin').data).toBe('0000000000000005');
  });

  test('NV_ChangeAuth and NV_UndefineSpaceSpecial need a policy session (ADMIN role)', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.AUTHREAD | A.AUTHWRITE, auth: 'pw' })).toBe(0);
    expect(t.call(TPM_CC.NV_ChangeAuth, { handles: [IDX], passwords: ['pw'], params: be.b2('new') }).rc).toBe(0x124); // AUTH_TYPE
    expect(define(t, { handle: 0x01000002, attributes: A.PPREAD | A.PPWRITE | A.PLATFORMCREATE | A.POLICY_DELETE, hierarchy: TPM_RH.PLATFORM, policy: new Uint8Array(32).fill(7) })).toBe(0);
    expect(t.call(TPM_CC.NV_UndefineSpaceSpecial, { handles: [0x01000002, TPM_RH.PLATFORM], passwords: ['', ''] }).rc).toBe(0x124);
    // POLICY_DELETE indices cannot go through NV_UndefineSpace.
    expect(simple(t, TPM_CC.NV_UndefineSpace, TPM_RH.PLATFORM, 0x01000002)).toBe(0x282);
  });

  test('through a policy session whose digest is the index authPolicy: NV_ChangeAuth and NV_UndefineSpaceSpecial', () => {
    const t = createTestTpm();
    // ADMIN-role commands need PolicyCommandCode in the policy (Part 1 §19.7.3): each index's
    // authPolicy is H(0…0 || TPM_CC_PolicyCommandCode || the command).
    const ccPolicy = (code: number) =>
      new Uint8Array(createHash('sha256').update(new Uint8Array(32)).update(be.u32(TPM_CC.PolicyCommandCode)).update(be.u32(code)).digest());
    expect(define(t, { attributes: OWNER_RW | A.AUTHREAD | A.AUTHWRITE, auth: 'old', policy: ccPolicy(TPM_CC.NV_ChangeAuth) })).toBe(0);
    const PLAT_IDX = 0x01000002;
    const special = ccPolicy(TPM_CC.NV_UndefineSpaceSpecial);
    expect(define(t, { handle: PLAT_IDX, attributes: A.PPREAD | A.PPWRITE | A.PLATFORMCREATE | A.POLICY_DELETE, hierarchy: TPM_RH.PLATFORM, policy: special })).toBe(0);
    const NO_DELETE_IDX = 0x01000003;
    expect(define(t, { handle: NO_DELETE_IDX, attributes: OWNER_RW | A.AUTHREAD | A.AUTHWRITE, policy: special })).toBe(0);
    /** One command authorized by a new policy session (handle 1) and, for more handles, passwords. */
    const withPolicy = (code: number, handles: number[], params: Uint8Array) => {
      const nonceCaller = new Uint8Array(16).fill(9);
      const s = t.call(TPM_CC.StartAuthSession, {
        handles: [TPM_RH.NULL, TPM_RH.NULL],
        params: cat(be.b2(nonceCaller), be.u16(0), be.u8(1), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.SHA256)),
      });
      expect(s.rc).toBe(0);
      const session = new DataView(s.body.buffer, s.body.byteOffset).getUint32(0);
      const nonceTPM = s.body.slice(6, 38);
      expect(t.call(TPM_CC.PolicyCommandCode, { handles: [session], params: be.u32(code) }).rc).toBe(0);
      const name = (h: number) => {
        if (h >>> 24 !== 1) return be.u32(h);
        return new Uint8Array(Buffer.from(readPublic(t, h).name, 'hex'));
      };
      const cp = createHash('sha256').update(be.u32(code));
      for (const h of handles) cp.update(name(h));
      const cpHash = cp.update(params).digest();
      const mac = createHmac('sha256', new Uint8Array(0)).update(cpHash).update(nonceCaller).update(nonceTPM).update(be.u8(0)).digest();
      let area = cat(be.u32(session), be.b2(nonceCaller), be.u8(0), be.b2(new Uint8Array(mac)));
      for (let i = 1; i < handles.length; i++) area = cat(area, be.u32(TPM_RS_PW), be.u16(0), be.u8(0), be.u16(0));
      const body = cat(...handles.map(be.u32), be.u32(area.length), area, params);
      const rc = t.send(cat(be.u16(TPM_ST.SESSIONS), be.u32(10 + body.length), be.u32(code), body)).rc;
      // A failed command leaves its session loaded (only a successful one ends it).
      if (rc !== 0) t.call(TPM_CC.FlushContext, { params: be.u32(session) });
      return rc;
    };
    expect(withPolicy(TPM_CC.NV_ChangeAuth, [IDX], be.b2('new'))).toBe(0);
    expect(read(t, 1, 0, IDX, 'old').rc).toBe(0x98e);
    expect(read(t, 1, 0, IDX, 'new').rc).toBe(0x14a); // authorized; not written yet
    expect(withPolicy(TPM_CC.NV_ChangeAuth, [IDX], be.b2(new Uint8Array(33).fill(1)))).toBe(0x1d5); // SIZE+P1
    // A policy for another command does not authorize this one.
    expect(withPolicy(TPM_CC.NV_UndefineSpaceSpecial, [IDX, TPM_RH.PLATFORM], new Uint8Array(0))).toBe(0x99d); // POLICY_FAIL+S1
    // NV_UndefineSpaceSpecial refuses an index without POLICY_DELETE, then deletes the one with it.
    expect(withPolicy(TPM_CC.NV_UndefineSpaceSpecial, [NO_DELETE_IDX, TPM_RH.PLATFORM], new Uint8Array(0))).toBe(0x182);
    expect(withPolicy(TPM_CC.NV_UndefineSpaceSpecial, [PLAT_IDX, TPM_RH.PLATFORM], new Uint8Array(0))).toBe(0);
    expect(readPublic(t, PLAT_IDX).rc).toBe(0x18b);
  });

  test('a policy session cannot stand in for a read when POLICYREAD is clear, nor for an index without a policy', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.AUTHREAD | A.AUTHWRITE })).toBe(0);
    const s = t.call(TPM_CC.StartAuthSession, {
      handles: [TPM_RH.NULL, TPM_RH.NULL],
      params: cat(be.b2(new Uint8Array(16)), be.u16(0), be.u8(1), be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.SHA256)),
    });
    const session = new DataView(s.body.buffer, s.body.byteOffset).getUint32(0);
    const area = cat(be.u32(session), be.b2(new Uint8Array(16)), be.u8(0), be.u16(0));
    const body = cat(be.u32(IDX), be.u32(IDX), be.u32(area.length), area, be.u16(1), be.u16(0));
    expect(t.send(cat(be.u16(TPM_ST.SESSIONS), be.u32(10 + body.length), be.u32(TPM_CC.NV_Read), body)).rc).toBe(0x12f);
  });

  test('NV_UndefineSpace: the owner may not delete a platform index; the platform may', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: A.PPREAD | A.PPWRITE | A.PLATFORMCREATE, hierarchy: TPM_RH.PLATFORM })).toBe(0);
    expect(simple(t, TPM_CC.NV_UndefineSpace, TPM_RH.OWNER)).toBe(0x149);
    expect(simple(t, TPM_CC.NV_UndefineSpace, TPM_RH.PLATFORM)).toBe(0);
    expect(readPublic(t).rc).toBe(0x18b);
  });
});

describe('persistence', () => {
  test('a command that arrives in a Node Buffer (as from a socket) is stored as plain bytes that load again', () => {
    const t = createTestTpm();
    const bytes = buildCommand(TPM_CC.NV_DefineSpace, {
      handles: [TPM_RH.OWNER],
      passwords: [''],
      params: cat(be.b2('pw'), be.b2(nvPublic({ attributes: OWNER_RW | A.AUTHREAD, size: 4 }))),
    });
    expect(t.send(Buffer.from(bytes)).rc).toBe(0);
    const u = restart(t);
    expect(read(u, 4, 0, IDX, 'pw').rc).toBe(0x14a);
    expect(read(u, 4, 0, IDX, 'wrong').rc).toBe(0x98e);
  });

  test('indices and their data come back from the permanent state; a version-1 blob loads with none', () => {
    const t = createTestTpm();
    expect(define(t, { attributes: OWNER_RW | A.AUTHREAD, auth: 'pw', size: 4 })).toBe(0);
    expect(write(t, 'abcd')).toBe(0);
    const u = restart(t);
    expect(read(u, 4, 0, IDX, 'pw').data).toBe('61626364');
    expect(readPublic(u).name).toBe(readPublic(t).name);
    // The same state written as version 1 (before NV existed): header version 1, no nv field.
    const body: Partial<PersistentState> = deserializePersistent(t.engine.permanentBlob());
    delete body.nv;
    delete body.nvMaxCounter;
    const v1 = serializeState('permanent', 1, 1, body);
    const old = Engine.restore(v1, t.env);
    expect(old.tpm.persistent.nv).toEqual([]);
  });
});
