/**
 * PTM_* ioctls on the CUSE device ↔ the shared control handlers (swtpm-compat §1.6, §3.4), and
 * the CUSE-only state-blob transfer modes. Restricted ioctls: the kernel has copied `_IOC_SIZE`
 * bytes in for _IOC_WRITE numbers and takes up to `_IOC_SIZE` bytes back for _IOC_READ ones, so
 * the full ioctl number is the key; unknown numbers (and SET_DATAFD) are EINVAL, as in swtpm.
 *
 * State blobs move in 3072-byte parts (§1.6): GET_STATEBLOB returns `totlength` (the whole blob)
 * and one part from `offset`; the rest comes from more ioctls or from read() ("GET mode", ended by
 * the first short read; a write() then gets EIO). SET_STATEBLOB takes parts of exactly 3072 bytes
 * until one is shorter, which commits; a new type with length 0 only starts a transfer whose data
 * then comes through write() ("SET mode"; a read() gets EIO), committed by the next ioctl.
 */
import type { Logger } from '../../common/log.js';
import { CMD, PTM_RES, PTM_STATE_BLOB_SIZE } from '../../control/codes.js';
import { CONTROL_TABLE, fieldsSize, runControl, type ControlContext, type ControlReply } from '../../control/handlers.js';
import { decodeIoctlFields, encodeIoctlReply, PTM_IOCTL_TO_CMD } from '../../control/ioctl-codec.js';
import type { Device } from '../../device/device.js';

export type IoctlOutcome =
  /** The ioctl is not one of ours: the caller replies with −errno. */
  | { errno: 'EINVAL' }
  /** Data copied back to the caller's struct; `code` is the CMD it ran. */
  | { code: number; result: number; data: Uint8Array; terminate: boolean };

/** CUSE cannot receive descriptors: SET_DATAFD is neither advertised nor served (EINVAL). */
const CUSE_CONTEXT: ControlContext = { fdPassing: false };

/** CUSE results for a payload longer than the struct holds (swtpm cuse_tpm.c). */
const PAYLOAD_TOO_LONG: Record<number, number> = { [CMD.HASH_DATA]: PTM_RES.FAIL, [CMD.SET_STATEBLOB]: PTM_RES.BAD_PARAMETER };

/** The CMD a PTM ioctl number stands for, or undefined (answered with EINVAL as swtpm does). */
export function ioctlCommand(ioctl: number): number | undefined {
  const code = PTM_IOCTL_TO_CMD.get(ioctl);
  return code === undefined || code === CMD.SET_DATAFD ? undefined : code;
}

type Transfer =
  | { mode: 'command' }
  | { mode: 'get'; blob: Uint8Array; offset: number }
  | { mode: 'set' };

const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);

export class CuseControl {
  private transfer: Transfer = { mode: 'command' };
  /** SET_STATEBLOB parts collected so far. */
  private setting: { type: number; flags: number; parts: Uint8Array[] } | null = null;

  constructor(
    private readonly device: Device,
    private readonly log: Logger,
  ) {}

  get mode(): Transfer['mode'] {
    return this.transfer.mode;
  }

  /** read() in GET or SET mode: blob bytes, or 'EIO'. */
  readBlob(size: number): Uint8Array | 'EIO' {
    const t = this.transfer;
    if (t.mode !== 'get') {
      this.transfer = { mode: 'command' };
      return 'EIO';
    }
    const remaining = t.blob.length - t.offset;
    const n = Math.min(size, remaining);
    const out = t.blob.subarray(t.offset, t.offset + n);
    t.offset += n;
    if (remaining < size) this.transfer = { mode: 'command' };
    return out;
  }

  /** write() in GET or SET mode: the number of bytes taken, or 'EIO'. */
  writeBlob(data: Uint8Array): number | 'EIO' {
    if (this.transfer.mode !== 'set' || !this.setting) {
      this.transfer = { mode: 'command' };
      return 'EIO';
    }
    this.setting.parts.push(data.slice());
    return data.length;
  }

