/**
 * The I/O around a CuseSession: /dev/cuse opened O_RDWR, one request per read() into a 132 KiB
 * buffer, one write() per reply (swtpm-compat §3.1).
 *
 * Reading: /dev/cuse supports poll, so the fd is handed to libuv's event loop as a stream (a
 * pipe handle, which libuv opens without a type check) and each readable event reads one request
 * into our own 132 KiB buffer (net.Socket `onread`): no thread hop per request, and closing the
 * handle closes the channel. Node has no public API for polling a character device; when the
 * internal pipe binding is not there, reads fall back to the thread pool (libuv calls a char
 * device a file), one pending at a time. A thread blocked in read() keeps the process from
 * exiting (libuv joins its threads at exit), so close() then wakes it the way the kernel allows:
 * it opens /dev/NAME itself, the kernel hands us that FUSE_OPEN, we refuse it with ENODEV and stop
 * reading; closing /dev/cuse then removes the device node. VTPMD_CUSE_READER=threadpool forces
 * the fallback (for comparisons).
 */
import * as fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../../common/log.js';
import type { Device } from '../../device/device.js';
import { ERRNO, FUSE_OP, errorReply, fuse_in_header } from './kernel-structs.js';
import { CuseSession, REQUEST_BUFFER_SIZE } from './session.js';

export const CUSE_PATH = '/dev/cuse';
/** How long to wait on the main thread for the READ that follows a WRITE. */
const FOLLOW_UP_NS = BigInt(process.env.VTPMD_CUSE_FOLLOW_UP_US ?? 200) * 1000n;

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

interface PipeBinding {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

/** The fd as an event-loop stream that reads into `buf`, or null when Node cannot do that. */
function pollingStream(fd: number, buf: Buffer, onRead: (n: number) => void): net.Socket | null {
  if (process.env.VTPMD_CUSE_READER === 'threadpool') return null;
  try {
    const binding = (process as unknown as { binding(name: string): PipeBinding }).binding('pipe_wrap');
    const handle = new binding.Pipe(binding.constants.SOCKET);
    if (handle.open(fd) !== 0) return null;
    return new net.Socket({
      handle,
      readable: true,
      writable: false,
      onread: { buffer: buf, callback: (n: number) => void onRead(n) },
    } as net.SocketConstructorOpts);
  } catch {
    return null;
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
  private readonly buf = Buffer.alloc(REQUEST_BUFFER_SIZE);
  private reading = false;
  /** The event-loop reader, when available (else the thread-pool loop runs). */
  private stream: net.Socket | null = null;
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
      fs.writeSync(this.fd, b);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: the request was interrupted or aborted meanwhile; nothing to do.
      if (code !== 'ENOENT') this.options.log.warn(`cuse: writing a reply failed: ${(e as Error).message}`);
    }
  }

  private startReading(): void {
    this.stream = pollingStream(this.fd, this.buf, (n) => {
      const request = Buffer.from(this.buf.subarray(0, n));
      this.onRequest(request);
      if (request.length >= 8 && request.readUInt32LE(4) === FUSE_OP.WRITE) this.awaitFollowUp();
    });
    if (!this.stream) return this.readNext();
    this.options.log.debug('cuse: reading requests through the event loop');
    this.stream.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code;
      this.end(code === 'ENODEV' || code === 'ECONNABORTED' ? 'the kernel closed the CUSE connection' : `reading ${CUSE_PATH} failed: ${err.message}`);
    });
    this.stream.on('end', () => this.end('the kernel closed the CUSE connection'));
  }

  /**
   * After a WRITE the client's READ follows at once: wait for it a few microseconds on this
   * thread (the channel is non-blocking here) instead of going back to the event loop for it.
   */
  private awaitFollowUp(): void {
    const deadline = process.hrtime.bigint() + FOLLOW_UP_NS;
    while (!this.fdClosed) {
      let n: number;
      try {
        n = fs.readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN' && process.hrtime.bigint() < deadline) continue;
        return; // nothing yet (the event loop takes over), or an error the stream will report
      }
      const request = Buffer.from(this.buf.subarray(0, n));
      this.onRequest(request);
      if (request.length < 8 || request.readUInt32LE(4) !== FUSE_OP.WRITE) return;
    }
  }

  private onRequest(request: Buffer): void {
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
      const request = Buffer.from(this.buf.subarray(0, n));
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
    if (this.stream) {
      // The handle owns the fd: destroying it closes the channel.
      this.stream.destroy();
      return;
    }
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
    if (!this.reading || this.stream) {
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
