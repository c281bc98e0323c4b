/**
 * Part 3 §12 Object Commands that make and load objects: TPM2_Create, TPM2_Load,
 * TPM2_LoadExternal and TPM2_CreateLoaded. Checks run in the reference's order, so a command
 * with several faults gets the response code swtpm gives.
 */
import { command } from '../command.js';
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_CC, TPM_HT, TPM_RC, TPM_RH } from '../constants.js';
import { hash } from '../crypto/index.js';
import { atPosition, TpmError } from '../errors.js';
import { bits, decode, encode, struct, tpm2b, UINT32, union } from '../marshal/codec.js';
import {
  objectName,
  TPM2B_CREATION_DATA,
  TPM2B_NAME,
  TPM2B_PUBLIC,
  TPM2B_SENSITIVE_CREATE,
  TPMA_OBJECT,
  TPMS_CREATION_DATA,
  TPMT_PUBLIC,
  TPMI_ALG_PUBLIC,
  TPMS_ECC_PARMS,
  TPMS_KEYEDHASH_PARMS,
  TPMS_SYMCIPHER_PARMS,
  TPMT_TK_CREATION,
} from '../marshal/objects.js';
import { TPM2B_PRIVATE, TPM2B_SENSITIVE } from '../marshal/sensitive.js';
import { TPM2B_DATA, TPM2B_DIGEST, TPML_PCR_SELECTION } from '../marshal/structures.js';
import { TPMI_ALG_HASH, TPMI_DH_OBJECT, TPMI_DH_PARENT, TPMI_RH_HIERARCHY } from '../marshal/tpmi.js';
import { trimTrailingZeros } from '../state/auth-value.js';
import { inherited, isDerivationParent, isStorageParent, MAX_LOADED_OBJECTS, type KeyObject } from '../state/objects.js';
import type { Tpm } from '../tpm.js';
import { creationData } from './hierarchy.js';
import { createChecks, publicAttributesValidation } from './object-checks.js';
import { createOrdinary, deriveObject, derivePrimary, qualifiedNameOf } from './object-create.js';
import { loadChecks } from './object-load.js';
import { openChild, protectorOf, sensitiveOf, sensitiveToPrivate } from './object-private.js';
import { creationTicket } from './tickets.js';

const IV_BYTES = 16;

/** The storage parent at a handle the engine has checked exists; TPM_RC_TYPE+H1 for anything else. */
function storageParent(tpm: Tpm, handle: number): KeyObject {
  const parent = tpm.keyObject(handle);
  if (!parent || !isStorageParent(parent)) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
  return parent;
}

const slotFree = (tpm: Tpm): boolean => tpm.objects.count < MAX_LOADED_OBJECTS;

/** An ordinary object under `parent`, with its private wrapped for that parent. */
function createUnder(tpm: Tpm, parent: KeyObject, inPublic: TPMT_PUBLIC, inSensitive: { userAuth: Uint8Array; data: Uint8Array }, publicParam: number) {
  atPosition({ param: publicParam }, () => createChecks(parent.publicArea, inPublic, inSensitive.data.length));
  if (trimTrailingZeros(inSensitive.userAuth).length > hashDigestSize(inPublic.nameAlg)) throw new TpmError(TPM_RC.SIZE, { param: 1 });
  const object = createOrdinary(parent, inPublic, inSensitive, (n) => tpm.random(n));
  const outPrivate = sensitiveToPrivate(sensitiveOf(object), object.name, protectorOf(parent), tpm.random(IV_BYTES));
  return { object, outPrivate };
}

const hashDigestSize = (alg: number): number => hashInfo(alg)!.digestSize;

/**
 * Part 3 §12.1 TPM2_Create: an ordinary object under a loaded storage parent, returned wrapped
 * (not loaded). Keys are drawn from the RNG. RCs: TPM_RC_TYPE+H1 (the parent is not a
 * restricted decryption key with a sensitive area), TPM_RC_OBJECT_MEMORY (the reference wants a
 * free slot to build the object in), template faults +P2, TPM_RC_SIZE+P1 (userAuth),
 * TPM_RC_KEY_SIZE/TPM_RC_SIZE (supplied key or data of the wrong size; no position).
 */
