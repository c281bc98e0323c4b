/**
 * Audit sessions (Part 1 §19.6.13–14) and command audit (Part 1 §33, Part 3 §21.2): the digests
 * are recomputed here from cpHash and rpHash as a client computes them, and compared with what
 * the state API exposes for GetSessionAuditDigest/GetCommandAuditDigest.
 */
import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { commandAuditInfo, sessionAuditDigest } from '../../../src/tpm/state/audit.js';
import { PERSISTENT_VERSION } from '../../../src/tpm/state/persistent.js';
import { be, cat, createTestTpm, hex, restoreTestTpm, type TestTpm } from '../../helpers/engine.js';
import { callWithSessions, digest, startSession, type ClientSession } from '../../helpers/session-client.js';

const SHA256 = TPM_ALG.SHA256;
const H = (...p: Uint8Array[]) => digest(SHA256, ...p);
const H512 = (...p: Uint8Array[]) => {
  const h = createHash('sha512');
  p.forEach((x) => h.update(x));
  return new Uint8Array(h.digest());
};
const AUDIT = 0x80;
const EXCLUSIVE = 0x02;
const RESET = 0x04;
const CONTINUE = 0x01;

const auditDigestOf = (t: TestTpm, s: ClientSession) => sessionAuditDigest(t.engine.tpm.sessions.get(s.handle)!);

/** GetRandom(n) through `s` with `attrs`; returns the response, its parameters and the attributes answered. */
function getRandom(t: TestTpm, s: ClientSession, attrs: number, n = 8) {
  const res = callWithSessions(t, { code: TPM_CC.GetRandom, params: be.u16(n) }, [{ session: s, attrs }]);
  const r = res.r;
  if (r.rc !== 0) return { rc: r.rc, rp: new Uint8Array(0), attrs: 0, hmacOk: false };
  const rp = r.params().slice();
  const area = r.body.subarray(4 + rp.length);
  const nonceSize = (area[0]! << 8) | area[1]!;
  return { rc: 0, rp, attrs: area[2 + nonceSize]!, hmacOk: res.hmacOk };
}

const cpGetRandom = (n: number) => H(be.u32(TPM_CC.GetRandom), be.u16(n));
const rpOf = (code: number, rp: Uint8Array, hash = H) => hash(be.u32(0), be.u32(code), rp);

