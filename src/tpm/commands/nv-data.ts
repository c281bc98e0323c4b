/**
 * Part 3 §31 NV Storage, index data: TPM2_NV_Write, NV_Increment, NV_Extend, NV_SetBits,
 * NV_WriteLock, NV_Read and NV_ReadLock. Each takes the authorizing entity (owner, platform or
 * the index itself) and the index; the engine has already checked the authorization itself,
 * these handlers check that the attributes let that entity read or write (NV_spt.c).
 */
import { command } from '../command.js';
import { TPM_CC, TPM_NT, TPM_RC, TPM_RH, TPMA_NV } from '../constants.js';
import { hash } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { UINT16, UINT64 } from '../marshal/codec.js';
import { MAX_NV_BUFFER_SIZE, TPM2B_MAX_NV_BUFFER, TPMI_RH_NV_AUTH, TPMI_RH_NV_INDEX } from '../marshal/nv.js';
import {
  has,
  MAX_ORDERLY_COUNT,
  nvAttributes,
  nvData,
  nvDigestSize,
  nvFind,
  nvReadU64,
  nvSaveOrderly,
  nvSetAttributes,
  nvType,
  nvWriteData,
  nvWriteU64,
  type NvIndex,
} from '../state/nv.js';
import type { Tpm } from '../tpm.js';

const handles = [
  { name: 'authHandle', type: TPMI_RH_NV_AUTH, auth: 'USER' },
  { name: 'nvIndex', type: TPMI_RH_NV_INDEX },
] as const;

/** NvWriteAccessChecks: TPM_RC_NV_LOCKED, or TPM_RC_NV_AUTHORIZATION when authHandle may not write. */
function writeAccess(authHandle: number, nvIndex: number, a: number): number {
  if (has(a, TPMA_NV.WRITELOCKED)) return TPM_RC.NV_LOCKED;
  if (authHandle === TPM_RH.OWNER) return has(a, TPMA_NV.OWNERWRITE) ? 0 : TPM_RC.NV_AUTHORIZATION;
  if (authHandle === TPM_RH.PLATFORM) return has(a, TPMA_NV.PPWRITE) ? 0 : TPM_RC.NV_AUTHORIZATION;
  return authHandle === nvIndex ? 0 : TPM_RC.NV_AUTHORIZATION;
}

/** NvReadAccessChecks (NV_Read, NV_ReadLock, NV_Certify): as writeAccess for reading, then TPM_RC_NV_UNINITIALIZED. */
export function readAccess(authHandle: number, nvIndex: number, a: number): number {
  if (has(a, TPMA_NV.READLOCKED)) return TPM_RC.NV_LOCKED;
  if (authHandle === TPM_RH.OWNER) {
    if (!has(a, TPMA_NV.OWNERREAD)) return TPM_RC.NV_AUTHORIZATION;
  } else if (authHandle === TPM_RH.PLATFORM) {
    if (!has(a, TPMA_NV.PPREAD)) return TPM_RC.NV_AUTHORIZATION;
  } else if (authHandle !== nvIndex) return TPM_RC.NV_AUTHORIZATION;
  return has(a, TPMA_NV.WRITTEN) ? 0 : TPM_RC.NV_UNINITIALIZED;
}

/** The index (the engine proved it exists) after the write checks pass. */
function writable(tpm: Tpm, authHandle: number, nvIndex: number): { index: NvIndex; a: number } {
  const index = nvFind(tpm, nvIndex)!;
  const a = nvAttributes(tpm, index);
  const rc = writeAccess(authHandle, nvIndex, a);
  if (rc) throw new TpmError(rc);
  return { index, a };
}

/**
 * Part 3 §31.7 TPM2_NV_Write. RCs: TPM_RC_NV_LOCKED, TPM_RC_NV_AUTHORIZATION, TPM_RC_ATTRIBUTES
 * (a counter, bits or extend index), TPM_RC_VALUE+P2 (offset past the end), TPM_RC_NV_RANGE
 * (data past the end, or short of the whole index with WRITEALL).
 */
export const NV_Write = command({
  code: TPM_CC.NV_Write,
  handles,
  params: { data: TPM2B_MAX_NV_BUFFER, offset: UINT16 },
  response: {},
  nv: true,
  run(tpm, { authHandle, nvIndex }, { data, offset }) {
    const { index, a } = writable(tpm, authHandle, nvIndex);
    const type = nvType(a);
    if (type === TPM_NT.COUNTER || type === TPM_NT.BITS || type === TPM_NT.EXTEND) throw new TpmError(TPM_RC.ATTRIBUTES);
    const size = index.public.dataSize;
    if (offset > size) throw new TpmError(TPM_RC.VALUE, { param: 2 });
    if (data.length > size - offset) throw new TpmError(TPM_RC.NV_RANGE);
    if (has(a, TPMA_NV.WRITEALL) && data.length < size) throw new TpmError(TPM_RC.NV_RANGE);
    nvWriteData(tpm, index, offset, data);
    return {};
  },
});

/**
 * Part 3 §31.8 TPM2_NV_Increment. The first increment starts above every counter deleted so far.
 * An orderly counter is saved each time its low bits roll over. RCs: TPM_RC_NV_LOCKED,
 * TPM_RC_NV_AUTHORIZATION, TPM_RC_ATTRIBUTES+H2 (not a counter).
 */
