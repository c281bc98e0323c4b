/** HMAC by TPM_ALG id (Part 1 §11.4.3, RFC 2104): one-shot MACs and keyed states that clone. */
// Backend by measurement (scripts/bench-crypto.mjs, as in hash.ts). Per call, createHmac / two node
// hash states / noble hmac: SHA-256 32 B 2.9 / 3.5 / 6.1 µs, 1 KiB 3.6 / 4.0 / 15 µs, 1 MiB 0.76 /
// 0.76 / 9.7 ms; SHA-1/384/512 keep that order, noble 4-10x slower from 1 KiB. node's Hmac has no
// copy(), so hmacStart() builds HMAC from two node hash states (inner with K^ipad absorbed, outer
// with K^opad), which clone through Hash.copy() and let KDFa key once for all its blocks; the
// one-shot hmac() uses createHmac, the fastest when nothing needs a clone.
import * as nodeCrypto from 'node:crypto';
import { view } from './bytes.js';
import { hash, hashStart, requireHash, type HashState } from './hash.js';

const IPAD = 0x36;
const OPAD = 0x5c;

class HmacState implements HashState {
  /** `outer` has absorbed K^opad and waits for the inner digest. */
  constructor(
    private readonly inner: HashState,
    private readonly outer: HashState,
  ) {}

  update(data: Uint8Array): HashState {
    this.inner.update(data);
    return this;
  }

  digest(): Uint8Array {
    return this.outer.update(this.inner.digest()).digest();
  }

  clone(): HashState {
    return new HmacState(this.inner.clone(), this.outer.clone());
  }
}

/**
 * Starts an HMAC under `key`. A key longer than the hash block is hashed first (RFC 2104 §2);
 * throws TpmError(TPM_RC_HASH) for an unimplemented algorithm.
 */
export function hmacStart(alg: number, key: Uint8Array): HashState {
  const { blockSize } = requireHash(alg);
  const pad = new Uint8Array(blockSize);
  const k = key.length > blockSize ? hash(alg, key) : key;
  pad.set(k);
  if (k !== key) k.fill(0);
  for (let i = 0; i < blockSize; i++) pad[i] ^= IPAD;
  const inner = hashStart(alg).update(pad);
  for (let i = 0; i < blockSize; i++) pad[i] ^= IPAD ^ OPAD;
  const outer = hashStart(alg).update(pad);
  // The padded key is secret; clear our copy (JS gives no guarantee that no other copy exists).
  pad.fill(0);
  return new HmacState(inner, outer);
}

/** HMAC of the concatenation of `parts` under `key`. */
export function hmac(alg: number, key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = nodeCrypto.createHmac(requireHash(alg).name, key);
  for (const p of parts) h.update(p);
  return view(h.digest());
}
