/**
 * One state directory (swtpm's dir backend, swtpm-compat §5.1/§5.4): where the permanent state
 * lives, loaded whole or refused, guarded by a lock. A change of the permanent state goes to the
 * journal beside `tpm2-00.permall` (journal.ts: one overwrite and an fdatasync); a checkpoint
 * folds the journal into the permall file (temp file, fsync, rename, fsync of the directory).
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { constantTimeEqual } from '../tpm/crypto/index.js';
import { atomicWrite, nodeFs, type FsOps } from './atomic-write.js';
import { StateFileError, unwrapState, wrapState } from './envelope.js';
import { Journal, newestRecord, permallDigest } from './journal.js';
import { lockStateDir, type DirLock } from './lock.js';
import type { StateKey } from './state-key.js';
import { journalFileName, LOCK_FILE_NAME, STATE_NAMES, stateFileName, tempFileName, type StateName } from './layout.js';

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
  /** Replaces the permanent state (durable when this returns: a crash leaves the old or the new one). */
  storePermanent(blob: Uint8Array): void;
  /**
   * Makes the permanent state file itself hold the newest permanent state, folding in a journal
   * if the storage keeps one; a no-op when it already does. For moments off the hot path: stop,
   * exit, state blob transfer, idle time.
   */
  checkpoint(): void;
  /** The volatile state (`tpm2-00.volatilestate`), or null when there is none. Throws on a damaged file. */
  loadVolatile(): Uint8Array | null;
  /** Writes the volatile state atomically (STORE_VOLATILE). */
  storeVolatile(blob: Uint8Array): void;
  /** Removes the volatile state file; no error if it is absent. */
  deleteVolatile(): void;
  /**
   * Gives the files this storage keeps to a user the process is about to become (`vtpmd cuse
   * --runas`, which starts as root for /dev/cuse and powers the TPM on before it drops root), so
   * that they belong to the user who goes on writing them, as swtpm's do. Absent where the
   * storage's file is the operator's to own (the file backend, which may be a block device).
   */
  chownFiles?(uid: number, gid: number): void;
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

/** The newest permanent state file bytes in a directory (which file they came from), or null without a permall. */
export interface NewestPermanent {
  bytes: Uint8Array;
  /** The permall file's own bytes (what a journal record's base names). */
  permall: Uint8Array;
  fromJournal: boolean;
}

/**
 * Reads the permanent state as it stands in `dir`: the newest valid journal record that follows
 * the permall on disk, else the permall. Takes no lock; a record being written meanwhile is torn
 * and ignored. A journal without a permall is never used (it cannot follow one).
 */
export function newestPermanent(dir: string, ops: FsOps = nodeFs): NewestPermanent | null {
  const permall = readIfExists(path.join(dir, stateFileName(STATE_NAMES.permanent)), ops);
  if (!permall) return null;
  const journal = readIfExists(path.join(dir, journalFileName()), ops);
  const record = journal && newestRecord(journal);
  if (record && constantTimeEqual(record.base, permallDigest(permall))) return { bytes: record.payload, permall, fromJournal: true };
  return { bytes: permall, permall, fromJournal: false };
}

function readIfExists(file: string, ops: FsOps): Uint8Array | null {
  try {
    return ops.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StorageError(`cannot read ${file}: ${(e as Error).message}`);
  }
}
const STATE_DIR_MODE = 0o700;

export class DirStorage implements Storage {
  readonly dir: string;
  private readonly mode: { mode: number; explicit: boolean };
  private readonly useLock: boolean;
  private readonly ops: FsOps;
  private readonly fileKey: StateKey | undefined;
  private held: DirLock | null = null;
  /** The open journal; null until the first store that can use it. */
  private journal: Journal | null = null;
  /**
   * The digest of the permall file on disk, known once this storage wrote it or checkpointed it
   * under the lock; until then a store replaces the permall (journal records need their base).
   */
  private base: Uint8Array | null = null;
  /** The newest state (file bytes) when it is in the journal only; null when the permall holds it. */
  private pending: Uint8Array | null = null;

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

  chownFiles(uid: number, gid: number): void {
    const names = [...Object.values(STATE_NAMES).map(stateFileName), journalFileName(), LOCK_FILE_NAME];
    for (const name of names) {
      const file = path.join(this.dir, name);
      try {
        fs.lchownSync(file, uid, gid);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new StorageError(`cannot give ${file} to uid ${uid}: ${(e as Error).message}`);
      }
    }
  }

