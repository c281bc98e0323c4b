/**
 * Part 3 §15 symmetric primitives in the engine: EncryptDecrypt and EncryptDecrypt2 against
 * NIST SP 800-38A in every mode, IV chaining across calls, HMAC and HMAC sequences against
 * RFC 4231 / RFC 2202, and each response code of the reference's checks with its position.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../../../src/tpm/constants.js';
import { withPosition } from '../../../src/tpm/errors.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { TPM2B_PUBLIC, TPMA_OBJECT, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { TPM2B_SENSITIVE } from '../../../src/tpm/marshal/sensitive.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';
import { fromHex, loadVectors, oddChunks } from '../crypto/vectors.js';

const A = TPMA_OBJECT;
const EMPTY = new Uint8Array(0);
const SEED = new Uint8Array(32).fill(0x5a);
const rc = (code: number, position: { param: number } | { handle: number }) => withPosition(code, position);

const ALG: Record<string, number> = { CFB: TPM_ALG.CFB, CBC: TPM_ALG.CBC, CTR: TPM_ALG.CTR, OFB: TPM_ALG.OFB, ECB: TPM_ALG.ECB, NULL: TPM_ALG.NULL };

/** Loads an object with a known sensitive value into the NULL hierarchy; returns its handle. */
function loadExternal(t: TestTpm, publicArea: TPMT_PUBLIC, sensitive: Uint8Array): number {
  const unique = new Uint8Array(nodeCrypto.createHash('sha256').update(SEED).update(sensitive).digest());
  const pub = { ...publicArea, unique } as TPMT_PUBLIC;
  const s = encode(TPM2B_SENSITIVE, { sensitiveType: pub.type, authValue: EMPTY, seedValue: SEED, sensitive });
  const r = t.call(TPM_CC.LoadExternal, { params: cat(s, encode(TPM2B_PUBLIC, pub), be.u32(TPM_RH.NULL)) });
  expect(r.rc).toBe(0);
  return new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
}

const symTemplate = (keyBits: number, mode: number, attributes = A.userWithAuth | A.sign | A.decrypt): TPMT_PUBLIC => ({
  type: TPM_ALG.SYMCIPHER, nameAlg: TPM_ALG.SHA256, objectAttributes: attributes, authPolicy: EMPTY,
  parameters: { sym: { algorithm: TPM_ALG.AES, keyBits, mode } }, unique: EMPTY,
}) as TPMT_PUBLIC;

const hmacTemplate = (hashAlg: number | null, attributes = A.userWithAuth | A.sign): TPMT_PUBLIC => ({
  type: TPM_ALG.KEYEDHASH, nameAlg: TPM_ALG.SHA256, objectAttributes: attributes, authPolicy: EMPTY,
  parameters: { scheme: hashAlg === null ? { scheme: TPM_ALG.NULL, details: null } : { scheme: TPM_ALG.HMAC, details: { hashAlg } } },
  unique: EMPTY,
}) as TPMT_PUBLIC;

/** EncryptDecrypt (v1) or EncryptDecrypt2 (v2); returns the RC, outData and ivOut. */
function crypt(t: TestTpm, v: 1 | 2, key: number, decrypt: boolean, mode: number, iv: Uint8Array, data: Uint8Array) {
  const params = v === 1
    ? cat(be.u8(decrypt ? 1 : 0), be.u16(mode), be.b2(iv), be.b2(data))
    : cat(be.b2(data), be.u8(decrypt ? 1 : 0), be.u16(mode), be.b2(iv));
  const r = t.call(v === 1 ? TPM_CC.EncryptDecrypt : TPM_CC.EncryptDecrypt2, { handles: [key], passwords: [''], params });
  if (r.rc !== 0) return { rc: r.rc, out: EMPTY, ivOut: EMPTY };
  const p = r.params();
  const n = (p[0]! << 8) | p[1]!;
  const out = p.slice(2, 2 + n);
  const m = (p[2 + n]! << 8) | p[3 + n]!;
  return { rc: 0, out, ivOut: p.slice(4 + n, 4 + n + m) };
}

interface AesVector { Name: string; Key: string; Mode: string; IV: string; Plaintext: string; Ciphertext: string }

