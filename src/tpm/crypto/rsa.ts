/**
 * RSA (Part 1 §C.7, RFC 8017): deterministic key generation for primary keys, encryption
 * (RSAES-PKCS1-v1_5, RSAES-OAEP, raw) and signature primitives (RSASSA-PKCS1-v1_5, RSASSA-PSS).
 *
 * The modular exponentiations run in OpenSSL through node:crypto: a private key is imported as
 * a JWK (CRT form) and used with RSA_NO_PADDING, a public operation the same way. Paddings are
 * encoded and checked here, as the reference implementation does, so that a malformed block is
 * the spec's TPM_RC_VALUE and never a library exception (and PKCS#1 v1.5 decryption does not
 * depend on the library's own, version-dependent, policy for it).
 *
 * Prime search (FIPS 186-5 §A.1.3 in spirit, with a deterministic bit source): a candidate is
 * drawn from the caller's KDF stream, its top two bits and low bit set; a window of odd numbers
 * from it is sieved by the odd primes below 2^16 (and by p ≡ 1 mod e), and the survivors get
 * Miller-Rabin rounds whose modular exponentiation is OpenSSL's (about 0.4 ms each for a
 * 1024-bit prime, some 80 per RSA-2048 key: that is nearly all the time). Measured on the
 * two-core development machine over 50 seeds: RSA-2048 p50 48 ms, p99 163 ms at load average
 * 2.6; p50 79 ms, p99 668 ms at load average 14 (other test runs); RSA-1024 p50 30 ms.
 */
import * as nodeCrypto from 'node:crypto';
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { view } from './bytes.js';
import { constantTimeEqual } from './compare.js';
import { hash } from './hash.js';
import { mgf1 } from './kdf.js';

/** Part 2 §12.2.3.5: exponent 0 in TPMS_RSA_PARMS means 2^16 + 1. */
export const RSA_DEFAULT_EXPONENT = 65537;

/** An RSA public key: the modulus (TPM2B_PUBLIC_KEY_RSA) and TPMS_RSA_PARMS.exponent. */
export interface RsaPublicKey {
  readonly n: Uint8Array;
  /** As in the template: 0 stands for 65537. */
  readonly exponent: number;
}

/** An RSA private key as a TPM object keeps it (TPM2B_PRIVATE_KEY_RSA): one prime factor of n. */
export interface RsaPrivateKey extends RsaPublicKey {
  readonly p: Uint8Array;
}

/** An encryption scheme (TPMT_RSA_DECRYPT): RSAES, OAEP with its hash, or NULL (raw). */
export interface RsaDecryptScheme {
  readonly scheme: number;
  readonly hashAlg?: number;
}

const toBig = (b: Uint8Array): bigint => (b.length ? BigInt(`0x${Buffer.from(b).toString('hex')}`) : 0n);
function toBytes(v: bigint, length: number): Uint8Array {
  const hex = v.toString(16);
  if (hex.length > length * 2) throw new RangeError('integer does not fit');
  return view(Buffer.from(hex.padStart(length * 2, '0'), 'hex'));
}
const b64url = (v: bigint): string => {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, 'hex').toString('base64url');
};

function publicExponent(exponent: number): number {
  return exponent === 0 ? RSA_DEFAULT_EXPONENT : exponent;
}

/**
 * Part 3 §12.1 / the reference's key generation: a non-default exponent must be a prime of at
 * least 65537, else TPM_RC_RANGE.
 */
export function rsaCheckExponent(exponent: number): void {
  if (exponent === 0) return;
  if (exponent < RSA_DEFAULT_EXPONENT || !nodeCrypto.checkPrimeSync(BigInt(exponent))) throw new TpmError(TPM_RC.RANGE);
}

// ---------------------------------------------------------------------------------------------
// Key generation

/** The odd primes below 2^16: the sieve. */
const SMALL_PRIMES: Uint32Array = (() => {
  const limit = 1 << 16;
  const composite = new Uint8Array(limit);
  const out: number[] = [];
  for (let i = 3; i < limit; i += 2) {
    if (composite[i]) continue;
    out.push(i);
    for (let j = i * i; j < limit; j += 2 * i) composite[j] = 1;
  }
  return Uint32Array.from(out);
})();

