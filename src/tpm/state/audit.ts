/**
 * Command audit (Part 1 §33): which commands are audited, the audit hash algorithm, the audit
 * counter and the running command audit digest, and the session audit digest of an audit
 * session (Part 1 §19.6.13). GetCommandAuditDigest and GetSessionAuditDigest read them through
 * `commandAuditInfo` / `sessionAuditDigest` and restart the command digest with
 * `clearCommandAuditDigest`.
 *
 * The command digest is reset data in the spec's terms (kept across TPM Restart and Resume,
 * cleared by TPM Reset). vtpmd keeps it in the persistent state, written with every audited
 * command: a daemon killed in between restarts with Startup(CLEAR), a TPM Reset, which clears it
 * anyway, and audited commands are few.
 */
import { CONTEXT_INTEGRITY_HASH_ALG, hashInfo } from '../algorithms.js';
import { TPM_CC } from '../constants.js';
import { hash } from '../crypto/index.js';
import { putUint32 } from '../crypto/bytes.js';
import type { PersistentState } from './persistent.js';
import type { Session } from './sessions.js';

export interface AuditPersistent {
  /** gp.auditHashAlg: the hash of the command audit digest. */
  hashAlg: number;
  /** gp.auditCommands: the audited command codes, ascending. */
  commands: number[];
  /** gp.auditCounter: counts command audit digests started (TPM_PT_AUDIT_COUNTER_0/1). */
  counter: bigint;
  /** gr.commandAuditDigest: empty until the next audited command starts a new one. */
  digest: Uint8Array;
  /** SetCommandCodeAuditStatus changed the hash: that command is not audited, the digest restarts. */
  hashChanged: boolean;
}

/** A new TPM audits SetCommandCodeAuditStatus only, with the context integrity hash (ms-tpm CommandAuditPreInstall_Init). */
export function manufactureAudit(): AuditPersistent {
  return { hashAlg: CONTEXT_INTEGRITY_HASH_ALG, commands: [TPM_CC.SetCommandCodeAuditStatus], counter: 0n, digest: new Uint8Array(0), hashChanged: false };
}

/** The audit state (states written before it existed get the manufactured one). */
export function auditOf(p: PersistentState): AuditPersistent {
  p.audit ??= manufactureAudit();
  return p.audit;
}

export function isAudited(p: PersistentState, code: number): boolean {
  return auditOf(p).commands.includes(code);
}

/** What TPMS_COMMAND_AUDIT_INFO reports (Part 2 §10.12.5): counter, hash, digest and the digest of the audited codes. */
export function commandAuditInfo(p: PersistentState): { auditCounter: bigint; digestAlg: number; auditDigest: Uint8Array; commandDigest: Uint8Array } {
  const a = auditOf(p);
  const codes = new Uint8Array(4 * a.commands.length);
  a.commands.forEach((cc, i) => putUint32(codes, 4 * i, cc));
  return { auditCounter: a.counter, digestAlg: a.hashAlg, auditDigest: a.digest, commandDigest: hash(a.hashAlg, codes) };
}

/** GetCommandAuditDigest restarts the digest; the next audited command starts a new one and counts it. */
export function clearCommandAuditDigest(p: PersistentState): void {
  auditOf(p).digest = new Uint8Array(0);
}

/** TPM Reset clears the command audit digest (ms-tpm CommandAuditStartup). */
export function commandAuditReset(p: PersistentState): void {
  if (p.audit) p.audit.digest = new Uint8Array(0);
}

/**
 * After an audited command (ms-tpm CommandAudit): digest := H(digest || cpHash || rpHash), a new
 * digest (zeros) counted by the audit counter when there is none. `cpHash` and `rpHash` are
 * computed with the audit hash.
 */
export function extendCommandAudit(p: PersistentState, cpHash: (alg: number) => Uint8Array, rpHash: (alg: number) => Uint8Array): void {
  const a = auditOf(p);
  if (a.hashChanged) {
    a.hashChanged = false;
    a.digest = new Uint8Array(0);
    return;
  }
  if (a.digest.length === 0) {
    a.digest = new Uint8Array(hashInfo(a.hashAlg)!.digestSize);
    a.counter += 1n;
  }
  a.digest = hash(a.hashAlg, a.digest, cpHash(a.hashAlg), rpHash(a.hashAlg));
}

/** The audit digest of an audit session, or undefined when the session has not been used for audit. */
export function sessionAuditDigest(session: Session): Uint8Array | undefined {
  return session.auditDigest;
}
