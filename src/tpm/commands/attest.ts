/**
 * Part 3 §18 Attestation Commands: TPM2_Certify, CertifyCreation, Quote and GetTime, and
 * §31.16 TPM2_NV_Certify. Each checks its signing key and scheme first (attestationSigner), then
 * its own inputs, and signs its TPMU_ATTEST arm with signAttestation. A signHandle of
 * TPM_RH_NULL gives the structure with the NULL signature.
 */
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_ST } from '../constants.js';
import { constantTimeEqual, hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { TPM2B_ATTEST } from '../marshal/attest.js';
import { UINT16 } from '../marshal/codec.js';
import { MAX_NV_BUFFER_SIZE, TPMI_RH_NV_AUTH, TPMI_RH_NV_INDEX } from '../marshal/nv.js';
import { TPMT_SIG_SCHEME, TPMT_SIGNATURE, TPMT_TK_CREATION } from '../marshal/objects.js';
import { TPM2B_DATA, TPM2B_DIGEST, TPML_PCR_SELECTION } from '../marshal/structures.js';
import { TPMI_DH_OBJECT, TPMI_RH_ENDORSEMENT } from '../marshal/tpmi.js';
import { nvAttributes, nvData, nvFind, nvName } from '../state/nv.js';
import type { Tpm } from '../tpm.js';
import { attestationSigner, FIRMWARE_VERSION, signAttestation } from './attest-sign.js';
import { readAccess } from './nv-data.js';
import { currentPcrDigest } from './pcr.js';
import { creationTicket } from './tickets.js';

const signHandle = { name: 'signHandle', type: TPMI_DH_OBJECT.plus, auth: 'USER' } as const;
const signed = { signature: TPMT_SIGNATURE };

/** The Name and Qualified Name of a loaded object; a sequence object has neither. */
function objectNames(tpm: Tpm, handle: number): { name: Uint8Array; qualifiedName: Uint8Array } {
  const object = tpm.keyObject(handle);
  return object ? { name: object.name, qualifiedName: object.qualifiedName } : { name: new Uint8Array(0), qualifiedName: new Uint8Array(0) };
}

/**
 * Part 3 §18.2 TPM2_Certify: that an object is loaded in this TPM, by its Name and Qualified
 * Name. objectHandle needs ADMIN authorization. RCs: TPM_RC_KEY+H2, TPM_RC_SCHEME+P2.
 */
export const Certify = command({
  code: TPM_CC.Certify,
  handles: [{ name: 'objectHandle', type: TPMI_DH_OBJECT, auth: 'ADMIN' }, signHandle],
  params: { qualifyingData: TPM2B_DATA, inScheme: TPMT_SIG_SCHEME },
  response: { certifyInfo: TPM2B_ATTEST, ...signed },
  run(tpm, { objectHandle, signHandle }, { qualifyingData, inScheme }) {
    const signer = attestationSigner(tpm, signHandle, inScheme, { handle: 2, param: 2 });
    const attested = objectNames(tpm, objectHandle);
    const { attest, signature } = signAttestation(tpm, signer, qualifyingData, { type: TPM_ST.ATTEST_CERTIFY, attested });
    return { certifyInfo: attest, signature };
  },
});

/**
 * Part 3 §18.3 TPM2_CertifyCreation: that this TPM created the object with the creation data
 * whose digest is creationHash, proved by the creation ticket. RCs: TPM_RC_KEY+H1,
 * TPM_RC_SCHEME+P3, TPM_RC_TICKET+P4 (not this TPM's ticket for this object and hash).
 */
export const CertifyCreation = command({
  code: TPM_CC.CertifyCreation,
  handles: [signHandle, { name: 'objectHandle', type: TPMI_DH_OBJECT }],
  params: { qualifyingData: TPM2B_DATA, creationHash: TPM2B_DIGEST, inScheme: TPMT_SIG_SCHEME, creationTicket: TPMT_TK_CREATION },
  response: { certifyInfo: TPM2B_ATTEST, ...signed },
  run(tpm, { signHandle, objectHandle }, { qualifyingData, creationHash, inScheme, creationTicket: ticket }) {
    const signer = attestationSigner(tpm, signHandle, inScheme, { handle: 1, param: 3 });
    const { name: objectName } = objectNames(tpm, objectHandle);
    const expected = creationTicket(tpm, ticket.hierarchy, objectName, creationHash).digest;
    if (!constantTimeEqual(expected, ticket.digest)) throw new TpmError(TPM_RC.TICKET, { param: 4 });
    const arm = { type: TPM_ST.ATTEST_CREATION, attested: { objectName, creationHash } } as const;
    const { attest, signature } = signAttestation(tpm, signer, qualifyingData, arm);
    return { certifyInfo: attest, signature };
  },
});

/**
 * Part 3 §18.4 TPM2_Quote: the digest of the selected PCRs, with the scheme's hash. RCs:
 * TPM_RC_KEY+H1, TPM_RC_SCHEME+P2 (also for TPM_RH_NULL, which gives no hash to digest with).
 */
export const Quote = command({
  code: TPM_CC.Quote,
  handles: [signHandle],
  params: { qualifyingData: TPM2B_DATA, inScheme: TPMT_SIG_SCHEME, PCRselect: TPML_PCR_SELECTION },
  response: { quoted: TPM2B_ATTEST, ...signed },
  run(tpm, { signHandle }, { qualifyingData, inScheme, PCRselect }) {
    const signer = attestationSigner(tpm, signHandle, inScheme, { handle: 1, param: 2 });
    if (signer.hashAlg === TPM_ALG.NULL) throw new TpmError(TPM_RC.SCHEME, { param: 2 });
    const attested = currentPcrDigest(tpm, signer.hashAlg, PCRselect);
    const { attest, signature } = signAttestation(tpm, signer, qualifyingData, { type: TPM_ST.ATTEST_QUOTE, attested });
    return { quoted: attest, signature };
  },
});

/**
 * Part 3 §18.7 TPM2_GetTime: the time, clock and firmware version in the clear (the header's
 * copies are obfuscated outside the endorsement and platform hierarchies), authorized by the
 * privacy administrator (endorsement). RCs: TPM_RC_KEY+H2, TPM_RC_SCHEME+P2.
 */
export const GetTime = command({
  code: TPM_CC.GetTime,
  handles: [{ name: 'privacyAdminHandle', type: TPMI_RH_ENDORSEMENT, auth: 'USER' }, signHandle],
  params: { qualifyingData: TPM2B_DATA, inScheme: TPMT_SIG_SCHEME },
  response: { timeInfo: TPM2B_ATTEST, ...signed },
  run(tpm, { signHandle }, { qualifyingData, inScheme }) {
    const signer = attestationSigner(tpm, signHandle, inScheme, { handle: 2, param: 2 });
    const time = tpm.timeInfo();
    const arm = { type: TPM_ST.ATTEST_TIME, attested: { time, firmwareVersion: FIRMWARE_VERSION } } as const;
    const { attest, signature } = signAttestation(tpm, signer, qualifyingData, arm, time);
    return { timeInfo: attest, signature };
  },
});

/**
 * Part 3 §31.16 TPM2_NV_Certify: `size` bytes of an index from `offset`, or with size and offset
 * both 0, the digest (scheme's hash) of the whole index (TPM_ST_ATTEST_NV_DIGEST). authHandle
 * must be allowed to read the index. RCs: TPM_RC_KEY+H1, TPM_RC_SCHEME+P2, TPM_RC_NV_LOCKED,
 * TPM_RC_NV_AUTHORIZATION, TPM_RC_NV_UNINITIALIZED, TPM_RC_NV_RANGE, TPM_RC_VALUE+P3 (size over
 * MAX_NV_BUFFER_SIZE).
 */
export const NV_Certify = command({
  code: TPM_CC.NV_Certify,
  handles: [signHandle, { name: 'authHandle', type: TPMI_RH_NV_AUTH, auth: 'USER' }, { name: 'nvIndex', type: TPMI_RH_NV_INDEX }],
  params: { qualifyingData: TPM2B_DATA, inScheme: TPMT_SIG_SCHEME, size: UINT16, offset: UINT16 },
  response: { certifyInfo: TPM2B_ATTEST, ...signed },
  run(tpm, { signHandle, authHandle, nvIndex }, { qualifyingData, inScheme, size, offset }) {
    const signer = attestationSigner(tpm, signHandle, inScheme, { handle: 1, param: 2 });
    const index = nvFind(tpm, nvIndex)!;
    const rc = readAccess(authHandle, nvIndex, nvAttributes(tpm, index));
    if (rc) throw new TpmError(rc);
    if (size + offset > index.public.dataSize) throw new TpmError(TPM_RC.NV_RANGE);
    if (size > MAX_NV_BUFFER_SIZE) throw new TpmError(TPM_RC.VALUE, { param: 3 });
    const indexName = nvName(tpm, index);
    const data = nvData(tpm, index);
    const arm =
      size !== 0 || offset !== 0
        ? ({ type: TPM_ST.ATTEST_NV, attested: { indexName, offset, nvContents: data.slice(offset, offset + size) } } as const)
        : ({
            type: TPM_ST.ATTEST_NV_DIGEST,
            attested: { indexName, nvDigest: signer.hashAlg === TPM_ALG.NULL ? new Uint8Array(0) : hash(signer.hashAlg, data) },
          } as const);
    const { attest, signature } = signAttestation(tpm, signer, qualifyingData, arm);
    return { certifyInfo: attest, signature };
  },
});
