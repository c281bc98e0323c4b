/**
 * Part 2 §12 object structures: TPMT_PUBLIC with its parameters and unique field selected by
 * the object type, TPMS_SENSITIVE_CREATE, TPMS_CREATION_DATA and the Name (§12.2, Part 1 §16).
 * Only the object types this TPM implements unmarshal; anything else is TPM_RC_TYPE.
 */
import { ECC_CURVES, MAX_ECC_KEY_BYTES, MAX_RSA_KEY_BYTES, RSA_KEY_BITS } from '../algorithms.js';
import { TPM_ALG, TPM_RC } from '../constants.js';
import { hash } from '../crypto/index.js';
import {
  algorithm,
  bits,
  EMPTY,
  encode,
  Infer,
  oneOf,
  sized,
  struct,
  tpm2b,
  UINT16,
  UINT32,
  UINT64,
  UINT8,
  union,
} from './codec.js';
import { TPM2B_AUTH, TPM2B_DATA, TPM2B_DIGEST, TPML_PCR_SELECTION, TPMT_HA, MAX_SYM_DATA } from './structures.js';
import { TPMI_AES_KEY_BITS, TPMI_ALG_HASH, TPMI_ALG_SYM_MODE, TPMI_RH_HIERARCHY } from './tpmi.js';

/** §8.3 TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
  x509sign: 1 << 19,
} as const;
const TPMA_OBJECT_RESERVED = ~Object.values(TPMA_OBJECT).reduce((a, b) => a | b, 0) >>> 0;

/** The object types that unmarshal (TPMI_ALG_PUBLIC). */
export const OBJECT_TYPES = [TPM_ALG.RSA, TPM_ALG.KEYEDHASH, TPM_ALG.ECC, TPM_ALG.SYMCIPHER] as const;
export const TPMI_ALG_PUBLIC = algorithm(OBJECT_TYPES, TPM_RC.TYPE);

const HASH_DETAIL = struct({ hashAlg: TPMI_ALG_HASH });

/** §11.1.7 TPMT_SYM_DEF_OBJECT: the symmetric algorithm of a storage key or SYMCIPHER object. */
const TPMI_ALG_SYM_OBJECT = algorithm([TPM_ALG.AES], TPM_RC.SYMMETRIC);
export const TPMT_SYM_DEF_OBJECT = struct({
  algorithm: TPMI_ALG_SYM_OBJECT.plus,
  keyBits: union('algorithm', { [TPM_ALG.AES]: TPMI_AES_KEY_BITS, [TPM_ALG.NULL]: EMPTY }),
  mode: union('algorithm', { [TPM_ALG.AES]: TPMI_ALG_SYM_MODE.plus, [TPM_ALG.NULL]: EMPTY }),
});
export type TPMT_SYM_DEF_OBJECT = Infer<typeof TPMT_SYM_DEF_OBJECT>;

/** §11.1.23 TPMT_KEYEDHASH_SCHEME: HMAC or XOR (with its KDF), or NULL. */
const TPMI_ALG_KDF = algorithm([TPM_ALG.KDF1_SP800_108], TPM_RC.KDF);
export const TPMT_KEYEDHASH_SCHEME = struct({
  scheme: algorithm([TPM_ALG.HMAC, TPM_ALG.XOR], TPM_RC.VALUE).plus,
  details: union('scheme', {
    [TPM_ALG.HMAC]: HASH_DETAIL,
    [TPM_ALG.XOR]: struct({ hashAlg: TPMI_ALG_HASH, kdf: TPMI_ALG_KDF }),
    [TPM_ALG.NULL]: EMPTY,
  }),
});

/** §11.2.5.4 TPMT_ECC_SCHEME (the schemes an ECC key may carry). */
const ECC_SCHEMES = [TPM_ALG.ECDSA, TPM_ALG.ECDH, TPM_ALG.ECSCHNORR] as const;
export const TPMT_ECC_SCHEME = struct({
  scheme: algorithm(ECC_SCHEMES, TPM_RC.SCHEME).plus,
  details: union('scheme', {
    [TPM_ALG.ECDSA]: HASH_DETAIL,
    [TPM_ALG.ECDH]: HASH_DETAIL,
    [TPM_ALG.ECSCHNORR]: HASH_DETAIL,
    [TPM_ALG.NULL]: EMPTY,
  }),
});

