/**
 * A session client written independently of the engine, the way a TSS or the Linux kernel
 * drives sessions: KDFa/KDFe, ECDH salts, cpHash/rpHash HMACs and parameter encryption, with
 * node:crypto only. Unit tests talk bytes to the engine through it.
 */
import { createCipheriv, createDecipheriv, createECDH, createHash, createHmac } from 'node:crypto';
import { TPM_ALG, TPM_CC, TPM_RH, TPM_ST } from '../../src/tpm/constants.js';
import { be, cat, type Response, type TestTpm } from './engine.js';

const enc = new TextEncoder();
const HASH_NAMES: Record<number, string> = { [TPM_ALG.SHA1]: 'sha1', [TPM_ALG.SHA256]: 'sha256', [TPM_ALG.SHA384]: 'sha384' };

export function digest(alg: number, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(HASH_NAMES[alg]!);
  parts.forEach((p) => h.update(p));
  return new Uint8Array(h.digest());
}

export function mac(alg: number, key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac(HASH_NAMES[alg]!, key);
  parts.forEach((p) => h.update(p));
  return new Uint8Array(h.digest());
}

/** Part 1 §11.4.10.2 KDFa, whole bytes only. */
export function kdfa(alg: number, key: Uint8Array, label: string, u: Uint8Array, v: Uint8Array, bits: number): Uint8Array {
  const blocks: Uint8Array[] = [];
  let have = 0;
  for (let i = 1; have < bits / 8; i++) {
    const b = mac(alg, key, be.u32(i), enc.encode(`${label}\0`), u, v, be.u32(bits));
    blocks.push(b);
    have += b.length;
  }
  return cat(...blocks).slice(0, bits / 8);
}

/** Part 1 §11.4.10.3 KDFe, whole bytes only. */
export function kdfe(alg: number, z: Uint8Array, label: string, u: Uint8Array, v: Uint8Array, bits: number): Uint8Array {
  const blocks: Uint8Array[] = [];
  let have = 0;
  for (let i = 1; have < bits / 8; i++) {
    const b = digest(alg, be.u32(i), z, enc.encode(`${label}\0`), u, v);
    blocks.push(b);
    have += b.length;
  }
  return cat(...blocks).slice(0, bits / 8);
}

export interface Symmetric {
  algorithm: number;
  keyBits: number;
}

export const SYM_NULL: Symmetric = { algorithm: TPM_ALG.NULL, keyBits: 0 };
export const SYM_XOR: Symmetric = { algorithm: TPM_ALG.XOR, keyBits: 0 };
export const SYM_AES128: Symmetric = { algorithm: TPM_ALG.AES, keyBits: 128 };
export const SYM_AES256: Symmetric = { algorithm: TPM_ALG.AES, keyBits: 256 };

export function symDefBytes(s: Symmetric, hashAlg: number): Uint8Array {
  if (s.algorithm === TPM_ALG.NULL) return be.u16(TPM_ALG.NULL);
  if (s.algorithm === TPM_ALG.XOR) return cat(be.u16(TPM_ALG.XOR), be.u16(hashAlg));
  return cat(be.u16(s.algorithm), be.u16(s.keyBits), be.u16(TPM_ALG.CFB));
}

/** Parameter encryption as a client does it: XOR mask or AES-CFB with KDFa'd key and IV. */
export function paramCrypt(s: Symmetric, alg: number, key: Uint8Array, newer: Uint8Array, older: Uint8Array, data: Uint8Array, encrypt: boolean): Uint8Array {
  if (s.algorithm === TPM_ALG.XOR) {
    const mask = kdfa(alg, key, 'XOR', newer, older, data.length * 8);
    return data.map((b, i) => b ^ mask[i]!);
  }
  const kb = s.keyBits / 8;
  const bits = kdfa(alg, key, 'CFB', newer, older, s.keyBits + 128);
  const name = `aes-${s.keyBits}-cfb`;
  const c = encrypt ? createCipheriv(name, bits.subarray(0, kb), bits.subarray(kb)) : createDecipheriv(name, bits.subarray(0, kb), bits.subarray(kb));
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
}

