/** Part 3 §26.3 TPM2_SetAlgorithmSet: the platform picks the TPM's algorithm set (a region code). */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { UINT32 } from '../marshal/codec.js';
import { TPMI_RH_PLATFORM } from '../marshal/nv.js';

/**
 * Records algorithmSet, which persists and is what GetCapability reports as
 * TPM_PT_ALGORITHM_SET. As in the reference, the value is not interpreted: every algorithm
 * stays available whatever the set.
 */
export const SetAlgorithmSet = command({
  code: TPM_CC.SetAlgorithmSet,
  nv: true,
  handles: [{ name: 'authHandle', type: TPMI_RH_PLATFORM, auth: 'USER' }],
  params: { algorithmSet: UINT32 },
  response: {},
  run(tpm, _h, { algorithmSet }) {
    tpm.persistent.algorithmSet = algorithmSet;
    tpm.markDirty();
    return {};
  },
});
