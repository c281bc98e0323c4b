/**
 * swtpm's GET_INFO text (libtpms TPMLIB_GetInfo): JSON describing the TPM for the flags asked
 * for, in libtpms' field order and spacing (what Debian's swtpm 0.7.1 prints). Every value comes
 * from vendor.ts. Flags vtpmd does not describe (TPMFeatures, runtime algorithms and commands,
 * profiles) contribute nothing, so unknown or unsupported flags give "{}".
 */
import { VENDOR } from './vendor.js';

/** GET_INFO flags (swtpm-compat §1.3) that vtpmd answers. */
export const TPM_INFO_FLAG = { TPMSpecification: 0x1, TPMAttributes: 0x2 } as const;

const hex8 = (v: number) => v.toString(16).toUpperCase().padStart(8, '0');

function familyString(indicator: number): string {
  let s = '';
  for (let shift = 24; shift >= 0; shift -= 8) {
    const c = (indicator >>> shift) & 0xff;
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

export function tpmInfoJson(flags: number): string {
  const parts: string[] = [];
  if (flags & TPM_INFO_FLAG.TPMSpecification) {
    parts.push(
      `"TPMSpecification":{"family":"${familyString(VENDOR.familyIndicator)}","level":${VENDOR.specLevel},"revision":${VENDOR.specRevision}}`,
    );
  }
  if (flags & TPM_INFO_FLAG.TPMAttributes) {
    parts.push(
      `"TPMAttributes":{"manufacturer":"id:${hex8(VENDOR.tcgVendorId)}","version":"id:${hex8(VENDOR.firmwareVersion1)}","model":"${VENDOR.model}"}`,
    );
  }
  return `{${parts.join(',')}}`;
}