/** Odd offsets sieved per window (2 * SIEVE_WINDOW numbers); a 1024-bit prime is on average 355 odd numbers away. */
const SIEVE_WINDOW = 2048;

/**
 * The sieve primes grouped into products below 2^53: one bigint division per group, then
 * Number arithmetic per prime (a tenth of the cost of a division per prime).
 */
const PRIME_GROUPS: readonly { readonly product: bigint; readonly primes: readonly number[] }[] = (() => {
  const out: { product: bigint; primes: number[] }[] = [];
  let primes: number[] = [];
  let product = 1;
  for (const m of SMALL_PRIMES) {
    if (product * m > Number.MAX_SAFE_INTEGER) {
      out.push({ product: BigInt(product), primes });
      primes = [];
      product = 1;
    }
    primes.push(m);
    product *= m;
  }
  out.push({ product: BigInt(product), primes });
  return out;
})();

/** base^exp mod m with OpenSSL: an RSA public operation whose "public exponent" is exp. */
function modPowNative(base: bigint, exp: bigint, m: bigint, bytes: number): bigint {
  const key = nodeCrypto.createPublicKey({ key: { kty: 'RSA', n: b64url(m), e: b64url(exp) }, format: 'jwk' });
  const out = nodeCrypto.publicEncrypt({ key, padding: nodeCrypto.constants.RSA_NO_PADDING }, toBytes(base, bytes));
  return toBig(out);
}

/**
 * Miller-Rabin rounds (FIPS 186-5 §B.3.1) with base 2 first (it rejects almost every composite
 * the sieve lets through) and then bases derived from the candidate, so the outcome is a
 * function of the candidate alone.
 */
function isProbablePrime(w: bigint, bytes: number, rounds: number): boolean {
  const w1 = w - 1n;
  let s = 0n;
  let d = w1;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  const wBytes = toBytes(w, bytes);
  for (let i = 0; i < rounds; i++) {
    let base = 2n;
    if (i > 0) {
      const h = nodeCrypto.createHash('sha512').update(wBytes).update(new Uint8Array([i])).digest();
      base = (toBig(view(h)) % (w - 3n)) + 2n;
    }
    let z = modPowNative(base, d, w, bytes);
    if (z === 1n || z === w1) continue;
    let composite = true;
    for (let j = 1n; j < s; j++) {
      z = (z * z) % w;
      if (z === w1) {
        composite = false;
        break;
      }
      if (z === 1n) break;
    }
    if (composite) return false;
  }
  return true;
}

/** FIPS 186-5 Table B.1: Miller-Rabin rounds for a 2^-100 error probability, by prime size. */
function mrRounds(bits: number): number {
  return bits <= 512 ? 7 : bits <= 1024 ? 5 : 4;
}

/** The next prime at or after a candidate drawn from `draw`, coprime to e - 1 as RSA needs. */
function findPrime(bits: number, e: number, draw: (bits: number) => Uint8Array): bigint {
  const bytes = bits / 8;
  const top = 3n << BigInt(bits - 2);
  const limit = 1n << BigInt(bits);
  const marks = new Uint8Array(SIEVE_WINDOW);
  for (;;) {
    let start = toBig(draw(bits)) | top | 1n;
    // Windows until a prime or the top of the range; then a fresh candidate.
    while (start + BigInt(2 * SIEVE_WINDOW) < limit) {
      marks.fill(0);
      // start + 2k ≡ 0 (mod m), or ≡ 1 (mod e): k ≡ -r / 2 (resp. (1 - r) / 2) mod m.
      const strike = (m: number, target: number) => {
        for (let k = target % 2 === 0 ? target / 2 : (target + m) / 2; k < SIEVE_WINDOW; k += m) marks[k] = 1;
      };
      for (const group of PRIME_GROUPS) {
        const r = Number(start % group.product);
        for (const m of group.primes) strike(m, (m - (r % m)) % m);
      }
      strike(e, (1 - Number(start % BigInt(e)) + e) % e);
      for (let k = 0; k < SIEVE_WINDOW; k++) {
        if (marks[k]) continue;
        const c = start + BigInt(2 * k);
        if (isProbablePrime(c, bytes, mrRounds(bits))) return c;
      }
      start += BigInt(2 * SIEVE_WINDOW);
    }
  }
}

/** (a^-1 mod m) for coprime a, m by the extended Euclidean algorithm. */
function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [a % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError('not invertible');
  return ((s0 % m) + m) % m;
}

