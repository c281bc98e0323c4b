/**
 * EK and SPK templates (TCG EK Credential Profile for TPM 2.0, §2.1.5 "Default EK Public Area
 * Template", low range L-1/L-2 and high range H-2..H-5), their persistent handles and NV
 * indices as swtpm_setup uses them (swtpm-compat §6.3, §6.4), and the public key of a created
 * EK as a SubjectPublicKeyInfo.
 */
import { createPublicKey } from 'node:crypto';
import { TPM_ALG, TPM_ECC_CURVE } from '../tpm/constants.js';
import { Bytes, Reader } from './tpm-client.js';

/** --ek1keyalgo / --ek2keyalgo names, with swtpm_setup's aliases. */
export const EK_ALGORITHMS = ['rsa2048', 'rsa3072', 'rsa4096', 'secp256r1', 'secp384r1', 'secp521r1'] as const;
export type EkAlgorithm = (typeof EK_ALGORITHMS)[number];
const ALIASES: Record<string, EkAlgorithm> = { ecc_nist_p256: 'secp256r1', ecc_nist_p384: 'secp384r1', ecc_nist_p521: 'secp521r1' };

export function parseEkAlgorithm(name: string): EkAlgorithm | null {
  const n = name.trim().toLowerCase();
  return (EK_ALGORITHMS as readonly string[]).includes(n) ? (n as EkAlgorithm) : (ALIASES[n] ?? null);
}

/** TCG PolicyA (SHA-256) and PolicyB (SHA-384/SHA-512): PolicySecret(TPM_RH_ENDORSEMENT). */
const POLICY_A_SHA256 = '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa';
const POLICY_B_SHA384 = 'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12';
const POLICY_B_SHA512 =
  'b8221ca69e8550a4914de3faa6a18c072cc01208073a928d5d66d59ef79e49a429c41a6b269571d57edb25fbdb1838425608b413cd616a5f6db5b6071af99bea';

const hexBytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

/** TPMA_OBJECT bits of the EK templates. */
const ATTR = {
  fixedTPM: 0x2,
  fixedParent: 0x10,
  sensitiveDataOrigin: 0x20,
  userWithAuth: 0x40,
  adminWithPolicy: 0x80,
  noDA: 0x400,
  restricted: 0x10000,
  decrypt: 0x20000,
  sign: 0x40000,
} as const;

export interface EkProfile {
  algorithm: EkAlgorithm;
  keyType: 'rsa' | 'ecc';
  /** Persistent handle swtpm_setup makes the EK at. */
  handle: number;
  /** NV index of its certificate. */
  certIndex: number;
  /** NV index of its template (written only with non-default attributes). */
  templateIndex: number;
  /** A human-readable name for messages. */
  label: string;
}

export const EK_PROFILES: Record<EkAlgorithm, EkProfile> = {
  rsa2048: { algorithm: 'rsa2048', keyType: 'rsa', handle: 0x81010001, certIndex: 0x01c00002, templateIndex: 0x01c00004, label: 'RSA 2048' },
  secp256r1: { algorithm: 'secp256r1', keyType: 'ecc', handle: 0x8101000a, certIndex: 0x01c0000a, templateIndex: 0x01c0000b, label: 'ECC P-256' },
  secp384r1: { algorithm: 'secp384r1', keyType: 'ecc', handle: 0x81010016, certIndex: 0x01c00016, templateIndex: 0x01c00017, label: 'ECC P-384' },
  secp521r1: { algorithm: 'secp521r1', keyType: 'ecc', handle: 0x81010018, certIndex: 0x01c00018, templateIndex: 0x01c00019, label: 'ECC P-521' },
  rsa3072: { algorithm: 'rsa3072', keyType: 'rsa', handle: 0x8101001c, certIndex: 0x01c0001c, templateIndex: 0x01c0001d, label: 'RSA 3072' },
  rsa4096: { algorithm: 'rsa4096', keyType: 'rsa', handle: 0x8101001e, certIndex: 0x01c0001e, templateIndex: 0x01c0001f, label: 'RSA 4096' },
};

/** The platform certificate's NV index (TCG PC Client Platform Firmware Profile). */
export const PLATFORM_CERT_INDEX = 0x01c08000;
/** The storage primary key's persistent handle (--create-spk). */
export const SPK_HANDLE = 0x81000001;

export interface EkOptions {
  allowSigning?: boolean;
  decryption?: boolean;
}

/** True when the template differs from the profile's default, so it must be published in NV. */
export const nonDefaultTemplate = (o: EkOptions) => o.allowSigning === true;

/** objectAttributes: the profile's, or with --allow-signing sign (+decrypt with --decryption), not restricted. */
function ekAttributes(highRange: boolean, o: EkOptions): number {
  const base = ATTR.fixedTPM | ATTR.fixedParent | ATTR.sensitiveDataOrigin | ATTR.adminWithPolicy | (highRange ? ATTR.userWithAuth : 0);
  if (!o.allowSigning) return base | ATTR.restricted | ATTR.decrypt;
  return base | ATTR.sign | (o.decryption ? ATTR.decrypt : 0);
}