describe('audit sessions', () => {
  test('the session audit digest is H(digest || cpHash || rpHash), started from zeros; exclusivity is reported and enforced', () => {
    const t = createTestTpm();
    const s = startSession(t, { bind: TPM_RH.OWNER, bindAuth: new Uint8Array(0) });
    expect(auditDigestOf(t, s)).toBeUndefined();
    const a = getRandom(t, s, CONTINUE | AUDIT);
    expect(a.rc).toBe(0);
    expect(a.hmacOk).toBe(true);
    // The first audit makes the session exclusive.
    expect(a.attrs).toBe(CONTINUE | AUDIT | EXCLUSIVE);
    let d = H(new Uint8Array(32), cpGetRandom(8), rpOf(TPM_CC.GetRandom, a.rp));
    expect(hex(auditDigestOf(t, s)!)).toBe(hex(d));
    const b = getRandom(t, s, CONTINUE | AUDIT | EXCLUSIVE, 16);
    expect(b.rc).toBe(0);
    expect(b.attrs).toBe(CONTINUE | AUDIT | EXCLUSIVE);
    d = H(d, cpGetRandom(16), rpOf(TPM_CC.GetRandom, b.rp));
    expect(hex(auditDigestOf(t, s)!)).toBe(hex(d));
    // A command that may carry sessions runs without the audit session: exclusivity ends.
    expect(t.call(TPM_CC.GetRandom, { params: be.u16(4) }).rc).toBe(0);
    expect(getRandom(t, s, CONTINUE | AUDIT | EXCLUSIVE).rc).toBe(TPM_RC.EXCLUSIVE);
    const c = getRandom(t, s, CONTINUE | AUDIT, 4);
    expect(c.attrs).toBe(CONTINUE | AUDIT);
    d = H(d, cpGetRandom(4), rpOf(TPM_CC.GetRandom, c.rp));
    expect(hex(auditDigestOf(t, s)!)).toBe(hex(d));
    // auditReset starts the digest over and makes the session exclusive again.
    const e = getRandom(t, s, CONTINUE | AUDIT | RESET | EXCLUSIVE, 2);
    expect(e.rc).toBe(0);
    expect(e.attrs & EXCLUSIVE).toBe(EXCLUSIVE);
    expect(hex(auditDigestOf(t, s)!)).toBe(hex(H(new Uint8Array(32), cpGetRandom(2), rpOf(TPM_CC.GetRandom, e.rp))));
  });

  test('an audit session that also authorizes: the cpHash has the handle Names; the digest survives ContextSave/ContextLoad', () => {
    const t = createTestTpm();
    const s = startSession(t);
    const newAuth = be.b2('');
    const r = callWithSessions(t, { code: TPM_CC.HierarchyChangeAuth, handles: [TPM_RH.OWNER], params: newAuth }, [{ session: s, attrs: CONTINUE | AUDIT, authValue: new Uint8Array(0) }]);
    expect(r.r.rc).toBe(0);
    const d = H(new Uint8Array(32), H(be.u32(TPM_CC.HierarchyChangeAuth), be.u32(TPM_RH.OWNER), newAuth), rpOf(TPM_CC.HierarchyChangeAuth, new Uint8Array(0)));
    expect(hex(auditDigestOf(t, s)!)).toBe(hex(d));
    const saved = t.call(TPM_CC.ContextSave, { handles: [s.handle] });
    expect(saved.rc).toBe(0);
    expect(t.call(TPM_CC.ContextLoad, { params: saved.body }).rc).toBe(0);
    expect(hex(auditDigestOf(t, s)!)).toBe(hex(d));
  });

  test('the audit digest and exclusivity survive the volatile state (STORE_VOLATILE, INIT)', () => {
    const t = createTestTpm();
    const s = startSession(t);
    const a = getRandom(t, s, CONTINUE | AUDIT);
    expect(a.rc).toBe(0);
    const blob = t.engine.volatileBlob();
    t.powerCycle();
    t.engine.restoreVolatile(blob);
    expect(hex(auditDigestOf(t, s)!)).toBe(hex(H(new Uint8Array(32), cpGetRandom(8), rpOf(TPM_CC.GetRandom, a.rp))));
    expect(getRandom(t, s, CONTINUE | AUDIT | EXCLUSIVE).rc).toBe(0);
  });

  test('refused: audit on a policy session, two audit sessions, audit on a password session', () => {
    const t = createTestTpm();
    const policy = startSession(t, { type: 1 });
    expect(getRandom(t, policy, CONTINUE | AUDIT).rc).toBe(withPosition(TPM_RC.ATTRIBUTES, { session: 1 }));
    const s1 = startSession(t);
    const s2 = startSession(t);
    const two = callWithSessions(t, { code: TPM_CC.GetRandom, params: be.u16(4) }, [{ session: s1, attrs: CONTINUE | AUDIT }, { session: s2, attrs: CONTINUE | AUDIT }]);
    expect(two.r.rc).toBe(withPosition(TPM_RC.ATTRIBUTES, { session: 2 }));
    // A session that authorizes nothing and neither encrypts nor audits: TPM_RC_ATTRIBUTES+S1.
    expect(getRandom(t, s1, CONTINUE).rc).toBe(withPosition(TPM_RC.ATTRIBUTES, { session: 1 }));
  });
});

/** GetCapability(TPM_CAP_AUDIT_COMMANDS) from `from`. */
function auditedCommands(t: TestTpm, from = 0): number[] {
  const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(4), be.u32(from), be.u32(100)) });
  expect(r.rc).toBe(0);
  const v = new DataView(r.body.buffer, r.body.byteOffset);
  return Array.from({ length: v.getUint32(5) }, (_, i) => v.getUint32(9 + 4 * i));
}

const tpml = (codes: number[]) => cat(be.u32(codes.length), ...codes.map(be.u32));
const setAudit = (t: TestTpm, alg: number, set: number[], clear: number[], auth: number = TPM_RH.OWNER) =>
  t.call(TPM_CC.SetCommandCodeAuditStatus, { handles: [auth], passwords: [''], params: cat(be.u16(alg), tpml(set), tpml(clear)) }).rc;
const auditParams = (alg: number, set: number[], clear: number[]) => cat(be.u16(alg), tpml(set), tpml(clear));

