// SHA-1/256/384/512 against the FIPS 180-2 example messages (test/vectors/sha.json), one-shot and
// incremental; clone() independence; TPM_RC_HASH for algorithms this TPM does not implement.
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_RC } from '../../../src/tpm/constants.js';
import { TpmError } from '../../../src/tpm/errors.js';
import { hash, hashStart } from '../../../src/tpm/crypto/index.js';
import { ascii, loadVectors, oddChunks, toHex } from './vectors.js';

interface ShaVector {
  Name: string;
  HashAlg: number;
  Message: string;
  Repeat: number;
  Digest: string;
}

const VECTORS = loadVectors<ShaVector>('sha.json');
const message = (v: ShaVector): Uint8Array => ascii(v.Message.repeat(v.Repeat));

describe('hash: FIPS 180-2 examples', () => {
  it('has vectors for every implemented hash', () => {
    expect(new Set(VECTORS.map((v) => v.HashAlg))).toEqual(
      new Set([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]),
    );
  });

  describe.each(VECTORS)('alg $HashAlg: $Name', (v) => {
    it('one-shot', () => {
      expect(toHex(hash(v.HashAlg, message(v)))).toBe(v.Digest);
    });

    it('as several parts to hash()', () => {
      const m = message(v);
      const cut = Math.floor(m.length / 3);
      expect(toHex(hash(v.HashAlg, m.subarray(0, cut), m.subarray(cut)))).toBe(v.Digest);
    });

    it('incrementally, in odd chunk sizes', () => {
      const s = hashStart(v.HashAlg);
      for (const chunk of oddChunks(message(v))) s.update(chunk);
      expect(toHex(s.digest())).toBe(v.Digest);
    });
  });

  it('hash() with no parts is the digest of the empty string', () => {
    const empty = VECTORS.find((v) => v.HashAlg === TPM_ALG.SHA256 && v.Name === 'empty')!;
    expect(toHex(hash(TPM_ALG.SHA256))).toBe(empty.Digest);
  });

  it('returns plain Uint8Array, not Buffer', () => {
    const out = hash(TPM_ALG.SHA256, ascii('abc'));
    expect(out).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(out)).toBe(false);
    expect(Buffer.isBuffer(hashStart(TPM_ALG.SHA1).update(ascii('abc')).digest())).toBe(false);
  });
});

describe('hashStart: clone()', () => {
  const abc = (alg: number): string =>
    VECTORS.find((v) => v.HashAlg === alg && v.Name === 'abc')!.Digest;

  it.each([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512])(
    'a clone and its original continue independently (alg %i)',
    (alg) => {
      const base = hashStart(alg).update(ascii('a'));
      const fork = base.clone();
      // Feed the clone data the original never sees: it must not leak into the original.
      const other = fork.clone().update(ascii('zzzz'));
      fork.update(ascii('bc'));
      expect(toHex(fork.digest())).toBe(abc(alg));
      base.update(ascii('b')).update(ascii('c'));
      expect(toHex(base.digest())).toBe(abc(alg));
      expect(toHex(other.digest())).not.toBe(abc(alg));
    },
  );

  it('digest() on a clone leaves the original usable', () => {
    const s = hashStart(TPM_ALG.SHA256).update(ascii('ab'));
    s.clone().digest();
    expect(toHex(s.update(ascii('c')).digest())).toBe(abc(TPM_ALG.SHA256));
  });
});

describe('unimplemented hash algorithms', () => {
  // SHA3-256 is a hash in Part 2 but not in HASH_ALGS; NULL and AES are not hashes at all.
  it.each([TPM_ALG.SHA3_256, TPM_ALG.NULL, TPM_ALG.AES, 0x7fff])('alg %i → TPM_RC_HASH', (alg) => {
    for (const call of [() => hashStart(alg), () => hash(alg, ascii('abc'))]) {
      expect(call).toThrow(TpmError);
      try {
        call();
      } catch (e) {
        expect((e as TpmError).rc).toBe(TPM_RC.HASH);
        expect((e as TpmError).rc).toBe(0x083);
      }
    }
  });
});
