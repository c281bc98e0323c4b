/**
 * Values the engine derives once and keeps (a loaded parent's integrity key, cpHash and rpHash
 * per hash algorithm within a command) must follow what they are derived from: another parent,
 * a parent flushed and loaded again, a new authValue, a Name after EvictControl, two sessions
 * with different hash algorithms in one command. Every HMAC is recomputed in the test, the way
 * a client does (session-client.ts), and every refusal has its exact code.
 */
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC, TPMA_OBJECT as A, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import { callWithSessions, digest, mac, startSession } from '../../helpers/session-client.js';

const FIXED = A.fixedTPM | A.fixedParent | A.userWithAuth;
const AES128 = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const NULL_SCHEME = { scheme: TPM_ALG.NULL, details: null };
const INTEGRITY = 0x1df; // TPM_RC_INTEGRITY + P1
const AUTH_FAIL_S1 = 0x98e;
const BAD_AUTH_S1 = 0x9a2;
const CONTINUE = 0x01;
const AUDIT = 0x80;

/** An ECC P-256 restricted decryption key: a storage parent. `unique` makes another seed and key. */
function storageTemplate(unique = ''): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: FIXED | A.sensitiveDataOrigin | A.restricted | A.decrypt | A.noDA,
    authPolicy: new Uint8Array(0),
    parameters: { symmetric: AES128, scheme: NULL_SCHEME, curveID: 0x0003, kdf: NULL_SCHEME },
    unique: { x: new TextEncoder().encode(unique), y: new Uint8Array(0) },
  } as TPMT_PUBLIC;
}

/** A sealed data object; `attributes` adds noDA where wanted. */
function sealTemplate(attributes = 0): TPMT_PUBLIC {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: FIXED | attributes,
    authPolicy: new Uint8Array(0),
    parameters: { scheme: NULL_SCHEME },
    unique: new Uint8Array(0),
  } as TPMT_PUBLIC;
}

const handleOf = (body: Uint8Array) => new DataView(body.buffer, body.byteOffset).getUint32(0);
const sensitiveCreate = (auth: string, data: Uint8Array) => be.b2(cat(be.b2(auth), be.b2(data)));

function primary(t: TestTpm, template: TPMT_PUBLIC): number {
  const r = t.call(TPM_CC.CreatePrimary, {
    handles: [TPM_RH.OWNER],
    passwords: [''],
    params: cat(sensitiveCreate('', new Uint8Array(0)), encode(TPM2B_PUBLIC, template), be.b2(''), be.u32(0)),
  });
  expect(r.rc).toBe(0);
  return handleOf(r.body);
}

interface Blob {
  private: Uint8Array;
  publicBytes: Uint8Array;
}

function create(t: TestTpm, parent: number, template: TPMT_PUBLIC, auth = '', data = new Uint8Array(0)): Blob {
  const r = t.call(TPM_CC.Create, {
    handles: [parent],
    passwords: [''],
    params: cat(sensitiveCreate(auth, data), encode(TPM2B_PUBLIC, template), be.b2(''), be.u32(0)),
  });
  expect(r.rc).toBe(0);
  const rd = new Reader(r.params());
  const priv = rd.bytes(rd.u16()).slice();
  const at = rd.pos;
  TPM2B_PUBLIC.read(rd);
  return { private: priv, publicBytes: r.params().slice(at, rd.pos) };
}

function load(t: TestTpm, parent: number, b: Blob): { rc: number; handle: number; name: Uint8Array } {
  const r = t.call(TPM_CC.Load, { handles: [parent], passwords: [''], params: cat(be.b2(b.private), b.publicBytes) });
  if (r.rc !== 0) return { rc: r.rc, handle: 0, name: new Uint8Array(0) };
  const rd = new Reader(r.params(1));
  return { rc: 0, handle: handleOf(r.body), name: rd.bytes(rd.u16()).slice() };
}

const flush = (t: TestTpm, handle: number) => expect(t.call(TPM_CC.FlushContext, { params: be.u32(handle) }).rc).toBe(0);

