/**
 * Part 3 §28.5 EvictControl: persistent objects across a restore of the permanent state, used
 * by handle wherever an object is taken, listed by GetCapability, and refused with the
 * reference's codes. A permanent state from before persistent objects still loads.
 */
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC, TPMA_OBJECT as A, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { deserializePersistent, manufacture, serializePersistent } from '../../../src/tpm/state/persistent.js';
import { serializeState } from '../../../src/tpm/state/serialize.js';
import { be, cat, createTestTpm, hex, restoreTestTpm, type TestTpm } from '../../helpers/engine.js';
import { createPrimaryParams, ECC_STORAGE_NODA, evict, handleOf, property, sensitiveCreate } from '../../helpers/templates.js';

const seal: TPMT_PUBLIC = {
  type: TPM_ALG.KEYEDHASH,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: A.fixedTPM | A.fixedParent | A.userWithAuth,
  authPolicy: new Uint8Array(0),
  parameters: { scheme: { scheme: TPM_ALG.NULL, details: null } },
  unique: new Uint8Array(0),
} as TPMT_PUBLIC;

const sensitive = (data?: Uint8Array) => sensitiveCreate('', data);

function primary(t: TestTpm, hierarchy: number = TPM_RH.OWNER): number {
  const r = t.call(TPM_CC.CreatePrimary, { handles: [hierarchy], passwords: [''], params: createPrimaryParams(ECC_STORAGE_NODA) });
  expect(r.rc).toBe(0);
  return handleOf(r.body);
}
function persistentHandles(t: TestTpm): number[] {
  const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(1), be.u32(0x81000000), be.u32(20)) });
  const rd = new Reader(r.body.subarray(1 + 4));
  return Array.from({ length: rd.u32() }, () => rd.u32());
}

