/**
 * Key templates (TPMT_PUBLIC, SHA-256 names) and the small object commands that unit tests build
 * on the in-process engine: CreatePrimary, FlushContext, EvictControl, one TPM property.
 */
import { expect } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE, TPM_RH } from '../../src/tpm/constants.js';
import { encode } from '../../src/tpm/marshal/codec.js';
import { Reader } from '../../src/tpm/marshal/reader.js';
import {
  TPM2B_CREATION_DATA,
  TPM2B_NAME,
  TPM2B_PUBLIC,
  TPMA_OBJECT as A,
  TPMT_TK_CREATION,
  type TPMT_PUBLIC,
} from '../../src/tpm/marshal/objects.js';
import { TPM2B_DIGEST } from '../../src/tpm/marshal/structures.js';
import { be, cat, type TestTpm } from './engine.js';

/** An unrestricted signing key created inside the TPM. */
export const SIGN = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign;
/** A restricted decryption key (a parent) created inside the TPM. */
export const STORAGE = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.decrypt;
export const NO_SYM = { algorithm: TPM_ALG.NULL, keyBits: null, mode: null };
export const AES128_CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
export const NULL_SCHEME = { scheme: TPM_ALG.NULL, details: null };
export type Scheme = { scheme: number; details: { hashAlg: number } | null };
export const ECDSA_SHA256: Scheme = { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } };

export interface EccOptions {
  /** Default NIST P-256. */
  curveID?: number;
  /** Default TPM_ALG_NULL. */
  scheme?: Scheme;
  /** Default TPM_ALG_NULL; a parent's is AES128_CFB. */
  symmetric?: object;
}

export const eccTemplate = (attributes = SIGN, o: EccOptions = {}): TPMT_PUBLIC => ({
  type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: attributes, authPolicy: new Uint8Array(0),
  parameters: { symmetric: o.symmetric ?? NO_SYM, scheme: o.scheme ?? NULL_SCHEME, curveID: o.curveID ?? TPM_ECC_CURVE.NIST_P256, kdf: NULL_SCHEME },
  unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
}) as TPMT_PUBLIC;

/** RSA 2048, default exponent. */
export const rsaTemplate = (attributes = SIGN, scheme: Scheme = NULL_SCHEME): TPMT_PUBLIC => ({
  type: TPM_ALG.RSA, nameAlg: TPM_ALG.SHA256, objectAttributes: attributes, authPolicy: new Uint8Array(0),
  parameters: { symmetric: NO_SYM, scheme, keyBits: 2048, exponent: 0 },
  unique: new Uint8Array(0),
}) as TPMT_PUBLIC;

/** A KEYEDHASH signing key with the HMAC scheme. */
export const hmacTemplate = (hashAlg: number = TPM_ALG.SHA256): TPMT_PUBLIC => ({
  type: TPM_ALG.KEYEDHASH, nameAlg: TPM_ALG.SHA256, objectAttributes: SIGN, authPolicy: new Uint8Array(0),
  parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg } } },
  unique: new Uint8Array(0),
}) as TPMT_PUBLIC;

/** The ECC P-256 storage primary of the hierarchy tests: AES-128-CFB, exempt from dictionary attack. */
export const ECC_STORAGE_NODA = eccTemplate(STORAGE | A.noDA, { symmetric: AES128_CFB });

/** The first handle of a response body. */
export const handleOf = (body: Uint8Array): number => new DataView(body.buffer, body.byteOffset).getUint32(0);

/** TPM2B_SENSITIVE_CREATE { userAuth, data }. */
export const sensitiveCreate = (auth: string | Uint8Array = '', data: Uint8Array = new Uint8Array(0)) => be.b2(cat(be.b2(auth), be.b2(data)));

/** CreatePrimary's parameters: the sensitive area, the template, no outsideInfo, no PCRs. */
export const createPrimaryParams = (template: TPMT_PUBLIC, sensitive: Uint8Array = sensitiveCreate()) =>
  cat(sensitive, encode(TPM2B_PUBLIC, template), be.b2(''), be.u32(0));

export interface Primary {
  handle: number;
  outPublic: TPMT_PUBLIC;
  name: Uint8Array;
  creationHash: Uint8Array;
  ticket: { tag: number; hierarchy: number; digest: Uint8Array };
}

/** CreatePrimary under an empty hierarchy password, expected to succeed; userAuth `auth`. */
export function createPrimary(t: TestTpm, template: TPMT_PUBLIC, hierarchy: number = TPM_RH.OWNER, auth = ''): Primary {
  const r = t.call(TPM_CC.CreatePrimary, { handles: [hierarchy], passwords: [''], params: createPrimaryParams(template, sensitiveCreate(auth)) });
  expect(r.rc).toBe(0);
  const reader = new Reader(r.params(1));
  const outPublic = TPM2B_PUBLIC.read(reader) as TPMT_PUBLIC;
  TPM2B_CREATION_DATA.read(reader);
  const creationHash = TPM2B_DIGEST.read(reader);
  const ticket = TPMT_TK_CREATION.read(reader);
  const name = TPM2B_NAME.read(reader);
  return { handle: handleOf(r.body), outPublic, name, creationHash, ticket };
}

/** FlushContext: the response code. */
export const flush = (t: TestTpm, handle: number) => t.call(TPM_CC.FlushContext, { params: be.u32(handle) }).rc;

/** EvictControl with an empty password for `auth`: the response code. */
export const evict = (t: TestTpm, auth: number, object: number, persistent: number) =>
  t.call(TPM_CC.EvictControl, { handles: [auth, object], passwords: [''], params: be.u32(persistent) }).rc;

/** GetCapability(TPM_PROPERTIES) of one property: its value. */
export function property(t: TestTpm, pt: number): number {
  const r = t.call(TPM_CC.GetCapability, { params: cat(be.u32(6), be.u32(pt), be.u32(1)) });
  return new DataView(r.body.buffer, r.body.byteOffset).getUint32(1 + 4 + 4 + 4);
}