/**
 * §11.2.4.2 TPMT_RSA_SCHEME (an RSA key's scheme) and §11.2.4.4 TPMT_RSA_DECRYPT (the scheme
 * of RSA_Encrypt/RSA_Decrypt). Both selectors answer TPM_RC_VALUE, as in libtpms; RSAES has no
 * details, the others a hash (TPM_RC_HASH when it is not one).
 */
const RSA_SCHEME_DETAILS = {
  [TPM_ALG.RSASSA]: HASH_DETAIL,
  [TPM_ALG.RSAPSS]: HASH_DETAIL,
  [TPM_ALG.RSAES]: EMPTY,
  [TPM_ALG.OAEP]: HASH_DETAIL,
  [TPM_ALG.NULL]: EMPTY,
};
export const TPMT_RSA_SCHEME = struct({
  scheme: algorithm([TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.RSAES, TPM_ALG.OAEP], TPM_RC.VALUE).plus,
  details: union('scheme', RSA_SCHEME_DETAILS),
});
export const TPMT_RSA_DECRYPT = struct({
  scheme: algorithm([TPM_ALG.RSAES, TPM_ALG.OAEP], TPM_RC.VALUE).plus,
  details: union('scheme', RSA_SCHEME_DETAILS),
});
export type TPMT_RSA_DECRYPT = Infer<typeof TPMT_RSA_DECRYPT>;

/** §11.2.4.5 TPM2B_PUBLIC_KEY_RSA: the modulus, or a value encrypted or signed with it. */
export const TPM2B_PUBLIC_KEY_RSA = tpm2b(MAX_RSA_KEY_BYTES);

/** §11.2.3 TPMT_KDF_SCHEME. */
export const TPMT_KDF_SCHEME = struct({
  scheme: TPMI_ALG_KDF.plus,
  details: union('scheme', {
    [TPM_ALG.KDF1_SP800_108]: HASH_DETAIL,
    [TPM_ALG.NULL]: EMPTY,
  }),
});

/** §11.2.5.1 TPM2B_ECC_PARAMETER and §11.2.5.2 TPMS_ECC_POINT. */
export const TPM2B_ECC_PARAMETER = tpm2b(MAX_ECC_KEY_BYTES);
export const TPMS_ECC_POINT = struct({ x: TPM2B_ECC_PARAMETER, y: TPM2B_ECC_PARAMETER });
export type TPMS_ECC_POINT = Infer<typeof TPMS_ECC_POINT>;
/** §11.2.5.3 TPM2B_ECC_POINT: a point in a size-prefixed envelope (an empty one is TPM_RC_SIZE). */
export const TPM2B_ECC_POINT = sized(TPMS_ECC_POINT);

/**
 * §11.2.5.7 TPMS_ALGORITHM_DETAIL_ECC (ECC_Parameters' answer, written only). A curve's KDF is
 * one of SP 800-56A's, a scheme no object may carry, hence its own selector here.
 */
const CURVE_KDF_SCHEME = struct({
  scheme: UINT16,
  details: union('scheme', { [TPM_ALG.KDF1_SP800_56A]: HASH_DETAIL, [TPM_ALG.KDF1_SP800_108]: HASH_DETAIL, [TPM_ALG.NULL]: EMPTY }),
});
export const TPMS_ALGORITHM_DETAIL_ECC = struct({
  curveID: UINT16,
  keySize: UINT16,
  kdf: CURVE_KDF_SCHEME,
  sign: TPMT_ECC_SCHEME,
  p: TPM2B_ECC_PARAMETER,
  a: TPM2B_ECC_PARAMETER,
  b: TPM2B_ECC_PARAMETER,
  gX: TPM2B_ECC_PARAMETER,
  gY: TPM2B_ECC_PARAMETER,
  n: TPM2B_ECC_PARAMETER,
  h: TPM2B_ECC_PARAMETER,
});