/**
 * Derives an RSA key of `keyBits` from a deterministic bit source (for a primary key: KDFa over
 * the hierarchy seed, the template's Name and inSensitive.data). The same source gives the same
 * key. Returns the modulus and the first prime (what TPMT_SENSITIVE keeps); the primes differ in
 * their top 100 bits (FIPS 186-5 §A.1.3 step 5.4: |p - q| > 2^(nlen/2 - 100)).
 * RCs: TPM_RC_RANGE (exponent), TPM_RC_VALUE (key size not a multiple of 1024).
 */
export function rsaGenerateKey(keyBits: number, exponent: number, draw: (bits: number) => Uint8Array): { n: Uint8Array; p: Uint8Array } {
  rsaCheckExponent(exponent);
  if (keyBits === 0 || keyBits % 1024 !== 0) throw new TpmError(TPM_RC.VALUE);
  const e = publicExponent(exponent);
  const half = keyBits / 2;
  const minDistance = 1n << BigInt(half - 100);
  const p = findPrime(half, e, draw);
  for (;;) {
    const q = findPrime(half, e, draw);
    const diff = p > q ? p - q : q - p;
    if (diff <= minDistance) continue;
    const n = p * q;
    return { n: toBytes(n, keyBits / 8), p: toBytes(p, half / 8) };
  }
}

// ---------------------------------------------------------------------------------------------
// Key objects

/** d ≡ e^-1 (mod m) for a small e: d = (1 + k·m) / e with k = -m^-1 mod e, in Number arithmetic. */
function inverseOfSmall(e: number, m: bigint): bigint {
  const mModE = Number(m % BigInt(e));
  // m^-1 mod e by extended Euclid on Numbers (e < 2^32).
  let [r0, r1, s0, s1] = [mModE, e, 1, 0];
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1) throw new RangeError('not invertible');
  const inv = ((s0 % e) + e) % e;
  const k = BigInt((e - inv) % e);
  return (1n + k * m) / BigInt(e);
}

function importPrivate(key: RsaPrivateKey): nodeCrypto.KeyObject {
  const n = toBig(key.n);
  const p = toBig(key.p);
  const q = n / p;
  // Part 1 §C.7 / the reference's CryptRsaLoadPrivateExponent: the key is bound to its public
  // part only if p divides n.
  if (p <= 1n || q * p !== n) throw new TpmError(TPM_RC.BINDING);
  const e = publicExponent(key.exponent);
  const jwk = {
    kty: 'RSA',
    n: b64url(n),
    e: b64url(BigInt(e)),
    d: b64url(inverseOfSmall(e, (p - 1n) * (q - 1n))),
    p: b64url(p),
    q: b64url(q),
    dp: b64url(inverseOfSmall(e, p - 1n)),
    dq: b64url(inverseOfSmall(e, q - 1n)),
    qi: b64url(modInverse(q, p)),
  };
  return nodeCrypto.createPrivateKey({ key: jwk, format: 'jwk' });
}

/**
 * What RSA keys cost to make, kept per TPM: derived primaries (keyed by a digest of the
 * hierarchy seed, the template's Name and inSensitive.data, so a repeated CreatePrimary skips
 * the prime search) and imported private keys (keyed by modulus). Both bounded, least recently
 * used first out.
 */
export class RsaCache {
  private readonly derived = new Map<string, { n: Uint8Array; p: Uint8Array }>();
  private readonly privateKeys = new Map<string, nodeCrypto.KeyObject>();

  constructor(private readonly limit = 16) {}

  /** A derived key for (seed, templateName, data), made by `make` on a miss. */
  derive(seed: Uint8Array, templateName: Uint8Array, data: Uint8Array, make: () => { n: Uint8Array; p: Uint8Array }): { n: Uint8Array; p: Uint8Array } {
    const h = nodeCrypto.createHash('sha256');
    for (const part of [seed, templateName, data]) h.update(new Uint8Array([part.length >> 8, part.length & 0xff])).update(part);
    const id = h.digest('hex');
    const hit = this.derived.get(id);
    if (hit) {
      this.derived.delete(id);
      this.derived.set(id, hit);
      return { n: hit.n.slice(), p: hit.p.slice() };
    }
    const made = make();
    remember(this.derived, id, { n: made.n.slice(), p: made.p.slice() }, this.limit);
    return made;
  }

