/**
 * The on-disk envelope around a state blob: swtpm's 10-byte header (swtpm-compat §5.2: version 2,
 * min_version 1, hdrsize 10, flags, totlen) and TLV 1 (plain data), followed by our own TLV with
 * a CRC-32 of the data, so a truncated or corrupted file is refused instead of half-loaded. The
 * payload inside is the engine's own versioned serialisation (it has its own magic).
 */

export class StateFileError extends Error {
  readonly code = 'VTPMD_STATE_FILE';
  constructor(message: string) {
    super(message);
    this.name = 'StateFileError';
  }
}

export const HEADER_SIZE = 10;
export const VERSION = 2;
export const MIN_VERSION = 1;
export const TLV_HEADER = 6;
/** swtpm-compat §5.2 tag 1: plain data. */
export const TAG_DATA = 1;
/** Ours (outside swtpm's 1–7): CRC-32 (IEEE) of the TAG_DATA value, 4 bytes. */
export const TAG_CRC32 = 0x7601;

export function wrapState(data: Uint8Array): Uint8Array {
  const total = HEADER_SIZE + TLV_HEADER + data.length + TLV_HEADER + 4;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint8(0, VERSION);
  v.setUint8(1, MIN_VERSION);
  v.setUint16(2, HEADER_SIZE);
  v.setUint16(4, 0);
  v.setUint32(6, total);
  let p = HEADER_SIZE;
  v.setUint16(p, TAG_DATA);
  v.setUint32(p + 2, data.length);
  out.set(data, p + TLV_HEADER);
  p += TLV_HEADER + data.length;
  v.setUint16(p, TAG_CRC32);
  v.setUint32(p + 2, 4);
  v.setUint32(p + TLV_HEADER, crc32(data));
  return out;
}

/** The data inside a state file; throws StateFileError naming `what` if anything is off. */
export function unwrapState(file: Uint8Array, what: string): Uint8Array {
  const bad = (why: string) => new StateFileError(`${what} is damaged (${why}); restore it from a backup or remove it to start a new TPM`);
  if (file.length < HEADER_SIZE) throw bad(`only ${file.length} bytes`);
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = v.getUint8(0);
  const minVersion = v.getUint8(1);
  const hdrSize = v.getUint16(2);
  const flags = v.getUint16(4);
  const total = v.getUint32(6);
  if (minVersion > VERSION || version < MIN_VERSION) throw bad(`unsupported header version ${version}/${minVersion}`);
  if (hdrSize < HEADER_SIZE || hdrSize > file.length) throw bad(`bad header size ${hdrSize}`);
  if (flags !== 0) throw bad(`flags 0x${flags.toString(16)}: encrypted or migration state is not supported yet`);
  if (total !== file.length) throw bad(`header says ${total} bytes, file has ${file.length}`);
  let data: Uint8Array | undefined;
  let crc: number | undefined;
  for (let p = hdrSize; p < file.length; ) {
    if (file.length - p < TLV_HEADER) throw bad('truncated record');
    const tag = v.getUint16(p);
    const len = v.getUint32(p + 2);
    if (len > file.length - p - TLV_HEADER) throw bad('truncated record');
    const value = file.subarray(p + TLV_HEADER, p + TLV_HEADER + len);
    if (tag === TAG_DATA) data = value;
    else if (tag === TAG_CRC32 && len === 4) crc = v.getUint32(p + TLV_HEADER);
    p += TLV_HEADER + len;
  }
  if (data === undefined) throw bad('no data record');
  if (crc === undefined) throw bad('no checksum record');
  if (crc32(data) !== crc) throw bad('checksum mismatch');
  return data;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, reflected, as zlib). Not a security measure: it detects damage. */
export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of data) crc = CRC_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
