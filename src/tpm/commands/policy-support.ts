/** What the policy commands share (ms-tpm Policy_spt): the session they act on and the digest update. */
import { TPM_RC } from '../constants.js';
import { hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import type { TPML_PCR_SELECTION } from '../marshal/structures.js';
import { TPMI_SH_POLICY } from '../marshal/tpmi.js';
import { policyOf, resetPolicy, type Session } from '../state/sessions.js';
import type { Tpm } from '../tpm.js';
import { currentPcrDigest } from './pcr.js';

export const u16 = (v: number): Uint8Array => new Uint8Array([(v >> 8) & 0xff, v & 0xff]);
export const u32 = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
export const u64 = (v: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return b;
};

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** The handle every policy command takes first: the policy (or trial) session it extends. */
export const POLICY_SESSION = { name: 'policySession', type: TPMI_SH_POLICY } as const;

/**
 * The policy or trial session a policy command names (the engine has checked it is loaded).
 * `restart` resets it (PolicyRestart). RCs: TPM_RC_HANDLE+H1 (not a policy session).
 */
export function policySession(tpm: Tpm, handle: number, restart = false, position = 1): Session {
  const s = tpm.sessions.get(handle);
  if (!s || s.kind === 'hmac') throw new TpmError(TPM_RC.HANDLE, { handle: position });
  policyOf(s);
  if (restart) resetPolicy(s, tpm.timeInfo().time);
  return s;
}

/** policyDigest := H(policyDigest || parts...) (Part 1 §19.7.2 PolicyUpdate's first step). */
export function update(s: Session, ...parts: Uint8Array[]): void {
  s.policyDigest = hash(s.authHash, s.policyDigest, ...parts);
}

/** The digest of the selected PCRs' current values (PolicyPCR). */
export function pcrDigest(tpm: Tpm, hashAlg: number, pcrs: TPML_PCR_SELECTION): Uint8Array {
  return currentPcrDigest(tpm, hashAlg, pcrs).pcrDigest;
}