export interface ClientSession {
  handle: number;
  hashAlg: number;
  symmetric: Symmetric;
  sessionKey: Uint8Array;
  nonceTPM: Uint8Array;
  /** The salt the client derived (empty if unsalted). */
  salt: Uint8Array;
}

export interface StartOptions {
  /** A loaded ECC P-256 decrypt key and its public point: the session is salted. */
  tpmKey?: { handle: number; x: Uint8Array; y: Uint8Array; nameAlg?: number };
  bind?: number;
  bindAuth?: Uint8Array;
  /** TPM_SE: 0 HMAC, 1 policy, 3 trial. */
  type?: number;
  symmetric?: Symmetric;
  hashAlg?: number;
  nonceSize?: number;
}

/** Part 1 §C.6.4: an ephemeral point and the salt it carries to the key's owner. */
export function eccSalt(tpmKey: { x: Uint8Array; y: Uint8Array; nameAlg?: number }): { point: Uint8Array; salt: Uint8Array } {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const pub = new Uint8Array(ecdh.getPublicKey());
  const qx = pub.subarray(1, 33);
  const qy = pub.subarray(33);
  const z = new Uint8Array(ecdh.computeSecret(cat(new Uint8Array([4]), tpmKey.x, tpmKey.y)));
  const nameAlg = tpmKey.nameAlg ?? TPM_ALG.SHA256;
  const salt = kdfe(nameAlg, z, 'SECRET', qx, tpmKey.x, digest(nameAlg).length * 8);
  return { point: cat(be.b2(qx), be.b2(qy)), salt };
}

export function startSession(t: TestTpm, o: StartOptions = {}): ClientSession & { rc: number } {
  const hashAlg = o.hashAlg ?? TPM_ALG.SHA256;
  const symmetric = o.symmetric ?? SYM_NULL;
  const nonceCaller = new Uint8Array(o.nonceSize ?? digest(hashAlg).length).map((_, i) => 0x40 + i);
  let salt: Uint8Array = new Uint8Array(0);
  let encryptedSalt: Uint8Array = new Uint8Array(0);
  if (o.tpmKey) {
    const s = eccSalt(o.tpmKey);
    salt = s.salt;
    encryptedSalt = s.point;
  }
  const r = t.call(TPM_CC.StartAuthSession, {
    handles: [o.tpmKey?.handle ?? TPM_RH.NULL, o.bind ?? TPM_RH.NULL],
    params: cat(be.b2(nonceCaller), be.b2(encryptedSalt), be.u8(o.type ?? 0), symDefBytes(symmetric, hashAlg), be.u16(hashAlg)),
  });
  if (r.rc !== 0) return { rc: r.rc, handle: 0, hashAlg, symmetric, sessionKey: new Uint8Array(0), nonceTPM: new Uint8Array(0), salt };
  const dv = new DataView(r.body.buffer, r.body.byteOffset);
  const handle = dv.getUint32(0);
  const nonceTPM = r.body.slice(6, 6 + dv.getUint16(4));
  const seed = cat(o.bindAuth ?? new Uint8Array(0), salt);
  const keyed = o.bind !== undefined && o.bind !== TPM_RH.NULL;
  const sessionKey = keyed || salt.length > 0 ? kdfa(hashAlg, seed, 'ATH', nonceTPM, nonceCaller, digest(hashAlg).length * 8) : new Uint8Array(0);
  return { rc: 0, handle, hashAlg, symmetric, sessionKey, nonceTPM, salt };
}

/** One session in a command's authorization area. */
export interface SessionUseSpec {
  session: ClientSession;
  /** TPMA_SESSION: 0x01 continueSession, 0x20 decrypt, 0x40 encrypt. */
  attrs: number;
  /** The authValue in the HMAC key (the authorized entity's, unless bound to it); empty if none. */
  authValue?: Uint8Array;
  /** Entity authValue for parameter encryption keys (defaults to authValue). */
  encAuth?: Uint8Array;
  corrupt?: boolean;
}

export interface SessionCall {
  code: number;
  handles?: number[];
  /** Names of the handles for cpHash (defaults to the handles as 4 bytes). */
  names?: Uint8Array[];
  /** Parameters in clear; the first one is encrypted here when a session has decrypt. */
  params?: Uint8Array;
  responseHandles?: number;
}

