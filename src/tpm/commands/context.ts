/** Part 3 §28 Context Management: TPM2_FlushContext. */
import { command } from '../command.js';
import { HR, TPM_CC, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { TPMI_DH_CONTEXT } from '../marshal/tpmi.js';

/**
 * Part 3 §28.4 TPM2_FlushContext: unloads a transient object or ends a session. The handle is
 * a parameter, not a handle, so errors name P1. RCs: TPM_RC_HANDLE+P1 (nothing there).
 */
export const FlushContext = command({
  code: TPM_CC.FlushContext,
  handles: [],
  params: { flushHandle: TPMI_DH_CONTEXT },
  response: {},
  noSessions: true,
  run(tpm, _h, { flushHandle }) {
    if (flushHandle >>> 24 === HR.TRANSIENT >>> 24) {
      if (!tpm.objects.get(flushHandle)) throw new TpmError(TPM_RC.HANDLE, { param: 1 });
      tpm.objects.remove(flushHandle);
    } else {
      if (!tpm.sessions.get(flushHandle)) throw new TpmError(TPM_RC.HANDLE, { param: 1 });
      tpm.sessions.remove(flushHandle);
    }
    return {};
  },
});
