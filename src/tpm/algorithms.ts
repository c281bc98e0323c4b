/**
 * The hash algorithms this TPM implements, with the sizes Part 2 §11.1 (TPMU_HA) and the
 * crypto layer both need. The order is the order banks and lists are reported in.
 */
import { TPM_ALG, TPM_ECC_CURVE, TPMA_ALGORITHM } from './constants.js';

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
  { alg: TPM_ALG.RSA, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.object },
  { alg: TPM_ALG.SHA1, attributes: TPMA_ALGORITHM.hash },
  { alg: TPM_ALG.HMAC, attributes: TPMA_ALGORITHM.hash | TPMA_ALGORITHM.signing },
  { alg: TPM_ALG.AES, attributes: TPMA_ALGORITHM.symmetric },
  { alg: TPM_ALG.KEYEDHASH, attributes: TPMA_ALGORITHM.hash | TPMA_ALGORITHM.object | TPMA_ALGORITHM.signing | TPMA_ALGORITHM.encrypting },
  { alg: TPM_ALG.XOR, attributes: TPMA_ALGORITHM.symmetric | TPMA_ALGORITHM.hash },
  { alg: TPM_ALG.SHA256, attributes: TPMA_ALGORITHM.hash },
  { alg: TPM_ALG.SHA384, attributes: TPMA_ALGORITHM.hash },
  { alg: TPM_ALG.SHA512, attributes: TPMA_ALGORITHM.hash },
  { alg: TPM_ALG.RSASSA, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.signing },
  { alg: TPM_ALG.RSAES, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.encrypting },
  { alg: TPM_ALG.RSAPSS, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.signing },
  { alg: TPM_ALG.OAEP, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.encrypting },
  { alg: TPM_ALG.ECDSA, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.signing },
  { alg: TPM_ALG.ECDH, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.method },
  { alg: TPM_ALG.ECSCHNORR, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.signing },
  { alg: TPM_ALG.KDF1_SP800_108, attributes: TPMA_ALGORITHM.hash | TPMA_ALGORITHM.method },
  { alg: TPM_ALG.ECC, attributes: TPMA_ALGORITHM.asymmetric | TPMA_ALGORITHM.object },
  { alg: TPM_ALG.SYMCIPHER, attributes: TPMA_ALGORITHM.object },
  { alg: TPM_ALG.CTR, attributes: TPMA_ALGORITHM.symmetric | TPMA_ALGORITHM.encrypting },
  { alg: TPM_ALG.OFB, attributes: TPMA_ALGORITHM.symmetric | TPMA_ALGORITHM.encrypting },
  { alg: TPM_ALG.CBC, attributes: TPMA_ALGORITHM.symmetric | TPMA_ALGORITHM.encrypting },
  { alg: TPM_ALG.CFB, attributes: TPMA_ALGORITHM.symmetric | TPMA_ALGORITHM.encrypting },
  { alg: TPM_ALG.ECB, attributes: TPMA_ALGORITHM.symmetric | TPMA_ALGORITHM.encrypting },
];

export function isImplementedAlg(alg: number): boolean {
  return IMPLEMENTED_ALGS.some((a) => a.alg === alg);
}

/** ECC curves with key support (Part 2 §6.4), with their key and coordinate sizes. */
export interface EccCurveInfo {
  readonly curve: number;
  readonly keyBits: number;
  readonly bytes: number;
  /** node:crypto / OpenSSL curve name. */
  readonly openssl: string;
  /** The named curve's OBJECT IDENTIFIER (RFC 5480 §2.1.1.1), for X.509 SubjectPublicKeyInfo. */
  readonly oid: string;
}

export const ECC_CURVES: readonly EccCurveInfo[] = [
  { curve: TPM_ECC_CURVE.NIST_P256, keyBits: 256, bytes: 32, openssl: 'prime256v1', oid: '1.2.840.10045.3.1.7' },
  { curve: TPM_ECC_CURVE.NIST_P384, keyBits: 384, bytes: 48, openssl: 'secp384r1', oid: '1.3.132.0.34' },
  { curve: TPM_ECC_CURVE.NIST_P521, keyBits: 521, bytes: 66, openssl: 'secp521r1', oid: '1.3.132.0.35' },
];

export function eccCurveInfo(curve: number): EccCurveInfo | undefined {
  return ECC_CURVES.find((c) => c.curve === curve);
}

/** Largest ECC coordinate: bounds TPM2B_ECC_PARAMETER (Part 2 §11.2.5.1). */
export const MAX_ECC_KEY_BYTES = Math.max(...ECC_CURVES.map((c) => c.bytes));

/** AES key sizes (TPMI_AES_KEY_BITS). */
export const AES_KEY_BITS: readonly number[] = [128, 256];

/** RSA key sizes (TPMI_RSA_KEY_BITS): those of libtpms 0.9. */
export const RSA_KEY_BITS: readonly number[] = [1024, 2048, 3072];

/** Largest RSA modulus: bounds TPM2B_PUBLIC_KEY_RSA (Part 2 §11.2.4.5). */
export const MAX_RSA_KEY_BYTES = Math.max(...RSA_KEY_BITS) / 8;

/** The largest implemented hash: integrity HMACs of tickets and contexts (Part 1 §14.5, libtpms). */
export const CONTEXT_INTEGRITY_HASH_ALG = HASH_ALGS.reduce((a, b) => (b.digestSize > a.digestSize ? b : a)).alg;
