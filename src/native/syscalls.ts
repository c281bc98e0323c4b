/**
 * What Node's API cannot do, from vtpmd's one native addon (src/native/vtpmd_native.c, a plain
 * N-API module built by node-gyp): lock a file (fcntl, flock), send an AF_UNIX datagram (sd_notify),
 * chroot, and receive descriptors sent over a unix socket (SCM_RIGHTS). N-API keeps the built
 * module working across Node releases; it loads in about 2 ms and adds no
 * dependency. The addon is loaded on first use, so code that needs none of this never loads it.
 */
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as util from 'node:util';

interface Addon {
  lockFile(fd: number): [status: number, pid: number];
  flockFile(fd: number): number;
  notify(path: string, message: Buffer): number;
  chroot(path: string): number;
  /** onRead(n, fds, errno): n bytes arrived in rx (overwritten by the next read); n = 0 is the end. */
  connect(fd: number, rx: Uint8Array, tx: Uint8Array, onRead: (n: number, fds: number[] | null, errno: number) => void): object | number;
  /**
   * As connect, for /dev/cuse; `served`: what READs took of the offer that ended (-1: none);
   * `answered`: the request is a WRITE the addon answered, taking that many bytes (0: not).
   */
  watchDevice(fd: number, rx: Uint8Array, tx: Uint8Array, followUpUs: number, onRead: (n: number, fds: null, errno: number, served: number, answered: number) => void): object | number;
  /** The bytes, or the first n bytes of tx. */
  write(handle: object, bytes: Uint8Array | number): number;
  offer(handle: object, response: Uint8Array | number): number;
  takeWrites(handle: object, max: number): number;
  deviceStats(handle: object): [answered: number, served: number, queued: number] | number;
  close(handle: object, afterWrite: boolean): number;
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));
/** libuv's message for each errno it knows (util.getSystemErrorMap: negative errno → [name, message]). */
const ERRNO_MESSAGES = util.getSystemErrorMap();

function errnoName(n: number): string {
  return ERRNO_NAMES.get(Math.abs(n)) ?? `errno ${Math.abs(n)}`;
}

/** A failed system call: `code` is the errno name (EACCES, ...), the message says it in words. */
export class SyscallError extends Error {
  readonly code: string;
  constructor(
    readonly syscall: string,
    errno: number,
  ) {
    const code = errnoName(errno);
    super(`${syscall}: ${code} (${ERRNO_MESSAGES.get(-Math.abs(errno))?.[1] ?? 'system error'})`);
    this.code = code;
    this.name = 'SyscallError';
  }
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
  if (status < 0) throw new SyscallError('fcntl(F_OFD_SETLK)', status);
  if (status === 0) return { locked: true };
  return { locked: false, holderPid: pid > 0 ? pid : null };
}

/** flock(LOCK_EX | LOCK_NB): true when taken, false when another open file holds it. */
export function tryFlock(fd: number): boolean {
  const rc = native().flockFile(fd);
  if (rc < 0) throw new SyscallError('flock', rc);
  return rc === 0;
}

/** Sends one datagram to an AF_UNIX socket path, or an abstract name written "@name". */
export function sendDatagram(socketPath: string, message: Buffer): void {
  const rc = native().notify(socketPath, message);
  if (rc < 0) throw new SyscallError(`sendto(${socketPath})`, rc);
}

/** chroot(2) to `dir` and chdir("/"); needs root (CAP_SYS_CHROOT). */
export function changeRoot(dir: string): void {
  const rc = native().chroot(dir);
  if (rc < 0) throw new SyscallError(`chroot(${dir})`, rc);
  // Node caches the working directory (process.cwd(), path.resolve): make it the new root too.
  process.chdir('/');
}

/** One read of a connection: the control channel's largest request (4 + 4100 bytes) fits. */
const RECEIVE_SIZE = 8192;
/** What goes out through a connection's send buffer; anything larger is passed as it is. */
const SEND_SIZE = 8192;

/**
 * Hands `bytes` to the addon through the connection's send buffer: a copy into memory the addon
 * already knows. Passing a small Uint8Array itself would make V8 move it off its heap (a
 * malloc per reply), since small arrays live inside the heap until their memory is asked for.
 */
function staged(tx: Uint8Array, bytes: Uint8Array): Uint8Array | number {
  if (bytes.length > tx.length) return bytes;
  tx.set(bytes);
  return bytes.length;
}
const NO_FDS: readonly number[] = Object.freeze([]);

/** A stream socket served by the addon (see serveConnection). */
export interface NativeConnection {
  /** Sends at once (what the socket cannot take yet follows in order); false once closed. */
  write(bytes: Uint8Array): boolean;
  /** Closes now, or once everything written is sent (`afterWrite`; reading stops at once). */
  close(afterWrite?: boolean): void;
  readonly closed: boolean;
}

export interface ConnectionHandlers {
  /**
   * Bytes as they arrive, with the descriptors sent along (the receiver's to close). `bytes` is
   * a view of the connection's receive buffer, valid only during the call: copy what you keep.
   */
  data(bytes: Uint8Array, fds: readonly number[]): void;
  /** Once, however the connection ended: errno null for a peer's close or our own. */
  close(errno: string | null): void;
}

