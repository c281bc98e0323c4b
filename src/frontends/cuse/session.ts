/**
 * One CUSE connection as a state machine over byte buffers (swtpm-compat §3): `handle()` takes
 * one request exactly as read from /dev/cuse and answers through `send()`, one buffer per reply,
 * at once or later (a READ waiting for a command that is still executing, an ioctl that waits
 * for the device). No I/O of its own: device-io.ts moves the bytes, tests feed hand-built ones.
 *
 * Semantics follow swtpm cuse (§3.5): one opener at a time (EBUSY), one TPM command per write
 * (truncated to 4096 bytes), the response read from an internal offset (partial reads; 0 bytes
 * once used up or before any command), dropped by the next write, STOP or SHUTDOWN; the TPM
 * stopped → the 10-byte fatal response. Every request gets exactly one reply except
 * INTERRUPT and FORGET, which get none.
 */
import type { Logger } from '../../common/log.js';
import { CMD, PTM_RES } from '../../control/codes.js';
import { NOT_RUNNING_RESPONSE, type Device } from '../../device/device.js';
import { slabCopy } from '../../common/slab-copy.js';
import { CuseControl } from './ioctl.js';
import {
  CUSE_INIT_INFO_MAX,
  CUSE_MIN_MINOR_VERSION,
  ERRNO,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_NOTIFY_POLL,
  FUSE_OP,
  FUSE_POLL_SCHEDULE_NOTIFY,
  O_NONBLOCK,
  POLL,
  cuse_init_in,
  cuse_init_out,
  errorReply,
  fuse_in_header,
  fuse_interrupt_in,
  fuse_ioctl_in,
  fuse_ioctl_out,
  fuse_notify_poll_wakeup_out,
  fuse_open_in,
  fuse_open_out,
  fuse_out_header,
  fuse_poll_in,
  fuse_poll_out,
  fuse_read_in,
  fuse_release_in,
  fuse_write_in,
  fuse_write_out,
  reply,
} from './kernel-structs.js';

/** What we offer in CUSE_INIT: the kernel's chunk size for reads and the largest single write. */
export const MAX_READ = 131072;
export const MAX_WRITE = 131072;
/** A read of /dev/cuse needs ≥ in_header + write_in + max_write bytes (§3.1); 132 KiB. */
export const REQUEST_BUFFER_SIZE = 132 * 1024;
/** swtpm's TPM_REQ_MAX: a longer write is truncated to this and the reply says so. */
export const TPM_REQ_MAX = 4096;

export interface CuseSessionOptions {
  device: Device;
  /** The device name: /dev/NAME, sent as DEVNAME=NAME. */
  name: string;
  /** Device numbers for CUSE_INIT; 0 lets the kernel choose. */
  devMajor?: number;
  devMinor?: number;
  log: Logger;
  /** Writes one reply (or notification) to the kernel; `buf` may be reused once this returns. */
  send(buf: Uint8Array): void;
  /**
   * A command's response, ready when handle() returns for its WRITE: the I/O layer may answer the READs
   * that fetch it without calling handle(), and then reports what they took (offerTaken).
   */
  offer?(response: Uint8Array): void;
  /**
   * Whether the I/O layer may answer a TPM command's WRITE itself, taking at most `maxBytes` of
   * it (0: it may not), and hand the command over with takeCommand(). Told at every change.
   */
  takeWrites?(maxBytes: number): void;
  /** CUSE_INIT was answered (the kernel now creates /dev/NAME). */
  onInit?(): void;
  /** PTM_SHUTDOWN was answered: the daemon ends. */
  onShutdown?(): void;
}

interface WaitingRead {
  unique: bigint;
  size: number;
}

const H = fuse_in_header.size;

export class CuseSession {
  /** Set once CUSE_INIT has been answered successfully. */
  initialized = false;
  /** Protocol minor agreed in CUSE_INIT. */
  minor = 0;
  /** While closing, every OPEN gets ENODEV. */
  closing = false;

  private openFh: bigint | null = null;
  private nextFh = 0n;
  private response: Uint8Array | null = null;
  /**
   * The reply to a TPM command's WRITE, filled in place for each one: a fresh 24-byte array is
   * moved off V8's heap by the first DataView on it (a malloc and a backing store, 2-3 µs), and
   * the hot path made two of those per command. send() copies what it is given at once.
   */
  private readonly writeReplyBytes = new Uint8Array(new ArrayBuffer(fuse_out_header.size + fuse_write_out.size));
  private readOffset = 0;
  /** The response last offered, until offerTaken says how far READs read it. */
  private offered: Uint8Array | null = null;
  /** A command that did not run at once (the device was busy): reads wait for it. */
  private executing: Promise<void> | null = null;
  private readonly waitingReads: WaitingRead[] = [];
  private pollKh: bigint | null = null;
  /** What takeWrites() was told last (-1: nothing yet). */
  private writesTaken = -1;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly control: CuseControl;

