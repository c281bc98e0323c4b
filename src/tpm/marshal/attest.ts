/**
 * Part 2 §10.12 attestation structures: TPMS_ATTEST with every TPMU_ATTEST arm, and the
 * TPM2B_ATTEST that carries it. The bytes a signing key signs are this codec's encoding, and
 * clients parse the same layout back (tpm2_checkquote, tpm2_print -t TPMS_ATTEST).
 */
import { TPM_GENERATED_VALUE, TPM_RC, TPM_ST } from '../constants.js';
import { BOOL, type Codec, Infer, oneOf, sized, struct, UINT16, UINT32, UINT64, union } from './codec.js';
import { TPM2B_MAX_NV_BUFFER } from './nv.js';
import { TPM2B_NAME } from './objects.js';
import { TPM2B_DATA, TPM2B_DIGEST, TPML_PCR_SELECTION, TPMS_CLOCK_INFO, TPMS_TIME_INFO } from './structures.js';

/** §6.2 TPM_GENERATED: only TPM_GENERATED_VALUE is a TPM-made structure. */
export const TPM_GENERATED = oneOf(UINT32, [TPM_GENERATED_VALUE], TPM_RC.VALUE);

/** §10.12.1 TPMI_ST_ATTEST: the structure tags of the attestation arms. */
export const ATTEST_TYPES = [
  TPM_ST.ATTEST_CERTIFY,
  TPM_ST.ATTEST_QUOTE,
  TPM_ST.ATTEST_SESSION_AUDIT,
  TPM_ST.ATTEST_COMMAND_AUDIT,
  TPM_ST.ATTEST_TIME,
  TPM_ST.ATTEST_CREATION,
  TPM_ST.ATTEST_NV,
  TPM_ST.ATTEST_NV_DIGEST,
] as const;
export const TPMI_ST_ATTEST = oneOf(UINT16, ATTEST_TYPES, TPM_RC.VALUE);

/** §10.12.3 TPMS_CERTIFY_INFO (Certify): the certified object's Name and Qualified Name. */
export const TPMS_CERTIFY_INFO = struct({ name: TPM2B_NAME, qualifiedName: TPM2B_NAME });
export type TPMS_CERTIFY_INFO = Infer<typeof TPMS_CERTIFY_INFO>;

/** §10.12.4 TPMS_QUOTE_INFO (Quote): the PCRs as selected (unallocated ones removed) and the digest of their values. */
export const TPMS_QUOTE_INFO = struct({ pcrSelect: TPML_PCR_SELECTION, pcrDigest: TPM2B_DIGEST });
export type TPMS_QUOTE_INFO = Infer<typeof TPMS_QUOTE_INFO>;

/** §10.12.5 TPMS_COMMAND_AUDIT_INFO (GetCommandAuditDigest). digestAlg is a TPM_ALG_ID. */
export const TPMS_COMMAND_AUDIT_INFO = struct({
  auditCounter: UINT64,
  digestAlg: UINT16,
  auditDigest: TPM2B_DIGEST,
  commandDigest: TPM2B_DIGEST,
});
export type TPMS_COMMAND_AUDIT_INFO = Infer<typeof TPMS_COMMAND_AUDIT_INFO>;

/** §10.12.6 TPMS_SESSION_AUDIT_INFO (GetSessionAuditDigest). */
export const TPMS_SESSION_AUDIT_INFO = struct({ exclusiveSession: BOOL, sessionDigest: TPM2B_DIGEST });
export type TPMS_SESSION_AUDIT_INFO = Infer<typeof TPMS_SESSION_AUDIT_INFO>;

/** §10.12.7 TPMS_CREATION_INFO (CertifyCreation). */
export const TPMS_CREATION_INFO = struct({ objectName: TPM2B_NAME, creationHash: TPM2B_DIGEST });
export type TPMS_CREATION_INFO = Infer<typeof TPMS_CREATION_INFO>;

/** §10.12.8 TPMS_NV_CERTIFY_INFO (NV_Certify of a range of the index). */
export const TPMS_NV_CERTIFY_INFO = struct({ indexName: TPM2B_NAME, offset: UINT16, nvContents: TPM2B_MAX_NV_BUFFER });
export type TPMS_NV_CERTIFY_INFO = Infer<typeof TPMS_NV_CERTIFY_INFO>;

