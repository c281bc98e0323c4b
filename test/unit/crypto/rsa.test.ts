// RSA against OpenSSL through node:crypto, an independent implementation: its keys decrypt what
// we encrypt and the other way round, RSASSA signatures are byte-identical to OpenSSL's
// (the scheme is deterministic), PSS signatures verify both ways; key generation is checked
// for primality, size and determinism.
import * as nodeCrypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_RC } from '../../../src/tpm/constants.js';
import {
  kdfa,
  RsaCache,
  rsaDecrypt,
  rsaEncrypt,
  rsaGenerateKey,
  rsaPssSaltSize,
  rsapssSign,
  rsapssVerify,
  rsassaSign,
  rsassaVerify,
  type RsaPrivateKey,
} from '../../../src/tpm/crypto/index.js';

const big = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString('hex')}`);
const random = (n: number): Uint8Array => new Uint8Array(nodeCrypto.randomBytes(n));
const HASHES = [
  [TPM_ALG.SHA1, 'sha1'],
  [TPM_ALG.SHA256, 'sha256'],
  [TPM_ALG.SHA384, 'sha384'],
  [TPM_ALG.SHA512, 'sha512'],
] as const;

/** An OpenSSL-generated key as the TPM keeps it (modulus and one prime) and as node uses it. */
function opensslKey(bits = 2048) {
  const { privateKey, publicKey } = nodeCrypto.generateKeyPairSync('rsa', { modulusLength: bits });
  const jwk = privateKey.export({ format: 'jwk' });
  const tpmKey: RsaPrivateKey = {
    n: new Uint8Array(Buffer.from(jwk.n!, 'base64url')),
    p: new Uint8Array(Buffer.from(jwk.p!, 'base64url')),
    exponent: 0,
  };
  return { privateKey, publicKey, tpmKey };
}

function rcOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    return (e as { rc: number }).rc;
  }
  throw new Error('no error');
}

const drawFrom = (seed: string) => {
  let i = 0;
  return (bits: number) => kdfa(TPM_ALG.SHA256, new TextEncoder().encode(seed), 'RSA', new Uint8Array([++i]), new Uint8Array(0), bits);
};

describe('rsa: encryption against OpenSSL', () => {
  const { privateKey, publicKey, tpmKey } = opensslKey();
  const message = new TextEncoder().encode('the quick brown fox');

  it('OAEP: OpenSSL decrypts ours and we decrypt OpenSSL\'s, for each hash, with and without a label', () => {
    for (const [alg, name] of HASHES) {
      for (const label of [new Uint8Array(0), new TextEncoder().encode('label\0')]) {
        const ours = rsaEncrypt(tpmKey, { scheme: TPM_ALG.OAEP, hashAlg: alg }, label, message, random);
        expect(ours).toHaveLength(256);
        const back = nodeCrypto.privateDecrypt({ key: privateKey, oaepHash: name, oaepLabel: label, padding: nodeCrypto.constants.RSA_PKCS1_OAEP_PADDING }, ours);
        expect(Buffer.from(back).toString()).toBe('the quick brown fox');
        const theirs = nodeCrypto.publicEncrypt({ key: publicKey, oaepHash: name, oaepLabel: label, padding: nodeCrypto.constants.RSA_PKCS1_OAEP_PADDING }, message);
        expect(Buffer.from(rsaDecrypt(tpmKey, { scheme: TPM_ALG.OAEP, hashAlg: alg }, label, theirs)).toString()).toBe('the quick brown fox');
      }
    }
  });

  it('OAEP with the wrong label or hash is TPM_RC_VALUE', () => {
    const c = rsaEncrypt(tpmKey, { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA256 }, new TextEncoder().encode('a\0'), message, random);
    expect(rcOf(() => rsaDecrypt(tpmKey, { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA256 }, new TextEncoder().encode('b\0'), c))).toBe(TPM_RC.VALUE);
    expect(rcOf(() => rsaDecrypt(tpmKey, { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA1 }, new TextEncoder().encode('a\0'), c))).toBe(TPM_RC.VALUE);
  });

  it('RSAES-PKCS1-v1_5: OpenSSL\'s ciphertext decrypts; ours is well formed (00 02, 8+ non-zero bytes, 00)', () => {
    const theirs = nodeCrypto.publicEncrypt({ key: publicKey, padding: nodeCrypto.constants.RSA_PKCS1_PADDING }, message);
    expect(Buffer.from(rsaDecrypt(tpmKey, { scheme: TPM_ALG.RSAES }, new Uint8Array(0), theirs)).toString()).toBe('the quick brown fox');
    const ours = rsaEncrypt(tpmKey, { scheme: TPM_ALG.RSAES }, new Uint8Array(0), message, () => new Uint8Array(256 - message.length - 3));
    const block = nodeCrypto.privateDecrypt({ key: privateKey, padding: nodeCrypto.constants.RSA_NO_PADDING }, ours);
    expect(block.subarray(0, 2).toString('hex')).toBe('0002');
    // Zero random bytes were replaced: the padding holds no 0 before the separator.
    expect(block.indexOf(0, 2)).toBe(256 - message.length - 1);
    expect(block.subarray(256 - message.length).toString()).toBe('the quick brown fox');
    // A block that is not PKCS#1 v1.5 is TPM_RC_VALUE.
    const raw = rsaEncrypt(tpmKey, { scheme: TPM_ALG.NULL }, new Uint8Array(0), message, random);
    expect(rcOf(() => rsaDecrypt(tpmKey, { scheme: TPM_ALG.RSAES }, new Uint8Array(0), raw))).toBe(TPM_RC.VALUE);
  });

  it('raw (TPM_ALG_NULL): m^e mod n both ways; the message is left-padded with zeros', () => {
    const ours = rsaEncrypt(tpmKey, { scheme: TPM_ALG.NULL }, new Uint8Array(0), message, random);
    const block = nodeCrypto.privateDecrypt({ key: privateKey, padding: nodeCrypto.constants.RSA_NO_PADDING }, ours);
    expect(big(new Uint8Array(block))).toBe(big(message));
    const dec = rsaDecrypt(tpmKey, { scheme: TPM_ALG.NULL }, new Uint8Array(0), ours);
    expect(dec).toHaveLength(256);
    expect(big(dec)).toBe(big(message));
  });

  it('sizes: a too-long message is TPM_RC_VALUE, a wrong-size ciphertext or one ≥ n TPM_RC_SIZE', () => {
    expect(rcOf(() => rsaEncrypt(tpmKey, { scheme: TPM_ALG.RSAES }, new Uint8Array(0), new Uint8Array(246), random))).toBe(TPM_RC.VALUE);
    expect(rcOf(() => rsaEncrypt(tpmKey, { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA256 }, new Uint8Array(0), new Uint8Array(191), random))).toBe(TPM_RC.VALUE);
    expect(rsaEncrypt(tpmKey, { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA256 }, new Uint8Array(0), new Uint8Array(190), random)).toHaveLength(256);
    expect(rcOf(() => rsaEncrypt(tpmKey, { scheme: TPM_ALG.NULL }, new Uint8Array(0), new Uint8Array(257).fill(1), random))).toBe(TPM_RC.VALUE);
    expect(rcOf(() => rsaDecrypt(tpmKey, { scheme: TPM_ALG.NULL }, new Uint8Array(0), new Uint8Array(255)))).toBe(TPM_RC.SIZE);
    expect(rcOf(() => rsaDecrypt(tpmKey, { scheme: TPM_ALG.NULL }, new Uint8Array(0), new Uint8Array(256).fill(0xff)))).toBe(TPM_RC.SIZE);
  });

  it('a prime that does not divide the modulus is TPM_RC_BINDING', () => {
    const broken = { ...tpmKey, p: tpmKey.p.map((b, i) => (i === tpmKey.p.length - 1 ? b ^ 2 : b)) };
    expect(rcOf(() => rsaDecrypt(broken, { scheme: TPM_ALG.NULL }, new Uint8Array(0), new Uint8Array(256)))).toBe(TPM_RC.BINDING);
  });
});

describe('rsa: signatures against OpenSSL', () => {
  const { privateKey, publicKey, tpmKey } = opensslKey();
  const message = new TextEncoder().encode('to be signed');

  it('RSASSA-PKCS1-v1_5 over a digest is byte-identical to OpenSSL\'s signature of the message', () => {
    for (const [alg, name] of HASHES) {
      const digest = new Uint8Array(nodeCrypto.createHash(name).update(message).digest());
      const ours = rsassaSign(tpmKey, alg, digest, new RsaCache());
      expect(Buffer.from(ours).toString('hex')).toBe(nodeCrypto.sign(name, message, privateKey).toString('hex'));
      expect(rsassaVerify(tpmKey, alg, digest, ours)).toBe(true);
      ours[10]! ^= 1;
      expect(rsassaVerify(tpmKey, alg, digest, ours)).toBe(false);
    }
  });

  it('RSASSA with a digest of the wrong size is TPM_RC_VALUE', () => {
    expect(rcOf(() => rsassaSign(tpmKey, TPM_ALG.SHA256, new Uint8Array(20)))).toBe(TPM_RC.VALUE);
  });

  it('RSASSA-PSS: OpenSSL verifies ours with the reference salt size; we verify OpenSSL\'s', () => {
    for (const [alg, name] of HASHES) {
      const digest = new Uint8Array(nodeCrypto.createHash(name).update(message).digest());
      const ours = rsapssSign(tpmKey, alg, digest, random);
      const saltLength = rsaPssSaltSize(digest.length, 256);
      expect(saltLength).toBe(digest.length);
      expect(nodeCrypto.verify(name, message, { key: publicKey, padding: nodeCrypto.constants.RSA_PKCS1_PSS_PADDING, saltLength }, ours)).toBe(true);
      expect(rsapssVerify(tpmKey, alg, digest, ours)).toBe(true);
      const theirs = nodeCrypto.sign(name, message, { key: privateKey, padding: nodeCrypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: nodeCrypto.constants.RSA_PSS_SALTLEN_MAX_SIGN });
      expect(rsapssVerify(tpmKey, alg, digest, new Uint8Array(theirs))).toBe(true);
      digest[0]! ^= 1;
      expect(rsapssVerify(tpmKey, alg, digest, ours)).toBe(false);
    }
  });

  it('the PSS salt is as long as the digest unless the modulus leaves no room', () => {
    expect(rsaPssSaltSize(64, 128)).toBe(62);
    expect(rsaPssSaltSize(32, 128)).toBe(32);
    expect(rsaPssSaltSize(64, 60)).toBe(0);
  });
});

describe('rsa: key generation from a bit stream', () => {
  it('RSA-2048: two 1024-bit primes, n of exactly 2048 bits, usable by OpenSSL; the same stream gives the same key', () => {
    const a = rsaGenerateKey(2048, 0, drawFrom('seed A'));
    const n = big(a.n);
    const p = big(a.p);
    expect(a.n).toHaveLength(256);
    expect(a.p).toHaveLength(128);
    expect(n.toString(2)).toHaveLength(2048);
    expect(n % p).toBe(0n);
    const q = n / p;
    expect(nodeCrypto.checkPrimeSync(p)).toBe(true);
    expect(nodeCrypto.checkPrimeSync(q)).toBe(true);
    expect(p.toString(2)).toHaveLength(1024);
    expect(q.toString(2)).toHaveLength(1024);
    // e = 65537 is invertible: neither p - 1 nor q - 1 is a multiple of it.
    expect(p % 65537n).not.toBe(1n);
    expect(q % 65537n).not.toBe(1n);
    // Deterministic in its input, and a different input gives a different key.
    expect(Buffer.from(rsaGenerateKey(2048, 0, drawFrom('seed A')).n)).toEqual(Buffer.from(a.n));
    expect(Buffer.from(rsaGenerateKey(2048, 0, drawFrom('seed B')).n)).not.toEqual(Buffer.from(a.n));
    // The key works: OpenSSL verifies our signature with the public key alone.
    const digest = new Uint8Array(nodeCrypto.createHash('sha256').update('x').digest());
    const sig = rsassaSign({ ...a, exponent: 0 }, TPM_ALG.SHA256, digest);
    const publicKey = nodeCrypto.createPublicKey({ key: { kty: 'RSA', n: Buffer.from(a.n).toString('base64url'), e: 'AQAB' }, format: 'jwk' });
    expect(nodeCrypto.verify('sha256', Buffer.from('x'), publicKey, sig)).toBe(true);
  });

  it('a regression value: the modulus of RSA-1024 from a fixed stream', () => {
    const k = rsaGenerateKey(1024, 0, drawFrom('vtpmd'));
    expect(nodeCrypto.createHash('sha256').update(k.n).digest('hex')).toMatchInlineSnapshot(`"fb4f3c9bcca111e2fb5f20a90e97f92876c6e63eb8e1293fa88f2051b6b08a65"`);
  });

  it('RSA-3072 and a non-default prime exponent', () => {
    const k = rsaGenerateKey(3072, 65539, drawFrom('e'));
    expect(k.n).toHaveLength(384);
    const n = big(k.n);
    const p = big(k.p);
    const q = n / p;
    expect((p - 1n) % 65539n).not.toBe(0n);
    expect((q - 1n) % 65539n).not.toBe(0n);
    const c = rsaEncrypt({ n: k.n, exponent: 65539 }, { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA256 }, new Uint8Array(0), new Uint8Array([7]), random);
    expect(Array.from(rsaDecrypt({ ...k, exponent: 65539 }, { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA256 }, new Uint8Array(0), c))).toEqual([7]);
  });

  it('exponents below 65537 or not prime are TPM_RC_RANGE; sizes not a multiple of 1024 TPM_RC_VALUE', () => {
    expect(rcOf(() => rsaGenerateKey(2048, 3, drawFrom('x')))).toBe(TPM_RC.RANGE);
    expect(rcOf(() => rsaGenerateKey(2048, 65541, drawFrom('x')))).toBe(TPM_RC.RANGE);
    expect(rcOf(() => rsaGenerateKey(1536, 0, drawFrom('x')))).toBe(TPM_RC.VALUE);
  });

  it('the cache returns the derived key for the same inputs without calling the generator', () => {
    const cache = new RsaCache(2);
    const seed = new Uint8Array(32);
    const name = new Uint8Array([0, 0xb, 1]);
    let calls = 0;
    const make = () => {
      calls++;
      return { n: new Uint8Array([calls]), p: new Uint8Array([1]) };
    };
    expect(cache.derive(seed, name, new Uint8Array(0), make).n[0]).toBe(1);
    expect(cache.derive(seed, name, new Uint8Array([1]), make).n[0]).toBe(2);
    expect(cache.derive(seed, name, new Uint8Array(0), make).n[0]).toBe(1);
    expect(cache.derive(new Uint8Array(32).fill(1), name, new Uint8Array(0), make).n[0]).toBe(3);
    // Bounded: the least recently used entry (data [1]) is gone, the first one stays.
    expect(cache.derive(seed, name, new Uint8Array(0), make).n[0]).toBe(1);
    expect(cache.derive(seed, name, new Uint8Array([1]), make).n[0]).toBe(4);
    expect(calls).toBe(4);
  });
});