/**
 * §11.2.1.5 TPMT_SIG_SCHEME (the scheme Sign is asked for): the signing schemes this TPM
 * implements, each with its hash; another selector is TPM_RC_SCHEME.
 */
export const SIG_SCHEMES = [TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.ECDSA, TPM_ALG.ECSCHNORR, TPM_ALG.HMAC] as const;
export const TPMT_SIG_SCHEME = struct({
  scheme: algorithm(SIG_SCHEMES, TPM_RC.SCHEME).plus,
  details: union('scheme', {
    [TPM_ALG.RSASSA]: HASH_DETAIL,
    [TPM_ALG.RSAPSS]: HASH_DETAIL,
    [TPM_ALG.ECDSA]: HASH_DETAIL,
    [TPM_ALG.ECSCHNORR]: HASH_DETAIL,
    [TPM_ALG.HMAC]: HASH_DETAIL,
    [TPM_ALG.NULL]: EMPTY,
  }),
});
export type TPMT_SIG_SCHEME = Infer<typeof TPMT_SIG_SCHEME>;

/** §11.3.1 TPMS_SIGNATURE_RSA (RSASSA and RSAPSS) and §11.3.2 TPMS_SIGNATURE_ECC (ECDSA, ECSCHNORR). */
export const TPMS_SIGNATURE_RSA = struct({ hash: TPMI_ALG_HASH, sig: TPM2B_PUBLIC_KEY_RSA });
export const TPMS_SIGNATURE_ECC = struct({ hash: TPMI_ALG_HASH, signatureR: TPM2B_ECC_PARAMETER, signatureS: TPM2B_ECC_PARAMETER });

/** §11.3.4 TPMT_SIGNATURE: selected by sigAlg; HMAC carries a TPMT_HA; NULL carries nothing. */
export const TPMT_SIGNATURE = struct({
  sigAlg: algorithm(SIG_SCHEMES, TPM_RC.SCHEME).plus,
  signature: union('sigAlg', {
    [TPM_ALG.RSASSA]: TPMS_SIGNATURE_RSA,
    [TPM_ALG.RSAPSS]: TPMS_SIGNATURE_RSA,
    [TPM_ALG.ECDSA]: TPMS_SIGNATURE_ECC,
    [TPM_ALG.ECSCHNORR]: TPMS_SIGNATURE_ECC,
    [TPM_ALG.HMAC]: TPMT_HA,
    [TPM_ALG.NULL]: EMPTY,
  }),
});
export type TPMT_SIGNATURE = Infer<typeof TPMT_SIGNATURE>;

/** §12.2.3 TPMU_PUBLIC_PARMS arms. TPMI_RSA_KEY_BITS outside the list is TPM_RC_VALUE. */
export const TPMS_RSA_PARMS = struct({
  symmetric: TPMT_SYM_DEF_OBJECT,
  scheme: TPMT_RSA_SCHEME,
  keyBits: oneOf(UINT16, RSA_KEY_BITS, TPM_RC.VALUE, undefined, 'rsaKeyBits'),
  /** 0 means 2^16 + 1 (§12.2.3.5). */
  exponent: UINT32,
});
export type TPMS_RSA_PARMS = Infer<typeof TPMS_RSA_PARMS>;
export const TPMS_KEYEDHASH_PARMS = struct({ scheme: TPMT_KEYEDHASH_SCHEME });
export const TPMS_SYMCIPHER_PARMS = struct({ sym: TPMT_SYM_DEF_OBJECT });
export const TPMS_ECC_PARMS = struct({
  symmetric: TPMT_SYM_DEF_OBJECT,
  scheme: TPMT_ECC_SCHEME,
  curveID: oneOf(UINT16, ECC_CURVES.map((c) => c.curve), TPM_RC.CURVE, undefined, 'curve'),
  kdf: TPMT_KDF_SCHEME,
});

/** §12.2.3.7 TPMU_PUBLIC_PARMS, selected by the object type. */
const PUBLIC_PARMS = {
  [TPM_ALG.RSA]: TPMS_RSA_PARMS,
  [TPM_ALG.KEYEDHASH]: TPMS_KEYEDHASH_PARMS,
  [TPM_ALG.SYMCIPHER]: TPMS_SYMCIPHER_PARMS,
  [TPM_ALG.ECC]: TPMS_ECC_PARMS,
};
/** §12.2.3.8 TPMT_PUBLIC_PARMS: what TestParms asks about. */
export const TPMT_PUBLIC_PARMS = struct({ type: TPMI_ALG_PUBLIC, parameters: union('type', PUBLIC_PARMS) });

