/**
 * Mutual exclusion for the local CA while many VMs are provisioned at once (the serial file
 * and CA creation must not race). swtpm_localca uses flock(); Node has neither flock nor fcntl
 * locks without native code, so this is a lock file created with O_EXCL that holds the owner's
 * pid, host and start time. A lock whose owner process is gone (same host) or that is older than
 * STALE_AFTER_MS is taken over: a crashed provisioning run never blocks the next one for good.
 */
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

export const LOCK_FILE_NAME = '.lock.vtpmd-localca';
/** No provisioning run holds the CA this long; an older lock is left over from a crash. */
export const STALE_AFTER_MS = 10 * 60 * 1000;
const RETRY_MS = 20;

export class LocalCaLockError extends Error {
  readonly code = 'VTPMD_LOCALCA_LOCK';
}

interface Owner {
  pid: number;
  host: string;
  since: number;
}

function readOwner(file: string): Owner | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<Owner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.since === 'number') return o as Owner;
  } catch {
    // Unreadable or half written: judged by the caller from its age alone.
  }
  return null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock file without a readable owner is stale once its creator had time to write it. */
const UNREADABLE_GRACE_MS = 5000;

function ageMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function isStale(owner: Owner | null, now: number, file: string): boolean {
  if (!owner) return ageMs(file) > UNREADABLE_GRACE_MS;
  if (now - owner.since > STALE_AFTER_MS) return true;
  return owner.host === hostname() && !alive(owner.pid);
}

function tryCreate(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new LocalCaLockError(`cannot create the lock file ${file}: ${(e as Error).message}`);
  }
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: Date.now() }));
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Removes a stale lock. Two waiters may both see it stale: the rename moves it away atomically,
 * so only one of them removes it, and neither can remove a fresh lock created meanwhile unless
 * that one is also stale.
 */
function breakStale(file: string): void {
  const aside = `${file}.stale.${process.pid}`;
  try {
    renameSync(file, aside);
  } catch {
    return;
  }
  const owner = readOwner(aside);
  if (!isStale(owner, Date.now(), aside)) {
    // Raced with a new owner: put its lock back (the rename kept it intact).
    try {
      renameSync(aside, file);
    } catch {
      // Our own fresh lock can still be created by someone else; theirs stays valid.
    }
    return;
  }
  unlinkSync(aside);
}

/** Waits up to `timeoutMs` for the lock; returns what releases it. */
export async function acquireLocalCaLock(file: string, timeoutMs = 60_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (tryCreate(file)) {
      return () => {
        try {
          unlinkSync(file);
        } catch {
          // Already gone (broken as stale by someone else): nothing to release.
        }
      };
    }
    const owner = readOwner(file);
    if (isStale(owner, Date.now(), file)) {
      breakStale(file);
      continue;
    }
    if (Date.now() >= deadline) {
      const who = owner ? `process ${owner.pid} on ${owner.host}` : 'another process';
      throw new LocalCaLockError(`the local CA is locked by ${who} (${file}); if no provisioning is running, remove that file`);
    }
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}
