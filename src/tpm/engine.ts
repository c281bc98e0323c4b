/**
 * The TPM 2.0 engine: `execute(command, locality) → response`, pure and synchronous (Part 3
 * §5 "Command Processing"). It parses the header, handle area and authorization area,
 * dispatches to the command's handler and assembles the response. Every failure becomes a
 * TPM response code; an exception that is not a TpmError is a bug, answered with
 * TPM_RC_FAILURE and logged, and the engine keeps serving.
 */
import { TPM_CC, TPM_RC, TPM_RH, TPM_RS_PW, TPM_ST, TPMA_SESSION } from './constants.js';
import { ALL_COMMANDS, COMMANDS } from './commands/index.js';
import type { CommandDef } from './command.js';
import { constantTimeEqual, randomBytes } from './crypto/index.js';
import { formatRc, TpmError } from './errors.js';
import { Reader } from './marshal/reader.js';
import { Writer } from './marshal/writer.js';
import type { Codec, FieldCodec } from './marshal/codec.js';
import { TPM2B_AUTH, TPM2B_NONCE } from './marshal/structures.js';
import { TPMI_SH_AUTH_SESSION, TPMI_ST_COMMAND_TAG } from './marshal/tpmi.js';
import { deserializePersistent, manufacture, serializePersistent } from './state/persistent.js';
import { EngineEnv, MAX_BUFFER_SIZE, Tpm } from './tpm.js';

export type { EngineEnv } from './tpm.js';
export { MAX_BUFFER_SIZE } from './tpm.js';

/** Part 1 §18.4: at most three sessions per command. */
const MAX_SESSION_NUM = 3;
const HEADER_SIZE = 10;

export const defaultEnv: EngineEnv = {
  random: randomBytes,
  now: () => performance.timeOrigin + performance.now(),
  log: (message) => process.stderr.write(`vtpmd: ${message}\n`),
};

/** A 10-byte error response (Part 3 §5.1: errors carry no handles, parameters or sessions). */
export function errorResponse(rc: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  const view = new DataView(out.buffer);
  view.setUint16(0, TPM_ST.NO_SESSIONS);
  view.setUint32(2, HEADER_SIZE);
  view.setUint32(6, rc);
  return out;
}

interface Session {
  handle: number;
  attributes: number;
  hmac: Uint8Array;
}

export class Engine {
  readonly tpm: Tpm;
  private readonly commands: ReadonlyMap<number, CommandDef>;

  private constructor(tpm: Tpm) {
    this.tpm = tpm;
    this.commands = COMMANDS;
    tpm.commands = [...ALL_COMMANDS].sort((a, b) => a.code - b.code);
  }

  /** A new TPM with fresh seeds (manufacturing). Its permanent state is dirty until saved. */
  static manufacture(env: EngineEnv = defaultEnv): Engine {
    const engine = new Engine(new Tpm(env, manufacture(env.random)));
    engine.tpm.markDirty();
    return engine;
  }

  /** A TPM from a permanent-state blob; throws StateFormatError if the blob cannot be read. */
  static restore(permanent: Uint8Array, env: EngineEnv = defaultEnv): Engine {
    return new Engine(new Tpm(env, deserializePersistent(permanent)));
  }

  /** _TPM_Init (power on / platform reset): the TPM then needs TPM2_Startup. */
  init(): void {
    this.tpm.powerOn();
  }

  /** True once TPM2_Startup has succeeded since the last init(). */
  get started(): boolean {
    return this.tpm.started;
  }

  /** The permanent state if it changed since the last call, else null. Persist it before replying. */
  takePermanentChanges(): Uint8Array | null {
    if (!this.tpm.persistentDirty) return null;
    this.tpm.persistentDirty = false;
    return this.permanentBlob();
  }

  permanentBlob(): Uint8Array {
    this.tpm.syncClock();
    return serializePersistent(this.tpm.persistent);
  }

