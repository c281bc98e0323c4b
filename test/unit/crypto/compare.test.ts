// constantTimeEqual and randomBytes.
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, randomBytes } from '../../../src/tpm/crypto/index.js';
import { fromHex } from './vectors.js';

describe('constantTimeEqual', () => {
  it('equal contents are equal', () => {
    expect(constantTimeEqual(fromHex('00112233'), fromHex('00112233'))).toBe(true);
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it('a difference in any byte is unequal', () => {
    expect(constantTimeEqual(fromHex('00112233'), fromHex('01112233'))).toBe(false);
    expect(constantTimeEqual(fromHex('00112233'), fromHex('00112232'))).toBe(false);
  });

  it('different lengths are unequal, prefix or not', () => {
    expect(constantTimeEqual(fromHex('001122'), fromHex('00112233'))).toBe(false);
    expect(constantTimeEqual(fromHex('00112233'), new Uint8Array(0))).toBe(false);
  });

  it('compares contents across views and Buffer', () => {
    const big = fromHex('ff00112233ff');
    expect(constantTimeEqual(big.subarray(1, 5), Buffer.from('00112233', 'hex'))).toBe(true);
  });
});

describe('randomBytes', () => {
  it('returns n bytes as a plain Uint8Array', () => {
    for (const n of [0, 1, 32, 1024]) {
      const r = randomBytes(n);
      expect(r).toHaveLength(n);
      expect(Buffer.isBuffer(r)).toBe(false);
    }
  });

  it('two draws differ', () => {
    // 2^-256 chance of a false failure.
    expect(constantTimeEqual(randomBytes(32), randomBytes(32))).toBe(false);
  });
});
