/**
 * HMAC sessions (Part 1 §19.6, Part 3 §11.1): the test computes cpHash, rpHash, KDFa and the
 * HMACs itself with node:crypto, the way a client library does, and talks to the engine in bytes.
 */
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH, TPM_ST } from '../../../src/tpm/constants.js';
import { be, cat, createTestTpm, hex, TestTpm, parseResponse } from '../../helpers/engine.js';

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  parts.forEach((p) => h.update(p));
  return new Uint8Array(h.digest());
};
const hmac256 = (key: Uint8Array, ...parts: Uint8Array[]) => {
  const h = createHmac('sha256', key);
  parts.forEach((p) => h.update(p));
  return new Uint8Array(h.digest());
};
/** KDFa (Part 1 §11.4.10.2) for whole-byte outputs, written independently of the engine's. */
function kdfa(key: Uint8Array, label: string, u: Uint8Array, v: Uint8Array, bits: number): Uint8Array {
  const out: Uint8Array[] = [];
  for (let i = 1; out.length * 32 < bits / 8; i++) {
    out.push(hmac256(key, be.u32(i), new TextEncoder().encode(label + '\0'), u, v, be.u32(bits)));
  }
  return cat(...out).subarray(0, bits / 8);
}

interface Client {
  handle: number;
  nonceTPM: Uint8Array;
  sessionKey: Uint8Array;
}

function startSession(t: TestTpm, opts: { bind?: number; bindAuth?: Uint8Array; type?: number; symmetric?: Uint8Array } = {}): Client {
  const nonceCaller = new Uint8Array(32).fill(0x42);
  const r = t.call(TPM_CC.StartAuthSession, {
    handles: [TPM_RH.NULL, opts.bind ?? TPM_RH.NULL],
    params: cat(be.b2(nonceCaller), be.u16(0), be.u8(opts.type ?? 0), opts.symmetric ?? be.u16(TPM_ALG.NULL), be.u16(TPM_ALG.SHA256)),
  });
  expect(r.rc).toBe(0);
  const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
  const nonceTPM = r.body.slice(6, 6 + 32);
  const bindAuth = opts.bindAuth ?? new Uint8Array(0);
  const sessionKey = bindAuth.length ? kdfa(bindAuth, 'ATH', nonceTPM, nonceCaller, 256) : new Uint8Array(0);
  return { handle, nonceTPM, sessionKey };
}

/** Sends a command authorized by `client` for handle 0 and checks the response HMAC. */
function callWithSession(
  t: TestTpm,
  c: Client,
  code: number,
  handles: number[],
  names: Uint8Array[],
  authValue: Uint8Array,
  params: Uint8Array,
  opts: { attrs?: number; corrupt?: boolean; includeAuth?: boolean } = {},
) {
  const attrs = opts.attrs ?? 0x01;
  const nonceCaller = new Uint8Array(16).map((_, i) => i + 1);
  const cpHash = sha256(be.u32(code), ...names, params);
  const key = cat(c.sessionKey, opts.includeAuth === false ? new Uint8Array(0) : authValue);
  const mac = hmac256(key, cpHash, nonceCaller, c.nonceTPM, be.u8(attrs));
  if (opts.corrupt) mac[0]! ^= 1;
  const area = cat(be.u32(c.handle), be.b2(nonceCaller), be.u8(attrs), be.b2(mac));
  const body = cat(...handles.map(be.u32), be.u32(area.length), area, params);
  const bytes = cat(be.u16(TPM_ST.SESSIONS), be.u32(10 + body.length), be.u32(code), body);
  const r = t.send(bytes);
  if (r.rc === 0) {
    const rp = r.params();
    const after = r.body.subarray(4 + rp.length);
    const nonceLen = (after[0]! << 8) | after[1]!;
    const newNonce = after.slice(2, 2 + nonceLen);
    const rAttrs = after[2 + nonceLen]!;
    const rMac = after.subarray(2 + nonceLen + 3);
    const rpHash = sha256(be.u32(0), be.u32(code), rp);
    expect(hex(rMac)).toBe(hex(hmac256(key, rpHash, newNonce, nonceCaller, be.u8(rAttrs))));
    expect(hex(newNonce)).not.toBe(hex(c.nonceTPM));
    c.nonceTPM = newNonce;
  }
  return r;
}

const EXTEND = cat(be.u32(1), be.u16(TPM_ALG.SHA256), new Uint8Array(32).fill(9));
const pcrName = (n: number) => be.u32(n);