  /** swtpm's SET_BUFFERSIZE: the command/response size limit clients see as TPM_PT_MAX_*_SIZE. */
  get bufferSize(): number {
    return this.tpm.bufferSize;
  }

  set bufferSize(size: number) {
    this.tpm.bufferSize = Math.min(size, MAX_BUFFER_SIZE);
  }

  /** Executes one command at `locality` (0–4). Never throws. */
  execute(command: Uint8Array, locality = 0): Uint8Array {
    try {
      this.tpm.locality = locality;
      return this.dispatch(command);
    } catch (e) {
      if (e instanceof TpmError) return errorResponse(e.rc);
      const code = command.length >= HEADER_SIZE ? new DataView(command.buffer, command.byteOffset).getUint32(6) : -1;
      this.tpm.env.log(`internal error in command 0x${code.toString(16)}: ${(e as Error).stack ?? String(e)}`);
      return errorResponse(TPM_RC.FAILURE);
    }
  }

  private dispatch(command: Uint8Array): Uint8Array {
    const r = new Reader(command);
    const tag = TPMI_ST_COMMAND_TAG.read(r);
    const commandSize = r.u32();
    if (commandSize !== command.length || commandSize > this.tpm.bufferSize) {
      throw new TpmError(TPM_RC.COMMAND_SIZE);
    }
    const code = r.u32();
    const def = this.commands.get(code);
    if (!def) throw new TpmError(TPM_RC.COMMAND_CODE);
    if (this.tpm.started === (code === TPM_CC.Startup)) throw new TpmError(TPM_RC.INITIALIZE);

    // Handle area (Part 3 §5.2): each handle is validated against its interface type.
    const handles: Record<string, number> = {};
    const handleList: number[] = [];
    def.handles.forEach((spec, i) => {
      const h = readAt(spec.type, r, { handle: i + 1 });
      handles[spec.name] = h;
      handleList.push(h);
    });
    def.handles.forEach((_, i) => {
      // Part 3 §5.3: a transient object that is not loaded is a reference to nothing.
      if (!this.tpm.isLoaded(handleList[i]!)) throw new TpmError(TPM_RC.REFERENCE_H0 + i);
    });

    // Authorization area (Part 1 §18).
    const authIndexes = def.handles.flatMap((spec, i) => (spec.auth ? [i] : []));
    let sessions: Session[] = [];
    if (tag === TPM_ST.SESSIONS) {
      if (def.noSessions) throw new TpmError(TPM_RC.AUTH_CONTEXT);
      const authSize = r.u32();
      if (authSize < 9 || authSize > r.remaining) throw new TpmError(TPM_RC.SIZE);
      sessions = this.readSessions(new Reader(command, r.pos, r.pos + authSize));
      r.pos += authSize;
      for (const i of authIndexes) if (i >= sessions.length) throw new TpmError(TPM_RC.AUTH_MISSING);
      sessions.forEach((s, i) => this.checkSession(s, i, def, handleList));
    } else if (authIndexes.length > 0) {
      throw new TpmError(TPM_RC.AUTH_MISSING);
    }

    // Parameter area: each top-level parameter is numbered for response codes.
    const params: Record<string, unknown> = {};
    def.params.forEach(([name, codec], i) => {
      params[name] = readAt(codec, r, { param: i + 1 }, params);
    });
    if (r.remaining !== 0) throw new TpmError(TPM_RC.SIZE);

    const out = def.run(this.tpm, handles, params);
    return this.buildResponse(tag, def, out, sessions);
  }