/** TPMT_PUBLIC of the EK template for `algorithm`. */
export function ekTemplate(algorithm: EkAlgorithm, o: EkOptions = {}): Uint8Array {
  const w = new Bytes();
  const lowRange = algorithm === 'rsa2048' || algorithm === 'secp256r1';
  const nameAlg = lowRange ? TPM_ALG.SHA256 : algorithm === 'secp521r1' ? TPM_ALG.SHA512 : TPM_ALG.SHA384;
  const policy = lowRange ? POLICY_A_SHA256 : nameAlg === TPM_ALG.SHA512 ? POLICY_B_SHA512 : POLICY_B_SHA384;
  const rsa = EK_PROFILES[algorithm].keyType === 'rsa';
  w.u16(rsa ? TPM_ALG.RSA : TPM_ALG.ECC).u16(nameAlg).u32(ekAttributes(!lowRange, o)).sized(hexBytes(policy));
  // A signing EK is not a storage key: no symmetric algorithm.
  if (o.allowSigning) w.u16(TPM_ALG.NULL);
  else w.u16(TPM_ALG.AES).u16(lowRange ? 128 : 256).u16(TPM_ALG.CFB);
  w.u16(TPM_ALG.NULL); // scheme
  if (rsa) {
    const bits = Number(algorithm.slice(3));
    // The low-range template's unique is the modulus size of zeros; the high range leaves it empty.
    w.u16(bits).u32(0).sized(new Uint8Array(lowRange ? bits / 8 : 0));
  } else {
    const curve = { secp256r1: TPM_ECC_CURVE.NIST_P256, secp384r1: TPM_ECC_CURVE.NIST_P384, secp521r1: TPM_ECC_CURVE.NIST_P521 }[algorithm as 'secp256r1'];
    const unique = new Uint8Array(lowRange ? 32 : 0);
    w.u16(curve).u16(TPM_ALG.NULL).sized(unique).sized(unique);
  }
  return w.build();
}

/** SPK (SRK) template: RSA-3072 or ECC P-384, SHA-384, AES-256-CFB, restricted decrypt, userWithAuth, noDA. */
export function spkTemplate(ecc: boolean): Uint8Array {
  const attrs = ATTR.fixedTPM | ATTR.fixedParent | ATTR.sensitiveDataOrigin | ATTR.userWithAuth | ATTR.noDA | ATTR.restricted | ATTR.decrypt;
  const w = new Bytes().u16(ecc ? TPM_ALG.ECC : TPM_ALG.RSA).u16(TPM_ALG.SHA384).u32(attrs).u16(0).u16(TPM_ALG.AES).u16(256).u16(TPM_ALG.CFB).u16(TPM_ALG.NULL);
  if (ecc) w.u16(TPM_ECC_CURVE.NIST_P384).u16(TPM_ALG.NULL).sized(new Uint8Array(48)).sized(new Uint8Array(48));
  else w.u16(3072).u32(0).sized(new Uint8Array(384));
  return w.build();
}

export interface EkPublicKey {
  keyType: 'rsa' | 'ecc';
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
  /** RSA modulus, or the ECC point's x and y. */
  modulus?: Uint8Array;
  x?: Uint8Array;
  y?: Uint8Array;
}

const CURVE_JWK: Record<number, string> = { [TPM_ECC_CURVE.NIST_P256]: 'P-256', [TPM_ECC_CURVE.NIST_P384]: 'P-384', [TPM_ECC_CURVE.NIST_P521]: 'P-521' };

/** Reads the public key out of a TPMT_PUBLIC (Part 2 §12.2.4) returned by CreatePrimary. */
export function publicKeyOf(publicArea: Uint8Array): EkPublicKey {
  const r = new Reader(publicArea);
  const type = r.u16();
  r.u16();
  r.u32();
  r.sized();
  const sym = r.u16();
  if (sym !== TPM_ALG.NULL) r.bytes(4);
  const scheme = r.u16();
  if (scheme !== TPM_ALG.NULL) r.u16();
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  if (type === TPM_ALG.RSA) {
    r.u16();
    const exponent = r.u32() || 0x10001;
    const modulus = r.sized().slice();
    const e = Buffer.from(exponent.toString(16).padStart(6, '0'), 'hex');
    const key = createPublicKey({ key: { kty: 'RSA', n: b64(modulus), e: b64(e) }, format: 'jwk' });
    return { keyType: 'rsa', modulus, spki: new Uint8Array(key.export({ type: 'spki', format: 'der' })) };
  }
  if (type === TPM_ALG.ECC) {
    const curve = r.u16();
    const kdf = r.u16();
    if (kdf !== TPM_ALG.NULL) r.u16();
    const x = r.sized().slice();
    const y = r.sized().slice();
    const crv = CURVE_JWK[curve];
    if (!crv) throw new Error(`unsupported ECC curve 0x${curve.toString(16)}`);
    const key = createPublicKey({ key: { kty: 'EC', crv, x: b64(x), y: b64(y) }, format: 'jwk' });
    return { keyType: 'ecc', x, y, spki: new Uint8Array(key.export({ type: 'spki', format: 'der' })) };
  }
  throw new Error(`unexpected key type 0x${type.toString(16)}`);
}
