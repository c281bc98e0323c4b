/**
 * Part 3 §31 NV Storage, the index life cycle: TPM2_NV_DefineSpace, NV_UndefineSpace,
 * NV_UndefineSpaceSpecial, NV_ReadPublic, NV_ChangeAuth and NV_GlobalWriteLock. Reading and
 * writing index data is in nv-data.ts. Checks follow the reference implementation's order.
 */
import { command } from '../command.js';
import { TPM_CC, TPM_NT, TPM_RC, TPM_RH, TPMA_NV } from '../constants.js';
import { TpmError } from '../errors.js';
import { TPM2B_NAME } from '../marshal/objects.js';
import { TPM2B_NV_PUBLIC, TPMI_RH_NV_INDEX, TPMI_RH_PLATFORM, TPMI_RH_PROVISION, MAX_NV_BUFFER_SIZE, MAX_NV_INDEX_SIZE } from '../marshal/nv.js';
import { TPM2B_AUTH } from '../marshal/structures.js';
import { trimTrailingZeros } from '../state/auth-value.js';
import {
  has,
  nvAttributes,
  nvDigestSize,
  nvFind,
  nvHasSpaceFor,
  nvName,
  nvPublic,
  nvReadU64,
  nvSaveOrderly,
  nvSetAttributes,
  nvType,
} from '../state/nv.js';
import type { Tpm } from '../tpm.js';
import { hashInfo } from '../algorithms.js';

const ATTRIBUTES_P2 = () => new TpmError(TPM_RC.ATTRIBUTES, { param: 2 });
const SIZE_P2 = () => new TpmError(TPM_RC.SIZE, { param: 2 });

/**
 * Part 3 §31.3 TPM2_NV_DefineSpace. RCs: TPM_RC_SIZE+P2 (authPolicy not a nameAlg digest, size
 * wrong for the type, WRITEALL over MAX_NV_BUFFER_SIZE), TPM_RC_SIZE+P1 (auth longer than the
 * nameAlg digest), TPM_RC_ATTRIBUTES+P2 (unknown type, counter with CLEAR_STCLEAR, PIN rules,
 * WRITTEN/locks set, no way to read or write, CLEAR_STCLEAR with WRITEDEFINE, POLICY_DELETE
 * without platform), TPM_RC_ATTRIBUTES+H1 (PLATFORMCREATE does not match the hierarchy),
 * TPM_RC_NV_DEFINED, TPM_RC_NV_SPACE.
 */
