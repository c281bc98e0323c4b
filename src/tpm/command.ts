/**
 * How a TPM command is declared: one `command({...})` per Part 3 command, holding its code,
 * handles (with their authorization role), parameters, response and handler. The engine
 * derives everything else from the declaration: TPMA_CC for GetCapability, which handles need
 * authorization, response-code positions, and whether parameter encryption may apply.
 */
import { TPMA_CC } from './constants.js';
import type { Codec, FieldCodec, StructOf } from './marshal/codec.js';
import type { Tpm } from './tpm.js';

/** Part 3 "Auth Role" of a handle; a handle without one needs no authorization. */
export type AuthRole = 'USER' | 'ADMIN' | 'DUP';

export interface HandleSpec {
  readonly name: string;
  readonly type: Codec<number>;
  readonly auth?: AuthRole;
}

type Fields = Record<string, Codec<any> | FieldCodec<any>>; // eslint-disable-line @typescript-eslint/no-explicit-any

export type HandleValues<H extends readonly HandleSpec[]> = { [K in H[number] as K['name']]: number };

export interface CommandSpec<H extends readonly HandleSpec[], P extends Fields, R extends Fields> {
  readonly code: number;
  readonly handles: H;
  readonly params: P;
  readonly response: R;
  /** A response field that goes in the response's handle area (HashSequenceStart, CreatePrimary...). */
  readonly responseHandle?: keyof R & string;
  /** Part 3 TPMA_CC bits that cannot be derived. */
  readonly nv?: boolean;
  readonly extensive?: boolean;
  readonly flushed?: boolean;
  /** The command takes no authorization area at all (Startup, ContextSave, ContextLoad, FlushContext). */
  readonly noSessions?: boolean;
  run(tpm: Tpm, handles: HandleValues<H>, params: StructOf<P>): StructOf<R>;
}

/** The type-erased form the engine dispatches on. */
export interface CommandDef {
  readonly code: number;
  readonly handles: readonly HandleSpec[];
  readonly params: readonly (readonly [string, Codec<unknown> | FieldCodec<unknown>])[];
  readonly response: readonly (readonly [string, Codec<unknown> | FieldCodec<unknown>])[];
  readonly responseHandle?: string;
  readonly noSessions: boolean;
  /** Indexes of the handles that need authorization (derived from their auth roles). */
  readonly authHandles: readonly number[];
  /** Part 2 §8.9 TPMA_CC as GetCapability(TPM_CAP_COMMANDS) reports it. */
  readonly attributes: number;
  run(tpm: Tpm, handles: Record<string, number>, params: Record<string, unknown>): Record<string, unknown>;
}

export function command<const H extends readonly HandleSpec[], P extends Fields, R extends Fields>(
  spec: CommandSpec<H, P, R>,
): CommandDef {
  const attributes =
    (spec.code & TPMA_CC.commandIndexMask) |
    (spec.nv ? TPMA_CC.nv : 0) |
    (spec.extensive ? TPMA_CC.extensive : 0) |
    (spec.flushed ? TPMA_CC.flushed : 0) |
    (spec.handles.length << TPMA_CC.cHandlesShift) |
    (spec.responseHandle ? TPMA_CC.rHandle : 0);
  return {
    code: spec.code,
    handles: spec.handles,
    params: Object.entries(spec.params),
    response: Object.entries(spec.response),
    ...(spec.responseHandle ? { responseHandle: spec.responseHandle } : {}),
    noSessions: spec.noSessions ?? false,
    authHandles: spec.handles.flatMap((h, i) => (h.auth ? [i] : [])),
    attributes: attributes >>> 0,
    run: spec.run as CommandDef['run'],
  };
}
