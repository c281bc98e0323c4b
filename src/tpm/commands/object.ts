/** Part 3 §12 Object Commands: TPM2_ReadPublic. */
import { command } from '../command.js';
import { TPM_CC, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { TPM2B_NAME, TPM2B_PUBLIC } from '../marshal/objects.js';
import { TPMI_DH_OBJECT } from '../marshal/tpmi.js';

/**
 * Part 3 §12.4 TPM2_ReadPublic: no authorization; the public area, Name and qualified Name.
 * RCs: TPM_RC_SEQUENCE (a sequence object has no public area).
 */
export const ReadPublic = command({
  code: TPM_CC.ReadPublic,
  handles: [{ name: 'objectHandle', type: TPMI_DH_OBJECT }],
  params: {},
  response: { outPublic: TPM2B_PUBLIC, name: TPM2B_NAME, qualifiedName: TPM2B_NAME },
  run(tpm, { objectHandle }) {
    const object = tpm.object(objectHandle);
    if (object?.kind !== 'key') throw new TpmError(TPM_RC.SEQUENCE);
    return { outPublic: object.publicArea, name: object.name, qualifiedName: object.qualifiedName };
  },
});
