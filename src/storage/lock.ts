/**
 * Exclusive use of a state directory: a write lock on the whole of `<dir>/.lock`, the file swtpm
 * locks (swtpm-compat §5.5), so vtpmd and swtpm exclude each other as well as themselves.
 *
 * swtpm takes a POSIX record lock (fcntl F_SETLK). Node has no fcntl, so the lock is taken by a
 * short-lived helper on a descriptor we open and pass it: an open-file-description lock
 * (F_OFD_SETLK), which conflicts with POSIX record locks and with other OFD locks, belongs to the
 * open file rather than to the helper, and therefore stays held after the helper exits, for as long
 * as our descriptor is open. The kernel drops it when that descriptor closes: on release, on exit
 * and on SIGKILL alike, so a crashed daemon never leaves a stale lock. The helper is Perl, which
 * every Debian system has (perl-base is essential); it costs a few milliseconds, once per lock.
 */
import { spawnSync } from 'node:child_process';
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

/**
 * Locks fd 3 with F_OFD_SETLK (Linux: 37), F_WRLCK over the whole file. struct flock on 64-bit
 * Linux: l_type s16, l_whence s16, pad, l_start s64, l_len s64, l_pid s32 (0 for OFD locks), pad.
 * Exit 0: locked. Exit 1: held elsewhere; prints the holder's pid when it is a POSIX lock
 * (F_OFD_GETLK, 36, reports it; an OFD holder shows as -1). Other exits: could not try.
 */
const HELPER = `
open(my $fh, '>&=', 3) or exit 3;
my $want = pack('s s x4 q q l x4', 1, 0, 0, 0, 0);
exit 0 if fcntl($fh, 37, $want);
exit 4 unless $!{EAGAIN} || $!{EACCES};
my $probe = pack('s s x4 q q l x4', 1, 0, 0, 0, 0);
if (fcntl($fh, 36, $probe)) { my @f = unpack('s s x4 q q l x4', $probe); print $f[4]; }
exit 1;
`;

export function lockStateDir(dir: string): DirLock {
  const file = path.join(dir, LOCK_FILE_NAME);
  let fd: number;
  try {
    // As swtpm opens it: no data in the file, 0660 before the umask, never through a symlink.
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o660);
  } catch (e) {
    throw new LockError(`cannot open lock file ${file}: ${(e as Error).message}`);
  }
  const r = spawnSync('perl', ['-e', HELPER], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) {
    fs.closeSync(fd);
    if (r.error) throw new LockError(`cannot lock ${file}: running perl failed (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); install perl (Debian: perl-base)`);
    if (r.status === 1) {
      const pid = Number.parseInt(r.stdout, 10);
      const who = pid > 0 ? `process ${pid}` : 'another process';
      throw new LockError(`state directory ${dir} is in use by ${who} (a vtpmd or swtpm); stop it or use another --tpmstate dir`);
    }
    throw new LockError(`cannot lock ${file}: the lock helper failed (exit ${r.status ?? r.signal}) ${r.stderr.trim()}`);
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
