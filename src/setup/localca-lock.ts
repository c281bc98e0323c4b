/**
 * Mutual exclusion for the local CA while many VMs are provisioned at once (the serial file and
 * CA creation must not race): flock(LOCK_EX) on `.lock.swtpm-localca` in the CA directory, the
 * file and the lock swtpm_localca takes, so vtpmd setup and swtpm_setup sharing one CA exclude
 * each other too. The lock belongs to our open file: closing it releases the lock, and so does
 * the kernel when a provisioning run dies, so a crash never leaves a lock behind. The file itself
 * stays (removing it would let a waiter lock a file nobody else sees).
 */
import { closeSync, constants, openSync } from 'node:fs';
import { tryFlock } from '../native/syscalls.js';

export const LOCK_FILE_NAME = '.lock.swtpm-localca';
const RETRY_MS = 20;

export class LocalCaLockError extends Error {
  readonly code = 'VTPMD_LOCALCA_LOCK';
}

/** Waits up to `timeoutMs` for the lock; returns what releases it. */
export async function acquireLocalCaLock(file: string, timeoutMs = 60_000): Promise<() => void> {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new LocalCaLockError(`cannot open the lock file ${file}: ${(e as Error).message}`);
  }
  const deadline = Date.now() + timeoutMs;
  try {
    // flock would block the event loop; try without waiting, and retry.
    while (!tryFlock(fd)) {
      if (Date.now() >= deadline) {
        throw new LocalCaLockError(`the local CA is locked by another process (${file}) for over ${Math.round(timeoutMs / 1000)} s; is a provisioning run stuck?`);
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  } catch (e) {
    closeSync(fd);
    if (e instanceof LocalCaLockError) throw e;
    throw new LocalCaLockError(`cannot lock ${file}: ${(e as Error).message}`);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    closeSync(fd);
  };
}
