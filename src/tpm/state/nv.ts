/**
 * NV indices (Part 1 §37, Part 3 §31): their public areas, authValues and data in the persistent
 * state, the RAM copy of orderly indices, the NV memory budget and what each kind of Startup
 * does to them.
 *
 * An index without TPMA_NV_ORDERLY lives in `persistent.nv` and every change is written before
 * the response leaves. An orderly index keeps its live attributes and data in `tpm.nvRam`; the
 * copy in `persistent.nv` is what the TPM last saved of it: at every Shutdown, when an orderly
 * index is defined or deleted, when an orderly counter is first written, and each time its low
 * ORDERLY_BITS roll over. After a crash an orderly counter therefore restarts from its saved value
 * with those low bits set, which can only move it forward (Part 1 §37.4.3).
 */
import { hashInfo } from '../algorithms.js';
import { TPM_CC, TPM_NT, TPM_RC, TPMA_NV } from '../constants.js';
import { hash } from '../crypto/index.js';
import { encode } from '../marshal/codec.js';
import { TPMS_NV_PUBLIC } from '../marshal/nv.js';
import type { Tpm } from '../tpm.js';

/** One defined index as the persistent state holds it. */
export interface NvIndex {
  /** attributes here are live for an ordinary index and the last saved ones for an orderly one. */
  public: TPMS_NV_PUBLIC;
  authValue: Uint8Array;
  /** dataSize bytes (undefined until written); for an orderly index, the last saved copy. */
  data: Uint8Array;
}

/** The RAM copy of an orderly index (libtpms' NV_RAM_HEADER attributes and data). */
export interface NvRamEntry {
  attributes: number;
  data: Uint8Array;
}

/**
 * libtpms' NV memory figures (TpmProfile.h, NV.h): an index takes a 4-byte link and a 148-byte
 * NV_INDEX plus its data (none for an orderly index, whose data lives in RAM_INDEX_SPACE with a
 * 12-byte header); the list ends in a 12-byte terminator; room stays reserved for
 * MIN_EVICT_OBJECTS persistent objects and MIN_COUNTER_INDICES counters. NV_DYNAMIC_BYTES (free
 * bytes of an empty TPM) and
 * NV_EVICT_OBJECT_SIZE are calibrated against Debian's swtpm 0.7.1: a fresh TPM reports 65
 * persistent slots and 25 counters, and takes 68 indices of 2048 bytes plus one of 1900.
 */
export const NV_BUDGET = {
  NV_DYNAMIC_BYTES: 171144,
  LINK: 4,
  NV_INDEX: 148,
  LIST_TERMINATOR: 12,
  NV_EVICT_OBJECT_SIZE: 2600,
  MIN_EVICT_OBJECTS: 7,
  MIN_COUNTER_INDICES: 8,
  RAM_INDEX_SPACE: 512,
  NV_RAM_HEADER: 12,
} as const;
const B = NV_BUDGET;
const COUNTER_ENTRY = B.LINK + B.NV_INDEX + 8;
const RAM_COUNTER_ENTRY = B.NV_RAM_HEADER + 8;

/** libtpms' ORDERLY_BITS = 8: an orderly counter is saved when its low 8 bits roll over. */
export const MAX_ORDERLY_COUNT = 0xffn;

export const nvType = (attributes: number): number => (attributes & TPMA_NV.TPM_NT_MASK) >>> TPMA_NV.TPM_NT_SHIFT;
export const has = (attributes: number, bit: number): boolean => (attributes & bit) !== 0;
const set = (attributes: number, bit: number): number => (attributes | bit) >>> 0;
const clear = (attributes: number, bit: number): number => (attributes & ~bit) >>> 0;
const isCounter = (attributes: number): boolean => nvType(attributes) === TPM_NT.COUNTER;
export const isPin = (attributes: number): boolean =>
  nvType(attributes) === TPM_NT.PIN_FAIL || nvType(attributes) === TPM_NT.PIN_PASS;

/** The defined index at `handle`, or undefined. */
export function nvFind(tpm: Tpm, handle: number): NvIndex | undefined {
  return tpm.persistent.nv.find((i) => i.public.nvIndex === handle);
}

/** The public area as it is now (orderly indices: attributes from RAM). */
export function nvPublic(tpm: Tpm, index: NvIndex): TPMS_NV_PUBLIC {
  const ram = tpm.nvRam.get(index.public.nvIndex);
  return ram ? { ...index.public, attributes: ram.attributes } : index.public;
}

