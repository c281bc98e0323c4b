/**
 * Part 3 §18.8 TPM2_CertifyX509: the TPM completes and signs an X.509 certificate of a loaded
 * object. The caller supplies the parts it chooses (issuer, validity, subject, extensions and
 * optionally the signature AlgorithmIdentifier); the TPM adds the version, a serial number, the
 * AlgorithmIdentifier if missing and the object's SubjectPublicKeyInfo, and signs the digest of
 * the TBSCertificate those parts make, in RFC 5280 order.
 */
import { eccCurveInfo, hashInfo } from '../algorithms.js';
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC } from '../constants.js';
import { hash, rsaPssSaltSize } from '../crypto/index.js';
import {
  DER,
  derBitString,
  derBitStringValue,
  derContext,
  derNull,
  derOid,
  derRead,
  derSequence,
  derTlv,
  derUint32,
  derUnsigned,
  type DerElement,
} from '../crypto/der.js';
import { TpmError } from '../errors.js';
import { TPMA_OBJECT, TPMT_SIG_SCHEME, TPMT_SIGNATURE, type TPMT_PUBLIC } from '../marshal/objects.js';
import { TPM2B_DATA, TPM2B_DIGEST, TPM2B_MAX_BUFFER } from '../marshal/structures.js';
import { TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import type { KeyObject } from '../state/objects.js';
import { attestationSigner } from './attest-sign.js';
import { sign } from './signature.js';

/** The reference's SIZE_OF_X509_SERIAL_NUMBER: the serial is the first 20 octets of its digest. */
const SERIAL_NUMBER_BYTES = 20;
/**
 * The handle numbers in response codes. libtpms 0.9 reports objectHandle's errors as H2 and
 * signHandle's as H1, the reverse of their order in the command (and of the reference's
 * RC_CertifyX509_* values); this engine answers as swtpm does.
 */
const OBJECT_HANDLE = 2;
const SIGN_HANDLE = 1;
/** The [3] EXPLICIT tag of TBSCertificate.extensions. */
const EXTENSIONS_TAG = DER.CONTEXT + 3;

const OID_KEY_USAGE = derOid('2.5.29.15');
/** TCG's tpmaObject extension (2.23.133.10.1.1.1): the object's TPMA_OBJECT as a 32-bit BIT STRING. */
const OID_TCG_TPMA_OBJECT = derOid('2.23.133.10.1.1.1');

/** Per hash: its own OID, sha*WithRSAEncryption (RFC 4055) and ecdsa-with-SHA* (RFC 5758). */
const HASH_OIDS = new Map<number, { hash: string; pkcs1: string; ecdsa: string }>([
  [TPM_ALG.SHA1, { hash: '1.3.14.3.2.26', pkcs1: '1.2.840.113549.1.1.5', ecdsa: '1.2.840.10045.4.1' }],
  [TPM_ALG.SHA256, { hash: '2.16.840.1.101.3.4.2.1', pkcs1: '1.2.840.113549.1.1.11', ecdsa: '1.2.840.10045.4.3.2' }],
  [TPM_ALG.SHA384, { hash: '2.16.840.1.101.3.4.2.2', pkcs1: '1.2.840.113549.1.1.12', ecdsa: '1.2.840.10045.4.3.3' }],
  [TPM_ALG.SHA512, { hash: '2.16.840.1.101.3.4.2.3', pkcs1: '1.2.840.113549.1.1.13', ecdsa: '1.2.840.10045.4.3.4' }],
]);
const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const OID_MGF1 = '1.2.840.113549.1.1.8';
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';

/** KeyUsage bits as the left-justified UINT32 of its BIT STRING (Part 2 TPMA_X509_KEY_USAGE). */
const KU = {
  digitalSignature: 1 << 31,
  nonRepudiation: 1 << 30,
  keyEncipherment: 1 << 29,
  dataEncipherment: 1 << 28,
  keyAgreement: 1 << 27,
  keyCertSign: 1 << 26,
  cRLSign: 1 << 25,
  encipherOnly: 1 << 24,
  decipherOnly: 1 << 23,
} as const;
/** KeyUsage bits that need the object's `sign`, and those that need its `decrypt`. */
const KU_SIGN = KU.digitalSignature | KU.keyCertSign | KU.cRLSign;
const KU_DECRYPT = KU.keyEncipherment | KU.dataEncipherment | KU.keyAgreement | KU.encipherOnly | KU.decipherOnly;

const algorithmIdentifier = (oid: string, ...parameters: Uint8Array[]) => derSequence(derOid(oid), ...parameters);

/** The object's SubjectPublicKeyInfo (RFC 3279 rsaEncryption, RFC 5480 id-ecPublicKey with a named curve); null when it has no X.509 encoding. */
function subjectPublicKeyInfo(p: TPMT_PUBLIC): Uint8Array | null {
  if (p.type === TPM_ALG.RSA) {
    const exponent = (p.parameters as { exponent: number }).exponent || 65537;
    const rsaPublicKey = derSequence(derUnsigned(p.unique as Uint8Array), derUint32(exponent));
    return derSequence(algorithmIdentifier(OID_RSA_ENCRYPTION, derNull()), derBitString(rsaPublicKey));
  }
  if (p.type === TPM_ALG.ECC) {
    const curve = eccCurveInfo((p.parameters as { curveID: number }).curveID);
    if (!curve) return null;
    const { x, y } = p.unique as { x: Uint8Array; y: Uint8Array };
    const point = new Uint8Array(1 + x.length + y.length);
    point[0] = 0x04;
    point.set(x, 1);
    point.set(y, 1 + x.length);
    return derSequence(derSequence(derOid(OID_EC_PUBLIC_KEY), derOid(curve.oid)), derBitString(point));
  }
  return null;
}

/**
 * The signature AlgorithmIdentifier of the signing key and scheme; null for a combination
 * without one (HMAC, ECSchnorr, an unknown hash). RSASSA-PSS names its hash, MGF1 with the same
 * hash and the salt length the TPM signs with; with SHA-1 all are the defaults and are omitted
 * (RFC 4055 §3.1).
 */
function signatureAlgorithm(key: KeyObject, scheme: number, hashAlg: number): Uint8Array | null {
  const oids = HASH_OIDS.get(hashAlg);
  if (!oids) return null;
  const p = key.publicArea;
  if (p.type === TPM_ALG.RSA && scheme === TPM_ALG.RSASSA) return algorithmIdentifier(oids.pkcs1, derNull());
  if (p.type === TPM_ALG.RSA && scheme === TPM_ALG.RSAPSS) {
    if (hashAlg === TPM_ALG.SHA1) return algorithmIdentifier(OID_RSASSA_PSS, derNull());
    const hashId = algorithmIdentifier(oids.hash, derNull());
    const salt = rsaPssSaltSize(hashInfo(hashAlg)!.digestSize, (p.unique as Uint8Array).length);
    return algorithmIdentifier(
      OID_RSASSA_PSS,
      derSequence(derContext(0, hashId), derContext(1, algorithmIdentifier(OID_MGF1, hashId)), derContext(2, derUint32(salt))),
    );
  }
  if (p.type === TPM_ALG.ECC && scheme === TPM_ALG.ECDSA) return algorithmIdentifier(oids.ecdsa);
  return null;
}

/** The caller's TBSCertificate parts in the order they were given. */
interface PartialCertificate {
  /** Three (issuer, validity, subject) or four (signature AlgorithmIdentifier first) SEQUENCEs. */
  readonly sequences: Uint8Array[];
  /** The whole [3] element. */
  readonly extensions: Uint8Array;
}

/**
 * Splits partialCertificate as the reference does: one SEQUENCE spanning the buffer
 * (TPM_RC_SIZE otherwise), holding only SEQUENCEs and one [3], three or four SEQUENCEs and the
 * [3] (TPM_RC_VALUE otherwise). The codes are returned bare; the caller adds the parameter.
 */
function splitPartial(buf: Uint8Array): PartialCertificate | number {
  if (buf.length === 0) return TPM_RC.VALUE;
  const outer = derRead(buf, 0);
  if (!outer || outer.tag !== DER.SEQUENCE || outer.end !== buf.length) return TPM_RC.SIZE;
  const sequences: Uint8Array[] = [];
  let extensions: Uint8Array | null = null;
  let at = outer.valueStart;
  while (at < buf.length) {
    const element = derRead(buf, at);
    if (!element) break;
    if (element.tag === DER.SEQUENCE) {
      sequences.push(buf.subarray(element.start, element.end));
      at = element.end;
      if (sequences.length > 4) break;
    } else if (element.tag === EXTENSIONS_TAG) {
      if (extensions) return TPM_RC.VALUE;
      extensions = buf.subarray(element.start, element.end);
      at = element.end;
    } else return TPM_RC.VALUE;
  }
  if (at !== buf.length || sequences.length < 3 || sequences.length > 4 || !extensions) return TPM_RC.VALUE;
  return { sequences, extensions };
}

const startsWith = (buf: Uint8Array, at: number, prefix: Uint8Array) => prefix.every((b, i) => buf[at + i] === b);

/**
 * The bits of the extension `oid` among the Extension SEQUENCEs from `list`'s contents to the end
 * of `buf` (the whole [3]: the reference bounds the search by it, not by the Extensions
 * SEQUENCE's own length): the BIT STRING inside its OCTET STRING. undefined when absent, null
 * when malformed.
 */
function extensionBits(buf: Uint8Array, list: DerElement, oid: Uint8Array): number | null | undefined {
  for (let at = list.valueStart; at < buf.length; ) {
    const extension = derRead(buf, at);
    if (!extension || extension.tag !== DER.SEQUENCE) return null;
    at = extension.end;
    if (extension.end - extension.valueStart < oid.length || !startsWith(buf, extension.valueStart, oid)) continue;
    for (let p = extension.valueStart; p < extension.end; ) {
      const field = derRead(buf, p, extension.end);
      if (!field || field.end === field.valueStart) return null;
      if (field.tag === DER.OCTET_STRING) {
        // Bounded by the Extension, not by the OCTET STRING: the reference reads it so.
        const bits = derRead(buf, field.valueStart, extension.end);
        if (!bits || bits.tag !== DER.BIT_STRING) return null;
        return derBitStringValue(buf.subarray(bits.valueStart, bits.end));
      }
      p = field.end;
    }
    return null;
  }
  return undefined;
}

/**
 * The reference's X509ProcessExtensions: a TPMA_OBJECT extension must equal the object's
 * attributes (TPM_RC_ATTRIBUTES); KeyUsage is required and must fit the attributes: signing uses
 * need `sign`, decryption uses `decrypt`, nonRepudiation `fixedTPM`, keyAgreement `restricted`
 * (TPM_RC_VALUE, as libtpms 0.9 answers; later references answer TPM_RC_ATTRIBUTES).
 */
function checkExtensions(extensions: Uint8Array, attributes: number): number {
  const outer = derRead(extensions, 0);
  if (!outer || outer.tag !== EXTENSIONS_TAG) return TPM_RC.VALUE;
  const list = derRead(extensions, outer.valueStart);
  if (!list || list.tag !== DER.SEQUENCE) return TPM_RC.VALUE;
  const tpma = extensionBits(extensions, list, OID_TCG_TPMA_OBJECT);
  if (tpma === null) return TPM_RC.VALUE;
  if (tpma !== undefined && tpma !== attributes >>> 0) return TPM_RC.ATTRIBUTES;
  const keyUsage = extensionBits(extensions, list, OID_KEY_USAGE);
  if (keyUsage === null || keyUsage === undefined) return TPM_RC.VALUE;
  const has = (bit: number) => (attributes & bit) !== 0;
  if (
    ((keyUsage & KU_SIGN) !== 0 && !has(TPMA_OBJECT.sign)) ||
    ((keyUsage & KU_DECRYPT) !== 0 && !has(TPMA_OBJECT.decrypt)) ||
    ((keyUsage & KU.nonRepudiation) !== 0 && !has(TPMA_OBJECT.fixedTPM)) ||
    ((keyUsage & KU.keyAgreement) !== 0 && !has(TPMA_OBJECT.restricted))
  ) {
    return TPM_RC.VALUE;
  }
  return TPM_RC.SUCCESS;
}

/**
 * objectHandle needs ADMIN authorization, signHandle USER. The serial number is the first 20
 * octets of H_nameAlg(signing key)(signature algorithm || issuer || validity || subject ||
 * subjectPublicKeyInfo || extensions || signing key's Name || object's Name), so the same
 * request gives the same serial. RCs in the reference's order, with libtpms 0.9's handle numbers
 * (signHandle H1, objectHandle H2): TPM_RC_SIZE+P1 (reserved not empty), TPM_RC_KEY at signHandle
 * (not a signing key, or TPM_RH_NULL, which has nothing to sign with), TPM_RC_SCHEME+P2,
 * TPM_RC_ASYMMETRIC at objectHandle (no SubjectPublicKeyInfo for it), TPM_RC_SIZE/TPM_RC_VALUE+P3
 * (partialCertificate), TPM_RC_SCHEME at signHandle (no AlgorithmIdentifier for the key and
 * scheme when the caller gave none), TPM_RC_ATTRIBUTES at objectHandle (a TPMA_OBJECT extension
 * that differs from the object's attributes).
 */
export const CertifyX509 = command({
  code: TPM_CC.CertifyX509,
  handles: [
    { name: 'objectHandle', type: TPMI_DH_OBJECT, auth: 'ADMIN' },
    { name: 'signHandle', type: TPMI_DH_OBJECT.plus, auth: 'USER' },
  ],
  params: { reserved: TPM2B_DATA, inScheme: TPMT_SIG_SCHEME, partialCertificate: TPM2B_MAX_BUFFER },
  response: { addedToCertificate: TPM2B_MAX_BUFFER, tbsDigest: TPM2B_DIGEST, signature: TPMT_SIGNATURE },
  run(tpm, { objectHandle, signHandle }, { reserved, inScheme, partialCertificate }) {
    if (reserved.length !== 0) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    const { key, scheme, hashAlg } = attestationSigner(tpm, signHandle, inScheme, { handle: SIGN_HANDLE, param: 2 });
    if (!key) throw new TpmError(TPM_RC.KEY, { handle: SIGN_HANDLE });
    const object = tpm.keyObject(objectHandle);
    const spki = object ? subjectPublicKeyInfo(object.publicArea) : null;
    if (!object || !spki) throw new TpmError(TPM_RC.ASYMMETRIC, { handle: OBJECT_HANDLE });
    const partial = splitPartial(partialCertificate);
    if (typeof partial === 'number') throw new TpmError(partial, { param: 3 });
    const given = partial.sequences.length === 4 ? partial.sequences[0]! : null;
    const signatureAlg = given ?? signatureAlgorithm(key, scheme, hashAlg);
    if (!signatureAlg) throw new TpmError(TPM_RC.SCHEME, { handle: SIGN_HANDLE });
    const rc = checkExtensions(partial.extensions, object.publicArea.objectAttributes);
    if (rc === TPM_RC.ATTRIBUTES) throw new TpmError(rc, { handle: OBJECT_HANDLE });
    if (rc !== TPM_RC.SUCCESS) throw new TpmError(rc, { param: 3 });

    const [issuer, validity, subject] = partial.sequences.slice(-3) as [Uint8Array, Uint8Array, Uint8Array];
    const signed = [signatureAlg, issuer, validity, subject, spki, partial.extensions];
    const serial = hash(key.publicArea.nameAlg, ...signed, key.name, object.name).subarray(0, SERIAL_NUMBER_BYTES);
    const version = derContext(0, derUint32(2));
    const serialNumber = derUnsigned(serial);
    const tbsDigest = hash(hashAlg, derTlv(DER.SEQUENCE, version, serialNumber, ...signed));
    const addedToCertificate = derSequence(version, serialNumber, ...(given ? [] : [signatureAlg]), spki);
    return { addedToCertificate, tbsDigest, signature: sign(tpm, key, scheme, hashAlg, tbsDigest) };
  },
});
