/**
 * @peculiar/x509 works on WebCrypto keys; Node's own WebCrypto (OpenSSL underneath) is the
 * provider. Set once, before the first certificate is built or parsed.
 */
// @peculiar/x509's dependency injection (tsyringe) needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import { webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Node's WebCrypto key type (the DOM's CryptoKey is not in this project's libs). */
export type CryptoKey = webcrypto.CryptoKey;

let installed = false;

export function x509Lib(): typeof x509 {
  if (!installed) {
    x509.cryptoProvider.set(webcrypto as never);
    installed = true;
  }
  return x509;
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
