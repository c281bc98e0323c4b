/** Hash functions by TPM_ALG id (Part 1 §11.4.2): one-shot digests and incremental, clonable states. */
// Backend: node:crypto for every case, by measurement (scripts/bench-crypto.mjs; Node 20.20,
// OpenSSL 3.0, 2-core EPYC; two runs, typical values). Per call, createHash / crypto.hash() / noble:
//   SHA-256  32 B 1.9 / 1.0 / 1.6 µs   1 KiB 2.3 / 1.9 / 12 µs   1 MiB 0.77 / 0.76 / 9.4 ms
//   SHA-1    32 B 2.2 / 1.0 / 1.3 µs   1 KiB 2.2 / 1.6 /  7 µs   1 MiB 0.71 / 0.71 / 6.3 ms
//   SHA-384  32 B 2.0 / 1.3 / 3.7 µs   1 KiB 4.2 / 4.0 / 25 µs   1 MiB 1.7  / 1.7  / 19 ms
//   SHA-512  32 B 2.0 / 1.4 / 4.0 µs   1 KiB 3.8 / 3.6 / 23 µs   1 MiB 1.7  / 1.6  / 18 ms
//   clone: Hash.copy() 0.5-0.9 µs, noble clone() 0.5-1.0 µs (a tie).
// noble beats createHash only on 32-byte SHA-1/SHA-256 input, and the one-shot crypto.hash() beats
// both there, so a single-part hash() uses crypto.hash(); several parts go through createHash
// updates (concatenating first measured no faster), and hashStart() wraps createHash.
import * as nodeCrypto from 'node:crypto';
import { hashInfo, type HashAlgInfo } from '../algorithms.js';
import { TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { view } from './bytes.js';

/**
 * An incremental hash (or HMAC) computation. `update` returns the same state for chaining.
 * `digest()` finishes the state: it may not be updated or digested again, so `clone()` first
 * to keep a running value (as TPM2_SequenceUpdate does while a caller reads intermediate digests).
 */
export interface HashState {
  update(data: Uint8Array): HashState;
  digest(): Uint8Array;
  clone(): HashState;
}

/** The hash descriptor for `alg`, or TPM_RC_HASH when this TPM does not implement it (Part 2 §6.6.3). */
export function requireHash(alg: number): HashAlgInfo {
  const info = hashInfo(alg);
  if (info === undefined) throw new TpmError(TPM_RC.HASH);
  return info;
}

class NodeHashState implements HashState {
  constructor(private readonly h: nodeCrypto.Hash) {}

  update(data: Uint8Array): HashState {
    this.h.update(data);
    return this;
  }

  digest(): Uint8Array {
    return view(this.h.digest());
  }

  clone(): HashState {
    return new NodeHashState(this.h.copy());
  }
}

/** Starts an incremental hash; throws TpmError(TPM_RC_HASH) for an algorithm not in HASH_ALGS. */
export function hashStart(alg: number): HashState {
  return new NodeHashState(nodeCrypto.createHash(requireHash(alg).name));
}

// crypto.hash() exists from Node 20.12; package.json allows any Node 20, so fall back to createHash.
const oneShot: (name: string, data: Uint8Array) => Uint8Array =
  typeof nodeCrypto.hash === 'function'
    ? (name, data) => view(nodeCrypto.hash(name, data, 'buffer'))
    : (name, data) => view(nodeCrypto.createHash(name).update(data).digest());

/** Below this total size, several parts are joined and hashed one-shot (1.1 µs vs 1.7 µs for 64 B). */
const JOIN_LIMIT = 4096;

/** Digest of the concatenation of `parts` (no parts: the digest of the empty string). */
export function hash(alg: number, ...parts: Uint8Array[]): Uint8Array {
  const { name } = requireHash(alg);
  if (parts.length === 1) return oneShot(name, parts[0]!);
  let total = 0;
  for (const p of parts) total += p.length;
  if (total <= JOIN_LIMIT) {
    const joined = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      joined.set(p, off);
      off += p.length;
    }
    return oneShot(name, joined);
  }
  const h = nodeCrypto.createHash(name);
  for (const p of parts) h.update(p);
  return view(h.digest());
}