describe('StartAuthSession', () => {
  test('an unbound, unsalted HMAC session gets 0x02000000 and a nonce of the hash size', () => {
    const t = createTestTpm();
    const c = startSession(t);
    expect(c.handle).toBe(0x02000000);
    expect(c.nonceTPM.length).toBe(32);
    expect(startSession(t, { type: 1 }).handle).toBe(0x03000001);
  });

  test.each([
    ['a nonceCaller under 16 bytes', cat(be.b2(new Uint8Array(8)), be.u16(0), be.u8(0), be.u16(0x10), be.u16(0xb)), 0x1d5],
    ['a salt without a key', cat(be.b2(new Uint8Array(16)), be.b2(new Uint8Array(4)), be.u8(0), be.u16(0x10), be.u16(0xb)), 0x2c4],
    ['session type 2', cat(be.b2(new Uint8Array(16)), be.u16(0), be.u8(2), be.u16(0x10), be.u16(0xb)), 0x3c4],
    ['symmetric algorithm RSA', cat(be.b2(new Uint8Array(16)), be.u16(0), be.u8(0), be.u16(0x1), be.u16(0xb)), 0x4d6],
    ['AES with 192 bits', cat(be.b2(new Uint8Array(16)), be.u16(0), be.u8(0), be.u16(0x6), be.u16(192), be.u16(0x43), be.u16(0xb)), 0x4c4],
    ['authHash NULL', cat(be.b2(new Uint8Array(16)), be.u16(0), be.u8(0), be.u16(0x10), be.u16(0x10)), 0x5c3],
  ])('%s is refused', (_name, params, rc) => {
    const t = createTestTpm();
    expect(t.call(TPM_CC.StartAuthSession, { handles: [TPM_RH.NULL, TPM_RH.NULL], params }).rc).toBe(rc);
  });

  test('a fourth loaded session is TPM_RC_SESSION_MEMORY', () => {
    const t = createTestTpm();
    startSession(t);
    startSession(t);
    startSession(t);
    const r = t.call(TPM_CC.StartAuthSession, {
      handles: [TPM_RH.NULL, TPM_RH.NULL],
      params: cat(be.b2(new Uint8Array(16)), be.u16(0), be.u8(0), be.u16(0x10), be.u16(0xb)),
    });
    expect(r.rc).toBe(TPM_RC.SESSION_MEMORY);
  });
});

describe('HMAC authorization', () => {
  test('PCR_Extend through an unbound session: HMAC over cpHash verified, response HMAC and new nonce', () => {
    const t = createTestTpm();
    const c = startSession(t);
    expect(callWithSession(t, c, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0);
    // The session continues with the rolled nonce.
    expect(callWithSession(t, c, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0);
  });

  test('a wrong HMAC is TPM_RC_BAD_AUTH+S1 for a PCR and the nonce does not roll', () => {
    const t = createTestTpm();
    const c = startSession(t);
    expect(callWithSession(t, c, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND, { corrupt: true }).rc).toBe(0x9a2);
    expect(callWithSession(t, c, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0);
  });

  test('the HMAC covers the parameters: changing one after signing fails', () => {
    const t = createTestTpm();
    const c = startSession(t);
    const nonceCaller = new Uint8Array(16);
    const mac = hmac256(new Uint8Array(0), sha256(be.u32(TPM_CC.PCR_Extend), pcrName(16), EXTEND), nonceCaller, c.nonceTPM, be.u8(1));
    const tampered = EXTEND.slice();
    tampered[tampered.length - 1] ^= 1;
    const area = cat(be.u32(c.handle), be.b2(nonceCaller), be.u8(1), be.b2(mac));
    const body = cat(be.u32(16), be.u32(area.length), area, tampered);
    const r = t.send(cat(be.u16(TPM_ST.SESSIONS), be.u32(10 + body.length), be.u32(TPM_CC.PCR_Extend), body));
    expect(r.rc).toBe(0x9a2);
  });

  test('a sequence authorized by a session bound to it: the authValue is left out of the key', () => {
    const t = createTestTpm();
    const auth = new TextEncoder().encode('secret');
    const seq = t.call(TPM_CC.HashSequenceStart, { params: cat(be.b2(auth), be.u16(TPM_ALG.SHA256)) });
    const handle = new DataView(seq.body.buffer, seq.body.byteOffset).getUint32(0);
    const bound = startSession(t, { bind: handle, bindAuth: auth });
    // A sequence object's Name is the Empty Buffer.
    const r = callWithSession(t, bound, TPM_CC.SequenceUpdate, [handle], [new Uint8Array(0)], auth, be.b2('data'), { includeAuth: false });
    expect(r.rc).toBe(0);
    // The same session authorizing a PCR (another entity) includes that entity's (empty) authValue.
    expect(callWithSession(t, bound, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0);
  });

  test('an unbound session authorizing the sequence needs its authValue in the key', () => {
    const t = createTestTpm();
    const auth = new TextEncoder().encode('secret');
    const seq = t.call(TPM_CC.HashSequenceStart, { params: cat(be.b2(auth), be.u16(TPM_ALG.SHA256)) });
    const handle = new DataView(seq.body.buffer, seq.body.byteOffset).getUint32(0);
    const c = startSession(t);
    expect(callWithSession(t, c, TPM_CC.SequenceUpdate, [handle], [new Uint8Array(0)], auth, be.b2('x'), { includeAuth: false }).rc).toBe(0x9a2);
    expect(callWithSession(t, c, TPM_CC.SequenceUpdate, [handle], [new Uint8Array(0)], auth, be.b2('x')).rc).toBe(0);
  });

  test('continueSession clear: the session ends with the command', () => {
    const t = createTestTpm();
    const c = startSession(t);
    expect(callWithSession(t, c, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND, { attrs: 0 }).rc).toBe(0);
    expect(callWithSession(t, c, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0x918);
  });

  test('trial sessions cannot authorize; policy sessions fail against an empty authPolicy', () => {
    const t = createTestTpm();
    const trial = startSession(t, { type: 3 });
    expect(callWithSession(t, trial, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0x982);
    const policy = startSession(t, { type: 1 });
    // PCR 20 is in libtpms' PCR policy group, whose policy is empty; PCR 16 has no policy at all.
    expect(callWithSession(t, policy, TPM_CC.PCR_Extend, [20], [pcrName(20)], new Uint8Array(0), EXTEND).rc).toBe(0x99d);
    expect(callWithSession(t, policy, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0x12f);
  });

  test('a session without a symmetric algorithm cannot decrypt: TPM_RC_SYMMETRIC+S1', () => {
    const t = createTestTpm();
    const plain = startSession(t);
    expect(callWithSession(t, plain, TPM_CC.PCR_Event, [16], [pcrName(16)], new Uint8Array(0), be.b2('e'), { attrs: 0x21 }).rc).toBe(0x996);
  });
});

describe('FlushContext', () => {
  test('ends a session and unloads a sequence; a second flush is TPM_RC_HANDLE+P1', () => {
    const t = createTestTpm();
    const c = startSession(t);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(c.handle) }).rc).toBe(0);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(c.handle) }).rc).toBe(0x1cb);
    const seq = t.call(TPM_CC.HashSequenceStart, { params: cat(be.b2(''), be.u16(TPM_ALG.SHA256)) });
    const handle = new DataView(seq.body.buffer, seq.body.byteOffset).getUint32(0);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(handle) }).rc).toBe(0);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(handle) }).rc).toBe(0x1cb);
  });

  test('a PCR handle or an out-of-range session is TPM_RC_VALUE+P1; sessions are refused', () => {
    const t = createTestTpm();
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(3) }).rc).toBe(0x1c4);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(0x02000040) }).rc).toBe(0x1c4);
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(0x02000000), passwords: [''] }).rc).toBe(TPM_RC.AUTH_CONTEXT);
  });

  test('GetCapability lists loaded sessions and counts them', () => {
    const t = createTestTpm();
    startSession(t);
    startSession(t, { type: 1 });
    const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(1), be.u32(0x02000000), be.u32(10)) });
    expect(hex(r.body.subarray(1))).toBe('00000001' + '00000002' + '02000000' + '03000001');
    void parseResponse;
  });
});