function restart(t: TestTpm): TestTpm {
  const u = restoreTestTpm(t);
  expect(u.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
  return u;
}

describe('EvictControl', () => {
  test('a persistent storage key survives a restart, parents a Create/Load, and is removed again', () => {
    let t = createTestTpm();
    const p = primary(t);
    const name = hex(t.call(TPM_CC.ReadPublic, { handles: [p] }).body);
    expect(evict(t, TPM_RH.OWNER, p, 0x81000001)).toBe(0);
    expect(t.engine.takePermanentChanges()).not.toBeNull();
    expect(persistentHandles(t)).toEqual([0x81000001]);
    expect(property(t, 0x208)).toBe(1);
    expect(property(t, 0x209)).toBe(64);
    t = restart(t);
    expect(hex(t.call(TPM_CC.ReadPublic, { handles: [0x81000001] }).body)).toBe(name);
    // Create and Load under the persistent handle; Unseal the result.
    const c = t.call(TPM_CC.Create, { handles: [0x81000001], passwords: [''], params: cat(sensitive(new Uint8Array([9])), encode(TPM2B_PUBLIC, seal), be.b2(''), be.u32(0)) });
    expect(c.rc).toBe(0);
    const rd = new Reader(c.params());
    const priv = rd.bytes(rd.u16()).slice();
    const from = rd.pos;
    TPM2B_PUBLIC.read(rd);
    const pub = c.params().slice(from, rd.pos);
    const l = t.call(TPM_CC.Load, { handles: [0x81000001], passwords: [''], params: cat(be.b2(priv), pub) });
    expect(l.rc).toBe(0);
    expect(hex(t.call(TPM_CC.Unseal, { handles: [handleOf(l.body)], passwords: [''] }).params())).toBe('000109');
    // A loaded object can be made persistent, then unsealed through its persistent handle.
    expect(evict(t, TPM_RH.OWNER, handleOf(l.body), 0x81000002)).toBe(0);
    expect(hex(t.call(TPM_CC.Unseal, { handles: [0x81000002], passwords: [''] }).params())).toBe('000109');
    // Removal names the persistent handle in both places.
    expect(evict(t, TPM_RH.OWNER, 0x81000002, 0x81000001)).toBe(0x28b);
    expect(evict(t, TPM_RH.OWNER, 0x81000002, 0x81000002)).toBe(0);
    expect(evict(t, TPM_RH.OWNER, 0x81000001, 0x81000001)).toBe(0);
    expect(persistentHandles(t)).toEqual([]);
    expect(t.call(TPM_CC.ReadPublic, { handles: [0x81000001] }).rc).toBe(0x18b);
  });

  test('the spec checks: taken handle, ranges, hierarchies, NULL-hierarchy objects, the NV limit', () => {
    const t = createTestTpm();
    const p = primary(t);
    expect(evict(t, TPM_RH.OWNER, p, 0x81000001)).toBe(0);
    expect(evict(t, TPM_RH.OWNER, p, 0x81000001)).toBe(TPM_RC.NV_DEFINED);
    expect(evict(t, TPM_RH.OWNER, p, 0x81800000)).toBe(0x1cd);
    expect(evict(t, TPM_RH.PLATFORM, p, 0x81800000)).toBe(0x285);
    expect(evict(t, TPM_RH.OWNER, p, 0x80000000)).toBe(0x1c4);
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.ENDORSEMENT, p], passwords: [''], params: be.u32(0x81000005) }).rc).toBe(0x184);
    const n = primary(t, TPM_RH.NULL);
    expect(evict(t, TPM_RH.OWNER, n, 0x81000003)).toBe(0x282);
    t.call(TPM_CC.FlushContext, { params: be.u32(n) });
    const pp = primary(t, TPM_RH.PLATFORM);
    expect(evict(t, TPM_RH.OWNER, pp, 0x81800001)).toBe(0x285);
    expect(evict(t, TPM_RH.PLATFORM, pp, 0x81000009)).toBe(0x1cd);
    expect(evict(t, TPM_RH.PLATFORM, pp, 0x81800001)).toBe(0);
    // platformAuth may remove an owner object.
    expect(evict(t, TPM_RH.PLATFORM, 0x81000001, 0x81000001)).toBe(0);
    for (let i = 0; i < 64; i++) expect(evict(t, TPM_RH.OWNER, p, 0x81000100 + i)).toBe(0);
    expect(property(t, 0x209)).toBe(0);
    expect(evict(t, TPM_RH.OWNER, p, 0x81000001)).toBe(TPM_RC.NV_SPACE);
  });

  test('an object below an stClear parent can no more be persistent than the parent', () => {
    const t = createTestTpm();
    const r = t.call(TPM_CC.CreatePrimary, {
      handles: [TPM_RH.OWNER],
      passwords: [''],
      params: cat(sensitive(), encode(TPM2B_PUBLIC, { ...ECC_STORAGE_NODA, objectAttributes: ECC_STORAGE_NODA.objectAttributes | A.stClear }), be.b2(''), be.u32(0)),
    });
    const p = handleOf(r.body);
    expect(evict(t, TPM_RH.OWNER, p, 0x81000001)).toBe(0x282);
    const c = t.call(TPM_CC.Create, { handles: [p], passwords: [''], params: cat(sensitive(new Uint8Array([9])), encode(TPM2B_PUBLIC, seal), be.b2(''), be.u32(0)) });
    const rd = new Reader(c.params());
    const priv = rd.bytes(rd.u16()).slice();
    const from = rd.pos;
    TPM2B_PUBLIC.read(rd);
    const l = t.call(TPM_CC.Load, { handles: [p], passwords: [''], params: cat(be.b2(priv), c.params().slice(from, rd.pos)) });
    expect(l.rc).toBe(0);
    expect(evict(t, TPM_RH.OWNER, handleOf(l.body), 0x81000001)).toBe(0x282);
  });

  test('a permanent state written before persistent objects existed loads with none', () => {
    const s = manufacture((n) => new Uint8Array(n).fill(1)) as unknown as Record<string, unknown>;
    delete s.objects;
    const old = serializeState('permanent', 1, 1, s);
    expect(deserializePersistent(old).objects.size).toBe(0);
  });
});
