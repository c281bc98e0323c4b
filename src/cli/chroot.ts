/**
 * `-R/--chroot DIR` (swtpm ≥ 0.8): the daemon changes its root to DIR at start-up, before it
 * opens anything, so every other path (state directory, sockets, pid and log files, /dev/cuse)
 * is then inside DIR, as with swtpm. Needs root. Everything the daemon runs is loaded first:
 * after the chroot no module can be read from the old root. A --runas user is looked up before
 * (in the host's user database; swtpm reads the one inside DIR, which a bare chroot lacks).
 */
import { changeRoot } from '../native/syscalls.js';
import { UsageError } from './key-value.js';

/** A chroot that failed: reported as one line, exit code 1 (not a usage problem). */
class ChrootError extends Error {
  readonly code = 'VTPMD_STARTUP';
}

export function enterChroot(dir: string): void {
  if (dir === '') throw new UsageError('-R/--chroot needs a directory');
  try {
    changeRoot(dir);
  } catch (e) {
    const needsRoot = process.getuid?.() !== 0 ? '; it needs root' : '';
    throw new ChrootError(`-R/--chroot ${dir}: ${(e as Error).message}${needsRoot}`);
  }
}
