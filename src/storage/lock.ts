/**
 * Exclusive use of a state directory by one daemon.
 *
 * Node has neither fcntl record locks nor flock, so this first version creates `.lock` with
 * O_EXCL and our pid in it; a lock whose pid is no longer alive (or that is empty, as swtpm
 * leaves it) is stale and taken over. It does NOT exclude a real swtpm, which fcntl-locks the
 * same file: a later issue replaces this with a real fcntl/OFD lock through a native helper
 * (swtpm-compat §5.5).
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { LOCK_FILE_NAME } from './layout.js';

export class LockError extends Error {
  readonly code = 'VTPMD_LOCKED';
  constructor(message: string) {
    super(message);
    this.name = 'LockError';
  }
}

export interface DirLock {
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockStateDir(dir: string, pid = process.pid): DirLock {
  const file = path.join(dir, LOCK_FILE_NAME);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o640);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new LockError(`cannot create lock file ${file}: ${(e as Error).message}`);
      }
      let owner = NaN;
      try {
        owner = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
      } catch {
        /* vanished meanwhile: retry */
      }
      if (Number.isInteger(owner) && owner > 0 && owner !== pid && alive(owner)) {
        throw new LockError(`state directory ${dir} is in use by process ${owner}; stop it or use another --tpmstate dir`);
      }
      try {
        fs.unlinkSync(file); // stale: its owner is gone (or it was our own, or empty)
      } catch {
        /* someone else removed it: retry */
      }
      continue;
    }
    try {
      fs.writeSync(fd, String(pid));
    } finally {
      fs.closeSync(fd);
    }
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(pid)) fs.unlinkSync(file);
        } catch {
          /* already gone */
        }
      },
    };
  }
  throw new LockError(`cannot lock state directory ${dir}: ${file} keeps reappearing`);
}
