#!/usr/bin/env node
// Micro-benchmark behind the backend choices in src/tpm/crypto/hash.ts and hmac.ts:
// node:crypto (OpenSSL) against @noble/hashes, for hashes and HMAC at TPM-typical sizes
// (32 B: a digest or nonce; 1 KiB: a command buffer) and at 1 MiB (bulk sequence data).
// Usage: node scripts/bench-crypto.mjs [--quick]
import * as nodeCrypto from 'node:crypto';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';

const quick = process.argv.includes('--quick');
const budgetMs = quick ? 150 : 600;

/** Runs fn repeatedly for about budgetMs after a warm-up; returns nanoseconds per call. */
function time(fn) {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(budgetMs) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / n;
}

function fmt(ns) {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

const SIZES = [
  ['32 B', 32],
  ['1 KiB', 1024],
  ['1 MiB', 1 << 20],
];
const NOBLE = { sha1, sha256, sha384, sha512 };
const BLOCK = { sha1: 64, sha256: 64, sha384: 128, sha512: 128 };
const hasOneShot = typeof nodeCrypto.hash === 'function';

/** HMAC as two node hash states cloned from precomputed ipad/opad states (what hmac.ts does). */
function twoStateHmac(name, key, data) {
  const block = BLOCK[name];
  let k = key.length > block ? nodeCrypto.createHash(name).update(key).digest() : key;
  const pad = new Uint8Array(block);
  pad.set(k);
  for (let i = 0; i < block; i++) pad[i] ^= 0x36;
  const inner = nodeCrypto.createHash(name).update(pad);
  for (let i = 0; i < block; i++) pad[i] ^= 0x36 ^ 0x5c;
  const outer = nodeCrypto.createHash(name).update(pad);
  return () => {
    const ih = inner.copy().update(data).digest();
    return outer.copy().update(ih).digest();
  };
}

const rows = [];
for (const name of ['sha1', 'sha256', 'sha384', 'sha512']) {
  for (const [label, size] of SIZES) {
    const data = nodeCrypto.randomBytes(size);
    const u8 = new Uint8Array(data.buffer, data.byteOffset, data.length);
    const key = nodeCrypto.randomBytes(32);
    const r = { alg: name, size: label };
    r['node createHash'] = time(() => nodeCrypto.createHash(name).update(data).digest());
    if (hasOneShot) r['node hash()'] = time(() => nodeCrypto.hash(name, data, 'buffer'));
    r['noble'] = time(() => NOBLE[name](u8));
    const h = nodeCrypto.createHash(name).update(data);
    r['node copy()'] = time(() => h.copy());
    const nh = NOBLE[name].create().update(u8);
    r['noble clone()'] = time(() => nh.clone());
    r['node createHmac'] = time(() => nodeCrypto.createHmac(name, key).update(data).digest());
    const two = twoStateHmac(name, key, data);
    r['node 2-state hmac'] = time(two);
    r['noble hmac'] = time(() => nobleHmac(NOBLE[name], key, u8));
    rows.push(r);
  }
}

console.log(`node ${process.version}, ${nodeCrypto.getHashes ? 'OpenSSL ' + process.versions.openssl : ''}, budget ${budgetMs} ms/case`);
const cols = Object.keys(rows[0]).filter((c) => c !== 'alg' && c !== 'size');
console.log(['alg', 'size', ...cols].join(' | '));
for (const r of rows) console.log([r.alg, r.size, ...cols.map((c) => (r[c] === undefined ? '-' : fmt(r[c])))].join(' | '));
