// The random pool: every draw is fresh (no byte served twice across a refill), of the size asked,
// and large draws bypass the pool.
import { describe, expect, test } from 'vitest';
import { randomBytes } from '../../../src/tpm/crypto/random.js';

describe('randomBytes', () => {
  test('sizes from 0 to 4 KiB+, each draw distinct, across many pool refills', () => {
    for (const n of [0, 1, 16, 32, 255, 256, 257, 4096, 5000]) expect(randomBytes(n).length).toBe(n);
    const seen = new Set<string>();
    // 2000 draws of 32 bytes span about 16 refills of the 4 KiB pool; a repeat would mean reuse.
    for (let i = 0; i < 2000; i++) {
      const hex = Buffer.from(randomBytes(32)).toString('hex');
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
  });

  test('a draw is a copy: changing it does not change the next one', () => {
    const a = randomBytes(32);
    a.fill(0);
    const b = randomBytes(32);
    expect(b.some((x) => x !== 0)).toBe(true);
    expect(b.buffer).not.toBe(a.buffer);
  });

  test('bytes look uniform: each byte value appears about equally often in 256 KiB of small draws', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 8192; i++) for (const x of randomBytes(32)) counts[x]!++;
    // 1024 expected per value; a stuck or zeroed pool would put thousands on 0.
    for (const c of counts) {
      expect(c).toBeGreaterThan(800);
      expect(c).toBeLessThan(1250);
    }
  });
});
