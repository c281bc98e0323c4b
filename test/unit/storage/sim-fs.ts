/**
 * An in-memory file system behind FsOps that knows what a power cut keeps: file contents become
 * durable at fsync/fdatasync, directory entries (create, rename, unlink) at an fsync of the
 * directory. crashImage() gives what a disk could hold after a crash at the current moment, from
 * "only what was synced" to "everything, with the last unsynced write torn". `failAt` makes the
 * n-th mutating call and every later one throw (the crash happens there, before that call does
 * anything).
 */
import { constants } from 'node:fs';
import type { FsOps } from '../../../src/storage/atomic-write.js';

interface Inode {
  cached: Uint8Array;
  durable: Uint8Array;
  /** Writes since the last sync, in order: what a crash may or may not have kept. */
  unsynced: { position: number; data: Uint8Array }[];
  /** The size set by an unsynced ftruncate, if any. */
  unsyncedSize?: number;
}

export type CrashKind = 'synced' | 'everything' | 'torn';

const DIR_FD = 1000;

function enoent(p: string): Error {
  return Object.assign(new Error(`ENOENT: no such file, ${p}`), { code: 'ENOENT' });
}

function writeAt(file: Uint8Array, position: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.max(file.length, position + data.length));
  out.set(file);
  out.set(data, position);
  return out;
}

function resize(file: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(file.subarray(0, size));
  return out;
}

export class SimFs implements FsOps {
  private cachedEntries = new Map<string, Inode>();
  private durableEntries = new Map<string, Inode>();
  private fds = new Map<number, { inode: Inode; position: number }>();
  private nextFd = 3;
  /** Mutating calls so far; the call numbered failAt throws instead. */
  mutations = 0;
  failAt = Infinity;
  /** The names of the mutating calls, in order. */
  readonly log: string[] = [];

  /** A file that is already on disk, synced. */
  static withFiles(files: Record<string, Uint8Array>): SimFs {
    const fs = new SimFs();
    for (const [name, data] of Object.entries(files)) {
      const inode: Inode = { cached: data.slice(), durable: data.slice(), unsynced: [] };
      fs.cachedEntries.set(name, inode);
      fs.durableEntries.set(name, inode);
    }
    return fs;
  }

  /** The files a crash now could leave, as a new synced SimFs. */
  crashImage(kind: CrashKind): SimFs {
    const files: Record<string, Uint8Array> = {};
    const entries = kind === 'synced' ? this.durableEntries : this.cachedEntries;
    for (const [name, inode] of entries) {
      if (kind === 'everything') {
        files[name] = inode.cached.slice();
        continue;
      }
      let content = inode.durable;
      if (kind === 'torn') {
        if (inode.unsyncedSize !== undefined) content = resize(content, inode.unsyncedSize);
        inode.unsynced.forEach((w, i) => {
          const last = i === inode.unsynced.length - 1;
          content = writeAt(content, w.position, last ? w.data.subarray(0, w.data.length >> 1) : w.data);
        });
      }
      files[name] = content.slice();
    }
    return SimFs.withFiles(files);
  }

  /** The current (cached) content of a file, for assertions. */
  file(name: string): Uint8Array | undefined {
    return this.cachedEntries.get(name)?.cached;
  }

  names(): string[] {
    return [...this.cachedEntries.keys()].sort();
  }

  private mutate(what: string): void {
    // From the crash on, nothing reaches the disk any more.
    if (++this.mutations >= this.failAt) throw new Error(`simulated crash at ${what}`);
    this.log.push(what);
  }

  private fd(fd: number) {
    const f = this.fds.get(fd);
    if (!f) throw new Error(`EBADF ${fd}`);
    return f;
  }

  openSync(p: string, flags: string | number): number {
    if (typeof flags === 'number' && flags & constants.O_DIRECTORY) return DIR_FD;
    const f = typeof flags === 'number' ? flags : 0;
    let inode = this.cachedEntries.get(p);
    if (!inode) {
      if (!(f & constants.O_CREAT)) throw enoent(p);
      this.mutate(`create ${p}`);
      inode = { cached: new Uint8Array(0), durable: new Uint8Array(0), unsynced: [] };
      this.cachedEntries.set(p, inode);
    } else if (f & constants.O_TRUNC) {
      this.mutate(`truncate ${p}`);
      inode.cached = new Uint8Array(0);
      inode.unsyncedSize = 0;
    }
    const fd = this.nextFd++;
    this.fds.set(fd, { inode, position: 0 });
    return fd;
  }

  writeSync(fd: number, data: Uint8Array, offset: number, length: number): number {
    const f = this.fd(fd);
    const n = this.pwriteSync(fd, data.subarray(offset, offset + length), f.position);
    f.position += n;
    return n;
  }

  pwriteSync(fd: number, data: Uint8Array, position: number): number {
    const { inode } = this.fd(fd);
    this.mutate(`write ${data.length}@${position}`);
    inode.cached = writeAt(inode.cached, position, data);
    inode.unsynced.push({ position, data: data.slice() });
    return data.length;
  }

  ftruncateSync(fd: number, length: number): void {
    const { inode } = this.fd(fd);
    this.mutate(`ftruncate ${length}`);
    inode.cached = resize(inode.cached, length);
    inode.unsyncedSize = length;
    inode.unsynced = inode.unsynced.filter((w) => w.position < length);
  }

  fsyncSync(fd: number): void {
    if (fd === DIR_FD) {
      this.mutate('fsync dir');
      this.durableEntries = new Map(this.cachedEntries);
      return;
    }
    this.sync(fd, 'fsync');
  }

  fdatasyncSync(fd: number): void {
    this.sync(fd, 'fdatasync');
  }

  private sync(fd: number, what: string): void {
    const { inode } = this.fd(fd);
    this.mutate(what);
    inode.durable = inode.cached.slice();
    inode.unsynced = [];
    delete inode.unsyncedSize;
  }

  fchmodSync(): void {}

  closeSync(fd: number): void {
    if (fd !== DIR_FD) this.fd(fd);
    this.fds.delete(fd);
  }

  renameSync(from: string, to: string): void {
    const inode = this.cachedEntries.get(from);
    if (!inode) throw enoent(from);
    this.mutate(`rename ${from}`);
    this.cachedEntries.delete(from);
    this.cachedEntries.set(to, inode);
  }

  unlinkSync(p: string): void {
    if (!this.cachedEntries.has(p)) throw enoent(p);
    this.mutate(`unlink ${p}`);
    this.cachedEntries.delete(p);
  }

  readFileSync(p: string): Uint8Array {
    const inode = this.cachedEntries.get(p);
    if (!inode) throw enoent(p);
    return inode.cached.slice();
  }

  existsSync(p: string): boolean {
    return this.cachedEntries.has(p);
  }
}
