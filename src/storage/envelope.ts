/**
 * The on-disk envelope around a state blob: swtpm's 10-byte header (swtpm-compat §5.2: version 2,
 * min_version 1, hdrsize 10, flags, totlen) and TLV 1 (plain data), followed by our own TLV with
 * a CRC-32 of the data, so a truncated or corrupted file is refused instead of half-loaded. With
 * a file key (`--key`) the data is encrypted as swtpm does it: flag 0x01 (+0x08 for a 256-bit
 * key) and TLVs 2 (ciphertext), 3 (HMAC) and 6 (IV); the HMAC then guards against damage. The
 * payload inside is the engine's own versioned serialisation (it has its own magic).
 */
import { crc32 as zlibCrc32 } from 'node:zlib';
import { decryptRecords, encryptRecords, is256, StateKeyError, type StateKey } from './state-key.js';
import { concatBytes } from '../tpm/crypto/bytes.js';
import { parseTlvs, putTlvHeader, TLV_HEADER } from './tlv.js';

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
export { TLV_HEADER } from './tlv.js';
/** swtpm-compat §5.2 tag 1: plain data. */
export const TAG_DATA = 1;
/** §5.2 tag 2: data encrypted with the file key; tag 6: its IV. */
export const TAG_ENCRYPTED_DATA = 2;
export const TAG_IV_ENCRYPTED_DATA = 6;
/** §5.2 header flags. */
export const BLOB_FLAG = { FILE_KEY: 0x01, MIGRATION_KEY: 0x02, MIGRATION_DATA: 0x04, FILE_KEY_256: 0x08, MIGRATION_KEY_256: 0x10 } as const;
/** Ours (outside swtpm's 1–7): CRC-32 (IEEE) of the TAG_DATA value, 4 bytes. */
export const TAG_CRC32 = 0x7601;

/** The header (10 bytes) for a body of `bodyLength` bytes. */
export function envelopeHeader(flags: number, bodyLength: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  putEnvelopeHeader(new DataView(out.buffer), flags, bodyLength);
  return out;
}

function putEnvelopeHeader(v: DataView, flags: number, bodyLength: number): void {
  v.setUint8(0, VERSION);
  v.setUint8(1, MIN_VERSION);
  v.setUint16(2, HEADER_SIZE);
  v.setUint16(4, flags);
  v.setUint32(6, HEADER_SIZE + bodyLength);
}

const CRC_SIZE = 4;

/**
 * TLV 1 with the data, then our CRC-32 record, after `headroom` bytes left for the caller: one
 * allocation and one copy of the data (a state file is written for every NV change).
 */
export function plainRecords(data: Uint8Array, headroom = 0): Uint8Array {
  const out = new Uint8Array(headroom + 2 * TLV_HEADER + data.length + CRC_SIZE);
  const v = new DataView(out.buffer);
  putTlvHeader(v, headroom, TAG_DATA, data.length);
  out.set(data, headroom + TLV_HEADER);
  const crcAt = headroom + TLV_HEADER + data.length;
  putTlvHeader(v, crcAt, TAG_CRC32, CRC_SIZE);
  v.setUint32(crcAt + TLV_HEADER, crc32(data));
  return out;
}

/** The data of plain records; `bad` names damage. */
export function dataOfPlainRecords(records: Map<number, Uint8Array>, bad: (why: string) => Error, crcRequired: boolean): Uint8Array {
  const data = records.get(TAG_DATA);
  if (!data) throw bad('no data record');
  const crc = records.get(TAG_CRC32);
  if (!crc) {
    if (crcRequired) throw bad('no checksum record');
    return data;
  }
  if (crc.length !== CRC_SIZE || new DataView(crc.buffer, crc.byteOffset).getUint32(0) !== crc32(data)) throw bad('checksum mismatch');
  return data;
}

/** A state file's bytes: plain, or encrypted when a file key is given. */
export function wrapState(data: Uint8Array, fileKey?: StateKey): Uint8Array {
  if (fileKey) {
    const body = encryptRecords(fileKey, data, TAG_ENCRYPTED_DATA, TAG_IV_ENCRYPTED_DATA);
    const flags = BLOB_FLAG.FILE_KEY | (is256(fileKey) ? BLOB_FLAG.FILE_KEY_256 : 0);
    return concatBytes(envelopeHeader(flags, body.length), body);
  }
  const file = plainRecords(data, HEADER_SIZE);
  putEnvelopeHeader(new DataView(file.buffer), 0, file.length - HEADER_SIZE);
  return file;
}

/**
 * The data inside a state file; throws StateFileError naming `what` if anything is off. An
 * encrypted file needs its key, and with a key given the file must be encrypted (as swtpm
 * requires: a plain file cannot be slipped in under an encrypted TPM).
 */
export function unwrapState(file: Uint8Array, what: string, fileKey?: StateKey): Uint8Array {
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
  if (total !== file.length) throw bad(`header says ${total} bytes, file has ${file.length}`);
  if (flags & ~(BLOB_FLAG.FILE_KEY | BLOB_FLAG.FILE_KEY_256)) throw bad(`unexpected flags 0x${flags.toString(16)}`);
  const records = parseTlvs(file.subarray(hdrSize), bad);
  const encrypted = (flags & BLOB_FLAG.FILE_KEY) !== 0;
  if (encrypted && !fileKey) throw new StateFileError(`${what} is encrypted; give the --key it was written with`);
  if (!encrypted && fileKey) throw new StateFileError(`${what} is not encrypted, but --key was given; start without --key (or remove the file to start a new encrypted TPM)`);
  if (!fileKey) return dataOfPlainRecords(records, bad, true);
  try {
    return decryptRecords(fileKey, records, TAG_ENCRYPTED_DATA, TAG_IV_ENCRYPTED_DATA, (flags & BLOB_FLAG.FILE_KEY_256) !== 0);
  } catch (e) {
    if (!(e instanceof StateKeyError)) throw e;
    if (e.reason === 'malformed') throw bad(e.message);
    throw new StateFileError(`cannot decrypt ${what}: ${e.message}; give the --key it was written with`);
  }
}

/** CRC-32 (IEEE 802.3, reflected, as zlib; zlib's own code). Not a security measure: it detects damage. */
export function crc32(data: Uint8Array): number {
  return zlibCrc32(data);
}