describe('command audit', () => {
  test('SetCommandCodeAuditStatus: the audited list, the digest (SHA-512 first), the counter, a hash change, persistence, TPM Reset', () => {
    const t = createTestTpm();
    const p = () => t.engine.tpm.persistent;
    // A new TPM audits SetCommandCodeAuditStatus alone (it can never be cleared).
    expect(auditedCommands(t)).toEqual([TPM_CC.SetCommandCodeAuditStatus]);
    expect(commandAuditInfo(p()).auditCounter).toBe(0n);
    // Shutdown and unimplemented codes are ignored.
    const params1 = auditParams(TPM_ALG.NULL, [TPM_CC.GetRandom, TPM_CC.Shutdown, 0x1ff], [TPM_CC.SetCommandCodeAuditStatus]);
    expect(t.call(TPM_CC.SetCommandCodeAuditStatus, { handles: [TPM_RH.OWNER], passwords: [''], params: params1 }).rc).toBe(0);
    expect(auditedCommands(t)).toEqual([TPM_CC.SetCommandCodeAuditStatus, TPM_CC.GetRandom]);
    expect(auditedCommands(t, TPM_CC.GetRandom + 1)).toEqual([]);
    // The command itself was audited: a new digest (counter 1) with SHA-512, the default.
    let d = H512(new Uint8Array(64), H512(be.u32(TPM_CC.SetCommandCodeAuditStatus), be.u32(TPM_RH.OWNER), params1), rpOf(TPM_CC.SetCommandCodeAuditStatus, new Uint8Array(0), H512));
    let info = commandAuditInfo(p());
    expect(info.auditCounter).toBe(1n);
    expect(info.digestAlg).toBe(TPM_ALG.SHA512);
    expect(hex(info.auditDigest)).toBe(hex(d));
    // An audited command without sessions extends it too.
    const g = t.call(TPM_CC.GetRandom, { params: be.u16(5) });
    d = H512(d, H512(be.u32(TPM_CC.GetRandom), be.u16(5)), rpOf(TPM_CC.GetRandom, g.body, H512));
    info = commandAuditInfo(p());
    expect(hex(info.auditDigest)).toBe(hex(d));
    // commandDigest: the hash of the audited codes in order.
    expect(hex(info.commandDigest)).toBe(hex(H512(be.u32(TPM_CC.SetCommandCodeAuditStatus), be.u32(TPM_CC.GetRandom))));
    // TPM_PT_AUDIT_COUNTER_1 (low word).
    const prop = t.call(TPM_CC.GetCapability, { params: cat(be.u32(6), be.u32(0x214), be.u32(1)) });
    expect(hex(prop.body.subarray(9, 17))).toBe(hex(cat(be.u32(0x214), be.u32(1))));
    // A hash change with a list is TPM_RC_VALUE+P1; alone it clears the digest and is not audited.
    expect(setAudit(t, SHA256, [TPM_CC.GetRandom], [])).toBe(withPosition(TPM_RC.VALUE, { param: 1 }));
    expect(setAudit(t, SHA256, [], [])).toBe(0);
    expect(commandAuditInfo(p()).auditDigest.length).toBe(0);
    const g2 = t.call(TPM_CC.GetRandom, { params: be.u16(3) });
    info = commandAuditInfo(p());
    expect(info.auditCounter).toBe(2n);
    expect(hex(info.auditDigest)).toBe(hex(H(new Uint8Array(32), H(be.u32(TPM_CC.GetRandom), be.u16(3)), rpOf(TPM_CC.GetRandom, g2.body))));
    // The settings persist.
    expect(t.engine.takePermanentChanges()).not.toBeNull();
    const restored = Engine.restore(t.engine.permanentBlob(), t.env);
    expect(commandAuditInfo(restored.tpm.persistent).digestAlg).toBe(SHA256);
    // TPM Reset clears the digest; the counter stays.
    expect(t.call(TPM_CC.Shutdown, { params: be.u16(0) }).rc).toBe(0);
    t.powerCycle();
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    info = commandAuditInfo(p());
    expect(info.auditDigest.length).toBe(0);
    expect(info.auditCounter).toBe(2n);
    expect(auditedCommands(t)).toEqual([TPM_CC.SetCommandCodeAuditStatus, TPM_CC.GetRandom]);
    expect(setAudit(t, TPM_ALG.NULL, [], [TPM_CC.GetRandom], TPM_RH.PLATFORM)).toBe(0);
    expect(auditedCommands(t)).toEqual([TPM_CC.SetCommandCodeAuditStatus]);
    // Endorsement is not a provisioning handle: TPM_RC_VALUE+H1.
    expect(setAudit(t, TPM_ALG.NULL, [], [], TPM_RH.ENDORSEMENT)).toBe(withPosition(TPM_RC.VALUE, { handle: 1 }));
  });
});

describe('command audit in the state file', () => {
  test('audit settings survive a restart, in a permanent state an older vtpmd refuses instead of losing them', () => {
    const minVersion = (blob: Uint8Array) => new DataView(blob.buffer, blob.byteOffset).getUint16(8);
    const t = createTestTpm();
    expect(setAudit(t, TPM_ALG.NULL, [TPM_CC.GetRandom], [])).toBe(0);
    const blob = t.engine.permanentBlob();
    expect(minVersion(blob)).toBe(PERSISTENT_VERSION);
    const u = restoreTestTpm(t, blob);
    expect(u.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(auditedCommands(u)).toEqual([TPM_CC.SetCommandCodeAuditStatus, TPM_CC.GetRandom]);
  });
});