export interface SessionResult {
  r: Response;
  /** Response parameters after decrypting the first one, when a session asked for encrypt. */
  params: Uint8Array;
  /** Each session's response HMAC matched the client's computation. */
  hmacOk: boolean;
}

export function callWithSessions(t: TestTpm, call: SessionCall, uses: SessionUseSpec[], locality = 0): SessionResult {
  const handles = call.handles ?? [];
  const names = call.names ?? handles.map(be.u32);
  let params = call.params ?? new Uint8Array(0);
  const nonces = uses.map((_, i) => new Uint8Array(16).map((__, j) => (i * 16 + j + 1) & 0xff));
  const d = uses.findIndex((u) => u.attrs & 0x20);
  const e = uses.findIndex((u) => u.attrs & 0x40);
  if (d >= 0) {
    const u = uses[d]!;
    const size = (params[0]! << 8) | params[1]!;
    const key = cat(u.session.sessionKey, u.encAuth ?? u.authValue ?? new Uint8Array(0));
    const ct = paramCrypt(u.session.symmetric, u.session.hashAlg, key, nonces[d]!, u.session.nonceTPM, params.subarray(2, 2 + size), true);
    params = cat(params.subarray(0, 2), ct, params.subarray(2 + size));
  }
  const area: Uint8Array[] = [];
  uses.forEach((u, i) => {
    const s = u.session;
    const cpHash = digest(s.hashAlg, be.u32(call.code), ...names, params);
    const extra: Uint8Array[] = [];
    if (i === 0 && (u.authValue !== undefined)) {
      if (d > 0) extra.push(uses[d]!.session.nonceTPM);
      if (e > 0 && e !== d) extra.push(uses[e]!.session.nonceTPM);
    }
    const key = cat(s.sessionKey, u.authValue ?? new Uint8Array(0));
    const h = key.length === 0 ? new Uint8Array(0) : mac(s.hashAlg, key, cpHash, nonces[i]!, s.nonceTPM, ...extra, be.u8(u.attrs));
    if (u.corrupt) h[0] = (h[0] ?? 0) ^ 1;
    area.push(be.u32(s.handle), be.b2(nonces[i]!), be.u8(u.attrs), be.b2(h));
  });
  const auth = cat(...area);
  const body = cat(...handles.map(be.u32), be.u32(auth.length), auth, params);
  const r = t.send(cat(be.u16(TPM_ST.SESSIONS), be.u32(10 + body.length), be.u32(call.code), body), locality);
  if (r.rc !== 0) return { r, params: new Uint8Array(0), hmacOk: false };
  const rp = r.params(call.responseHandles ?? 0);
  let rest = r.body.subarray((call.responseHandles ?? 0) * 4 + 4 + rp.length);
  let hmacOk = true;
  const newNonces: Uint8Array[] = [];
  uses.forEach((u, i) => {
    const s = u.session;
    const n = (rest[0]! << 8) | rest[1]!;
    const nonce = rest.slice(2, 2 + n);
    const attrs = rest[2 + n]!;
    const m = (rest[3 + n]! << 8) | rest[4 + n]!;
    const got = rest.slice(5 + n, 5 + n + m);
    rest = rest.subarray(5 + n + m);
    const rpHash = digest(s.hashAlg, be.u32(0), be.u32(call.code), rp);
    const key = cat(s.sessionKey, u.authValue ?? new Uint8Array(0));
    const want = key.length === 0 ? new Uint8Array(0) : mac(s.hashAlg, key, rpHash, nonce, nonces[i]!, be.u8(attrs));
    if (Buffer.compare(got, want) !== 0) hmacOk = false;
    newNonces.push(nonce);
  });
  uses.forEach((u, i) => (u.session.nonceTPM = newNonces[i]!));
  const out = rp.slice();
  if (e >= 0) {
    const u = uses[e]!;
    const size = (out[0]! << 8) | out[1]!;
    const key = cat(u.session.sessionKey, u.encAuth ?? u.authValue ?? new Uint8Array(0));
    out.set(paramCrypt(u.session.symmetric, u.session.hashAlg, key, u.session.nonceTPM, nonces[e]!, out.subarray(2, 2 + size), false), 2);
  }
  return { r, params: out, hmacOk };
}
