/**
 * Part 3 §23 assertions that carry an authorization of their own: PolicySigned (a signature
 * over the session's nonce by a key), PolicySecret (an entity's
 * authorization, checked by the engine like any other), PolicyTicket (a PolicySecret made
 * earlier, as a ticket) and PolicyAuthorize (a policy approved by a signing key, shown by a
 * TPMT_TK_VERIFIED ticket).
 */
import { command } from '../command.js';
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH, TPM_ST } from '../constants.js';
import { hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { INT32, oneOf, struct, tpm2b, UINT16, type Infer } from '../marshal/codec.js';
import { TPM2B_NAME, TPMT_SIGNATURE } from '../marshal/objects.js';
import { TPM2B_DIGEST, TPM2B_NONCE, TPMT_TK_VERIFIED } from '../marshal/structures.js';
import { TPMI_DH_ENTITY, TPMI_DH_OBJECT, TPMI_RH_HIERARCHY } from '../marshal/tpmi.js';
import type { Session } from '../state/sessions.js';
import type { Tpm } from '../tpm.js';
import { equal, POLICY_SESSION, policySession, u32, u64, update } from './policy-support.js';
import { verifySignature } from './signature.js';
import { authTicketDigest, verifiedTicketDigest } from './tickets.js';

/** ms-tpm EXPIRATION_BIT: set in a timeout buffer whose ticket dies with a TPM Reset. */
const EXPIRATION_BIT = 1n << 63n;

/** §11.4.10 TPM2B_TIMEOUT (this TPM's format: the 8-byte expiry in TPM time). */
const TPM2B_TIMEOUT = tpm2b(8);

/** §10.7.4 TPMT_TK_AUTH. */
const TPMT_TK_AUTH = struct({
  tag: oneOf(UINT16, [TPM_ST.AUTH_SECRET, TPM_ST.AUTH_SIGNED], TPM_RC.TAG),
  hierarchy: TPMI_RH_HIERARCHY.plus,
  digest: TPM2B_DIGEST,
});
type TPMT_TK_AUTH = Infer<typeof TPMT_TK_AUTH>;

/** ms-tpm ComputeAuthTimeout: |expiration| seconds from the session start (or from now, without a nonce). */
function authTimeout(tpm: Tpm, s: Session, expiration: number, nonceTPM: Uint8Array): bigint {
  if (expiration === 0) return 0n;
  const seconds = BigInt(Math.min(Math.abs(expiration), 0x7fffffff));
  if (nonceTPM.length === 0) return seconds * 1000n + (tpm.timeInfo().time % 1000n);
  return s.policy!.startTime + seconds * 1000n;
}

/**
 * ms-tpm PolicyParameterChecks. RCs: TPM_RC_NONCE (nonceTPM is not the session's),
 * TPM_RC_EXPIRED (already expired), TPM_RC_SIZE (cpHashA not a digest), TPM_RC_CPHASH.
 */
function parameterChecks(tpm: Tpm, s: Session, timeout: bigint, cpHashA: Uint8Array, nonce: Uint8Array | null, rc: { nonce: number; cpHash: number; expiration: number }): void {
  if (nonce && nonce.length !== 0 && !equal(nonce, s.nonceTPM)) throw new TpmError(TPM_RC.NONCE, { param: rc.nonce });
  if (timeout !== 0n && timeout < tpm.timeInfo().time) throw new TpmError(TPM_RC.EXPIRED, { param: rc.expiration });
  if (cpHashA.length !== 0) {
    if (cpHashA.length !== s.policyDigest.length) throw new TpmError(TPM_RC.SIZE, { param: rc.cpHash });
    if (s.policy!.hash.length !== 0 && !equal(cpHashA, s.policy!.hash)) throw new TpmError(TPM_RC.CPHASH);
  }
}

/**
 * PolicySigned's and PolicySecret's shared start (nonceTPM P1, cpHashA P2, expiration P4): the
 * timeout the authorization grants, after PolicyParameterChecks; a trial session checks nothing
 * and gets none.
 */
function checkedAuthTimeout(tpm: Tpm, s: Session, nonceTPM: Uint8Array, cpHashA: Uint8Array, expiration: number): bigint {
  if (s.kind === 'trial') return 0n;
  const timeout = authTimeout(tpm, s, expiration, nonceTPM);
  parameterChecks(tpm, s, timeout, cpHashA, nonceTPM, { nonce: 1, cpHash: 2, expiration: 4 });
  return timeout;
}

/**
 * ms-tpm PolicyContextUpdate: H(H(digest || cc || name) || ref), the second hash only when there
 * is a ref (PolicyAuthorizeNV has none); a cpHash and the earliest timeout are kept.
 */
export function contextUpdate(s: Session, cc: number, name: Uint8Array, ref: Uint8Array | null, cpHashA: Uint8Array, timeout: bigint): void {
  update(s, u32(cc), name);
  if (ref) update(s, ref);
  if (cpHashA.length !== 0) {
    s.policy!.hash = cpHashA;
    s.policy!.hashKind = 'cpHash';
  }
  if (timeout !== 0n && (s.policy!.timeout === 0n || s.policy!.timeout > timeout)) s.policy!.timeout = timeout;
}

/** The hierarchy an entity belongs to, for its tickets (ms-tpm EntityGetHierarchy). */
function entityHierarchy(tpm: Tpm, handle: number): number {
  if (handle === TPM_RH.OWNER || handle === TPM_RH.LOCKOUT) return TPM_RH.OWNER;
  if (handle === TPM_RH.ENDORSEMENT || handle === TPM_RH.PLATFORM) return handle;
  const object = tpm.keyObject(handle);
  if (object) return object.hierarchy;
  return TPM_RH.OWNER;
}

const nullAuthTicket = (tag: number): TPMT_TK_AUTH => ({ tag, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });

/** The hash a signature was made with (the reference's CryptGetSignHashAlg); NULL for none. */
function signatureHashAlg(sig: TPMT_SIGNATURE): number {
  const d = sig.signature as { hash?: number; hashAlg?: number } | null;
  return d?.hash ?? d?.hashAlg ?? TPM_ALG.NULL;
}

/**
 * The signed-or-secret assertion's output (Part 3 §23.3/§23.4): with a negative expiration in
 * a real session, the timeout and a TPMT_TK_AUTH that PolicyTicket redeems; else empty ones.
 */
function authOutput(tpm: Tpm, tag: number, entity: number, trial: boolean, expiration: number, timeout: bigint, nonceTPM: Uint8Array, cpHashA: Uint8Array, policyRef: Uint8Array, name: Uint8Array) {
  if (expiration >= 0 || trial) return { timeout: new Uint8Array(0), policyTicket: nullAuthTicket(tag) };
  const expiresOnReset = nonceTPM.length === 0;
  const hierarchy = entityHierarchy(tpm, entity);
  const digest = authTicketDigest(tpm, tag, hierarchy, timeout, expiresOnReset, cpHashA, policyRef, name);
  return { timeout: u64(expiresOnReset ? timeout | EXPIRATION_BIT : timeout), policyTicket: { tag, hierarchy, digest } };
}

/**
 * Part 3 §23.3 TPM2_PolicySigned: authObject signed aHash = H_sig(nonceTPM || expiration ||
 * cpHashA || policyRef); H(H(digest || CC_PolicySigned || authName) || policyRef). Any key
 * VerifySignature takes: RSASSA, RSA-PSS, ECDSA, HMAC. A trial session skips the checks.
 * RCs: TPM_RC_HANDLE+H1 (not a key), TPM_RC_NONCE+P1, TPM_RC_SIZE+P2, TPM_RC_CPHASH,
 * TPM_RC_EXPIRED+P4, TPM_RC_SCHEME+P5 (no hash, or a scheme the key cannot have),
 * TPM_RC_SIGNATURE+P5 (does not verify), TPM_RC_HANDLE+P5 (an HMAC key without its secret).
 */
export const PolicySigned = command({
  code: TPM_CC.PolicySigned,
  handles: [
    { name: 'authObject', type: TPMI_DH_OBJECT },
    POLICY_SESSION,
  ],
  params: { nonceTPM: TPM2B_NONCE, cpHashA: TPM2B_DIGEST, policyRef: TPM2B_NONCE, expiration: INT32, auth: TPMT_SIGNATURE },
  response: { timeout: TPM2B_TIMEOUT, policyTicket: TPMT_TK_AUTH },
  run(tpm, { authObject, policySession: h }, { nonceTPM, cpHashA, policyRef, expiration, auth }) {
    const key = tpm.keyObject(authObject);
    if (!key) throw new TpmError(TPM_RC.HANDLE, { handle: 1 });
    const s = policySession(tpm, h, false, 2);
    const trial = s.kind === 'trial';
    const timeout = checkedAuthTimeout(tpm, s, nonceTPM, cpHashA, expiration);
    if (!trial) {
      const hashAlg = signatureHashAlg(auth);
      if (!hashInfo(hashAlg)) throw new TpmError(TPM_RC.SCHEME, { param: 5 });
      const aHash = hash(hashAlg, nonceTPM, u32(expiration >>> 0), cpHashA, policyRef);
      verifySignature(key, aHash, auth, 5);
    }
    contextUpdate(s, TPM_CC.PolicySigned, key.name, policyRef, cpHashA, timeout);
    return authOutput(tpm, TPM_ST.AUTH_SIGNED, authObject, trial, expiration, timeout, nonceTPM, cpHashA, policyRef, key.name);
  },
});

/**
 * Part 3 §23.4 TPM2_PolicySecret: the caller proves knowledge of authHandle's authorization
 * (the engine checks it); H(H(digest || CC_PolicySecret || authName) || policyRef). A
 * negative expiration returns a ticket PolicyTicket can redeem.
 * RCs: TPM_RC_NONCE+P1, TPM_RC_SIZE+P2, TPM_RC_CPHASH, TPM_RC_EXPIRED+P4.
 */
export const PolicySecret = command({
  code: TPM_CC.PolicySecret,
  handles: [
    { name: 'authHandle', type: TPMI_DH_ENTITY, auth: 'USER' },
    POLICY_SESSION,
  ],
  params: { nonceTPM: TPM2B_NONCE, cpHashA: TPM2B_DIGEST, policyRef: TPM2B_NONCE, expiration: INT32 },
  response: { timeout: TPM2B_TIMEOUT, policyTicket: TPMT_TK_AUTH },
  run(tpm, { authHandle, policySession: h }, { nonceTPM, cpHashA, policyRef, expiration }) {
    const s = policySession(tpm, h, false, 2);
    const trial = s.kind === 'trial';
    const timeout = checkedAuthTimeout(tpm, s, nonceTPM, cpHashA, expiration);
    const name = tpm.entityName(authHandle);
    contextUpdate(s, TPM_CC.PolicySecret, name, policyRef, cpHashA, timeout);
    return authOutput(tpm, TPM_ST.AUTH_SECRET, authHandle, trial, expiration, timeout, nonceTPM, cpHashA, policyRef, name);
  },
});

/**
 * Part 3 §23.5 TPM2_PolicyTicket: redeems a PolicySecret/PolicySigned ticket.
 * RCs: TPM_RC_ATTRIBUTES+H1 (a trial session, as libtpms), TPM_RC_SIZE+P1 (timeout not 8 bytes), TPM_RC_EXPIRED+P1, TPM_RC_SIZE+P2,
 * TPM_RC_CPHASH, TPM_RC_TICKET+P5 (not a ticket this TPM made for these values).
 */
export const PolicyTicket = command({
  code: TPM_CC.PolicyTicket,
  handles: [POLICY_SESSION],
  params: { timeout: TPM2B_TIMEOUT, cpHashA: TPM2B_DIGEST, policyRef: TPM2B_NONCE, authName: TPM2B_NAME, ticket: TPMT_TK_AUTH },
  response: {},
  run(tpm, { policySession: h }, { timeout: buffer, cpHashA, policyRef, authName, ticket }) {
    const s = policySession(tpm, h);
    if (s.kind === 'trial') throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    if (buffer.length !== 8) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    const raw = new DataView(buffer.buffer, buffer.byteOffset).getBigUint64(0);
    const expiresOnReset = (raw & EXPIRATION_BIT) !== 0n;
    const timeout = raw & ~EXPIRATION_BIT;
    parameterChecks(tpm, s, timeout, cpHashA, null, { nonce: 0, cpHash: 2, expiration: 1 });
    const expected = authTicketDigest(tpm, ticket.tag, ticket.hierarchy, timeout, expiresOnReset, cpHashA, policyRef, authName);
    // A key of the NULL hierarchy gets tickets under the NULL proof, good until the next TPM Reset.
    if (!equal(expected, ticket.digest)) throw new TpmError(TPM_RC.TICKET, { param: 5 });
    const cc = ticket.tag === TPM_ST.AUTH_SECRET ? TPM_CC.PolicySecret : TPM_CC.PolicySigned;
    contextUpdate(s, cc, authName, policyRef, cpHashA, timeout);
    return {};
  },
});

/**
 * Part 3 §23.16 TPM2_PolicyAuthorize: if the digest is approvedPolicy and checkTicket proves
 * keySign signed H(approvedPolicy || policyRef), the digest restarts as
 * H(H(0…0 || CC_PolicyAuthorize || keySign) || policyRef). A trial session skips the checks.
 * RCs: TPM_RC_SIZE+P3 / TPM_RC_HASH+P3 (keySign is not a Name), TPM_RC_VALUE+P1 (digest is
 * not approvedPolicy), TPM_RC_VALUE+P4 (ticket does not verify).
 */
export const PolicyAuthorize = command({
  code: TPM_CC.PolicyAuthorize,
  handles: [POLICY_SESSION],
  params: { approvedPolicy: TPM2B_DIGEST, policyRef: TPM2B_NONCE, keySign: TPM2B_NAME, checkTicket: TPMT_TK_VERIFIED },
  response: {},
  run(tpm, { policySession: h }, { approvedPolicy, policyRef, keySign, checkTicket }) {
    const s = policySession(tpm, h);
    if (keySign.length < 2) throw new TpmError(TPM_RC.SIZE, { param: 3 });
    const nameAlg = (keySign[0]! << 8) | keySign[1]!;
    const info = hashInfo(nameAlg);
    if (!info) throw new TpmError(TPM_RC.HASH, { param: 3 });
    if (info.digestSize !== keySign.length - 2) throw new TpmError(TPM_RC.SIZE, { param: 3 });
    if (s.kind !== 'trial') {
      if (!equal(s.policyDigest, approvedPolicy)) throw new TpmError(TPM_RC.VALUE, { param: 1 });
      const aHash = hash(nameAlg, approvedPolicy, policyRef);
      const expected = verifiedTicketDigest(tpm, checkTicket.hierarchy, aHash, keySign);
      if (checkTicket.hierarchy === TPM_RH.NULL || !equal(expected, checkTicket.digest)) throw new TpmError(TPM_RC.VALUE, { param: 4 });
    }
    s.policyDigest = new Uint8Array(s.policyDigest.length);
    contextUpdate(s, TPM_CC.PolicyAuthorize, keySign, policyRef, new Uint8Array(0), 0n);
    return {};
  },
});
