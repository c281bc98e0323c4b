/**
 * swtpm's GET_INFO text (libtpms TPMLIB_GetInfo): JSON describing the TPM for the flags asked
 * for, in libtpms' field order and spacing (what Debian's swtpm 0.7.1 prints). Every value comes
 * from vendor.ts and profile.ts. Flags vtpmd does not describe (TPMFeatures, runtime algorithms,
 * commands and attributes) contribute nothing, so unknown or unsupported flags give "{}".
 */
import { availableProfilesJson, profileJson, type TpmProfile } from './profile.js';
import { VENDOR } from './vendor.js';

/** GET_INFO flags (swtpm-compat §1.3, swtpm's SWTPM_INFO_*) that vtpmd answers. */
export const TPM_INFO_FLAG = { TPMSpecification: 0x1, TPMAttributes: 0x2, ActiveProfile: 0x20, AvailableProfiles: 0x40 } as const;

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

/** `active`: the running TPM's profile; without one (TPM not initialized) ActiveProfile is left out, as libtpms does. */
export function tpmInfoJson(flags: number, active: TpmProfile | null = null): string {
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
  if (flags & TPM_INFO_FLAG.ActiveProfile && active !== null) parts.push(`"ActiveProfile":${profileJson(active)}`);
  if (flags & TPM_INFO_FLAG.AvailableProfiles) parts.push(availableProfilesJson().slice(1, -1));
  return `{${parts.join(',')}}`;
}
