/**
 * Crash-safe replacement of a file (swtpm-compat §5.1): write `tmp`, fsync it, rename it over
 * `target`, fsync the directory. A crash at any point leaves either the old or the new file,
 * never a mix. The file system calls come in through `FsOps` so tests can simulate a crash.
 */
import * as fs from 'node:fs';
import path from 'node:path';

/** The few synchronous fs calls the storage layer uses. */
export interface FsOps {
  openSync(p: string, flags: string | number, mode?: number): number;
  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number;
  /** Writes `data` at `position` in the file (pwrite); returns how many bytes were written. */
  pwriteSync(fd: number, data: Uint8Array, position: number): number;
  fsyncSync(fd: number): void;
  /** Flushes the data (and only the metadata needed to read it back), not timestamps. */
  fdatasyncSync(fd: number): void;
  ftruncateSync(fd: number, length: number): void;
  fchmodSync(fd: number, mode: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(p: string): void;
  readFileSync(p: string): Uint8Array;
  existsSync(p: string): boolean;
}

export const nodeFs: FsOps = {
  openSync: (p, flags, mode) => fs.openSync(p, flags, mode),
  writeSync: (fd, data, offset, length) => fs.writeSync(fd, data, offset, length),
  pwriteSync: (fd, data, position) => fs.writeSync(fd, data, 0, data.length, position),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  ftruncateSync: (fd, length) => fs.ftruncateSync(fd, length),
  fchmodSync: (fd, mode) => fs.fchmodSync(fd, mode),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (from, to) => fs.renameSync(from, to),
  unlinkSync: (p) => fs.unlinkSync(p),
  existsSync: (p) => fs.existsSync(p),
  readFileSync: (p) => {
    const b = fs.readFileSync(p);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength); // Uint8Array, not Buffer, past storage/
  },
};

export function atomicWrite(
  dir: string,
  tmpName: string,
  targetName: string,
  data: Uint8Array,
  mode: { mode: number; explicit: boolean },
  ops: FsOps = nodeFs,
): void {
  const tmp = path.join(dir, tmpName);
  const target = path.join(dir, targetName);
  const fd = ops.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, mode.mode);
  try {
    // An explicit mode= is applied exactly, as swtpm does by clearing the umask.
    if (mode.explicit) ops.fchmodSync(fd, mode.mode);
    let off = 0;
    while (off < data.length) off += ops.writeSync(fd, data, off, data.length - off);
    ops.fsyncSync(fd);
  } catch (e) {
    ops.closeSync(fd);
    try {
      ops.unlinkSync(tmp);
    } catch {
      /* best effort */
    }
    throw e;
  }
  ops.closeSync(fd);
  ops.renameSync(tmp, target);
  // The rename is durable only once the directory entry is on disk.
  fsyncDir(dir, ops);
}

/** Makes the entries of `dir` (a new or renamed file) durable. */
export function fsyncDir(dir: string, ops: FsOps = nodeFs): void {
  const dfd = ops.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    ops.fsyncSync(dfd);
  } finally {
    ops.closeSync(dfd);
  }
}
