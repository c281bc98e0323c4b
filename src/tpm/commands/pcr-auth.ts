/**
 * Part 3 §22.7 TPM2_PCR_SetAuthPolicy and §22.8 TPM2_PCR_SetAuthValue. The PC Client profile of
 * libtpms 0.9 has one policy group and one auth group, both PCRs 20–22 (PCR_ATTRIBUTES.authGroup);
 * any other PCR is TPM_RC_VALUE.
 */
import { command } from '../command.js';
import { hashInfo } from '../algorithms.js';
import { TPM_CC, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { TPMI_RH_PLATFORM } from '../marshal/nv.js';
import { TPM2B_AUTH, TPM2B_DIGEST } from '../marshal/structures.js';
import { TPMI_ALG_HASH, TPMI_DH_PCR } from '../marshal/tpmi.js';
import { trimTrailingZeros } from '../state/auth-value.js';
import { PCR_ATTRIBUTES } from '../state/pcr.js';
import { clearOrderly } from './orderly.js';

/**
 * The authPolicy of the PCR policy group, persistent. RCs: TPM_RC_SIZE+P1 (not a digest of
 * hashAlg; empty with TPM_ALG_NULL), TPM_RC_VALUE+P3 (the PCR is in no policy group).
 */
export const PCR_SetAuthPolicy = command({
  code: TPM_CC.PCR_SetAuthPolicy,
  nv: true,
  handles: [{ name: 'authHandle', type: TPMI_RH_PLATFORM, auth: 'USER' }],
  params: { authPolicy: TPM2B_DIGEST, hashAlg: TPMI_ALG_HASH.plus, pcrNum: TPMI_DH_PCR },
  response: {},
  run(tpm, _h, { authPolicy, hashAlg, pcrNum }) {
    if (authPolicy.length !== (hashInfo(hashAlg)?.digestSize ?? 0)) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    if (!PCR_ATTRIBUTES[pcrNum]?.authGroup) throw new TpmError(TPM_RC.VALUE, { param: 3 });
    tpm.persistent.pcrPolicy = { alg: hashAlg, digest: authPolicy };
    tpm.markDirty();
    return {};
  },
});

/**
 * The authValue of the PCR auth group, state-clear data (empty again after Startup(CLEAR)).
 * RCs: TPM_RC_VALUE without a position (the PCR is in no auth group), as in the reference.
 */
export const PCR_SetAuthValue = command({
  code: TPM_CC.PCR_SetAuthValue,
  handles: [{ name: 'pcrHandle', type: TPMI_DH_PCR, auth: 'USER' }],
  params: { auth: TPM2B_AUTH },
  response: {},
  run(tpm, { pcrHandle }, { auth }) {
    if (!PCR_ATTRIBUTES[pcrHandle]?.authGroup) throw new TpmError(TPM_RC.VALUE);
    tpm.pcrAuth = trimTrailingZeros(auth).slice();
    return {};
  },
});
