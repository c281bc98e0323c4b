/**
 * Part 1 §24 (secret sharing) and Annex B.10/C.6: a seed shared with the holder of an asymmetric
 * decryption key, as the reference's CryptSecretEncrypt and CryptSecretDecrypt make and open it.
 * One mechanism serves three uses, told apart by the label: "SECRET" (the salt of a salted
 * session), "IDENTITY" (a credential's seed) and "DUPLICATE" (the seed of a duplication blob's
 * outer wrapper).
 *
 *   RSA: secret = RSAES-OAEP(nameAlg, label || 0x00)(seed), seed a fresh nameAlg-sized value
 *   ECC: secret = TPMS_ECC_POINT Qe (an ephemeral key), seed = KDFe(nameAlg, x(de·Qs), label,
 *        x(Qe), x(Qs), bits of a nameAlg digest)
 */
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_RC } from '../constants.js';
import {
  eccIsPointOnCurve, eccPrivateFromBits, eccPrivateInputBits, eccPublicPoint, eccSharedX, kdfe, rsaDecrypt, rsaEncrypt, type RsaCache,
} from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { encode } from '../marshal/codec.js';
import { TPMA_OBJECT, TPMS_ECC_POINT, type TPMT_PUBLIC } from '../marshal/objects.js';
import { Reader } from '../marshal/reader.js';
import type { KeyObject } from '../state/objects.js';

/** What a shared seed is for (Part 1 §24.4, Part 3 §12.6 and §13.1). */
export type SecretLabel = 'SECRET' | 'IDENTITY' | 'DUPLICATE';

type RsaArea = TPMT_PUBLIC & { parameters: { exponent: number; scheme: { scheme: number; details: { hashAlg?: number } | null } }; unique: Uint8Array };
type EccArea = TPMT_PUBLIC & { parameters: { curveID: number }; unique: { x: Uint8Array; y: Uint8Array } };

/** The OAEP label: the label's text with its terminating 0 (Part 1 §B.10.3). */
const oaepLabel = (label: SecretLabel): Uint8Array => new TextEncoder().encode(`${label}\0`);

const digestBytes = (alg: number): number => hashInfo(alg)!.digestSize;

/**
 * CryptSecretEncrypt: a fresh seed and the secret that carries it to `key` (only its public part
 * is used). RCs without a position: TPM_RC_ATTRIBUTES (not a decryption key), TPM_RC_KEY (an
 * ECC point off its curve), TPM_RC_VALUE (an RSA key too small for OAEP with its nameAlg),
 * TPM_RC_TYPE (neither RSA nor ECC).
 */
export function secretEncrypt(key: KeyObject, label: SecretLabel, random: (n: number) => Uint8Array): { seed: Uint8Array; secret: Uint8Array } {
  const area = key.publicArea;
  if ((area.objectAttributes & TPMA_OBJECT.decrypt) === 0) throw new TpmError(TPM_RC.ATTRIBUTES);
  const size = digestBytes(area.nameAlg);
  switch (area.type) {
    case TPM_ALG.RSA: {
      const rsa = area as RsaArea;
      const seed = random(size);
      const secret = rsaEncrypt({ n: rsa.unique, exponent: rsa.parameters.exponent }, { scheme: TPM_ALG.OAEP, hashAlg: area.nameAlg }, oaepLabel(label), seed, random);
      return { seed, secret };
    }
    case TPM_ALG.ECC: {
      const ecc = area as EccArea;
      const curve = ecc.parameters.curveID;
      if (!eccIsPointOnCurve(curve, ecc.unique.x, ecc.unique.y)) throw new TpmError(TPM_RC.KEY);
      const de = eccPrivateFromBits(curve, random(Math.ceil(eccPrivateInputBits(curve) / 8)));
      const qe = eccPublicPoint(curve, de);
      const z = eccSharedX(curve, de, ecc.unique);
      de.fill(0);
      const seed = kdfe(area.nameAlg, z, label, qe.x, ecc.unique.x, size * 8);
      return { seed, secret: encode(TPMS_ECC_POINT, qe) };
    }
    default:
      throw new TpmError(TPM_RC.TYPE);
  }
}

/**
 * CryptSecretDecrypt for an asymmetric key with its private part: the seed behind `secret`.
 * RCs without a position, as the reference returns them (callers add theirs): RSA:
 * TPM_RC_SCHEME (the key's scheme is neither NULL nor OAEP), TPM_RC_SIZE (not the modulus'
 * size, or ≥ n), TPM_RC_VALUE (padding or label wrong, or a seed longer than a digest);
 * ECC: unmarshalling codes of the point, TPM_RC_ECC_POINT (not on the curve); TPM_RC_KEY for
 * any other type.
 */
export function secretDecrypt(key: KeyObject, label: SecretLabel, secret: Uint8Array, rsaCache?: RsaCache): Uint8Array {
  const area = key.publicArea;
  switch (area.type) {
    case TPM_ALG.RSA: {
      const rsa = area as RsaArea;
      // A decryption key's own OAEP scheme is used; a NULL scheme means OAEP with nameAlg.
      const own = rsa.parameters.scheme;
      const scheme = own.scheme === TPM_ALG.NULL ? { scheme: TPM_ALG.OAEP, hashAlg: area.nameAlg } : { scheme: own.scheme, hashAlg: own.details?.hashAlg };
      const size = scheme.hashAlg === undefined ? undefined : hashInfo(scheme.hashAlg)?.digestSize;
      if (scheme.scheme !== TPM_ALG.OAEP || !size) throw new TpmError(TPM_RC.SCHEME);
      const key_ = { n: rsa.unique, exponent: rsa.parameters.exponent, p: key.sensitive };
      const seed = rsaDecrypt(key_, scheme, oaepLabel(label), secret, rsaCache);
      if (seed.length > size) throw new TpmError(TPM_RC.VALUE);
      return seed;
    }
    case TPM_ALG.ECC: {
      const ecc = area as EccArea;
      const qe = TPMS_ECC_POINT.read(new Reader(secret));
      const z = eccSharedX(ecc.parameters.curveID, key.sensitive, qe);
      return kdfe(area.nameAlg, z, label, qe.x, ecc.unique.x, digestBytes(area.nameAlg) * 8);
    }
    default:
      throw new TpmError(TPM_RC.KEY);
  }
}