  /** The node:crypto private key of an RSA key object. */
  privateKey(key: RsaPrivateKey): nodeCrypto.KeyObject {
    // The prime is part of the key: the same modulus with another prime is another (broken) object.
    const id = `${Buffer.from(key.n).toString('hex')}:${Buffer.from(key.p).toString('hex')}:${key.exponent}`;
    const hit = this.privateKeys.get(id);
    if (hit) return hit;
    const made = importPrivate(key);
    remember(this.privateKeys, id, made, this.limit);
    return made;
  }

  clear(): void {
    this.derived.clear();
    this.privateKeys.clear();
  }
}

function remember<V>(map: Map<string, V>, id: string, value: V, limit: number): void {
  map.delete(id);
  map.set(id, value);
  while (map.size > limit) map.delete(map.keys().next().value as string);
}

// ---------------------------------------------------------------------------------------------
// Raw operations (RFC 8017 §5.1, §5.2)

function publicKeyOf(key: RsaPublicKey): nodeCrypto.KeyObject {
  return nodeCrypto.createPublicKey({
    key: { kty: 'RSA', n: Buffer.from(key.n).toString('base64url'), e: b64url(BigInt(publicExponent(key.exponent))) },
    format: 'jwk',
  });
}

/** RSAEP: m^e mod n on a block the size of the modulus. TPM_RC_VALUE when m ≥ n. */
function rsaep(key: RsaPublicKey, block: Uint8Array): Uint8Array {
  if (toBig(block) >= toBig(key.n)) throw new TpmError(TPM_RC.VALUE);
  return view(nodeCrypto.publicEncrypt({ key: publicKeyOf(key), padding: nodeCrypto.constants.RSA_NO_PADDING }, block));
}

/** RSADP: c^d mod n. TPM_RC_SIZE when c ≥ n (the reference's RSADP). */
function rsadp(key: RsaPrivateKey, block: Uint8Array, cache?: RsaCache): Uint8Array {
  if (toBig(block) >= toBig(key.n)) throw new TpmError(TPM_RC.SIZE);
  const privateKey = cache ? cache.privateKey(key) : importPrivate(key);
  return view(nodeCrypto.privateDecrypt({ key: privateKey, padding: nodeCrypto.constants.RSA_NO_PADDING }, block));
}

function digestSize(hashAlg: number | undefined): number {
  const info = hashAlg === undefined ? undefined : hashInfo(hashAlg);
  if (!info) throw new TpmError(TPM_RC.SCHEME);
  return info.digestSize;
}

// ---------------------------------------------------------------------------------------------
// Encryption (RFC 8017 §7)

/**
 * Encrypts `message` under the public key. The OAEP label is hashed exactly as given: Part 1
 * §C.7 wants it to end in a 0 byte, which the command checks (TPM2B label with its terminator).
 * RCs: TPM_RC_VALUE (message too long for the scheme and key, or ≥ n for raw), TPM_RC_SCHEME.
 */
export function rsaEncrypt(
  key: RsaPublicKey,
  scheme: RsaDecryptScheme,
  label: Uint8Array,
  message: Uint8Array,
  random: (n: number) => Uint8Array,
): Uint8Array {
  const k = key.n.length;
  const block = new Uint8Array(k);
  switch (scheme.scheme) {
    case TPM_ALG.NULL: {
      // A raw value may carry leading zeros beyond the modulus size.
      let i = 0;
      while (i < message.length && message[i] === 0) i++;
      if (message.length - i > k) throw new TpmError(TPM_RC.VALUE);
      block.set(message.subarray(i), k - (message.length - i));
      break;
    }
    case TPM_ALG.RSAES: {
      // EME-PKCS1-v1_5: 00 02 PS 00 M with PS at least 8 non-zero random bytes.
      if (message.length > k - 11) throw new TpmError(TPM_RC.VALUE);
      const ps = random(k - message.length - 3);
      for (let i = 0; i < ps.length; i++) if (ps[i] === 0) ps[i] = 0x55;
      block[1] = 2;
      block.set(ps, 2);
      block.set(message, k - message.length);
      break;
    }
    case TPM_ALG.OAEP: {
      const hLen = digestSize(scheme.hashAlg);
      if (message.length > k - 2 * hLen - 2) throw new TpmError(TPM_RC.VALUE);
      // EME-OAEP: 00 || maskedSeed || maskedDB, DB = lHash || PS || 01 || M.
      const db = new Uint8Array(k - hLen - 1);
      db.set(hash(scheme.hashAlg!, label));
      db[db.length - message.length - 1] = 1;
      db.set(message, db.length - message.length);
      const seed = random(hLen);
      const dbMask = mgf1(scheme.hashAlg!, seed, db.length);
      for (let i = 0; i < db.length; i++) db[i]! ^= dbMask[i]!;
      const seedMask = mgf1(scheme.hashAlg!, db, hLen);
      for (let i = 0; i < hLen; i++) seed[i]! ^= seedMask[i]!;
      block.set(seed, 1);
      block.set(db, 1 + hLen);
      break;
    }
    default:
      throw new TpmError(TPM_RC.SCHEME);
  }
  return rsaep(key, block);
}

