/**
 * Part 2 §9 TPMI interface types used by the implemented commands: a base type restricted
 * to the values this TPM accepts, with the response code the spec names for a bad value.
 */
import { AES_KEY_BITS, isHashAlg } from '../algorithms.js';
import { HR, TPM_ALG, TPM_RC, TPM_RH, TPM_SE, TPM_ST, TPM_SU } from '../constants.js';
import { PCR_COUNT } from '../state/pcr.js';
import { MAX_LOADED_OBJECTS } from '../state/objects.js';
import { MAX_ACTIVE_SESSIONS } from '../state/sessions.js';
import { algorithm, oneOf, tpmi, UINT16, UINT32, UINT8 } from './codec.js';

/** §9.27 TPMI_ALG_HASH: an implemented hash; `.plus` accepts TPM_ALG_NULL. */
export const TPMI_ALG_HASH = algorithm(isHashAlg, TPM_RC.HASH);

/**
 * §9.35 TPMI_ALG_MAC_SCHEME (HMAC's and HMAC_Start's hashAlg): an implemented hash (CMAC is
 * not); anything else is TPM_RC_SYMMETRIC, as libtpms answers. `.plus` accepts TPM_ALG_NULL.
 */
export const TPMI_ALG_MAC_SCHEME = algorithm(isHashAlg, TPM_RC.SYMMETRIC);

/** §9.6 TPMI_DH_PCR: a PCR number; `.plus` accepts TPM_RH_NULL. */
export const TPMI_DH_PCR = tpmi(UINT32, (h) => h < PCR_COUNT, TPM_RC.VALUE, TPM_RH.NULL);

/**
 * §9.3 TPMI_DH_OBJECT: a transient handle this TPM can have (one per object slot) or a
 * persistent handle; `.plus` accepts TPM_RH_NULL.
 */
