/** Random bytes for nonces, seeds and TPM2_GetRandom (Part 3 §16.1): the OS CSPRNG through node:crypto. */
import * as nodeCrypto from 'node:crypto';
import { view } from './bytes.js';

/** `n` bytes from the operating system's CSPRNG. */
export function randomBytes(n: number): Uint8Array {
  return view(nodeCrypto.randomBytes(n));
}
