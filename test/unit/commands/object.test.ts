/**
 * Part 3 §24.1 CreatePrimary, §12.4 ReadPublic, §28 ContextSave/ContextLoad: primary objects
 * derived from the hierarchy seeds, checked by an independent curve implementation and by
 * recomputing the Name, creation hash and ticket in the test.
 */
import { createHash, createHmac } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { decode, encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC, TPMS_CREATION_DATA, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { Engine } from '../../../src/tpm/engine.js';
import { be, buildCommand, cat, createTestTpm, hex, parseResponse, unhex, TestTpm } from '../../helpers/engine.js';

const vectors = JSON.parse(readFileSync(new URL('../../vectors/public-areas.json', import.meta.url), 'utf8')) as {
  vectors: { label: string; tpm2bPublic: string }[];
};
/** swtpm's P-256 storage key, with its unique point emptied: a template as tpm2-tools sends it. */
function eccTemplate(): Uint8Array {
  const pub = decode(TPM2B_PUBLIC, unhex(vectors.vectors[0]!.tpm2bPublic));
  return encode(TPM2B_PUBLIC, { ...pub, unique: { x: new Uint8Array(0), y: new Uint8Array(0) } });
}

interface Created {
  rc: number;
  handle: number;
  outPublic: TPMT_PUBLIC;
  creationData: Uint8Array;
  creationHash: Uint8Array;
  ticket: { tag: number; hierarchy: number; digest: Uint8Array };
  name: Uint8Array;
}

function createPrimary(t: TestTpm, hierarchy: number, template: Uint8Array, opts: { userAuth?: Uint8Array; outsideInfo?: Uint8Array; pcrs?: Uint8Array } = {}) {
  const sensitive = cat(be.b2(opts.userAuth ?? new Uint8Array(0)), be.b2(new Uint8Array(0)));
  const params = cat(be.b2(sensitive), template, be.b2(opts.outsideInfo ?? new Uint8Array(0)), opts.pcrs ?? be.u32(0));
  const r = t.call(TPM_CC.CreatePrimary, { handles: [hierarchy], passwords: [''], params });
  if (r.rc !== 0) return { rc: r.rc } as Created;
  const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
  const rd = new Reader(r.params(1));
  const outPublic = TPM2B_PUBLIC.read(rd);
  const cdSize = rd.u16();
  const creationData = rd.bytes(cdSize).slice();
  const creationHash = rd.bytes(rd.u16()).slice();
  const ticket = { tag: rd.u16(), hierarchy: rd.u32(), digest: rd.bytes(rd.u16()).slice() };
  const name = rd.bytes(rd.u16()).slice();
  return { rc: 0, handle, outPublic, creationData, creationHash, ticket, name } as Created;
}

const sha256 = (...p: Uint8Array[]) => {
  const h = createHash('sha256');
  p.forEach((x) => h.update(x));
  return new Uint8Array(h.digest());
};

describe('CreatePrimary', () => {
  test('an ECC P-256 storage key: a point on the curve, Name, creation data and ticket as the spec defines', () => {
    const t = createTestTpm();
    const c = createPrimary(t, TPM_RH.OWNER, eccTemplate(), { outsideInfo: unhex('abcd') });
    expect(c.rc).toBe(0);
    expect(c.handle).toBe(0x80000000);
    const { x, y } = c.outPublic.unique as { x: Uint8Array; y: Uint8Array };
    // An independent implementation accepts the point (it validates it lies on P-256).
    expect(() => p256.Point.fromBytes(cat(new Uint8Array([4]), x, y))).not.toThrow();
    // Name = nameAlg || SHA-256(TPMT_PUBLIC).
    const tpmt = encode(TPM2B_PUBLIC, c.outPublic).subarray(2);
    expect(hex(c.name)).toBe('000b' + hex(sha256(tpmt)));
    // creationHash = SHA-256(TPMS_CREATION_DATA); the parent of a primary is its hierarchy.
    expect(hex(c.creationHash)).toBe(hex(sha256(c.creationData)));
    const cd = decode(TPMS_CREATION_DATA, c.creationData);
    expect(cd.parentNameAlg).toBe(TPM_ALG.NULL);
    expect(hex(cd.parentName)).toBe('40000001');
    expect(hex(cd.outsideInfo)).toBe('abcd');
    expect(cd.locality).toBe(1);
    // The creation ticket: HMAC-SHA-512 under the owner proof over TPM_ST_CREATION || name || creationHash.
    const proof = t.engine.tpm.persistent.shProof;
    const expected = createHmac('sha512', proof).update(unhex('8021')).update(c.name).update(c.creationHash).digest('hex');
    expect(c.ticket).toEqual({ tag: 0x8021, hierarchy: TPM_RH.OWNER, digest: unhex(expected) });
  });

  test('deterministic: same seed and template give the same key; another hierarchy another key', () => {
    const t = createTestTpm();
    const a = createPrimary(t, TPM_RH.OWNER, eccTemplate());
    const b = createPrimary(t, TPM_RH.OWNER, eccTemplate());
    const e = createPrimary(t, TPM_RH.ENDORSEMENT, eccTemplate());
    expect(hex(a.name)).toBe(hex(b.name));
    expect(hex(e.name)).not.toBe(hex(a.name));
    // A TPM restored from the same permanent state derives the same key.
    const other = Engine.restore(t.engine.permanentBlob(), t.env);
    other.init();
    other.execute(buildCommand(TPM_CC.Startup, { params: be.u16(0) }), 0);
    const u: TestTpm = { ...t, engine: other, send: (bytes, l = 0) => parseResponse(other.execute(bytes, l)), call: (code, o = {}) => parseResponse(other.execute(buildCommand(code, o), o.locality ?? 0)) };
    expect(hex(createPrimary(u, TPM_RH.OWNER, eccTemplate()).name)).toBe(hex(a.name));
  });

  test('the NULL hierarchy gets a new seed at every TPM Reset', () => {
    const t = createTestTpm();
    const before = createPrimary(t, TPM_RH.NULL, eccTemplate()).name;
    t.call(TPM_CC.FlushContext, { params: be.u32(0x80000000) });
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(hex(createPrimary(t, TPM_RH.NULL, eccTemplate()).name)).not.toBe(hex(before));
  });

  test('errors: template faults name P2, a long userAuth P1, a fourth object OBJECT_MEMORY', () => {
    const t = createTestTpm();
    const template = eccTemplate();
    const noName = template.slice();
    noName[4] = 0x00;
    noName[5] = 0x10; // nameAlg NULL
    expect(createPrimary(t, TPM_RH.OWNER, noName).rc).toBe(0x2c3);
    const noOrigin = template.slice();
    noOrigin[9] = noOrigin[9]! & ~0x20; // sensitiveDataOrigin clear
    expect(createPrimary(t, TPM_RH.OWNER, noOrigin).rc).toBe(0x2c2);
    expect(createPrimary(t, TPM_RH.OWNER, template, { userAuth: new Uint8Array(33).fill(1) }).rc).toBe(0x1d5);
    for (let i = 0; i < 3; i++) expect(createPrimary(t, TPM_RH.OWNER, template).rc).toBe(0);
    expect(createPrimary(t, TPM_RH.OWNER, template).rc).toBe(TPM_RC.OBJECT_MEMORY);
  });
});

describe('ReadPublic and contexts', () => {
  test('ReadPublic returns the public area and Name; a sequence has none', () => {
    const t = createTestTpm();
    const c = createPrimary(t, TPM_RH.OWNER, eccTemplate());
    const r = t.call(TPM_CC.ReadPublic, { handles: [c.handle] });
    expect(r.rc).toBe(0);
    const rd = new Reader(r.body);
    expect(encode(TPM2B_PUBLIC, TPM2B_PUBLIC.read(rd))).toEqual(encode(TPM2B_PUBLIC, c.outPublic));
    expect(hex(rd.bytes(rd.u16()))).toBe(hex(c.name));
    const seq = t.call(TPM_CC.HashSequenceStart, { params: cat(be.b2(''), be.u16(TPM_ALG.SHA256)) });
    const seqHandle = new DataView(seq.body.buffer, seq.body.byteOffset).getUint32(0);
    expect(t.call(TPM_CC.ReadPublic, { handles: [seqHandle] }).rc).toBe(TPM_RC.SEQUENCE);
    expect(t.call(TPM_CC.ReadPublic, { handles: [0x80000002] }).rc).toBe(0x910);
    expect(t.call(TPM_CC.ReadPublic, { handles: [0x81000001] }).rc).toBe(0x18b);
  });

  test('ContextSave then ContextLoad gives the same object; tampering and a TPM Reset are TPM_RC_INTEGRITY', () => {
    const t = createTestTpm();
    const c = createPrimary(t, TPM_RH.OWNER, eccTemplate());
    const saved = t.call(TPM_CC.ContextSave, { handles: [c.handle] });
    expect(saved.rc).toBe(0);
    const context = saved.body.slice();
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(c.handle) }).rc).toBe(0);
    const loaded = t.call(TPM_CC.ContextLoad, { params: context });
    expect(loaded.rc).toBe(0);
    const h = new DataView(loaded.body.buffer, loaded.body.byteOffset).getUint32(0);
    const r = t.call(TPM_CC.ReadPublic, { handles: [h] });
    expect(hex(r.body.subarray(2 + r.body[1]!, 2 + r.body[1]! + 2 + 34)).slice(4)).toBe(hex(c.name));
    const tampered = context.slice();
    tampered[tampered.length - 3]! ^= 1;
    expect(t.call(TPM_CC.ContextLoad, { params: tampered }).rc).toBe(0x1df);
    // After a TPM Reset (no orderly shutdown) the saved context is worthless.
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(t.call(TPM_CC.ContextLoad, { params: context }).rc).toBe(0x1df);
  });

  test('a hash sequence cannot be saved (its running digest cannot be exported)', () => {
    const t = createTestTpm();
    const seq = t.call(TPM_CC.HashSequenceStart, { params: cat(be.b2(''), be.u16(TPM_ALG.SHA256)) });
    const seqHandle = new DataView(seq.body.buffer, seq.body.byteOffset).getUint32(0);
    expect(t.call(TPM_CC.ContextSave, { handles: [seqHandle] }).rc).toBe(0x18a);
  });
});
