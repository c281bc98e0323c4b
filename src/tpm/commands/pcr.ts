/** Part 3 §22 Integrity Collection (PCR): read, extend, event and reset under PC Client rules. */
import { command } from '../command.js';
import { HASH_ALGS } from '../algorithms.js';
import { TPM_CC, TPM_RC, TPM_RH } from '../constants.js';
import { hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { UINT32 } from '../marshal/codec.js';
import {
  TPM2B_EVENT,
  TPML_DIGEST,
  TPML_DIGEST_VALUES,
  TPML_PCR_SELECTION,
  MAX_DIGEST_LIST,
  TPMS_PCR_SELECTION,
} from '../marshal/structures.js';
import { TPMI_DH_PCR } from '../marshal/tpmi.js';
import { isSelected, PCR_ATTRIBUTES, PCR_COUNT } from '../state/pcr.js';
import type { Tpm } from '../tpm.js';
import { clearOrderly } from './orderly.js';

/**
 * The reference's PCRComputeCurrentDigest (Quote, creation data, PolicyPCR): the selection with
 * unallocated banks' and PCRs' bits cleared, and the digest of the selected PCRs' values, bank by
 * bank in selection order and PCR by PCR in ascending order.
 */
export function currentPcrDigest(tpm: Tpm, hashAlg: number, selection: TPML_PCR_SELECTION): { pcrSelect: TPML_PCR_SELECTION; pcrDigest: Uint8Array } {
  const values: Uint8Array[] = [];
  const pcrSelect = selection.map((sel) => {
    const allocated = tpm.persistent.pcrAllocation.get(sel.hash);
    const out = new Uint8Array(sel.sizeofSelect);
    for (let pcr = 0; pcr < PCR_COUNT && pcr >> 3 < sel.sizeofSelect; pcr++) {
      if (!isSelected(sel.pcrSelect, pcr) || !allocated || !isSelected(allocated, pcr)) continue;
      values.push(tpm.pcrs.get(sel.hash, pcr)!);
      out[pcr >> 3]! |= 1 << (pcr & 7);
    }
    return { hash: sel.hash, sizeofSelect: sel.sizeofSelect, pcrSelect: out };
  });
  return { pcrSelect, pcrDigest: hash(hashAlg, ...values) };
}

/** TPM_RC_LOCALITY unless the command's locality may extend this PCR (PC Client table). */
export function checkExtendLocality(tpm: Tpm, pcr: number): void {
  if ((PCR_ATTRIBUTES[pcr]!.extendLocality & (1 << tpm.locality)) === 0) throw new TpmError(TPM_RC.LOCALITY);
}

/** A change to a PCR that Shutdown(STATE) saved invalidates the saved state. */
export function noteChange(tpm: Tpm, pcr: number): void {
  if (PCR_ATTRIBUTES[pcr]!.stateSave) clearOrderly(tpm);
}

/**
 * Part 3 §22.4 TPM2_PCR_Read: values of the selected, allocated PCRs in selection order, at
 * most eight; the returned selection says exactly which values came back.
 */
export const PCR_Read = command({
  code: TPM_CC.PCR_Read,
  handles: [],
  params: { pcrSelectionIn: TPML_PCR_SELECTION },
  response: { pcrUpdateCounter: UINT32, pcrSelectionOut: TPML_PCR_SELECTION, pcrValues: TPML_DIGEST },
  run(tpm, _h, { pcrSelectionIn }) {
    const values: Uint8Array[] = [];
    const selectionOut: TPMS_PCR_SELECTION[] = pcrSelectionIn.map((sel) => {
      const allocated = tpm.persistent.pcrAllocation.get(sel.hash);
      const out = new Uint8Array(sel.sizeofSelect);
      for (let pcr = 0; pcr < PCR_COUNT && pcr >> 3 < sel.sizeofSelect; pcr++) {
        if (!isSelected(sel.pcrSelect, pcr) || !allocated || !isSelected(allocated, pcr)) continue;
        const value = tpm.pcrs.get(sel.hash, pcr);
        if (!value || values.length === MAX_DIGEST_LIST) continue;
        values.push(value);
        out[pcr >> 3]! |= 1 << (pcr & 7);
      }
      return { hash: sel.hash, sizeofSelect: sel.sizeofSelect, pcrSelect: out };
    });
    return { pcrUpdateCounter: tpm.pcrs.updateCounter, pcrSelectionOut: selectionOut, pcrValues: values };
  },
});

/**
 * Part 3 §22.2 TPM2_PCR_Extend: each digest goes into its bank when that bank holds the PCR.
 * RCs: TPM_RC_LOCALITY (this locality may not extend the PCR). A NULL handle does nothing.
 */
export const PCR_Extend = command({
  code: TPM_CC.PCR_Extend,
  handles: [{ name: 'pcrHandle', type: TPMI_DH_PCR.plus, auth: 'USER' }],
  params: { digests: TPML_DIGEST_VALUES },
  response: {},
  nv: true,
  run(tpm, { pcrHandle }, { digests }) {
    if (pcrHandle === TPM_RH.NULL) return {};
    checkExtendLocality(tpm, pcrHandle);
    noteChange(tpm, pcrHandle);
    for (const d of digests) tpm.pcrs.extend(pcrHandle, d.hashAlg, d.digest as Uint8Array);
    return {};
  },
});

/**
 * Part 3 §22.3 TPM2_PCR_Event: digests of the event in every implemented hash, each extended
 * into its allocated bank. RCs: TPM_RC_LOCALITY.
 */
export const PCR_Event = command({
  code: TPM_CC.PCR_Event,
  handles: [{ name: 'pcrHandle', type: TPMI_DH_PCR.plus, auth: 'USER' }],
  params: { eventData: TPM2B_EVENT },
  response: { digests: TPML_DIGEST_VALUES },
  nv: true,
  run(tpm, { pcrHandle }, { eventData }) {
    if (pcrHandle !== TPM_RH.NULL) checkExtendLocality(tpm, pcrHandle);
    const digests = HASH_ALGS.map((h) => ({ hashAlg: h.alg, digest: hash(h.alg, eventData) }));
    if (pcrHandle !== TPM_RH.NULL) {
      noteChange(tpm, pcrHandle);
      tpm.pcrs.extendAllBanks(pcrHandle, new Map(digests.map((d) => [d.hashAlg, d.digest])));
    }
    return { digests };
  },
});

/** Part 3 §22.8 TPM2_PCR_Reset. RCs: TPM_RC_LOCALITY (not resettable from this locality). */
export const PCR_Reset = command({
  code: TPM_CC.PCR_Reset,
  handles: [{ name: 'pcrHandle', type: TPMI_DH_PCR, auth: 'USER' }],
  params: {},
  response: {},
  nv: true,
  run(tpm, { pcrHandle }) {
    if ((PCR_ATTRIBUTES[pcrHandle]!.resetLocality & (1 << tpm.locality)) === 0) throw new TpmError(TPM_RC.LOCALITY);
    noteChange(tpm, pcrHandle);
    tpm.pcrs.reset(pcrHandle);
    return {};
  },
});
