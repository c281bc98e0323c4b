/**
 * Part 3 §13 Duplication Commands: TPM2_Duplicate, TPM2_Rewrap and TPM2_Import. A duplicate
 * leaves one TPM in an optional inner wrapper (a symmetric key the caller keeps) and an optional
 * outer wrapper (a seed shared with the new parent, label "DUPLICATE"); Import opens both under
 * a parent of the receiving TPM and returns an ordinary TPM2B_PRIVATE. Blob layout in
 * exchange-blobs.ts; checks in the reference's order, so faults get the codes swtpm gives.
 */
import { secretDecrypt, secretEncrypt } from '../auth/secret.js';
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../constants.js';
import { atPosition, TpmError } from '../errors.js';
import { objectName, TPM2B_NAME, TPM2B_PUBLIC, TPMA_OBJECT, TPMT_SYM_DEF_OBJECT } from '../marshal/objects.js';
import { MAX_PRIVATE_SIZE, MAX_SYM_BLOCK_SIZE, TPM2B_PRIVATE } from '../marshal/sensitive.js';
import { TPM2B_DATA, TPM2B_ENCRYPTED_SECRET } from '../marshal/structures.js';
import { TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import { isStorageParent, type KeyObject } from '../state/objects.js';
import type { Tpm } from '../tpm.js';
import { hashInfo } from '../algorithms.js';
import { duplicateToSensitive, innerKeyBytes, sensitiveToDuplicate } from './exchange-blobs.js';
import { loadChecks } from './object-load.js';
import { padAuth, produceOuterWrap, protectorOf, sensitiveOf, sensitiveToPrivate, unwrapOuter } from './object-private.js';

const has = (attributes: number, bit: number): boolean => (attributes & bit) !== 0;

/**
 * The reference's ObjectIsStorage: an RSA or ECC restricted decryption key that does not sign.
 * Its public part suffices (a new parent is usually loaded with LoadExternal).
 */
function storageKey(tpm: Tpm, handle: number): KeyObject | undefined {
  const object = tpm.keyObject(handle);
  if (!object) return undefined;
  const { type, objectAttributes: a } = object.publicArea;
  const ok = has(a, TPMA_OBJECT.restricted) && has(a, TPMA_OBJECT.decrypt) && !has(a, TPMA_OBJECT.sign) &&
    (type === TPM_ALG.RSA || type === TPM_ALG.ECC);
  return ok ? object : undefined;
}

/**
 * Part 3 §13.1 TPM2_Duplicate (DUP role: a policy session with PolicyCommandCode(Duplicate) or
 * PolicyDuplicationSelect). RCs: TPM_RC_ATTRIBUTES+H1 (fixedParent), TPM_RC_TYPE+H1 (NULL
 * nameAlg), TPM_RC_TYPE+H2 (newParent neither a storage key nor TPM_RH_NULL), with
 * encryptedDuplication TPM_RC_SYMMETRIC+P2 (no inner wrapper) and TPM_RC_HIERARCHY+H2 (no
 * outer wrapper), TPM_RC_SIZE+P1 (encryptionKeyIn not of the symmetric key's size, or given
 * without one), the secret's codes (TPM_RC_KEY, TPM_RC_VALUE) without a position.
 */
export const Duplicate = command({
  code: TPM_CC.Duplicate,
  handles: [
    { name: 'objectHandle', type: TPMI_DH_OBJECT, auth: 'DUP' },
    { name: 'newParentHandle', type: TPMI_DH_OBJECT.plus },
  ],
  params: { encryptionKeyIn: TPM2B_DATA, symmetricAlg: TPMT_SYM_DEF_OBJECT },
  response: { encryptionKeyOut: TPM2B_DATA, duplicate: TPM2B_PRIVATE, outSymSeed: TPM2B_ENCRYPTED_SECRET },
  run(tpm, { objectHandle, newParentHandle }, { encryptionKeyIn, symmetricAlg }) {
    const object = tpm.keyObject(objectHandle);
    if (!object) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
    const a = object.publicArea.objectAttributes;
    if (has(a, TPMA_OBJECT.fixedParent)) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    if (object.publicArea.nameAlg === TPM_ALG.NULL) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
    const toNull = newParentHandle === TPM_RH.NULL;
    const newParent = toNull ? undefined : storageKey(tpm, newParentHandle);
    if (!toNull && !newParent) throw new TpmError(TPM_RC.TYPE, { handle: 2 });
    const inner = symmetricAlg.algorithm !== TPM_ALG.NULL;
    if (has(a, TPMA_OBJECT.encryptedDuplication)) {
      if (!inner) throw new TpmError(TPM_RC.SYMMETRIC, { param: 2 });
      if (toNull) throw new TpmError(TPM_RC.HIERARCHY, { handle: 2 });
    }
    const keyBytes = inner ? innerKeyBytes(symmetricAlg.keyBits as number) : 0;
    if (encryptionKeyIn.length !== 0 && encryptionKeyIn.length !== keyBytes) throw new TpmError(TPM_RC.SIZE, { param: 1 });

    const shared = newParent ? secretEncrypt(newParent, 'DUPLICATE', (n) => tpm.random(n)) : null;
    const innerKey = !inner ? null : encryptionKeyIn.length > 0 ? encryptionKeyIn : tpm.random(keyBytes);
    const duplicate = sensitiveToDuplicate(sensitiveOf(object), object.name, object.publicArea.nameAlg, {
      outer: shared ? protectorOf(newParent!, shared.seed) : null,
      innerKey,
    });
    shared?.seed.fill(0);
    // The key goes back only when the TPM chose it.
    const encryptionKeyOut = inner && encryptionKeyIn.length === 0 ? innerKey! : new Uint8Array(0);
    return { encryptionKeyOut, duplicate, outSymSeed: shared?.secret ?? new Uint8Array(0) };
  },
});

/**
 * Part 3 §13.2 TPM2_Rewrap: moves a duplicate's outer wrapper from oldParent to newParent (this
 * TPM acting as a migration authority); the inner wrapper stays as it is. RCs:
 * TPM_RC_HANDLE+H1 (inSymSeed given without oldParent or missing with it), TPM_RC_TYPE+H1/H2
 * (not a storage key), TPM_RC_VALUE+P3 (inSymSeed does not decrypt), TPM_RC_INTEGRITY+P1 and
 * unmarshalling codes +P1, TPM_RC_VALUE+P1 (no room for the new outer integrity), the secret's
 * codes without a position.
 */
export const Rewrap = command({
  code: TPM_CC.Rewrap,
  handles: [
    { name: 'oldParent', type: TPMI_DH_OBJECT.plus, auth: 'USER' },
    { name: 'newParent', type: TPMI_DH_OBJECT.plus },
  ],
  params: { inDuplicate: TPM2B_PRIVATE, name: TPM2B_NAME, inSymSeed: TPM2B_ENCRYPTED_SECRET },
  response: { outDuplicate: TPM2B_PRIVATE, outSymSeed: TPM2B_ENCRYPTED_SECRET },
  run(tpm, { oldParent: oldHandle, newParent: newHandle }, { inDuplicate, name, inSymSeed }) {
    if ((inSymSeed.length === 0) !== (oldHandle === TPM_RH.NULL)) throw new TpmError(TPM_RC.HANDLE, { handle: 1 });
    let inner = inDuplicate;
    if (oldHandle !== TPM_RH.NULL) {
      const oldParent = storageKey(tpm, oldHandle);
      if (!oldParent) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
      let seed: Uint8Array;
      try {
        if (oldParent.sensitive.length === 0) throw new TpmError(TPM_RC.KEY);
        seed = secretDecrypt(oldParent, 'DUPLICATE', inSymSeed, tpm.rsaCache);
      } catch (e) {
        if (e instanceof TpmError) throw new TpmError(TPM_RC.VALUE, { param: 3 });
        throw e;
      }
      inner = atPosition({ param: 1 }, () => unwrapOuter(protectorOf(oldParent, seed), name, inDuplicate, false));
      seed.fill(0);
    }
    if (newHandle === TPM_RH.NULL) return { outDuplicate: inner, outSymSeed: new Uint8Array(0) };
    const newParent = storageKey(tpm, newHandle);
    if (!newParent) throw new TpmError(TPM_RC.TYPE, { handle: 2 });
    const { seed, secret } = secretEncrypt(newParent, 'DUPLICATE', (n) => tpm.random(n));
    if (inner.length + 2 + hashInfo(newParent.publicArea.nameAlg)!.digestSize > MAX_PRIVATE_SIZE) {
      throw new TpmError(TPM_RC.VALUE, { param: 1 });
    }
    const outDuplicate = produceOuterWrap(protectorOf(newParent, seed), name, inner);
    seed.fill(0);
    return { outDuplicate, outSymSeed: secret };
  },
});

/**
 * Part 3 §13.3 TPM2_Import: a duplicate (or an object made outside any TPM) opened under
 * parentHandle and returned as that parent's TPM2B_PRIVATE. RCs in the reference's order:
 * TPM_RC_ATTRIBUTES+P2 (fixedTPM or fixedParent), TPM_RC_TYPE+H1 (not a parent),
 * TPM_RC_SIZE+P1 (encryptionKey not of symmetricAlg's key size), TPM_RC_ATTRIBUTES+P1/P4
 * (encryptedDuplication without an inner/outer wrapper), TPM_RC_TYPE+H1 (an outer wrapper for
 * a symmetric parent), the secret's codes +P4, TPM_RC_HASH+P2 (NULL nameAlg),
 * TPM_RC_INTEGRITY/SIZE/unmarshalling codes +P3, and under a fixedTPM parent the checks of a
 * load (attributes, schemes and key binding, +P2/+P3 or TPM_RC_BINDING).
 */
export const Import = command({
  code: TPM_CC.Import,
  handles: [{ name: 'parentHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: {
    encryptionKey: TPM2B_DATA,
    objectPublic: TPM2B_PUBLIC,
    duplicate: TPM2B_PRIVATE,
    inSymSeed: TPM2B_ENCRYPTED_SECRET,
    symmetricAlg: TPMT_SYM_DEF_OBJECT,
  },
  response: { outPrivate: TPM2B_PRIVATE },
  run(tpm, { parentHandle }, { encryptionKey, objectPublic, duplicate, inSymSeed, symmetricAlg }) {
    const a = objectPublic.objectAttributes;
    if (has(a, TPMA_OBJECT.fixedTPM) || has(a, TPMA_OBJECT.fixedParent)) throw new TpmError(TPM_RC.ATTRIBUTES, { param: 2 });
    const parent = tpm.keyObject(parentHandle);
    if (!parent || !isStorageParent(parent)) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
    const inner = symmetricAlg.algorithm !== TPM_ALG.NULL;
    if (inner) {
      if (encryptionKey.length !== innerKeyBytes(symmetricAlg.keyBits as number)) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    } else {
      if (encryptionKey.length !== 0) throw new TpmError(TPM_RC.SIZE, { param: 1 });
      if (has(a, TPMA_OBJECT.encryptedDuplication)) throw new TpmError(TPM_RC.ATTRIBUTES, { param: 1 });
    }
    let seed: Uint8Array | null = null;
    if (inSymSeed.length !== 0) {
      if (parent.publicArea.type === TPM_ALG.SYMCIPHER) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
      seed = atPosition({ param: 4 }, () => secretDecrypt(parent, 'DUPLICATE', inSymSeed, tpm.rsaCache));
    } else if (has(a, TPMA_OBJECT.encryptedDuplication)) {
      throw new TpmError(TPM_RC.ATTRIBUTES, { param: 4 });
    }
    const name = objectName(objectPublic);
    if (name.length === 0) throw new TpmError(TPM_RC.HASH, { param: 2 });
    const sensitive = atPosition({ param: 3 }, () =>
      duplicateToSensitive(duplicate, name, objectPublic.nameAlg, {
        outer: seed ? protectorOf(parent, seed) : null,
        innerKey: inner ? encryptionKey : null,
      }),
    );
    seed?.fill(0);
    if (has(parent.publicArea.objectAttributes, TPMA_OBJECT.fixedTPM)) {
      // Checked as a load would, so that Load under this fixedTPM parent can trust it.
      loadChecks(null, objectPublic, sensitive, true, { pub: 2, priv: 3 });
      if (objectPublic.type === TPM_ALG.RSA) {
        const rsa = objectPublic as typeof objectPublic & { parameters: { exponent: number }; unique: Uint8Array };
        tpm.rsaCache.privateKey({ n: rsa.unique, exponent: rsa.parameters.exponent, p: sensitive.sensitive });
      }
    }
    const outPrivate = sensitiveToPrivate(padAuth(sensitive, objectPublic.nameAlg), name, protectorOf(parent), tpm.random(MAX_SYM_BLOCK_SIZE));
    return { outPrivate };
  },
});
