// Minimal swtpm control-channel client (socket framing, big-endian): request = u32 cmd + body,
// one response per request.
import { BufferedSocket, connectSocket } from './buffered-socket.js';

export const CMD = {
  GET_CAPABILITY: 0x01,
  INIT: 0x02,
  SHUTDOWN: 0x03,
  GET_TPMESTABLISHED: 0x04,
  SET_LOCALITY: 0x05,
  HASH_START: 0x06,
  HASH_DATA: 0x07,
  HASH_END: 0x08,
  CANCEL_TPM_CMD: 0x09,
  STORE_VOLATILE: 0x0a,
  RESET_TPMESTABLISHED: 0x0b,
  GET_STATEBLOB: 0x0c,
  SET_STATEBLOB: 0x0d,
  STOP: 0x0e,
  GET_CONFIG: 0x0f,
  SET_DATAFD: 0x10,
  SET_BUFFERSIZE: 0x11,
  GET_INFO: 0x12,
  LOCK_STORAGE: 0x13,
} as const;

/** Success response lengths on the socket (errors are always 4 bytes). */
export const CTRL_RESPONSE_LEN: Partial<Record<number, number>> = {
  [CMD.GET_CAPABILITY]: 8,
  [CMD.GET_TPMESTABLISHED]: 8,
  [CMD.GET_CONFIG]: 8,
  [CMD.SET_BUFFERSIZE]: 16,
};

export type CtrlTarget = { ctrlPort: number; host?: string } | { ctrlPath: string };

export function u32be(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

export interface CtrlReadOptions {
  /** Stop reading once this many bytes arrived (plus `settleMs` to catch any excess). */
  expectLen?: number;
  /** Quiet period that ends a response when `expectLen` is unknown or not reached (default 150 ms). */
  quietMs?: number;
  /** After `expectLen` is reached, wait this long for unexpected extra bytes (default 20 ms). */
  settleMs?: number;
  /** Hard limit (default 5 s). */
  timeoutMs?: number;
}

/** A control connection that can carry several requests (as QEMU keeps it). */
export class CtrlClient extends BufferedSocket {
  static async connect(target: CtrlTarget): Promise<CtrlClient> {
    return new CtrlClient(await connectSocket('ctrlPath' in target && typeof target.ctrlPath === 'string'
      ? { path: target.ctrlPath }
      : { port: (target as { ctrlPort: number }).ctrlPort, host: (target as { host?: string }).host }));
  }

  /** Send raw bytes (no framing added). */
  write(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  /** Read one response according to `opts`; resolves with whatever arrived (maybe empty if closed). */
  async read(opts: CtrlReadOptions = {}): Promise<Buffer> {
    const quietMs = opts.quietMs ?? 150;
    const settleMs = opts.settleMs ?? 20;
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    let lastLen = -1;
    let lastChange = Date.now();
    for (;;) {
      if (this.buf.length !== lastLen) {
        lastLen = this.buf.length;
        lastChange = Date.now();
      }
      const now = Date.now();
      const haveExpected = opts.expectLen !== undefined && this.buf.length >= opts.expectLen;
      const isError = this.buf.length >= 4 && this.buf.readUInt32BE(0) !== 0;
      if ((haveExpected || (isError && opts.expectLen !== undefined)) && now - lastChange >= settleMs) break;
      if (this.buf.length > 0 && now - lastChange >= quietMs) break;
      if (this.closed || now >= deadline) break;
      await this.waitForBytes(5);
    }
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
  }

  /** Send `u32 cmd || body` and read the response. */
  async request(cmd: number, body: Uint8Array = new Uint8Array(0), opts: CtrlReadOptions = {}): Promise<Buffer> {
    this.write(Buffer.concat([u32be(cmd), body]));
    return this.read({ expectLen: CTRL_RESPONSE_LEN[cmd] ?? 4, ...opts });
  }
}

/** One request on a fresh connection (as swtpm_ioctl and tpm2-tss do), then close. */
export async function ctrlRequest(target: CtrlTarget, cmd: number, body: Uint8Array = new Uint8Array(0), opts: CtrlReadOptions = {}): Promise<Buffer> {
  const c = await CtrlClient.connect(target);
  try {
    return await c.request(cmd, body, opts);
  } finally {
    c.close();
  }
}

/** Send arbitrary bytes on a fresh connection and read whatever comes back. */
export async function ctrlRaw(target: CtrlTarget, bytes: Uint8Array, opts: CtrlReadOptions = {}): Promise<Buffer> {
  const c = await CtrlClient.connect(target);
  try {
    c.write(bytes);
    return await c.read(opts);
  } finally {
    c.close();
  }
}
