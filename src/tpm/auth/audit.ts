/**
 * Audit sessions (Part 1 §19.6.13–14) and command audit (Part 1 §33) as a command passes
 * through the engine: what the audit attributes may ask for, and the digests extended once
 * the command has succeeded. The digests themselves live in state/audit.ts and the session.
 */
import { hashInfo } from '../algorithms.js';
import { TPM_RC, TPMA_SESSION } from '../constants.js';
import { hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { extendCommandAudit, isAudited } from '../state/audit.js';
import type { Session } from '../state/sessions.js';
import type { Tpm } from '../tpm.js';

/**
 * ms-tpm RetrieveSessionData's audit checks for session `n`: one audit session per command
 * (TPM_RC_ATTRIBUTES+Sn), never a policy session (TPM_RC_ATTRIBUTES+Sn), and auditExclusive
 * asked of an audit session that is no longer exclusive is TPM_RC_EXCLUSIVE, unless it resets.
 */
export function checkAuditAttributes(tpm: Tpm, session: Session, attributes: number, another: boolean, n: number): void {
  if (another || session.kind !== 'hmac') throw new TpmError(TPM_RC.ATTRIBUTES, { session: n });
  const exclusiveAsked = (attributes & TPMA_SESSION.auditExclusive) !== 0;
  const reset = (attributes & TPMA_SESSION.auditReset) !== 0;
  if (!reset && session.auditDigest && exclusiveAsked && tpm.exclusiveAuditSession !== session.handle) {
    throw new TpmError(TPM_RC.EXCLUSIVE);
  }
}

/** One entry of the authorization area as the audit sees it; `attributes` is what the response reports. */
export interface AuditedUse {
  attributes: number;
  session?: Session;
}

/**
 * After a successful command (ms-tpm UpdateAuditSessionStatus and CommandAudit): the audit
 * session's digest becomes H(digest || cpHash || rpHash) with the session's hash, started from
 * zeros (and made exclusive) on first use or auditReset; auditExclusive in the response says
 * whether it is still exclusive; a command that could carry sessions but has no audit session
 * ends exclusivity. An audited command extends the command audit digest the same way.
 * cpHash and rpHash are given per hash algorithm.
 */
export function auditCommand(
  tpm: Tpm,
  code: number,
  sessionsAllowed: boolean,
  uses: AuditedUse[],
  cpHash: (alg: number) => Uint8Array,
  rpHash: (alg: number) => Uint8Array,
): void {
  let found = false;
  for (const use of uses) {
    const session = use.session;
    if (!session || !(use.attributes & TPMA_SESSION.audit)) continue;
    found = true;
    if (!session.auditDigest || use.attributes & TPMA_SESSION.auditReset) {
      session.auditDigest = new Uint8Array(hashInfo(session.authHash)!.digestSize);
      session.bind = null;
      tpm.exclusiveAuditSession = session.handle;
    } else if (tpm.exclusiveAuditSession !== session.handle) {
      tpm.exclusiveAuditSession = null;
    }
    if (tpm.exclusiveAuditSession === session.handle) use.attributes |= TPMA_SESSION.auditExclusive;
    else use.attributes &= ~TPMA_SESSION.auditExclusive;
    session.auditDigest = hash(session.authHash, session.auditDigest, cpHash(session.authHash), rpHash(session.authHash));
  }
  if (!found && sessionsAllowed) tpm.exclusiveAuditSession = null;
  if (isAudited(tpm.persistent, code)) {
    extendCommandAudit(tpm.persistent, cpHash, rpHash);
    tpm.markDirty();
  }
}