describe('EncryptDecrypt and EncryptDecrypt2', () => {
  test.each(loadVectors<AesVector>('aes-modes.json').map((v) => [v.Name, v] as const))('SP 800-38A %s, mode from the key and from the command', (_n, v) => {
    const t = createTestTpm();
    const key = fromHex(v.Key);
    const iv = fromHex(v.IV);
    const fromKey = loadExternal(t, symTemplate(key.length * 8, ALG[v.Mode]!), key);
    const fromCommand = loadExternal(t, symTemplate(key.length * 8, TPM_ALG.NULL), key);
    for (const version of [1, 2] as const) {
      const e = crypt(t, version, fromKey, false, TPM_ALG.NULL, iv, fromHex(v.Plaintext));
      expect(e.rc).toBe(0);
      expect(hex(e.out)).toBe(v.Ciphertext);
      const d = crypt(t, version, fromCommand, true, ALG[v.Mode]!, iv, fromHex(v.Ciphertext));
      expect(d.rc).toBe(0);
      expect(hex(d.out)).toBe(v.Plaintext);
      // The same mode named by both is accepted too.
      expect(crypt(t, version, fromKey, false, ALG[v.Mode]!, iv, fromHex(v.Plaintext)).rc).toBe(0);
    }
  });

  test.each(loadVectors<AesVector>('aes-modes.json').filter((v) => v.Mode !== 'ECB').map((v) => [v.Name, v] as const))(
    '%s block by block: each ivOut continues the chain',
    (_n, v) => {
      const t = createTestTpm();
      const key = fromHex(v.Key);
      const handle = loadExternal(t, symTemplate(key.length * 8, ALG[v.Mode]!), key);
      let iv = fromHex(v.IV);
      let out = '';
      for (let i = 0; i < 4; i++) {
        const r = crypt(t, 2, handle, false, TPM_ALG.NULL, iv, fromHex(v.Plaintext.slice(i * 32, i * 32 + 32)));
        expect(r.rc).toBe(0);
        out += hex(r.out);
        iv = r.ivOut;
        expect(iv.length).toBe(16);
      }
      expect(out).toBe(v.Ciphertext);
      // Decryption chains the same way.
      iv = fromHex(v.IV);
      let plain = '';
      for (let i = 0; i < 4; i++) {
        const r = crypt(t, 1, handle, true, TPM_ALG.NULL, iv, fromHex(v.Ciphertext.slice(i * 32, i * 32 + 32)));
        plain += hex(r.out);
        iv = r.ivOut;
      }
      expect(plain).toBe(v.Plaintext);
    },
  );

  test('CFB, CTR and OFB take any length; the output matches OpenSSL; ECB has no IV out; empty data leaves the IV', () => {
    const t = createTestTpm();
    const key = nodeCrypto.randomBytes(16);
    const iv = nodeCrypto.randomBytes(16);
    const data = nodeCrypto.randomBytes(37);
    for (const mode of ['cfb', 'ctr', 'ofb'] as const) {
      const handle = loadExternal(t, symTemplate(128, ALG[mode.toUpperCase()]!), key);
      const r = crypt(t, 2, handle, false, TPM_ALG.NULL, iv, data);
      const c = nodeCrypto.createCipheriv(`aes-128-${mode}`, key, iv);
      expect(hex(r.out)).toBe(Buffer.concat([c.update(data), c.final()]).toString('hex'));
      const none = crypt(t, 2, handle, false, TPM_ALG.NULL, iv, EMPTY);
      expect(none.rc).toBe(0);
      expect(hex(none.ivOut)).toBe(hex(iv));
      t.call(TPM_CC.FlushContext, { params: be.u32(handle) });
    }
    // CTR's ivOut is the counter after the blocks used, a partial one included.
    const ctr = loadExternal(t, symTemplate(128, TPM_ALG.CTR), key);
    const r = crypt(t, 1, ctr, false, TPM_ALG.NULL, new Uint8Array(16).fill(0xff), data);
    expect(hex(r.ivOut)).toBe(`${'00'.repeat(15)}02`);
    const ecb = loadExternal(t, symTemplate(128, TPM_ALG.ECB), key);
    expect(crypt(t, 1, ecb, false, TPM_ALG.NULL, EMPTY, new Uint8Array(32)).ivOut.length).toBe(0);
  });

  test('the reference order of checks and each RC with its position, for both commands', () => {
    const t = createTestTpm();
    const key = new Uint8Array(16).fill(1);
    const iv = new Uint8Array(16);
    const cbc = loadExternal(t, symTemplate(128, TPM_ALG.CBC), key);
    const any = loadExternal(t, symTemplate(128, TPM_ALG.NULL), key);
    const encryptOnly = loadExternal(t, symTemplate(128, TPM_ALG.NULL, A.userWithAuth | A.sign), key);
    // Handle 1 is not a SYMCIPHER key: TPM_RC_KEY.
    t.call(TPM_CC.FlushContext, { params: be.u32(encryptOnly) });
    const mac = loadExternal(t, hmacTemplate(TPM_ALG.SHA256), key);
    expect(crypt(t, 1, mac, false, TPM_ALG.CFB, iv, key).rc).toBe(rc(TPM_RC.KEY, { handle: 1 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(mac) });
    const noDecrypt = loadExternal(t, symTemplate(128, TPM_ALG.NULL, A.userWithAuth | A.sign), key);
    expect(crypt(t, 1, noDecrypt, true, TPM_ALG.CFB, iv, key).rc).toBe(rc(TPM_RC.ATTRIBUTES, { handle: 1 }));
    expect(crypt(t, 1, noDecrypt, false, TPM_ALG.CFB, iv, key).rc).toBe(0);
    for (const [v, at] of [[1, { mode: 2, ivIn: 3, inData: 4 }], [2, { mode: 3, ivIn: 4, inData: 1 }]] as const) {
      // The command's mode differs from the key's; neither gives one.
      expect(crypt(t, v, cbc, false, TPM_ALG.CFB, iv, key).rc).toBe(rc(TPM_RC.MODE, { param: at.mode }));
      expect(crypt(t, v, any, false, TPM_ALG.NULL, iv, key).rc).toBe(rc(TPM_RC.MODE, { param: at.mode }));
      // An IV of the wrong size; any IV with ECB.
      expect(crypt(t, v, any, false, TPM_ALG.CFB, iv.subarray(0, 15), key).rc).toBe(rc(TPM_RC.SIZE, { param: at.ivIn }));
      expect(crypt(t, v, any, false, TPM_ALG.ECB, iv, key).rc).toBe(rc(TPM_RC.SIZE, { param: at.ivIn }));
      expect(crypt(t, v, any, false, TPM_ALG.ECB, EMPTY, key).rc).toBe(0);
      // CBC and ECB need whole blocks (checked after the IV).
      expect(crypt(t, v, cbc, false, TPM_ALG.NULL, iv, key.subarray(0, 15)).rc).toBe(rc(TPM_RC.SIZE, { param: at.inData }));
      expect(crypt(t, v, any, true, TPM_ALG.ECB, EMPTY, new Uint8Array(17)).rc).toBe(rc(TPM_RC.SIZE, { param: at.inData }));
      expect(crypt(t, v, cbc, false, TPM_ALG.NULL, iv.subarray(0, 8), key.subarray(0, 15)).rc).toBe(rc(TPM_RC.SIZE, { param: at.ivIn }));
      // A mode that is no TPMI_ALG_SYM_MODE fails unmarshalling.
      expect(crypt(t, v, any, false, TPM_ALG.AES, iv, key).rc).toBe(rc(TPM_RC.MODE, { param: at.mode }));
    }
  });

  test('a restricted SYMCIPHER key is TPM_RC_ATTRIBUTES', () => {
    const t = createTestTpm();
    const sensitive = cat(be.b2(EMPTY), be.b2(EMPTY));
    const template = symTemplate(128, TPM_ALG.CFB, A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.decrypt);
    const r = t.call(TPM_CC.CreatePrimary, {
      handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(sensitive), encode(TPM2B_PUBLIC, template), be.b2(EMPTY), be.u32(0)),
    });
    expect(r.rc).toBe(0);
    const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
    expect(crypt(t, 2, handle, true, TPM_ALG.NULL, new Uint8Array(16), new Uint8Array(16)).rc).toBe(rc(TPM_RC.ATTRIBUTES, { handle: 1 }));
  });
});

