// KDFe (Part 1 §11.4.10.3) against go-tpm's vectors (validated against the TCG reference implementation).
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_RC } from '../../../src/tpm/constants.js';
import { kdfe } from '../../../src/tpm/crypto/index.js';
import { fromHex, loadVectors, toHex } from './vectors.js';

interface KdfeVector {
  Name: string;
  HashAlg: number;
  Z: string;
  Label: string;
  ContextU: string;
  ContextV: string;
  Bits: number;
  Result: string;
}

describe('kdfe: go-tpm vectors', () => {
  const vectors = loadVectors<KdfeVector>('kdfe.json');

  it('cover every implemented hash and partial-byte sizes', () => {
    expect(new Set(vectors.map((v) => v.HashAlg))).toEqual(
      new Set([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]),
    );
    expect(vectors.some((v) => v.Bits % 8 !== 0)).toBe(true);
  });

  it.each(vectors)('$Name', (v) => {
    const out = kdfe(v.HashAlg, fromHex(v.Z), v.Label, fromHex(v.ContextU), fromHex(v.ContextV), v.Bits);
    expect(toHex(out)).toBe(v.Result);
  });
});

describe('kdfe: edges', () => {
  const none = new Uint8Array(0);

  it('bits = 0 gives no bytes', () => {
    expect(kdfe(TPM_ALG.SHA256, fromHex('01'), 'SECRET', none, none, 0)).toHaveLength(0);
  });

  it('rejects sizes that are not a 32-bit bit count', () => {
    expect(() => kdfe(TPM_ALG.SHA256, fromHex('01'), 'SECRET', none, none, -8)).toThrow(RangeError);
  });

  it('unimplemented hash → TPM_RC_HASH', () => {
    expect(() => kdfe(TPM_ALG.NULL, fromHex('01'), 'SECRET', none, none, 128)).toThrow(
      expect.objectContaining({ rc: TPM_RC.HASH }),
    );
  });
});