  private readSessions(r: Reader): Session[] {
    const sessions: Session[] = [];
    while (r.remaining > 0) {
      const n = sessions.length + 1;
      if (sessions.length === MAX_SESSION_NUM) throw new TpmError(TPM_RC.SIZE, { session: n });
      const handle = readAt(TPMI_SH_AUTH_SESSION, r, { session: n });
      const nonce = readAt(TPM2B_NONCE, r, { session: n });
      const attributes = readAt(ATTRIBUTES, r, { session: n });
      const hmac = readAt(TPM2B_AUTH, r, { session: n });
      if (handle === TPM_RS_PW) {
        const forbidden = TPMA_SESSION.encrypt | TPMA_SESSION.decrypt | TPMA_SESSION.audit |
          TPMA_SESSION.auditExclusive | TPMA_SESSION.auditReset;
        if (attributes & forbidden) throw new TpmError(TPM_RC.ATTRIBUTES, { session: n });
        if (nonce.length !== 0) throw new TpmError(TPM_RC.NONCE, { session: n });
      } else {
        // HMAC and policy sessions arrive with the sessions issue; none can be loaded yet.
        throw new TpmError(TPM_RC.REFERENCE_S0 + sessions.length);
      }
      sessions.push({ handle, attributes, hmac });
    }
    return sessions;
  }

  /** Session i authorizes handle i when that handle has an auth role (Part 1 §19.2). */
  private checkSession(session: Session, i: number, def: CommandDef, handles: number[]): void {
    const n = i + 1;
    const authorizes = i < def.handles.length && def.handles[i]!.auth !== undefined;
    if (!authorizes) throw new TpmError(TPM_RC.HANDLE, { session: n });
    const authValue = this.tpm.entityAuth(handles[i]!);
    if (authValue === undefined) throw new TpmError(TPM_RC.HANDLE, { session: n });
    // Part 1 §19.6.4: trailing zeros of a password are not significant.
    if (!constantTimeEqual(trimTrailingZeros(session.hmac), trimTrailingZeros(authValue))) {
      // Permanent entities other than lockout, PCRs and sequences are exempt from DA.
      const exempt = handles[i] !== TPM_RH.LOCKOUT;
      throw new TpmError(exempt ? TPM_RC.BAD_AUTH : TPM_RC.AUTH_FAIL, { session: n });
    }
  }

  private buildResponse(
    tag: number,
    def: CommandDef,
    out: Record<string, unknown>,
    sessions: Session[],
  ): Uint8Array {
    const w = new Writer(256);
    w.u16(tag);
    const sizeAt = w.length;
    w.u32(0);
    w.u32(TPM_RC.SUCCESS);
    if (def.responseHandle) w.u32(out[def.responseHandle] as number);
    const closeParams = tag === TPM_ST.SESSIONS ? w.sizePrefix(4) : undefined;
    for (const [name, codec] of def.response) {
      if (name === def.responseHandle) continue;
      writeField(codec, w, out[name], out);
    }
    closeParams?.();
    for (const s of sessions) {
      // Password sessions answer with an empty nonce and HMAC and continueSession set (Part 1 §19.6.6).
      w.u16(0);
      w.u8(s.attributes | TPMA_SESSION.continueSession);
      w.u16(0);
    }
    w.setU32(sizeAt, w.length);
    return w.finish();
  }
}

const ATTRIBUTES: Codec<number> = { read: (r) => r.u8(), write: (w, v) => w.u8(v) };

function readAt<T>(
  codec: Codec<T> | FieldCodec<T>,
  r: Reader,
  position: { handle: number } | { param: number } | { session: number },
  parent: Record<string, unknown> = {},
): T {
  try {
    return 'dependent' in codec ? codec.read(r, parent) : codec.read(r);
  } catch (e) {
    if (e instanceof TpmError) throw new TpmError(e.rc, position);
    throw e;
  }
}

function writeField(codec: Codec<unknown> | FieldCodec<unknown>, w: Writer, v: unknown, parent: Record<string, unknown>): void {
  if ('dependent' in codec) codec.write(w, v, parent);
  else codec.write(w, v);
}

function trimTrailingZeros(b: Uint8Array): Uint8Array {
  let n = b.length;
  while (n > 0 && b[n - 1] === 0) n--;
  return b.subarray(0, n);
}

export { formatRc };
