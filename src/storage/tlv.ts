/**
 * The tag-length-value records of swtpm's state envelope (swtpm-compat §5.2): tag u16, length
 * u32, value, big-endian.
 */
export const TLV_HEADER = 6;

export function tlv(tag: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(TLV_HEADER + value.length);
  putTlvHeader(new DataView(out.buffer), 0, tag, value.length);
  out.set(value, TLV_HEADER);
  return out;
}

/** Writes a record's tag and length at `at` (its value follows them). */
export function putTlvHeader(v: DataView, at: number, tag: number, length: number): void {
  v.setUint16(at, tag);
  v.setUint32(at + 2, length);
}

/** Records by tag (the first of a repeated tag wins, as swtpm's lookup finds it); `bad` names damage. */
export function parseTlvs(bytes: Uint8Array, bad: (why: string) => Error): Map<number, Uint8Array> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<number, Uint8Array>();
  for (let p = 0; p < bytes.length; ) {
    if (bytes.length - p < TLV_HEADER) throw bad('truncated record');
    const tag = v.getUint16(p);
    const len = v.getUint32(p + 2);
    if (len > bytes.length - p - TLV_HEADER) throw bad('truncated record');
    if (!out.has(tag)) out.set(tag, bytes.subarray(p + TLV_HEADER, p + TLV_HEADER + len));
    p += TLV_HEADER + len;
  }
  return out;
}
