/**
 * The permanent state's journal, `tpm2-00.permall.journal` (ours; swtpm has none): a cheaper
 * durable write than replacing `tpm2-00.permall` for every change. Replacing a file costs a new
 * file, a rename and two metadata commits; the journal is allocated once (written with zeros and
 * fsynced), so a change overwrites blocks that already exist and needs only an fdatasync.
 *
 * The file is two slots of equal size (a multiple of 4096 bytes; the file's size fixes the
 * layout). Each store goes into the slot that does not hold the newest record, so a torn write
 * leaves the previous record intact. A slot holds one record:
 *
 *   0  magic     8   "vtpmjrnl"
 *   8  version   u16 1
 *  10  hdrsize   u16 64
 *  12  length    u32 payload bytes
 *  16  sequence  u64 one more than any record before it
 *  24  reserved  8   zero
 *  32  base      32  SHA-256 of the `tpm2-00.permall` file this record follows
 *  64  payload       the state exactly as `tpm2-00.permall` would hold it (same envelope, same
 *                    encryption under --key)
 *  64+length digest 32  SHA-256 of everything before it (header and payload)
 *
 * (big-endian). The newest record with a good digest is the newest permanent state if its base is
 * the permall on disk; otherwise the permall is. Invariant: a record whose base is the permall's
 * digest was written after that permall was durable, so it is at least as new. A checkpoint
 * rewrites the permall (which turns every record stale: their base no longer matches) and then
 * zeroes the headers; a permall put back by hand from a backup makes the journal stale the same way.
 */
import * as fs from 'node:fs';
import { constantTimeEqual, hash } from '../tpm/crypto/index.js';
import { fsyncDir, type FsOps } from './atomic-write.js';
import { ALG_SHA256 } from './state-key.js';

export const JOURNAL_MAGIC = new TextEncoder().encode('vtpmjrnl');
export const JOURNAL_VERSION = 1;
export const JOURNAL_HEADER_SIZE = 64;
/** The SHA-256 after the payload. */
export const JOURNAL_DIGEST_SIZE = 32;
/** Slots are whole pages, so a slot's write never shares a page with the other slot. */
export const JOURNAL_PAGE = 4096;
/** A new journal's slots hold at least this much, and twice the record that made it. */
const MIN_SLOT_SIZE = 16 * 1024;

/** SHA-256 of a permall file's bytes: what a record's base names. */
export function permallDigest(file: Uint8Array): Uint8Array {
  return hash(ALG_SHA256, file);
}

export interface JournalRecord {
  sequence: bigint;
  base: Uint8Array;
  payload: Uint8Array;
}

/** The record in one slot, or null when it is empty, torn or damaged. */
function readSlot(slot: Uint8Array): JournalRecord | null {
  if (slot.length < JOURNAL_HEADER_SIZE + JOURNAL_DIGEST_SIZE) return null;
  const v = new DataView(slot.buffer, slot.byteOffset, slot.byteLength);
  for (let i = 0; i < JOURNAL_MAGIC.length; i++) if (slot[i] !== JOURNAL_MAGIC[i]) return null;
  if (v.getUint16(8) !== JOURNAL_VERSION || v.getUint16(10) !== JOURNAL_HEADER_SIZE) return null;
  const length = v.getUint32(12);
  if (length > slot.length - JOURNAL_HEADER_SIZE - JOURNAL_DIGEST_SIZE) return null;
  const end = JOURNAL_HEADER_SIZE + length;
  if (!constantTimeEqual(hash(ALG_SHA256, slot.subarray(0, end)), slot.subarray(end, end + JOURNAL_DIGEST_SIZE))) return null;
  return { sequence: v.getBigUint64(16), base: slot.slice(32, JOURNAL_HEADER_SIZE), payload: slot.slice(JOURNAL_HEADER_SIZE, end) };
}

/** The slot size of a journal file of `size` bytes, or 0 if no journal has that size. */
function slotSizeOf(size: number): number {
  return size > 0 && size % (2 * JOURNAL_PAGE) === 0 ? size / 2 : 0;
}

/** Both slots' records (null: none valid) of a journal file's bytes; none for a file of another size. */
export function readJournal(file: Uint8Array): [JournalRecord | null, JournalRecord | null] {
  const slot = slotSizeOf(file.length);
  if (slot === 0) return [null, null];
  return [readSlot(file.subarray(0, slot)), readSlot(file.subarray(slot))];
}

/** The newest valid record of a journal file's bytes. */
export function newestRecord(file: Uint8Array): JournalRecord | null {
  const [a, b] = readJournal(file);
  if (a && b) return a.sequence > b.sequence ? a : b;
  return a ?? b;
}

/** The size of the record for a payload of `length` bytes. */
export function recordSize(length: number): number {
  return JOURNAL_HEADER_SIZE + length + JOURNAL_DIGEST_SIZE;
}

