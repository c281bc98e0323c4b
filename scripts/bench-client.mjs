// TPM command bytes for the benchmarks (scripts/bench.mjs over a socket, scripts/bench-engine.mjs
// in-process) and a session client that keeps its session's rolling nonces, as a TSS does.
import { createECDH, createHash, createHmac } from 'node:crypto';

export function be16(v) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
export function be32(v) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
/** A TPM2B: size, then the bytes. */
export const b2 = (b) => Buffer.concat([be16(b.length), b]);
export function command(tag, cc, ...parts) {
  const body = Buffer.concat(parts);
  return Buffer.concat([be16(tag), be32(10 + body.length), be32(cc), body]);
}
/** An authorization area with one empty password (TPM_RS_PW). */
export const PW_AUTH = Buffer.concat([be32(9), be32(0x40000009), be16(0), Buffer.from([0]), be16(0)]);
export const SHA256 = 0x000b;

// ---- the session client -----------------------------------------------------------------------

const sha256 = (...parts) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest();
const hmac256 = (key, ...parts) => parts.reduce((h, p) => h.update(p), createHmac('sha256', key)).digest();
function kdfa(key, label, u, v, bits) {
  const out = [];
  for (let i = 1; out.length * 32 < bits / 8; i++) out.push(hmac256(key, be32(i), Buffer.from(`${label}\0`), u, v, be32(bits)));
  return Buffer.concat(out).subarray(0, bits / 8);
}
function kdfe(z, label, u, v, bits) {
  const out = [];
  for (let i = 1; out.length * 32 < bits / 8; i++) out.push(sha256(be32(i), z, Buffer.from(`${label}\0`), u, v));
  return Buffer.concat(out).subarray(0, bits / 8);
}

/** The Linux kernel's NULL-hierarchy primary: ECC P-256, restricted decrypt, AES-128-CFB. */
const KERNEL_KEY = Buffer.concat([be16(0x23), be16(SHA256), be32(0x00030472), be16(0), be16(6), be16(128), be16(0x43),
  be16(0x10), be16(3), be16(0x10), be16(0), be16(0)]);

/**
 * Starts a session and returns a workload step: the command with a fresh HMAC, and the
 * response's new nonceTPM taken back. `salted`: an ECC salt for the kernel key, AES-128-CFB;
 * otherwise bound to the owner (empty authValue), so the session key is not empty either.
 */
export async function sessionWorkload(transmit, { salted, code, handles, names, params, attrs }) {
  const nonceCaller = Buffer.alloc(32, 0x42);
  let tpmKey = 0x40000007;
  let encryptedSalt = Buffer.alloc(0);
  let salt = Buffer.alloc(0);
  if (salted) {
    const sensitive = Buffer.concat([be16(0), be16(0)]);
    const r = await transmit(command(0x8002, 0x131, be32(0x40000007), PW_AUTH, b2(sensitive), b2(KERNEL_KEY), be16(0), be32(0)));
    if (r.readUInt32BE(6) !== 0) throw new Error(`CreatePrimary rc 0x${r.readUInt32BE(6).toString(16)}`);
    tpmKey = r.readUInt32BE(10);
    // Response: handle, paramSize, TPM2B_PUBLIC (size, type, nameAlg, attrs, policy, sym 6, scheme 2, curve 2, kdf 2, x, y).
    let off = 10 + 4 + 4 + 2 + 2 + 2 + 4 + 2 + 6 + 2 + 2 + 2;
    const x = r.subarray(off + 2, off + 2 + r.readUInt16BE(off));
    off += 2 + x.length;
    const y = r.subarray(off + 2, off + 2 + r.readUInt16BE(off));
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const pub = ecdh.getPublicKey();
    const z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), x, y]));
    salt = kdfe(z, 'SECRET', pub.subarray(1, 33), x, 256);
    encryptedSalt = Buffer.concat([b2(pub.subarray(1, 33)), b2(pub.subarray(33))]);
  }
  const bind = salted ? 0x40000007 : 0x40000001;
  const sym = salted ? Buffer.concat([be16(6), be16(128), be16(0x43)]) : be16(0x10);
  const s = await transmit(command(0x8001, 0x176, be32(tpmKey), be32(bind), b2(nonceCaller), b2(encryptedSalt), Buffer.from([0]), sym, be16(SHA256)));
  if (s.readUInt32BE(6) !== 0) throw new Error(`StartAuthSession rc 0x${s.readUInt32BE(6).toString(16)}`);
  const handle = s.readUInt32BE(10);
  let nonceTPM = s.subarray(16, 16 + s.readUInt16BE(14));
  const sessionKey = kdfa(salt, 'ATH', nonceTPM, nonceCaller, 256);
  const cpHash = sha256(be32(code), ...names, params);
  return {
    bytes() {
      const mac = hmac256(sessionKey, cpHash, nonceCaller, nonceTPM, Buffer.from([attrs]));
      const area = Buffer.concat([be32(handle), b2(nonceCaller), Buffer.from([attrs]), b2(mac)]);
      return command(0x8002, code, ...handles.map(be32), be32(area.length), area, params);
    },
    done(resp) {
      const paramSize = resp.readUInt32BE(10);
      const at = 14 + paramSize;
      nonceTPM = Buffer.from(resp.subarray(at + 2, at + 2 + resp.readUInt16BE(at)));
    },
  };
}

