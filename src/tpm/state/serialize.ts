/**
 * Versioned serialisation of engine state. A blob is a 12-byte header (magic "VTPM", a kind
 * byte, the body's encoding, version and minVersion) and a body: JSON in which byte strings are
 * hex objects and integers past 2^53 are decimal strings (encoding 0, every blob before the
 * permanent state's version 5), or the binary tagged values of tagged-value.ts (encoding 1). A
 * blob whose minVersion is newer than this code is refused, so an old daemon never half-loads a
 * newer state; a binary body always comes with a minVersion that code without it refuses.
 */
import { decodeTaggedValue, encodeTaggedValue } from './tagged-value.js';

const MAGIC = 0x5654504d; // "VTPM"
const HEADER = 12;

export const STATE_KIND = { permanent: 1, volatile: 2 } as const;
export type StateKind = keyof typeof STATE_KIND;

/** Header byte 5: how the body is written. */
export const BODY_ENCODING = { json: 0, binary: 1 } as const;
export type BodyEncoding = keyof typeof BODY_ENCODING;

export class StateFormatError extends Error {
  override name = 'StateFormatError';
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $b: Buffer.from(value).toString('hex') };
  if (typeof value === 'bigint') return { $n: value.toString() };
  if (value instanceof Map) return { $m: [...value.entries()] };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    if (typeof o.$b === 'string') return new Uint8Array(Buffer.from(o.$b, 'hex'));
    if (typeof o.$n === 'string') return BigInt(o.$n);
    if (Array.isArray(o.$m)) return new Map(o.$m as [unknown, unknown][]);
  }
  return value;
}

export function serializeState(kind: StateKind, version: number, minVersion: number, body: unknown, encoding: BodyEncoding = 'json'): Uint8Array {
  let out: Uint8Array;
  if (encoding === 'binary') out = encodeTaggedValue(body, HEADER);
  else {
    const json = Buffer.from(JSON.stringify(body, replacer), 'utf8');
    out = new Uint8Array(HEADER + json.length);
    out.set(json, HEADER);
  }
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC);
  view.setUint8(4, STATE_KIND[kind]);
  view.setUint8(5, BODY_ENCODING[encoding]);
  view.setUint16(6, version);
  view.setUint16(8, minVersion);
  view.setUint16(10, 0);
  return out;
}

/** Parses a blob of `kind` that this code (at `version`) can read; throws StateFormatError otherwise. */
export function deserializeState(kind: StateKind, version: number, blob: Uint8Array): { version: number; body: unknown } {
  if (blob.length < HEADER) throw new StateFormatError(`${kind} state is truncated (${blob.length} bytes)`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (view.getUint32(0) !== MAGIC) throw new StateFormatError(`${kind} state has no vtpmd header`);
  if (view.getUint8(4) !== STATE_KIND[kind]) throw new StateFormatError(`blob is not a ${kind} state`);
  const blobVersion = view.getUint16(6);
  const minVersion = view.getUint16(8);
  if (minVersion > version) {
    throw new StateFormatError(`${kind} state needs format version ${minVersion}; this vtpmd reads up to ${version}`);
  }
  const encoding = view.getUint8(5);
  if (encoding !== BODY_ENCODING.json && encoding !== BODY_ENCODING.binary) {
    throw new StateFormatError(`${kind} state has a body encoding (${encoding}) this vtpmd does not know`);
  }
  try {
    const data = blob.subarray(HEADER);
    const body = encoding === BODY_ENCODING.binary ? decodeTaggedValue(data) : JSON.parse(Buffer.from(data).toString('utf8'), reviver) as unknown;
    return { version: blobVersion, body };
  } catch (e) {
    throw new StateFormatError(`${kind} state body is corrupt: ${(e as Error).message}`);
  }
}
