/** Part 3 §30.3 TPM2_TestParms. */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPMT_PUBLIC_PARMS } from '../marshal/objects.js';

/**
 * Part 3 §30.3 TPM2_TestParms: whether this TPM supports an object type with these parameters.
 * Every check is the unmarshalling of TPMT_PUBLIC_PARMS, the same codecs CreatePrimary and
 * Create read templates with, so the answer (success, or the RC+P1 of the first unsupported
 * field) is theirs; as in the reference, the command itself does nothing.
 */
export const TestParms = command({
  code: TPM_CC.TestParms,
  handles: [],
  params: { parameters: TPMT_PUBLIC_PARMS },
  response: {},
  run() {
    return {};
  },
});
