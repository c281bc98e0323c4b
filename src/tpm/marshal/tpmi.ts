/**
 * Part 2 §9 TPMI interface types used by the implemented commands: a base type restricted
 * to the values this TPM accepts, with the response code the spec names for a bad value.
 */
import { isHashAlg } from '../algorithms.js';
import { HR, TPM_ALG, TPM_RC, TPM_RH, TPM_ST, TPM_SU } from '../constants.js';
import { PCR_COUNT } from '../state/pcr.js';
import { MAX_LOADED_OBJECTS } from '../state/objects.js';
import { oneOf, tpmi, UINT16, UINT32 } from './codec.js';

/** §9.27 TPMI_ALG_HASH: an implemented hash; `.plus` accepts TPM_ALG_NULL. */
export const TPMI_ALG_HASH = tpmi(UINT16, isHashAlg, TPM_RC.HASH, TPM_ALG.NULL);

/** §9.6 TPMI_DH_PCR: a PCR number; `.plus` accepts TPM_RH_NULL. */
export const TPMI_DH_PCR = tpmi(UINT32, (h) => h < PCR_COUNT, TPM_RC.VALUE, TPM_RH.NULL);

/**
 * §9.3 TPMI_DH_OBJECT: a transient handle this TPM can have (one per object slot) or a
 * persistent handle; `.plus` accepts TPM_RH_NULL.
 */
export const TPMI_DH_OBJECT = tpmi(
  UINT32,
  (h) => (h >= HR.TRANSIENT && h < HR.TRANSIENT + MAX_LOADED_OBJECTS) || h >>> 24 === HR.PERSISTENT >>> 24,
  TPM_RC.VALUE,
  TPM_RH.NULL,
);

/** §9.13 TPMI_RH_HIERARCHY: `.plus` accepts TPM_RH_NULL. */
export const TPMI_RH_HIERARCHY = oneOf(
  UINT32,
  [TPM_RH.OWNER, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM],
  TPM_RC.VALUE,
  TPM_RH.NULL,
);

/** §6.8 TPM_SU: only CLEAR and STATE exist; anything else is TPM_RC_VALUE. */
export const TPM_SU_CODEC = oneOf(UINT16, [TPM_SU.CLEAR, TPM_SU.STATE], TPM_RC.VALUE);

/** §6.9 TPM_ST: a value that is no structure tag at all is TPM_RC_VALUE. */
export const TPM_ST_CODEC = oneOf(UINT16, Object.values(TPM_ST), TPM_RC.VALUE);

/** §9.29 TPMI_ST_COMMAND_TAG: a structure tag that is not a command tag is TPM_RC_BAD_TAG. */
export const TPMI_ST_COMMAND_TAG = oneOf(TPM_ST_CODEC, [TPM_ST.NO_SESSIONS, TPM_ST.SESSIONS], TPM_RC.BAD_TAG);

/** §9.8 TPMI_SH_AUTH_SESSION: an HMAC or policy session, or TPM_RS_PW. */
export const TPMI_SH_AUTH_SESSION = tpmi(
  UINT32,
  (h) => h === TPM_RH.PW || h >>> 24 === HR.HMAC_SESSION >>> 24 || h >>> 24 === HR.POLICY_SESSION >>> 24,
  TPM_RC.VALUE,
);
