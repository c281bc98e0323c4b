/**
 * ECC keys on the NIST curves (Part 1 §C.8): public points through node:crypto (OpenSSL, 60 µs
 * for P-256), curve orders from @noble/curves so they are not restated here.
 */
import * as nodeCrypto from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { eccCurveInfo } from '../algorithms.js';
import { TPM_ECC_CURVE, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { view } from './bytes.js';
import { hash } from './hash.js';

const ORDERS = new Map<number, bigint>([
  [TPM_ECC_CURVE.NIST_P256, p256.Point.Fn.ORDER],
  [TPM_ECC_CURVE.NIST_P384, p384.Point.Fn.ORDER],
  [TPM_ECC_CURVE.NIST_P521, p521.Point.Fn.ORDER],
]);

function curveOf(curve: number) {
  const info = eccCurveInfo(curve);
  const n = ORDERS.get(curve);
  if (!info || n === undefined) throw new TpmError(TPM_RC.CURVE);
  return { info, n };
}

const toBig = (b: Uint8Array): bigint => (b.length ? BigInt(`0x${Buffer.from(b).toString('hex')}`) : 0n);
function toBytes(v: bigint, length: number): Uint8Array {
  return view(Buffer.from(v.toString(16).padStart(length * 2, '0'), 'hex'));
}

/**
 * FIPS 186-5 §A.2.1 ("extra random bits"): a private scalar in [1, n-1] from at least
 * keyBits + 64 bits of KDF output, so the result is unbiased and deterministic in its input.
 */
export function eccPrivateFromBits(curve: number, c: Uint8Array): Uint8Array {
  const { info, n } = curveOf(curve);
  const d = (toBig(c) % (n - 1n)) + 1n;
  return toBytes(d, info.bytes);
}

/** Bits of KDF output eccPrivateFromBits needs for a curve. */
export function eccPrivateInputBits(curve: number): number {
  return curveOf(curve).info.keyBits + 64;
}

/** The public point d·G, each coordinate left-padded to the curve's byte size. */
export function eccPublicPoint(curve: number, d: Uint8Array): { x: Uint8Array; y: Uint8Array } {
  const { info } = curveOf(curve);
  const ecdh = nodeCrypto.createECDH(info.openssl);
  ecdh.setPrivateKey(d);
  const point = ecdh.getPublicKey(); // 0x04 || X || Y
  return { x: view(point.subarray(1, 1 + info.bytes)), y: view(point.subarray(1 + info.bytes)) };
}

const CURVES = new Map([
  [TPM_ECC_CURVE.NIST_P256, p256],
  [TPM_ECC_CURVE.NIST_P384, p384],
  [TPM_ECC_CURVE.NIST_P521, p521],
]);

/** Whether (x, y) is a point of the curve other than infinity (the reference's CryptEccIsPointOnCurve). */
export function eccIsPointOnCurve(curve: number, x: Uint8Array, y: Uint8Array): boolean {
  const c = CURVES.get(curve as 3 | 4 | 5);
  if (!c) return false;
  try {
    c.Point.fromAffine({ x: toBig(x), y: toBig(y) }).assertValidity();
    return true;
  } catch {
    return false;
  }
}

/** Whether d is a private scalar of the curve: 0 < d < n, no longer than the curve's size. */
export function eccIsValidPrivate(curve: number, d: Uint8Array): boolean {
  const { info, n } = curveOf(curve);
  if (d.length > info.bytes) return false;
  const v = toBig(d);
  return v > 0n && v < n;
}
/**
 * The x coordinate of d·Q (Part 1 §C.6.1 "Z", the ECDH shared secret), left-padded to the
 * curve's byte size. A point that is not on the curve is TPM_RC_ECC_POINT.
 */
export function eccSharedX(curve: number, d: Uint8Array, q: { x: Uint8Array; y: Uint8Array }): Uint8Array {
  const { info } = curveOf(curve);
  if (q.x.length > info.bytes || q.y.length > info.bytes) throw new TpmError(TPM_RC.ECC_POINT);
  const point = new Uint8Array(1 + 2 * info.bytes);
  point[0] = 0x04;
  point.set(q.x, 1 + info.bytes - q.x.length);
  point.set(q.y, 1 + 2 * info.bytes - q.y.length);
  const ecdh = nodeCrypto.createECDH(info.openssl);
  ecdh.setPrivateKey(d);
  try {
    return view(ecdh.computeSecret(point));
  } catch {
    throw new TpmError(TPM_RC.ECC_POINT);
  }
}

/** a⁻¹ mod m for a prime m (extended Euclid; a is not a multiple of m). */
function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/**
 * ECDSA (FIPS 186-5 §6.4) of a digest with the private scalar d: (r, s), each left-padded to the
 * curve's byte size. A digest longer than the order is truncated to its leftmost bits, as
 * ECDSA requires. The nonce k is drawn like a private key (keyBits + 64 random bits, §A.2.1),
 * as the reference draws it, and k·G is OpenSSL's (measured: 0.1 ms for P-256, where
 * @noble/curves' RFC 6979 signing takes 1.5 ms).
 */
export function ecdsaSign(curve: number, d: Uint8Array, digest: Uint8Array, random: (n: number) => Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const { info, n } = curveOf(curve);
  const orderBits = n.toString(2).length;
  let e = toBig(digest);
  if (digest.length * 8 > orderBits) e >>= BigInt(digest.length * 8 - orderBits);
  const dv = toBig(d);
  for (;;) {
    const k = eccNewKeyPair(curve, random);
    const kv = toBig(k.d);
    k.d.fill(0);
    const r = toBig(k.q.x) % n;
    if (r === 0n) continue;
    const s = (modInverse(kv, n) * ((e + r * dv) % n)) % n;
    if (s === 0n) continue;
    return { r: toBytes(r, info.bytes), s: toBytes(s, info.bytes) };
  }
}

/** Whether (r, s) is an ECDSA signature of the digest by the public point q (any s, high or low). */
export function ecdsaVerify(curve: number, q: { x: Uint8Array; y: Uint8Array }, digest: Uint8Array, r: Uint8Array, s: Uint8Array): boolean {
  const { info, n } = curveOf(curve);
  const c = CURVES.get(curve as 3 | 4 | 5)!;
  if (q.x.length > info.bytes || q.y.length > info.bytes || r.length > info.bytes || s.length > info.bytes) return false;
  const rv = toBig(r);
  const sv = toBig(s);
  if (rv <= 0n || rv >= n || sv <= 0n || sv >= n) return false;
  const point = new Uint8Array(1 + 2 * info.bytes);
  point[0] = 0x04;
  point.set(q.x, 1 + info.bytes - q.x.length);
  point.set(q.y, 1 + 2 * info.bytes - q.y.length);
  const sig = new Uint8Array(2 * info.bytes);
  sig.set(r, info.bytes - r.length);
  sig.set(s, 2 * info.bytes - s.length);
  try {
    return c.verify(sig, digest, point, { prehash: false, lowS: false, format: 'compact' });
  } catch {
    return false;
  }
}

/**
 * d·Q with both coordinates, each left-padded to the curve's byte size (the reference's
 * CryptEccPointMultiply): TPM_RC_ECC_POINT when Q is not a point of the curve, TPM_RC_NO_RESULT
 * when the product is the point at infinity.
 */
export function eccPointMultiply(curve: number, d: Uint8Array, q: { x: Uint8Array; y: Uint8Array }): { x: Uint8Array; y: Uint8Array } {
  const { info, n } = curveOf(curve);
  const c = CURVES.get(curve as 3 | 4 | 5)!;
  if (q.x.length > info.bytes || q.y.length > info.bytes || !eccIsPointOnCurve(curve, q.x, q.y)) throw new TpmError(TPM_RC.ECC_POINT);
  const k = toBig(d) % n;
  if (k === 0n) throw new TpmError(TPM_RC.NO_RESULT);
  const product = c.Point.fromAffine({ x: toBig(q.x), y: toBig(q.y) }).multiply(k);
  if (product.is0()) throw new TpmError(TPM_RC.NO_RESULT);
  const { x, y } = product.toAffine();
  return { x: toBytes(x, info.bytes), y: toBytes(y, info.bytes) };
}

/** A fresh key pair on the curve (the reference's CryptEccNewKeyPair): d from keyBits + 64 random bits. */
export function eccNewKeyPair(curve: number, random: (n: number) => Uint8Array): { d: Uint8Array; q: { x: Uint8Array; y: Uint8Array } } {
  const d = eccPrivateFromBits(curve, random(Math.ceil(eccPrivateInputBits(curve) / 8)));
  return { d, q: eccPublicPoint(curve, d) };
}

/**
 * The domain parameters of a curve (Part 2 §11.2.5.7 TPMS_ALGORITHM_DETAIL_ECC's numbers), as
 * libtpms reports them: p, n and h without leading zero bytes; a, b and the base point padded to
 * the size of p.
 */
export function eccCurveParameters(curve: number): { p: Uint8Array; a: Uint8Array; b: Uint8Array; gX: Uint8Array; gY: Uint8Array; n: Uint8Array; h: Uint8Array } {
  const { n } = curveOf(curve);
  const c = CURVES.get(curve as 3 | 4 | 5)!;
  const { p, a, b, Gx, Gy, h } = c.Point.CURVE();
  const minimal = (v: bigint) => toBytes(v, Math.ceil(v.toString(16).length / 2));
  const size = minimal(p).length;
  return {
    p: minimal(p),
    a: toBytes(a, size),
    b: toBytes(b, size),
    gX: toBytes(Gx, size),
    gY: toBytes(Gy, size),
    n: minimal(n),
    h: minimal(h),
  };
}

/** H(x || digest) cut to the byte length of the order: the reference's Schnorr challenge. */
function schnorrChallenge(hashAlg: number, bytes: number, x: Uint8Array, digest: Uint8Array): bigint {
  return toBig(hash(hashAlg, x, digest).subarray(0, bytes));
}

/**
 * EC-Schnorr as the TPM defines it (Part 1 §C.9.2 / the reference's BnSignEcSchnorr): a fresh
 * k with R = k·G, r = H(R.x || digest) cut to the order's byte length, s = k + (r mod n)·d
 * (mod n); both left-padded to that length. r itself is not reduced, as in the reference.
 */
export function ecSchnorrSign(curve: number, hashAlg: number, d: Uint8Array, digest: Uint8Array, random: (n: number) => Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const { info, n } = curveOf(curve);
  const dv = toBig(d);
  for (;;) {
    const k = eccNewKeyPair(curve, random);
    const r = schnorrChallenge(hashAlg, info.bytes, k.q.x, digest);
    const kv = toBig(k.d);
    k.d.fill(0);
    if (r % n === 0n) continue;
    const s = (kv + (r % n) * dv) % n;
    if (s === 0n) continue;
    return { r: toBytes(r, info.bytes), s: toBytes(s, info.bytes) };
  }
}

/**
 * Whether (r, s) is an EC-Schnorr signature of the digest by q (the reference's
 * BnValidateSignatureEcSchnorr): 0 < r, s < n and H(([s]G - [r]Q).x || digest), cut as in
 * signing, equals r.
 */
export function ecSchnorrVerify(curve: number, hashAlg: number, q: { x: Uint8Array; y: Uint8Array }, digest: Uint8Array, r: Uint8Array, s: Uint8Array): boolean {
  const { info, n } = curveOf(curve);
  const c = CURVES.get(curve as 3 | 4 | 5)!;
  const rv = toBig(r);
  const sv = toBig(s);
  if (rv <= 0n || rv >= n || sv <= 0n || sv >= n || !eccIsPointOnCurve(curve, q.x, q.y)) return false;
  const e = c.Point.BASE.multiply(sv).add(c.Point.fromAffine({ x: toBig(q.x), y: toBig(q.y) }).multiply(n - rv));
  if (e.is0()) return false;
  return schnorrChallenge(hashAlg, info.bytes, toBytes(e.toAffine().x, info.bytes), digest) === rv;
}
