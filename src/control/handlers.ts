/**
 * The control commands (swtpm-compat §1): ONE table, code → row, used by every front end.
 * A row declares its capability bit, its gate, its request and response fields (names and sizes,
 * no byte order) and a handler that works on decoded values. Front ends encode and decode the
 * fields in their own layout: big-endian frames on the socket (socket-codec.ts), host-endian
 * structs for CUSE ioctls.
 */
import { BlobTypeError, type BlobType, type Device } from '../device/device.js';
import { fieldsSize } from './field-codec.js';
import { StateBlobError } from '../storage/state-blob.js';
import { tpmInfoJson } from '../tpm/info.js';
import { CMD, PTM_BLOB_TYPE, PTM_CAP, PTM_CONFIG_FLAG, PTM_GETINFO_SIZE, PTM_INIT_FLAG, PTM_RES, PTM_STATE_FLAG, SET_STATEBLOB_MAX, SOCKET_HASH_DATA_MAX } from './codes.js';

/** A fixed-size unsigned field (8: GET_INFO's u64 flags, below 2^53), or padding (zero on output, ignored on input). */
export type Field = { name: string; size: 1 | 4 | 8 } | { pad: number };

/**
 * Variable data after a request's fields whose length is the field `lengthField` (HASH_DATA,
 * SET_STATEBLOB). Above `max` the handler answers `tooLong` without the data.
 */
export interface PayloadSpec {
  readonly lengthField: string;
  readonly max: number;
  readonly tooLong: number;
}

export type RequestSpec =
  /** The body must be exactly empty (swtpm's "wo" commands). */
  | { kind: 'empty' }
  /** The body must be exactly the fields (INIT). */
  | { kind: 'exact'; fields: readonly Field[] }
  /**
   * At least the fields; extra bytes are ignored (swtpm's "rw" commands), or with `payload` they
   * are the command's data and must be exactly as long as announced.
   */
  | { kind: 'atLeast'; fields: readonly Field[]; payload?: PayloadSpec }
  /** Anything (GET_CAPABILITY, SET_DATAFD). */
  | { kind: 'any' };

export type Values = Record<string, number>;

/** What a handler returns; `fields` only on success (every error reply is the result alone). */
export interface ControlReply {
  result: number;
  fields?: Values;
  /** CMD_SHUTDOWN: the front end sends the reply, then the process ends. */
  terminate?: boolean;
  /** Bytes after the fields (GET_INFO's text chunk). */
  tail?: Uint8Array;
  /**
   * GET_STATEBLOB: the whole blob and the requested offset; each front end fills `totlength`,
   * `length` and the data by its own transfer rule (socket: everything from offset at once).
   */
  stateBlob?: { data: Uint8Array; offset: number };
  /** Send the response fields even though `result` is an error (GET_STATEBLOB, §1.5). */
  fieldsOnError?: boolean;
}

/** What the front end offers a handler beyond the device. */
export interface ControlContext {
  /**
   * CMD_SET_DATAFD: adopt the file descriptor that came with this request as the data channel
   * and return the result word. Absent when the front end cannot receive descriptors.
   */
  setDataFd?(): number;
  /** True when this front end can receive SCM_RIGHTS descriptors (advertises SET_DATAFD). */
  readonly fdPassing: boolean;
}

export interface ControlRow {
  readonly code: number;
  readonly name: string;
  /** PTM_CAP bit advertised by GET_CAPABILITY. */
  readonly cap: number;
  /**
   * 'running': refused with BAD_ORDINAL while the TPM is stopped; 'stopped': refused with
   * BAD_ORDINAL while it runs (both checked before the length).
   */
  readonly gate: 'always' | 'running' | 'stopped';
  readonly request: RequestSpec;
  /**
   * Body bytes the socket front end waits for before it handles the command (swtpm's `needed`);
   * default: the request fields' size.
   */
  readonly frameBody?: number;
  /** Response fields after the u32 result. */
  readonly response: readonly Field[];
  /** False when this front end cannot serve the command (then it is not advertised either). */
  available?(ctx: ControlContext): boolean;
  /** `payload`: the data after the fields for rows with a PayloadSpec, else empty. */
  run(device: Device, request: Values, ctx: ControlContext, payload: Uint8Array): ControlReply | Promise<ControlReply>;
}

