/**
 * The I/O around a CuseSession: /dev/cuse opened O_RDWR, one request per read() into a 132 KiB
 * buffer, one write() per reply (swtpm-compat §3.1).
 *
 * Reading: /dev/cuse supports poll, and Node has no public API for polling a character device,
 * so the native addon polls it on the event loop and reads one request per readable event into
 * its 132 KiB buffer: no thread hop per request. VTPMD_CUSE_READER=threadpool reads through
 * Node's thread pool instead (libuv calls a char device a file), one read pending at a time, for
 * comparisons. A thread blocked in read() keeps the process from exiting (libuv joins its
 * threads at exit), so close() then wakes it the way the kernel allows: it opens /dev/NAME
 * itself, the kernel hands us that FUSE_OPEN, we refuse it with ENODEV and stop reading; closing
 * /dev/cuse then removes the device node.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../common/log.js';
import type { Device } from '../../device/device.js';
import { watchDevice, type DeviceWatch } from '../../native/syscalls.js';
import { ERRNO, FUSE_OP, errorReply, fuse_in_header, fuse_write_in } from './kernel-structs.js';
import { CuseSession, REQUEST_BUFFER_SIZE } from './session.js';

export const CUSE_PATH = '/dev/cuse';
/**
 * How long the addon keeps polling on the main thread for the READ that follows a WRITE when one
 * read at once did not find it. 0 (go back to the event loop) measured faster in the guest:
 * 514/361 against 418/347 GetRandom/PCR_Extend per second with 200 µs, since a client placed on
 * the daemon's CPU cannot send its READ while the daemon spins waiting for it.
 */
const FOLLOW_UP_US = Number(process.env.VTPMD_CUSE_FOLLOW_UP_US ?? 0);

/** A problem the CLI reports as one line: what is wrong and what to do. */
export class CuseError extends Error {
  readonly code = 'VTPMD_STARTUP';
  constructor(message: string) {
    super(message);
    this.name = 'CuseError';
  }
}

export interface CuseDeviceOptions {
  device: Device;
  name: string;
  devMajor?: number;
  devMinor?: number;
  log: Logger;
  /** PTM_SHUTDOWN was answered. */
  onShutdown(): void;
  /** The kernel closed the connection (or reading failed) while we were not closing. */
  onLost?(reason: string): void;
  /** For tests: where the CUSE channel and the device nodes live. */
  cusePath?: string;
  devDir?: string;
  /** How long to wait for /dev/NAME after CUSE_INIT (ms). */
  nodeTimeoutMs?: number;
}

/** Opens the CUSE channel, with a message that says what to do when it fails. */
export function openCuseChannel(cusePath = CUSE_PATH): number {
  try {
    return fs.openSync(cusePath, fs.constants.O_RDWR);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') {
      throw new CuseError(`${cusePath} does not exist: the cuse kernel module is not loaded: modprobe cuse`);
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new CuseError(`cannot open ${cusePath}: permission denied; vtpmd cuse needs root (or a udev rule giving this user access to ${cusePath})`);
    }
    throw new CuseError(`cannot open ${cusePath}: ${(e as Error).message}`);
  }
}

/** True when `pid` (a FUSE request's sender) is a thread of this process. */
function ownThread(pid: number): boolean {
  return pid === process.pid || fs.existsSync(`/proc/self/task/${pid}`);
}

/**
 * Whether a device node exists. Not fs.existsSync: access(2) on a device node is checked against
 * the device cgroup, so under the unit's DevicePolicy=closed it fails (EPERM) for every node but
 * /dev/cuse, and the daemon waited 5 s for a /dev/vtpm-<vm> that was there. stat(2) is not.
 */
function nodeExists(node: string): boolean {
  return fs.statSync(node, { throwIfNoEntry: false }) !== undefined;
}

export class CuseDevice {
  readonly session: CuseSession;
  readonly nodePath: string;
  private readonly fd: number;
  /**
   * Every request is read into this one buffer. A plain Uint8Array, not a Buffer: the session
   * copies what it keeps with slice(), which for a Buffer would be a view of bytes the next read
   * overwrites.
   */
  private readonly buf = new Uint8Array(REQUEST_BUFFER_SIZE);
  private reading = false;
  /** The event-loop reader (null: the thread-pool loop runs). */
  private watch: DeviceWatch | null = null;
  private stopping = false;
  private fdClosed = false;
  private loopEnded!: () => void;
  /** Resolves when no read is pending any more and the channel is closed. */
  readonly closed: Promise<void>;
  private initSeen!: () => void;
  private readonly initialized: Promise<void>;
  private lostReason: string | null = null;

  private constructor(
    private readonly options: CuseDeviceOptions,
    fd: number,
  ) {
    this.fd = fd;
    this.nodePath = path.join(options.devDir ?? '/dev', options.name);
    this.closed = new Promise((r) => (this.loopEnded = r));
    this.initialized = new Promise((r) => (this.initSeen = r));
    this.session = new CuseSession({
      device: options.device,
      name: options.name,
      ...(options.devMajor !== undefined ? { devMajor: options.devMajor } : {}),
      ...(options.devMinor !== undefined ? { devMinor: options.devMinor } : {}),
      log: options.log,
      send: (b) => this.write(b),
      offer: (response) => this.watch?.offer(response),
      takeWrites: (maxBytes) => this.watch?.takeWrites(maxBytes),
      onInit: () => this.initSeen(),
      onShutdown: () => options.onShutdown(),
    });
  }

