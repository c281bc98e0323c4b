// KDFa (Part 1 §11.4.10.2) against go-tpm's vectors (validated against the TCG reference
// implementation) and the reference implementation's own power-on self-test values.
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_RC } from '../../../src/tpm/constants.js';
import { kdfa } from '../../../src/tpm/crypto/index.js';
import { fromHex, loadVectors, toHex } from './vectors.js';

interface KdfaVector {
  Name: string;
  HashAlg: number;
  Key: string;
  Label: string;
  ContextU: string;
  ContextV: string;
  Bits: number;
  Result: string;
}

const run = (v: KdfaVector, label = v.Label): string =>
  toHex(kdfa(v.HashAlg, fromHex(v.Key), label, fromHex(v.ContextU), fromHex(v.ContextV), v.Bits));

describe('kdfa: go-tpm vectors', () => {
  const vectors = loadVectors<KdfaVector>('kdfa.json');

  it('cover every implemented hash and partial-byte sizes', () => {
    expect(new Set(vectors.map((v) => v.HashAlg))).toEqual(
      new Set([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]),
    );
    expect(vectors.some((v) => v.Bits % 8 !== 0)).toBe(true);
  });

  it.each(vectors)('$Name', (v) => {
    expect(run(v)).toBe(v.Result);
  });
});

describe('kdfa: ms-tpm-20-ref self-test', () => {
  const vectors = loadVectors<KdfaVector>('kdfa-mstpm-selftest.json');

  it.each(vectors)('$Name', (v) => {
    expect(run(v)).toBe(v.Result);
  });

  it.each(vectors)('$Name: a label already ending in NUL gets no second NUL', (v) => {
    // The reference passes "KDFSELFTESTLABEL\0" and adds no terminator of its own.
    expect(run(v, `${v.Label}\0`)).toBe(v.Result);
  });
});

describe('kdfa: sizes', () => {
  const key = fromHex('00112233');
  const none = new Uint8Array(0);

  it('bits = 0 gives no bytes', () => {
    expect(kdfa(TPM_ALG.SHA256, key, 'STORAGE', none, none, 0)).toHaveLength(0);
  });

  it('rejects sizes that are not a 32-bit bit count', () => {
    for (const bits of [-1, 1.5, 2 ** 32, Number.NaN]) {
      expect(() => kdfa(TPM_ALG.SHA256, key, 'STORAGE', none, none, bits)).toThrow(RangeError);
    }
  });

  it('unimplemented hash → TPM_RC_HASH', () => {
    expect(() => kdfa(TPM_ALG.SHA3_256, key, 'STORAGE', none, none, 128)).toThrow(
      expect.objectContaining({ rc: TPM_RC.HASH }),
    );
  });

  it('returns plain Uint8Array, not Buffer', () => {
    expect(Buffer.isBuffer(kdfa(TPM_ALG.SHA256, key, 'XOR', none, none, 256))).toBe(false);
  });
});
