/** Part 1 §C.11 symmetric encryption: AES in CFB mode (context blobs, and later parameter encryption). */
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
