/**
 * @peculiar/x509 works on WebCrypto keys; Node's own WebCrypto (OpenSSL underneath) is the
 * provider. Set once, before the first certificate is built or parsed.
 *
 * The library and asn1js are CommonJS and large: they are loaded on first use, and with
 * require() rather than import, because Node's ESM loader first scans every CommonJS file for
 * its exports (cjs-module-lexer), which doubled their load time (about 400 ms against 190 ms on
 * the development machine) and is most of a provisioning run's start-up.
 */
import { createRequire } from 'node:module';
import { webcrypto, type KeyObject } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import type * as Asn1js from 'asn1js';

const requireCjs = createRequire(import.meta.url);

/** Node's WebCrypto key type (the DOM's CryptoKey is not in this project's libs). */
export type CryptoKey = webcrypto.CryptoKey;

let x509: typeof X509 | undefined;

export function x509Lib(): typeof X509 {
  if (!x509) {
    // @peculiar/x509's dependency injection (tsyringe) needs the Reflect metadata API loaded first.
    requireCjs('reflect-metadata');
    const lib = requireCjs('@peculiar/x509') as typeof X509;
    lib.cryptoProvider.set(webcrypto as never);
    x509 = lib;
  }
  return x509;
}

let asn1: typeof Asn1js | undefined;

/** asn1js, for the certificate extensions @peculiar/x509 has no class for. */
export function asn1Lib(): typeof Asn1js {
  asn1 ??= requireCjs('asn1js') as typeof Asn1js;
  return asn1;
}

/** A PEM or DER private key as a WebCrypto RSASSA-PKCS1-v1_5/SHA-256 or ECDSA signing key. */
export async function signingCryptoKey(key: KeyObject): Promise<CryptoKey> {
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const algorithm =
    key.asymmetricKeyType === 'ec'
      ? { name: 'ECDSA', namedCurve: curveName(key) }
      : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  return (await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign'])) as CryptoKey;
}

function curveName(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const names: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
  const name = curve !== undefined ? names[curve] : undefined;
  if (!name) throw new Error(`signing key: unsupported curve ${curve ?? '(none)'}`);
  return name;
}

/** The signature algorithm for a signing key: SHA-256 with RSA, or ECDSA with SHA-256. */
export function signingAlgorithm(key: CryptoKey): { name: string; hash?: string } {
  return key.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
}
