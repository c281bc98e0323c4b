/**
 * Part 2 §13 NV storage structures and the NV handle interface types. TPMS_NV_PUBLIC is both
 * the wire form and the Name's preimage (Part 1 §16: nameAlg || H(TPMS_NV_PUBLIC)).
 */
import { HR, TPM_RC, TPM_RH, TPMA_NV } from '../constants.js';
import { TpmError } from '../errors.js';
import { bits, Codec, Infer, oneOf, sized, struct, tpm2b, tpmi, UINT16, UINT32 } from './codec.js';
import { TPM2B_DIGEST } from './structures.js';
import { TPMI_ALG_HASH } from './tpmi.js';

/** libtpms' MAX_NV_INDEX_SIZE and MAX_NV_BUFFER_SIZE (TPM_PT_NV_INDEX_MAX, TPM_PT_NV_BUFFER_MAX). */
export const MAX_NV_INDEX_SIZE = 2048;
export const MAX_NV_BUFFER_SIZE = 1024;

const isNvIndex = (h: number): boolean => h >>> 24 === HR.NV_INDEX >>> 24;

/** §9.24 TPMI_RH_NV_INDEX: a handle in the NV index range. */
export const TPMI_RH_NV_INDEX = tpmi(UINT32, isNvIndex, TPM_RC.VALUE);

/** §9.22 TPMI_RH_NV_AUTH: owner, platform or the NV index itself. */
export const TPMI_RH_NV_AUTH = tpmi(UINT32, (h) => h === TPM_RH.OWNER || h === TPM_RH.PLATFORM || isNvIndex(h), TPM_RC.VALUE);

/** §9.14 TPMI_RH_PROVISION: owner or platform. */
export const TPMI_RH_PROVISION = oneOf(UINT32, [TPM_RH.OWNER, TPM_RH.PLATFORM], TPM_RC.VALUE);

/** §9.16 TPMI_RH_PLATFORM. */
export const TPMI_RH_PLATFORM = oneOf(UINT32, [TPM_RH.PLATFORM], TPM_RC.VALUE);

/** §13.4 TPMA_NV: reserved bits are TPM_RC_RESERVED_BITS. Values are kept as unsigned 32-bit. */
const TPMA_NV_CODEC = bits(UINT32, TPMA_NV.RESERVED);

/** §13.5 TPMS_NV_PUBLIC: a dataSize over MAX_NV_INDEX_SIZE is TPM_RC_SIZE, as libtpms unmarshals it. */
const DATA_SIZE: Codec<number> = {
  read(r) {
    const v = r.u16();
    if (v > MAX_NV_INDEX_SIZE) throw new TpmError(TPM_RC.SIZE);
    return v;
  },
  write: (w, v) => w.u16(v),
};

export const TPMS_NV_PUBLIC = struct({
  nvIndex: TPMI_RH_NV_INDEX,
  nameAlg: TPMI_ALG_HASH,
  attributes: TPMA_NV_CODEC,
  authPolicy: TPM2B_DIGEST,
  dataSize: DATA_SIZE,
});
export type TPMS_NV_PUBLIC = Infer<typeof TPMS_NV_PUBLIC>;

/** §13.6 TPM2B_NV_PUBLIC. */
export const TPM2B_NV_PUBLIC = sized(TPMS_NV_PUBLIC);

/** §10.4.9 TPM2B_MAX_NV_BUFFER. */
export const TPM2B_MAX_NV_BUFFER = tpm2b(MAX_NV_BUFFER_SIZE);

export { UINT16 };
