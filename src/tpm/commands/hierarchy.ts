/** Part 3 §24 Hierarchy Commands: TPM2_CreatePrimary, TPM2_HierarchyChangeAuth. */
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../constants.js';
import { hash } from '../crypto/index.js';
import { CONTEXT_INTEGRITY_HASH_ALG, hashInfo } from '../algorithms.js';
import { TpmError } from '../errors.js';
import { encode, UINT32 } from '../marshal/codec.js';
import {
  TPM2B_CREATION_DATA,
  TPM2B_NAME,
  TPM2B_PUBLIC,
  TPM2B_SENSITIVE_CREATE,
  TPMS_CREATION_DATA,
  TPMT_TK_CREATION,
  type TPMS_CREATION_DATA as CreationData,
} from '../marshal/objects.js';
import { TPM2B_DATA, TPM2B_DIGEST, TPML_PCR_SELECTION, type TPML_PCR_SELECTION as PcrSelection } from '../marshal/structures.js';
import { TPMI_RH_HIERARCHY, TPMI_RH_HIERARCHY_AUTH } from '../marshal/tpmi.js';
import { TPM2B_AUTH } from '../marshal/structures.js';
import { trimTrailingZeros } from '../state/auth-value.js';
import { MAX_LOADED_OBJECTS } from '../state/objects.js';
import type { Tpm } from '../tpm.js';
import { createChecks } from './object-checks.js';
import { derivePrimary } from './object-create.js';
import { creationTicket } from './tickets.js';
import { currentPcrDigest } from './pcr.js';

const u32 = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);

/**
 * Part 3 §15.1 (TPMS_CREATION_DATA): the creation PCRs as allocated, the digest of their values
 * in selection order, the locality, and the parent (for a primary: its hierarchy).
 */
export function creationData(
  tpm: Tpm,
  nameAlg: number,
  parent: { nameAlg: number; name: Uint8Array; qualifiedName: Uint8Array },
  creationPCR: PcrSelection,
  outsideInfo: Uint8Array,
): CreationData {
  const { pcrSelect, pcrDigest } = currentPcrDigest(tpm, nameAlg, creationPCR);
  return {
    pcrSelect,
    pcrDigest,
    locality: 1 << tpm.locality,
    parentNameAlg: parent.nameAlg,
    parentName: parent.name,
    parentQualifiedName: parent.qualifiedName,
    outsideInfo,
  };
}

/**
 * Part 3 §24.1 TPM2_CreatePrimary: a key or data object derived from the hierarchy's primary
 * seed, loaded at the next free transient handle. RCs: TPM_RC_OBJECT_MEMORY,
 * TPM_RC_ATTRIBUTES/SCHEME/SYMMETRIC/KDF/HASH/SIZE+P2 (template checks, as the reference
 * orders them), TPM_RC_SIZE+P1 (userAuth longer than the nameAlg digest), TPM_RC_KEY_SIZE+P1,
 * TPM_RC_RANGE (RSA exponent).
 */
export const CreatePrimary = command({
  code: TPM_CC.CreatePrimary,
  handles: [{ name: 'primaryHandle', type: TPMI_RH_HIERARCHY.plus, auth: 'USER' }],
  params: {
    inSensitive: TPM2B_SENSITIVE_CREATE,
    inPublic: TPM2B_PUBLIC,
    outsideInfo: TPM2B_DATA,
    creationPCR: TPML_PCR_SELECTION,
  },
  response: {
    objectHandle: UINT32,
    outPublic: TPM2B_PUBLIC,
    creationData: TPM2B_CREATION_DATA,
    creationHash: TPM2B_DIGEST,
    creationTicket: TPMT_TK_CREATION,
    name: TPM2B_NAME,
  },
  responseHandle: 'objectHandle',
  run(tpm, { primaryHandle }, { inSensitive, inPublic, outsideInfo, creationPCR }) {
    if (tpm.objects.count === MAX_LOADED_OBJECTS) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    try {
      createChecks(null, inPublic, inSensitive.data.length);
    } catch (e) {
      if (e instanceof TpmError) throw new TpmError(e.rc, { param: 2 });
      throw e;
    }
    let object;
    try {
      object = derivePrimary(primaryHandle, tpm.hierarchySeed(primaryHandle), inPublic, inSensitive, tpm.rsaCache);
    } catch (e) {
      // An unusable RSA exponent comes from key generation itself and, as in the reference
      // and libtpms, carries no position.
      if (e instanceof TpmError) throw e.rc === TPM_RC.RANGE ? e : new TpmError(e.rc, { param: 1 });
      throw e;
    }
    const hierarchyName = u32(primaryHandle);
    const data = creationData(tpm, inPublic.nameAlg, { nameAlg: TPM_ALG.NULL, name: hierarchyName, qualifiedName: hierarchyName }, creationPCR, outsideInfo);
    const creationHash = hash(inPublic.nameAlg, encode(TPMS_CREATION_DATA, data));
    const objectHandle = tpm.objects.add(object);
    return {
      objectHandle,
      outPublic: object.publicArea,
      creationData: data,
      creationHash,
      creationTicket: creationTicket(tpm, primaryHandle, object.name, creationHash),
      name: object.name,
    };
  },
});

/**
 * Part 3 §24.8 TPM2_HierarchyChangeAuth: a new authValue for the lockout, endorsement, owner
 * or platform hierarchy. The first three persist; platformAuth is state-clear data that the
 * next Startup(CLEAR) empties (firmware sets it to a random value at every boot).
 * RCs: TPM_RC_SIZE+P1 (longer than the context-integrity digest, after trailing zeros go).
 */
export const HierarchyChangeAuth = command({
  code: TPM_CC.HierarchyChangeAuth,
  handles: [{ name: 'authHandle', type: TPMI_RH_HIERARCHY_AUTH, auth: 'USER' }],
  params: { newAuth: TPM2B_AUTH },
  response: {},
  nv: true,
  run(tpm, { authHandle }, { newAuth }) {
    const auth = trimTrailingZeros(newAuth).slice();
    if (auth.length > hashInfo(CONTEXT_INTEGRITY_HASH_ALG)!.digestSize) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    const p = tpm.persistent;
    switch (authHandle) {
      case TPM_RH.PLATFORM:
        tpm.platformAuth = auth;
        return {};
      case TPM_RH.OWNER:
        p.ownerAuth = auth;
        break;
      case TPM_RH.ENDORSEMENT:
        p.endorsementAuth = auth;
        break;
      default:
        p.lockoutAuth = auth;
    }
    tpm.markDirty();
    return {};
  },
});
