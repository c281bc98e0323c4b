/**
 * State encryption at rest, byte-compatible with swtpm's `--key` / `--migration-key`
 * (swtpm-compat §5.3): AES-CBC with a 128- or 256-bit key; a random IV as long as the key (CBC
 * uses its first 16 bytes, the HMAC covers all of it); padding of 1..keylen bytes of value n up to
 * a multiple of the key length; HMAC-SHA256 keyed with the AES key over ciphertext ‖ IV. The
 * records come out as encrypted data, HMAC, IV.
 */
import { aesCbcDecrypt, aesCbcEncrypt, constantTimeEqual, hash, hmac, randomBytes } from '../tpm/crypto/index.js';
import { concatBytes } from '../tpm/crypto/bytes.js';
import { tlv } from './tlv.js';

/** TPM_ALG ids, as tpm/crypto takes them. */
export const ALG_SHA256 = 0x000b;
const ALG_SHA512 = 0x000d;

/** A 16- or 32-byte AES key. Never logged. */
export interface StateKey {
  readonly bytes: Uint8Array;
}

export const AES_BLOCK = 16;
export const TAG_HMAC = 3;
const HMAC_SIZE = 32;

export function stateKey(bytes: Uint8Array): StateKey {
  if (bytes.length !== 16 && bytes.length !== 32) throw new RangeError(`state key must be 16 or 32 bytes, not ${bytes.length}`);
  return { bytes: new Uint8Array(bytes) };
}

export function is256(key: StateKey): boolean {
  return key.bytes.length === 32;
}

/** Why decryption failed: `wrong-key` (HMAC mismatch), `key-size` (128 vs 256 bit), `malformed`. */
export class StateKeyError extends Error {
  readonly code = 'VTPMD_STATE_KEY';
  constructor(
    readonly reason: 'wrong-key' | 'key-size' | 'malformed',
    message: string,
  ) {
    super(message);
    this.name = 'StateKeyError';
  }
}

function mac(key: StateKey, ciphertext: Uint8Array, iv: Uint8Array): Uint8Array {
  return hmac(ALG_SHA256, key.bytes, ciphertext, iv);
}

/** swtpm's passphrase KDFs (swtpm-compat §5.3): PBKDF2-HMAC-SHA512 (salt "swtpm", 1000 rounds) or SHA-512. */
export function keyFromPassphrase(pass: Uint8Array, keyLength: 16 | 32, kdf: 'pbkdf2' | 'sha512'): StateKey {
  if (kdf === 'sha512') return stateKey(hash(ALG_SHA512, pass).subarray(0, keyLength));
  // PBKDF2 (RFC 8018 §5.2): one 64-byte block is enough for both key sizes.
  const salt = new TextEncoder().encode('swtpm');
  let u = hmac(ALG_SHA512, pass, salt, Uint8Array.of(0, 0, 0, 1));
  const t = new Uint8Array(u);
  for (let i = 1; i < PBKDF2_ITERATIONS; i++) {
    u = hmac(ALG_SHA512, pass, u);
    for (let j = 0; j < t.length; j++) t[j]! ^= u[j]!;
  }
  return stateKey(t.subarray(0, keyLength));
}
const PBKDF2_ITERATIONS = 1000;

/** The three records (data under `dataTag`, HMAC, IV under `ivTag`) that hold `plain` encrypted. */
export function encryptRecords(key: StateKey, plain: Uint8Array, dataTag: number, ivTag: number, iv: Uint8Array = randomBytes(key.bytes.length)): Uint8Array {
  const keyLen = key.bytes.length;
  const pad = keyLen - (plain.length % keyLen);
  const padded = new Uint8Array(plain.length + pad);
  padded.set(plain);
  padded.fill(pad, plain.length);
  const ciphertext = aesCbcEncrypt(key.bytes, iv.subarray(0, AES_BLOCK), padded);
  return concatBytes(tlv(dataTag, ciphertext), tlv(TAG_HMAC, mac(key, ciphertext, iv)), tlv(ivTag, iv));
}

/**
 * The plaintext of the records `encryptRecords` made. `want256` is the envelope's key-size flag,
 * checked first as swtpm does, so a key of the wrong size is reported as such.
 */
export function decryptRecords(key: StateKey, records: Map<number, Uint8Array>, dataTag: number, ivTag: number, want256: boolean): Uint8Array {
  if (want256 !== is256(key)) {
    throw new StateKeyError('key-size', `it was encrypted with a ${want256 ? 256 : 128}-bit key, the key given has ${key.bytes.length * 8} bits`);
  }
  const ciphertext = records.get(dataTag);
  const tag = records.get(TAG_HMAC);
  if (!ciphertext || !tag) throw new StateKeyError('malformed', 'no encrypted data or HMAC record');
  const iv = records.get(ivTag) ?? new Uint8Array(0);
  const expected = mac(key, ciphertext, iv);
  if (tag.length < HMAC_SIZE || !constantTimeEqual(tag.subarray(0, HMAC_SIZE), expected)) {
    throw new StateKeyError('wrong-key', 'the HMAC does not match: wrong key, or the data was altered');
  }
  const keyLen = key.bytes.length;
  if (iv.length !== 0 && iv.length !== keyLen) throw new StateKeyError('malformed', `IV of ${iv.length} bytes`);
  if (ciphertext.length < keyLen || ciphertext.length % AES_BLOCK !== 0) throw new StateKeyError('malformed', `${ciphertext.length} bytes of ciphertext`);
  const padded = aesCbcDecrypt(key.bytes, iv.length ? iv.subarray(0, AES_BLOCK) : new Uint8Array(AES_BLOCK), ciphertext);
  const pad = padded[padded.length - 1]!;
  if (pad === 0 || pad > keyLen || padded.subarray(padded.length - pad).some((b) => b !== pad)) {
    throw new StateKeyError('malformed', 'bad padding');
  }
  return padded.slice(0, padded.length - pad);
}
