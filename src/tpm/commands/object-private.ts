/**
 * Part 1 §23 protected storage: a child's TPMT_SENSITIVE leaves the TPM as a TPM2B_PRIVATE that
 * only its parent can open. Laid out as the reference builds it (Object_spt.c SensitiveToPrivate):
 *
 *   TPM2B_DIGEST integrity || TPM2B_IV iv || AES-CFB(symKey, iv, UINT16 size || TPMT_SENSITIVE)
 *
 * symKey    = KDFa(parent nameAlg, parent seedValue, "STORAGE", Name, ∅, parent sym keyBits)
 * hmacKey   = KDFa(parent nameAlg, parent seedValue, "INTEGRITY", ∅, ∅, digest bits)
 * integrity = HMAC(hmacKey, iv area || encrypted sensitive || Name)
 *
 * The IV is random per wrap (the reference's useIV), so two wraps of one key differ. The Name in
 * both derivations ties the blob to its public area: a swapped public area fails integrity.
 */
import { hashInfo } from '../algorithms.js';
import { TPM_RC } from '../constants.js';
import { aesCfbDecrypt, aesCfbEncrypt, constantTimeEqual, hmac, kdfa } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { decode, encode } from '../marshal/codec.js';
import type { TPMT_SYM_DEF_OBJECT } from '../marshal/objects.js';
import { Reader } from '../marshal/reader.js';
import { MAX_SYM_BLOCK_SIZE, TPM2B_IV, TPMT_SENSITIVE } from '../marshal/sensitive.js';
import { TPM2B_DIGEST } from '../marshal/structures.js';
import type { KeyObject } from '../state/objects.js';

/** What protects a child: its parent's nameAlg, seedValue and symmetric definition. */
export interface Protector {
  readonly nameAlg: number;
  readonly seed: Uint8Array;
  readonly symKeyBits: number;
}

const EMPTY = new Uint8Array(0);

/** The protector a storage parent offers its children (ECC/RSA: parameters.symmetric, SYMCIPHER: sym). */
export function protectorOf(parent: KeyObject): Protector {
  const p = parent.publicArea.parameters as { symmetric?: TPMT_SYM_DEF_OBJECT; sym?: TPMT_SYM_DEF_OBJECT };
  const sym = (p.symmetric ?? p.sym)!;
  return { nameAlg: parent.publicArea.nameAlg, seed: parent.seedValue, symKeyBits: sym.keyBits as number };
}

/** The TPMT_SENSITIVE of a loaded object; authValue is padded to its nameAlg's digest (MarshalSensitive). */
export function sensitiveOf(object: KeyObject, auth: Uint8Array = object.auth): TPMT_SENSITIVE {
  const digestSize = hashInfo(object.publicArea.nameAlg)?.digestSize ?? auth.length;
  const authValue = new Uint8Array(Math.max(digestSize, auth.length));
  authValue.set(auth);
  return {
    sensitiveType: object.publicArea.type,
    authValue,
    seedValue: object.seedValue,
    sensitive: object.sensitive,
  };
}

function integrityOf(p: Protector, name: Uint8Array, body: Uint8Array): Uint8Array {
  const key = kdfa(p.nameAlg, p.seed, 'INTEGRITY', EMPTY, EMPTY, hashInfo(p.nameAlg)!.digestSize * 8);
  return hmac(p.nameAlg, key, body, name);
}

const symKeyOf = (p: Protector, name: Uint8Array): Uint8Array => kdfa(p.nameAlg, p.seed, 'STORAGE', name, EMPTY, p.symKeyBits);

/** SensitiveToPrivate: wraps a sensitive area for its parent. `iv` is fresh randomness. */
export function sensitiveToPrivate(sensitive: TPMT_SENSITIVE, name: Uint8Array, p: Protector, iv: Uint8Array): Uint8Array {
  const inner = encode(TPMT_SENSITIVE, sensitive);
  const plain = new Uint8Array(2 + inner.length);
  plain[0] = inner.length >> 8;
  plain[1] = inner.length & 0xff;
  plain.set(inner, 2);
  const key = symKeyOf(p, name);
  const encrypted = aesCfbEncrypt(key, iv, plain);
  plain.fill(0);
  inner.fill(0);
  key.fill(0);
  const body = new Uint8Array(2 + iv.length + encrypted.length);
  body[0] = iv.length >> 8;
  body[1] = iv.length & 0xff;
  body.set(iv, 2);
  body.set(encrypted, 2 + iv.length);
  const integrity = integrityOf(p, name, body);
  const out = new Uint8Array(2 + integrity.length + body.length);
  out[0] = integrity.length >> 8;
  out[1] = integrity.length & 0xff;
  out.set(integrity, 2);
  out.set(body, 2 + integrity.length);
  return out;
}

/**
 * PrivateToSensitive: checks and opens a TPM2B_PRIVATE's buffer. RCs without a position (the
 * caller names inPrivate): unmarshalling codes of the integrity or IV, TPM_RC_INTEGRITY (a
 * wrong parent, a wrong public area, any changed byte), TPM_RC_VALUE (an IV that is not one
 * AES block), TPM_RC_SENSITIVE (the decrypted area does not parse).
 */
export function privateToSensitive(blob: Uint8Array, name: Uint8Array, p: Protector): TPMT_SENSITIVE {
  const r = new Reader(blob);
  const integrity = TPM2B_DIGEST.read(r);
  const body = blob.subarray(r.pos);
  if (!constantTimeEqual(integrityOf(p, name, body), integrity)) throw new TpmError(TPM_RC.INTEGRITY);
  const iv = TPM2B_IV.read(r);
  if (iv.length !== MAX_SYM_BLOCK_SIZE) throw new TpmError(TPM_RC.VALUE);
  const key = symKeyOf(p, name);
  const plain = aesCfbDecrypt(key, iv, blob.subarray(r.pos));
  key.fill(0);
  try {
    if (plain.length < 2 || ((plain[0]! << 8) | plain[1]!) + 2 !== plain.length) throw new TpmError(TPM_RC.SENSITIVE);
    return decode(TPMT_SENSITIVE, plain.subarray(2));
  } catch {
    throw new TpmError(TPM_RC.SENSITIVE);
  } finally {
    plain.fill(0);
  }
}