  /** Releases the lock; what another process may do next makes the known base worthless. */
  unlock(): void {
    this.closeJournal();
    this.base = null;
    this.pending = null;
    this.held?.release();
    this.held = null;
  }

  loadPermanent(): Uint8Array | null {
    const file = this.permanentFile;
    const newest = newestPermanent(this.dir, this.ops);
    if (!newest) return null;
    this.applyExplicitMode(file);
    return unwrapState(newest.bytes, newest.fromJournal ? `${file} (newest state in ${journalFileName()})` : file, this.fileKey);
  }

  storePermanent(blob: Uint8Array): void {
    const file = wrapState(blob, this.fileKey);
    try {
      if (this.base) {
        const journal = this.openJournal();
        // A new journal file gets its slots now (one fsync of its size and directory entry).
        if (!journal.formatted) journal.format(file.length);
        if (journal.fits(file.length)) {
          journal.append(this.base, file);
          this.pending = file;
          return;
        }
      }
      // No base yet, or a record larger than a slot: this one write replaces the permall.
      this.replacePermall(file);
    } catch (e) {
      throw this.writeError(this.permanentFile, e);
    }
    if (this.journal) this.growJournal(file.length);
  }

  checkpoint(): void {
    try {
      if (!this.base) {
        // The first checkpoint under this lock: what is on disk decides.
        const newest = newestPermanent(this.dir, this.ops);
        if (!newest) return;
        this.base = permallDigest(newest.permall);
        if (!newest.fromJournal) return this.invalidateJournal();
        this.pending = newest.bytes;
      }
      if (!this.pending) return;
      this.replacePermall(this.pending);
      this.invalidateJournal();
    } catch (e) {
      throw this.writeError(this.permanentFile, e);
    }
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

  private get permanentFile(): string {
    return path.join(this.dir, stateFileName(STATE_NAMES.permanent));
  }

  /**
   * Replaces the permall with `file` (durable on return). Every journal record becomes stale at
   * the rename (its base is the old permall), before its header is zeroed.
   */
  private replacePermall(file: Uint8Array): void {
    atomicWrite(this.dir, tempFileName(STATE_NAMES.permanent), stateFileName(STATE_NAMES.permanent), file, this.mode, this.ops);
    this.base = permallDigest(file);
    this.pending = null;
  }

  /** The journal, opened (and created) on first use; formatted to fit the newest state if it has no slots yet. */
  private openJournal(): Journal {
    if (!this.journal) {
      this.journal = new Journal(path.join(this.dir, journalFileName()), this.dir, this.mode, this.ops);
    }
    return this.journal;
  }

  /** Zeroes the journal's headers, if there is a journal file (after the permall is durable). */
  private invalidateJournal(): void {
    if (!this.journal && !this.ops.existsSync(path.join(this.dir, journalFileName()))) return;
    this.openJournal().invalidate();
  }

  /**
   * Makes the journal's slots fit a state of `length` bytes for the next stores. The state is
   * already durable in the permall, so a failure here only closes the journal (the next store
   * opens it again).
   */
  private growJournal(length: number): void {
    try {
      this.journal!.format(length);
    } catch {
      this.closeJournal();
    }
  }

  private closeJournal(): void {
    try {
      this.journal?.close();
    } catch {
      /* nothing to lose: every record was durable when written */
    }
    this.journal = null;
  }

  private applyExplicitMode(file: string): void {
    if (!this.mode.explicit) return;
    try {
      fs.chmodSync(file, this.mode.mode | 0o200);
    } catch {
      /* the read worked; a failed chmod is not fatal */
    }
  }

  private writeError(file: string, e: unknown): Error {
    if (e instanceof StateFileError || e instanceof StorageError) return e;
    return new StorageError(`cannot write ${file}: ${(e as Error).message}`);
  }

  private load(name: StateName): Uint8Array | null {
    const file = path.join(this.dir, stateFileName(name));
    const bytes = readIfExists(file, this.ops);
    if (!bytes) return null;
    this.applyExplicitMode(file);
    return unwrapState(bytes, file, this.fileKey);
  }

  private store(name: StateName, blob: Uint8Array): void {
    try {
      atomicWrite(this.dir, tempFileName(name), stateFileName(name), wrapState(blob, this.fileKey), this.mode, this.ops);
    } catch (e) {
      throw this.writeError(path.join(this.dir, stateFileName(name)), e);
    }
  }
}