interface HmacVector { Name: string; HashAlg: number; Key: string; Data: string; Mac: string }
/** Keys longer than a SHA-1 block (RFC 2202's 80 bytes, RFC 4231's 131) are not loadable keyed-hash keys. */
const HMAC_VECTORS = loadVectors<HmacVector>('hmac.json').filter((v) => v.Key.length / 2 <= 64);

function hmacCall(t: TestTpm, key: number, data: Uint8Array, hashAlg: number) {
  const r = t.call(TPM_CC.HMAC, { handles: [key], passwords: [''], params: cat(be.b2(data), be.u16(hashAlg)) });
  return { rc: r.rc, mac: r.rc === 0 ? r.params().slice(2) : EMPTY };
}

function hmacSequence(t: TestTpm, key: number, data: Uint8Array, hashAlg: number) {
  const s = t.call(TPM_CC.HMAC_Start, { handles: [key], passwords: [''], params: cat(be.b2('seq'), be.u16(hashAlg)) });
  if (s.rc !== 0) return { rc: s.rc, mac: EMPTY, ticket: EMPTY };
  const seq = new DataView(s.body.buffer, s.body.byteOffset).getUint32(0);
  const chunks = oddChunks(data);
  const last = chunks.pop() ?? EMPTY;
  for (const c of chunks) expect(t.call(TPM_CC.SequenceUpdate, { handles: [seq], passwords: ['seq'], params: be.b2(c) }).rc).toBe(0);
  const r = t.call(TPM_CC.SequenceComplete, { handles: [seq], passwords: ['seq'], params: cat(be.b2(last), be.u32(TPM_RH.OWNER)) });
  expect(r.rc).toBe(0);
  const p = r.params();
  const n = (p[0]! << 8) | p[1]!;
  return { rc: 0, mac: p.slice(2, 2 + n), ticket: p.slice(2 + n) };
}

