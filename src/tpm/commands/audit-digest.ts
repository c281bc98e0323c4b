/**
 * Part 3 §18.5 TPM2_GetSessionAuditDigest and §18.6 TPM2_GetCommandAuditDigest: the audit
 * digests of state/audit.ts, attested and signed through the shared attestation signer.
 */
import { command } from '../command.js';
import { TPM_CC, TPM_RC, TPM_RH, TPM_ST } from '../constants.js';
import { TpmError } from '../errors.js';
import { TPM2B_ATTEST } from '../marshal/attest.js';
import { TPMT_SIG_SCHEME, TPMT_SIGNATURE } from '../marshal/objects.js';
import { TPM2B_DATA } from '../marshal/structures.js';
import { TPMI_DH_OBJECT, TPMI_RH_ENDORSEMENT, TPMI_SH_HMAC } from '../marshal/tpmi.js';
import { clearCommandAuditDigest, commandAuditInfo, sessionAuditDigest } from '../state/audit.js';
import { attestationSigner, signAttestation } from './attest-sign.js';

const privacyAdmin = { name: 'privacyHandle', type: TPMI_RH_ENDORSEMENT, auth: 'USER' } as const;
const signHandle = { name: 'signHandle', type: TPMI_DH_OBJECT.plus, auth: 'USER' } as const;
const params = { qualifyingData: TPM2B_DATA, inScheme: TPMT_SIG_SCHEME };
const response = { auditInfo: TPM2B_ATTEST, signature: TPMT_SIGNATURE };

/**
 * The session's audit digest and whether it is the exclusive audit session. The signing key
 * and scheme are checked first, then that the session has been used for audit (else
 * TPM_RC_TYPE+H3), as in the reference.
 */
export const GetSessionAuditDigest = command({
  code: TPM_CC.GetSessionAuditDigest,
  handles: [privacyAdmin, signHandle, { name: 'sessionHandle', type: TPMI_SH_HMAC }],
  params,
  response,
  run(tpm, { signHandle, sessionHandle }, { qualifyingData, inScheme }) {
    const signer = attestationSigner(tpm, signHandle, inScheme, { handle: 2, param: 2 });
    const session = tpm.sessions.get(sessionHandle);
    const sessionDigest = session && sessionAuditDigest(session);
    if (!sessionDigest) throw new TpmError(TPM_RC.TYPE, { handle: 3 });
    const exclusiveSession = tpm.exclusiveAuditSession === sessionHandle;
    const arm = { type: TPM_ST.ATTEST_SESSION_AUDIT, attested: { exclusiveSession, sessionDigest } } as const;
    const { attest, signature } = signAttestation(tpm, signer, qualifyingData, arm);
    return { auditInfo: attest, signature };
  },
});

/**
 * The command audit digest with the audit counter, hash and the digest of the audited command
 * codes. A signed report restarts the digest (the next audited command starts a new one and
 * counts it); an unsigned one (TPM_RH_NULL) leaves it, as in the reference.
 */
export const GetCommandAuditDigest = command({
  code: TPM_CC.GetCommandAuditDigest,
  handles: [privacyAdmin, signHandle],
  params,
  response,
  nv: true,
  run(tpm, { signHandle }, { qualifyingData, inScheme }) {
    const signer = attestationSigner(tpm, signHandle, inScheme, { handle: 2, param: 2 });
    const arm = { type: TPM_ST.ATTEST_COMMAND_AUDIT, attested: commandAuditInfo(tpm.persistent) } as const;
    const { attest, signature } = signAttestation(tpm, signer, qualifyingData, arm);
    if (signHandle !== TPM_RH.NULL && arm.attested.auditDigest.length > 0) {
      clearCommandAuditDigest(tpm.persistent);
      tpm.markDirty();
    }
    return { auditInfo: attest, signature };
  },
});
