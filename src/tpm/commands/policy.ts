/**
 * Part 3 §23 Enhanced Authorization: the policy assertions that depend only on the session
 * and the TPM's own state. Each one extends policyDigest as the spec's formula says and, in a
 * real (non-trial) policy session, checks or records what the authorization must meet
 * (state/sessions.ts PolicyState; the engine enforces it when the session authorizes).
 */
import { command } from '../command.js';
import { TPM_CC, TPM_RC } from '../constants.js';
import { hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { BOOL, encode, tpm2b, UINT16, UINT32, UINT8 } from '../marshal/codec.js';
import { TPM2B_DIGEST, TPML_DIGEST, TPML_PCR_SELECTION, TPMS_TIME_INFO } from '../marshal/structures.js';
import { TPMI_SH_POLICY } from '../marshal/tpmi.js';
import { equal, pcrDigest, POLICY_SESSION, policySession, u16, u32, update } from './policy-support.js';

/** Part 3 §23.12 TPM2_PolicyRestart: digest back to zeros, every assertion forgotten. */
export const PolicyRestart = command({
  code: TPM_CC.PolicyRestart,
  handles: [{ name: 'sessionHandle', type: TPMI_SH_POLICY }],
  params: {},
  response: {},
  run(tpm, { sessionHandle }) {
    policySession(tpm, sessionHandle, true);
    return {};
  },
});

/** Part 3 §23.19 TPM2_PolicyGetDigest. */
export const PolicyGetDigest = command({
  code: TPM_CC.PolicyGetDigest,
  handles: [POLICY_SESSION],
  params: {},
  response: { policyDigest: TPM2B_DIGEST },
  run(tpm, { policySession: h }) {
    return { policyDigest: policySession(tpm, h).policyDigest };
  },
});

/**
 * Part 3 §23.11 TPM2_PolicyCommandCode: H(digest || CC_PolicyCommandCode || code).
 * RCs: TPM_RC_VALUE+P1 (another code was asserted), TPM_RC_POLICY_CC+P1 (not implemented).
 */
export const PolicyCommandCode = command({
  code: TPM_CC.PolicyCommandCode,
  handles: [POLICY_SESSION],
  params: { code: UINT32 },
  response: {},
  run(tpm, { policySession: h }, { code }) {
    const s = policySession(tpm, h);
    if (s.policy!.commandCode !== 0 && s.policy!.commandCode !== code) throw new TpmError(TPM_RC.VALUE, { param: 1 });
    if (!tpm.commands.some((c) => c.code === code)) throw new TpmError(TPM_RC.POLICY_CC, { param: 1 });
    update(s, u32(TPM_CC.PolicyCommandCode), u32(code));
    s.policy!.commandCode = code;
    return {};
  },
});

/** Part 3 §23.18 TPM2_PolicyAuthValue: H(digest || CC_PolicyAuthValue); the HMAC then includes the authValue. */
export const PolicyAuthValue = command({
  code: TPM_CC.PolicyAuthValue,
  handles: [POLICY_SESSION],
  params: {},
  response: {},
  run(tpm, { policySession: h }) {
    const s = policySession(tpm, h);
    update(s, u32(TPM_CC.PolicyAuthValue));
    s.policy!.authValueNeeded = true;
    s.policy!.passwordNeeded = false;
    return {};
  },
});

/** Part 3 §23.19 TPM2_PolicyPassword: the same digest as PolicyAuthValue; the authValue is sent in clear. */
export const PolicyPassword = command({
  code: TPM_CC.PolicyPassword,
  handles: [POLICY_SESSION],
  params: {},
  response: {},
  run(tpm, { policySession: h }) {
    const s = policySession(tpm, h);
    update(s, u32(TPM_CC.PolicyAuthValue));
    s.policy!.passwordNeeded = true;
    s.policy!.authValueNeeded = false;
    return {};
  },
});

/** Part 3 §23.13 TPM2_PolicyPhysicalPresence: H(digest || CC_PolicyPhysicalPresence). */
export const PolicyPhysicalPresence = command({
  code: TPM_CC.PolicyPhysicalPresence,
  handles: [POLICY_SESSION],
  params: {},
  response: {},
  run(tpm, { policySession: h }) {
    const s = policySession(tpm, h);
    update(s, u32(TPM_CC.PolicyPhysicalPresence));
    s.policy!.ppRequired = true;
    return {};
  },
});

/**
 * Part 3 §23.4 TPM2_PolicyLocality: H(digest || CC_PolicyLocality || locality). Normal
 * localities narrow by AND; an extended locality must repeat exactly.
 * RCs: TPM_RC_RANGE+P1 (zero, a mix of kinds, or nothing left).
 */
export const PolicyLocality = command({
  code: TPM_CC.PolicyLocality,
  handles: [POLICY_SESSION],
  params: { locality: UINT8 },
  response: {},
  run(tpm, { policySession: h }, { locality }) {
    const s = policySession(tpm, h);
    const prev = s.policy!.locality;
    if (locality === 0) throw new TpmError(TPM_RC.RANGE, { param: 1 });
    if (prev !== 0 && prev < 32 !== locality < 32) throw new TpmError(TPM_RC.RANGE, { param: 1 });
    let next: number;
    if (locality < 32) {
      next = (prev === 0 ? 0x1f : prev) & locality;
      if (next === 0) throw new TpmError(TPM_RC.RANGE, { param: 1 });
    } else {
      if (prev !== 0 && prev !== locality) throw new TpmError(TPM_RC.RANGE, { param: 1 });
      next = locality;
    }
    update(s, u32(TPM_CC.PolicyLocality), new Uint8Array([locality]));
    s.policy!.locality = next;
    return {};
  },
});

/**
 * Part 3 §23.7 TPM2_PolicyPCR: H(digest || CC_PolicyPCR || pcrs || pcrDigest), with the digest
 * of the selected PCRs now (a trial session takes the caller's digest when given).
 * RCs: TPM_RC_VALUE+P1 (pcrDigest differs from the PCRs), TPM_RC_PCR_CHANGED (PCRs changed
 * since an earlier PolicyPCR in this session).
 */
export const PolicyPCR = command({
  code: TPM_CC.PolicyPCR,
  handles: [POLICY_SESSION],
  params: { pcrDigest: TPM2B_DIGEST, pcrs: TPML_PCR_SELECTION },
  response: {},
  run(tpm, { policySession: h }, { pcrDigest: given, pcrs }) {
    const s = policySession(tpm, h);
    let digest = pcrDigest(tpm, s.authHash, pcrs);
    if (s.kind === 'trial') {
      if (given.length !== 0) digest = given;
    } else {
      const counter = s.policy!.pcrCounter;
      if (counter !== null && counter !== tpm.pcrs.updateCounter) throw new TpmError(TPM_RC.PCR_CHANGED);
      if (given.length !== 0 && !equal(given, digest)) throw new TpmError(TPM_RC.VALUE, { param: 1 });
    }
    update(s, u32(TPM_CC.PolicyPCR), encode(TPML_PCR_SELECTION, pcrs), digest);
    if (s.kind !== 'trial') s.policy!.pcrCounter = tpm.pcrs.updateCounter;
    return {};
  },
});

/**
 * Part 3 §23.6 TPM2_PolicyOR: if the digest is one of the list (any, in a trial session), it
 * becomes H(0…0 || CC_PolicyOR || digests). RCs: TPM_RC_SIZE+P1 (fewer than two digests),
 * TPM_RC_VALUE+P1 (no match).
 */
export const PolicyOR = command({
  code: TPM_CC.PolicyOR,
  handles: [POLICY_SESSION],
  params: { pHashList: TPML_DIGEST },
  response: {},
  run(tpm, { policySession: h }, { pHashList }) {
    const s = policySession(tpm, h);
    if (pHashList.length < 2) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    if (s.kind !== 'trial' && !pHashList.some((d) => equal(d, s.policyDigest))) throw new TpmError(TPM_RC.VALUE, { param: 1 });
    s.policyDigest = hash(s.authHash, new Uint8Array(s.policyDigest.length), u32(TPM_CC.PolicyOR), ...pHashList);
    return {};
  },
});

/**
 * Part 3 §23.9 TPM2_PolicyCpHash: H(digest || CC_PolicyCpHash || cpHashA).
 * RCs: TPM_RC_SIZE+P1 (not a digest of the session's hash), TPM_RC_CPHASH (another hash set).
 */
export const PolicyCpHash = command({
  code: TPM_CC.PolicyCpHash,
  handles: [POLICY_SESSION],
  params: { cpHashA: TPM2B_DIGEST },
  response: {},
  run(tpm, { policySession: h }, { cpHashA }) {
    const s = policySession(tpm, h);
    const p = s.policy!;
    if (cpHashA.length !== s.policyDigest.length) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    if (p.hash.length !== 0 && (p.hashKind !== 'cpHash' || !equal(p.hash, cpHashA))) throw new TpmError(TPM_RC.CPHASH);
    update(s, u32(TPM_CC.PolicyCpHash), cpHashA);
    p.hash = cpHashA;
    p.hashKind = 'cpHash';
    return {};
  },
});

/**
 * Part 3 §23.10 TPM2_PolicyNameHash: H(digest || CC_PolicyNameHash || nameHash).
 * RCs: TPM_RC_SIZE+P1, TPM_RC_CPHASH (the slot is taken).
 */
export const PolicyNameHash = command({
  code: TPM_CC.PolicyNameHash,
  handles: [POLICY_SESSION],
  params: { nameHash: TPM2B_DIGEST },
  response: {},
  run(tpm, { policySession: h }, { nameHash }) {
    const s = policySession(tpm, h);
    const p = s.policy!;
    if (nameHash.length !== s.policyDigest.length) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    if (p.hash.length !== 0 || p.hashKind !== 'none') throw new TpmError(TPM_RC.CPHASH);
    update(s, u32(TPM_CC.PolicyNameHash), nameHash);
    p.hash = nameHash;
    p.hashKind = 'nameHash';
    return {};
  },
});

/**
 * Part 3 §23.21 TPM2_PolicyTemplate: H(digest || CC_PolicyTemplate || templateHash).
 * RCs: TPM_RC_VALUE+P1 (a different template), TPM_RC_CPHASH, TPM_RC_SIZE+P1.
 */
export const PolicyTemplate = command({
  code: TPM_CC.PolicyTemplate,
  handles: [POLICY_SESSION],
  params: { templateHash: TPM2B_DIGEST },
  response: {},
  run(tpm, { policySession: h }, { templateHash }) {
    const s = policySession(tpm, h);
    const p = s.policy!;
    if (p.hashKind === 'template') {
      if (!equal(p.hash, templateHash)) throw new TpmError(TPM_RC.VALUE, { param: 1 });
    } else if (p.hash.length !== 0) {
      throw new TpmError(TPM_RC.CPHASH);
    }
    if (templateHash.length !== s.policyDigest.length) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    update(s, u32(TPM_CC.PolicyTemplate), templateHash);
    p.hash = templateHash;
    p.hashKind = 'template';
    return {};
  },
});

/**
 * Part 3 §23.20 TPM2_PolicyNvWritten: H(digest || CC_PolicyNvWritten || writtenSet).
 * RCs: TPM_RC_VALUE+P1 (the opposite state was asserted).
 */
export const PolicyNvWritten = command({
  code: TPM_CC.PolicyNvWritten,
  handles: [POLICY_SESSION],
  params: { writtenSet: BOOL },
  response: {},
  run(tpm, { policySession: h }, { writtenSet }) {
    const s = policySession(tpm, h);
    if (s.policy!.nvWritten !== null && s.policy!.nvWritten !== writtenSet) throw new TpmError(TPM_RC.VALUE, { param: 1 });
    s.policy!.nvWritten = writtenSet;
    update(s, u32(TPM_CC.PolicyNvWritten), new Uint8Array([writtenSet ? 1 : 0]));
    return {};
  },
});

/**
 * Part 3 §23.15 TPM2_PolicyDuplicationSelect: H(digest || CC || [objectName] || newParentName
 * || includeObject), then commandCode = Duplicate and nameHash = H(objectName || newParentName).
 * RCs: TPM_RC_COMMAND_CODE (a command code or nameHash already set).
 */
export const PolicyDuplicationSelect = command({
  code: TPM_CC.PolicyDuplicationSelect,
  handles: [POLICY_SESSION],
  params: { objectName: tpm2b(2 + 64), newParentName: tpm2b(2 + 64), includeObject: BOOL },
  response: {},
  run(tpm, { policySession: h }, { objectName, newParentName, includeObject }) {
    const s = policySession(tpm, h);
    const p = s.policy!;
    if (p.hash.length !== 0) throw new TpmError(TPM_RC.CPHASH);
    if (p.commandCode !== 0) throw new TpmError(TPM_RC.COMMAND_CODE);
    p.hash = hash(s.authHash, objectName, newParentName);
    p.hashKind = 'nameHash';
    const parts = includeObject ? [objectName, newParentName] : [newParentName];
    update(s, u32(TPM_CC.PolicyDuplicationSelect), ...parts, new Uint8Array([includeObject ? 1 : 0]));
    p.commandCode = TPM_CC.Duplicate;
    return {};
  },
});

/** Part 2 §6.14 TPM_EO: the comparisons PolicyCounterTimer (and PolicyNV) can make. */
const TPM_EO = {
  EQ: 0, NEQ: 1, SIGNED_GT: 2, UNSIGNED_GT: 3, SIGNED_LT: 4, UNSIGNED_LT: 5,
  SIGNED_GE: 6, UNSIGNED_GE: 7, SIGNED_LE: 8, UNSIGNED_LE: 9, BITSET: 10, BITCLEAR: 11,
} as const;
export const TPM_EO_CODEC = {
  read(r: { u16(): number }) {
    const v = r.u16();
    if (v > TPM_EO.BITCLEAR) throw new TpmError(TPM_RC.VALUE);
    return v;
  },
  write: (w: { u16(v: number): void }, v: number) => w.u16(v),
};

/** Part 2 TPM2B_OPERAND is a TPM2B_DIGEST (PolicyCounterTimer, PolicyNV). */
export const TPM2B_OPERAND = TPM2B_DIGEST;

/** Part 3 §23.17 (PolicySptCheckCondition): operandA (from the TPM) op operandB, big-endian. */
export function checkCondition(op: number, a: Uint8Array, b: Uint8Array): boolean {
  const ua = BigInt(`0x0${Buffer.from(a).toString('hex')}`);
  const ub = BigInt(`0x0${Buffer.from(b).toString('hex')}`);
  const bits = BigInt(b.length * 8);
  const signed = (v: bigint) => (b.length > 0 && v >= 1n << (bits - 1n) ? v - (1n << bits) : v);
  switch (op) {
    case TPM_EO.EQ: return ua === ub;
    case TPM_EO.NEQ: return ua !== ub;
    case TPM_EO.SIGNED_GT: return signed(ua) > signed(ub);
    case TPM_EO.UNSIGNED_GT: return ua > ub;
    case TPM_EO.SIGNED_LT: return signed(ua) < signed(ub);
    case TPM_EO.UNSIGNED_LT: return ua < ub;
    case TPM_EO.SIGNED_GE: return signed(ua) >= signed(ub);
    case TPM_EO.UNSIGNED_GE: return ua >= ub;
    case TPM_EO.SIGNED_LE: return signed(ua) <= signed(ub);
    case TPM_EO.UNSIGNED_LE: return ua <= ub;
    case TPM_EO.BITSET: return (ua & ub) === ub;
    default: return (ua & ub) === 0n;
  }
}

/**
 * Part 3 §23.8 TPM2_PolicyCounterTimer: operandB compared with the TPMS_TIME_INFO bytes at
 * offset; H(digest || CC || H(operandB || offset || operation)).
 * RCs: TPM_RC_VALUE+P2 (offset past the structure), TPM_RC_RANGE (operand runs past it),
 * TPM_RC_POLICY (the condition does not hold now).
 */
export const PolicyCounterTimer = command({
  code: TPM_CC.PolicyCounterTimer,
  handles: [POLICY_SESSION],
  params: { operandB: TPM2B_OPERAND, offset: UINT16, operation: TPM_EO_CODEC },
  response: {},
  run(tpm, { policySession: h }, { operandB, offset, operation }) {
    const info = encode(TPMS_TIME_INFO, tpm.timeInfo());
    if (offset > info.length) throw new TpmError(TPM_RC.VALUE, { param: 2 });
    if (offset + operandB.length > info.length) throw new TpmError(TPM_RC.RANGE);
    const s = policySession(tpm, h);
    if (s.kind !== 'trial' && !checkCondition(operation, info.subarray(offset, offset + operandB.length), operandB)) {
      throw new TpmError(TPM_RC.POLICY);
    }
    const args = hash(s.authHash, operandB, u16(offset), u16(operation));
    update(s, u32(TPM_CC.PolicyCounterTimer), args);
    return {};
  },
});