export function nvAttributes(tpm: Tpm, index: NvIndex): number {
  return tpm.nvRam.get(index.public.nvIndex)?.attributes ?? index.public.attributes;
}

/** The data as it is now. */
export function nvData(tpm: Tpm, index: NvIndex): Uint8Array {
  return tpm.nvRam.get(index.public.nvIndex)?.data ?? index.data;
}

/** Part 1 §16: the Name of an index, nameAlg || H_nameAlg(TPMS_NV_PUBLIC). */
export function nvName(tpm: Tpm, index: NvIndex): Uint8Array {
  const pub = nvPublic(tpm, index);
  const digest = hash(pub.nameAlg, encode(TPMS_NV_PUBLIC, pub));
  const name = new Uint8Array(2 + digest.length);
  name[0] = pub.nameAlg >> 8;
  name[1] = pub.nameAlg & 0xff;
  name.set(digest, 2);
  return name;
}

export function nvDigestSize(index: NvIndex): number {
  return hashInfo(index.public.nameAlg)!.digestSize;
}

/** Stores live attributes: RAM for an orderly index, else the persistent state. */
export function nvSetAttributes(tpm: Tpm, index: NvIndex, attributes: number): void {
  const ram = tpm.nvRam.get(index.public.nvIndex);
  if (ram) {
    ram.attributes = attributes >>> 0;
    return;
  }
  index.public = { ...index.public, attributes: attributes >>> 0 };
  tpm.markDirty();
}

/**
 * Writes data at `offset` and sets TPMA_NV_WRITTEN (the reference's NvWriteIndexData): the first
 * write to an ordinary index erases the rest of it; the first write to an orderly counter is
 * saved at once so a crash cannot take it back to unwritten.
 */
export function nvWriteData(tpm: Tpm, index: NvIndex, offset: number, bytes: Uint8Array): void {
  const ram = tpm.nvRam.get(index.public.nvIndex);
  const attributes = nvAttributes(tpm, index);
  const first = !has(attributes, TPMA_NV.WRITTEN);
  const target = ram ? ram.data : index.data;
  // As the reference's NvConditionallyWrite: rewriting the same bytes costs no NV write.
  if (!first && !ram && sameBytes(target.subarray(offset, offset + bytes.length), bytes)) return;
  // libtpms leaves the rest of a partly written ordinary index erased: all ones in NV memory,
  // zeros in the orderly RAM.
  if (first && nvType(attributes) === TPM_NT.ORDINARY) target.fill(ram ? 0 : 0xff);
  target.set(bytes, offset);
  if (first) nvSetAttributes(tpm, index, set(attributes, TPMA_NV.WRITTEN));
  if (!ram) tpm.markDirty();
  else if (first && isCounter(attributes)) nvSaveOrderly(tpm);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A counter, bits or PIN index as the big-endian UINT64 it holds. */
export function nvReadU64(tpm: Tpm, index: NvIndex): bigint {
  const data = nvData(tpm, index);
  return new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0);
}

export function nvWriteU64(tpm: Tpm, index: NvIndex, value: bigint): void {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, value));
  nvWriteData(tpm, index, 0, bytes);
}

/** Copies the RAM of every orderly index into the persistent state (NvUpdateIndexOrderlyData). */
export function nvSaveOrderly(tpm: Tpm): void {
  for (const index of tpm.persistent.nv) {
    const ram = tpm.nvRam.get(index.public.nvIndex);
    if (!ram) continue;
    index.public = { ...index.public, attributes: ram.attributes };
    index.data = ram.data.slice();
  }
  tpm.markDirty();
}

/** The RAM copies as the persistent state last saved them (NvEntityStartup's first step). */
export function nvLoadOrderly(tpm: Tpm): void {
  tpm.nvRam.clear();
  for (const index of tpm.persistent.nv) {
    if (has(index.public.attributes, TPMA_NV.ORDERLY)) {
      tpm.nvRam.set(index.public.nvIndex, { attributes: index.public.attributes, data: index.data.slice() });
    }
  }
}

