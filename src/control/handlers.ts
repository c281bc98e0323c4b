/**
 * The control commands (swtpm-compat §1): ONE table, code → row, used by every front end.
 * A row declares its capability bit, its gate, its request and response fields (names and sizes,
 * no byte order) and a handler that works on decoded values. Front ends encode and decode the
 * fields in their own layout: big-endian frames on the socket (socket-codec.ts), host-endian
 * structs for CUSE ioctls.
 */
import type { Device } from '../device/device.js';
import { CMD, PTM_CAP, PTM_RES } from './codes.js';

/** A fixed-size unsigned field, or padding (zero on output, ignored on input). */
export type Field = { name: string; size: 1 | 4 } | { pad: number };

export type RequestSpec =
  /** The body must be exactly empty (swtpm's "wo" commands). */
  | { kind: 'empty' }
  /** The body must be exactly the fields (INIT). */
  | { kind: 'exact'; fields: readonly Field[] }
  /** At least the fields; extra bytes are ignored (swtpm's "rw" commands). */
  | { kind: 'atLeast'; fields: readonly Field[] }
  /** Anything (GET_CAPABILITY, SET_DATAFD). */
  | { kind: 'any' };

export type Values = Record<string, number>;

/** What a handler returns; `fields` only on success (every error reply is the result alone). */
export interface ControlReply {
  result: number;
  fields?: Values;
  /** CMD_SHUTDOWN: the front end sends the reply, then the process ends. */
  terminate?: boolean;
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
  /** 'running': refused with BAD_ORDINAL while the TPM is stopped (checked before the length). */
  readonly gate: 'always' | 'running';
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
  run(device: Device, request: Values, ctx: ControlContext): ControlReply | Promise<ControlReply>;
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
    run: async (device, req) => ((await device.init(req.initFlags)).ok ? ok() : fail(PTM_RES.FAIL)),
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
    run: (device, req) => {
      if (req.loc !== 3 && req.loc !== 4) return fail(PTM_RES.BAD_LOCALITY);
      device.tpmEstablished = false;
      return ok();
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
    run: () => ok({ flags: 0 }), // no --key / --migration-key yet
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

export function fieldsSize(fields: readonly Field[]): number {
  return fields.reduce((n, f) => n + ('pad' in f ? f.pad : f.size), 0);
}

/** Socket framing: how many body bytes to wait for before handling `code`. */
export function frameBodySize(code: number): number {
  const row = CONTROL_TABLE.get(code);
  if (!row) return 0;
  if (row.frameBody !== undefined) return row.frameBody;
  return row.request.kind === 'exact' || row.request.kind === 'atLeast' ? fieldsSize(row.request.fields) : 0;
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
): Promise<{ row: ControlRow | undefined; reply: ControlReply }> {
  const row = CONTROL_TABLE.get(code);
  if (!row || !(row.available?.(ctx) ?? true)) return { row, reply: fail(PTM_RES.BAD_ORDINAL) };
  if (row.gate === 'running' && !device.running) return { row, reply: fail(PTM_RES.BAD_ORDINAL) };
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
      break;
    case 'any':
      break;
  }
  return { row, reply: await row.run(device, values, ctx) };
}
