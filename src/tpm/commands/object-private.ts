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
 *
 * The same outer wrap, without an IV (CFB from a zero IV) and keyed by a seed shared through
 * auth/secret.ts instead of the parent's seedValue, protects credentials and duplication blobs
 * (ProduceOuterWrap/UnwrapOuter); duplication adds an inner wrap (exchange-blobs.ts).
 */
import { hashInfo } from '../algorithms.js';
import { TPM_RC } from '../constants.js';
import { concatBytes } from '../crypto/bytes.js';
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
  /** hmacKey, when a loaded parent has it already (parentIntegrityKey). */
  readonly integrityKey?: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * The protector a storage parent offers its children (ECC/RSA: parameters.symmetric, SYMCIPHER:
 * sym); with `seed`, the protector of a blob keyed by a shared seed instead (a credential for
 * an EK, a duplicate for a new parent).
 */
export function protectorOf(parent: KeyObject, seed?: Uint8Array): Protector {
  const p = parent.publicArea.parameters as { symmetric?: TPMT_SYM_DEF_OBJECT; sym?: TPMT_SYM_DEF_OBJECT };
  const sym = (p.symmetric ?? p.sym)!;
  const nameAlg = parent.publicArea.nameAlg;
  const symKeyBits = sym.keyBits as number;
  if (seed !== undefined) return { nameAlg, seed, symKeyBits };
  return { nameAlg, seed: parent.seedValue, symKeyBits, integrityKey: parentIntegrityKey(parent) };
}

/**
 * The hmacKey of a parent's children depends on the parent alone (its nameAlg and seedValue,
 * neither of which a loaded object ever changes), so it is derived once per loaded parent and
 * kept with it: a Load or Create under the parent then skips one KDFa. A parent flushed and
 * loaded again is a new object and derives it anew.
 */
const integrityKeys = new WeakMap<KeyObject, Uint8Array>();

function parentIntegrityKey(parent: KeyObject): Uint8Array {
  let key = integrityKeys.get(parent);
  if (key === undefined) {
    key = deriveIntegrityKey(parent.publicArea.nameAlg, parent.seedValue);
    integrityKeys.set(parent, key);
  }
  return key;
}

/** The TPMT_SENSITIVE of a loaded object; authValue is padded to its nameAlg's digest (MarshalSensitive). */
export function sensitiveOf(object: KeyObject, auth: Uint8Array = object.auth): TPMT_SENSITIVE {
  return padAuth(
    { sensitiveType: object.publicArea.type, authValue: auth, seedValue: object.seedValue, sensitive: object.sensitive },
    object.publicArea.nameAlg,
  );
}

/** MarshalSensitive's padding: authValue no shorter than a nameAlg digest (trailing zeros). */
export function padAuth(sensitive: TPMT_SENSITIVE, nameAlg: number): TPMT_SENSITIVE {
  const auth = sensitive.authValue;
  const digestSize = hashInfo(nameAlg)?.digestSize ?? auth.length;
  if (auth.length >= digestSize) return sensitive;
  const authValue = new Uint8Array(digestSize);
  authValue.set(auth);
  return { ...sensitive, authValue };
}

function deriveIntegrityKey(nameAlg: number, seed: Uint8Array): Uint8Array {
  return kdfa(nameAlg, seed, 'INTEGRITY', EMPTY, EMPTY, hashInfo(nameAlg)!.digestSize * 8);
}

function integrityOf(p: Protector, name: Uint8Array, body: Uint8Array): Uint8Array {
  return hmac(p.nameAlg, p.integrityKey ?? deriveIntegrityKey(p.nameAlg, p.seed), body, name);
}

const symKeyOf = (p: Protector, name: Uint8Array): Uint8Array => kdfa(p.nameAlg, p.seed, 'STORAGE', name, EMPTY, p.symKeyBits);

/** CFB without an IV starts from a zero block (the reference's NULL iv). */
export const ZERO_IV = new Uint8Array(MAX_SYM_BLOCK_SIZE);

/**
 * ProduceOuterWrap: TPM2B_DIGEST integrity || [TPM2B_IV iv] || AES-CFB(symKey, iv or 0, data),
 * the integrity an HMAC over everything after it and the Name. `iv` (fresh randomness) only
 * for protected storage; credentials and duplicates have none.
 */
export function produceOuterWrap(p: Protector, name: Uint8Array, data: Uint8Array, iv?: Uint8Array): Uint8Array {
  const key = symKeyOf(p, name);
  const encrypted = aesCfbEncrypt(key, iv ?? ZERO_IV, data);
  key.fill(0);
  const body = iv ? concatBytes(encode(TPM2B_IV, iv), encrypted) : encrypted;
  return concatBytes(encode(TPM2B_DIGEST, integrityOf(p, name, body)), body);
}