describe("a loaded parent's integrity key", () => {
  test('each parent opens only its own children, after both have wrapped and opened blobs', () => {
    const t = createTestTpm();
    const a = primary(t, storageTemplate('a'));
    const b = primary(t, storageTemplate('b'));
    const underA = create(t, a, sealTemplate(), '', new Uint8Array([1]));
    const underB = create(t, b, sealTemplate(), '', new Uint8Array([2]));
    // Three object slots: each child is flushed after its parent has opened it.
    const la = load(t, a, underA);
    expect(la.rc).toBe(0);
    flush(t, la.handle);
    const lb = load(t, b, underB);
    expect(lb.rc).toBe(0);
    flush(t, lb.handle);
    expect(load(t, b, underA).rc).toBe(INTEGRITY);
    expect(load(t, a, underB).rc).toBe(INTEGRITY);
    expect(t.engine.tpm.objects.count).toBe(2);
    const again = load(t, a, underA);
    expect(again.rc).toBe(0);
    expect(hex(t.call(TPM_CC.Unseal, { handles: [again.handle], passwords: [''] }).params())).toBe('000101');
  });

  test('a parent flushed and loaded again, and its persistent copy, open the children it wrapped', () => {
    const t = createTestTpm();
    // An ordinary storage key as the parent: its seed comes from the RNG and travels in its private.
    const root = primary(t, storageTemplate());
    const parentBlob = create(t, root, storageTemplate());
    const first = load(t, root, parentBlob);
    const child = create(t, first.handle, sealTemplate(), '', new Uint8Array([9, 9]));
    flush(t, first.handle);
    const otherBlob = create(t, root, storageTemplate());
    const other = load(t, root, otherBlob);
    // Another storage key (another seed) that has wrapped a child of its own: not this child's parent.
    create(t, other.handle, sealTemplate(), '', new Uint8Array([1]));
    expect(load(t, other.handle, child).rc).toBe(INTEGRITY);
    flush(t, other.handle);
    const second = load(t, root, parentBlob);
    expect(second.rc).toBe(0);
    const c = load(t, second.handle, child);
    expect(c.rc).toBe(0);
    flush(t, c.handle);
    // EvictControl: the persistent copy is another object with the same seed.
    const persistent = 0x81000010;
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, second.handle], passwords: [''], params: be.u32(persistent) }).rc).toBe(0);
    flush(t, second.handle);
    const p = load(t, persistent, child);
    expect(p.rc).toBe(0);
    expect(hex(t.call(TPM_CC.Unseal, { handles: [p.handle], passwords: [''] }).params())).toBe('00020909');
    // A new storage key made persistent at the same handle: the old child no longer opens.
    flush(t, p.handle);
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, persistent], passwords: [''], params: be.u32(persistent) }).rc).toBe(0);
    const replacement = load(t, root, create(t, root, storageTemplate()));
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, replacement.handle], passwords: [''], params: be.u32(persistent) }).rc).toBe(0);
    expect(load(t, persistent, child).rc).toBe(INTEGRITY);
  });
});