export const TPMI_DH_OBJECT = tpmi(
  UINT32,
  (h) => isObjectHandle(h),
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

const inRange = (h: number, first: number, count: number): boolean => h >= first && h < first + count;
const isSessionHandle = (h: number): boolean =>
  inRange(h, HR.HMAC_SESSION, MAX_ACTIVE_SESSIONS) || inRange(h, HR.POLICY_SESSION, MAX_ACTIVE_SESSIONS);
const isObjectHandle = (h: number): boolean =>
  inRange(h, HR.TRANSIENT, MAX_LOADED_OBJECTS) || h >>> 24 === HR.PERSISTENT >>> 24;

/** §9.8 TPMI_SH_AUTH_SESSION: an HMAC or policy session handle this TPM can have, or TPM_RS_PW. */
export const TPMI_SH_AUTH_SESSION = tpmi(UINT32, (h) => h === TPM_RH.PW || isSessionHandle(h), TPM_RC.VALUE);

/** §9.17 TPMI_RH_ENDORSEMENT (GetTime's privacy administrator). */
export const TPMI_RH_ENDORSEMENT = oneOf(UINT32, [TPM_RH.ENDORSEMENT], TPM_RC.VALUE);

/** §9.18 TPMI_RH_LOCKOUT. */
export const TPMI_RH_LOCKOUT = oneOf(UINT32, [TPM_RH.LOCKOUT], TPM_RC.VALUE);

/** §9.8 TPMI_SH_HMAC: an HMAC session handle (GetSessionAuditDigest's session). */
export const TPMI_SH_HMAC = tpmi(UINT32, (h) => inRange(h, HR.HMAC_SESSION, MAX_ACTIVE_SESSIONS), TPM_RC.VALUE);

/** §9.9 TPMI_SH_POLICY: a policy (or trial) session handle. */
export const TPMI_SH_POLICY = tpmi(UINT32, (h) => inRange(h, HR.POLICY_SESSION, MAX_ACTIVE_SESSIONS), TPM_RC.VALUE);

/** §9.10 TPMI_DH_CONTEXT: what FlushContext and ContextSave take. */
export const TPMI_DH_CONTEXT = tpmi(
  UINT32,
  (h) => isSessionHandle(h) || inRange(h, HR.TRANSIENT, MAX_LOADED_OBJECTS),
  TPM_RC.VALUE,
);

/** §9.4 TPMI_DH_ENTITY: anything that has an authValue; `.plus` accepts TPM_RH_NULL. */
export const TPMI_DH_ENTITY = tpmi(
  UINT32,
  (h) =>
    [TPM_RH.OWNER, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM, TPM_RH.LOCKOUT].includes(h as never) ||
    isObjectHandle(h) ||
    h >>> 24 === HR.NV_INDEX >>> 24 ||
    h < PCR_COUNT,
  TPM_RC.VALUE,
  TPM_RH.NULL,
);

/** §6.11 TPM_SE: HMAC, POLICY or TRIAL. */
export const TPM_SE_CODEC = oneOf(UINT8, [TPM_SE.HMAC, TPM_SE.POLICY, TPM_SE.TRIAL], TPM_RC.VALUE);

/** §9.24 TPMI_ALG_SYM: the symmetric algorithms of a session (`.plus` accepts NULL). */
export const TPMI_ALG_SYM = algorithm([TPM_ALG.AES, TPM_ALG.XOR], TPM_RC.SYMMETRIC);

/** §9.27 TPMI_AES_KEY_BITS: an implemented AES key size, else TPM_RC_VALUE (as libtpms answers). */
export const TPMI_AES_KEY_BITS = oneOf(UINT16, AES_KEY_BITS, TPM_RC.VALUE, undefined, 'aesKeyBits');

/** §9.31 TPMI_ALG_SYM_MODE (`.plus` accepts NULL). */
export const TPMI_ALG_SYM_MODE = algorithm([TPM_ALG.CTR, TPM_ALG.OFB, TPM_ALG.CBC, TPM_ALG.CFB, TPM_ALG.ECB], TPM_RC.MODE);

/** §9.15 TPMI_RH_HIERARCHY_AUTH: the hierarchies whose authValue HierarchyChangeAuth sets. */
export const TPMI_RH_HIERARCHY_AUTH = oneOf(
  UINT32,
  [TPM_RH.LOCKOUT, TPM_RH.ENDORSEMENT, TPM_RH.OWNER, TPM_RH.PLATFORM],
  TPM_RC.VALUE,
);

/** §9.5 TPMI_DH_PARENT: an object or a hierarchy (CreateLoaded); `.plus` accepts TPM_RH_NULL. */
export const TPMI_DH_PARENT = tpmi(
  UINT32,
  (h) => isObjectHandle(h) || [TPM_RH.OWNER, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM].includes(h as never),
  TPM_RC.VALUE,
  TPM_RH.NULL,
);

/** §9.7 TPMI_DH_PERSISTENT: 0x81000000–0x81FFFFFF. */
export const TPMI_DH_PERSISTENT = tpmi(UINT32, (h) => h >>> 24 === HR.PERSISTENT >>> 24, TPM_RC.VALUE);

/** §9.12 TPMI_RH_PROVISION: owner or platform (EvictControl, NV_DefineSpace). */
export const TPMI_RH_PROVISION = oneOf(UINT32, [TPM_RH.OWNER, TPM_RH.PLATFORM], TPM_RC.VALUE);

/** §9.14 TPMI_RH_ENABLES: the hierarchies HierarchyControl switches (`.plus` accepts TPM_RH_NULL). */
export const TPMI_RH_ENABLES = oneOf(
  UINT32,
  [TPM_RH.OWNER, TPM_RH.PLATFORM, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM_NV],
  TPM_RC.VALUE,
  TPM_RH.NULL,
);

/** §9.19 TPMI_RH_CLEAR: lockout or platform (Clear, ClearControl). */
export const TPMI_RH_CLEAR = oneOf(UINT32, [TPM_RH.LOCKOUT, TPM_RH.PLATFORM], TPM_RC.VALUE);

/** §6.11 TPM_CLOCK_ADJUST: an INT8 from COARSE_SLOWER (-3) to COARSE_FASTER (3). */
export const TPM_CLOCK_ADJUST = tpmi(
  { read: (r) => (r.u8() << 24) >> 24, write: (w, v) => w.u8(v & 0xff) },
  (v) => v >= -3 && v <= 3,
  TPM_RC.VALUE,
);
