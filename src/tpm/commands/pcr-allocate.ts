/** Part 3 §22.5 TPM2_PCR_Allocate: the PCR banks the TPM will have after the next TPM Reset. */
import { command } from '../command.js';
import { HASH_ALGS, hashInfo } from '../algorithms.js';
import { TPM_CC, TPM_RC, TPM_RH } from '../constants.js';
import { TpmError } from '../errors.js';
import { BOOL, oneOf, UINT32 } from '../marshal/codec.js';
import { TPML_PCR_SELECTION } from '../marshal/structures.js';
import { DRTM_PCR, HCRTM_PCR, isSelected, PCR_COUNT, PCR_SELECT_MAX, type PcrAllocation } from '../state/pcr.js';

/** Part 2 §9.16 TPMI_RH_PLATFORM. */
const TPMI_RH_PLATFORM = oneOf(UINT32, [TPM_RH.PLATFORM], TPM_RC.VALUE);

/**
 * PCR storage of this implementation: every PCR of every implemented bank (the reference's
 * sizeof(s_pcrs)), so any allocation fits.
 */
export const PCR_SIZE_AVAILABLE = PCR_COUNT * HASH_ALGS.reduce((n, h) => n + h.digestSize, 0);

/**
 * The requested allocation over the current one (the reference's PCRAllocate): a bank the
 * request leaves out keeps its PCRs, a bank named twice takes the last selection. Bitmaps are
 * stored PCR_SELECT_MAX bytes long.
 */
export function mergeAllocation(current: PcrAllocation, request: TPML_PCR_SELECTION): PcrAllocation {
  const next: PcrAllocation = new Map([...current].map(([alg, bits]) => [alg, bits.slice()]));
  for (const sel of request) {
    const bits = new Uint8Array(PCR_SELECT_MAX);
    bits.set(sel.pcrSelect.subarray(0, PCR_SELECT_MAX));
    next.set(sel.hash, bits);
  }
  return next;
}

/**
 * Part 3 §22.5 TPM2_PCR_Allocate (platform authorization). The new allocation is kept in
 * persistent.pcrAllocationNext and replaces persistent.pcrAllocation at the next TPM Reset
 * (Startup(CLEAR) after Shutdown(CLEAR) or no orderly shutdown); until then the TPM runs with the
 * banks it has. allocationSuccess is NO only when the allocation does not fit (never here).
 * RCs: TPM_RC_PCR (no bank would hold the H-CRTM PCR 0 or the DRTM PCR 17).
 */
export const PCR_Allocate = command({
  code: TPM_CC.PCR_Allocate,
  handles: [{ name: 'authHandle', type: TPMI_RH_PLATFORM, auth: 'USER' }],
  params: { pcrAllocation: TPML_PCR_SELECTION },
  response: { allocationSuccess: BOOL, maxPCR: UINT32, sizeNeeded: UINT32, sizeAvailable: UINT32 },
  nv: true,
  run(tpm, _h, { pcrAllocation }) {
    const p = tpm.persistent;
    const next = mergeAllocation(p.pcrAllocationNext ?? p.pcrAllocation, pcrAllocation);
    let sizeNeeded = 0;
    let hcrtm = false;
    let drtm = false;
    for (const [alg, bits] of next) {
      hcrtm ||= isSelected(bits, HCRTM_PCR);
      drtm ||= isSelected(bits, DRTM_PCR);
      for (let pcr = 0; pcr < PCR_COUNT; pcr++) if (isSelected(bits, pcr)) sizeNeeded += hashInfo(alg)!.digestSize;
    }
    if (!hcrtm || !drtm) throw new TpmError(TPM_RC.PCR);
    p.pcrAllocationNext = next;
    tpm.markDirty();
    return { allocationSuccess: true, maxPCR: PCR_COUNT, sizeNeeded, sizeAvailable: PCR_SIZE_AVAILABLE };
  },
});
