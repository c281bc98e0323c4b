/**
 * Part 2 §10.10 TPMS_CAPABILITY_DATA and the lists it carries (§10.9, §10.8). Each list is
 * bounded by MAX_CAP_BUFFER, as the reference's MAX_CAP_* values are.
 */
import { TPM_CAP } from '../constants.js';
import { Infer, list, struct, UINT16, UINT32, UINT8, fixedBytes, dependent, union } from './codec.js';
import { TPML_PCR_SELECTION, TPMT_HA } from './structures.js';

/** libtpms' MAX_CAP_BUFFER; MAX_CAP_DATA is what is left after the capability and count. */
export const MAX_CAP_BUFFER = 1024;
const MAX_CAP_DATA = MAX_CAP_BUFFER - 4 - 4;
export const MAX_CAP_ALGS = Math.floor(MAX_CAP_DATA / 6);
export const MAX_CAP_HANDLES = Math.floor(MAX_CAP_DATA / 4);
export const MAX_CAP_CC = Math.floor(MAX_CAP_DATA / 4);
export const MAX_TPM_PROPERTIES = Math.floor(MAX_CAP_DATA / 8);
export const MAX_PCR_PROPERTIES = Math.floor(MAX_CAP_DATA / 8);
export const MAX_ECC_CURVES = Math.floor(MAX_CAP_DATA / 2);
export const MAX_TAGGED_POLICIES = Math.floor(MAX_CAP_DATA / (4 + 2 + 64));

/** §10.8.1 TPMS_ALG_PROPERTY. */
export const TPMS_ALG_PROPERTY = struct({ alg: UINT16, algProperties: UINT32 });
/** §10.8.2 TPMS_TAGGED_PROPERTY. */
export const TPMS_TAGGED_PROPERTY = struct({ property: UINT32, value: UINT32 });
/** §10.8.3 TPMS_TAGGED_PCR_SELECT. */
export const TPMS_TAGGED_PCR_SELECT = struct({
  tag: UINT32,
  sizeofSelect: UINT8,
  pcrSelect: dependent((p) => fixedBytes(p.sizeofSelect as number)),
});
/** §10.8.4 TPMS_TAGGED_POLICY. */
export const TPMS_TAGGED_POLICY = struct({ handle: UINT32, policyHash: TPMT_HA });

/** §10.8.5 TPMS_ACT_DATA. */
export const TPMS_ACT_DATA = struct({ handle: UINT32, timeout: UINT32, attributes: UINT32 });
export const MAX_ACT_DATA = Math.floor(MAX_CAP_DATA / 12);

/** §10.10.1 TPMU_CAPABILITIES, selected by the capability. */
export const TPMS_CAPABILITY_DATA = struct({
  capability: UINT32,
  data: union('capability', {
    [TPM_CAP.ALGS]: list(TPMS_ALG_PROPERTY, MAX_CAP_ALGS),
    [TPM_CAP.HANDLES]: list(UINT32, MAX_CAP_HANDLES),
    [TPM_CAP.COMMANDS]: list(UINT32, MAX_CAP_CC),
    [TPM_CAP.PP_COMMANDS]: list(UINT32, MAX_CAP_CC),
    [TPM_CAP.AUDIT_COMMANDS]: list(UINT32, MAX_CAP_CC),
    [TPM_CAP.PCRS]: TPML_PCR_SELECTION,
    [TPM_CAP.TPM_PROPERTIES]: list(TPMS_TAGGED_PROPERTY, MAX_TPM_PROPERTIES),
    [TPM_CAP.PCR_PROPERTIES]: list(TPMS_TAGGED_PCR_SELECT, MAX_PCR_PROPERTIES),
    [TPM_CAP.ECC_CURVES]: list(UINT16, MAX_ECC_CURVES),
    [TPM_CAP.AUTH_POLICIES]: list(TPMS_TAGGED_POLICY, MAX_TAGGED_POLICIES),
    [TPM_CAP.ACT]: list(TPMS_ACT_DATA, MAX_ACT_DATA),
  }),
});
export type TPMS_CAPABILITY_DATA = Infer<typeof TPMS_CAPABILITY_DATA>;
