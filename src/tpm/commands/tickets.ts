/** Part 2 §10.7 tickets: HMACs under a hierarchy proof that only this TPM can make. */
import { CONTEXT_INTEGRITY_HASH_ALG } from '../algorithms.js';
import { TPM_GENERATED_VALUE, TPM_RH, TPM_ST } from '../constants.js';
import { hmac } from '../crypto/index.js';
import type { TPMT_TK_HASHCHECK } from '../marshal/structures.js';
import type { Tpm } from '../tpm.js';
import { u16, u32, u64 } from './policy-support.js';

/** The NULL ticket: what a client gets when no ticket may be issued. */
export function nullHashCheck(): TPMT_TK_HASHCHECK {
  return { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) };
}

/**
 * Part 3 §15.4/§17.5: data that starts like a TPM-generated structure must not get a ticket,
 * or a hash-then-sign could forge an attestation.
 */
export function startsWithGeneratedValue(data: Uint8Array): boolean {
  if (data.length < 4) return false;
  return ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0 === TPM_GENERATED_VALUE;
}

/**
 * A sequence's first block decides whether its digest may get a ticket; the reference (and
 * libtpms) also refuses when that block is too short to tell.
 */
export function isFirstBlockTicketSafe(firstBlock: Uint8Array): boolean {
  return firstBlock.length >= 4 && !startsWithGeneratedValue(firstBlock);
}

/** Part 2 §10.7.6: HMAC(proof, TPM_ST_HASHCHECK || hashAlg || digest). */
export function hashCheckTicket(tpm: Tpm, hierarchy: number, hashAlg: number, digest: Uint8Array): TPMT_TK_HASHCHECK {
  const proof = tpm.hierarchyProof(hierarchy);
  if (!proof) return nullHashCheck();
  return {
    tag: TPM_ST.HASHCHECK,
    hierarchy,
    digest: hmac(CONTEXT_INTEGRITY_HASH_ALG, proof, u16(TPM_ST.HASHCHECK), u16(hashAlg), digest),
  };
}

/** Part 2 §10.7.3: HMAC(proof, TPM_ST_CREATION || name || creationHash) binds an object to its creation data. */
export function creationTicket(tpm: Tpm, hierarchy: number, name: Uint8Array, creationHash: Uint8Array) {
  const proof = tpm.hierarchyProof(hierarchy) ?? new Uint8Array(0);
  return {
    tag: TPM_ST.CREATION,
    hierarchy,
    digest: hmac(CONTEXT_INTEGRITY_HASH_ALG, proof, u16(TPM_ST.CREATION), name, creationHash),
  };
}

/**
 * Part 2 §10.7.4 TPMT_TK_AUTH digest: HMAC(proof, tag || cpHashA || policyRef || authName ||
 * timeout [|| TPM time epoch [|| resetCount]]), so a ticket with an expiry is bound to this
 * run of TPM time and, when asked, to this TPM Reset.
 */
export function authTicketDigest(tpm: Tpm, tag: number, hierarchy: number, timeout: bigint, expiresOnReset: boolean, cpHashA: Uint8Array, policyRef: Uint8Array, name: Uint8Array): Uint8Array {
  const proof = tpm.hierarchyProof(hierarchy) ?? new Uint8Array(0);
  const parts = [u16(tag), cpHashA, policyRef, name, u64(timeout)];
  if (timeout !== 0n) {
    parts.push(u64(tpm.timeEpoch));
    if (expiresOnReset) parts.push(u32(tpm.persistent.resetCount));
  }
  return hmac(CONTEXT_INTEGRITY_HASH_ALG, proof, ...parts);
}

/** Part 2 §10.7.5 TPMT_TK_VERIFIED digest: HMAC(proof, TPM_ST_VERIFIED || digest || keyName). */
export function verifiedTicketDigest(tpm: Tpm, hierarchy: number, digest: Uint8Array, keyName: Uint8Array): Uint8Array {
  const proof = tpm.hierarchyProof(hierarchy) ?? new Uint8Array(0);
  return hmac(CONTEXT_INTEGRITY_HASH_ALG, proof, u16(TPM_ST.VERIFIED), digest, keyName);
}
