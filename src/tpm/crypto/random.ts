/** Random bytes for nonces, seeds and TPM2_GetRandom (Part 3 §16.1): the OS CSPRNG through node:crypto. */
import * as nodeCrypto from 'node:crypto';

/**
 * Small requests (nonces, GetRandom, IVs: most commands draw one) are served from a pool filled
 * 4 KiB at a time: one call into OpenSSL costs about as much as the rest of a small command
 * (measured 5–9 µs per call, against well under 1 µs for a copy). Bytes leave the pool once:
 * each slice is zeroed as it is handed out.
 */
const POOL_SIZE = 4096;
const SMALL = 256;
const pool = new Uint8Array(POOL_SIZE);
let used = POOL_SIZE;

/** `n` bytes from the operating system's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  if (n > SMALL) return nodeCrypto.randomFillSync(new Uint8Array(n));
  if (used + n > POOL_SIZE) {
    nodeCrypto.randomFillSync(pool);
    used = 0;
  }
  const out = pool.slice(used, used + n);
  pool.fill(0, used, used + n);
  used += n;
  return out;
}
