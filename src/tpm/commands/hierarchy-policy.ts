/** Part 3 §24.6 TPM2_SetPrimaryPolicy: the authPolicy of a hierarchy or of lockout. */
import { command } from '../command.js';
import { hashInfo } from '../algorithms.js';
import { TPM_CC, TPM_RC, TPM_RH } from '../constants.js';
import { TpmError } from '../errors.js';
import { TPM2B_DIGEST } from '../marshal/structures.js';
import { TPMI_ALG_HASH, TPMI_RH_HIERARCHY_AUTH } from '../marshal/tpmi.js';
import { EMPTY_POLICY } from '../state/persistent.js';

/**
 * Sets ownerPolicy, endorsementPolicy, lockoutPolicy (persistent) or platformPolicy
 * (state-clear). RCs: TPM_RC_SIZE+P1 (the digest is not of hashAlg's size; with TPM_ALG_NULL
 * it must be empty).
 */
export const SetPrimaryPolicy = command({
  code: TPM_CC.SetPrimaryPolicy,
  nv: true,
  handles: [{ name: 'authHandle', type: TPMI_RH_HIERARCHY_AUTH, auth: 'USER' }],
  params: { authPolicy: TPM2B_DIGEST, hashAlg: TPMI_ALG_HASH.plus },
  response: {},
  run(tpm, { authHandle }, { authPolicy, hashAlg }) {
    const size = hashInfo(hashAlg)?.digestSize ?? 0;
    if (authPolicy.length !== size) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    const policy = { alg: hashAlg, digest: authPolicy };
    if (authHandle === TPM_RH.PLATFORM) {
      tpm.platformPolicy = policy;
      return {};
    }
    const p = (tpm.persistent.policies ??= { owner: EMPTY_POLICY, endorsement: EMPTY_POLICY, lockout: EMPTY_POLICY });
    if (authHandle === TPM_RH.OWNER) p.owner = policy;
    else if (authHandle === TPM_RH.ENDORSEMENT) p.endorsement = policy;
    else p.lockout = policy;
    tpm.markDirty();
    return {};
  },
});
