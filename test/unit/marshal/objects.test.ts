/**
 * Object structures against public areas and Names that Debian's swtpm produced
 * (test/vectors/public-areas.json): decode, re-encode byte for byte, and compute the same Name.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { TPM_ALG, TPM_ECC_CURVE, TPM_RC } from '../../../src/tpm/constants.js';
import { decode, encode } from '../../../src/tpm/marshal/codec.js';
import { objectName, TPM2B_PUBLIC, TPMA_OBJECT, TPMT_PUBLIC } from '../../../src/tpm/marshal/objects.js';
import { hex, unhex } from '../../helpers/engine.js';
import { tpmErrorRc } from '../../helpers/tpm-error.js';

const vectors = JSON.parse(readFileSync(new URL('../../vectors/public-areas.json', import.meta.url), 'utf8')) as {
  vectors: { label: string; tpm2bPublic: string; name: string }[];
};
const byLabel = (l: string) => vectors.vectors.find((v) => v.label.startsWith(l))!;

describe('public areas from swtpm', () => {
  test.each(['ecc (P-256)', 'aes128cfb', 'ecc384', 'rsa (2048)', 'TCG EK template RSA'])('%s: decode, re-encode, Name', (label) => {
    const v = byLabel(label);
    const publicArea = decode(TPM2B_PUBLIC, unhex(v.tpm2bPublic));
    expect(hex(encode(TPM2B_PUBLIC, publicArea))).toBe(v.tpm2bPublic);
    expect(hex(objectName(publicArea))).toBe(v.name);
  });

  test('the P-256 storage key reads as the fields tpm2-tools asked for', () => {
    const p = decode(TPM2B_PUBLIC, unhex(byLabel('ecc (P-256)').tpm2bPublic));
    expect(p.type).toBe(TPM_ALG.ECC);
    expect(p.nameAlg).toBe(TPM_ALG.SHA256);
    const a = TPMA_OBJECT;
    expect(p.objectAttributes).toBe(a.fixedTPM | a.fixedParent | a.sensitiveDataOrigin | a.userWithAuth | a.restricted | a.decrypt);
    const parms = p.parameters as { symmetric: { algorithm: number; keyBits: number; mode: number }; curveID: number };
    expect(parms.symmetric).toEqual({ algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB });
    expect(parms.curveID).toBe(TPM_ECC_CURVE.NIST_P256);
    const unique = p.unique as { x: Uint8Array; y: Uint8Array };
    expect(unique.x.length).toBe(32);
  });

  test('the RSA-2048 storage key and the TCG RSA EK read as their templates say', () => {
    const p = decode(TPM2B_PUBLIC, unhex(byLabel('rsa').tpm2bPublic));
    expect(p.type).toBe(TPM_ALG.RSA);
    const parms = p.parameters as { symmetric: { algorithm: number; keyBits: number; mode: number }; scheme: { scheme: number }; keyBits: number; exponent: number };
    expect(parms).toEqual({ symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, scheme: { scheme: TPM_ALG.NULL, details: null }, keyBits: 2048, exponent: 0 });
    expect((p.unique as Uint8Array).length).toBe(256);
    const ek = decode(TPM2B_PUBLIC, unhex(byLabel('TCG EK template RSA').tpm2bPublic));
    expect(ek.objectAttributes).toBe(0x000300b2);
    expect(hex(ek.authPolicy)).toBe('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
  });

  test('RSA parameters: key sizes outside 1024/2048/3072 and unknown schemes are TPM_RC_VALUE, a scheme hash TPM_RC_HASH', () => {
    const rsa = unhex(byLabel('rsa').tpm2bPublic.slice(4));
    // type(2) nameAlg(2) attributes(4) authPolicy(2+0) symmetric(6) scheme(2) keyBits(2) exponent(4) unique.
    const at = 2 + 2 + 4 + 2 + 6;
    const withBits = rsa.slice();
    withBits.set([0x10, 0x00], at + 2); // 4096
    expect(tpmErrorRc(() => decode(TPMT_PUBLIC, withBits))).toBe(TPM_RC.VALUE);
    const ecdsa = rsa.slice();
    ecdsa.set([0x00, 0x18], at); // TPM_ALG_ECDSA is no RSA scheme
    expect(tpmErrorRc(() => decode(TPMT_PUBLIC, ecdsa))).toBe(TPM_RC.VALUE);
    // RSASSA with a hash that is not one (TPM_ALG_AES).
    const bad = new Uint8Array([...rsa.subarray(0, at), 0x00, 0x14, 0x00, 0x06, ...rsa.subarray(at + 2)]);
    expect(tpmErrorRc(() => decode(TPMT_PUBLIC, bad))).toBe(TPM_RC.HASH);
    const good = new Uint8Array([...rsa.subarray(0, at), 0x00, 0x14, 0x00, 0x0b, ...rsa.subarray(at + 2)]);
    expect((decode(TPMT_PUBLIC, good).parameters as { scheme: unknown }).scheme).toEqual({ scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } });
  });
});

describe('validation', () => {
  const ecc = () => unhex(byLabel('ecc (P-256)').tpm2bPublic.slice(4));
  test('reserved attribute bits are TPM_RC_RESERVED_BITS', () => {
    const b = ecc();
    b[7] = b[7]! | 0x01; // bit 0 of objectAttributes (last byte of the u32 at offset 4)
    expect(tpmErrorRc(() => decode(TPMT_PUBLIC, b))).toBe(TPM_RC.RESERVED_BITS);
  });
  test('an unknown curve is TPM_RC_CURVE, an unknown scheme TPM_RC_SCHEME', () => {
    const b = ecc();
    // type(2) nameAlg(2) attrs(4) authPolicy(2) sym(6) scheme(2) curve(2)
    const curveAt = 2 + 2 + 4 + 2 + 6 + 2;
    b[curveAt + 1] = 0x10; // BN P256: not supported
    expect(tpmErrorRc(() => decode(TPMT_PUBLIC, b))).toBe(TPM_RC.CURVE);
    const c = ecc();
    c[curveAt - 1] = 0x1a; // ECDAA
    expect(tpmErrorRc(() => decode(TPMT_PUBLIC, c))).toBe(TPM_RC.SCHEME);
  });
  test('AES with 192 bits is TPM_RC_VALUE (libtpms\' TPMI_AES_KEY_BITS), a non-AES cipher TPM_RC_SYMMETRIC', () => {
    const b = ecc();
    b[13] = 0xc0; // keyBits 0x00c0
    expect(tpmErrorRc(() => decode(TPMT_PUBLIC, b))).toBe(TPM_RC.VALUE);
    const c = ecc();
    c[11] = 0x26; // CAMELLIA
    expect(tpmErrorRc(() => decode(TPMT_PUBLIC, c))).toBe(TPM_RC.SYMMETRIC);
  });
  test('a TPM2B_PUBLIC whose size disagrees with its content is TPM_RC_SIZE', () => {
    const b = unhex(byLabel('ecc (P-256)').tpm2bPublic);
    b[1] = b[1]! - 1;
    expect(tpmErrorRc(() => decode(TPM2B_PUBLIC, b.subarray(0, b.length - 1)))).not.toBe(0);
  });
});