/**
 * Decrypts a block the size of the modulus. RCs: TPM_RC_SIZE (wrong size, or ≥ n),
 * TPM_RC_VALUE (padding or label check failed), TPM_RC_SCHEME, TPM_RC_BINDING (p does not
 * divide n).
 */
export function rsaDecrypt(
  key: RsaPrivateKey,
  scheme: RsaDecryptScheme,
  label: Uint8Array,
  cipherText: Uint8Array,
  cache?: RsaCache,
): Uint8Array {
  const k = key.n.length;
  if (cipherText.length !== k) throw new TpmError(TPM_RC.SIZE);
  if (scheme.scheme !== TPM_ALG.NULL && scheme.scheme !== TPM_ALG.RSAES && scheme.scheme !== TPM_ALG.OAEP) {
    throw new TpmError(TPM_RC.SCHEME);
  }
  const em = rsadp(key, cipherText, cache);
  switch (scheme.scheme) {
    case TPM_ALG.NULL:
      return em;
    case TPM_ALG.RSAES: {
      let bad = k < 11 || em[0] !== 0 || em[1] !== 2;
      let sep = 2;
      while (sep < k && em[sep] !== 0) sep++;
      bad ||= sep >= k || sep - 2 < 8;
      if (bad) throw new TpmError(TPM_RC.VALUE);
      return em.slice(sep + 1);
    }
    default: {
      const hLen = digestSize(scheme.hashAlg);
      if (k < 2 * hLen + 2 || em[0] !== 0) throw new TpmError(TPM_RC.VALUE);
      const maskedSeed = em.subarray(1, 1 + hLen);
      const db = em.slice(1 + hLen);
      const seedMask = mgf1(scheme.hashAlg!, db, hLen);
      const seed = maskedSeed.map((b, i) => b ^ seedMask[i]!);
      const dbMask = mgf1(scheme.hashAlg!, seed, db.length);
      for (let i = 0; i < db.length; i++) db[i]! ^= dbMask[i]!;
      if (!constantTimeEqual(db.subarray(0, hLen), hash(scheme.hashAlg!, label))) throw new TpmError(TPM_RC.VALUE);
      let i = hLen;
      while (i < db.length && db[i] === 0) i++;
      if (i >= db.length || db[i] !== 1) throw new TpmError(TPM_RC.VALUE);
      return db.slice(i + 1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Signatures (RFC 8017 §8, §9)

/** RFC 8017 §9.2 note 1: the DER DigestInfo prefix per hash. */
const DIGEST_INFO_PREFIX = new Map<number, Uint8Array>([
  [TPM_ALG.SHA1, Uint8Array.from(Buffer.from('3021300906052b0e03021a05000414', 'hex'))],
  [TPM_ALG.SHA256, Uint8Array.from(Buffer.from('3031300d060960864801650304020105000420', 'hex'))],
  [TPM_ALG.SHA384, Uint8Array.from(Buffer.from('3041300d060960864801650304020205000430', 'hex'))],
  [TPM_ALG.SHA512, Uint8Array.from(Buffer.from('3051300d060960864801650304020305000440', 'hex'))],
]);

/** EMSA-PKCS1-v1_5 over a digest. TPM_RC_VALUE when the digest is not of hashAlg's size. */
function emsaPkcs1(hashAlg: number, digest: Uint8Array, k: number): Uint8Array {
  const prefix = DIGEST_INFO_PREFIX.get(hashAlg);
  if (!prefix) throw new TpmError(TPM_RC.SCHEME);
  if (digest.length !== digestSize(hashAlg)) throw new TpmError(TPM_RC.VALUE);
  const tLen = prefix.length + digest.length;
  if (k < tLen + 11) throw new TpmError(TPM_RC.SIZE);
  const em = new Uint8Array(k).fill(0xff);
  em[0] = 0;
  em[1] = 1;
  em[k - tLen - 1] = 0;
  em.set(prefix, k - tLen);
  em.set(digest, k - digest.length);
  return em;
}

/** RSASSA-PKCS1-v1_5 signature of a digest (the TPM signs digests, not messages). */
export function rsassaSign(key: RsaPrivateKey, hashAlg: number, digest: Uint8Array, cache?: RsaCache): Uint8Array {
  return rsadp(key, emsaPkcs1(hashAlg, digest, key.n.length), cache);
}

export function rsassaVerify(key: RsaPublicKey, hashAlg: number, digest: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== key.n.length || toBig(signature) >= toBig(key.n)) return false;
  let expected: Uint8Array;
  try {
    expected = emsaPkcs1(hashAlg, digest, key.n.length);
  } catch {
    return false;
  }
  return constantTimeEqual(rsaepUnchecked(key, signature), expected);
}

function rsaepUnchecked(key: RsaPublicKey, block: Uint8Array): Uint8Array {
  return view(nodeCrypto.publicEncrypt({ key: publicKeyOf(key), padding: nodeCrypto.constants.RSA_NO_PADDING }, block));
}

/**
 * The PSS salt length the TPM signs with: as long as the digest, or shorter if the modulus
 * leaves no room (the reference's CryptRsaPssSaltSize, FIPS 186-5 §5.4).
 */
export function rsaPssSaltSize(hashSize: number, keyBytes: number): number {
  return Math.max(0, Math.min(hashSize, keyBytes - hashSize - 2));
}

/** RSASSA-PSS signature of a digest with MGF1 over the same hash and the salt length above. */
export function rsapssSign(
  key: RsaPrivateKey,
  hashAlg: number,
  digest: Uint8Array,
  random: (n: number) => Uint8Array,
  cache?: RsaCache,
): Uint8Array {
  const hLen = digestSize(hashAlg);
  if (digest.length !== hLen) throw new TpmError(TPM_RC.VALUE);
  const k = key.n.length;
  const modBits = toBig(key.n).toString(2).length;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const sLen = rsaPssSaltSize(hLen, emLen);
  const salt = random(sLen);
  // EMSA-PSS-ENCODE (RFC 8017 §9.1.1).
  const h = hash(hashAlg, new Uint8Array(8), digest, salt);
  const db = new Uint8Array(emLen - hLen - 1);
  db[db.length - sLen - 1] = 1;
  db.set(salt, db.length - sLen);
  const mask = mgf1(hashAlg, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  const em = new Uint8Array(k);
  em.set(db, k - emLen);
  em.set(h, k - hLen - 1);
  em[k - 1] = 0xbc;
  return rsadp(key, em, cache);
}

/** RSASSA-PSS verification of a digest; any salt length is accepted (RFC 8017 §9.1.2). */
export function rsapssVerify(key: RsaPublicKey, hashAlg: number, digest: Uint8Array, signature: Uint8Array): boolean {
  const info = hashInfo(hashAlg);
  if (!info || digest.length !== info.digestSize) return false;
  if (signature.length !== key.n.length || toBig(signature) >= toBig(key.n)) return false;
  const hLen = info.digestSize;
  const k = key.n.length;
  const emBits = toBig(key.n).toString(2).length - 1;
  const emLen = Math.ceil(emBits / 8);
  const m = rsaepUnchecked(key, signature);
  if (k > emLen && m[0] !== 0) return false;
  const em = m.subarray(k - emLen);
  if (emLen < hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const db = em.slice(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if ((db[0]! & ~topMask) !== 0) return false;
  const mask = mgf1(hashAlg, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= topMask;
  let i = 0;
  while (i < db.length && db[i] === 0) i++;
  if (i >= db.length || db[i] !== 1) return false;
  const salt = db.subarray(i + 1);
  return constantTimeEqual(hash(hashAlg, new Uint8Array(8), digest, salt), h);
}