const ok = (fields?: Values): ControlReply => (fields ? { result: PTM_RES.SUCCESS, fields } : { result: PTM_RES.SUCCESS });
const fail = (result: number): ControlReply => ({ result });

const LOC: readonly Field[] = [{ name: 'loc', size: 1 }];
const MAX_LOCALITY = 4;

const ROWS: readonly ControlRow[] = [
  {
    code: CMD.GET_CAPABILITY,
    name: 'GET_CAPABILITY',
    cap: 0,
    gate: 'always',
    request: { kind: 'any' },
    response: [{ name: 'caps', size: 4 }],
    run: (_d, _r, ctx) => ok({ caps: capabilities(ctx) }),
  },
  {
    code: CMD.INIT,
    name: 'INIT',
    cap: PTM_CAP.INIT,
    gate: 'always',
    request: { kind: 'exact', fields: [{ name: 'initFlags', size: 4 }] },
    response: [],
    run: async (device, req) =>
      (await device.init({ deleteVolatile: ((req.initFlags ?? 0) & PTM_INIT_FLAG.DELETE_VOLATILE) !== 0 })).ok ? ok() : fail(PTM_RES.FAIL),
  },
  {
    code: CMD.SHUTDOWN,
    name: 'SHUTDOWN',
    cap: PTM_CAP.SHUTDOWN,
    gate: 'always',
    request: { kind: 'empty' },
    response: [],
    run: async (device) => {
      await device.stop();
      return { result: PTM_RES.SUCCESS, terminate: true };
    },
  },
  {
    code: CMD.GET_TPMESTABLISHED,
    name: 'GET_TPMESTABLISHED',
    cap: PTM_CAP.GET_TPMESTABLISHED,
    gate: 'running',
    request: { kind: 'empty' },
    response: [{ name: 'bit', size: 1 }, { pad: 3 }],
    run: (device) => ok({ bit: device.tpmEstablished ? 1 : 0 }),
  },
  {
    code: CMD.HASH_START,
    name: 'HASH_START',
    cap: PTM_CAP.HASHING,
    gate: 'running',
    request: { kind: 'empty' },
    response: [],
    run: async (device) => {
      await device.hash('start');
      return ok();
    },
  },
  {
    code: CMD.HASH_DATA,
    name: 'HASH_DATA',
    cap: PTM_CAP.HASHING,
    gate: 'running',
    request: { kind: 'atLeast', fields: [{ name: 'length', size: 4 }], payload: { lengthField: 'length', max: SOCKET_HASH_DATA_MAX, tooLong: PTM_RES.FAIL } },
    response: [],
    run: async (device, _req, _ctx, data) => {
      await device.hash('data', data);
      return ok();
    },
  },
  {
    code: CMD.HASH_END,
    name: 'HASH_END',
    cap: PTM_CAP.HASHING,
    gate: 'running',
    request: { kind: 'empty' },
    response: [],
    run: async (device) => {
      await device.hash('end');
      return ok();
    },
  },
  {
    code: CMD.SET_LOCALITY,
    name: 'SET_LOCALITY',
    cap: PTM_CAP.SET_LOCALITY,
    gate: 'always',
    request: { kind: 'atLeast', fields: LOC },
    response: [],
    run: (device, req) => {
      if (req.loc! > MAX_LOCALITY) return fail(PTM_RES.BAD_LOCALITY);
      device.locality = req.loc!;
      return ok();
    },
  },
  {
    code: CMD.CANCEL_TPM_CMD,
    name: 'CANCEL_TPM_CMD',
    cap: PTM_CAP.CANCEL_TPM_CMD,
    gate: 'running',
    request: { kind: 'empty' },
    response: [],
    // Commands run to completion synchronously; there is never one to cancel (as in swtpm).
    run: () => ok(),
  },
  {
    code: CMD.RESET_TPMESTABLISHED,
    name: 'RESET_TPMESTABLISHED',
    cap: PTM_CAP.RESET_TPMESTABLISHED,
    gate: 'running',
    request: { kind: 'atLeast', fields: LOC },
    response: [],
    // The locality applies to this call only; only localities 3 and 4 may reset the bit.
    run: async (device, req) => {
      if (req.loc !== 3 && req.loc !== 4) return fail(PTM_RES.BAD_LOCALITY);
      await device.resetTpmEstablished();
      return ok();
    },
  },
  {
    code: CMD.STORE_VOLATILE,
    name: 'STORE_VOLATILE',
    cap: PTM_CAP.STORE_VOLATILE,
    gate: 'running',
    request: { kind: 'empty' },
    response: [],
    run: async (device) => {
      await device.storeVolatile();
      return ok();
    },
  },
  {
    code: CMD.GET_STATEBLOB,
    name: 'GET_STATEBLOB',
    cap: PTM_CAP.GET_STATEBLOB,
    gate: 'running',
    request: {
      kind: 'atLeast',
      fields: [
        { name: 'stateFlags', size: 4 },
        { name: 'type', size: 4 },
        { name: 'offset', size: 4 },
      ],
    },
    response: [
      { name: 'stateFlags', size: 4 },
      { name: 'totlength', size: 4 },
      { name: 'length', size: 4 },
    ],
    // Past the gate and length checks every answer carries the 16-byte header (§1.5).
    run: async (device, req) => {
      const header = { stateFlags: 0, totlength: 0, length: 0 };
      const type = blobType(req.type!);
      if (!type) return { result: PTM_RES.FAIL, fields: header, fieldsOnError: true };
      const got = await device.getStateBlob(type, (req.stateFlags! & PTM_STATE_FLAG.DECRYPTED) !== 0);
      if (!got.ok) return { result: PTM_RES.RETRY, fields: header, fieldsOnError: true };
      header.stateFlags = got.encrypted ? PTM_STATE_FLAG.ENCRYPTED : 0;
      return { result: PTM_RES.SUCCESS, fields: header, stateBlob: { data: got.blob, offset: req.offset! } };
    },
  },
  {
    code: CMD.SET_STATEBLOB,
    name: 'SET_STATEBLOB',
    cap: PTM_CAP.SET_STATEBLOB,
    gate: 'stopped',
    request: {
      kind: 'atLeast',
      fields: [
        { name: 'stateFlags', size: 4 },
        { name: 'type', size: 4 },
        { name: 'length', size: 4 },
      ],
      payload: { lengthField: 'length', max: SET_STATEBLOB_MAX, tooLong: PTM_RES.FAIL },
    },
    response: [],
    run: async (device, req, _ctx, blob) => {
      // swtpm locks the storage first and exits when it cannot (another process owns the state).
      if (!(await device.lockStorage(0))) return { result: PTM_RES.IOERROR, terminate: true };
      const type = blobType(req.type!);
      if (!type) return fail(PTM_RES.FAIL);
      try {
        await device.setStateBlob(type, blob, (req.stateFlags! & PTM_STATE_FLAG.ENCRYPTED) !== 0);
        return ok();
      } catch (e) {
        if (e instanceof StateBlobError) return fail(BLOB_ERROR_RESULT[e.reason]);
        if (e instanceof BlobTypeError) return fail(PTM_RES.BAD_TYPE);
        return fail(PTM_RES.FAIL); // the engine cannot load what is inside
      }
    },
  },
  {
    code: CMD.STOP,
    name: 'STOP',
    cap: PTM_CAP.STOP,
    gate: 'always',
    request: { kind: 'empty' },
    response: [],
    run: async (device) => {
      await device.stop();
      return ok();
    },
  },
  {
    code: CMD.GET_CONFIG,
    name: 'GET_CONFIG',
    cap: PTM_CAP.GET_CONFIG,
    gate: 'always',
    request: { kind: 'empty' },
    response: [{ name: 'flags', size: 4 }],
    run: (device) => {
      const keys = device.hasKeys;
      return ok({ flags: (keys.file ? PTM_CONFIG_FLAG.FILE_KEY : 0) | (keys.migration ? PTM_CONFIG_FLAG.MIGRATION_KEY : 0) });
    },
  },
  {
    code: CMD.SET_DATAFD,
    name: 'SET_DATAFD',
    cap: PTM_CAP.SET_DATAFD,
    gate: 'always',
    request: { kind: 'any' },
    response: [],
    available: (ctx) => ctx.fdPassing,
    run: (_d, _r, ctx) => fail(ctx.setDataFd ? ctx.setDataFd() : PTM_RES.BAD_ORDINAL),
  },
  {
    code: CMD.SET_BUFFERSIZE,
    name: 'SET_BUFFERSIZE',
    cap: PTM_CAP.SET_BUFFERSIZE,
    gate: 'always',
    request: { kind: 'atLeast', fields: [{ name: 'bufferSize', size: 4 }] },
    frameBody: 0, // swtpm handles it as soon as the command word is in
    response: [
      { name: 'size', size: 4 },
      { name: 'min', size: 4 },
      { name: 'max', size: 4 },
    ],
    // Setting needs a stopped TPM (it takes effect at the next INIT); querying always works.
    run: (device, req) => {
      if (req.bufferSize !== 0 && device.running) return fail(PTM_RES.BAD_ORDINAL);
      return ok(device.bufferSize(req.bufferSize!));
    },
  },
  {
    code: CMD.GET_INFO,
    name: 'GET_INFO',
    cap: PTM_CAP.GET_INFO,
    gate: 'always',
    request: {
      kind: 'atLeast',
      fields: [
        { name: 'flags', size: 8 },
        { name: 'offset', size: 4 },
        { pad: 4 },
      ],
    },
    response: [
      { name: 'totlength', size: 4 },
      { name: 'length', size: 4 },
    ],
    // The JSON text with its NUL, from `offset`, at most PTM_GETINFO_SIZE bytes per call.
    run: (d, req) => {
      const text = new TextEncoder().encode(tpmInfoJson(req.flags!, d.activeProfile));
      if (req.offset! >= text.length) return fail(PTM_RES.BAD_PARAMETER);
      const withNul = new Uint8Array(text.length + 1);
      withNul.set(text);
      const chunk = withNul.subarray(req.offset!, req.offset! + PTM_GETINFO_SIZE);
      return { result: PTM_RES.SUCCESS, fields: { totlength: withNul.length, length: chunk.length }, tail: chunk };
    },
  },
  {
    code: CMD.LOCK_STORAGE,
    name: 'LOCK_STORAGE',
    cap: PTM_CAP.LOCK_STORAGE,
    gate: 'always',
    request: { kind: 'atLeast', fields: [{ name: 'retries', size: 4 }] },
    response: [],
    run: async (device, req) => ((await device.lockStorage(req.retries!)) ? ok() : fail(PTM_RES.FAIL)),
  },
];