describe('session contexts', () => {
  test('ContextSave takes the session out of memory; ContextLoad brings it back at its handle, once', () => {
    const t = createTestTpm();
    const c = startSession(t);
    const saved = t.call(TPM_CC.ContextSave, { handles: [c.handle] });
    expect(saved.rc).toBe(0);
    const context = saved.body.slice();
    // While saved it cannot authorize (not loaded) but still holds its handle.
    expect(callWithSession(t, c, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0x918);
    const list = t.call(TPM_CC.GetCapability, { params: cat(be.u32(1), be.u32(0x03000000), be.u32(10)) });
    expect(hex(list.body.subarray(1))).toBe('00000001' + '00000001' + '02000000');
    const loaded = t.call(TPM_CC.ContextLoad, { params: context });
    expect(loaded.rc).toBe(0);
    expect(new DataView(loaded.body.buffer, loaded.body.byteOffset).getUint32(0)).toBe(c.handle);
    expect(callWithSession(t, c, TPM_CC.PCR_Extend, [16], [pcrName(16)], new Uint8Array(0), EXTEND).rc).toBe(0);
    // The same context again: the session is loaded, not saved, so the copy is refused.
    expect(t.call(TPM_CC.ContextLoad, { params: context }).rc).toBe(0x1cb);
  });

  test('an older context of a session that was saved again is refused (no replay)', () => {
    const t = createTestTpm();
    const c = startSession(t);
    const first = t.call(TPM_CC.ContextSave, { handles: [c.handle] }).body.slice();
    expect(t.call(TPM_CC.ContextLoad, { params: first }).rc).toBe(0);
    const second = t.call(TPM_CC.ContextSave, { handles: [c.handle] }).body.slice();
    expect(t.call(TPM_CC.ContextLoad, { params: first }).rc).toBe(0x1cb);
    expect(t.call(TPM_CC.ContextLoad, { params: second }).rc).toBe(0);
  });

  test('a saved session can be flushed; a TPM Reset makes its context worthless', () => {
    const t = createTestTpm();
    const c = startSession(t);
    const context = t.call(TPM_CC.ContextSave, { handles: [c.handle] }).body.slice();
    expect(t.call(TPM_CC.FlushContext, { params: be.u32(c.handle) }).rc).toBe(0);
    expect(t.call(TPM_CC.ContextLoad, { params: context }).rc).toBe(0x1cb);
    const d = startSession(t);
    const ctx2 = t.call(TPM_CC.ContextSave, { handles: [d.handle] }).body.slice();
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(t.call(TPM_CC.ContextLoad, { params: ctx2 }).rc).toBe(0x1df);
  });
});
