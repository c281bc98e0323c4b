/** Part 3 §12 Object Commands that use an object's secret: TPM2_Unseal, TPM2_ObjectChangeAuth. */
import { command } from '../command.js';
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_CC, TPM_RC } from '../constants.js';
import { constantTimeEqual } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { TPMA_OBJECT } from '../marshal/objects.js';
import { TPM2B_PRIVATE } from '../marshal/sensitive.js';
import { TPM2B_AUTH, TPM2B_SENSITIVE_DATA } from '../marshal/structures.js';
import { TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import { trimTrailingZeros } from '../state/auth-value.js';
import { qualifiedNameOf } from './object-create.js';
import { protectorOf, sensitiveOf, sensitiveToPrivate } from './object-private.js';

const IV_BYTES = 16;

/**
 * Part 3 §12.7 TPM2_Unseal: the data of a sealed data object (a keyed hash that neither signs
 * nor decrypts). RCs: TPM_RC_TYPE+H1 (not a keyed-hash object, or a sequence),
 * TPM_RC_ATTRIBUTES+H1 (sign, decrypt or restricted set).
 */
export const Unseal = command({
  code: TPM_CC.Unseal,
  handles: [{ name: 'itemHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: {},
  response: { outData: TPM2B_SENSITIVE_DATA },
  run(tpm, { itemHandle }) {
    const object = tpm.keyObject(itemHandle);
    if (!object || object.publicArea.type !== TPM_ALG.KEYEDHASH) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
    if ((object.publicArea.objectAttributes & (TPMA_OBJECT.sign | TPMA_OBJECT.decrypt | TPMA_OBJECT.restricted)) !== 0) {
      throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    }
    return { outData: object.sensitive };
  },
});

/**
 * Part 3 §12.8 TPM2_ObjectChangeAuth: the object's sensitive area with a new authValue, wrapped
 * for its parent. The loaded object keeps its old authValue; the client loads the new private.
 * The parent is recognised by the object's qualified Name. RCs: TPM_RC_TYPE+H1 (a sequence),
 * TPM_RC_SIZE+P1 (newAuth longer than the nameAlg digest), TPM_RC_TYPE+H2 (not the parent).
 */
export const ObjectChangeAuth = command({
  code: TPM_CC.ObjectChangeAuth,
  handles: [
    { name: 'objectHandle', type: TPMI_DH_OBJECT, auth: 'ADMIN' },
    { name: 'parentHandle', type: TPMI_DH_OBJECT },
  ],
  params: { newAuth: TPM2B_AUTH },
  response: { outPrivate: TPM2B_PRIVATE },
  run(tpm, { objectHandle, parentHandle }, { newAuth }) {
    const object = tpm.keyObject(objectHandle);
    if (!object) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
    const auth = trimTrailingZeros(newAuth);
    const digestSize = hashInfo(object.publicArea.nameAlg)?.digestSize ?? 0;
    if (auth.length > digestSize) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    const parent = tpm.keyObject(parentHandle);
    const parentQn = parent && parent.publicArea.nameAlg !== TPM_ALG.NULL ? parent.qualifiedName : new Uint8Array(0);
    if (!parent || !constantTimeEqual(qualifiedNameOf(object.publicArea.nameAlg, parentQn, object.name), object.qualifiedName)) {
      throw new TpmError(TPM_RC.TYPE, { handle: 2 });
    }
    const outPrivate = sensitiveToPrivate(sensitiveOf(object, auth), object.name, protectorOf(parent), tpm.random(IV_BYTES));
    return { outPrivate };
  },
});