export const NV_DefineSpace = command({
  code: TPM_CC.NV_DefineSpace,
  handles: [{ name: 'authHandle', type: TPMI_RH_PROVISION, auth: 'USER' }],
  params: { auth: TPM2B_AUTH, publicInfo: TPM2B_NV_PUBLIC },
  response: {},
  nv: true,
  run(tpm, { authHandle }, { auth, publicInfo }) {
    const a = publicInfo.attributes;
    const nameSize = hashInfo(publicInfo.nameAlg)!.digestSize;
    if (publicInfo.authPolicy.length !== 0 && publicInfo.authPolicy.length !== nameSize) throw SIZE_P2();
    const authValue = trimTrailingZeros(auth);
    if (authValue.length > nameSize) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    // The platform hierarchy may be on with its NV switched off (HierarchyControl of platformNV).
    if (authHandle === TPM_RH.PLATFORM && !tpm.phEnableNV) throw new TpmError(TPM_RC.HIERARCHY, { handle: 1 });
    const type = nvType(a);
    if (!(Object.values(TPM_NT) as number[]).includes(type)) throw ATTRIBUTES_P2();
    if (type === TPM_NT.ORDINARY) {
      if (publicInfo.dataSize > MAX_NV_INDEX_SIZE) throw SIZE_P2();
    } else if (type === TPM_NT.EXTEND) {
      if (publicInfo.dataSize !== nameSize) throw SIZE_P2();
    } else if (publicInfo.dataSize !== 8) throw SIZE_P2();
    if (type === TPM_NT.COUNTER && has(a, TPMA_NV.CLEAR_STCLEAR)) throw ATTRIBUTES_P2();
    // A PIN index is written by the platform, the owner or a policy, never with its own authValue.
    if (type === TPM_NT.PIN_FAIL && !has(a, TPMA_NV.NO_DA)) throw ATTRIBUTES_P2();
    if ((type === TPM_NT.PIN_FAIL || type === TPM_NT.PIN_PASS) &&
      (has(a, TPMA_NV.AUTHWRITE) || has(a, TPMA_NV.GLOBALLOCK) || has(a, TPMA_NV.WRITEDEFINE))) throw ATTRIBUTES_P2();
    if (has(a, TPMA_NV.WRITTEN) || has(a, TPMA_NV.WRITELOCKED) || has(a, TPMA_NV.READLOCKED)) throw ATTRIBUTES_P2();
    if (!(a & (TPMA_NV.OWNERREAD | TPMA_NV.PPREAD | TPMA_NV.AUTHREAD | TPMA_NV.POLICYREAD))) throw ATTRIBUTES_P2();
    if (!(a & (TPMA_NV.OWNERWRITE | TPMA_NV.PPWRITE | TPMA_NV.AUTHWRITE | TPMA_NV.POLICYWRITE))) throw ATTRIBUTES_P2();
    if (has(a, TPMA_NV.CLEAR_STCLEAR) && has(a, TPMA_NV.WRITEDEFINE)) throw ATTRIBUTES_P2();
    // The hierarchy that defines an index must be able to delete it.
    if (has(a, TPMA_NV.PLATFORMCREATE) !== (authHandle === TPM_RH.PLATFORM)) {
      throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    }
    if (has(a, TPMA_NV.POLICY_DELETE) && authHandle !== TPM_RH.PLATFORM) throw ATTRIBUTES_P2();
    if (publicInfo.dataSize > MAX_NV_BUFFER_SIZE && has(a, TPMA_NV.WRITEALL)) throw SIZE_P2();
    if (nvFind(tpm, publicInfo.nvIndex)) throw new TpmError(TPM_RC.NV_DEFINED);
    if (!nvHasSpaceFor(tpm, publicInfo)) throw new TpmError(TPM_RC.NV_SPACE);

    const index = {
      public: { ...publicInfo, attributes: a >>> 0 },
      authValue: authValue.slice(),
      data: new Uint8Array(publicInfo.dataSize),
    };
    tpm.persistent.nv.push(index);
    if (has(a, TPMA_NV.ORDERLY)) {
      tpm.nvRam.set(publicInfo.nvIndex, { attributes: a >>> 0, data: new Uint8Array(publicInfo.dataSize) });
      // As NvAddRAM does: the whole orderly RAM is saved with the new entry.
      nvSaveOrderly(tpm);
    }
    tpm.markDirty();
    return {};
  },
});

/** Removes an index (NvDeleteIndex); a written counter raises the floor for new counters. */
export function deleteIndex(tpm: Tpm, handle: number): void {
  const index = nvFind(tpm, handle)!;
  const a = nvAttributes(tpm, index);
  if (nvType(a) === TPM_NT.COUNTER && has(a, TPMA_NV.WRITTEN)) {
    const value = nvReadU64(tpm, index);
    if (value > tpm.persistent.nvMaxCounter) tpm.persistent.nvMaxCounter = value;
  }
  tpm.persistent.nv = tpm.persistent.nv.filter((i) => i !== index);
  if (tpm.nvRam.delete(handle)) nvSaveOrderly(tpm);
  tpm.markDirty();
}

/**
 * Part 3 §31.4 TPM2_NV_UndefineSpace. RCs: TPM_RC_ATTRIBUTES+H2 (POLICY_DELETE: use
 * NV_UndefineSpaceSpecial), TPM_RC_NV_AUTHORIZATION (the owner deleting a platform index).
 */