/** §12.2.4 TPMT_PUBLIC. */
export const TPMT_PUBLIC = struct({
  type: TPMI_ALG_PUBLIC,
  nameAlg: TPMI_ALG_HASH.plus,
  objectAttributes: bits(UINT32, TPMA_OBJECT_RESERVED),
  authPolicy: TPM2B_DIGEST,
  parameters: union('type', PUBLIC_PARMS),
  unique: union('type', {
    [TPM_ALG.RSA]: TPM2B_PUBLIC_KEY_RSA,
    [TPM_ALG.KEYEDHASH]: TPM2B_DIGEST,
    [TPM_ALG.SYMCIPHER]: TPM2B_DIGEST,
    [TPM_ALG.ECC]: TPMS_ECC_POINT,
  }),
});
export type TPMT_PUBLIC = Infer<typeof TPMT_PUBLIC>;

/** §12.2.5 TPM2B_PUBLIC. */
export const TPM2B_PUBLIC = sized(TPMT_PUBLIC);

/** §12.1.16 TPMS_SENSITIVE_CREATE and §12.1.17 TPM2B_SENSITIVE_CREATE. */
export const TPM2B_SENSITIVE_DATA_CREATE = tpm2b(MAX_SYM_DATA);
export const TPMS_SENSITIVE_CREATE = struct({ userAuth: TPM2B_AUTH, data: TPM2B_SENSITIVE_DATA_CREATE });
export const TPM2B_SENSITIVE_CREATE = sized(TPMS_SENSITIVE_CREATE);

/** §10.5.3 TPM2B_NAME: a digest with its algorithm, or a handle. */
export const TPM2B_NAME = tpm2b(2 + 64);

/** §15.1 TPMS_CREATION_DATA. */
export const TPMS_CREATION_DATA = struct({
  pcrSelect: TPML_PCR_SELECTION,
  pcrDigest: TPM2B_DIGEST,
  locality: UINT8,
  parentNameAlg: UINT16,
  parentName: TPM2B_NAME,
  parentQualifiedName: TPM2B_NAME,
  outsideInfo: TPM2B_DATA,
});
export type TPMS_CREATION_DATA = Infer<typeof TPMS_CREATION_DATA>;
export const TPM2B_CREATION_DATA = sized(TPMS_CREATION_DATA);

/** §10.7.3 TPMT_TK_CREATION. */
export const TPMT_TK_CREATION = struct({
  tag: oneOf(UINT16, [0x8021], TPM_RC.TAG),
  hierarchy: TPMI_RH_HIERARCHY.plus,
  digest: TPM2B_DIGEST,
});

/**
 * Part 1 §16: the Name of an object is nameAlg || H_nameAlg(TPMT_PUBLIC); with nameAlg NULL it
 * is the Empty Buffer.
 */
export function objectName(publicArea: TPMT_PUBLIC): Uint8Array {
  if (publicArea.nameAlg === TPM_ALG.NULL) return new Uint8Array(0);
  const digest = hash(publicArea.nameAlg, encode(TPMT_PUBLIC, publicArea));
  const name = new Uint8Array(2 + digest.length);
  name[0] = publicArea.nameAlg >> 8;
  name[1] = publicArea.nameAlg & 0xff;
  name.set(digest, 2);
  return name;
}

/** §14.5 TPMS_CONTEXT; the blob (TPM2B_CONTEXT_DATA) is opaque to the client. */
export const MAX_CONTEXT_SIZE = 2680;
export const TPMS_CONTEXT = struct({
  sequence: UINT64,
  savedHandle: UINT32,
  hierarchy: TPMI_RH_HIERARCHY.plus,
  contextBlob: tpm2b(MAX_CONTEXT_SIZE),
});
export type TPMS_CONTEXT = Infer<typeof TPMS_CONTEXT>;