describe('the children a loaded parent has opened (remembered for the next Load of the same blob)', () => {
  const unseal = (t: TestTpm, handle: number, auth = '') => t.call(TPM_CC.Unseal, { handles: [handle], passwords: [auth] });

  test('a blob opened once still fails with a changed byte, another public area or another parent', () => {
    const t = createTestTpm();
    const a = primary(t, storageTemplate('a'));
    const b = primary(t, storageTemplate('b'));
    const x = create(t, a, sealTemplate(), '', new Uint8Array([7]));
    const y = create(t, a, sealTemplate(A.noDA), '', new Uint8Array([8]));
    create(t, b, sealTemplate(), '', new Uint8Array([2])); // b has wrapped a child of its own
    const first = load(t, a, x);
    expect(first.rc).toBe(0);
    flush(t, first.handle);
    // Every 7th byte from the integrity digest on (bytes 0-1 are its size, 34-35 the IV's).
    for (let i = 2; i < x.private.length; i += 7) {
      const changed = x.private.slice();
      changed[i]! ^= 0x01;
      expect(load(t, a, { ...x, private: changed }).rc, `byte ${i}`).toBe(INTEGRITY);
    }
    // x's private with y's public area: another Name.
    expect(load(t, a, { private: x.private, publicBytes: y.publicBytes }).rc).toBe(INTEGRITY);
    expect(load(t, b, x).rc).toBe(INTEGRITY);
    const again = load(t, a, x);
    expect(again.rc).toBe(0);
    expect(hex(again.name)).toBe(hex(first.name));
    expect(hex(unseal(t, again.handle).params())).toBe('000107');
  });

  test('two objects loaded from one blob keep their own authValues; an older child opens after five newer ones', () => {
    const t = createTestTpm();
    const a = primary(t, storageTemplate());
    const x = create(t, a, sealTemplate(A.noDA), 'pw', new Uint8Array([1, 2]));
    const one = load(t, a, x);
    const two = load(t, a, x);
    expect([one.rc, two.rc]).toEqual([0, 0]);
    // ObjectChangeAuth returns a new private and leaves the loaded object as it was.
    const changed = t.call(TPM_CC.ObjectChangeAuth, { handles: [one.handle, a], passwords: ['pw'], params: be.b2('new') });
    expect(changed.rc).toBe(0);
    expect(unseal(t, one.handle, 'new').rc).not.toBe(0);
    expect(hex(unseal(t, one.handle, 'pw').params())).toBe('00020102');
    expect(hex(unseal(t, two.handle, 'pw').params())).toBe('00020102');
    flush(t, one.handle);
    flush(t, two.handle);
    for (let i = 0; i < 5; i++) {
      const other = load(t, a, create(t, a, sealTemplate(A.noDA), '', new Uint8Array([i])));
      expect(other.rc).toBe(0);
      expect(hex(unseal(t, other.handle).params())).toBe(`0001${hex(new Uint8Array([i]))}`);
      flush(t, other.handle);
    }
    const later = load(t, a, x);
    expect(later.rc).toBe(0);
    expect(hex(unseal(t, later.handle, 'pw').params())).toBe('00020102');
  });
});

