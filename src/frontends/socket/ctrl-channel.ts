/**
 * The control channel (swtpm-compat §1.5): a BE u32 command code and its body, collected until
 * the body is as long as the command needs (at most 4 + 4100 bytes, within 500 ms of the first
 * byte). Everything received by then is the request, so extra bytes break the length rules as
 * they do in swtpm. A request that is still short when the 500 ms are up is handled as it is:
 * the length rules answer it with TPM_BAD_PARAMETER (00 00 00 03; fewer than 4 bytes, with no
 * command code, too), as newer swtpm does. swtpm 0.7.1 closes the connection instead, which
 * leaves a client such as QEMU waiting for a reply that never comes.
 * HASH_DATA and SET_STATEBLOB announce a length after their fixed fields: once those are in, the
 * data is read to its end with no deadline (swtpm's blocking reads), and a length above the
 * command's limit is answered at once without waiting for the data.
 * Commands on one connection run in order; each reply goes out in one write.
 */
import type net from 'node:net';
import type { Logger } from '../../common/log.js';
import { CMD, CTRL_MAX_REQUEST, CTRL_RECV_BUDGET_MS, PTM_RES } from '../../control/codes.js';
import { frameBodySize, payloadOf, runControl, type ControlContext } from '../../control/handlers.js';
import type { Device } from '../../device/device.js';
import { decodeFields, encodeReply } from './socket-codec.js';

export interface CtrlConnectionOptions {
  device: Device;
  log: Logger;
  /** Whether the daemon can receive descriptors at all (advertises SET_DATAFD). */
  fdPassing: boolean;
  /** CMD_SET_DATAFD with the descriptor that came with it (null: none came); returns the result. */
  adoptDataSocket(socket: net.Socket | null): number;
  /** CMD_SHUTDOWN was answered: end the process. */
  onShutdown(): void;
  /** The bytes come through receive()/descriptor() (a unix connection read with recvmsg). */
  externalInput?: boolean;
}

const CMD_SIZE = 4;

export class CtrlConnection {
  private buf: Buffer = Buffer.alloc(0);
  private busy = false;
  private closed = false;
  private deadline: NodeJS.Timeout | undefined;
  /** A descriptor received with the bytes of the command being collected. */
  private receivedFd: net.Socket | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly options: CtrlConnectionOptions,
  ) {
    if (!options.externalInput) socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (e) => options.log.debug(`control connection: ${e.message}`));
    socket.on('close', () => {
      this.closed = true;
      this.clearDeadline();
      this.dropFd();
    });
  }

  /** A descriptor received with the bytes that follow it. */
  descriptor(fd: net.Socket): void {
    this.dropFd(); // cloud-hypervisor attaches an fd to every write: close strays
    this.receivedFd = fd;
  }

  private dropFd(): void {
    this.receivedFd?.destroy();
    this.receivedFd = null;
  }

  private clearDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
  }

  receive(chunk: Buffer): void {
    if (this.buf.length === 0 && !this.busy) {
      this.clearDeadline();
      this.deadline = setTimeout(() => this.timeout(), CTRL_RECV_BUDGET_MS);
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    void this.pump();
  }

  private timeout(): void {
    this.deadline = undefined;
    if (this.busy || this.closed || this.buf.length === 0) return;
    if (this.payloadPending()) return; // the data of HASH_DATA / SET_STATEBLOB has no deadline
    this.options.log.warn(`control channel: incomplete command (${this.buf.length} bytes) after ${CTRL_RECV_BUDGET_MS} ms; answering it as it is`);
    const request = this.buf.subarray(0, CTRL_MAX_REQUEST);
    this.buf = this.buf.subarray(request.length);
    if (request.length < CMD_SIZE) {
      this.socket.write(encodeReply({ result: PTM_RES.BAD_PARAMETER }, []));
      void this.pump();
      return;
    }
    this.busy = true;
    void this.handle(request).finally(() => {
      this.busy = false;
      this.rearm();
      void this.pump();
    });
  }

  /** Starts the 500 ms budget for bytes left over from an earlier request. */
  private rearm(): void {
    if (this.buf.length > 0 && !this.closed && !this.deadline) {
      this.deadline = setTimeout(() => this.timeout(), CTRL_RECV_BUDGET_MS);
    }
  }

  /** The announced data length of a payload command whose fixed fields are in, else undefined. */
  private announcedPayload(): { fixed: number; length: number; tooLong: boolean } | undefined {
    if (this.buf.length < CMD_SIZE) return undefined;
    const p = payloadOf(this.buf.readUInt32BE(0));
    if (!p || this.buf.length < CMD_SIZE + p.fieldsSize) return undefined;
    const length = this.buf.readUInt32BE(CMD_SIZE + p.lengthOffset);
    return { fixed: CMD_SIZE + p.fieldsSize, length, tooLong: length > p.spec.max };
  }

  private payloadPending(): boolean {
    const p = this.announcedPayload();
    return p !== undefined && !p.tooLong && this.buf.length < p.fixed + p.length;
  }

  private needed(): number | null {
    if (this.buf.length < CMD_SIZE) return null;
    const payload = this.announcedPayload();
    if (payload) {
      if (payload.tooLong) return payload.fixed; // answered without the data
      const need = payload.fixed + payload.length;
      if (this.buf.length < need) return null;
      // As in swtpm, bytes beyond the announced length in the first read (≤ 4 + 4100) are part of
      // the request and make it TPM_BAD_PARAMETER.
      return need >= CTRL_MAX_REQUEST ? need : Math.min(this.buf.length, CTRL_MAX_REQUEST);
    }
    const need = CMD_SIZE + frameBodySize(this.buf.readUInt32BE(0));
    return this.buf.length >= need ? Math.min(this.buf.length, CTRL_MAX_REQUEST) : null;
  }

  private async pump(): Promise<void> {
    while (!this.busy && !this.closed) {
      const take = this.needed();
      if (take === null) return;
      this.clearDeadline();
      const request = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.busy = true;
      try {
        await this.handle(request);
      } finally {
        this.busy = false;
      }
      this.rearm();
    }
  }

  private async handle(request: Buffer): Promise<void> {
    const code = request.readUInt32BE(0);
    const body = request.subarray(CMD_SIZE);
    const fd = this.receivedFd;
    this.receivedFd = null;
    const ctx: ControlContext = {
      fdPassing: this.options.fdPassing,
      setDataFd: () => this.options.adoptDataSocket(fd),
    };
    let reply;
    let fields;
    try {
      const p = payloadOf(code);
      const payload = p && body.length >= p.fieldsSize ? body.subarray(p.fieldsSize) : undefined;
      const out = await runControl(this.options.device, code, body.length, (f) => decodeFields(body, f), ctx, payload);
      reply = out.reply;
      fields = out.row?.response ?? [];
    } catch (e) {
      this.options.log.error(`control command 0x${code.toString(16)} failed: ${(e as Error).message}`);
      reply = { result: PTM_RES.FAIL };
      fields = [];
    }
    if (code !== CMD.SET_DATAFD || reply.result !== PTM_RES.SUCCESS) fd?.destroy();
    const bytes = encodeReply(reply, fields);
    if (reply.terminate) {
      // The reply goes out first, then the process ends (swtpm-compat §1.7 SHUTDOWN).
      if (this.closed) this.options.onShutdown();
      else this.socket.write(bytes, () => this.options.onShutdown());
      return;
    }
    if (!this.closed) this.socket.write(bytes);
  }
}