/**
 * UnwrapOuter: checks the integrity and returns the decrypted data. RCs without a position:
 * unmarshalling codes of the integrity or IV, TPM_RC_INTEGRITY (a wrong protector or seed, a
 * wrong Name, any changed byte), TPM_RC_VALUE (an IV that is not one AES block).
 */
export function unwrapOuter(p: Protector, name: Uint8Array, blob: Uint8Array, useIV: boolean): Uint8Array {
  const r = new Reader(blob);
  const integrity = TPM2B_DIGEST.read(r);
  if (!constantTimeEqual(integrityOf(p, name, blob.subarray(r.pos)), integrity)) throw new TpmError(TPM_RC.INTEGRITY);
  let iv: Uint8Array = ZERO_IV;
  if (useIV) {
    iv = TPM2B_IV.read(r);
    if (iv.length !== MAX_SYM_BLOCK_SIZE) throw new TpmError(TPM_RC.VALUE);
  }
  const key = symKeyOf(p, name);
  const plain = aesCfbDecrypt(key, iv, blob.subarray(r.pos));
  key.fill(0);
  return plain;
}

/** UINT16 size || TPMT_SENSITIVE, the sensitive area as both wraps enclose it. */
export function marshalSensitive(sensitive: TPMT_SENSITIVE): Uint8Array {
  const inner = encode(TPMT_SENSITIVE, sensitive);
  const out = concatBytes(new Uint8Array([inner.length >> 8, inner.length & 0xff]), inner);
  inner.fill(0);
  return out;
}

/** SensitiveToPrivate: wraps a sensitive area for its parent. `iv` is fresh randomness. */
export function sensitiveToPrivate(sensitive: TPMT_SENSITIVE, name: Uint8Array, p: Protector, iv: Uint8Array): Uint8Array {
  const plain = marshalSensitive(sensitive);
  const out = produceOuterWrap(p, name, plain, iv);
  plain.fill(0);
  return out;
}

/**
 * A loaded parent remembers the last few children it opened: the same TPM2B_PRIVATE with the same
 * Name under the same loaded parent always opens to the same sensitive area (or fails alike), so
 * a client that loads one key again and again (a TSS per operation, tpm2-tools per invocation)
 * skips the STORAGE KDFa, the integrity HMAC and the decryption (most of TPM2_Load's time).
 * Failures are not remembered. The sensitive areas are shared with the objects loaded from them,
 * which never change theirs; they live as long as the parent stays loaded (a persistent parent:
 * the process), as the parent's own seed does.
 */
const openedChildren = new WeakMap<KeyObject, OpenedChild[]>();
const OPENED_PER_PARENT = 4;

interface OpenedChild {
  readonly blob: Uint8Array;
  readonly name: Uint8Array;
  readonly sensitive: TPMT_SENSITIVE;
}

/** privateToSensitive under a loaded parent's protector, remembered per parent (openedChildren). */
export function openChild(parent: KeyObject, blob: Uint8Array, name: Uint8Array): TPMT_SENSITIVE {
  let opened = openedChildren.get(parent);
  const hit = opened?.find((c) => constantTimeEqual(c.blob, blob) && constantTimeEqual(c.name, name));
  if (hit) return hit.sensitive;
  const sensitive = privateToSensitive(blob, name, protectorOf(parent));
  if (opened === undefined) openedChildren.set(parent, (opened = []));
  if (opened.length === OPENED_PER_PARENT) opened.shift();
  opened.push({ blob: blob.slice(), name: name.slice(), sensitive });
  return sensitive;
}

/**
 * PrivateToSensitive: checks and opens a TPM2B_PRIVATE's buffer. RCs without a position (the
 * caller names inPrivate): those of unwrapOuter, and TPM_RC_SENSITIVE (the decrypted area does
 * not parse).
 */
export function privateToSensitive(blob: Uint8Array, name: Uint8Array, p: Protector): TPMT_SENSITIVE {
  const plain = unwrapOuter(p, name, blob, true);
  try {
    if (plain.length < 2 || ((plain[0]! << 8) | plain[1]!) + 2 !== plain.length) throw new TpmError(TPM_RC.SENSITIVE);
    return decode(TPMT_SENSITIVE, plain.subarray(2));
  } catch {
    throw new TpmError(TPM_RC.SENSITIVE);
  } finally {
    plain.fill(0);
  }
}
