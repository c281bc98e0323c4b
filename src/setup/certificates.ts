/**
 * EK and platform certificates (TCG EK Credential Profile for TPM 2.0 §3.5; swtpm-compat §6.5):
 * X.509 v3 signed by the local CA, valid until 99991231235959Z, subject CN=<vmid> (CN=unknown
 * without one, as swtpm_localca does), and the extensions in the order swtpm_cert writes them,
 * so the two can be compared field by field.
 */
import type * as Asn1js from 'asn1js';
import type { LocalCa } from './localca.js';
import { NO_EXPIRY, serialHex } from './localca.js';
import { TCG_OID, X509_OID } from './tcg-oids.js';
import { asn1Lib, signingAlgorithm, x509Lib } from './x509-provider.js';

/** What the TPM reports about itself (swtpm's CMD_GET_INFO 0x3 values). */
export interface TpmIdentity {
  /** e.g. "id:00001014" */
  manufacturer: string;
  model: string;
  /** e.g. "id:20191023" */
  version: string;
  specFamily: string;
  specLevel: number;
  specRevision: number;
}

export interface PlatformIdentity {
  manufacturer: string;
  model: string;
  version: string;
}

export interface EkCertificateRequest {
  /** The EK's SubjectPublicKeyInfo (DER). */
  spki: Uint8Array;
  keyType: 'rsa' | 'ecc';
  vmid?: string;
  tpm: TpmIdentity;
  /** --allow-signing: digitalSignature; with --decryption also the encryption usage. */
  allowSigning?: boolean;
  decryption?: boolean;
}

/** A directoryName of one attribute per RDN, each a UTF8String (as swtpm_cert encodes them). */
function directoryName(attributes: [string, string][]): Asn1js.Constructed {
  const asn1js = asn1Lib();
  return new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: 4 },
    value: [
      new asn1js.Sequence({
        value: attributes.map(
          ([oid, value]) =>
            new asn1js.Set({
              value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), new asn1js.Utf8String({ value })] })],
            }),
        ),
      }),
    ],
  });
}

function subjectAltName(attributes: [string, string][]): ArrayBuffer {
  const asn1js = asn1Lib();
  return new asn1js.Sequence({ value: [directoryName(attributes)] }).toBER();
}

/** subjectDirectoryAttributes with TPMSpecification { family UTF8String, level, revision }. */
function tpmSpecification(tpm: TpmIdentity): ArrayBuffer {
  const asn1js = asn1Lib();
  const spec = new asn1js.Sequence({
    value: [new asn1js.Utf8String({ value: tpm.specFamily }), new asn1js.Integer({ value: tpm.specLevel }), new asn1js.Integer({ value: tpm.specRevision })],
  });
  const attribute = new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: TCG_OID.tpmSpecification }), new asn1js.Set({ value: [spec] })] });
  return new asn1js.Sequence({ value: [attribute] }).toBER();
}

/** swtpm_cert's key usage rule for TPM 2 EK and platform certificates. */
export function keyUsageFlags(keyType: 'rsa' | 'ecc', allowSigning = false, decryption = false): number {
  const { KeyUsageFlags } = x509Lib();
  let flags = allowSigning ? KeyUsageFlags.digitalSignature : 0;
  if (!allowSigning || decryption) flags |= keyType === 'ecc' ? KeyUsageFlags.keyAgreement : KeyUsageFlags.keyEncipherment;
  return flags;
}

function subjectOf(vmid: string | undefined): string {
  const cn = vmid !== undefined && vmid !== '' ? vmid : 'unknown';
  // RFC 4514 escaping: the vmid comes from the user (libvirt passes name:uuid).
  return `CN=${cn.replace(/([,+"\\<>;=])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ')}`;
}

async function issue(
  ca: LocalCa,
  spki: Uint8Array,
  vmid: string | undefined,
  extensions: import('@peculiar/x509').Extension[],
): Promise<Uint8Array> {
  const x = x509Lib();
  const issuer = new x.X509Certificate(ca.issuerCert);
  const cert = await x.X509CertificateGenerator.create({
    serialNumber: serialHex(ca.nextSerial()),
    subject: subjectOf(vmid),
    issuer: issuer.subject,
    notBefore: new Date(),
    notAfter: NO_EXPIRY,
    publicKey: spki,
    signingKey: ca.signingKey,
    signingAlgorithm: signingAlgorithm(ca.signingKey),
    extensions,
  });
  return new Uint8Array(cert.rawData);
}

async function authorityKeyIdentifier(ca: LocalCa) {
  const x = x509Lib();
  const issuer = new x.X509Certificate(ca.issuerCert);
  const ski = issuer.getExtension(x.SubjectKeyIdentifierExtension);
  return ski ? new x.AuthorityKeyIdentifierExtension(ski.keyId) : x.AuthorityKeyIdentifierExtension.create(issuer.publicKey);
}

/** An EK certificate (DER). */
export async function createEkCertificate(ca: LocalCa, req: EkCertificateRequest): Promise<Uint8Array> {
  const x = x509Lib();
  return issue(ca, req.spki, req.vmid, [
    new x.ExtendedKeyUsageExtension([TCG_OID.ekCertificate]),
    new x.Extension(
      X509_OID.subjectAltName,
      true,
      subjectAltName([
        [TCG_OID.tpmManufacturer, req.tpm.manufacturer],
        [TCG_OID.tpmModel, req.tpm.model],
        [TCG_OID.tpmVersion, req.tpm.version],
      ]),
    ),
    new x.BasicConstraintsExtension(false, undefined, true),
    new x.Extension(X509_OID.subjectDirectoryAttributes, false, tpmSpecification(req.tpm)),
    await authorityKeyIdentifier(ca),
    new x.KeyUsagesExtension(keyUsageFlags(req.keyType, req.allowSigning, req.decryption), true),
  ]);
}

/** A platform certificate (DER) for the platform's EK, in swtpm_cert's X.509 form. */
export async function createPlatformCertificate(
  ca: LocalCa,
  req: { spki: Uint8Array; keyType: 'rsa' | 'ecc'; vmid?: string; platform: PlatformIdentity; allowSigning?: boolean; decryption?: boolean },
): Promise<Uint8Array> {
  const x = x509Lib();
  return issue(ca, req.spki, req.vmid, [
    new x.Extension(
      X509_OID.subjectAltName,
      true,
      subjectAltName([
        [TCG_OID.platformManufacturer, req.platform.manufacturer],
        [TCG_OID.platformModel, req.platform.model],
        [TCG_OID.platformVersion, req.platform.version],
      ]),
    ),
    new x.BasicConstraintsExtension(false, undefined, true),
    await authorityKeyIdentifier(ca),
    new x.KeyUsagesExtension(keyUsageFlags(req.keyType, req.allowSigning, req.decryption), true),
    new x.ExtendedKeyUsageExtension([TCG_OID.platformCertificate]),
  ]);
}
