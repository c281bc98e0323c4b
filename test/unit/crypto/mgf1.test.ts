// MGF1 against the PKCS #1 v2.1 RSAES-OAEP worked example (oaep-int.txt) and the widely
// reproduced examples of the Wikipedia "Mask generation function" article (test/vectors/mgf1.json).
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_RC } from '../../../src/tpm/constants.js';
import { mgf1 } from '../../../src/tpm/crypto/index.js';
import { fromHex, loadVectors, toHex } from './vectors.js';

interface Mgf1Vector {
  Name: string;
  HashAlg: number;
  Seed: string;
  Length: number;
  Mask: string;
}

describe('mgf1: published vectors', () => {
  it.each(loadVectors<Mgf1Vector>('mgf1.json'))('alg $HashAlg: $Name', (v) => {
    expect(toHex(mgf1(v.HashAlg, fromHex(v.Seed), v.Length))).toBe(v.Mask);
  });
});

describe('mgf1: edges', () => {
  it('length 0 gives no bytes', () => {
    expect(mgf1(TPM_ALG.SHA256, fromHex('00'), 0)).toHaveLength(0);
  });

  it('rejects a negative or fractional length', () => {
    expect(() => mgf1(TPM_ALG.SHA256, fromHex('00'), -1)).toThrow(RangeError);
    expect(() => mgf1(TPM_ALG.SHA256, fromHex('00'), 2.5)).toThrow(RangeError);
  });

  it('unimplemented hash → TPM_RC_HASH', () => {
    expect(() => mgf1(TPM_ALG.SHA3_512, fromHex('00'), 16)).toThrow(expect.objectContaining({ rc: TPM_RC.HASH }));
  });
});