/** The table, keyed by CMD code. Commands missing here answer BAD_ORDINAL. */
export const CONTROL_TABLE: ReadonlyMap<number, ControlRow> = (() => {
  const m = new Map<number, ControlRow>();
  for (const row of ROWS) {
    if (m.has(row.code)) throw new Error(`duplicate control row 0x${row.code.toString(16)}`);
    m.set(row.code, row);
  }
  return m;
})();

/** GET_CAPABILITY: the bits of every row this front end can serve (derived, not restated). */
export function capabilities(ctx: ControlContext): number {
  let caps = 0;
  for (const row of ROWS) if (row.available?.(ctx) ?? true) caps |= row.cap;
  return caps >>> 0;
}

/** swtpm's answers to a SET_STATEBLOB blob it cannot open (swtpm-compat §5.2, §5.3). */
const BLOB_ERROR_RESULT: Record<StateBlobError['reason'], number> = {
  encrypted: PTM_RES.KEYNOTFOUND,
  'wrong-key': PTM_RES.DECRYPT_ERROR,
  'key-size': PTM_RES.BAD_KEY_PROPERTY,
  malformed: PTM_RES.BAD_PARAMETER,
};

function blobType(type: number): BlobType | undefined {
  switch (type) {
    case PTM_BLOB_TYPE.PERMANENT:
      return 'permanent';
    case PTM_BLOB_TYPE.VOLATILE:
      return 'volatile';
    case PTM_BLOB_TYPE.SAVESTATE:
      return 'savestate';
    default:
      return undefined;
  }
}

