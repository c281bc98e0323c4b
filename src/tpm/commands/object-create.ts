/**
 * Making an object from a template (Part 1 §27): its sensitive part, its unique field and its
 * Name. A primary object is derived from its hierarchy's seed, so the same template under the
 * same seed gives the same key every time (that is how an EK matches its certificate).
 */
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_RC } from '../constants.js';
import { eccPrivateFromBits, eccPrivateInputBits, eccPublicPoint, hash, kdfa, rsaGenerateKey, type RsaCache } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { objectName, TPMA_OBJECT, type TPMS_RSA_PARMS, type TPMT_PUBLIC } from '../marshal/objects.js';
import type { KeyObject } from '../state/objects.js';
import { trimTrailingZeros } from '../state/auth-value.js';

const u32 = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);

/**
 * Derives a primary object. The reference instantiates a DRBG from the seed, the template's
 * Name and inSensitive.data; vtpmd draws each secret with KDFa over the same three inputs and
 * a label per secret ("ECC", "SYMCIPHER", "KEYEDHASH", "SEED"), which is equally deterministic.
 * An RSA key's prime candidates are KDFa blocks labelled "RSA" with a 32-bit counter after
 * inSensitive.data; `rsaCache` (the TPM's) remembers derived RSA keys, because the prime search
 * is the one slow step: a CreatePrimary of RSA-2048 takes p50 97 ms / p99 272 ms uncached and
 * 0.21 ms cached through the socket, with the two cores at load average 15 (swtpm: 108 / 325 ms,
 * uncached always; README "Performance and memory").
 * RCs (without position; the caller names the parameter): TPM_RC_KEY_SIZE (supplied key of
 * the wrong size), TPM_RC_SIZE (userAuth longer than the nameAlg digest), TPM_RC_RANGE (RSA
 * exponent not a prime ≥ 65537).
 */
export function derivePrimary(
  hierarchy: number,
  seed: Uint8Array,
  template: TPMT_PUBLIC,
  inSensitive: { userAuth: Uint8Array; data: Uint8Array },
  rsaCache?: RsaCache,
): KeyObject {
  const nameAlg = template.nameAlg;
  const digestBits = hashInfo(nameAlg)!.digestSize * 8;
  const templateName = objectName(template);
  const derive = (label: string, bits: number): Uint8Array => kdfa(nameAlg, seed, label, templateName, inSensitive.data, bits);
  const a = template.objectAttributes;
  const fromTpm = (a & TPMA_OBJECT.sensitiveDataOrigin) !== 0;
  const storage = (a & TPMA_OBJECT.restricted) !== 0 && (a & TPMA_OBJECT.decrypt) !== 0;

  let sensitive: Uint8Array;
  let seedValue: Uint8Array = new Uint8Array(0);
  let unique: TPMT_PUBLIC['unique'];
  switch (template.type) {
    case TPM_ALG.RSA: {
      const parms = template.parameters as TPMS_RSA_PARMS;
      let counter = 0;
      const draw = (bits: number): Uint8Array => {
        const context = new Uint8Array(inSensitive.data.length + 4);
        context.set(inSensitive.data);
        context.set(u32(++counter), inSensitive.data.length);
        return kdfa(nameAlg, seed, 'RSA', templateName, context, bits);
      };
      const make = () => rsaGenerateKey(parms.keyBits, parms.exponent, draw);
      const key = rsaCache ? rsaCache.derive(seed, templateName, inSensitive.data, make) : make();
      sensitive = key.p;
      unique = key.n;
      if (storage) seedValue = derive('SEED', digestBits);
      break;
    }
    case TPM_ALG.ECC: {
      const curve = (template.parameters as { curveID: number }).curveID;
      sensitive = eccPrivateFromBits(curve, derive('ECC', eccPrivateInputBits(curve)));
      unique = eccPublicPoint(curve, sensitive);
      if (storage) seedValue = derive('SEED', digestBits);
      break;
    }
    case TPM_ALG.SYMCIPHER: {
      const keyBits = (template.parameters as { sym: { keyBits: number } }).sym.keyBits;
      sensitive = fromTpm ? derive('SYMCIPHER', keyBits) : inSensitive.data.slice();
      if (sensitive.length * 8 !== keyBits) throw new TpmError(TPM_RC.KEY_SIZE);
      seedValue = derive('SEED', digestBits);
      unique = hash(nameAlg, seedValue, sensitive);
      break;
    }
    default: {
      // KEYEDHASH: an HMAC key the size of the scheme's hash, or the caller's (sealed) data.
      const scheme = (template.parameters as { scheme: { scheme: number; details: { hashAlg: number } | null } }).scheme;
      const keyHash = scheme.details?.hashAlg ?? nameAlg;
      sensitive = fromTpm ? derive('KEYEDHASH', hashInfo(keyHash)!.digestSize * 8) : inSensitive.data.slice();
      seedValue = derive('SEED', digestBits);
      unique = hash(nameAlg, seedValue, sensitive);
    }
  }

  const auth = trimTrailingZeros(inSensitive.userAuth).slice();
  if (auth.length > digestBits / 8) throw new TpmError(TPM_RC.SIZE);
  const publicArea: TPMT_PUBLIC = { ...template, unique };
  const name = objectName(publicArea);
  // Part 1 §16.6: a primary's qualified name chains from its hierarchy's handle.
  const qnDigest = hash(nameAlg, u32(hierarchy), name);
  const qualifiedName = new Uint8Array(2 + qnDigest.length);
  qualifiedName.set(name.subarray(0, 2));
  qualifiedName.set(qnDigest, 2);
  return { kind: 'key', publicArea, name, qualifiedName, auth, sensitive, seedValue, hierarchy };
}
