/**
 * Part 1 §C.11 symmetric encryption: AES in CFB mode (context blobs, parameter encryption), and
 * AES-CBC over whole blocks for the state files swtpm encrypts at rest.
 */
import * as nodeCrypto from 'node:crypto';
import { TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { view } from './bytes.js';

function cipherName(key: Uint8Array): string {
  if (key.length === 16) return 'aes-128-cfb';
  if (key.length === 32) return 'aes-256-cfb';
  throw new TpmError(TPM_RC.KEY_SIZE);
}

export function aesCfbEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = nodeCrypto.createCipheriv(cipherName(key), key, iv);
  return view(Buffer.concat([c.update(data), c.final()]));
}

export function aesCfbDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const d = nodeCrypto.createDecipheriv(cipherName(key), key, iv);
  return view(Buffer.concat([d.update(data), d.final()]));
}

function cbcName(key: Uint8Array): string {
  if (key.length === 16) return 'aes-128-cbc';
  if (key.length === 32) return 'aes-256-cbc';
  throw new RangeError(`an AES key of ${key.length} bytes (16 or 32)`);
}

function checkBlocks(iv: Uint8Array, data: Uint8Array): void {
  if (iv.length !== 16) throw new RangeError(`CBC IV of ${iv.length} bytes (16)`);
  if (data.length % 16 !== 0) throw new RangeError(`CBC data of ${data.length} bytes is not whole blocks`);
}

/** AES-CBC encryption of whole blocks: the caller pads (swtpm's format has its own padding check). */
export function aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkBlocks(iv, data);
  const c = nodeCrypto.createCipheriv(cbcName(key), key, iv).setAutoPadding(false);
  return view(Buffer.concat([c.update(data), c.final()]));
}

/** AES-CBC decryption of whole blocks: the caller checks the padding. */
export function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  checkBlocks(iv, data);
  const d = nodeCrypto.createDecipheriv(cbcName(key), key, iv).setAutoPadding(false);
  return view(Buffer.concat([d.update(data), d.final()]));
}
