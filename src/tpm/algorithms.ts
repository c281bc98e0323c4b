/**
 * The hash algorithms this TPM implements, with the sizes Part 2 §11.1 (TPMU_HA) and the
 * crypto layer both need. The order is the order banks and lists are reported in.
 */
import { TPM_ALG, TPMA_ALGORITHM } from './constants.js';

export interface HashAlgInfo {
  readonly alg: number;
  readonly name: 'sha1' | 'sha256' | 'sha384' | 'sha512';
  readonly digestSize: number;
  readonly blockSize: number;
}

export const HASH_ALGS: readonly HashAlgInfo[] = [
  { alg: TPM_ALG.SHA1, name: 'sha1', digestSize: 20, blockSize: 64 },
  { alg: TPM_ALG.SHA256, name: 'sha256', digestSize: 32, blockSize: 64 },
  { alg: TPM_ALG.SHA384, name: 'sha384', digestSize: 48, blockSize: 128 },
  { alg: TPM_ALG.SHA512, name: 'sha512', digestSize: 64, blockSize: 128 },
];

const BY_ALG = new Map(HASH_ALGS.map((h) => [h.alg, h]));

export function hashInfo(alg: number): HashAlgInfo | undefined {
  return BY_ALG.get(alg);
}

export function isHashAlg(alg: number): boolean {
  return BY_ALG.has(alg);
}

/** Largest digest implemented: sizes TPM2B_DIGEST and TPMU_HA (Part 2 §10.4.2). */
export const MAX_DIGEST_SIZE = Math.max(...HASH_ALGS.map((h) => h.digestSize));

/**
 * Every algorithm this TPM implements with its TPMA_ALGORITHM (Part 2 §8.2), in ascending id
 * order as GetCapability(TPM_CAP_ALGS) reports them. A new algorithm is added here and
 * nowhere else. TPM_ALG_NULL is accepted where a type allows it but, as in libtpms, not listed.
 */
export const IMPLEMENTED_ALGS: readonly { readonly alg: number; readonly attributes: number }[] = [
  { alg: TPM_ALG.SHA1, attributes: TPMA_ALGORITHM.hash },
  { alg: TPM_ALG.HMAC, attributes: TPMA_ALGORITHM.hash | TPMA_ALGORITHM.signing },
  { alg: TPM_ALG.SHA256, attributes: TPMA_ALGORITHM.hash },
  { alg: TPM_ALG.SHA384, attributes: TPMA_ALGORITHM.hash },
  { alg: TPM_ALG.SHA512, attributes: TPMA_ALGORITHM.hash },
];

export function isImplementedAlg(alg: number): boolean {
  return IMPLEMENTED_ALGS.some((a) => a.alg === alg);
}

/** The largest implemented hash: integrity HMACs of tickets and contexts (Part 1 §14.5, libtpms). */
export const CONTEXT_INTEGRITY_HASH_ALG = HASH_ALGS.reduce((a, b) => (b.digestSize > a.digestSize ? b : a)).alg;
