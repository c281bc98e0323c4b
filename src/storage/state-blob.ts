/**
 * swtpm's state-blob envelope for GET_STATEBLOB / SET_STATEBLOB (swtpm-compat §5.2): the 10-byte
 * header with flag 0x04 (migration data present), then either TLV 4 holding the file-style
 * records, or, with a migration key, those records encrypted as TLVs 5 (ciphertext), 3 (HMAC)
 * and 7 (IV) with flag 0x02 (+0x10 for a 256-bit key). The file-style records are TLV 1 (plain
 * data) and our CRC-32 record, or, still under the file key, TLVs 2, 3 and 6 with flag 0x01
 * (+0x08). The data inside is the engine's own serialisation, so blobs move between vtpmd
 * instances, not between vtpmd and swtpm.
 */
import {
  BLOB_FLAG,
  dataOfPlainRecords,
  envelopeHeader,
  HEADER_SIZE,
  plainRecords,
  TAG_ENCRYPTED_DATA,
  TAG_IV_ENCRYPTED_DATA,
  VERSION,
} from './envelope.js';
import { decryptRecords, encryptRecords, is256, StateKeyError, type StateKey } from './state-key.js';
import { concatBytes } from '../tpm/crypto/bytes.js';
import { parseTlvs, tlv } from './tlv.js';

export { BLOB_FLAG } from './envelope.js';

/** §5.2 tags 4, 5 and 7: migration data, the same encrypted with the migration key, its IV. */
const TAG_MIGRATION_DATA = 4;
const TAG_ENCRYPTED_MIGRATION_DATA = 5;
const TAG_IV_ENCRYPTED_MIGRATION_DATA = 7;

/** The keys a daemon was given (`--key`, `--migration-key`). */
export interface StateKeys {
  file?: StateKey;
  migration?: StateKey;
}

/**
 * Why a blob cannot be imported: `encrypted` needs a key we were not given (swtpm: 0x0D);
 * `wrong-key` fails its HMAC (0x21); `key-size` was made with a key of the other size (0x28);
 * `malformed` is damage.
 */
export class StateBlobError extends Error {
  readonly code = 'VTPMD_STATE_BLOB';
  constructor(
    readonly reason: 'encrypted' | 'wrong-key' | 'key-size' | 'malformed',
    message: string,
  ) {
    super(message);
    this.name = 'StateBlobError';
  }
}

/**
 * Wraps engine state for GET_STATEBLOB. Under a file key the blob stays encrypted with it unless
 * `decrypted` was asked for; `encrypted` reports which (the response's ENCRYPTED state flag).
 */
export function exportStateBlob(data: Uint8Array, keys: StateKeys = {}, decrypted = false): { blob: Uint8Array; encrypted: boolean } {
  let flags = BLOB_FLAG.MIGRATION_DATA as number;
  const encrypted = keys.file !== undefined && !decrypted;
  let inner: Uint8Array;
  if (encrypted) {
    inner = encryptRecords(keys.file!, data, TAG_ENCRYPTED_DATA, TAG_IV_ENCRYPTED_DATA);
    flags |= BLOB_FLAG.FILE_KEY | (is256(keys.file!) ? BLOB_FLAG.FILE_KEY_256 : 0);
  } else {
    inner = plainRecords(data);
  }
  let body: Uint8Array;
  if (keys.migration) {
    body = encryptRecords(keys.migration, inner, TAG_ENCRYPTED_MIGRATION_DATA, TAG_IV_ENCRYPTED_MIGRATION_DATA);
    flags |= BLOB_FLAG.MIGRATION_KEY | (is256(keys.migration) ? BLOB_FLAG.MIGRATION_KEY_256 : 0);
  } else {
    body = tlv(TAG_MIGRATION_DATA, inner);
  }
  return { blob: concatBytes(envelopeHeader(flags, body.length), body), encrypted };
}

function decrypt(key: StateKey, records: Map<number, Uint8Array>, dataTag: number, ivTag: number, want256: boolean, which: string): Uint8Array {
  try {
    return decryptRecords(key, records, dataTag, ivTag, want256);
  } catch (e) {
    if (!(e instanceof StateKeyError)) throw e;
    throw new StateBlobError(e.reason, `state blob cannot be decrypted with the ${which}: ${e.message}`);
  }
}

/**
 * The engine state inside a SET_STATEBLOB blob (with or without the 0x04 wrapping, as swtpm
 * accepts both). `requestEncrypted` is the request's ENCRYPTED state flag. A plain blob is
 * accepted even when keys are set (swtpm's "upgrade to encryption").
 */
export function importStateBlob(blob: Uint8Array, requestEncrypted = false, keys: StateKeys = {}): Uint8Array {
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
  let records = parseTlvs(blob.subarray(HEADER_SIZE), bad);
  if (flags & BLOB_FLAG.MIGRATION_KEY) {
    if (!keys.migration) throw new StateBlobError('encrypted', 'state blob is encrypted with a migration key; start with --migration-key');
    const inner = decrypt(keys.migration, records, TAG_ENCRYPTED_MIGRATION_DATA, TAG_IV_ENCRYPTED_MIGRATION_DATA, (flags & BLOB_FLAG.MIGRATION_KEY_256) !== 0, '--migration-key');
    records = parseTlvs(inner, bad);
  } else if (flags & BLOB_FLAG.MIGRATION_DATA) {
    const inner = records.get(TAG_MIGRATION_DATA);
    if (!inner) throw bad('no migration data record');
    records = parseTlvs(inner, bad);
  }
  if (requestEncrypted || flags & BLOB_FLAG.FILE_KEY) {
    if (!keys.file) throw new StateBlobError('encrypted', 'state blob is encrypted with a state key; start with --key');
    const data = decrypt(keys.file, records, TAG_ENCRYPTED_DATA, TAG_IV_ENCRYPTED_DATA, (flags & BLOB_FLAG.FILE_KEY_256) !== 0, '--key');
    return data;
  }
  return new Uint8Array(dataOfPlainRecords(records, bad, false)); // a copy, not a view into the request
}