  async run(ioctl: number, input: Uint8Array, outSize: number): Promise<IoctlOutcome> {
    const code = ioctlCommand(ioctl);
    if (code === undefined) return { errno: 'EINVAL' };
    try {
      if (code === CMD.SET_STATEBLOB && CONTROL_TABLE.has(code)) return await this.setStateBlob(input, outSize);
      const row = CONTROL_TABLE.get(code);
      let payload: Uint8Array = new Uint8Array(0);
      const req = row?.request;
      if (req?.kind === 'atLeast' && req.payload && input.length >= fieldsSize(req.fields)) {
        const announced = decodeIoctlFields(input, req.fields)[req.payload.lengthField] ?? 0;
        const room = input.length - fieldsSize(req.fields);
        if (announced > room) return this.reply(code, { result: PAYLOAD_TOO_LONG[code] ?? PTM_RES.BAD_PARAMETER }, outSize);
        payload = input.subarray(fieldsSize(req.fields), fieldsSize(req.fields) + announced);
      }
      const { reply } = await runControl(this.device, code, input.length, (f) => decodeIoctlFields(input, f), CUSE_CONTEXT, payload);
      if (code === CMD.GET_STATEBLOB) return this.getStateBlob(reply, outSize);
      if (code === CMD.STOP || code === CMD.SHUTDOWN || code === CMD.STORE_VOLATILE) this.transfer = { mode: 'command' };
      return this.reply(code, reply, outSize);
    } catch (e) {
      this.log.error(`control ioctl 0x${ioctl.toString(16)} failed: ${(e as Error).message}`);
      return this.reply(code, { result: PTM_RES.FAIL }, outSize);
    }
  }

  private reply(code: number, reply: ControlReply, outSize: number): IoctlOutcome {
    const fields = CONTROL_TABLE.get(code)?.response ?? [];
    return { code, result: reply.result, data: encodeIoctlReply(code, reply, fields, outSize), terminate: reply.terminate ?? false };
  }

  /** CUSE rule: totlength is the whole blob, one part of ≤ 3072 bytes; GET mode for the rest. */
  private getStateBlob(reply: ControlReply, outSize: number): IoctlOutcome {
    const sb = reply.stateBlob;
    if (!sb || reply.result !== PTM_RES.SUCCESS) return this.reply(CMD.GET_STATEBLOB, reply, outSize);
    const part = sb.data.subarray(Math.min(sb.offset, sb.data.length), sb.offset + PTM_STATE_BLOB_SIZE);
    const end = Math.min(sb.offset, sb.data.length) + part.length;
    this.transfer = end < sb.data.length ? { mode: 'get', blob: sb.data, offset: end } : { mode: 'command' };
    return this.reply(
      CMD.GET_STATEBLOB,
      { ...reply, fields: { ...reply.fields, totlength: sb.data.length, length: part.length }, tail: part },
      outSize,
    );
  }

  private async setStateBlob(input: Uint8Array, outSize: number): Promise<IoctlOutcome> {
    const code = CMD.SET_STATEBLOB;
    const gate = CONTROL_TABLE.get(code)?.gate;
    if (input.length < 12) return this.reply(code, { result: PTM_RES.BAD_PARAMETER }, outSize);
    if (gate === 'stopped' && this.device.running) {
      this.setting = null;
      this.transfer = { mode: 'command' };
      return this.reply(code, { result: PTM_RES.BAD_ORDINAL }, outSize);
    }
    const flags = u32(input, 0);
    const type = u32(input, 4);
    const length = u32(input, 8);
    if (length > PTM_STATE_BLOB_SIZE || length > input.length - 12) {
      this.setting = null;
      this.transfer = { mode: 'command' };
      return this.reply(code, { result: PTM_RES.BAD_PARAMETER }, outSize);
    }
    const isNew = !this.setting || this.setting.type !== type;
    if (isNew) this.setting = { type, flags, parts: [] };
    const setting = this.setting!;
    if (isNew && length === 0) {
      this.transfer = { mode: 'set' };
      return this.reply(code, { result: PTM_RES.SUCCESS }, outSize);
    }
    setting.parts.push(input.slice(12, 12 + length));
    if (length === PTM_STATE_BLOB_SIZE) return this.reply(code, { result: PTM_RES.SUCCESS }, outSize);
    // A shorter part is the last one: commit the whole blob through the shared handler.
    this.setting = null;
    this.transfer = { mode: 'command' };
    const blob = new Uint8Array(setting.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of setting.parts) {
      blob.set(p, at);
      at += p.length;
    }
    const values = { stateFlags: setting.flags, type, length: blob.length };
    const { reply } = await runControl(this.device, code, 12 + blob.length, () => values, CUSE_CONTEXT, blob);
    return this.reply(code, reply, outSize);
  }
}