/** The bytes of one record, written at the start of `into` (a new buffer if none is given). */
export function encodeRecord(sequence: bigint, base: Uint8Array, payload: Uint8Array, into?: Uint8Array): Uint8Array {
  const end = JOURNAL_HEADER_SIZE + payload.length;
  const out = (into ?? new Uint8Array(recordSize(payload.length))).subarray(0, end + JOURNAL_DIGEST_SIZE);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(JOURNAL_MAGIC, 0);
  v.setUint16(8, JOURNAL_VERSION);
  v.setUint16(10, JOURNAL_HEADER_SIZE);
  v.setUint32(12, payload.length);
  v.setBigUint64(16, sequence);
  v.setBigUint64(24, 0n);
  out.set(base, 32);
  out.set(payload, JOURNAL_HEADER_SIZE);
  out.set(hash(ALG_SHA256, out.subarray(0, end)), end);
  return out;
}

/** The slot size for a journal created or grown for a payload of `length` bytes. */
export function slotSizeFor(length: number): number {
  const want = Math.max(MIN_SLOT_SIZE, 2 * recordSize(length));
  return Math.ceil(want / JOURNAL_PAGE) * JOURNAL_PAGE;
}

/**
 * The journal file held open by the storage that owns the state directory (under its lock).
 * Every method is durable when it returns, or throws.
 */
export class Journal {
  private fd: number;
  private slotSize = 0;
  /** The slot the next record goes to: never the one holding the newest record. */
  private next = 0;
  private sequence = 0n;
  /** A record may be valid: found at open, or appended since the last invalidate/format. */
  private holdsRecords = false;
  /** Where records are put together: one slot's size, reused. */
  private buffer = new Uint8Array(0);

  /** Opens (creating if needed) the journal file; a file of no journal's size is formatted on first use. */
  constructor(
    private readonly file: string,
    private readonly dir: string,
    mode: { mode: number; explicit: boolean },
    private readonly ops: FsOps,
  ) {
    this.fd = ops.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, mode.mode);
    try {
      if (mode.explicit) ops.fchmodSync(this.fd, mode.mode);
      const bytes = ops.readFileSync(file);
      this.slotSize = slotSizeOf(bytes.length);
      // New records must outnumber the valid ones and spare the newest of them.
      const [a, b] = readJournal(bytes);
      this.holdsRecords = a !== null || b !== null;
      if (a || b) {
        const newestIsA = a !== null && (b === null || a.sequence > b.sequence);
        this.sequence = newestIsA ? a.sequence : b!.sequence;
        this.next = newestIsA ? 1 : 0;
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** False for a new file (or one of no journal's size) until format(). */
  get formatted(): boolean {
    return this.slotSize !== 0;
  }

  /** True when a payload of `length` bytes fits a slot. */
  fits(length: number): boolean {
    return recordSize(length) <= this.slotSize;
  }

  /** Writes `payload` as the newest record, following the permall whose digest is `base`. */
  append(base: Uint8Array, payload: Uint8Array): void {
    if (!this.fits(payload.length)) throw new RangeError(`a ${payload.length}-byte record does not fit a ${this.slotSize}-byte journal slot`);
    if (this.buffer.length !== this.slotSize) this.buffer = new Uint8Array(this.slotSize);
    const record = encodeRecord(++this.sequence, base, payload, this.buffer);
    this.writeAll(record, this.next * this.slotSize);
    this.holdsRecords = true;
    this.ops.fdatasyncSync(this.fd);
    this.next ^= 1;
  }

  /** Zeroes both headers: no record is valid any more. Nothing to do when none can be. */
  invalidate(): void {
    if (this.slotSize === 0 || !this.holdsRecords) return;
    const zero = new Uint8Array(JOURNAL_HEADER_SIZE);
    this.writeAll(zero, 0);
    this.writeAll(zero, this.slotSize);
    this.ops.fdatasyncSync(this.fd);
    this.holdsRecords = false;
  }

  /**
   * (Re)allocates the file with slots for a payload of `length` bytes, all zeros (no valid
   * record), and makes its size and directory entry durable: after this, appends change no
   * metadata. Records already in it must be stale (the permall was just replaced).
   */
  format(length: number): void {
    const slot = slotSizeFor(length);
    this.ops.ftruncateSync(this.fd, 2 * slot);
    this.writeAll(new Uint8Array(2 * slot), 0);
    this.ops.fsyncSync(this.fd);
    fsyncDir(this.dir, this.ops);
    this.slotSize = slot;
    this.next = 0;
    this.holdsRecords = false;
  }

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    this.ops.closeSync(fd);
  }

  private writeAll(data: Uint8Array, position: number): void {
    let off = 0;
    while (off < data.length) off += this.ops.pwriteSync(this.fd, data.subarray(off), position + off);
  }
}
