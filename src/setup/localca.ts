/**
 * The local CA that signs EK and platform certificates (swtpm_localca's role, swtpm-compat
 * §6.5). When the signing key or the issuer certificate is missing it creates a root CA and an
 * intermediate signing CA (RSA-3072, SHA-256, valid until 9999) in the CA's state directory; the
 * intermediate signs. Everything happens under the CA lock, so many VMs can be provisioned at
 * once against one CA directory.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { LocalCaConfig } from './localca-config.js';
import { acquireLocalCaLock, LOCK_FILE_NAME } from './localca-lock.js';
import { signingAlgorithm, signingCryptoKey, x509Lib, type CryptoKey } from './x509-provider.js';

/** RFC 5280 §4.1.2.5: GeneralizedTime 99991231235959Z means "no well-defined expiration". */
export const NO_EXPIRY = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));
export const ROOT_SUBJECT = 'CN=vtpmd-localca-rootca';
export const INTERMEDIATE_SUBJECT = 'CN=vtpmd-localca';
export const ROOT_KEY_FILE = 'localca-rootca-privkey.pem';
export const ROOT_CERT_FILE = 'localca-rootca-cert.pem';
const CA_KEY_BITS = 3072;
/** RFC 5280 §4.1.2.2: at most 20 octets. */
const MAX_SERIAL = (1n << 159n) - 1n;

export class LocalCaError extends Error {
  readonly code = 'VTPMD_LOCALCA';
}

/** What issues certificates while the CA lock is held. */
export interface LocalCa {
  /** The intermediate's private key as a WebCrypto signing key. */
  readonly signingKey: CryptoKey;
  /** The issuer certificate (DER): its subject is every certificate's issuer. */
  readonly issuerCert: Uint8Array;
  /** Takes the next serial number from the serial file (written back before it is used). */
  nextSerial(): bigint;
  /** True when this run created the CA. */
  readonly created: boolean;
}

/** Writes through a temp file and a rename, so a crash never leaves half a key or serial. */
function writeAtomic(file: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${file}.tmp.${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, file);
}

function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new LocalCaError(
      `the local CA directory ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        'run as a user that may write there, or name another directory with statedir= in the CA configuration (--config)',
    );
  }
}

/**
 * Serial file: the decimal serial of the last certificate issued. A missing file counts as 1
 * (the first certificate gets 2, as swtpm_localca 0.7 does); content that is not a number
 * restarts at 1; a serial that would exceed 20 octets restarts at a random 64-bit value.
 */
export function nextSerialFromFile(file: string): bigint {
  let last = 1n;
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8').trim();
    last = /^[0-9]{1,60}$/.test(text) ? BigInt(text) : 1n;
  }
  let next = last + 1n;
  if (next > MAX_SERIAL) next = BigInt(`0x${Buffer.from(randomBytes(8)).toString('hex')}`) | 1n;
  writeAtomic(file, next.toString(), 0o644);
  return next;
}

/** A serial as the hex string @peculiar/x509 takes (a leading zero octet keeps it positive). */
export function serialHex(serial: bigint): string {
  let hex = serial.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex[0]!, 16) >= 8) hex = `00${hex}`;
  return hex;
}

function readKey(file: string, password: string | undefined): KeyObject {
  try {
    return createPrivateKey({ key: readFileSync(file), ...(password !== undefined ? { passphrase: password } : {}) });
  } catch (e) {
    throw new LocalCaError(`cannot read the CA signing key ${file}: ${(e as Error).message}`);
  }
}

async function caExtensions(publicKey: CryptoKey, issuerKey: CryptoKey | null) {
  const x = x509Lib();
  return [
    new x.BasicConstraintsExtension(true, undefined, true),
    new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign, true),
    await x.SubjectKeyIdentifierExtension.create(publicKey),
    ...(issuerKey ? [await x.AuthorityKeyIdentifierExtension.create(issuerKey)] : []),
  ];
}

function newRsaKey(): { key: KeyObject; pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: CA_KEY_BITS, publicExponent: 0x10001 });
  return { key: privateKey, pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

async function publicCryptoKey(key: KeyObject): Promise<CryptoKey> {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return (await webcrypto.subtle.importKey('spki', spki, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify'])) as CryptoKey;
}

/** Creates the root and the intermediate; the intermediate's key and certificate go where the config says. */
async function createCa(config: LocalCaConfig): Promise<void> {
  const x = x509Lib();
  const dir = path.dirname(config.signingkey);
  ensureWritableDir(dir);
  ensureWritableDir(path.dirname(config.issuercert));
  const root = newRsaKey();
  const rootSign = await signingCryptoKey(root.key);
  const rootPublic = await publicCryptoKey(root.key);
  const rootCert = await x.X509CertificateGenerator.create({
    serialNumber: serialHex(BigInt(`0x${randomBytes(16).toString('hex')}`) | 1n),
    subject: ROOT_SUBJECT,
    issuer: ROOT_SUBJECT,
    notBefore: new Date(),
    notAfter: NO_EXPIRY,
    publicKey: rootPublic,
    signingKey: rootSign,
    signingAlgorithm: signingAlgorithm(rootSign),
    extensions: await caExtensions(rootPublic, null),
  });
  const mid = newRsaKey();
  const midPublic = await publicCryptoKey(mid.key);
  const midCert = await x.X509CertificateGenerator.create({
    serialNumber: serialHex(BigInt(`0x${randomBytes(16).toString('hex')}`) | 1n),
    subject: INTERMEDIATE_SUBJECT,
    issuer: rootCert.subject,
    notBefore: new Date(),
    notAfter: NO_EXPIRY,
    publicKey: midPublic,
    signingKey: rootSign,
    signingAlgorithm: signingAlgorithm(rootSign),
    extensions: await caExtensions(midPublic, rootPublic),
  });
  writeAtomic(path.join(dir, ROOT_KEY_FILE), root.pem, 0o640);
  writeAtomic(path.join(dir, ROOT_CERT_FILE), rootCert.toString('pem') + '\n', 0o644);
  writeAtomic(config.signingkey, mid.pem, 0o640);
  writeAtomic(config.issuercert, midCert.toString('pem') + '\n', 0o644);
}

/**
 * Runs `fn` with the CA locked: creates the CA first if its key or certificate is missing.
 * `lockTimeoutMs` bounds the wait for another provisioning run.
 */
export async function withLocalCa<T>(config: LocalCaConfig, fn: (ca: LocalCa) => Promise<T>, lockTimeoutMs?: number): Promise<T> {
  ensureWritableDir(config.statedir);
  const release = await acquireLocalCaLock(path.join(config.statedir, LOCK_FILE_NAME), lockTimeoutMs);
  try {
    const missing = !existsSync(config.signingkey) || !existsSync(config.issuercert);
    if (missing) await createCa(config);
    const key = readKey(config.signingkey, config.signingkeyPassword);
    let issuerCert: Uint8Array;
    try {
      issuerCert = new Uint8Array(new (x509Lib().X509Certificate)(readFileSync(config.issuercert, 'utf8')).rawData);
    } catch (e) {
      throw new LocalCaError(`cannot read the issuer certificate ${config.issuercert}: ${(e as Error).message}`);
    }
    const signingKey = await signingCryptoKey(key);
    ensureWritableDir(path.dirname(config.certserial));
    return await fn({ signingKey, issuerCert, created: missing, nextSerial: () => nextSerialFromFile(config.certserial) });
  } finally {
    release();
  }
}
