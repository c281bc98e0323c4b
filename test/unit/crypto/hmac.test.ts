// HMAC against RFC 4231 (SHA-256/384/512) and RFC 2202 (SHA-1) test cases 1–7
// (test/vectors/hmac.json): one-shot, in parts, incrementally; clone() of a keyed state.
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_RC } from '../../../src/tpm/constants.js';
import { TpmError } from '../../../src/tpm/errors.js';
import { hmac, hmacStart } from '../../../src/tpm/crypto/index.js';
import { ascii, fromHex, loadVectors, oddChunks, toHex } from './vectors.js';

interface HmacVector {
  Name: string;
  HashAlg: number;
  Key: string;
  Data: string;
  Mac: string;
}

const VECTORS = loadVectors<HmacVector>('hmac.json');
/** RFC 4231 test case 5 publishes only the leading 128 bits: compare that much. */
const lead = (mac: Uint8Array, v: HmacVector): string => toHex(mac).slice(0, v.Mac.length);

describe('hmac: RFC 4231 / RFC 2202', () => {
  it('covers test cases 1-7 for every implemented hash', () => {
    for (const alg of [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]) {
      expect(VECTORS.filter((v) => v.HashAlg === alg)).toHaveLength(7);
    }
  });

  describe.each(VECTORS)('alg $HashAlg: $Name', (v) => {
    const key = fromHex(v.Key);
    const data = fromHex(v.Data);

    it('one-shot', () => {
      expect(lead(hmac(v.HashAlg, key, data), v)).toBe(v.Mac);
    });

    it('as several parts to hmac()', () => {
      const cut = Math.floor(data.length / 2);
      expect(lead(hmac(v.HashAlg, key, data.subarray(0, cut), new Uint8Array(0), data.subarray(cut)), v)).toBe(v.Mac);
    });

    it('hmacStart, in odd chunk sizes', () => {
      const s = hmacStart(v.HashAlg, key);
      for (const chunk of oddChunks(data)) s.update(chunk);
      expect(lead(s.digest(), v)).toBe(v.Mac);
    });

    it('hmacStart, cloned half way; both copies finish to the same MAC', () => {
      const cut = Math.floor(data.length / 2);
      const s = hmacStart(v.HashAlg, key).update(data.subarray(0, cut));
      const fork = s.clone();
      const stray = s.clone().update(ascii('not part of the message'));
      expect(lead(fork.update(data.subarray(cut)).digest(), v)).toBe(v.Mac);
      expect(lead(s.update(data.subarray(cut)).digest(), v)).toBe(v.Mac);
      expect(lead(stray.digest(), v)).not.toBe(v.Mac);
    });
  });

  it('one keyed state serves several messages through clone()', () => {
    // RFC 4231 test cases 6 and 7 share one key.
    const [c6, c7] = ['RFC 4231 test case 6', 'RFC 4231 test case 7'].map(
      (name) => VECTORS.find((v) => v.HashAlg === TPM_ALG.SHA384 && v.Name === name)!,
    );
    const keyed = hmacStart(TPM_ALG.SHA384, fromHex(c6!.Key));
    expect(toHex(keyed.clone().update(fromHex(c6!.Data)).digest())).toBe(c6!.Mac);
    expect(toHex(keyed.clone().update(fromHex(c7!.Data)).digest())).toBe(c7!.Mac);
  });

  it('returns plain Uint8Array, not Buffer', () => {
    expect(Buffer.isBuffer(hmac(TPM_ALG.SHA256, ascii('k'), ascii('m')))).toBe(false);
    expect(Buffer.isBuffer(hmacStart(TPM_ALG.SHA256, ascii('k')).digest())).toBe(false);
  });

  it.each([TPM_ALG.SHA3_256, TPM_ALG.NULL, TPM_ALG.HMAC])('alg %i → TPM_RC_HASH', (alg) => {
    for (const call of [() => hmacStart(alg, ascii('k')), () => hmac(alg, ascii('k'), ascii('m'))]) {
      expect(call).toThrow(expect.objectContaining({ rc: TPM_RC.HASH }));
      expect(call).toThrow(TpmError);
    }
  });
});
