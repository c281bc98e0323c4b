/**
 * What Node's API cannot do, from vtpmd's one native addon (src/native/vtpmd_native.c, a plain
 * N-API module built by node-gyp): lock a file (fcntl, flock), send an AF_UNIX datagram (sd_notify),
 * chroot, and receive descriptors sent over a unix socket (SCM_RIGHTS). N-API keeps the built
 * module working across Node releases; it loads in about 2 ms and adds no
 * dependency. The addon is loaded on first use, so code that needs none of this never loads it.
 */
import { createRequire } from 'node:module';
import * as os from 'node:os';

interface Addon {
  lockFile(fd: number): [status: number, pid: number];
  flockFile(fd: number): number;
  notify(path: string, message: Buffer): number;
  chroot(path: string): number;
  watchDescriptors(fd: number, onRead: (bytes: Buffer | null, fds: number[], errno: number) => void): object | number;
  unwatch(handle: object): void;
}

/** A failed system call: `code` is the errno name (EACCES, ...). */
export class SyscallError extends Error {
  constructor(
    readonly syscall: string,
    readonly code: string,
  ) {
    super(`${syscall}: ${code} (${describeErrno(code)})`);
    this.name = 'SyscallError';
  }
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

function errnoName(n: number): string {
  return ERRNO_NAMES.get(Math.abs(n)) ?? `errno ${Math.abs(n)}`;
}

function describeErrno(code: string): string {
  const messages: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'not a directory',
    ECONNREFUSED: 'nobody listens there',
    ENAMETOOLONG: 'name too long',
    EBADF: 'bad descriptor',
    ENOLCK: 'no locks available',
  };
  return messages[code] ?? 'system error';
}

let addon: Addon | undefined;

/** The addon, loaded once: beside this file in dist/, or where node-gyp left it in src/. */
function native(): Addon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const candidate of ['./vtpmd_native.node', './build/Release/vtpmd_native.node']) {
    try {
      return (addon = require(candidate) as Addon);
    } catch (e) {
      tried.push(`${candidate}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`vtpmd's native addon is not built (run npm run build); tried ${tried.join('; ')}`);
}

export type LockResult = { locked: true } | { locked: false; holderPid: number | null };

/**
 * An open-file-description write lock on the whole file (F_OFD_SETLK): it conflicts with swtpm's
 * POSIX lock and with other OFD locks, and lasts while this open file does, whatever else the
 * process opens or closes. `holderPid` names a POSIX-lock holder; an OFD holder has no pid.
 */
export function lockWholeFile(fd: number): LockResult {
  const [status, pid] = native().lockFile(fd);
  if (status < 0) throw new SyscallError('fcntl(F_OFD_SETLK)', errnoName(status));
  if (status === 0) return { locked: true };
  return { locked: false, holderPid: pid > 0 ? pid : null };
}

/** flock(LOCK_EX | LOCK_NB): true when taken, false when another open file holds it. */
export function tryFlock(fd: number): boolean {
  const rc = native().flockFile(fd);
  if (rc < 0) throw new SyscallError('flock', errnoName(rc));
  return rc === 0;
}

/** Sends one datagram to an AF_UNIX socket path, or an abstract name written "@name". */
export function sendDatagram(socketPath: string, message: Buffer): void {
  const rc = native().notify(socketPath, message);
  if (rc < 0) throw new SyscallError(`sendto(${socketPath})`, errnoName(rc));
}

/** chroot(2) to `dir` and chdir("/"); needs root (CAP_SYS_CHROOT). */
export function changeRoot(dir: string): void {
  const rc = native().chroot(dir);
  if (rc < 0) throw new SyscallError(`chroot(${dir})`, errnoName(rc));
  // Node caches the working directory (process.cwd(), path.resolve): make it the new root too.
  process.chdir('/');
}

export interface DescriptorWatch {
  /** Stops reading; the socket's own descriptor stays open. */
  stop(): void;
}

/**
 * Reads a connected unix stream socket with recvmsg, so every descriptor that came with some
 * bytes (SCM_RIGHTS) is handed over together with them, before any later bytes. `onRead` gets
 * null bytes once at the end: errno null when the peer closed, its name on a read error. The
 * descriptors are the receiver's to close. Nothing else may read the socket meanwhile.
 */
export function watchDescriptors(
  fd: number,
  onRead: (bytes: Buffer | null, fds: number[], errno: string | null) => void,
): DescriptorWatch {
  const a = native();
  const handle = a.watchDescriptors(fd, (bytes, fds, errno) => onRead(bytes, fds, errno ? errnoName(errno) : null));
  if (typeof handle === 'number') throw new SyscallError('poll', errnoName(handle));
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      a.unwatch(handle);
    },
  };
}
