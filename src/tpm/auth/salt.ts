/**
 * Part 1 §19.6.13 and Part 3 §11.1: recovering the salt of a salted session from
 * encryptedSalt with the private part of tpmKey. Every failure is TPM_RC_VALUE; the caller
 * names encryptedSalt (P2).
 */
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_RC } from '../constants.js';
import { eccSharedX, kdfe, rsaDecrypt, type RsaCache } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { TPMS_ECC_POINT, type TPMT_PUBLIC } from '../marshal/objects.js';
import { Reader } from '../marshal/reader.js';
import type { KeyObject } from '../state/objects.js';

/** The salt behind encryptedSalt; tpmKey is an asymmetric decryption key with its private part. */
export function recoverSalt(tpmKey: KeyObject, encryptedSalt: Uint8Array, rsaCache?: RsaCache): Uint8Array {
  switch (tpmKey.publicArea.type) {
    case TPM_ALG.ECC:
      return eccSalt(tpmKey, encryptedSalt);
    case TPM_ALG.RSA:
      return rsaSalt(tpmKey, encryptedSalt, rsaCache);
    default:
      throw new TpmError(TPM_RC.KEY);
  }
}

/**
 * Part 1 §C.6.4: encryptedSalt holds the caller's ephemeral point Qe (a TPMS_ECC_POINT);
 * salt = KDFe(nameAlg, x(d·Qe), "SECRET", x(Qe), x(Qs), bits of a nameAlg digest).
 */
function eccSalt(tpmKey: KeyObject, encryptedSalt: Uint8Array): Uint8Array {
  const publicArea = tpmKey.publicArea as TPMT_PUBLIC & {
    parameters: { curveID: number };
    unique: { x: Uint8Array; y: Uint8Array };
  };
  try {
    const qe = TPMS_ECC_POINT.read(new Reader(encryptedSalt));
    const z = eccSharedX(publicArea.parameters.curveID, tpmKey.sensitive, qe);
    const bits = hashInfo(publicArea.nameAlg)!.digestSize * 8;
    return kdfe(publicArea.nameAlg, z, 'SECRET', qe.x, publicArea.unique.x, bits);
  } catch (e) {
    if (e instanceof TpmError) throw new TpmError(TPM_RC.VALUE);
    throw e;
  }
}

/** The OAEP label of a secret shared with the TPM: "SECRET" with its terminating 0 (Part 1 §B.10.3). */
const SECRET_LABEL = new TextEncoder().encode('SECRET\0');

/**
 * Part 1 §B.10.3: an RSA tpmKey's salt is RSAES-OAEP with label "SECRET", hashed with the key's
 * nameAlg (as tpm2-tss and the reference's CryptSecretDecrypt use it). A ciphertext that does not
 * decrypt, or a salt longer than a nameAlg digest, is TPM_RC_VALUE.
 */
function rsaSalt(tpmKey: KeyObject, encryptedSalt: Uint8Array, rsaCache?: RsaCache): Uint8Array {
  const publicArea = tpmKey.publicArea as TPMT_PUBLIC & { parameters: { exponent: number }; unique: Uint8Array };
  let salt: Uint8Array;
  try {
    const key = { n: publicArea.unique, exponent: publicArea.parameters.exponent, p: tpmKey.sensitive };
    salt = rsaDecrypt(key, { scheme: TPM_ALG.OAEP, hashAlg: publicArea.nameAlg }, SECRET_LABEL, encryptedSalt, rsaCache);
  } catch (e) {
    if (e instanceof TpmError) throw new TpmError(TPM_RC.VALUE);
    throw e;
  }
  if (salt.length > hashInfo(publicArea.nameAlg)!.digestSize) throw new TpmError(TPM_RC.VALUE);
  return salt;
}
