/**
 * Part 1 §23.3 and §24: the blobs that carry secrets between TPMs, laid out as the reference
 * builds them (Object_spt.c).
 *
 * Credential (TPM2B_ID_OBJECT), an outer wrap under the EK's protector keyed by the shared seed:
 *   TPM2B_DIGEST integrity || AES-CFB(symKey, 0, TPM2B_DIGEST credential)
 *
 * Duplicate (TPM2B_PRIVATE), either wrap optional:
 *   outer: TPM2B_DIGEST HMAC || AES-CFB(symKey from seed, 0, inner or plain)
 *   inner: AES-CFB(encryptionKey, 0, TPM2B_DIGEST H_nameAlg(plain || Name) || plain)
 *   plain: UINT16 size || TPMT_SENSITIVE
 * where symKey and the HMAC key come from KDFa(newParent nameAlg, seed, "STORAGE"/"INTEGRITY")
 * with the object's Name, and the inner hash is the object's own nameAlg.
 */
import { TPM_RC } from '../constants.js';
import { concatBytes } from '../crypto/bytes.js';
import { aesCfbDecrypt, aesCfbEncrypt, constantTimeEqual, hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { encode } from '../marshal/codec.js';
import { Reader } from '../marshal/reader.js';
import { TPMT_SENSITIVE } from '../marshal/sensitive.js';
import { TPM2B_DIGEST } from '../marshal/structures.js';
import { marshalSensitive, padAuth, produceOuterWrap, unwrapOuter, ZERO_IV, type Protector } from './object-private.js';

/** SecretToCredential: the credential wrapped under the key's protector and the shared seed. */
export function secretToCredential(credential: Uint8Array, name: Uint8Array, p: Protector): Uint8Array {
  return produceOuterWrap(p, name, encode(TPM2B_DIGEST, credential));
}

/**
 * CredentialToSecret: RCs without a position: those of unwrapOuter (TPM_RC_INTEGRITY above
 * all), unmarshalling codes of the credential, TPM_RC_SIZE (bytes after it).
 */
export function credentialToSecret(blob: Uint8Array, name: Uint8Array, p: Protector): Uint8Array {
  const r = new Reader(unwrapOuter(p, name, blob, false));
  const credential = TPM2B_DIGEST.read(r);
  if (r.remaining !== 0) throw new TpmError(TPM_RC.SIZE);
  return credential;
}

/** What wraps a duplicate: the outer protector (a seed shared with the new parent) and the inner key. */
export interface DuplicateWraps {
  readonly outer: Protector | null;
  /** The inner wrapper's AES key (its size gives AES-128 or AES-256), or null for none. */
  readonly innerKey: Uint8Array | null;
}

/** SensitiveToDuplicate: the object's sensitive area in the wraps asked for; nameAlg is the object's. */
export function sensitiveToDuplicate(sensitive: TPMT_SENSITIVE, name: Uint8Array, nameAlg: number, wraps: DuplicateWraps): Uint8Array {
  let data = marshalSensitive(padAuth(sensitive, nameAlg));
  if (wraps.innerKey) {
    const withIntegrity = concatBytes(encode(TPM2B_DIGEST, hash(nameAlg, data, name)), data);
    data.fill(0);
    data = aesCfbEncrypt(wraps.innerKey, ZERO_IV, withIntegrity);
    withIntegrity.fill(0);
  }
  return wraps.outer ? produceOuterWrap(wraps.outer, name, data) : data;
}

/**
 * DuplicateToSensitive: RCs without a position (the caller names duplicate): those of
 * unwrapOuter, TPM_RC_INTEGRITY (the inner hash does not match: a wrong encryptionKey, Name or
 * any changed byte), unmarshalling codes, TPM_RC_SIZE (the size field disagrees, or bytes
 * follow the sensitive area).
 */
export function duplicateToSensitive(blob: Uint8Array, name: Uint8Array, nameAlg: number, wraps: DuplicateWraps): TPMT_SENSITIVE {
  let data = wraps.outer ? unwrapOuter(wraps.outer, name, blob, false) : blob;
  if (wraps.innerKey) {
    const plain = aesCfbDecrypt(wraps.innerKey, ZERO_IV, data);
    const r = new Reader(plain);
    const integrity = TPM2B_DIGEST.read(r);
    data = plain.subarray(r.pos);
    if (!constantTimeEqual(hash(nameAlg, data, name), integrity)) throw new TpmError(TPM_RC.INTEGRITY);
  }
  const r = new Reader(data);
  const size = r.u16();
  if (size + 2 !== data.length) throw new TpmError(TPM_RC.SIZE);
  const sensitive = TPMT_SENSITIVE.read(r);
  if (r.remaining !== 0) throw new TpmError(TPM_RC.SIZE);
  return sensitive;
}

/** The inner key size a symmetric definition asks for, in bytes ((keyBits + 7) / 8). */
export const innerKeyBytes = (keyBits: number): number => (keyBits + 7) >> 3;

