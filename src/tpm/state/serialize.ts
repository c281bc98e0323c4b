/**
 * Versioned serialisation of engine state. A blob is a 12-byte header (magic "VTPM", a kind
 * byte, version and minVersion) and a JSON body in which byte strings are hex objects and
 * integers past 2^53 are decimal strings. A blob whose minVersion is newer than this code is
 * refused, so an old daemon never half-loads a newer state.
 */

const MAGIC = 0x5654504d; // "VTPM"
const HEADER = 12;

export const STATE_KIND = { permanent: 1, volatile: 2 } as const;
export type StateKind = keyof typeof STATE_KIND;

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

export function serializeState(kind: StateKind, version: number, minVersion: number, body: unknown): Uint8Array {
  const json = Buffer.from(JSON.stringify(body, replacer), 'utf8');
  const out = new Uint8Array(HEADER + json.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC);
  view.setUint8(4, STATE_KIND[kind]);
  view.setUint8(5, 0);
  view.setUint16(6, version);
  view.setUint16(8, minVersion);
  view.setUint16(10, 0);
  out.set(json, HEADER);
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
  try {
    const body = JSON.parse(Buffer.from(blob.subarray(HEADER)).toString('utf8'), reviver) as unknown;
    return { version: blobVersion, body };
  } catch (e) {
    throw new StateFormatError(`${kind} state body is corrupt: ${(e as Error).message}`);
  }
}
