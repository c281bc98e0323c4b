/**
 * swtpm's file backend (`--tpmstate backend-uri=file://PATH`, swtpm-compat §5.6): the whole
 * state in one file (or block device). A 192-byte little-endian header: magic "swtpmlin"
 * (u64), version 1 (u8), a pad byte, the header size (u16), then 15 entries {offset,
 * data_length, section_length} (u32 each; offset 0: absent). Entry 0 holds the permanent state,
 * entry 1 the volatile state, entry 2 the savestate, each in the same envelope as a state file
 * of the directory backend, in a section whose length is the next power of two.
 *
 * Where vtpmd differs from swtpm: a regular file is replaced atomically (temp file, fsync,
 * rename, fsync of the directory) where swtpm writes it in place, so a crash leaves the old or
 * the new state; a block device is written in place and fsynced, as swtpm does. A non-empty
 * file without the magic is refused instead of being formatted over.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { atomicWrite, nodeFs, type FsOps } from './atomic-write.js';
import { unwrapState, wrapState } from './envelope.js';
import type { StateKey } from './state-key.js';
import { StorageError, type Storage } from './storage.js';

export const LINEAR_MAGIC = 0x737774706d6c696en;
export const LINEAR_VERSION = 1;
export const LINEAR_HEADER_SIZE = 192;
const ENTRIES = 15;
const ENTRY_OFFSET = 12;
/** Entry numbers, as swtpm assigns them. */
export const LINEAR_ENTRY = { permanent: 0, volatile: 1, savestate: 2 } as const;

/** The sections of a linear state image (index → data); throws StorageError naming `what` if damaged. */
export function parseLinearImage(image: Uint8Array, what: string): (Uint8Array | undefined)[] {
  const bad = (why: string) => new StorageError(`${what}: ${why}; it is not a vtpmd/swtpm linear state file`);
  if (image.length < LINEAR_HEADER_SIZE) throw bad(`only ${image.length} bytes`);
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (v.getBigUint64(0, true) !== LINEAR_MAGIC) throw bad('no "swtpmlin" magic');
  if (v.getUint8(8) > LINEAR_VERSION) throw new StorageError(`${what}: linear format version ${v.getUint8(8)} is newer than this vtpmd reads (${LINEAR_VERSION})`);
  const hdrsize = v.getUint16(10, true);
  if (hdrsize < LINEAR_HEADER_SIZE) throw bad(`header size ${hdrsize}`);
  const sections: (Uint8Array | undefined)[] = [];
  for (let i = 0; i < ENTRIES; i++) {
    const at = ENTRY_OFFSET + i * 12;
    const offset = v.getUint32(at, true);
    const length = v.getUint32(at + 4, true);
    if (offset === 0) {
      sections.push(undefined);
      continue;
    }
    if (offset < hdrsize || offset + length > image.length) throw bad(`entry ${i} (${length} bytes at ${offset}) lies outside the file: truncated?`);
    sections.push(image.subarray(offset, offset + length));
  }
  return sections;
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** A linear state image holding `sections` (index → data), each in a power-of-two section. */
export function buildLinearImage(sections: (Uint8Array | undefined)[]): Uint8Array {
  let size = LINEAR_HEADER_SIZE;
  const placed: [number, Uint8Array, number, number][] = [];
  sections.forEach((data, i) => {
    if (!data) return;
    const section = nextPowerOfTwo(data.length);
    placed.push([i, data, size, section]);
    size += section;
  });
  const image = new Uint8Array(size);
  const v = new DataView(image.buffer);
  v.setBigUint64(0, LINEAR_MAGIC, true);
  v.setUint8(8, LINEAR_VERSION);
  v.setUint16(10, LINEAR_HEADER_SIZE, true);
  for (const [i, data, offset, section] of placed) {
    const at = ENTRY_OFFSET + i * 12;
    v.setUint32(at, offset, true);
    v.setUint32(at + 4, data.length, true);
    v.setUint32(at + 8, section, true);
    image.set(data, offset);
  }
  return image;
}

export interface LinearFileStorageOptions {
  file: string;
  mode?: number;
  explicitMode?: boolean;
  fileKey?: StateKey;
  fs?: FsOps;
}

export class LinearFileStorage implements Storage {
  readonly file: string;
  private readonly mode: { mode: number; explicit: boolean };
  private readonly fileKey: StateKey | undefined;
  private readonly ops: FsOps;

  constructor(options: LinearFileStorageOptions) {
    this.file = path.resolve(options.file);
    this.mode = { mode: options.mode ?? 0o640, explicit: options.explicitMode ?? false };
    this.fileKey = options.fileKey;
    this.ops = options.fs ?? nodeFs;
  }

  /** Checks that the file's directory exists and that an existing file is a linear state. */
  prepare(): void {
    const dir = path.dirname(this.file);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      throw new StorageError(`the directory of ${this.file} does not exist; create it or choose another --tpmstate backend-uri=file://`);
    }
    this.sections();
  }

  /** Locking is off for the file backend, as in swtpm. */
  lock(): void {
    this.prepare();
  }

  unlock(): void {}

  loadPermanent(): Uint8Array | null {
    return this.load(LINEAR_ENTRY.permanent, 'permanent state');
  }

  storePermanent(blob: Uint8Array): void {
    this.store(LINEAR_ENTRY.permanent, wrapState(blob, this.fileKey));
  }

  /**
   * Nothing to fold: this backend keeps no journal. Its contract is the whole state in the one
   * file (or block device) named, which other tools read, so every store writes that file.
   */
  checkpoint(): void {}

  loadVolatile(): Uint8Array | null {
    return this.load(LINEAR_ENTRY.volatile, 'volatile state');
  }

  storeVolatile(blob: Uint8Array): void {
    this.store(LINEAR_ENTRY.volatile, wrapState(blob, this.fileKey));
  }

  deleteVolatile(): void {
    if (this.sections()[LINEAR_ENTRY.volatile] !== undefined) this.store(LINEAR_ENTRY.volatile, undefined);
  }

  /** The file's sections; none for a missing or empty file (a new TPM). */
  private sections(): (Uint8Array | undefined)[] {
    let image: Uint8Array;
    try {
      image = this.ops.readFileSync(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new StorageError(`cannot read ${this.file}: ${(e as Error).message}`);
    }
    return image.length === 0 ? [] : parseLinearImage(image, this.file);
  }

  private load(entry: number, what: string): Uint8Array | null {
    const data = this.sections()[entry];
    return data ? unwrapState(data, `${this.file} (${what})`, this.fileKey) : null;
  }

  private store(entry: number, data: Uint8Array | undefined): void {
    const sections = this.sections().slice();
    sections[entry] = data;
    const image = buildLinearImage(sections);
    try {
      if (fs.existsSync(this.file) && !fs.statSync(this.file).isFile()) {
        // A block device: in place, then fsync.
        const fd = this.ops.openSync(this.file, 'r+');
        try {
          let off = 0;
          while (off < image.length) off += this.ops.writeSync(fd, image, off, image.length - off);
          this.ops.fsyncSync(fd);
        } finally {
          this.ops.closeSync(fd);
        }
      } else {
        atomicWrite(path.dirname(this.file), `.${path.basename(this.file)}.tmp`, path.basename(this.file), image, this.mode, this.ops);
      }
    } catch (e) {
      throw new StorageError(`cannot write ${this.file}: ${(e as Error).message}`);
    }
  }
}