/** NvSetStartupAttributes: read locks go, STCLEAR and orderly (at a TPM Reset) data is forgotten. */
function startupAttributes(attributes: number, reset: boolean): number {
  let a = clear(attributes, TPMA_NV.READLOCKED);
  if (!isCounter(a) && (has(a, TPMA_NV.CLEAR_STCLEAR) || (has(a, TPMA_NV.ORDERLY) && reset))) {
    a = clear(a, TPMA_NV.WRITTEN);
  }
  if (!has(a, TPMA_NV.WRITTEN) || !has(a, TPMA_NV.WRITEDEFINE)) a = clear(a, TPMA_NV.WRITELOCKED);
  return a;
}

/**
 * TPM2_Startup's part for NV (NvEntityStartup). Every Startup reloads the orderly RAM copies;
 * a TPM Reset or Restart also clears locks and STCLEAR data, and after a shutdown that was not
 * orderly sets the low bits of orderly counters, past any increment that was not saved.
 */
export function nvStartup(tpm: Tpm, kind: 'reset' | 'restart' | 'resume', previousOrderly: boolean): void {
  nvLoadOrderly(tpm);
  if (kind === 'resume') return;
  for (const index of tpm.persistent.nv) {
    const ram = tpm.nvRam.get(index.public.nvIndex);
    const attributes = startupAttributes(nvAttributes(tpm, index), kind === 'reset');
    nvSetAttributes(tpm, index, attributes);
    if (ram && isCounter(attributes) && !previousOrderly) {
      const view = new DataView(ram.data.buffer, ram.data.byteOffset, 8);
      view.setBigUint64(0, view.getBigUint64(0) | MAX_ORDERLY_COUNT);
    }
  }
}

/** Bytes of NV an index takes (its RAM part, if orderly, is counted by ramFree). */
const entryBytes = (p: TPMS_NV_PUBLIC): number =>
  B.LINK + B.NV_INDEX + (has(p.attributes, TPMA_NV.ORDERLY) ? 0 : p.dataSize);

export function nvCounterCount(tpm: Tpm): number {
  return tpm.persistent.nv.filter((i) => isCounter(i.public.attributes)).length;
}

/** NvGetFreeBytes: what the indices and persistent objects leave of the dynamic area. */
function nvFree(tpm: Tpm): number {
  let used = tpm.persistentObjectCount() * B.NV_EVICT_OBJECT_SIZE;
  for (const i of tpm.persistent.nv) used += entryBytes(i.public);
  return B.NV_DYNAMIC_BYTES - used;
}

function ramFree(tpm: Tpm): number {
  let used = 0;
  for (const i of tpm.persistent.nv) if (has(i.public.attributes, TPMA_NV.ORDERLY)) used += B.NV_RAM_HEADER + i.public.dataSize;
  return B.RAM_INDEX_SPACE - used;
}

/**
 * NvTestSpace + NvRamTestSpaceIndex for a new index: room for it while keeping the reserve for
 * the minimum number of persistent objects and (unless it is one) counters.
 */
export function nvHasSpaceFor(tpm: Tpm, p: TPMS_NV_PUBLIC): boolean {
  const free = nvFree(tpm);
  const size = entryBytes(p) - B.LINK;
  let reserved = B.LINK + B.LIST_TERMINATOR;
  const evict = tpm.persistentObjectCount();
  if (evict < B.MIN_EVICT_OBJECTS) reserved += (B.MIN_EVICT_OBJECTS - evict) * B.NV_EVICT_OBJECT_SIZE;
  const counters = nvCounterCount(tpm);
  if (!isCounter(p.attributes) && counters < B.MIN_COUNTER_INDICES) {
    reserved += (B.MIN_COUNTER_INDICES - counters) * COUNTER_ENTRY;
  }
  if (!(reserved < free && size <= free && size + reserved <= free)) return false;
  return !has(p.attributes, TPMA_NV.ORDERLY) || ramFree(tpm) >= B.NV_RAM_HEADER + p.dataSize;
}

/** TPM_PT_HR_PERSISTENT_AVAIL (NvCapGetPersistentAvail). */
export function nvPersistentAvail(tpm: Tpm): number {
  let avail = nvFree(tpm);
  const counters = nvCounterCount(tpm);
  if (counters < B.MIN_COUNTER_INDICES) {
    const reserved = B.LIST_TERMINATOR + (B.MIN_COUNTER_INDICES - counters) * COUNTER_ENTRY;
    avail = reserved > avail ? 0 : avail - reserved;
  }
  return Math.floor(avail / B.NV_EVICT_OBJECT_SIZE);
}

