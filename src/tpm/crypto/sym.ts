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

// CFB is a stream mode: update() returns every byte and final() none, so nothing is joined.
export function aesCfbEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = nodeCrypto.createCipheriv(cipherName(key), key, iv);
  const out = c.update(data);
  c.final();
  return view(out);
}

export function aesCfbDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const d = nodeCrypto.createDecipheriv(cipherName(key), key, iv);
  const out = d.update(data);
  d.final();
  return view(out);
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

/** The block-cipher modes of TPMI_ALG_SYM_MODE (Part 2 §9.31) that EncryptDecrypt offers. */
export type AesMode = 'cfb' | 'cbc' | 'ctr' | 'ofb' | 'ecb';

const AES_BLOCK = 16;

function modeName(key: Uint8Array, mode: AesMode): string {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new TpmError(TPM_RC.KEY_SIZE);
  return `aes-${key.length * 8}-${mode}`;
}

/** ECB encryption of whole blocks: the raw block cipher, used for the chaining values below. */
function ecbBlocks(key: Uint8Array, data: Uint8Array): Uint8Array {
  const c = nodeCrypto.createCipheriv(modeName(key, 'ecb'), key, null).setAutoPadding(false);
  return view(Buffer.concat([c.update(data), c.final()]));
}

/** The big-endian counter block `iv` advanced by `blocks` (mod 2^128), as CTR leaves it. */
function addCounter(iv: Uint8Array, blocks: number): Uint8Array {
  const out = iv.slice();
  let carry = blocks;
  for (let i = out.length - 1; i >= 0 && carry > 0; i--) {
    const v = out[i]! + (carry & 0xff);
    out[i] = v & 0xff;
    carry = Math.floor(carry / 256) + (v >> 8);
  }
  return out;
}

/**
 * AES in one of the TPM's modes (Part 1 §C.11, the reference's CryptSymmetricEncrypt/Decrypt),
 * with the chaining value a next call continues from: CBC and CFB the last cipher block, OFB
 * the last keystream block, CTR the next counter, ECB none. A last partial CFB block leaves its
 * cipher bytes followed by the rest of its keystream block, as OpenSSL (and so libtpms) does.
 * CBC and ECB take whole blocks only (TPM_RC_SIZE); empty data leaves the IV as it was.
 */
export function aesModeCrypt(
  mode: AesMode,
  decrypt: boolean,
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
): { out: Uint8Array; ivOut: Uint8Array } {
  if ((mode === 'cbc' || mode === 'ecb') && data.length % AES_BLOCK !== 0) throw new TpmError(TPM_RC.SIZE);
  if (data.length === 0) return { out: new Uint8Array(0), ivOut: iv.slice() };
  const name = modeName(key, mode);
  const cipher = decrypt
    ? nodeCrypto.createDecipheriv(name, key, mode === 'ecb' ? null : iv)
    : nodeCrypto.createCipheriv(name, key, mode === 'ecb' ? null : iv);
  cipher.setAutoPadding(false);
  const out = view(Buffer.concat([cipher.update(data), cipher.final()]));
  const blocks = Math.ceil(data.length / AES_BLOCK);
  const lastStart = (blocks - 1) * AES_BLOCK;
  const cipherText = decrypt ? data : out;
  let ivOut: Uint8Array;
  switch (mode) {
    case 'ecb':
      ivOut = new Uint8Array(0);
      break;
    case 'cbc':
      ivOut = cipherText.slice(lastStart);
      break;
    case 'ctr':
      ivOut = addCounter(iv, blocks);
      break;
    case 'ofb': {
      // OFB over zeros is the keystream itself; its last block is the next IV.
      const c = nodeCrypto.createCipheriv(name, key, iv);
      ivOut = view(c.update(new Uint8Array(blocks * AES_BLOCK))).slice(lastStart);
      break;
    }
    case 'cfb': {
      const tail = cipherText.subarray(lastStart);
      const previous = lastStart === 0 ? iv : cipherText.subarray(lastStart - AES_BLOCK, lastStart);
      ivOut = ecbBlocks(key, previous);
      ivOut.set(tail);
      break;
    }
  }
  return { out, ivOut };
}
