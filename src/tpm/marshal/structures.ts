/**
 * Part 2 §10 structures and the TPM2B sizes of this implementation. Each layout is declared
 * once; its TypeScript type is inferred from the declaration, so they cannot drift apart.
 */
import { HASH_ALGS, MAX_DIGEST_SIZE } from '../algorithms.js';
import { TPM_ALG, TPM_RC, TPM_ST } from '../constants.js';
import { TpmError } from '../errors.js';
import { PCR_SELECT_MAX, PCR_SELECT_MIN } from '../state/pcr.js';
import {
  BOOL,
  Codec,
  dependent,
  EMPTY,
  fixedBytes,
  Infer,
  list,
  oneOf,
  struct,
  tpm2b,
  UINT16,
  UINT32,
  UINT64,
  UINT8,
  union,
} from './codec.js';
import { TPMI_AES_KEY_BITS, TPMI_ALG_HASH, TPMI_ALG_SYM, TPMI_ALG_SYM_MODE, TPMI_RH_HIERARCHY } from './tpmi.js';

/** Implementation sizes (libtpms' TpmProfile values, which clients see in GetCapability). */
export const MAX_DIGEST_BUFFER = 1024;
export const MAX_EVENT_DATA = 1024;
export const MAX_SYM_DATA = 128;
/** Part 2 §10.9.7: as many banks as hash algorithms implemented. */
export const HASH_COUNT = HASH_ALGS.length;
/** Part 2 §10.9.5: TPML_DIGEST holds at most eight digests. */
export const MAX_DIGEST_LIST = 8;

/** §10.4.2 TPM2B_DIGEST and its aliases (§10.4.3 TPM2B_NONCE, TPM2B_AUTH §10.4.5). */
export const TPM2B_DIGEST = tpm2b(MAX_DIGEST_SIZE);
export const TPM2B_NONCE = TPM2B_DIGEST;
export const TPM2B_AUTH = TPM2B_DIGEST;
/** §10.4.3 TPM2B_DATA: sized like a TPMT_HA. */
export const TPM2B_DATA = tpm2b(MAX_DIGEST_SIZE + 2);
/** §10.4.7 TPM2B_EVENT. */
export const TPM2B_EVENT = tpm2b(MAX_EVENT_DATA);
/** §10.4.8 TPM2B_MAX_BUFFER. */
export const TPM2B_MAX_BUFFER = tpm2b(MAX_DIGEST_BUFFER);
/** §11.1.12 TPM2B_SENSITIVE_DATA (GetRandom's randomBytes share its bound: TPM2B_DIGEST). */
export const TPM2B_SENSITIVE_DATA = tpm2b(MAX_SYM_DATA);

const digestArms: Record<number, Codec<Uint8Array | null>> = { [TPM_ALG.NULL]: EMPTY };
for (const h of HASH_ALGS) digestArms[h.alg] = fixedBytes(h.digestSize);

/** §10.3.2 TPMT_HA: a digest tagged with its algorithm (TPMU_HA §10.3.1). */
export const TPMT_HA = struct({
  hashAlg: TPMI_ALG_HASH,
  digest: union('hashAlg', digestArms),
});
export type TPMT_HA = Infer<typeof TPMT_HA>;
/** TPMT_HA+: the hash may be TPM_ALG_NULL with an empty digest. */
export const TPMT_HA_PLUS = struct({ hashAlg: TPMI_ALG_HASH.plus, digest: union('hashAlg', digestArms) });

/** §10.9.7 TPML_DIGEST_VALUES: one digest per bank for PCR_Extend. */
export const TPML_DIGEST_VALUES = list(TPMT_HA, HASH_COUNT);

/** §10.9.5 TPML_DIGEST. */
export const TPML_DIGEST = list(TPM2B_DIGEST, MAX_DIGEST_LIST);

/**
 * §10.6.2 TPMS_PCR_SELECTION. sizeofSelect outside [PCR_SELECT_MIN, PCR_SELECT_MAX] is
 * TPM_RC_VALUE, as the reference unmarshaller checks it.
 */
