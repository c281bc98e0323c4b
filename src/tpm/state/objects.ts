/**
 * Transient object slots (Part 1 "Object Memory"). Handles are TRANSIENT + slot index, as in
 * the reference, so a client sees the same handles it sees on swtpm. Issue 2 only loads hash
 * sequences; keys join them later.
 */
import { HR, TPM_ALG, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import type { HashState } from '../crypto/index.js';
import type { TPMT_PUBLIC } from '../marshal/objects.js';

/** libtpms' MAX_LOADED_OBJECTS. */
export const MAX_LOADED_OBJECTS = 3;

export interface HashSequence {
  /** 'hmac' sequences (HMAC_Start) hold one keyed state and never earn a ticket. */
  readonly kind: 'hash' | 'event' | 'hmac';
  /** The sequence's authValue (Part 3 §17.3), trailing zeros removed. */
  readonly auth: Uint8Array;
  /** One state for a hash sequence; one per implemented hash for an event sequence. */
  readonly states: ReadonlyMap<number, HashState>;
  /** Set by the first data block (Part 3 §17.4): the digest may get a ticket only if that block is safe. */
  firstBlockSeen: boolean;
  ticketSafe: boolean;
}

/** A loaded key or data object (Part 1 §23): public area, Name and sensitive part. */
export interface KeyObject {
  readonly kind: 'key';
  readonly publicArea: TPMT_PUBLIC;
  readonly name: Uint8Array;
  readonly qualifiedName: Uint8Array;
  /** The object's authValue, trailing zeros removed. */
  readonly auth: Uint8Array;
  /** The sensitive value: ECC private scalar, symmetric key, HMAC key or sealed data. */
  readonly sensitive: Uint8Array;
  /** TPMT_SENSITIVE.seedValue: obfuscates unique for symmetric objects, protects children of a parent. */
  readonly seedValue: Uint8Array;
  /** The hierarchy the object belongs to (its primary seed's). */
  readonly hierarchy: number;
  /** Loaded without a sensitive area (LoadExternal of a public key): never a parent, never persistent. */
  readonly publicOnly?: boolean;
  /** Loaded with LoadExternal: its QN is its Name, it is never a parent and never persistent. */
  readonly external?: boolean;
  /** An ancestor has stClear: like an stClear object itself, it can never become persistent. */
  readonly stClear?: boolean;
}

/** Whether an object or one of its ancestors has TPMA_OBJECT.stClear (the reference's attributes.stClear). */
export function isStClear(object: KeyObject): boolean {
  return object.stClear === true || (object.publicArea.objectAttributes & ST_CLEAR) !== 0;
}

/** What a child inherits from its parent: the stClear mark. */
export function inherited(parent: KeyObject): { stClear?: true } {
  return isStClear(parent) ? { stClear: true } : {};
}
const ST_CLEAR = 1 << 2;

/** Part 1 §25.3 / the reference's isParent: a restricted decryption key with a sensitive area. */
export function isStorageParent(object: KeyObject): boolean {
  const a = object.publicArea.objectAttributes;
  return (a & RESTRICTED_DECRYPT) === RESTRICTED_DECRYPT && !object.publicOnly && !object.external &&
    object.publicArea.nameAlg !== TPM_ALG.NULL && object.publicArea.type !== TPM_ALG.KEYEDHASH;
}

/** The reference's derivation parent: a restricted decryption keyed hash (its XOR key seeds children). */
export function isDerivationParent(object: KeyObject): boolean {
  const a = object.publicArea.objectAttributes;
  return (a & RESTRICTED_DECRYPT) === RESTRICTED_DECRYPT && !object.publicOnly && !object.external &&
    object.publicArea.nameAlg !== TPM_ALG.NULL && object.publicArea.type === TPM_ALG.KEYEDHASH;
}
const RESTRICTED_DECRYPT = (1 << 16) | (1 << 17);

export type TransientObject = HashSequence | KeyObject;

export class ObjectSlots {
  private readonly slots: (TransientObject | undefined)[] = new Array(MAX_LOADED_OBJECTS);

  /** Loads an object into the first free slot; TPM_RC_OBJECT_MEMORY when none is free. */
  add(object: TransientObject): number {
    const slot = this.slots.findIndex((s) => s === undefined);
    if (slot < 0) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    this.slots[slot] = object;
    return HR.TRANSIENT + slot;
  }

  /** Puts an object at a given slot (restoring saved volatile state); the slot must be free. */
  put(handle: number, object: TransientObject): void {
    const slot = handle - HR.TRANSIENT;
    if (slot < 0 || slot >= MAX_LOADED_OBJECTS || this.slots[slot]) throw new RangeError(`object slot for 0x${handle.toString(16)} is not free`);
    this.slots[slot] = object;
  }

  get(handle: number): TransientObject | undefined {
    const slot = handle - HR.TRANSIENT;
    return slot >= 0 && slot < MAX_LOADED_OBJECTS ? this.slots[slot] : undefined;
  }

  remove(handle: number): void {
    const slot = handle - HR.TRANSIENT;
    if (slot >= 0 && slot < MAX_LOADED_OBJECTS) this.slots[slot] = undefined;
  }

  handles(): number[] {
    const out: number[] = [];
    this.slots.forEach((s, i) => s && out.push(HR.TRANSIENT + i));
    return out;
  }

  get count(): number {
    return this.slots.filter((s) => s !== undefined).length;
  }

  clear(): void {
    this.slots.fill(undefined);
  }
}
