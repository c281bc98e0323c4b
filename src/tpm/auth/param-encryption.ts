/**
 * Part 1 §21 session-based parameter encryption of the first TPM2B parameter of a command
 * (decrypt attribute) or response (encrypt attribute). The key is the session key followed by
 * the authValue of the entity the session authorizes, if any; "newer" is the nonce of the side
 * that encrypts (nonceCaller for commands, the fresh nonceTPM for responses).
 */
import { TPM_ALG } from '../constants.js';
import { aesCfbDecrypt, aesCfbEncrypt, kdfa } from '../crypto/index.js';
import type { SessionSymmetric } from '../state/sessions.js';

/** AES block size: the CFB IV taken from the KDFa output after the key. */
const AES_BLOCK_BYTES = 16;

/** Part 1 §21.2 XOR obfuscation: data ⊕ KDFa(hashAlg, key, "XOR", nonceNewer, nonceOlder, 8·|data|). */
export function xorObfuscate(
  hashAlg: number,
  key: Uint8Array,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
  data: Uint8Array,
): Uint8Array {
  const mask = kdfa(hashAlg, key, 'XOR', nonceNewer, nonceOlder, data.length * 8);
  return data.map((b, i) => b ^ mask[i]!);
}

/** Part 1 §21.3: the CFB key and IV are KDFa(hashAlg, key, "CFB", nonceNewer, nonceOlder, keyBits + 128). */
function cfbKeyAndIv(
  symmetric: SessionSymmetric,
  hashAlg: number,
  key: Uint8Array,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
): { key: Uint8Array; iv: Uint8Array } {
  const bits = kdfa(hashAlg, key, 'CFB', nonceNewer, nonceOlder, symmetric.keyBits + AES_BLOCK_BYTES * 8);
  const keyBytes = symmetric.keyBits / 8;
  return { key: bits.subarray(0, keyBytes), iv: bits.subarray(keyBytes) };
}

/** Encrypts one parameter buffer with the session's symmetric definition (XOR or AES-CFB). */
export function encryptParameter(
  symmetric: SessionSymmetric,
  hashAlg: number,
  key: Uint8Array,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
  data: Uint8Array,
): Uint8Array {
  if (symmetric.algorithm === TPM_ALG.XOR) return xorObfuscate(hashAlg, key, nonceNewer, nonceOlder, data);
  const k = cfbKeyAndIv(symmetric, hashAlg, key, nonceNewer, nonceOlder);
  return aesCfbEncrypt(k.key, k.iv, data);
}

/** The inverse of encryptParameter with the same nonces. */
export function decryptParameter(
  symmetric: SessionSymmetric,
  hashAlg: number,
  key: Uint8Array,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
  data: Uint8Array,
): Uint8Array {
  if (symmetric.algorithm === TPM_ALG.XOR) return xorObfuscate(hashAlg, key, nonceNewer, nonceOlder, data);
  const k = cfbKeyAndIv(symmetric, hashAlg, key, nonceNewer, nonceOlder);
  return aesCfbDecrypt(k.key, k.iv, data);
}