const SIZEOF_SELECT: Codec<number> = {
  read(r) {
    const v = r.u8();
    if (v < PCR_SELECT_MIN || v > PCR_SELECT_MAX) throw new TpmError(TPM_RC.VALUE);
    return v;
  },
  write: (w, v) => w.u8(v),
};
export const TPMS_PCR_SELECTION = struct({
  hash: TPMI_ALG_HASH,
  sizeofSelect: SIZEOF_SELECT,
  pcrSelect: dependent((p) => fixedBytes(p.sizeofSelect as number)),
});
export type TPMS_PCR_SELECTION = Infer<typeof TPMS_PCR_SELECTION>;

/** §10.9.8 TPML_PCR_SELECTION: at most one selection per bank. */
export const TPML_PCR_SELECTION = list(TPMS_PCR_SELECTION, HASH_COUNT);
export type TPML_PCR_SELECTION = Infer<typeof TPML_PCR_SELECTION>;

/** §10.7.6 TPMT_TK_HASHCHECK: tag must be TPM_ST_HASHCHECK (TPM_RC_TAG). */
export const TPMT_TK_HASHCHECK = struct({
  tag: oneOf(UINT16, [TPM_ST.HASHCHECK], TPM_RC.TAG),
  hierarchy: TPMI_RH_HIERARCHY.plus,
  digest: TPM2B_DIGEST,
});
export type TPMT_TK_HASHCHECK = Infer<typeof TPMT_TK_HASHCHECK>;

/** §10.7.5 TPMT_TK_VERIFIED: tag must be TPM_ST_VERIFIED (TPM_RC_TAG). */
export const TPMT_TK_VERIFIED = struct({
  tag: oneOf(UINT16, [TPM_ST.VERIFIED], TPM_RC.TAG),
  hierarchy: TPMI_RH_HIERARCHY.plus,
  digest: TPM2B_DIGEST,
});
export type TPMT_TK_VERIFIED = Infer<typeof TPMT_TK_VERIFIED>;

/** §10.11.1 TPMS_CLOCK_INFO. */
export const TPMS_CLOCK_INFO = struct({
  clock: UINT64,
  resetCount: UINT32,
  restartCount: UINT32,
  safe: BOOL,
});
export type TPMS_CLOCK_INFO = Infer<typeof TPMS_CLOCK_INFO>;

/** §10.11.6 TPMS_TIME_INFO. */
export const TPMS_TIME_INFO = struct({ time: UINT64, clockInfo: TPMS_CLOCK_INFO });
export type TPMS_TIME_INFO = Infer<typeof TPMS_TIME_INFO>;

/**
 * §11.1.6 TPMT_SYM_DEF (a session's parameter-encryption algorithm): keyBits and mode are
 * selected by the algorithm; XOR names a hash and has no mode; NULL has neither.
 */
export const TPMT_SYM_DEF = struct({
  algorithm: TPMI_ALG_SYM.plus,
  keyBits: union('algorithm', { [TPM_ALG.AES]: TPMI_AES_KEY_BITS, [TPM_ALG.XOR]: TPMI_ALG_HASH, [TPM_ALG.NULL]: EMPTY }),
  mode: union('algorithm', { [TPM_ALG.AES]: TPMI_ALG_SYM_MODE.plus, [TPM_ALG.XOR]: EMPTY, [TPM_ALG.NULL]: EMPTY }),
});
export type TPMT_SYM_DEF = Infer<typeof TPMT_SYM_DEF>;

/** §11.4.33 TPM2B_ENCRYPTED_SECRET: sized for the largest RSA key libtpms supports (4096 bits). */
export const TPM2B_ENCRYPTED_SECRET = tpm2b(512);

/** §12.4.3 TPM2B_ID_OBJECT: a credential blob, as large as TPMS_ID_OBJECT (two TPM2B_DIGESTs). */
export const TPM2B_ID_OBJECT = tpm2b(2 * (2 + MAX_DIGEST_SIZE));

/** §10.9.3 TPML_ALG (IncrementalSelfTest); MAX_ALG_LIST_SIZE = 64. */
export const TPML_ALG = list(UINT16, 64);

export { UINT8 };
