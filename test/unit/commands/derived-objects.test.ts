/**
 * Part 1 §27.4 derived objects (CreateLoaded under a restricted XOR keyed hash): the key is
 * recomputed here from the parent's secret with an independent KDFa (SP 800-108 counter mode,
 * 8192 bits) and FIPS 186-5 §A.2.1 reduction, and checked by another curve implementation.
 */
import { createHmac } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_CC, TPM_RH } from '../../../src/tpm/constants.js';
import { encode } from '../../../src/tpm/marshal/codec.js';
import { Reader } from '../../../src/tpm/marshal/reader.js';
import { TPM2B_PUBLIC, TPMA_OBJECT as A, type TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { be, cat, createTestTpm, hex, type TestTpm } from '../../helpers/engine.js';

const SECRET = new Uint8Array(32).map((_, i) => i + 1);
const derivationParent = {
  type: TPM_ALG.KEYEDHASH,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: A.userWithAuth | A.restricted | A.decrypt,
  authPolicy: new Uint8Array(0),
  parameters: { scheme: { scheme: TPM_ALG.XOR, details: { hashAlg: TPM_ALG.SHA256, kdf: TPM_ALG.KDF1_SP800_108 } } },
  unique: new Uint8Array(0),
} as TPMT_PUBLIC;

/** TPMT_TEMPLATE of a P-256 ECDSA key with TPMS_DERIVE(label, context) as its unique. */
function derivedTemplate(label: string, context: string, attributes = A.fixedParent | A.userWithAuth | A.sign): Uint8Array {
  const head = encode(TPM2B_PUBLIC, {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attributes,
    authPolicy: new Uint8Array(0),
    parameters: {
      symmetric: { algorithm: TPM_ALG.NULL, keyBits: null, mode: null },
      scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } },
      curveID: 0x0003,
      kdf: { scheme: TPM_ALG.NULL, details: null },
    },
    unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
  } as TPMT_PUBLIC).subarray(2, -4);
  return be.b2(cat(head, be.b2(label), be.b2(context)));
}

function setup(): TestTpm {
  const t = createTestTpm();
  const r = t.call(TPM_CC.CreatePrimary, {
    handles: [TPM_RH.OWNER],
    passwords: [''],
    params: cat(be.b2(cat(be.b2(''), be.b2(SECRET))), encode(TPM2B_PUBLIC, derivationParent), be.b2(''), be.u32(0)),
  });
  expect(r.rc).toBe(0);
  return t;
}

function createLoaded(t: TestTpm, template: Uint8Array, data: Uint8Array = new Uint8Array(0)) {
  const r = t.call(TPM_CC.CreateLoaded, { handles: [0x80000000], passwords: [''], params: cat(be.b2(cat(be.b2(''), be.b2(data))), template) });
  if (r.rc !== 0) return { rc: r.rc, x: '', y: '' };
  const rd = new Reader(r.params(1));
  expect(rd.u16()).toBe(0); // no private: a derived object is recreated, not stored
  const pub = TPM2B_PUBLIC.read(rd);
  const { x, y } = pub.unique as { x: Uint8Array; y: Uint8Array };
  t.call(TPM_CC.FlushContext, { params: r.body.subarray(0, 4) });
  return { rc: 0, x: hex(x), y: hex(y) };
}

/** The expected key: KDFa(SHA-256, secret, label, context, 8192 bits), first 40 bytes mod (n-1) + 1. */
function expectedPoint(label: string, context: string): string {
  const h = createHmac('sha256', SECRET);
  h.update(be.u32(1)).update(Buffer.from(label + '\0')).update(Buffer.from(context)).update(be.u32(8192));
  const block1 = h.digest();
  const h2 = createHmac('sha256', SECRET);
  h2.update(be.u32(2)).update(Buffer.from(label + '\0')).update(Buffer.from(context)).update(be.u32(8192));
  const c = BigInt('0x' + Buffer.concat([block1, h2.digest()]).subarray(0, 40).toString('hex'));
  const n = p256.Point.Fn.ORDER;
  const d = (c % (n - 1n)) + 1n;
  return hex(p256.Point.BASE.multiply(d).toBytes(false).subarray(1));
}

describe('CreateLoaded under a derivation parent', () => {
  test('the key follows from the parent secret, label and context; the same inputs give it again', () => {
    const t = setup();
    const a = createLoaded(t, derivedTemplate('lbl', 'ctx'));
    expect(a.rc).toBe(0);
    expect(a.x + a.y).toBe(expectedPoint('lbl', 'ctx'));
    expect(createLoaded(t, derivedTemplate('lbl', 'ctx'))).toEqual(a);
    expect(createLoaded(t, derivedTemplate('lbl', 'other')).x).not.toBe(a.x);
    // Label and context may come from inSensitive.data instead.
    expect(createLoaded(t, derivedTemplate('', ''), cat(be.b2('lbl'), be.b2('ctx')))).toEqual(a);
  });

  test('a derived object is fixedParent, never sensitiveDataOrigin', () => {
    const t = setup();
    expect(createLoaded(t, derivedTemplate('l', 'c', A.userWithAuth | A.sign)).rc).toBe(0x2c2);
    expect(createLoaded(t, derivedTemplate('l', 'c', A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign)).rc).toBe(0x082);
    // Create under a derivation parent is TPM_RC_TYPE: it is no storage parent.
    const sealed = encode(TPM2B_PUBLIC, { ...derivationParent, objectAttributes: A.userWithAuth, parameters: { scheme: { scheme: TPM_ALG.NULL, details: null } } } as TPMT_PUBLIC);
    expect(t.call(TPM_CC.Create, { handles: [0x80000000], passwords: [''], params: cat(be.b2(cat(be.b2(''), be.b2('x'))), sealed, be.b2(''), be.u32(0)) }).rc).toBe(0x18a);
  });
});
