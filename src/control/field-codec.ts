/**
 * The fixed fields of a control request or response, read and written at an offset in either
 * byte order: big-endian on the socket (swtpm-compat §1.5), host order (little-endian) in an
 * ioctl struct (§1.2). One walk over the field list serves both front ends.
 */
import type { Field, Values } from './handlers.js';

/** Reads `fields` from `view` at `offset`. */
export function readFields(view: DataView, offset: number, fields: readonly Field[], littleEndian: boolean): Values {
  const out: Values = {};
  let p = offset;
  for (const f of fields) {
    if ('pad' in f) {
      p += f.pad;
      continue;
    }
    out[f.name] =
      f.size === 1 ? view.getUint8(p) : f.size === 4 ? view.getUint32(p, littleEndian) : Number(view.getBigUint64(p, littleEndian));
    p += f.size;
  }
  return out;
}

/**
 * Writes `fields` from `values` (missing ones and padding as zero) at `offset`, stopping before
 * the first field that would pass `limit`. Returns the offset after the last field written.
 */
export function writeFields(
  view: DataView,
  offset: number,
  fields: readonly Field[],
  values: Values,
  littleEndian: boolean,
  limit = view.byteLength,
): number {
  let p = offset;
  for (const f of fields) {
    const size = 'pad' in f ? f.pad : f.size;
    if (p + size > limit) return p;
    if (!('pad' in f)) {
      const value = values[f.name] ?? 0;
      if (f.size === 1) view.setUint8(p, value);
      else if (f.size === 4) view.setUint32(p, value >>> 0, littleEndian);
      else view.setBigUint64(p, BigInt(value), littleEndian);
    }
    p += size;
  }
  return p;
}

/** Bytes the fields take, padding included. */
export function fieldsSize(fields: readonly Field[]): number {
  return fields.reduce((n, f) => n + ('pad' in f ? f.pad : f.size), 0);
}
