/**
 * Part 3 §12.5 TPM2_ActivateCredential and §12.6 TPM2_MakeCredential: a credential sealed to an
 * object's Name and an EK-like key (asymmetric, restricted, decrypt), opened by the TPM that
 * holds both. Blob layout in exchange-blobs.ts; the seed travels as in auth/secret.ts with the
 * label "IDENTITY".
 */
import { secretDecrypt, secretEncrypt } from '../auth/secret.js';
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC } from '../constants.js';
import { atPosition, TpmError } from '../errors.js';
import { TPM2B_NAME, TPMA_OBJECT } from '../marshal/objects.js';
import { TPM2B_DIGEST, TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT } from '../marshal/structures.js';
import { TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import type { KeyObject } from '../state/objects.js';
import { hashInfo } from '../algorithms.js';
import { credentialToSecret, secretToCredential } from './exchange-blobs.js';
import { protectorOf } from './object-private.js';

const RESTRICTED_DECRYPT = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;

/** An asymmetric restricted decryption key (what the reference requires of a credential's key). */
function isCredentialKey(object: KeyObject | undefined): object is KeyObject {
  if (!object) return false;
  const { type, objectAttributes } = object.publicArea;
  return (type === TPM_ALG.RSA || type === TPM_ALG.ECC) && (objectAttributes & RESTRICTED_DECRYPT) === RESTRICTED_DECRYPT;
}

/**
 * Part 3 §12.6 TPM2_MakeCredential: needs only the public part of `handle` (tpm2-tools loads an
 * EK's public area with LoadExternal). RCs: TPM_RC_TYPE+H1 (not an asymmetric restricted
 * decryption key), TPM_RC_SIZE+P1 (credential longer than a digest of the key's nameAlg),
 * TPM_RC_KEY (an ECC key whose point is off its curve).
 */
export const MakeCredential = command({
  code: TPM_CC.MakeCredential,
  handles: [{ name: 'handle', type: TPMI_DH_OBJECT }],
  params: { credential: TPM2B_DIGEST, objectName: TPM2B_NAME },
  response: { credentialBlob: TPM2B_ID_OBJECT, secret: TPM2B_ENCRYPTED_SECRET },
  run(tpm, { handle }, { credential, objectName }) {
    const key = tpm.keyObject(handle);
    if (!isCredentialKey(key)) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
    if (credential.length > hashInfo(key.publicArea.nameAlg)!.digestSize) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    const { seed, secret } = secretEncrypt(key, 'IDENTITY', (n) => tpm.random(n));
    const credentialBlob = secretToCredential(credential, objectName, protectorOf(key, seed));
    seed.fill(0);
    return { credentialBlob, secret };
  },
});

/**
 * Part 3 §12.5 TPM2_ActivateCredential: the credential sealed to activateHandle's Name, opened
 * with keyHandle's private key. RCs: TPM_RC_TYPE+H2 (keyHandle is not an asymmetric restricted
 * decryption key), the secret's decryption codes +P2 (TPM_RC_VALUE, TPM_RC_SIZE,
 * TPM_RC_SCHEME, TPM_RC_ECC_POINT, unmarshalling codes; TPM_RC_FAILURE for TPM_RC_KEY, as in
 * the reference), TPM_RC_INTEGRITY+P1 (another key, another object, any changed byte),
 * unmarshalling codes or TPM_RC_SIZE+P1 (the credential inside does not fit).
 */
export const ActivateCredential = command({
  code: TPM_CC.ActivateCredential,
  handles: [
    { name: 'activateHandle', type: TPMI_DH_OBJECT, auth: 'ADMIN' },
    { name: 'keyHandle', type: TPMI_DH_OBJECT, auth: 'USER' },
  ],
  params: { credentialBlob: TPM2B_ID_OBJECT, secret: TPM2B_ENCRYPTED_SECRET },
  response: { certInfo: TPM2B_DIGEST },
  run(tpm, { activateHandle, keyHandle }, { credentialBlob, secret }) {
    const key = tpm.keyObject(keyHandle);
    if (!isCredentialKey(key)) throw new TpmError(TPM_RC.TYPE, { handle: 2 });
    let seed: Uint8Array;
    try {
      if (key.sensitive.length === 0) throw new TpmError(TPM_RC.KEY);
      seed = secretDecrypt(key, 'IDENTITY', secret, tpm.rsaCache);
    } catch (e) {
      if (!(e instanceof TpmError)) throw e;
      throw e.rc === TPM_RC.KEY ? new TpmError(TPM_RC.FAILURE) : new TpmError(e.rc, { param: 2 });
    }
    const name = tpm.entityName(activateHandle);
    const certInfo = atPosition({ param: 1 }, () => credentialToSecret(credentialBlob, name, protectorOf(key, seed)));
    seed.fill(0);
    return { certInfo };
  },
});
