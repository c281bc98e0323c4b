/**
 * Making an object from a template (Part 1 §27): its sensitive part, its unique field and its
 * Name. A primary object is derived from its hierarchy's seed, so the same template under the
 * same seed gives the same key every time (that is how an EK matches its certificate); an
 * ordinary object (TPM2_Create) draws the same values from the RNG instead.
 */
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_RC } from '../constants.js';
import { eccPrivateFromBits, eccPrivateInputBits, eccPublicPoint, hash, hmac, kdfa, rsaGenerateKey, type RsaCache } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { objectName, TPMA_OBJECT, type TPMS_RSA_PARMS, type TPMT_PUBLIC } from '../marshal/objects.js';
import { inherited, type KeyObject } from '../state/objects.js';
import { trimTrailingZeros } from '../state/auth-value.js';

const u32 = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);

/** A source of secret bits: KDFa for a primary (one label per secret), the RNG otherwise. */
export type Draw = (label: string, bits: number) => Uint8Array;

/** An RSA key as generation leaves it: the modulus and the first prime (TPMT_SENSITIVE's). */
type RsaKeyParts = { n: Uint8Array; p: Uint8Array };

/**
 * Part 1 §27.7 / the reference's CryptComputeSymmetricUnique: a parent's unique is an HMAC
 * keyed with its seed (so it reveals nothing about the seed), anything else a plain digest.
 */
export function symmetricUnique(publicArea: TPMT_PUBLIC, seedValue: Uint8Array, sensitive: Uint8Array): Uint8Array {
  const a = publicArea.objectAttributes;
  if ((a & TPMA_OBJECT.restricted) !== 0 && (a & TPMA_OBJECT.decrypt) !== 0) return hmac(publicArea.nameAlg, seedValue, sensitive);
  return hash(publicArea.nameAlg, seedValue, sensitive);
}

/**
 * Part 1 §16.6 qualified Name: nameAlg || H_nameAlg(parent's QN || Name); a primary's parent QN is
 * its hierarchy handle.
 */
export function qualifiedNameOf(nameAlg: number, parentQualifiedName: Uint8Array, name: Uint8Array): Uint8Array {
  const digest = hash(nameAlg, parentQualifiedName, name);
  const qn = new Uint8Array(2 + digest.length);
  qn[0] = nameAlg >> 8;
  qn[1] = nameAlg & 0xff;
  qn.set(digest, 2);
  return qn;
}

/**
 * Makes the secret parts and the unique field of a new object (the reference's
 * CryptCreateObject). RCs (without position; the caller names the parameter): TPM_RC_KEY_SIZE
 * (supplied symmetric key of the wrong size), TPM_RC_SIZE (userAuth longer than the nameAlg
 * digest; supplied HMAC/XOR key longer than its hash's block), TPM_RC_RANGE (RSA exponent not a
 * prime ≥ 65537). `rsaMemo` may answer an RSA key generation from a cache.
 */
export function generateObject(
  template: TPMT_PUBLIC,
  inSensitive: { userAuth: Uint8Array; data: Uint8Array },
  draw: Draw,
  hierarchy: number,
  rsaMemo?: (make: () => RsaKeyParts) => RsaKeyParts,
): Omit<KeyObject, 'qualifiedName'> {
  const nameAlg = template.nameAlg;
  const digestBits = hashInfo(nameAlg)!.digestSize * 8;
  const a = template.objectAttributes;
  const fromTpm = (a & TPMA_OBJECT.sensitiveDataOrigin) !== 0;
  const data = fromTpm ? new Uint8Array(0) : inSensitive.data;
  const auth = trimTrailingZeros(inSensitive.userAuth).slice();
  if (auth.length > digestBits / 8) throw new TpmError(TPM_RC.SIZE);

  let sensitive: Uint8Array;
  let unique: TPMT_PUBLIC['unique'];
  let seedValue: Uint8Array;
  switch (template.type) {
    case TPM_ALG.RSA: {
      const parms = template.parameters as TPMS_RSA_PARMS;
      const make = () => rsaGenerateKey(parms.keyBits, parms.exponent, (bits) => draw('RSA', bits));
      const key = rsaMemo ? rsaMemo(make) : make();
      sensitive = key.p;
      unique = key.n;
      seedValue = (a & TPMA_OBJECT.restricted) !== 0 && (a & TPMA_OBJECT.sign) === 0 ? draw('SEED', digestBits) : new Uint8Array(0);
      break;
    }
    case TPM_ALG.ECC: {
      const curve = (template.parameters as { curveID: number }).curveID;
      sensitive = eccPrivateFromBits(curve, draw('ECC', eccPrivateInputBits(curve)));
      unique = eccPublicPoint(curve, sensitive);
      // Only a parent keeps a seed: it protects the parent's children.
      seedValue = (a & TPMA_OBJECT.restricted) !== 0 && (a & TPMA_OBJECT.sign) === 0 ? draw('SEED', digestBits) : new Uint8Array(0);
      break;
    }
    case TPM_ALG.SYMCIPHER: {
      const keyBits = (template.parameters as { sym: { keyBits: number } }).sym.keyBits;
      sensitive = data.length ? data.slice() : draw('SYMCIPHER', keyBits);
      if (sensitive.length * 8 !== keyBits) throw new TpmError(TPM_RC.KEY_SIZE);
      seedValue = draw('SEED', digestBits);
      unique = symmetricUnique(template, seedValue, sensitive);
      break;
    }
    default: {
      // KEYEDHASH: an HMAC or XOR key the size of its hash, or the caller's (sealed) data.
      const scheme = (template.parameters as { scheme: { scheme: number; details: { hashAlg: number } | null } }).scheme;
      const keyHash = scheme.details?.hashAlg ?? nameAlg;
      if (data.length && (a & (TPMA_OBJECT.sign | TPMA_OBJECT.decrypt)) !== 0 && data.length > hashInfo(keyHash)!.blockSize) {
        throw new TpmError(TPM_RC.SIZE);
      }
      sensitive = data.length ? data.slice() : draw('KEYEDHASH', hashInfo(keyHash)!.digestSize * 8);
      seedValue = draw('SEED', digestBits);
      unique = symmetricUnique(template, seedValue, sensitive);
    }
  }
  const publicArea: TPMT_PUBLIC = { ...template, unique };
  return { kind: 'key', publicArea, name: objectName(publicArea), auth, sensitive, seedValue, hierarchy };
}

