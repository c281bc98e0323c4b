/**
 * A Storage that keeps the state in memory and writes it to the storage beneath only on
 * flush(): for `vtpmd setup`, which runs a few dozen state-changing commands on a TPM no one
 * else can reach (the directory is locked) and whose result counts only if the whole run
 * succeeds. One atomic write at the end replaces one write, fsync and rename per command; a run
 * that fails before flush() leaves the directory as it was.
 */
import type { Storage } from './storage.js';

export class WriteBackStorage implements Storage {
  private permanent: Uint8Array | undefined;
  /** undefined: not touched; null: deleted. */
  private volatile: Uint8Array | null | undefined;

  constructor(private readonly inner: Storage) {}

  lock(): void {
    this.inner.lock();
  }

  unlock(): void {
    this.inner.unlock();
  }

  loadPermanent(): Uint8Array | null {
    return this.permanent ?? this.inner.loadPermanent();
  }

  storePermanent(blob: Uint8Array): void {
    this.permanent = blob;
  }

  /** The inner storage's: what it has on disk. What is held here waits for flush(). */
  checkpoint(): void {
    this.inner.checkpoint();
  }

  loadVolatile(): Uint8Array | null {
    return this.volatile === undefined ? this.inner.loadVolatile() : this.volatile;
  }

  storeVolatile(blob: Uint8Array): void {
    this.volatile = blob;
  }

  deleteVolatile(): void {
    this.volatile = null;
  }

  /** Writes what changed, each file atomically, and forgets it; the permanent state ends in its own file. */
  flush(): void {
    if (this.permanent) this.inner.storePermanent(this.permanent);
    this.inner.checkpoint();
    if (this.volatile === null) this.inner.deleteVolatile();
    else if (this.volatile) this.inner.storeVolatile(this.volatile);
    this.permanent = undefined;
    this.volatile = undefined;
  }
}
