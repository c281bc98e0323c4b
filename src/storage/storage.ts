/**
 * One state directory (swtpm's dir backend, swtpm-compat §5.1/§5.4): where the permanent state
 * lives, written atomically, loaded whole or refused, guarded by a lock.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { atomicWrite, nodeFs, type FsOps } from './atomic-write.js';
import { StateFileError, unwrapState, wrapState } from './envelope.js';
import { lockStateDir, type DirLock } from './lock.js';
import type { StateKey } from './state-key.js';
import { STATE_NAMES, stateFileName, tempFileName, type StateName } from './layout.js';

export { StateFileError } from './envelope.js';
export { LockError } from './lock.js';

export class StorageError extends Error {
  readonly code = 'VTPMD_STORAGE';
  constructor(message: string) {
    super(message);
    this.name = 'StorageError';
  }
}

/** What the Device needs from its storage; tests inject their own. */
export interface Storage {
  /** Creates the directory if needed and takes the lock; a no-op when already held. */
  lock(): void;
  unlock(): void;
  /** The permanent state, or null when there is none yet. Throws on a damaged file. */
  loadPermanent(): Uint8Array | null;
  /** Replaces the permanent state atomically (durable when this returns). */
  storePermanent(blob: Uint8Array): void;
  /** The volatile state (`tpm2-00.volatilestate`), or null when there is none. Throws on a damaged file. */
  loadVolatile(): Uint8Array | null;
  /** Writes the volatile state atomically (STORE_VOLATILE). */
  storeVolatile(blob: Uint8Array): void;
  /** Removes the volatile state file; no error if it is absent. */
  deleteVolatile(): void;
}

export interface DirStorageOptions {
  dir: string;
  /** File mode of state files: default 0640 (subject to umask), exact when `explicitMode`. */
  mode?: number;
  explicitMode?: boolean;
  /** Take the `.lock` (default true). */
  lock?: boolean;
  /** `--key`: state files are written encrypted with it and must be encrypted with it. */
  fileKey?: StateKey;
  fs?: FsOps;
}

export const DEFAULT_STATE_FILE_MODE = 0o640;
const STATE_DIR_MODE = 0o700;

export class DirStorage implements Storage {
  readonly dir: string;
  private readonly mode: { mode: number; explicit: boolean };
  private readonly useLock: boolean;
  private readonly ops: FsOps;
  private readonly fileKey: StateKey | undefined;
  private held: DirLock | null = null;

  constructor(options: DirStorageOptions) {
    this.dir = path.resolve(options.dir);
    this.mode = { mode: options.mode ?? DEFAULT_STATE_FILE_MODE, explicit: options.explicitMode ?? false };
    this.useLock = options.lock ?? true;
    this.ops = options.fs ?? nodeFs;
    this.fileKey = options.fileKey;
  }

  /** Creates the state directory (0700) if it is missing. */
  prepare(): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: STATE_DIR_MODE });
    } catch (e) {
      throw new StorageError(`cannot create state directory ${this.dir}: ${(e as Error).message}; create it or choose another --tpmstate dir=`);
    }
    if (!fs.statSync(this.dir).isDirectory()) {
      throw new StorageError(`${this.dir} is not a directory; choose another --tpmstate dir=`);
    }
  }

  lock(): void {
    if (this.held) return;
    this.prepare();
    if (this.useLock) this.held = lockStateDir(this.dir);
  }

  unlock(): void {
    this.held?.release();
    this.held = null;
  }

  loadPermanent(): Uint8Array | null {
    return this.load(STATE_NAMES.permanent);
  }

  storePermanent(blob: Uint8Array): void {
    this.store(STATE_NAMES.permanent, blob);
  }

  loadVolatile(): Uint8Array | null {
    return this.load(STATE_NAMES.volatile);
  }

  storeVolatile(blob: Uint8Array): void {
    this.store(STATE_NAMES.volatile, blob);
  }

  deleteVolatile(): void {
    const file = path.join(this.dir, stateFileName(STATE_NAMES.volatile));
    try {
      this.ops.unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new StorageError(`cannot remove ${file}: ${(e as Error).message}`);
    }
  }

  private load(name: StateName): Uint8Array | null {
    const file = path.join(this.dir, stateFileName(name));
    let bytes: Uint8Array;
    try {
      bytes = this.ops.readFileSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StorageError(`cannot read ${file}: ${(e as Error).message}`);
    }
    if (this.mode.explicit) {
      try {
        fs.chmodSync(file, this.mode.mode | 0o200);
      } catch {
        /* the read worked; a failed chmod is not fatal */
      }
    }
    return unwrapState(bytes, file, this.fileKey);
  }

  private store(name: StateName, blob: Uint8Array): void {
    try {
      atomicWrite(this.dir, tempFileName(name), stateFileName(name), wrapState(blob, this.fileKey), this.mode, this.ops);
    } catch (e) {
      if (e instanceof StateFileError) throw e;
      throw new StorageError(`cannot write ${path.join(this.dir, stateFileName(name))}: ${(e as Error).message}`);
    }
  }
}