/**
 * Derives a primary object. The reference instantiates a DRBG from the seed, the template's
 * Name and inSensitive.data; vtpmd draws each secret with KDFa over the same three inputs and
 * a label per secret ("RSA", "ECC", "SYMCIPHER", "KEYEDHASH", "SEED"), which is equally
 * deterministic. An RSA key's prime candidates are KDFa blocks labelled "RSA" with a 32-bit
 * counter after inSensitive.data; `rsaCache` (the TPM's) remembers derived RSA keys, because
 * the prime search is the one slow step: a CreatePrimary of RSA-2048 takes p50 97 ms / p99
 * 272 ms uncached and 0.21 ms cached through the socket, with the two cores at load average 15
 * (swtpm: 108 / 325 ms, uncached always; README "Performance and memory").
 * RCs as generateObject's.
 */
export function derivePrimary(
  hierarchy: number,
  seed: Uint8Array,
  template: TPMT_PUBLIC,
  inSensitive: { userAuth: Uint8Array; data: Uint8Array },
  rsaCache?: RsaCache,
): KeyObject {
  const templateName = objectName(template);
  let rsaCounter = 0;
  const draw: Draw = (label, bits) => {
    if (label !== 'RSA') return kdfa(template.nameAlg, seed, label, templateName, inSensitive.data, bits);
    const context = new Uint8Array(inSensitive.data.length + 4);
    context.set(inSensitive.data);
    context.set(u32(++rsaCounter), inSensitive.data.length);
    return kdfa(template.nameAlg, seed, 'RSA', templateName, context, bits);
  };
  const memo = rsaCache ? (make: () => RsaKeyParts) => rsaCache.derive(seed, templateName, inSensitive.data, make) : undefined;
  const object = generateObject(template, inSensitive, draw, hierarchy, memo);
  return { ...object, qualifiedName: qualifiedNameOf(template.nameAlg, u32(hierarchy), object.name) };
}

/** An ordinary object under a loaded parent: every secret from the RNG. */
export function createOrdinary(
  parent: KeyObject,
  template: TPMT_PUBLIC,
  inSensitive: { userAuth: Uint8Array; data: Uint8Array },
  random: (n: number) => Uint8Array,
): KeyObject {
  const draw: Draw = (_label, bits) => {
    const out = random(Math.ceil(bits / 8));
    if (bits % 8) out[0]! &= (1 << (bits % 8)) - 1;
    return out;
  };
  const object = generateObject(template, inSensitive, draw, parent.hierarchy);
  return { ...object, qualifiedName: qualifiedNameOf(template.nameAlg, parent.qualifiedName, object.name), ...inherited(parent) };
}

/** Part 2 TPM_MAX_DERIVATION_BITS: how much a derivation parent's KDF may produce for one object. */
const MAX_DERIVATION_BITS = 8192;

/**
 * Part 1 §27.4 derived object: every secret comes, in the order the reference draws them, from
 * one KDFa stream keyed with the derivation parent's secret, labelled and contextualised by the
 * caller (SP 800-108 counter mode with the parent's XOR hash), so the same parent, label and
 * context give the same key again.
 */
export function deriveObject(
  parent: KeyObject,
  template: TPMT_PUBLIC,
  userAuth: Uint8Array,
  label: Uint8Array,
  context: Uint8Array,
): KeyObject {
  const xor = (parent.publicArea.parameters as { scheme: { details: { hashAlg: number } } }).scheme.details;
  const stream = kdfa(xor.hashAlg, parent.sensitive, label, context, new Uint8Array(0), MAX_DERIVATION_BITS);
  let at = 0;
  const draw: Draw = (_label, bits) => {
    const n = Math.ceil(bits / 8);
    if (at + n > stream.length) throw new TpmError(TPM_RC.NO_RESULT);
    const out = stream.slice(at, at + n);
    at += n;
    if (bits % 8) out[0]! &= (1 << (bits % 8)) - 1;
    return out;
  };
  const object = generateObject(template, { userAuth, data: new Uint8Array(0) }, draw, parent.hierarchy);
  return { ...object, qualifiedName: qualifiedNameOf(template.nameAlg, parent.qualifiedName, object.name), ...inherited(parent) };
}