describe('HMAC, HMAC_Start and HMAC sequences', () => {
  test.each(HMAC_VECTORS.map((v) => [v.Name, v.HashAlg, v] as const))('%s (hash 0x%s): HMAC, and a sequence in odd chunks', (_n, _h, v) => {
    const t = createTestTpm();
    const key = loadExternal(t, hmacTemplate(v.HashAlg), fromHex(v.Key));
    const one = hmacCall(t, key, fromHex(v.Data), TPM_ALG.NULL);
    expect(one.rc).toBe(0);
    expect(hex(one.mac).startsWith(v.Mac)).toBe(true);
    const seq = hmacSequence(t, key, fromHex(v.Data), v.HashAlg);
    expect(hex(seq.mac)).toBe(hex(one.mac));
    // An HMAC sequence never earns a hashcheck ticket: TPM_ST_HASHCHECK, TPM_RH_NULL, empty.
    expect(hex(seq.ticket)).toBe('8024400000070000');
  });

  test('the scheme comes from the key, else from the command; each RC with its position', () => {
    const t = createTestTpm();
    const k = new Uint8Array(20).fill(0x0b);
    const data = new TextEncoder().encode('Hi There');
    // Only a key that both signs and decrypts has no scheme (Part 1 §27.2.5): the command names the hash.
    const noScheme = loadExternal(t, hmacTemplate(null, A.userWithAuth | A.sign | A.decrypt), k);
    expect(hmacCall(t, noScheme, data, TPM_ALG.NULL).rc).toBe(rc(TPM_RC.VALUE, { param: 2 }));
    expect(hmacSequence(t, noScheme, data, TPM_ALG.NULL).rc).toBe(rc(TPM_RC.VALUE, { param: 2 }));
    expect(hex(hmacCall(t, noScheme, data, TPM_ALG.SHA256).mac)).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
    const sha256Key = loadExternal(t, hmacTemplate(TPM_ALG.SHA256), k);
    expect(hmacCall(t, sha256Key, data, TPM_ALG.SHA384).rc).toBe(rc(TPM_RC.VALUE, { param: 2 }));
    expect(hmacCall(t, sha256Key, data, TPM_ALG.SHA256).rc).toBe(0);
    // Not a TPMI_ALG_MAC_SCHEME: TPM_RC_SYMMETRIC, as libtpms answers.
    expect(hmacCall(t, sha256Key, data, TPM_ALG.AES).rc).toBe(rc(TPM_RC.SYMMETRIC, { param: 2 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(noScheme) });
    t.call(TPM_CC.FlushContext, { params: be.u32(sha256Key) });
    // A symmetric key: its mode is no MAC (VALUE when the command names another, SCHEME when
    // taken); with mode NULL a hash is no MAC of it either.
    const sym = loadExternal(t, symTemplate(128, TPM_ALG.CFB), new Uint8Array(16));
    expect(hmacCall(t, sym, data, TPM_ALG.SHA256).rc).toBe(rc(TPM_RC.VALUE, { param: 2 }));
    expect(hmacSequence(t, sym, data, TPM_ALG.NULL).rc).toBe(rc(TPM_RC.SCHEME, { param: 2 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(sym) });
    const anyMode = loadExternal(t, symTemplate(128, TPM_ALG.NULL), new Uint8Array(16));
    expect(hmacCall(t, anyMode, data, TPM_ALG.SHA256).rc).toBe(rc(TPM_RC.SCHEME, { param: 2 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(anyMode) });
    // Neither a keyed hash nor a symmetric key.
    const ecc = t.call(TPM_CC.CreatePrimary, {
      handles: [TPM_RH.OWNER], passwords: [''],
      params: cat(be.b2(cat(be.b2(EMPTY), be.b2(EMPTY))), encode(TPM2B_PUBLIC, {
        type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign,
        authPolicy: EMPTY, parameters: { symmetric: { algorithm: TPM_ALG.NULL, keyBits: null, mode: null }, scheme: { scheme: TPM_ALG.NULL, details: null }, curveID: 3, kdf: { scheme: TPM_ALG.NULL, details: null } },
        unique: { x: EMPTY, y: EMPTY },
      } as TPMT_PUBLIC), be.b2(EMPTY), be.u32(0)),
    });
    const eccKey = new DataView(ecc.body.buffer, ecc.body.byteOffset).getUint32(0);
    expect(hmacCall(t, eccKey, data, TPM_ALG.SHA256).rc).toBe(rc(TPM_RC.TYPE, { handle: 1 }));
    expect(hmacSequence(t, eccKey, data, TPM_ALG.SHA256).rc).toBe(rc(TPM_RC.TYPE, { handle: 1 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(eccKey) });
    // A keyed hash without sign (a sealed object): the MAC is checked first.
    const sealed = loadExternal(t, hmacTemplate(null, A.userWithAuth), k);
    expect(hmacCall(t, sealed, data, TPM_ALG.NULL).rc).toBe(rc(TPM_RC.VALUE, { param: 2 }));
    expect(hmacCall(t, sealed, data, TPM_ALG.SHA256).rc).toBe(rc(TPM_RC.KEY, { handle: 1 }));
    expect(hmacSequence(t, sealed, data, TPM_ALG.SHA256).rc).toBe(rc(TPM_RC.KEY, { handle: 1 }));
    t.call(TPM_CC.FlushContext, { params: be.u32(sealed) });
    // An HMAC sequence is no event sequence.
    const key = loadExternal(t, hmacTemplate(TPM_ALG.SHA256), k);
    const s = t.call(TPM_CC.HMAC_Start, { handles: [key], passwords: [''], params: cat(be.b2(EMPTY), be.u16(TPM_ALG.NULL)) });
    expect(s.rc).toBe(0);
    const seq = new DataView(s.body.buffer, s.body.byteOffset).getUint32(0);
    expect(t.call(TPM_CC.EventSequenceComplete, { handles: [TPM_RH.NULL, seq], passwords: ['', ''], params: be.b2(EMPTY) }).rc)
      .toBe(rc(TPM_RC.MODE, { handle: 2 }));
  });

  test('a restricted keyed-hash key is TPM_RC_ATTRIBUTES for HMAC and HMAC_Start', () => {
    const t = createTestTpm();
    const template = hmacTemplate(TPM_ALG.SHA256, A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.sign);
    const r = t.call(TPM_CC.CreatePrimary, {
      handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(cat(be.b2(EMPTY), be.b2(EMPTY))), encode(TPM2B_PUBLIC, template), be.b2(EMPTY), be.u32(0)),
    });
    expect(r.rc).toBe(0);
    const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
    expect(hmacCall(t, handle, EMPTY, TPM_ALG.NULL).rc).toBe(rc(TPM_RC.ATTRIBUTES, { handle: 1 }));
    expect(hmacSequence(t, handle, EMPTY, TPM_ALG.NULL).rc).toBe(rc(TPM_RC.ATTRIBUTES, { handle: 1 }));
  });
});

describe('persistent keys', () => {
  test('EncryptDecrypt, HMAC and Sign use a key made persistent by EvictControl', () => {
    const t = createTestTpm();
    const primary = (template: TPMT_PUBLIC, persistent: number) => {
      const r = t.call(TPM_CC.CreatePrimary, {
        handles: [TPM_RH.OWNER], passwords: [''], params: cat(be.b2(cat(be.b2(EMPTY), be.b2(EMPTY))), encode(TPM2B_PUBLIC, template), be.b2(EMPTY), be.u32(0)),
      });
      expect(r.rc).toBe(0);
      const handle = new DataView(r.body.buffer, r.body.byteOffset).getUint32(0);
      expect(t.call(TPM_CC.EvictControl, { handles: [TPM_RH.OWNER, handle], passwords: [''], params: be.u32(persistent) }).rc).toBe(0);
      t.call(TPM_CC.FlushContext, { params: be.u32(handle) });
      return persistent;
    };
    const made = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin;
    const aes = primary(symTemplate(128, TPM_ALG.CFB, made | A.userWithAuth | A.sign | A.decrypt), 0x81000001);
    const e = crypt(t, 2, aes, false, TPM_ALG.NULL, new Uint8Array(16), new Uint8Array(20));
    expect(e.rc).toBe(0);
    expect(hex(crypt(t, 1, aes, true, TPM_ALG.NULL, new Uint8Array(16), e.out).out)).toBe('00'.repeat(20));
    const mac = primary(hmacTemplate(TPM_ALG.SHA384, made | A.userWithAuth | A.sign), 0x81000002);
    expect(hmacCall(t, mac, EMPTY, TPM_ALG.NULL).mac.length).toBe(48);
    const ecc = primary({
      type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: made | A.userWithAuth | A.sign, authPolicy: EMPTY,
      parameters: { symmetric: { algorithm: TPM_ALG.NULL, keyBits: null, mode: null }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: 3, kdf: { scheme: TPM_ALG.NULL, details: null } },
      unique: { x: EMPTY, y: EMPTY },
    } as TPMT_PUBLIC, 0x81000003);
    const nullTicket = cat(be.u16(0x8024), be.u32(TPM_RH.NULL), be.u16(0));
    expect(t.call(TPM_CC.Sign, { handles: [ecc], passwords: [''], params: cat(be.b2(new Uint8Array(32)), be.u16(TPM_ALG.NULL), nullTicket) }).rc).toBe(0);
  });
});

describe('EncryptDecrypt2 with parameter encryption', () => {
  test('inData arrives encrypted and outData leaves encrypted under an AES-CFB session (SP 800-38A F.2.1)', async () => {
    const { callWithSessions, startSession, SYM_AES128 } = await import('../../helpers/session-client.js');
    const [v] = loadVectors<AesVector>('aes-modes.json').filter((x) => x.Name.startsWith('F.2.1'));
    const t = createTestTpm();
    // A key with an authValue, so the unbound, unsalted session has a key to encrypt with.
    const key = fromHex(v!.Key);
    const template = symTemplate(128, TPM_ALG.CBC);
    const unique = new Uint8Array(nodeCrypto.createHash('sha256').update(SEED).update(key).digest());
    const auth = new TextEncoder().encode('key auth');
    const s = encode(TPM2B_SENSITIVE, { sensitiveType: TPM_ALG.SYMCIPHER, authValue: auth, seedValue: SEED, sensitive: key });
    const l = t.call(TPM_CC.LoadExternal, { params: cat(s, encode(TPM2B_PUBLIC, { ...template, unique } as TPMT_PUBLIC), be.u32(TPM_RH.NULL)) });
    expect(l.rc).toBe(0);
    const handle = new DataView(l.body.buffer, l.body.byteOffset).getUint32(0);
    const nameAt = 4; // after the handle (no sessions: no parameterSize)
    const name = l.body.slice(nameAt + 2, nameAt + 2 + ((l.body[nameAt]! << 8) | l.body[nameAt + 1]!));
    const session = startSession(t, { symmetric: SYM_AES128 });
    const plain = fromHex(v!.Plaintext);
    const params = cat(be.b2(plain), be.u8(0), be.u16(TPM_ALG.NULL), be.b2(fromHex(v!.IV)));
    const res = callWithSessions(t, { code: TPM_CC.EncryptDecrypt2, handles: [handle], names: [name], params }, [{ session, attrs: 0x01 | 0x20 | 0x40, authValue: auth }]);
    expect(res.r.rc).toBe(0);
    expect(res.hmacOk).toBe(true);
    expect(hex(res.params.subarray(2, 2 + plain.length))).toBe(v!.Ciphertext);
    expect(hex(res.r.params().subarray(2, 2 + plain.length))).not.toBe(v!.Ciphertext);
  });
});