export const NV_UndefineSpace = command({
  code: TPM_CC.NV_UndefineSpace,
  handles: [
    { name: 'authHandle', type: TPMI_RH_PROVISION, auth: 'USER' },
    { name: 'nvIndex', type: TPMI_RH_NV_INDEX },
  ],
  params: {},
  response: {},
  nv: true,
  run(tpm, { authHandle, nvIndex }) {
    const a = nvAttributes(tpm, nvFind(tpm, nvIndex)!);
    if (has(a, TPMA_NV.POLICY_DELETE)) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 2 });
    if (authHandle === TPM_RH.OWNER && has(a, TPMA_NV.PLATFORMCREATE)) throw new TpmError(TPM_RC.NV_AUTHORIZATION);
    deleteIndex(tpm, nvIndex);
    return {};
  },
});

/**
 * Part 3 §31.5 TPM2_NV_UndefineSpaceSpecial: deletes a POLICY_DELETE index, authorized by its
 * policy (ADMIN role: a policy session) and platformAuth. RCs: TPM_RC_ATTRIBUTES+H1 (no
 * POLICY_DELETE); the engine answers TPM_RC_AUTH_TYPE for anything but a policy session.
 */
export const NV_UndefineSpaceSpecial = command({
  code: TPM_CC.NV_UndefineSpaceSpecial,
  handles: [
    { name: 'nvIndex', type: TPMI_RH_NV_INDEX, auth: 'ADMIN' },
    { name: 'platform', type: TPMI_RH_PLATFORM, auth: 'USER' },
  ],
  params: {},
  response: {},
  nv: true,
  run(tpm, { nvIndex }) {
    const a = nvAttributes(tpm, nvFind(tpm, nvIndex)!);
    if (!has(a, TPMA_NV.POLICY_DELETE)) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    deleteIndex(tpm, nvIndex);
    return {};
  },
});

/** Part 3 §31.6 TPM2_NV_ReadPublic: the public area as it is now, and the index's Name. */
export const NV_ReadPublic = command({
  code: TPM_CC.NV_ReadPublic,
  handles: [{ name: 'nvIndex', type: TPMI_RH_NV_INDEX }],
  params: {},
  response: { nvPublic: TPM2B_NV_PUBLIC, nvName: TPM2B_NAME },
  run(tpm, { nvIndex }) {
    const index = nvFind(tpm, nvIndex)!;
    return { nvPublic: nvPublic(tpm, index), nvName: nvName(tpm, index) };
  },
});

/**
 * Part 3 §31.17 TPM2_NV_ChangeAuth: a new authValue (ADMIN role: only a policy session gets
 * here). RCs: TPM_RC_SIZE+P1 (longer than the nameAlg digest after trailing zeros go).
 */
export const NV_ChangeAuth = command({
  code: TPM_CC.NV_ChangeAuth,
  handles: [{ name: 'nvIndex', type: TPMI_RH_NV_INDEX, auth: 'ADMIN' }],
  params: { newAuth: TPM2B_AUTH },
  response: {},
  nv: true,
  run(tpm, { nvIndex }, { newAuth }) {
    const index = nvFind(tpm, nvIndex)!;
    const auth = trimTrailingZeros(newAuth);
    if (auth.length > nvDigestSize(index)) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    index.authValue = auth.slice();
    tpm.markDirty();
    return {};
  },
});

/**
 * Part 3 §31.15 TPM2_NV_GlobalWriteLock: write-locks every index with GLOBALLOCK until the next
 * TPM Reset or Restart.
 */
export const NV_GlobalWriteLock = command({
  code: TPM_CC.NV_GlobalWriteLock,
  handles: [{ name: 'authHandle', type: TPMI_RH_PROVISION, auth: 'USER' }],
  params: {},
  response: {},
  nv: true,
  run(tpm) {
    for (const index of tpm.persistent.nv) {
      const a = nvAttributes(tpm, index);
      if (has(a, TPMA_NV.GLOBALLOCK)) nvSetAttributes(tpm, index, a | TPMA_NV.WRITELOCKED);
    }
    return {};
  },
});
