/**
 * The CUSE ioctl layout of the control commands (swtpm-compat §1.1, §1.2, §1.6; swtpm
 * include/swtpm/tpm_ioctl.h): each PTM_* ioctl number, and the host-endian encoding of the
 * request and response fields the handler table (handlers.ts) declares. The socket front end
 * encodes the same fields big-endian (frontends/socket/socket-codec.ts).
 *
 * An ioctl struct is a union of request and response, so both start at offset 0. The host is
 * little-endian (x86_64, aarch64).
 */
import { CMD, type CmdCode } from './codes.js';
import type { ControlReply, Field, Values } from './handlers.js';
import { fieldsSize, readFields, writeFields } from './field-codec.js';

/** The ioctl number encoding (asm-generic/ioctl.h): dir:2 | size:14 | type:8 | nr:8. */
export const IOC = { NONE: 0, WRITE: 1, READ: 2 } as const;

export function ioc(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
export const iocDir = (cmd: number): number => (cmd >>> 30) & 3;
export const iocSize = (cmd: number): number => (cmd >>> 16) & 0x3fff;

/** swtpm's ioctl type letter. */
const PTM_TYPE = 0x50; // 'P'
const IOR = IOC.READ;
const IOWR = IOC.READ | IOC.WRITE;

/** [CMD code, direction, sizeof(struct) on x86_64]; the ioctl nr is CMD − 1. */
const IOCTLS: readonly (readonly [CmdCode, number, number])[] = [
  [CMD.GET_CAPABILITY, IOR, 8],
  [CMD.INIT, IOWR, 4],
  [CMD.SHUTDOWN, IOR, 4],
  [CMD.GET_TPMESTABLISHED, IOR, 8],
  [CMD.SET_LOCALITY, IOWR, 4],
  [CMD.HASH_START, IOR, 4],
  [CMD.HASH_DATA, IOWR, 4100],
  [CMD.HASH_END, IOR, 4],
  [CMD.CANCEL_TPM_CMD, IOR, 4],
  [CMD.STORE_VOLATILE, IOR, 4],
  [CMD.RESET_TPMESTABLISHED, IOWR, 4],
  [CMD.GET_STATEBLOB, IOWR, 3088],
  [CMD.SET_STATEBLOB, IOWR, 3084],
  [CMD.STOP, IOR, 4],
  [CMD.GET_CONFIG, IOR, 8],
  [CMD.SET_DATAFD, IOR, 4],
  [CMD.SET_BUFFERSIZE, IOWR, 16],
  [CMD.GET_INFO, IOWR, 3088],
  [CMD.LOCK_STORAGE, IOWR, 4],
];

/** PTM_* ioctl number → CMD code. */
export const PTM_IOCTL_TO_CMD: ReadonlyMap<number, CmdCode> = new Map(
  IOCTLS.map(([code, dir, size]) => [ioc(dir, PTM_TYPE, code - 1, size), code] as const),
);

/** CMD code → PTM_* ioctl number. */
export function ptmIoctl(code: CmdCode): number {
  for (const [n, c] of PTM_IOCTL_TO_CMD) if (c === code) return n;
  throw new Error(`no ioctl for control command ${code}`);
}

/** Request fields from the ioctl input, host-endian, from offset 0. */
export function decodeIoctlFields(input: Uint8Array, fields: readonly Field[]): Values {
  return readFields(new DataView(input.buffer, input.byteOffset, input.byteLength), 0, fields, true);
}

/**
 * The ioctl output: `outSize` bytes (the struct), the u32 result at 0 and, on success (or with
 * `fieldsOnError`), the response fields after it, then `tail` (GET_INFO's text, a state-blob
 * chunk); zero elsewhere. PTM_GET_CAPABILITY is the exception: a bare u64 of capability bits with
 * no result field (`ptm_cap`).
 */
export function encodeIoctlReply(code: number, reply: ControlReply, fields: readonly Field[], outSize: number): Uint8Array {
  const out = new Uint8Array(outSize);
  const v = new DataView(out.buffer);
  if (code === CMD.GET_CAPABILITY) {
    if (outSize >= 8) v.setBigUint64(0, BigInt(reply.fields?.caps ?? 0), true);
    return out;
  }
  if (outSize >= 4) v.setUint32(0, reply.result >>> 0, true);
  if ((reply.result !== 0 && !reply.fieldsOnError) || !reply.fields) return out;
  const p = writeFields(v, 4, fields, reply.fields, true);
  if (p < 4 + fieldsSize(fields)) return out; // the struct ends before the fields do
  if (reply.tail && reply.result === 0) out.set(reply.tail.subarray(0, Math.max(0, outSize - p)), p);
  return out;
}
