/**
 * Who this TPM says it is (TPM_PT_* fixed properties). The values are libtpms 0.9's, which
 * swtpm reports: tpm2-tools recognise a software TPM by VENDOR_STRING_1 "SW  ", and scripts,
 * provisioning tools and attestation policies written for swtpm keep working unchanged.
 */

const ascii4 = (s: string): number =>
  ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;

export const VENDOR = {
  /** "2.0" */
  familyIndicator: ascii4('2.0\0'),
  specLevel: 0,
  /** Part 1 revision 1.64, which these commands follow. */
  specRevision: 164,
  specDayOfYear: 75,
  specYear: 2021,
  manufacturer: ascii4('IBM\0'),
  vendorString1: ascii4('SW  '),
  vendorString2: ascii4(' TPM'),
  vendorString3: 0,
  vendorString4: 0,
  /** TPM_PT_VENDOR_TPM_TYPE. */
  tpmType: 1,
  firmwareVersion1: 0x20191023,
  firmwareVersion2: 0x00163636,
  /** IBM's number in the TCG vendor ID registry; libtpms reports it as GET_INFO's manufacturer. */
  tcgVendorId: 0x1014,
  /** GET_INFO's TPMAttributes model, as libtpms reports it. */
  model: 'swtpm',
} as const;