export const Create = command({
  code: TPM_CC.Create,
  handles: [{ name: 'parentHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: {
    inSensitive: TPM2B_SENSITIVE_CREATE,
    inPublic: TPM2B_PUBLIC,
    outsideInfo: TPM2B_DATA,
    creationPCR: TPML_PCR_SELECTION,
  },
  response: {
    outPrivate: TPM2B_PRIVATE,
    outPublic: TPM2B_PUBLIC,
    creationData: TPM2B_CREATION_DATA,
    creationHash: TPM2B_DIGEST,
    creationTicket: TPMT_TK_CREATION,
  },
  run(tpm, { parentHandle }, { inSensitive, inPublic, outsideInfo, creationPCR }) {
    const parent = storageParent(tpm, parentHandle);
    if (!slotFree(tpm)) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    const { object, outPrivate } = createUnder(tpm, parent, inPublic, inSensitive, 2);
    const data = creationData(
      tpm,
      inPublic.nameAlg,
      { nameAlg: parent.publicArea.nameAlg, name: parent.name, qualifiedName: parent.qualifiedName },
      creationPCR,
      outsideInfo,
    );
    const creationHash = hash(inPublic.nameAlg, encode(TPMS_CREATION_DATA, data));
    return {
      outPrivate,
      outPublic: object.publicArea,
      creationData: data,
      creationHash,
      creationTicket: creationTicket(tpm, parent.hierarchy, object.name, creationHash),
    };
  },
});

/**
 * Part 3 §12.2 TPM2_Load: checks and opens a private area under its parent and loads the
 * object. RCs: TPM_RC_OBJECT_MEMORY, TPM_RC_SIZE+P1 (empty private), TPM_RC_TYPE+H1 (not a
 * storage parent), TPM_RC_HASH+P2 (nameAlg NULL), TPM_RC_INTEGRITY+P1 (a changed byte, another
 * parent, another public area), TPM_RC_SENSITIVE, attribute and key checks as at creation.
 */
export const Load = command({
  code: TPM_CC.Load,
  handles: [{ name: 'parentHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { inPrivate: TPM2B_PRIVATE, inPublic: TPM2B_PUBLIC },
  response: { objectHandle: UINT32, name: TPM2B_NAME },
  responseHandle: 'objectHandle',
  run(tpm, { parentHandle }, { inPrivate, inPublic }) {
    if (!slotFree(tpm)) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    if (inPrivate.length === 0) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    const parent = storageParent(tpm, parentHandle);
    const name = objectName(inPublic);
    if (name.length === 0) throw new TpmError(TPM_RC.HASH, { param: 2 });
    const sensitive = atPosition({ param: 1 }, () => openChild(parent, inPrivate, name));
    const parentFixedTpm = (parent.publicArea.objectAttributes & TPMA_OBJECT.fixedTPM) !== 0;
    loadChecks(parent.publicArea, inPublic, sensitive, !parentFixedTpm, { pub: 2, priv: 1 });
    const object: KeyObject = {
      kind: 'key',
      publicArea: inPublic,
      name,
      qualifiedName: qualifiedNameOf(inPublic.nameAlg, parent.qualifiedName, name),
      auth: trimTrailingZeros(sensitive.authValue).slice(),
      sensitive: sensitive.sensitive,
      seedValue: sensitive.seedValue,
      hierarchy: parent.hierarchy,
      ...inherited(parent),
    };
    return { objectHandle: tpm.objects.add(object), name };
  },
});

/**
 * Part 3 §12.3 TPM2_LoadExternal: a public key in any hierarchy, or a key with its sensitive area
 * in the NULL hierarchy (where it cannot pass for one this TPM made). RCs: TPM_RC_OBJECT_MEMORY,
 * TPM_RC_HIERARCHY+P3 (a sensitive area outside NULL), TPM_RC_ATTRIBUTES+P2 (fixedTPM,
 * fixedParent or restricted with a sensitive area), scheme and key checks (TPM_RC_KEY+P2,
 * TPM_RC_ECC_POINT+P2, TPM_RC_BINDING...).
 */
export const LoadExternal = command({
  code: TPM_CC.LoadExternal,
  handles: [],
  params: { inPrivate: TPM2B_SENSITIVE, inPublic: TPM2B_PUBLIC, hierarchy: TPMI_RH_HIERARCHY.plus },
  response: { objectHandle: UINT32, name: TPM2B_NAME },
  responseHandle: 'objectHandle',
  run(tpm, _h, { inPrivate, inPublic, hierarchy }) {
    if (!slotFree(tpm)) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    if (!tpm.hierarchyEnabled(hierarchy)) throw new TpmError(TPM_RC.HIERARCHY, { param: 3 });
    if (inPrivate) {
      if (hierarchy !== TPM_RH.NULL) throw new TpmError(TPM_RC.HIERARCHY, { param: 3 });
      const a = inPublic.objectAttributes;
      if ((a & (TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.restricted)) !== 0) {
        throw new TpmError(TPM_RC.ATTRIBUTES, { param: 2 });
      }
    }
    const name = objectName(inPublic);
    loadChecks(null, inPublic, inPrivate, true, { pub: 2, priv: 1 });
    const object: KeyObject = {
      kind: 'key',
      publicArea: inPublic,
      name,
      qualifiedName: name,
      auth: inPrivate ? trimTrailingZeros(inPrivate.authValue).slice() : new Uint8Array(0),
      sensitive: inPrivate?.sensitive ?? new Uint8Array(0),
      seedValue: inPrivate?.seedValue ?? new Uint8Array(0),
      hierarchy,
      external: true,
      ...(inPrivate ? {} : { publicOnly: true }),
    };
    return { objectHandle: tpm.objects.add(object), name };
  },
});

/** §12.2.6 TPM2B_TEMPLATE: a marshalled TPMT_PUBLIC (or, for derivation, TPMT_TEMPLATE). */
const TPM2B_TEMPLATE = tpm2b(1024);

/** Part 2 TPMS_DERIVE: a derived object's label and context (TPM2B_LABEL, 32 bytes each). */
const TPM2B_LABEL = tpm2b(32);
const TPMS_DERIVE = struct({ label: TPM2B_LABEL, context: TPM2B_LABEL });
const TPMA_OBJECT_DEFINED = Object.values(TPMA_OBJECT).reduce((a, b) => a | b, 0);

/** A template for a derived object: TPMT_PUBLIC with TPMS_DERIVE where unique would be. */
const TPMT_TEMPLATE_DERIVE = struct({
  type: TPMI_ALG_PUBLIC,
  nameAlg: TPMI_ALG_HASH,
  objectAttributes: bits(UINT32, ~TPMA_OBJECT_DEFINED >>> 0),
  authPolicy: TPM2B_DIGEST,
  parameters: union('type', {
    [TPM_ALG.KEYEDHASH]: TPMS_KEYEDHASH_PARMS,
    [TPM_ALG.SYMCIPHER]: TPMS_SYMCIPHER_PARMS,
    [TPM_ALG.ECC]: TPMS_ECC_PARMS,
  }),
  unique: TPMS_DERIVE,
});

/**
 * CreateLoaded under a derivation parent (the reference's derivation branch). The label and
 * context come from the template, else from inSensitive.data (a TPMS_DERIVE there).
 */
function createDerived(parent: KeyObject, inPublic: Uint8Array, inSensitive: { userAuth: Uint8Array; data: Uint8Array }): KeyObject {
  const t = atPosition({ param: 2 }, () => decode(TPMT_TEMPLATE_DERIVE, inPublic));
  const template = { ...t, unique: (t.type === TPM_ALG.ECC ? { x: new Uint8Array(0), y: new Uint8Array(0) } : new Uint8Array(0)) } as TPMT_PUBLIC;
  if (trimTrailingZeros(inSensitive.userAuth).length > hashDigestSize(template.nameAlg)) throw new TpmError(TPM_RC.SIZE, { param: 1 });
  // A derived object's secret always comes from its parent.
  if ((template.objectAttributes & TPMA_OBJECT.sensitiveDataOrigin) !== 0) throw new TpmError(TPM_RC.ATTRIBUTES);
  atPosition({ param: 2 }, () => publicAttributesValidation(parent.publicArea, template, true));
  let { label, context } = t.unique;
  if (inSensitive.data.length > 0) {
    const fromData = decode(TPMS_DERIVE, inSensitive.data);
    if (label.length === 0) label = fromData.label;
    if (context.length === 0) context = fromData.context;
  }
  return deriveObject(parent, template, inSensitive.userAuth, label, context);
}

/**
 * Part 3 §12.9 TPM2_CreateLoaded: a primary object under a hierarchy (as CreatePrimary, without
 * creation data) or an ordinary object under a storage parent, loaded at once; an ordinary
 * object's private comes back wrapped for its parent; a derived object (under a restricted
 * XOR keyed hash) has no private at all. RCs: TPM_RC_TYPE+H1 (neither kind of parent), TPM_RC_OBJECT_MEMORY, template unmarshalling and checks +P2 (TPM_RC_HASH+P2
 * for a NULL nameAlg), TPM_RC_SIZE+P1 (userAuth).
 */
export const CreateLoaded = command({
  code: TPM_CC.CreateLoaded,
  handles: [{ name: 'parentHandle', type: TPMI_DH_PARENT.plus, auth: 'USER' }],
  params: { inSensitive: TPM2B_SENSITIVE_CREATE, inPublic: TPM2B_TEMPLATE },
  response: { objectHandle: UINT32, outPrivate: TPM2B_PRIVATE, outPublic: TPM2B_PUBLIC, name: TPM2B_NAME },
  responseHandle: 'objectHandle',
  run(tpm, { parentHandle }, { inSensitive, inPublic }) {
    const isHierarchy = parentHandle >>> 24 === TPM_HT.PERMANENT;
    const deriving = isHierarchy ? undefined : tpm.keyObject(parentHandle);
    if (deriving && isDerivationParent(deriving)) {
      if (!slotFree(tpm)) throw new TpmError(TPM_RC.OBJECT_MEMORY);
      const object = createDerived(deriving, inPublic, inSensitive);
      return { objectHandle: tpm.objects.add(object), outPrivate: new Uint8Array(0), outPublic: object.publicArea, name: object.name };
    }
    const parent = isHierarchy ? null : storageParent(tpm, parentHandle);
    if (!slotFree(tpm)) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    const template = atPosition({ param: 2 }, () => {
      const t = decode(TPMT_PUBLIC, inPublic);
      if (t.nameAlg === TPM_ALG.NULL) throw new TpmError(TPM_RC.HASH);
      return t;
    });
    if (trimTrailingZeros(inSensitive.userAuth).length > hashDigestSize(template.nameAlg)) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    if (parent) {
      const { object, outPrivate } = createUnder(tpm, parent, template, inSensitive, 2);
      return { objectHandle: tpm.objects.add(object), outPrivate, outPublic: object.publicArea, name: object.name };
    }
    atPosition({ param: 2 }, () => createChecks(null, template, inSensitive.data.length));
    const object = atPosition({ param: 1 }, () => derivePrimary(parentHandle, tpm.hierarchySeed(parentHandle), template, inSensitive, tpm.rsaCache));
    return { objectHandle: tpm.objects.add(object), outPrivate: new Uint8Array(0), outPublic: object.publicArea, name: object.name };
  },
});
