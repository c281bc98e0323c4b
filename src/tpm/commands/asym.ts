/** Part 3 §14 Asymmetric Primitives: TPM2_RSA_Encrypt, TPM2_RSA_Decrypt. */
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC } from '../constants.js';
import { rsaDecrypt, rsaEncrypt, type RsaDecryptScheme } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { TPM2B_PUBLIC_KEY_RSA, TPMA_OBJECT, TPMT_RSA_DECRYPT, type TPMS_RSA_PARMS } from '../marshal/objects.js';
import { TPM2B_DATA } from '../marshal/structures.js';
import { TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import type { KeyObject } from '../state/objects.js';
import type { Tpm } from '../tpm.js';

type Scheme = { scheme: number; details: { hashAlg: number } | null };

/** The loaded RSA key at `handle`, else TPM_RC_KEY+H1. */
function rsaKey(tpm: Tpm, handle: number): { object: KeyObject; parms: TPMS_RSA_PARMS; attributes: number } {
  const object = tpm.object(handle);
  if (object?.kind !== 'key' || object.publicArea.type !== TPM_ALG.RSA) throw new TpmError(TPM_RC.KEY, { handle: 1 });
  return { object, parms: object.publicArea.parameters as TPMS_RSA_PARMS, attributes: object.publicArea.objectAttributes };
}

/**
 * Part 1 §C.7 / the reference's CryptRsaSelectScheme: the key's scheme unless it is NULL, the
 * command's when the key has none; both given must agree (scheme and hash), else
 * TPM_RC_SCHEME+P2. The result may be NULL: raw RSA.
 */
function selectScheme(keyScheme: Scheme, inScheme: Scheme): RsaDecryptScheme {
  let chosen: Scheme;
  if (keyScheme.scheme === TPM_ALG.NULL) chosen = inScheme;
  else if (inScheme.scheme === TPM_ALG.NULL) chosen = keyScheme;
  else if (keyScheme.scheme === inScheme.scheme && keyScheme.details?.hashAlg === inScheme.details?.hashAlg) chosen = inScheme;
  else throw new TpmError(TPM_RC.SCHEME, { param: 2 });
  return chosen.details ? { scheme: chosen.scheme, hashAlg: chosen.details.hashAlg } : { scheme: chosen.scheme };
}

/** Part 1 §C.7: an OAEP label is empty or a string with its terminating 0 (TPM_RC_VALUE+P3). */
function checkLabel(label: Uint8Array): void {
  if (label.length > 0 && label[label.length - 1] !== 0) throw new TpmError(TPM_RC.VALUE, { param: 3 });
}

/**
 * Part 3 §14.2 TPM2_RSA_Encrypt: the public-key operation, no authorization. RCs: TPM_RC_KEY+H1
 * (not an RSA key), TPM_RC_ATTRIBUTES+H1 (not a decrypt key), TPM_RC_VALUE+P3 (label not
 * 0-terminated), TPM_RC_SCHEME+P2 (schemes disagree), TPM_RC_VALUE (message too long, or ≥ n
 * for raw RSA; no position, as in the reference).
 */
export const RSA_Encrypt = command({
  code: TPM_CC.RSA_Encrypt,
  handles: [{ name: 'keyHandle', type: TPMI_DH_OBJECT }],
  params: { message: TPM2B_PUBLIC_KEY_RSA, inScheme: TPMT_RSA_DECRYPT, label: TPM2B_DATA },
  response: { outData: TPM2B_PUBLIC_KEY_RSA },
  run(tpm, { keyHandle }, { message, inScheme, label }) {
    const { object, parms, attributes } = rsaKey(tpm, keyHandle);
    if ((attributes & TPMA_OBJECT.decrypt) === 0) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    checkLabel(label);
    const scheme = selectScheme(parms.scheme, inScheme);
    const outData = rsaEncrypt({ n: object.publicArea.unique as Uint8Array, exponent: parms.exponent }, scheme, label, message, (n) => tpm.random(n));
    return { outData };
  },
});

/**
 * Part 3 §14.3 TPM2_RSA_Decrypt: the private-key operation, USER authorization. RCs:
 * TPM_RC_KEY+H1, TPM_RC_ATTRIBUTES+H1 (restricted, or not a decrypt key), TPM_RC_VALUE+P3,
 * TPM_RC_SCHEME+P2, TPM_RC_SIZE (cipherText not the size of the modulus, or ≥ n), TPM_RC_VALUE
 * (padding or label check failed).
 */
export const RSA_Decrypt = command({
  code: TPM_CC.RSA_Decrypt,
  handles: [{ name: 'keyHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { cipherText: TPM2B_PUBLIC_KEY_RSA, inScheme: TPMT_RSA_DECRYPT, label: TPM2B_DATA },
  response: { message: TPM2B_PUBLIC_KEY_RSA },
  run(tpm, { keyHandle }, { cipherText, inScheme, label }) {
    const { object, parms, attributes } = rsaKey(tpm, keyHandle);
    if ((attributes & TPMA_OBJECT.restricted) !== 0 || (attributes & TPMA_OBJECT.decrypt) === 0) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    checkLabel(label);
    const scheme = selectScheme(parms.scheme, inScheme);
    const rsaPrivate = { n: object.publicArea.unique as Uint8Array, exponent: parms.exponent, p: object.sensitive };
    return { message: rsaDecrypt(rsaPrivate, scheme, label, cipherText, tpm.rsaCache) };
  },
});