/**
 * Serves a connected stream socket (TCP or unix) from the event loop without Node's stream
 * layer: the addon reads a duplicate of `fd` with recvmsg and sends from the caller's stack.
 * That is what a TPM data channel does a thousand times a second: one read, one command, one
 * write. The caller may close its own handle of `fd` at once; the connection lives on in the
 * duplicate until close() or the peer's end.
 */
export function serveConnection(fd: number, handlers: ConnectionHandlers): NativeConnection {
  const a = native();
  // open → closing (close(true) waits for the queue) → closed (handlers.close was called).
  let state: 'open' | 'closing' | 'closed' = 'open';
  const finish = (errno: string | null) => {
    if (state === 'closed') return;
    state = 'closed';
    handlers.close(errno);
  };
  const rx = new Uint8Array(RECEIVE_SIZE);
  const tx = new Uint8Array(SEND_SIZE);
  const handle = a.connect(fd, rx, tx, (n, fds, errno) => {
    if (n > 0) {
      if (state === 'open') handlers.data(rx.subarray(0, n), fds ?? NO_FDS);
    } else finish(errno ? errnoName(errno) : null);
  });
  if (typeof handle === 'number') throw new SyscallError('poll', handle);
  return {
    get closed() {
      return state === 'closed';
    },
    write(bytes) {
      if (state !== 'open') return false;
      const rc = a.write(handle, staged(tx, bytes));
      if (rc === 0) return true;
      a.close(handle, false);
      finish(errnoName(rc));
      return false;
    },
    close(afterWrite = false) {
      if (state !== 'open') {
        // A forced close while the queue drains: drop it now.
        if (state === 'closing' && !afterWrite) {
          a.close(handle, false);
          finish(null);
        }
        return;
      }
      state = 'closing';
      if (a.close(handle, afterWrite) === 1) return; // the addon reports the end once sent
      // Told after the caller's own code has run, as a stream's 'close' event is.
      setImmediate(() => finish(null));
    },
  };
}

export interface DeviceWatch {
  /** One reply, in one write(2); throws a SyscallError (code ENOENT: the request is gone). */
  write(reply: Uint8Array): void;
  /**
   * From now on, READ requests are answered from a copy of `response` by the addon, without a
   * call into JS, until the next request `onRead` gets, which tells how many bytes they took.
   */
  offer(response: Uint8Array): void;
  /**
   * From the next request on, the addon answers a well-formed WRITE itself at once, taking at
   * most `maxBytes` of it, and `onRead` gets it with `answered` set (0: JS answers WRITEs).
   */
  takeWrites(maxBytes: number): void;
  /** What the addon answered without JS so far. */
  stats(): DeviceStats;
  /** Stops reading; the caller then closes the descriptor. */
  stop(): void;
}

export interface DeviceStats {
  /** WRITEs the addon answered (takeWrites). */
  answeredWrites: number;
  /** READs of an offered response the addon answered. */
  servedReads: number;
  /** Requests (the client's READ) already queued when the addon read again right after a WRITE. */
  queuedAfterWrite: number;
}

/** What the device reader hands over: a request, or the end of the channel. */
export type DeviceEvent =
  /**
   * `request` is a view of `rx`, valid only during the call; `served`: bytes READs took of the
   * offer (-1: none was on offer); `answered`: a WRITE the addon answered, taking that many
   * bytes of its data (0: not answered).
   */
  | { request: Uint8Array; served: number; answered: number }
  /** errno null at end of file, its name on a read error (ENODEV: the kernel closed the channel). */
  | { request: null; errno: string | null };

/**
 * Reads a character device that supports poll (/dev/cuse) from the event loop: one read() into
 * `rx` per readable event and request, no thread hop. After a WRITE request it reads once more
 * at once (and keeps trying up to `followUpUs` on this thread) for the client's READ, and a READ
 * of an offered response is answered without JS. The descriptor stays the caller's; it is
 * non-blocking from now on.
 */
export function watchDevice(fd: number, rx: Uint8Array, followUpUs: number, onRead: (event: DeviceEvent) => void): DeviceWatch {
  const a = native();
  const tx = new Uint8Array(SEND_SIZE);
  const handle = a.watchDevice(fd, rx, tx, followUpUs, (n, _fds, errno, served, answered) => {
    if (n > 0) onRead({ request: rx.subarray(0, n), served, answered });
    else onRead({ request: null, errno: errno ? errnoName(errno) : null });
  });
  if (typeof handle === 'number') throw new SyscallError('poll', handle);
  return {
    write(reply) {
      const rc = a.write(handle, staged(tx, reply));
      if (rc < 0) throw new SyscallError('write', rc);
    },
    offer(response) {
      a.offer(handle, staged(tx, response));
    },
    takeWrites(maxBytes) {
      a.takeWrites(handle, maxBytes);
    },
    stats() {
      const s = a.deviceStats(handle);
      if (typeof s === 'number') throw new SyscallError('deviceStats', s);
      return { answeredWrites: s[0], servedReads: s[1], queuedAfterWrite: s[2] };
    },
    stop: () => void a.close(handle, false),
  };
}
