/**
 * Part 3 §23 assertions on NV indices: PolicyNV (a comparison with the index's data) and
 * PolicyAuthorizeNV (the policy to meet is stored in the index). Both read the index with its
 * read authorization, which the engine has checked on authHandle like NV_Read's.
 */
import { command } from '../command.js';
import { TPM_CC, TPM_RC } from '../constants.js';
import { hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { UINT16, type Codec } from '../marshal/codec.js';
import { TPMI_RH_NV_AUTH, TPMI_RH_NV_INDEX } from '../marshal/nv.js';
import { Reader } from '../marshal/reader.js';
import { TPMT_HA } from '../marshal/structures.js';
import { nvAttributes, nvData, nvFind, nvName, type NvIndex } from '../state/nv.js';
import type { Tpm } from '../tpm.js';
import { readAccess } from './nv-data.js';
import { checkCondition, TPM2B_OPERAND, TPM_EO_CODEC } from './policy.js';
import { contextUpdate } from './policy-auth.js';
import { equal, POLICY_SESSION, policySession, u16, u32, update } from './policy-support.js';

const handles = [
  { name: 'authHandle', type: TPMI_RH_NV_AUTH, auth: 'USER' },
  { name: 'nvIndex', type: TPMI_RH_NV_INDEX },
  POLICY_SESSION,
] as const;

/** The index after NvReadAccessChecks: TPM_RC_NV_LOCKED, TPM_RC_NV_AUTHORIZATION, TPM_RC_NV_UNINITIALIZED. */
function readable(tpm: Tpm, authHandle: number, nvIndex: number): NvIndex {
  const index = nvFind(tpm, nvIndex)!;
  const rc = readAccess(authHandle, nvIndex, nvAttributes(tpm, index));
  if (rc) throw new TpmError(rc);
  return index;
}

/**
 * Part 3 §23.9 TPM2_PolicyNV: operandA, the index's data at offset as long as operandB,
 * compared with operandB; H(digest || CC_PolicyNV || H(operandB || offset || operation) ||
 * nvName). A trial session skips the read and the comparison.
 * RCs: the read checks, TPM_RC_VALUE+P2 (offset past the end), TPM_RC_SIZE+P1 (operandB runs
 * past the end), TPM_RC_POLICY (the comparison is false).
 */
export const PolicyNV = command({
  code: TPM_CC.PolicyNV,
  handles,
  params: { operandB: TPM2B_OPERAND, offset: UINT16, operation: TPM_EO_CODEC },
  response: {},
  run(tpm, { authHandle, nvIndex, policySession: h }, { operandB, offset, operation }) {
    const s = policySession(tpm, h, false, 3);
    const index = nvFind(tpm, nvIndex)!;
    if (s.kind !== 'trial') {
      readable(tpm, authHandle, nvIndex);
      if (offset > index.public.dataSize) throw new TpmError(TPM_RC.VALUE, { param: 2 });
      if (index.public.dataSize - offset < operandB.length) throw new TpmError(TPM_RC.SIZE, { param: 1 });
      const operandA = nvData(tpm, index).subarray(offset, offset + operandB.length);
      if (!checkCondition(operation, operandA, operandB)) throw new TpmError(TPM_RC.POLICY);
    }
    const args = hash(s.authHash, operandB, u16(offset), u16(operation));
    update(s, u32(TPM_CC.PolicyNV), args, nvName(tpm, index));
    return {};
  },
});

/** TPMT_HA read from the index's first bytes; TPM_RC_HASH or TPM_RC_INSUFFICIENT as its unmarshaller answers. */
function storedPolicy(data: Uint8Array): { hashAlg: number; digest: Uint8Array } {
  const r = new Reader(data.subarray(0, Math.min(data.length, 2 + 64)));
  const v = (TPMT_HA as Codec<{ hashAlg: number; digest: Uint8Array | null }>).read(r);
  return { hashAlg: v.hashAlg, digest: v.digest ?? new Uint8Array(0) };
}

/**
 * Part 3 §23.22 TPM2_PolicyAuthorizeNV: if the index holds a TPMT_HA equal to the session's
 * hash and digest, the digest restarts as H(0…0 || CC_PolicyAuthorizeNV || nvName).
 * RCs: the read checks, TPM_RC_HASH / TPM_RC_INSUFFICIENT (the data is not a TPMT_HA),
 * TPM_RC_HASH (another hash than the session's), TPM_RC_VALUE (another digest).
 */
export const PolicyAuthorizeNV = command({
  code: TPM_CC.PolicyAuthorizeNV,
  handles,
  params: {},
  response: {},
  run(tpm, { authHandle, nvIndex, policySession: h }) {
    const s = policySession(tpm, h, false, 3);
    const index = nvFind(tpm, nvIndex)!;
    if (s.kind !== 'trial') {
      readable(tpm, authHandle, nvIndex);
      const policy = storedPolicy(nvData(tpm, index));
      if (policy.hashAlg !== s.authHash) throw new TpmError(TPM_RC.HASH);
      if (!equal(policy.digest, s.policyDigest)) throw new TpmError(TPM_RC.VALUE);
    }
    s.policyDigest = new Uint8Array(s.policyDigest.length);
    contextUpdate(s, TPM_CC.PolicyAuthorizeNV, nvName(tpm, index), null, new Uint8Array(0), 0n);
    return {};
  },
});