/** TPM_PT_NV_COUNTERS_AVAIL (NvCapGetCounterAvail): the smaller of what NV and RAM allow. */
export function nvCountersAvail(tpm: Tpm): number {
  let avail = nvFree(tpm);
  const evict = tpm.persistentObjectCount();
  if (evict < B.MIN_EVICT_OBJECTS) {
    const reserved = B.LIST_TERMINATOR + (B.MIN_EVICT_OBJECTS - evict) * B.NV_EVICT_OBJECT_SIZE;
    avail = reserved > avail ? 0 : avail - reserved;
  }
  return Math.min(Math.floor(avail / COUNTER_ENTRY), Math.floor(ramFree(tpm) / RAM_COUNTER_ENTRY));
}

/** The reference's IsWriteOperation: commands that use the write half of the NV attributes. */
const WRITE_COMMANDS: ReadonlySet<number> = new Set([
  TPM_CC.NV_Write,
  TPM_CC.NV_Increment,
  TPM_CC.NV_SetBits,
  TPM_CC.NV_Extend,
  TPM_CC.NV_WriteLock,
]);

/** TPMS_NV_PIN_COUNTER_PARAMETERS: pinCount then pinLimit, big-endian. */
function pinCounts(tpm: Tpm, index: NvIndex): { count: number; limit: number } {
  const data = nvData(tpm, index);
  const view = new DataView(data.buffer, data.byteOffset, 8);
  return { count: view.getUint32(0), limit: view.getUint32(4) };
}

/**
 * Whether an index may be authorized this way for this command (SessionProcess.c): the ADMIN
 * role always needs a policy session; otherwise the authValue needs AUTHWRITE or AUTHREAD (a PIN
 * index: written and pinCount below pinLimit), and a policy needs a non-empty authPolicy and
 * POLICYWRITE or POLICYREAD.
 */
export function nvAuthUnavailable(tpm: Tpm, handle: number, commandCode: number, role: string, policySession: boolean): number {
  const index = nvFind(tpm, handle);
  if (!index) return 0;
  const a = nvAttributes(tpm, index);
  const write = WRITE_COMMANDS.has(commandCode);
  const policyRequired = role === 'ADMIN' || role === 'DUP';
  if (!policySession) {
    if (policyRequired) return TPM_RC.AUTH_TYPE;
    let available: boolean;
    if (write) available = has(a, TPMA_NV.AUTHWRITE);
    else if (isPin(a)) {
      const { count, limit } = has(a, TPMA_NV.WRITTEN) ? pinCounts(tpm, index) : { count: 0, limit: 0 };
      available = count < limit;
    } else available = has(a, TPMA_NV.AUTHREAD);
    return available ? 0 : TPM_RC.AUTH_UNAVAILABLE;
  }
  if (index.public.authPolicy.length === 0) return TPM_RC.AUTH_UNAVAILABLE;
  if (policyRequired) return 0;
  return has(a, write ? TPMA_NV.POLICYWRITE : TPMA_NV.POLICYREAD) ? 0 : TPM_RC.AUTH_UNAVAILABLE;
}

/**
 * After an authValue check against a written PIN index: a PIN Fail index counts failures and
 * resets on success, a PIN Pass index counts successful uses.
 */
export function nvAuthUsed(tpm: Tpm, handle: number, ok: boolean): void {
  const index = nvFind(tpm, handle);
  if (!index) return;
  const a = nvAttributes(tpm, index);
  if (!has(a, TPMA_NV.WRITTEN)) return;
  const type = nvType(a);
  if (type !== TPM_NT.PIN_FAIL && (type !== TPM_NT.PIN_PASS || !ok)) return;
  const { count, limit } = pinCounts(tpm, index);
  const next = type === TPM_NT.PIN_FAIL && ok ? 0 : (count + 1) >>> 0;
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, next);
  view.setUint32(4, limit);
  nvWriteData(tpm, index, 0, bytes);
}

/** TPMA_NV_NO_DA exempts an index from dictionary-attack protection. */
export function nvDaExempt(tpm: Tpm, handle: number): boolean {
  const index = nvFind(tpm, handle);
  return index !== undefined && has(nvAttributes(tpm, index), TPMA_NV.NO_DA);
}