  constructor(private readonly options: CuseSessionOptions) {
    this.control = new CuseControl(options.device, options.log);
  }

  /** Resolves when no asynchronous work (commands, ioctls) is left. */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Whether a client has the device open. */
  get isOpen(): boolean {
    return this.openFh !== null;
  }

  /**
   * READs answered from the offer since it was made took `taken` bytes of it: the read offset
   * moves on as if they had come through handle(). Call before the next handle().
   */
  offerTaken(taken: number): void {
    if (this.offered !== null && this.offered === this.response) this.readOffset = taken;
    this.offered = null;
  }

  /**
   * A TPM command whose WRITE the I/O layer answered (as takeWrites allowed): what write() does
   * after its reply.
   */
  takeCommand(command: Uint8Array): void {
    this.runCommand(command);
    this.tellWritesTaken();
  }

  /** Handles one request from the kernel. Never throws. */
  handle(request: Uint8Array): void {
    if (request.length < H) {
      this.options.log.warn(`cuse: ignoring a ${request.length}-byte request (shorter than fuse_in_header)`);
      return;
    }
    const h = fuse_in_header.decode(request);
    if (h.len !== request.length) {
      this.options.log.warn(`cuse: request length ${h.len} does not match the ${request.length} bytes read (opcode ${h.opcode})`);
      if (!noReply(h.opcode)) this.error(h.unique, ERRNO.EINVAL);
      return;
    }
    const body = request.subarray(H);
    try {
      this.dispatch(h.opcode, h.unique, body);
    } catch (e) {
      this.options.log.error(`cuse: opcode ${h.opcode} failed: ${(e as Error).message}`);
      if (!noReply(h.opcode)) this.error(h.unique, ERRNO.EIO);
    }
    this.tellWritesTaken();
  }

  /**
   * The I/O layer may answer a WRITE itself while a write would carry a TPM command that is taken
   * at once: not during a state-blob transfer (the write is blob data) and not while a command
   * waits to run (EBUSY).
   */
  private tellWritesTaken(): void {
    const max = this.control.mode === 'command' && this.executing === null ? TPM_REQ_MAX : 0;
    if (max === this.writesTaken || !this.options.takeWrites) return;
    this.writesTaken = max;
    this.options.takeWrites(max);
  }

  private dispatch(opcode: number, unique: bigint, body: Uint8Array): void {
    switch (opcode) {
      case FUSE_OP.CUSE_INIT:
        return this.init(unique, body);
      case FUSE_OP.OPEN:
        return this.open(unique, body);
      case FUSE_OP.READ:
        return this.read(unique, body);
      case FUSE_OP.WRITE:
        return this.write(unique, body);
      case FUSE_OP.IOCTL:
        return this.ioctl(unique, body);
      case FUSE_OP.POLL:
        return this.poll(unique, body);
      case FUSE_OP.RELEASE:
        return this.release(unique, body);
      case FUSE_OP.INTERRUPT:
        return this.interrupt(body);
      case FUSE_OP.FORGET:
      case FUSE_OP.BATCH_FORGET:
        return;
      default:
        return this.error(unique, ERRNO.ENOSYS);
    }
  }

  private send(buf: Uint8Array): void {
    try {
      this.options.send(buf);
    } catch (e) {
      this.options.log.debug(`cuse: reply not delivered: ${(e as Error).message}`);
    }
  }