describe('HMAC sessions and what they authorize', () => {
  test('after ObjectChangeAuth and a new Load, the session key takes the new authValue (and not the old one)', () => {
    const t = createTestTpm();
    const root = primary(t, storageTemplate());
    const blob = create(t, root, sealTemplate(), 'old', new Uint8Array([5]));
    const loaded = load(t, root, blob);
    const s = startSession(t, { bind: TPM_RH.ENDORSEMENT });
    // The Name is the same for the reloaded object: the public area did not change.
    const unseal = (handle: number, auth: string) =>
      callWithSessions(t, { code: TPM_CC.Unseal, handles: [handle], names: [loaded.name] }, [
        { session: s, attrs: CONTINUE, authValue: new TextEncoder().encode(auth) },
      ]);
    const before = unseal(loaded.handle, 'old');
    expect(before.r.rc).toBe(0);
    expect(before.hmacOk).toBe(true);
    const changed = t.call(TPM_CC.ObjectChangeAuth, { handles: [loaded.handle, root], passwords: ['old'], params: be.b2('new') });
    expect(changed.rc).toBe(0);
    // The loaded object keeps its authValue; the new private has the new one.
    expect(unseal(loaded.handle, 'old').r.rc).toBe(0);
    flush(t, loaded.handle);
    const reloaded = load(t, root, { private: changed.params().slice(2), publicBytes: blob.publicBytes });
    expect(reloaded.rc).toBe(0);
    // No noDA: a wrong authValue counts against DA (TPM_RC_AUTH_FAIL).
    expect(unseal(reloaded.handle, 'old').r.rc).toBe(AUTH_FAIL_S1);
    const after = unseal(reloaded.handle, 'new');
    expect(after.r.rc).toBe(0);
    expect(after.hmacOk).toBe(true);
    expect(hex(after.params)).toBe('000105');
  });

  test('HierarchyChangeAuth answers with an HMAC under the new authValue, and the next command uses it', () => {
    const t = createTestTpm();
    const s = startSession(t, { bind: TPM_RH.ENDORSEMENT });
    const newAuth = new TextEncoder().encode('owner-secret');
    // callWithSessions' nonceCaller for the first session: 1, 2, ..., 16.
    const nonceCaller = new Uint8Array(16).map((_, i) => i + 1);
    const r = callWithSessions(t, { code: TPM_CC.HierarchyChangeAuth, handles: [TPM_RH.OWNER], params: be.b2(newAuth) }, [
      { session: s, attrs: CONTINUE, authValue: new Uint8Array(0) },
    ]);
    expect(r.r.rc).toBe(0);
    // The client's check under the old (empty) authValue fails; under the new one it holds.
    expect(r.hmacOk).toBe(false);
    const rest = r.r.body.subarray(4 + r.r.params().length);
    const nonceTPM = rest.subarray(2, 2 + ((rest[0]! << 8) | rest[1]!));
    const attrs = rest[2 + nonceTPM.length]!;
    const got = rest.subarray(5 + nonceTPM.length);
    const rpHash = digest(TPM_ALG.SHA256, be.u32(0), be.u32(TPM_CC.HierarchyChangeAuth));
    expect(hex(got)).toBe(hex(mac(TPM_ALG.SHA256, cat(s.sessionKey, newAuth), rpHash, nonceTPM, nonceCaller, be.u8(attrs))));
    // An owner-authorized command now: the old authValue is a bad authorization, the new one works.
    const clear = (auth: Uint8Array) =>
      callWithSessions(t, { code: TPM_CC.HierarchyChangeAuth, handles: [TPM_RH.OWNER], params: be.b2('') }, [{ session: s, attrs: CONTINUE, authValue: auth }]);
    expect(clear(new Uint8Array(0)).r.rc).toBe(BAD_AUTH_S1);
    const ok = clear(newAuth);
    expect(ok.r.rc).toBe(0);
  });

  test('a persistent object is named by its Name in cpHash, as it was while transient', () => {
    const t = createTestTpm();
    const root = primary(t, storageTemplate());
    const loaded = load(t, root, create(t, root, sealTemplate(A.noDA), 'pw', new Uint8Array([3])));
    const s = startSession(t, { bind: TPM_RH.ENDORSEMENT });
    const auth = new TextEncoder().encode('pw');
    const unseal = (handle: number, name: Uint8Array) =>
      callWithSessions(t, { code: TPM_CC.Unseal, handles: [handle], names: [name] }, [{ session: s, attrs: CONTINUE, authValue: auth }]);
    expect(unseal(loaded.handle, loaded.name).r.rc).toBe(0);
    const persistent = 0x81000020;
    expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, loaded.handle], passwords: [''], params: be.u32(persistent) }).rc).toBe(0);
    const r = unseal(persistent, loaded.name);
    expect(r.r.rc).toBe(0);
    expect(r.hmacOk).toBe(true);
    // The handle is not the Name of an object: the HMAC does not verify (noDA: TPM_RC_BAD_AUTH).
    expect(unseal(persistent, be.u32(persistent)).r.rc).toBe(BAD_AUTH_S1);
  });

  test('two sessions with different hash algorithms in one command: each HMAC over its own cpHash and rpHash', () => {
    const t = createTestTpm();
    const sha256 = startSession(t, { bind: TPM_RH.ENDORSEMENT });
    const sha1 = startSession(t, { bind: TPM_RH.ENDORSEMENT, hashAlg: TPM_ALG.SHA1 });
    const params = cat(be.u32(1), be.u16(TPM_ALG.SHA256), new Uint8Array(32).fill(0xab));
    for (const [first, second] of [[sha256, sha1], [sha1, sha256]] as const) {
      const r = callWithSessions(t, { code: TPM_CC.PCR_Extend, handles: [16], params }, [
        { session: first, attrs: CONTINUE, authValue: new Uint8Array(0) },
        { session: second, attrs: CONTINUE | AUDIT },
      ]);
      expect(r.r.rc).toBe(0);
      expect(r.hmacOk).toBe(true);
    }
    // The audit digest of the second session (SHA-256 in the last command) extends with its own hashes.
    const cp = digest(TPM_ALG.SHA256, be.u32(TPM_CC.PCR_Extend), be.u32(16), params);
    const rp = digest(TPM_ALG.SHA256, be.u32(0), be.u32(TPM_CC.PCR_Extend));
    const expected = digest(TPM_ALG.SHA256, new Uint8Array(32), cp, rp);
    const audit = t.engine.tpm.sessions.get(sha256.handle)!.auditDigest!;
    expect(hex(audit)).toBe(hex(expected));
  });
});
