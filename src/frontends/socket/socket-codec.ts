/**
 * The socket layout of control commands (swtpm-compat §1.2, §1.5): a big-endian u32 command
 * code, the request fields big-endian; the response is the u32 result and, on success only, the
 * response fields. Every error reply is exactly 4 bytes.
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
    out[f.name] = f.size === 1 ? v.getUint8(p) : v.getUint32(p);
    p += f.size;
  }
  return out;
}

export function encodeReply(reply: ControlReply, fields: readonly Field[]): Uint8Array {
  if (reply.result !== 0 || !reply.fields) {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, reply.result);
    return out;
  }
  const size = 4 + fields.reduce((n, f) => n + ('pad' in f ? f.pad : f.size), 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, reply.result);
  let p = 4;
  for (const f of fields) {
    if ('pad' in f) {
      p += f.pad;
      continue;
    }
    const value = reply.fields[f.name] ?? 0;
    if (f.size === 1) v.setUint8(p, value);
    else v.setUint32(p, value >>> 0);
    p += f.size;
  }
  return out;
}
