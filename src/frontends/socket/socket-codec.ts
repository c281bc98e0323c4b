/**
 * The socket layout of control commands (swtpm-compat §1.2, §1.5): a big-endian u32 command
 * code, the request fields big-endian; the response is the u32 result and, on success only, the
 * response fields. Every error reply is exactly 4 bytes, except where the handler says the
 * fields go with an error too (GET_STATEBLOB's 16-byte header).
 */
import { fieldsSize, readFields, writeFields } from '../../control/field-codec.js';
import type { ControlReply, Field, Values } from '../../control/handlers.js';

export function decodeFields(body: Uint8Array, fields: readonly Field[]): Values {
  return readFields(new DataView(body.buffer, body.byteOffset, body.byteLength), 0, fields, false);
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
  const size = 4 + fieldsSize(fields);
  const out = new Uint8Array(size + (tail?.length ?? 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, reply.result);
  const p = writeFields(v, 4, fields, values, false);
  if (tail) out.set(tail, p);
  return out;
}
