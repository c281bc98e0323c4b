/**
 * What every attestation command shares (Part 3 §18, the reference's Attest_spt): choosing the
 * signing key and scheme, filling in the TPMS_ATTEST header and signing it. A command supplies
 * only its arm of TPMU_ATTEST; Quote, Certify, CertifyCreation, GetTime, NV_Certify and the audit
 * commands all sign through signAttestation.
 */
import { CONTEXT_INTEGRITY_HASH_ALG } from '../algorithms.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_RC, TPM_RH } from '../constants.js';
import { hash, kdfa } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { TPMS_ATTEST, type TPMU_ATTEST } from '../marshal/attest.js';
import { encode } from '../marshal/codec.js';
import type { TPMT_SIG_SCHEME, TPMT_SIGNATURE } from '../marshal/objects.js';
import type { TPMS_CLOCK_INFO, TPMS_TIME_INFO } from '../marshal/structures.js';
import type { KeyObject } from '../state/objects.js';
import type { Tpm } from '../tpm.js';
import { VENDOR } from '../vendor.js';
import { clearOrderly } from './orderly.js';
import { isSigningKey, selectScheme, sign } from './signature.js';

/** The key an attestation is signed with (null for TPM_RH_NULL: unsigned) and the scheme chosen for it. */
export interface AttestationSigner {
  readonly key: KeyObject | null;
  /** TPM_ALG_NULL when `key` is null. */
  readonly scheme: number;
  /** The scheme's hash: it digests the attestation (and Quote's PCRs); TPM_ALG_NULL when `key` is null. */
  readonly hashAlg: number;
}

/** Where a command has its signHandle and inScheme, for the response codes' positions. */
export interface SignerPosition {
  readonly handle: number;
  readonly param: number;
}

/** TPMS_ATTEST.firmwareVersion: TPM_PT_FIRMWARE_VERSION_1 || TPM_PT_FIRMWARE_VERSION_2. */
export const FIRMWARE_VERSION = (BigInt(VENDOR.firmwareVersion1) << 32n) | BigInt(VENDOR.firmwareVersion2);

const NULL_SIGNER: AttestationSigner = { key: null, scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL };
/** The Name of TPM_RH_NULL (a handle's Name is the handle): qualifiedSigner of an unsigned attestation. */
const NULL_HANDLE_NAME = new Uint8Array([TPM_RH.NULL >>> 24, (TPM_RH.NULL >>> 16) & 0xff, (TPM_RH.NULL >>> 8) & 0xff, TPM_RH.NULL & 0xff]);

/**
 * The reference's IsSigningObject then CryptSelectSignScheme, the first checks of every
 * attestation command. TPM_RH_NULL signs nothing and uses the NULL scheme whatever was asked.
 * RCs: TPM_RC_KEY at the signHandle (not a signing key), TPM_RC_SCHEME at inScheme.
 * A restricted key may sign here: the TPM itself made the structure it signs.
 */
export function attestationSigner(tpm: Tpm, signHandle: number, inScheme: TPMT_SIG_SCHEME, at: SignerPosition): AttestationSigner {
  if (signHandle === TPM_RH.NULL) return NULL_SIGNER;
  const key = tpm.keyObject(signHandle);
  if (!key || !isSigningKey(key)) throw new TpmError(TPM_RC.KEY, { handle: at.handle });
  const { scheme, hashAlg } = selectScheme(key.publicArea, inScheme, at.param);
  return { key, scheme, hashAlg };
}

const readU64le = (b: Uint8Array, at: number): bigint => new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);

/**
 * Part 3 §18.1 / the reference's FillInAttestInfo: outside the endorsement and platform
 * hierarchies (and unsigned), resetCount, restartCount and firmwareVersion are offset by
 * KDFa(shProof, "OBFUSCATE", qualifiedSigner), so keys of different owners cannot be correlated
 * through them. The 128 bits are read as two little-endian UINT64, as libtpms does on x86.
 */
function obfuscate(tpm: Tpm, qualifiedSigner: Uint8Array, clockInfo: TPMS_CLOCK_INFO, firmwareVersion: bigint) {
  const bits = kdfa(CONTEXT_INTEGRITY_HASH_ALG, tpm.persistent.shProof, 'OBFUSCATE', qualifiedSigner, new Uint8Array(0), 128);
  const o0 = readU64le(bits, 0);
  const o1 = readU64le(bits, 8);
  return {
    clockInfo: {
      ...clockInfo,
      resetCount: (clockInfo.resetCount + Number(o1 >> 32n)) >>> 0,
      restartCount: (clockInfo.restartCount + Number(o1 & 0xffffffffn)) >>> 0,
    },
    firmwareVersion: BigInt.asUintN(64, firmwareVersion + o0),
  };
}

/**
 * FillInAttestInfo then SignAttestInfo: the TPMS_ATTEST of `arm` (magic, the signer's Qualified
 * Name or TPM_RH_NULL, the caller's qualifyingData as extraData, clockInfo and firmwareVersion,
 * obfuscated outside the endorsement and platform hierarchies), signed over H_scheme(TPMS_ATTEST)
 * with the signer's scheme, or with the NULL signature when there is no signing key. A signature
 * made reveals the clock, so the state is no longer orderly. `time` lets a command that also
 * reports the time (GetTime) use the same reading.
 */
export function signAttestation(
  tpm: Tpm,
  signer: AttestationSigner,
  qualifyingData: Uint8Array,
  arm: TPMU_ATTEST,
  time: TPMS_TIME_INFO = tpm.timeInfo(),
): { attest: TPMS_ATTEST; signature: TPMT_SIGNATURE } {
  const { key, scheme, hashAlg } = signer;
  const qualifiedSigner = key ? key.qualifiedName : NULL_HANDLE_NAME;
  const inPlatformOrEndorsement = key !== null && (key.hierarchy === TPM_RH.ENDORSEMENT || key.hierarchy === TPM_RH.PLATFORM);
  const header = inPlatformOrEndorsement
    ? { clockInfo: time.clockInfo, firmwareVersion: FIRMWARE_VERSION }
    : obfuscate(tpm, qualifiedSigner, time.clockInfo, FIRMWARE_VERSION);
  const attest: TPMS_ATTEST = { magic: TPM_GENERATED_VALUE, qualifiedSigner, extraData: qualifyingData, ...header, ...arm };
  if (!key) return { attest, signature: { sigAlg: TPM_ALG.NULL, signature: null } };
  const digest = hash(hashAlg, encode(TPMS_ATTEST, attest));
  const signature = sign(tpm, key, scheme, hashAlg, digest);
  clearOrderly(tpm);
  return { attest, signature };
}
