/** Byte helpers shared by the crypto modules: Buffer-to-Uint8Array views and big-endian counters. */

/**
 * Views a Buffer (or any Uint8Array) as a plain Uint8Array without copying, so the engine's
 * types never carry Buffer past this folder (style.md §8).
 */
export function view(buf: Uint8Array): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Writes `value` as a 32-bit big-endian integer at `offset`: the counters and lengths of Part 1 §11.4.10. */
export function putUint32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

/** The parts one after another in a new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