export { fieldsSize };

/**
 * Socket framing: how many body bytes to wait for before handling `code` (the fixed part; a
 * payload row's data follows, see payloadOf).
 */
export function frameBodySize(code: number): number {
  const row = CONTROL_TABLE.get(code);
  if (!row) return 0;
  if (row.frameBody !== undefined) return row.frameBody;
  return row.request.kind === 'exact' || row.request.kind === 'atLeast' ? fieldsSize(row.request.fields) : 0;
}

/** The payload rule of a command, if its request carries data after the fields. */
export function payloadOf(code: number): { fieldsSize: number; lengthOffset: number; spec: PayloadSpec } | undefined {
  const req = CONTROL_TABLE.get(code)?.request;
  if (req?.kind !== 'atLeast' || !req.payload) return undefined;
  let lengthOffset = 0;
  for (const f of req.fields) {
    if (!('pad' in f) && f.name === req.payload.lengthField) break;
    lengthOffset += 'pad' in f ? f.pad : f.size;
  }
  return { fieldsSize: fieldsSize(req.fields), lengthOffset, spec: req.payload };
}

/**
 * Runs one control command whose request fields are already decoded (`body` is the request
 * length, for the length rules). Unknown command → BAD_ORDINAL; gate, then length, then handler.
 */
export async function runControl(
  device: Device,
  code: number,
  bodyLength: number,
  decode: (fields: readonly Field[]) => Values,
  ctx: ControlContext,
  payload: Uint8Array = new Uint8Array(0),
): Promise<{ row: ControlRow | undefined; reply: ControlReply }> {
  const row = CONTROL_TABLE.get(code);
  if (!row || !(row.available?.(ctx) ?? true)) return { row, reply: fail(PTM_RES.BAD_ORDINAL) };
  if (row.gate === 'running' && !device.running) return { row, reply: fail(PTM_RES.BAD_ORDINAL) };
  if (row.gate === 'stopped' && device.running) return { row, reply: fail(PTM_RES.BAD_ORDINAL) };
  const req = row.request;
  let values: Values = {};
  switch (req.kind) {
    case 'empty':
      if (bodyLength !== 0) return { row, reply: fail(PTM_RES.BAD_PARAMETER) };
      break;
    case 'exact':
      if (bodyLength !== fieldsSize(req.fields)) return { row, reply: fail(PTM_RES.BAD_PARAMETER) };
      values = decode(req.fields);
      break;
    case 'atLeast':
      if (bodyLength < fieldsSize(req.fields)) return { row, reply: fail(PTM_RES.BAD_PARAMETER) };
      values = decode(req.fields);
      if (req.payload) {
        const announced = values[req.payload.lengthField]!;
        if (announced > req.payload.max) return { row, reply: fail(req.payload.tooLong) };
        // More or fewer bytes than announced (the client closed early): TPM_BAD_PARAMETER.
        if (payload.length !== announced) return { row, reply: fail(PTM_RES.BAD_PARAMETER) };
      }
      break;
    case 'any':
      break;
  }
  return { row, reply: await row.run(device, values, ctx, payload) };
}