export const NV_Increment = command({
  code: TPM_CC.NV_Increment,
  handles,
  params: {},
  response: {},
  nv: true,
  run(tpm, { authHandle, nvIndex }) {
    const { index, a } = writable(tpm, authHandle, nvIndex);
    if (nvType(a) !== TPM_NT.COUNTER) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 2 });
    const current = has(a, TPMA_NV.WRITTEN) ? nvReadU64(tpm, index) : tpm.persistent.nvMaxCounter;
    const next = BigInt.asUintN(64, current + 1n);
    nvWriteU64(tpm, index, next);
    if (has(a, TPMA_NV.ORDERLY) && (next & MAX_ORDERLY_COUNT) === 0n) nvSaveOrderly(tpm);
    return {};
  },
});

/**
 * Part 3 §31.9 TPM2_NV_Extend: data ← H_nameAlg(data || input). RCs: TPM_RC_NV_LOCKED,
 * TPM_RC_NV_AUTHORIZATION, TPM_RC_ATTRIBUTES+H2 (not an extend index).
 */
export const NV_Extend = command({
  code: TPM_CC.NV_Extend,
  handles,
  params: { data: TPM2B_MAX_NV_BUFFER },
  response: {},
  nv: true,
  run(tpm, { authHandle, nvIndex }, { data }) {
    const { index, a } = writable(tpm, authHandle, nvIndex);
    if (nvType(a) !== TPM_NT.EXTEND) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 2 });
    const old = has(a, TPMA_NV.WRITTEN) ? nvData(tpm, index) : new Uint8Array(nvDigestSize(index));
    nvWriteData(tpm, index, 0, hash(index.public.nameAlg, old, data));
    return {};
  },
});

/**
 * Part 3 §31.10 TPM2_NV_SetBits: ORs bits into a bit-field index. RCs: TPM_RC_NV_LOCKED,
 * TPM_RC_NV_AUTHORIZATION, TPM_RC_ATTRIBUTES+H2 (not a bits index).
 */
export const NV_SetBits = command({
  code: TPM_CC.NV_SetBits,
  handles,
  params: { bits: UINT64 },
  response: {},
  nv: true,
  run(tpm, { authHandle, nvIndex }, { bits }) {
    const { index, a } = writable(tpm, authHandle, nvIndex);
    if (nvType(a) !== TPM_NT.BITS) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 2 });
    const old = has(a, TPMA_NV.WRITTEN) ? nvReadU64(tpm, index) : 0n;
    nvWriteU64(tpm, index, old | bits);
    return {};
  },
});

/**
 * Part 3 §31.11 TPM2_NV_WriteLock: WRITEDEFINE locks until the index is deleted, WRITE_STCLEAR
 * until the next TPM Reset or Restart. Locking a locked index succeeds. RCs:
 * TPM_RC_NV_AUTHORIZATION, TPM_RC_ATTRIBUTES+H2 (neither attribute).
 */
export const NV_WriteLock = command({
  code: TPM_CC.NV_WriteLock,
  handles,
  params: {},
  response: {},
  nv: true,
  run(tpm, { authHandle, nvIndex }) {
    const index = nvFind(tpm, nvIndex)!;
    const a = nvAttributes(tpm, index);
    const rc = writeAccess(authHandle, nvIndex, a);
    if (rc === TPM_RC.NV_AUTHORIZATION) throw new TpmError(rc);
    if (rc) return {};
    if (!has(a, TPMA_NV.WRITEDEFINE) && !has(a, TPMA_NV.WRITE_STCLEAR)) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 2 });
    nvSetAttributes(tpm, index, a | TPMA_NV.WRITELOCKED);
    return {};
  },
});

/**
 * Part 3 §31.13 TPM2_NV_Read. RCs: TPM_RC_NV_LOCKED, TPM_RC_NV_AUTHORIZATION,
 * TPM_RC_NV_UNINITIALIZED, TPM_RC_VALUE+P1 (size over MAX_NV_BUFFER_SIZE), TPM_RC_VALUE+P2
 * (offset past the end), TPM_RC_NV_RANGE.
 */
export const NV_Read = command({
  code: TPM_CC.NV_Read,
  handles,
  params: { size: UINT16, offset: UINT16 },
  response: { data: TPM2B_MAX_NV_BUFFER },
  run(tpm, { authHandle, nvIndex }, { size, offset }) {
    const index = nvFind(tpm, nvIndex)!;
    const rc = readAccess(authHandle, nvIndex, nvAttributes(tpm, index));
    if (rc) throw new TpmError(rc);
    if (size > MAX_NV_BUFFER_SIZE) throw new TpmError(TPM_RC.VALUE, { param: 1 });
    if (offset > index.public.dataSize) throw new TpmError(TPM_RC.VALUE, { param: 2 });
    if (size > index.public.dataSize - offset) throw new TpmError(TPM_RC.NV_RANGE);
    return { data: nvData(tpm, index).slice(offset, offset + size) };
  },
});

/**
 * Part 3 §31.14 TPM2_NV_ReadLock: READ_STCLEAR indices lock until the next TPM Reset or
 * Restart; locking a locked or unwritten index succeeds. RCs: TPM_RC_NV_AUTHORIZATION,
 * TPM_RC_ATTRIBUTES+H2 (no READ_STCLEAR).
 */
export const NV_ReadLock = command({
  code: TPM_CC.NV_ReadLock,
  handles,
  params: {},
  response: {},
  nv: true,
  run(tpm, { authHandle, nvIndex }) {
    const index = nvFind(tpm, nvIndex)!;
    const a = nvAttributes(tpm, index);
    const rc = readAccess(authHandle, nvIndex, a);
    if (rc === TPM_RC.NV_AUTHORIZATION) throw new TpmError(rc);
    if (rc === TPM_RC.NV_LOCKED) return {};
    if (!has(a, TPMA_NV.READ_STCLEAR)) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 2 });
    nvSetAttributes(tpm, index, a | TPMA_NV.READLOCKED);
    return {};
  },
});
