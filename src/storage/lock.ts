/**
 * Exclusive use of a state directory: a write lock on the whole of `<dir>/.lock`, the file swtpm
 * locks (swtpm-compat §5.5), so vtpmd and swtpm exclude each other as well as themselves.
 *
 * swtpm takes a POSIX record lock (fcntl F_SETLK); we take an open-file-description lock
 * (F_OFD_SETLK) through the native addon. The two conflict with each other. An OFD lock belongs
 * to the open file, not the process, so closing some other descriptor of the same file (as a
 * POSIX lock would) never drops it; the kernel drops it when our descriptor closes: on release,
 * on exit and on SIGKILL alike, so a crashed daemon never leaves a stale lock.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import { lockWholeFile } from '../native/syscalls.js';
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

export function lockStateDir(dir: string): DirLock {
  const file = path.join(dir, LOCK_FILE_NAME);
  let fd: number;
  try {
    // As swtpm opens it: no data in the file, 0660 before the umask, never through a symlink.
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o660);
  } catch (e) {
    throw new LockError(`cannot open lock file ${file}: ${(e as Error).message}`);
  }
  let result;
  try {
    result = lockWholeFile(fd);
  } catch (e) {
    fs.closeSync(fd);
    throw new LockError(`cannot lock ${file}: ${(e as Error).message}`);
  }
  if (!result.locked) {
    fs.closeSync(fd);
    const who = result.holderPid ? `process ${result.holderPid}` : 'another process';
    throw new LockError(`state directory ${dir} is in use by ${who} (a vtpmd or swtpm); stop it or use another --tpmstate dir`);
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      fs.closeSync(fd); // the last descriptor of the open file: the kernel drops the lock
    },
  };
}