/** §10.12.9 TPMS_NV_DIGEST_CERTIFY_INFO (NV_Certify with size and offset 0: a digest of the whole index). */
export const TPMS_NV_DIGEST_CERTIFY_INFO = struct({ indexName: TPM2B_NAME, nvDigest: TPM2B_DIGEST });
export type TPMS_NV_DIGEST_CERTIFY_INFO = Infer<typeof TPMS_NV_DIGEST_CERTIFY_INFO>;

/** §10.12.2 TPMS_TIME_ATTEST_INFO (GetTime): the time, clock and firmware version, never obfuscated. */
export const TPMS_TIME_ATTEST_INFO = struct({ time: TPMS_TIME_INFO, firmwareVersion: UINT64 });
export type TPMS_TIME_ATTEST_INFO = Infer<typeof TPMS_TIME_ATTEST_INFO>;

/** §10.12.11 TPMU_ATTEST, selected by TPMS_ATTEST.type. */
const TPMU_ATTEST = {
  [TPM_ST.ATTEST_CERTIFY]: TPMS_CERTIFY_INFO,
  [TPM_ST.ATTEST_CREATION]: TPMS_CREATION_INFO,
  [TPM_ST.ATTEST_QUOTE]: TPMS_QUOTE_INFO,
  [TPM_ST.ATTEST_COMMAND_AUDIT]: TPMS_COMMAND_AUDIT_INFO,
  [TPM_ST.ATTEST_SESSION_AUDIT]: TPMS_SESSION_AUDIT_INFO,
  [TPM_ST.ATTEST_TIME]: TPMS_TIME_ATTEST_INFO,
  [TPM_ST.ATTEST_NV]: TPMS_NV_CERTIFY_INFO,
  [TPM_ST.ATTEST_NV_DIGEST]: TPMS_NV_DIGEST_CERTIFY_INFO,
};

/** Each attestation type with the arm it carries: what a command hands to signAttestation. */
export type TPMU_ATTEST =
  | { type: typeof TPM_ST.ATTEST_CERTIFY; attested: TPMS_CERTIFY_INFO }
  | { type: typeof TPM_ST.ATTEST_CREATION; attested: TPMS_CREATION_INFO }
  | { type: typeof TPM_ST.ATTEST_QUOTE; attested: TPMS_QUOTE_INFO }
  | { type: typeof TPM_ST.ATTEST_COMMAND_AUDIT; attested: TPMS_COMMAND_AUDIT_INFO }
  | { type: typeof TPM_ST.ATTEST_SESSION_AUDIT; attested: TPMS_SESSION_AUDIT_INFO }
  | { type: typeof TPM_ST.ATTEST_TIME; attested: TPMS_TIME_ATTEST_INFO }
  | { type: typeof TPM_ST.ATTEST_NV; attested: TPMS_NV_CERTIFY_INFO }
  | { type: typeof TPM_ST.ATTEST_NV_DIGEST; attested: TPMS_NV_DIGEST_CERTIFY_INFO };

/** §10.12.12 TPMS_ATTEST. */
const TPMS_ATTEST_CODEC = struct({
  magic: TPM_GENERATED,
  type: TPMI_ST_ATTEST,
  qualifiedSigner: TPM2B_NAME,
  extraData: TPM2B_DATA,
  clockInfo: TPMS_CLOCK_INFO,
  firmwareVersion: UINT64,
  attested: union('type', TPMU_ATTEST),
});
type AttestHeader = Omit<Infer<typeof TPMS_ATTEST_CODEC>, 'type' | 'attested'>;
export type TPMS_ATTEST = AttestHeader & TPMU_ATTEST;
/** The codec's inferred type leaves type and attested unrelated; TPMS_ATTEST ties each arm to its tag. */
export const TPMS_ATTEST = TPMS_ATTEST_CODEC as unknown as Codec<TPMS_ATTEST>;

/** §10.12.13 TPM2B_ATTEST: the response field that carries the signed structure. */
export const TPM2B_ATTEST = sized(TPMS_ATTEST);
