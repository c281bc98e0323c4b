/** Part 3 §21 Command Audit: TPM2_SetCommandCodeAuditStatus (the digests are in state/audit.ts). */
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { list, UINT32 } from '../marshal/codec.js';
import { MAX_CAP_CC } from '../marshal/capability.js';
import { TPMI_RH_PROVISION } from '../marshal/nv.js';
import { TPMI_ALG_HASH } from '../marshal/tpmi.js';
import { auditOf } from '../state/audit.js';

/** Part 2 §10.9.1 TPML_CC. */
const TPML_CC = list(UINT32, MAX_CAP_CC);

/**
 * Part 3 §21.2 TPM2_SetCommandCodeAuditStatus (owner or platform authorization): a new audit
 * hash (alone: with a list it is TPM_RC_VALUE+P1) restarts the digest and this command is not
 * audited; else the codes of setList are audited and those of clearList no longer are. Codes
 * that are not implemented are ignored, Shutdown is never audited and SetCommandCodeAuditStatus
 * always is (ms-tpm CommandAuditSet/Clear). The settings persist.
 */
export const SetCommandCodeAuditStatus = command({
  code: TPM_CC.SetCommandCodeAuditStatus,
  handles: [{ name: 'auth', type: TPMI_RH_PROVISION, auth: 'USER' }],
  params: { auditAlg: TPMI_ALG_HASH.plus, setList: TPML_CC, clearList: TPML_CC },
  response: {},
  nv: true,
  run(tpm, _h, { auditAlg, setList, clearList }) {
    const a = auditOf(tpm.persistent);
    if (auditAlg !== TPM_ALG.NULL && auditAlg !== a.hashAlg) {
      if (setList.length !== 0 || clearList.length !== 0) throw new TpmError(TPM_RC.VALUE, { param: 1 });
      a.hashAlg = auditAlg;
      a.hashChanged = true;
      tpm.markDirty();
      return {};
    }
    const implemented = new Set(tpm.commands.map((c) => c.code));
    const audited = new Set(a.commands);
    for (const cc of setList) if (implemented.has(cc) && cc !== TPM_CC.Shutdown) audited.add(cc);
    for (const cc of clearList) if (cc !== TPM_CC.SetCommandCodeAuditStatus) audited.delete(cc);
    const next = [...audited].sort((x, y) => x - y);
    if (next.length !== a.commands.length || next.some((cc, i) => cc !== a.commands[i])) {
      a.commands = next;
      tpm.markDirty();
    }
    return {};
  },
});
