/**
 * swtpm's state-blob envelope for GET_STATEBLOB / SET_STATEBLOB (swtpm-compat §5.2): the 10-byte
 * header with flag 0x04 (migration data present) and TLV 4 holding the file-style TLVs, here
 * TLV 1 (plain data) and our CRC-32 record. Encrypted blobs (flags 0x01 file key, 0x02 migration
 * key) need keys vtpmd cannot be given yet and are refused. The data inside is the engine's own
 * serialisation, so blobs move between vtpmd instances, not between vtpmd and swtpm.
 */
import { crc32, HEADER_SIZE, MIN_VERSION, TAG_CRC32, TAG_DATA, TLV_HEADER, VERSION } from './envelope.js';

/** §5.2 header flags. */
export const BLOB_FLAG = { FILE_KEY: 0x01, MIGRATION_KEY: 0x02, MIGRATION_DATA: 0x04, FILE_KEY_256: 0x08, MIGRATION_KEY_256: 0x10 } as const;
/** §5.2 tag 4: migration data, holding inner TLVs. */
const TAG_MIGRATION_DATA = 4;

/** Why a blob cannot be imported: `encrypted` needs a key we do not have; `malformed` is damage. */
export class StateBlobError extends Error {
  readonly code = 'VTPMD_STATE_BLOB';
  constructor(
    readonly reason: 'encrypted' | 'malformed',
    message: string,
  ) {
    super(message);
    this.name = 'StateBlobError';
  }
}

function tlv(tag: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(TLV_HEADER + value.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, tag);
  v.setUint32(2, value.length);
  out.set(value, TLV_HEADER);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Wraps engine state for GET_STATEBLOB. */
export function exportStateBlob(data: Uint8Array): Uint8Array {
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, crc32(data));
  const body = tlv(TAG_MIGRATION_DATA, concat(tlv(TAG_DATA, data), tlv(TAG_CRC32, crc)));
  const header = new Uint8Array(HEADER_SIZE);
  const v = new DataView(header.buffer);
  v.setUint8(0, VERSION);
  v.setUint8(1, MIN_VERSION);
  v.setUint16(2, HEADER_SIZE);
  v.setUint16(4, BLOB_FLAG.MIGRATION_DATA);
  v.setUint32(6, HEADER_SIZE + body.length);
  return concat(header, body);
}

function parseTlvs(bytes: Uint8Array, bad: (why: string) => StateBlobError): Map<number, Uint8Array> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<number, Uint8Array>();
  for (let p = 0; p < bytes.length; ) {
    if (bytes.length - p < TLV_HEADER) throw bad('truncated record');
    const tag = v.getUint16(p);
    const len = v.getUint32(p + 2);
    if (len > bytes.length - p - TLV_HEADER) throw bad('truncated record');
    out.set(tag, bytes.subarray(p + TLV_HEADER, p + TLV_HEADER + len));
    p += TLV_HEADER + len;
  }
  return out;
}

/**
 * The engine state inside a SET_STATEBLOB blob (with or without the 0x04 wrapping, as swtpm
 * accepts both). `requestEncrypted` is the request's ENCRYPTED state flag.
 */
export function importStateBlob(blob: Uint8Array, requestEncrypted = false): Uint8Array {
  const bad = (why: string) => new StateBlobError('malformed', `state blob is damaged (${why})`);
  if (blob.length < HEADER_SIZE) throw bad(`only ${blob.length} bytes`);
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const minVersion = v.getUint8(1);
  const hdrSize = v.getUint16(2);
  const flags = v.getUint16(4);
  const total = v.getUint32(6);
  if (minVersion > VERSION || v.getUint8(0) < 2) throw bad(`unsupported header version ${v.getUint8(0)}/${minVersion}`);
  if (hdrSize !== HEADER_SIZE) throw bad(`header size ${hdrSize}`);
  if (total !== blob.length) throw bad(`header says ${total} bytes, blob has ${blob.length}`);
  if (requestEncrypted || flags & (BLOB_FLAG.FILE_KEY | BLOB_FLAG.MIGRATION_KEY)) {
    throw new StateBlobError('encrypted', 'state blob is encrypted; vtpmd has no --key or --migration-key support yet');
  }
  let tlvs = parseTlvs(blob.subarray(HEADER_SIZE), bad);
  if (flags & BLOB_FLAG.MIGRATION_DATA) {
    const inner = tlvs.get(TAG_MIGRATION_DATA);
    if (!inner) throw bad('no migration data record');
    tlvs = parseTlvs(inner, bad);
  }
  const data = tlvs.get(TAG_DATA);
  if (!data) throw bad('no data record');
  const crc = tlvs.get(TAG_CRC32);
  if (crc && (crc.length !== 4 || new DataView(crc.buffer, crc.byteOffset).getUint32(0) !== crc32(data))) throw bad('checksum mismatch');
  return new Uint8Array(data); // a copy, not a view into the request
}
