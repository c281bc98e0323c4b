/** Part 3 §15.2 TPM2_EncryptDecrypt and §15.3 TPM2_EncryptDecrypt2 on SYMCIPHER keys. */
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC } from '../constants.js';
import { aesModeCrypt, type AesMode } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { BOOL } from '../marshal/codec.js';
import { TPMA_OBJECT, type TPMT_SYM_DEF_OBJECT } from '../marshal/objects.js';
import { MAX_SYM_BLOCK_SIZE, TPM2B_IV } from '../marshal/sensitive.js';
import { TPM2B_MAX_BUFFER } from '../marshal/structures.js';
import { TPMI_ALG_SYM_MODE, TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import type { Tpm } from '../tpm.js';

const MODES: ReadonlyMap<number, AesMode> = new Map<number, AesMode>([
  [TPM_ALG.CFB, 'cfb'],
  [TPM_ALG.CBC, 'cbc'],
  [TPM_ALG.CTR, 'ctr'],
  [TPM_ALG.OFB, 'ofb'],
  [TPM_ALG.ECB, 'ecb'],
]);

/** Where each parameter sits in the two commands (EncryptDecrypt2 moved inData first). */
interface Positions {
  readonly mode: number;
  readonly ivIn: number;
  readonly inData: number;
}

/**
 * The reference's EncryptDecryptShared, in its order of checks. RCs: TPM_RC_KEY+H1 (not a
 * SYMCIPHER key), TPM_RC_ATTRIBUTES+H1 (restricted, or without decrypt for decryption or sign
 * for encryption), TPM_RC_MODE (the key's mode and the command's disagree, or both are NULL),
 * TPM_RC_SIZE (an IV that is not one block, or not empty for ECB; CBC or ECB data that is not
 * whole blocks).
 */
function encryptDecrypt(
  tpm: Tpm,
  keyHandle: number,
  decrypt: boolean,
  inMode: number,
  ivIn: Uint8Array,
  inData: Uint8Array,
  at: Positions,
): { outData: Uint8Array; ivOut: Uint8Array } {
  const object = tpm.object(keyHandle);
  if (object?.kind !== 'key' || object.publicArea.type !== TPM_ALG.SYMCIPHER) throw new TpmError(TPM_RC.KEY, { handle: 1 });
  const a = object.publicArea.objectAttributes;
  if ((a & TPMA_OBJECT.restricted) !== 0 || (a & (decrypt ? TPMA_OBJECT.decrypt : TPMA_OBJECT.sign)) === 0) {
    throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
  }
  const sym = (object.publicArea.parameters as { sym: TPMT_SYM_DEF_OBJECT }).sym;
  let mode = sym.mode as number;
  if (mode !== TPM_ALG.NULL) {
    if (inMode !== TPM_ALG.NULL && inMode !== mode) throw new TpmError(TPM_RC.MODE, { param: at.mode });
  } else {
    if (inMode === TPM_ALG.NULL) throw new TpmError(TPM_RC.MODE, { param: at.mode });
    mode = inMode;
  }
  if (sym.algorithm !== TPM_ALG.AES) throw new TpmError(TPM_RC.KEY, { handle: 1 });
  if (mode === TPM_ALG.ECB ? ivIn.length !== 0 : ivIn.length !== MAX_SYM_BLOCK_SIZE) throw new TpmError(TPM_RC.SIZE, { param: at.ivIn });
  if ((mode === TPM_ALG.CBC || mode === TPM_ALG.ECB) && inData.length % MAX_SYM_BLOCK_SIZE !== 0) {
    throw new TpmError(TPM_RC.SIZE, { param: at.inData });
  }
  const { out, ivOut } = aesModeCrypt(MODES.get(mode)!, decrypt, object.sensitive, ivIn, inData);
  return { outData: out, ivOut };
}

/**
 * Part 3 §15.2 TPM2_EncryptDecrypt: USER authorization. Its first parameter is not a sized
 * buffer, so the data cannot travel encrypted; EncryptDecrypt2 exists for that.
 */
export const EncryptDecrypt = command({
  code: TPM_CC.EncryptDecrypt,
  handles: [{ name: 'keyHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { decrypt: BOOL, mode: TPMI_ALG_SYM_MODE.plus, ivIn: TPM2B_IV, inData: TPM2B_MAX_BUFFER },
  response: { outData: TPM2B_MAX_BUFFER, ivOut: TPM2B_IV },
  run(tpm, { keyHandle }, { decrypt, mode, ivIn, inData }) {
    return encryptDecrypt(tpm, keyHandle, decrypt, mode, ivIn, inData, { mode: 2, ivIn: 3, inData: 4 });
  },
});

/** Part 3 §15.3 TPM2_EncryptDecrypt2: EncryptDecrypt with inData first, so it may be encrypted. */
export const EncryptDecrypt2 = command({
  code: TPM_CC.EncryptDecrypt2,
  handles: [{ name: 'keyHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { inData: TPM2B_MAX_BUFFER, decrypt: BOOL, mode: TPMI_ALG_SYM_MODE.plus, ivIn: TPM2B_IV },
  response: { outData: TPM2B_MAX_BUFFER, ivOut: TPM2B_IV },
  run(tpm, { keyHandle }, { inData, decrypt, mode, ivIn }) {
    return encryptDecrypt(tpm, keyHandle, decrypt, mode, ivIn, inData, { mode: 3, ivIn: 4, inData: 1 });
  },
});
