/**
 * The socket layout of control commands (swtpm-compat §1.2, §1.5): a big-endian u32 command
 * code, the request fields big-endian; the response is the u32 result and, on success only, the
 * response fields. Every error reply is exactly 4 bytes, except where the handler says the
 * fields go with an error too (GET_STATEBLOB's 16-byte header).
 */
import type { ControlReply, Field, Values } from '../../control/handlers.js';

export function decodeFields(body: Uint8Array, fields: readonly Field[]): Values {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out: Values = {};
  let p = 0;
  for (const f of fields) {
    if ('pad' in f) {
      p += f.pad;
      continue;
    }
    out[f.name] = f.size === 1 ? v.getUint8(p) : f.size === 4 ? v.getUint32(p) : Number(v.getBigUint64(p));
    p += f.size;
  }
  return out;
}

export function encodeReply(reply: ControlReply, fields: readonly Field[]): Uint8Array {
  const withFields = reply.fields !== undefined && (reply.result === 0 || reply.fieldsOnError === true);
  if (!withFields) {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, reply.result);
    return out;
  }
  const values: Values = { ...reply.fields };
  let tail = reply.result === 0 ? reply.tail : undefined;
  if (reply.stateBlob && reply.result === 0) {
    // Socket rule: everything from `offset` in this one response; totlength == length.
    const { data, offset } = reply.stateBlob;
    tail = data.subarray(Math.min(offset, data.length));
    values.totlength = tail.length;
    values.length = tail.length;
  }
  const size = 4 + fields.reduce((n, f) => n + ('pad' in f ? f.pad : f.size), 0);
  const out = new Uint8Array(size + (tail?.length ?? 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, reply.result);
  let p = 4;
  for (const f of fields) {
    if ('pad' in f) {
      p += f.pad;
      continue;
    }
    const value = values[f.name] ?? 0;
    if (f.size === 1) v.setUint8(p, value);
    else if (f.size === 4) v.setUint32(p, value >>> 0);
    else v.setBigUint64(p, BigInt(value));
    p += f.size;
  }
  if (tail) out.set(tail, p);
  return out;
}