  /**
   * Registers /dev/NAME: refuses a name that is taken, opens /dev/cuse, answers CUSE_INIT and
   * waits until the kernel has created the device (the node appears through devtmpfs).
   */
  static async start(options: CuseDeviceOptions): Promise<CuseDevice> {
    const node = path.join(options.devDir ?? '/dev', options.name);
    if (nodeExists(node)) {
      throw new CuseError(`${node} already exists: another vTPM (or device) uses the name '${options.name}'; choose another -n/--name`);
    }
    const dev = new CuseDevice(options, openCuseChannel(options.cusePath));
    dev.startReading();
    const lost = dev.closed.then(() => {
      throw new CuseError(
        `the kernel refused to create ${node} (${dev.lostReason ?? 'connection closed'}); is the name '${options.name}' already used by another CUSE device, or are --maj/--min taken?`,
      );
    });
    await Promise.race([dev.initialized, lost]);
    const deadline = Date.now() + (options.nodeTimeoutMs ?? 5000);
    while (!nodeExists(node)) {
      if (dev.lostReason !== null) await lost;
      if (Date.now() > deadline) {
        options.log.warn(`${node} did not appear (no devtmpfs or udev?); the device is registered in /sys/class/cuse/${options.name}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    lost.catch(() => undefined);
    return dev;
  }

  private write(b: Uint8Array): void {
    if (this.fdClosed) return;
    try {
      if (this.watch) this.watch.write(b);
      else fs.writeSync(this.fd, b);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: the request was interrupted or aborted meanwhile; nothing to do.
      if (code !== 'ENOENT') this.options.log.warn(`cuse: writing a reply failed: ${(e as Error).message}`);
    }
  }

  private startReading(): void {
    if (process.env.VTPMD_CUSE_READER === 'threadpool') return this.readNext();
    // The addon answers a command's WRITE (while the session allows it) and the READs of the
    // response offered after it, so a command costs one call into JS, not two, and the client
    // is released to send its READ before any JS runs.
    this.watch = watchDevice(this.fd, this.buf, FOLLOW_UP_US, (event) => {
      if (event.request === null) {
        const { errno } = event;
        const closed = errno === null || errno === 'ENODEV' || errno === 'ECONNABORTED';
        this.end(closed ? 'the kernel closed the CUSE connection' : `reading ${CUSE_PATH} failed: ${errno}`);
        return;
      }
      if (event.served >= 0) this.session.offerTaken(event.served);
      if (event.answered > 0 && !this.fdClosed) {
        const at = fuse_in_header.size + fuse_write_in.size;
        return this.session.takeCommand(event.request.subarray(at, at + event.answered));
      }
      this.onRequest(event.request);
    });
    this.options.log.debug('cuse: reading requests through the event loop');
  }

  /** One request, a view of `buf` valid until the next read (the session copies what it keeps). */
  private onRequest(request: Uint8Array): void {
    if (this.fdClosed) return;
    if (this.stopping && this.isOwnWakeup(request)) {
      this.write(errorReply(fuse_in_header.decode(request).unique, ERRNO.ENODEV));
      this.end(null);
      return;
    }
    this.session.handle(request);
  }

  private readNext(): void {
    this.reading = true;
    fs.read(this.fd, this.buf, 0, this.buf.length, null, (err, n) => {
      this.reading = false;
      if (err) {
        const code = err.code;
        if (code === 'EINTR' || code === 'EAGAIN' || code === 'ENOENT') {
          if (!this.fdClosed) return this.readNext();
        }
        this.end(code === 'ENODEV' || code === 'ECONNABORTED' ? 'the kernel closed the CUSE connection' : `reading ${CUSE_PATH} failed: ${err.message}`);
        return;
      }
      // A copy: the next read into buf is pending before this request is handled.
      const request = this.buf.slice(0, n);
      // The next read is pending before this request is answered, so the client's next request
      // (a READ right after its WRITE) is picked up at once.
      if (!this.fdClosed && !(this.stopping && this.isOwnWakeup(request))) this.readNext();
      this.onRequest(request);
    });
  }

  private isOwnWakeup(request: Uint8Array): boolean {
    if (request.length < fuse_in_header.size) return false;
    const h = fuse_in_header.decode(request);
    return h.opcode === FUSE_OP.OPEN && ownThread(h.pid);
  }

  private end(reason: string | null): void {
    if (reason !== null && !this.stopping) {
      this.lostReason = reason;
      this.options.log.error(reason);
      this.options.onLost?.(reason);
    }
    this.closeFd();
    this.loopEnded();
  }

  private closeFd(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    if (this.watch) {
      const s = this.watch.stats();
      this.options.log.info(
        `cuse: the addon answered ${s.answeredWrites} WRITEs and ${s.servedReads} READs without JS; the client's READ was queued already after ${s.queuedAfterWrite} WRITEs`,
      );
    }
    // Off the event loop first (at once), then closed: the channel ends and the node goes.
    this.watch?.stop();
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }

  /**
   * Unregisters the device. Returns false when the pending read could not be woken within the
   * timeout (the process then cannot exit normally).
   */
  async close(timeoutMs = 3000): Promise<boolean> {
    if (this.stopping) return this.waitClosed(timeoutMs);
    this.stopping = true;
    this.session.closing = true;
    if (!this.reading || this.watch) {
      this.end(null);
      return true;
    }
    fs.open(this.nodePath, fs.constants.O_RDWR | fs.constants.O_NONBLOCK, (err, fd) => {
      if (!err) fs.close(fd, () => undefined);
      else if (err.code !== 'ENODEV') this.options.log.warn(`cuse: could not wake the request reader through ${this.nodePath}: ${err.message}`);
    });
    return this.waitClosed(timeoutMs);
  }

  private async waitClosed(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const ok = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return ok;
  }
}