  private error(unique: bigint, errno: number): void {
    this.send(errorReply(unique, errno));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  private init(unique: bigint, body: Uint8Array): void {
    if (body.length < cuse_init_in.size) return this.error(unique, ERRNO.EINVAL);
    const inArg = cuse_init_in.decode(body);
    if (inArg.major !== FUSE_KERNEL_VERSION || inArg.minor < CUSE_MIN_MINOR_VERSION) {
      this.options.log.error(`cuse: kernel speaks FUSE ${inArg.major}.${inArg.minor}; need ${FUSE_KERNEL_VERSION}.${CUSE_MIN_MINOR_VERSION} or later`);
      return this.error(unique, ERRNO.EPROTO);
    }
    this.minor = Math.min(inArg.minor, FUSE_KERNEL_MINOR_VERSION);
    const info = new TextEncoder().encode(`DEVNAME=${this.options.name}\0`);
    if (info.length > CUSE_INIT_INFO_MAX) return this.error(unique, ERRNO.EINVAL);
    const payload = new Uint8Array(cuse_init_out.size + info.length);
    cuse_init_out.encode(
      {
        major: FUSE_KERNEL_VERSION,
        minor: this.minor,
        flags: 0, // restricted ioctls, as swtpm (§3.4)
        max_read: MAX_READ,
        max_write: MAX_WRITE,
        dev_major: this.options.devMajor ?? 0,
        dev_minor: this.options.devMinor ?? 0,
      },
      payload,
    );
    payload.set(info, cuse_init_out.size);
    this.send(reply(unique, payload));
    this.initialized = true;
    this.options.onInit?.();
  }

  private open(unique: bigint, body: Uint8Array): void {
    if (body.length < fuse_open_in.size) return this.error(unique, ERRNO.EINVAL);
    if (this.closing) return this.error(unique, ERRNO.ENODEV);
    if (this.openFh !== null) return this.error(unique, ERRNO.EBUSY);
    this.openFh = ++this.nextFh;
    this.send(reply(unique, fuse_open_out.encode({ fh: this.openFh })));
  }

  private release(unique: bigint, body: Uint8Array): void {
    const fh = body.length >= fuse_release_in.size ? fuse_release_in.decode(body).fh : null;
    if (fh === null || fh === this.openFh) {
      this.openFh = null;
      this.pollKh = null;
    }
    this.send(reply(unique));
  }

  private write(unique: bigint, body: Uint8Array): void {
    if (body.length < fuse_write_in.size) return this.error(unique, ERRNO.EINVAL);
    const w = fuse_write_in.decode(body);
    if (fuse_write_in.size + w.size > body.length) return this.error(unique, ERRNO.EINVAL);
    if (this.control.mode !== 'command') {
      const taken = this.control.writeBlob(body.subarray(fuse_write_in.size, fuse_write_in.size + w.size));
      if (taken === 'EIO') return this.error(unique, ERRNO.EIO);
      return this.send(reply(unique, fuse_write_out.encode({ size: taken })));
    }
    if (this.executing) return this.error(unique, ERRNO.EBUSY);
    if (w.size > TPM_REQ_MAX) this.options.log.debug(`cuse: a ${w.size}-byte write is truncated to ${TPM_REQ_MAX} bytes`);
    const size = Math.min(w.size, TPM_REQ_MAX);
    // Answered before the command runs, as swtpm cuse answers a command it hands to its worker
    // thread: the client goes on to its READ while the engine works, and the I/O layer finds that
    // READ queued when this returns instead of sleeping until it comes. The client cannot tell:
    // no other request is read before the command has run and its response is offered.
    const out = this.writeReplyBytes;
    fuse_out_header.encode({ len: out.length, error: 0, unique }, out);
    fuse_write_out.encode({ size }, out, fuse_out_header.size);
    this.send(out);
    this.runCommand(body.subarray(fuse_write_in.size, fuse_write_in.size + size));
  }

  /** Runs a TPM command whose WRITE is answered; its response is for the READs that follow. */
  private runCommand(bytes: Uint8Array): void {
    // Copied: the caller may reuse its read buffer.
    const command = slabCopy(bytes);
    this.response = null;
    this.readOffset = 0;
    const now = this.executeNow(command);
    if (now) {
      this.response = now;
      if (this.options.offer) {
        this.offered = now;
        this.options.offer(now);
      }
    } else {
      const run = this.options.device
        .executeTpm(command)
        .catch(() => NOT_RUNNING_RESPONSE.slice())
        .then((rsp) => {
          this.response = rsp;
          this.readOffset = 0;
          this.executing = null;
          this.commandDone();
          this.tellWritesTaken();
        });
      this.executing = this.track(run);
    }
  }

  /**
   * The device's answer, or null when it is busy. Never throws: the WRITE is answered already, so
   * a failure becomes the response a command that cannot run gets, for the READ that follows.
   */
  private executeNow(command: Uint8Array): Uint8Array | null {
    try {
      return this.options.device.executeTpmNow(command);
    } catch (e) {
      this.options.log.error(`cuse: a command failed: ${(e as Error).message}`);
      return NOT_RUNNING_RESPONSE.slice();
    }
  }

  /** A deferred command finished: serve the reads that waited and wake a poller. */
  private commandDone(): void {
    for (const r of this.waitingReads.splice(0)) this.serveRead(r.unique, r.size);
    if (this.pollKh !== null) {
      const kh = this.pollKh;
      this.pollKh = null;
      const payload = fuse_notify_poll_wakeup_out.encode({ kh });
      const out = new Uint8Array(fuse_out_header.size + payload.length);
      fuse_out_header.encode({ len: out.length, error: FUSE_NOTIFY_POLL, unique: 0n }, out);
      out.set(payload, fuse_out_header.size);
      this.send(out);
    }
  }

  private read(unique: bigint, body: Uint8Array): void {
    if (body.length < fuse_read_in.size) return this.error(unique, ERRNO.EINVAL);
    const r = fuse_read_in.decode(body);
    if (this.control.mode !== 'command') {
      const data = this.control.readBlob(r.size);
      if (data === 'EIO') return this.error(unique, ERRNO.EIO);
      return this.send(reply(unique, data));
    }
    if (this.executing) {
      if (r.flags & O_NONBLOCK) return this.error(unique, ERRNO.EAGAIN);
      this.waitingReads.push({ unique, size: r.size });
      return;
    }
    this.serveRead(unique, r.size);
  }

  private serveRead(unique: bigint, size: number): void {
    const rsp = this.response;
    let data: Uint8Array = new Uint8Array(0);
    if (rsp && this.readOffset < rsp.length) {
      const n = Math.min(size, rsp.length - this.readOffset);
      data = rsp.subarray(this.readOffset, this.readOffset + n);
      this.readOffset += n;
    }
    this.send(reply(unique, data));
  }

  private poll(unique: bigint, body: Uint8Array): void {
    if (body.length < fuse_poll_in.size) return this.error(unique, ERRNO.EINVAL);
    const p = fuse_poll_in.decode(body);
    // Readable when a read would not block: always, except while a command executes.
    let revents = POLL.OUT | POLL.WRNORM;
    if (!this.executing) revents |= POLL.IN | POLL.RDNORM;
    else if (p.flags & FUSE_POLL_SCHEDULE_NOTIFY) this.pollKh = p.kh;
    this.send(reply(unique, fuse_poll_out.encode({ revents })));
  }

  private interrupt(body: Uint8Array): void {
    if (body.length < fuse_interrupt_in.size) return;
    const target = fuse_interrupt_in.decode(body).unique;
    const i = this.waitingReads.findIndex((r) => r.unique === target);
    if (i >= 0) {
      this.waitingReads.splice(i, 1);
      this.error(target, ERRNO.EINTR);
    }
    // Anything else is either answered already or finishes shortly (ioctls, writes).
  }

  private ioctl(unique: bigint, body: Uint8Array): void {
    if (body.length < fuse_ioctl_in.size) return this.error(unique, ERRNO.EINVAL);
    const io = fuse_ioctl_in.decode(body);
    if (fuse_ioctl_in.size + io.in_size > body.length) return this.error(unique, ERRNO.EINVAL);
    const input = body.slice(fuse_ioctl_in.size, fuse_ioctl_in.size + io.in_size);
    const done = this.track(this.control.run(io.cmd, input, io.out_size)).then((out) => {
      // Before the reply: the client's next write may be state-blob data now.
      this.tellWritesTaken();
      if ('errno' in out) return this.error(unique, ERRNO[out.errno]);
      if (out.result === PTM_RES.SUCCESS && (out.code === CMD.STOP || out.code === CMD.SHUTDOWN)) {
        this.response = null;
        this.readOffset = 0;
      }
      const payload = new Uint8Array(fuse_ioctl_out.size + out.data.length);
      fuse_ioctl_out.encode({ result: 0 }, payload);
      payload.set(out.data, fuse_ioctl_out.size);
      this.send(reply(unique, payload));
      if (out.terminate) this.options.onShutdown?.();
    });
    done.catch((e: Error) => this.options.log.error(`cuse: ioctl reply failed: ${e.message}`));
  }
}

/** Requests the kernel expects no reply to. */
function noReply(opcode: number): boolean {
  return opcode === FUSE_OP.INTERRUPT || opcode === FUSE_OP.FORGET || opcode === FUSE_OP.BATCH_FORGET;
}
