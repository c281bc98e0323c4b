/**
 * Object identifiers of the TCG EK Credential Profile (§3.2 "TCG OIDs") and the Platform
 * Certificate Profile used in EK and platform certificates.
 */
export const TCG_OID = {
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
  tpmSpecification: '2.23.133.2.16',
  platformManufacturer: '2.23.133.5.1.1',
  platformModel: '2.23.133.5.1.4',
  platformVersion: '2.23.133.5.1.5',
  /** extKeyUsage of an EK certificate. */
  ekCertificate: '2.23.133.8.1',
  /** extKeyUsage of a platform certificate. */
  platformCertificate: '2.23.133.8.2',
} as const;

export const X509_OID = {
  subjectAltName: '2.5.29.17',
  subjectDirectoryAttributes: '2.5.29.9',
} as const;
