/** Part 3 §20 Signing and Signature Verification: TPM2_VerifySignature, TPM2_Sign (RSASSA, RSAPSS, ECDSA, ECSCHNORR, HMAC). */
import { CONTEXT_INTEGRITY_HASH_ALG, hashInfo } from '../algorithms.js';
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH, TPM_ST } from '../constants.js';
import { constantTimeEqual, ecdsaSign, ecdsaVerify, ecSchnorrSign, ecSchnorrVerify, hmac, rsapssSign, rsapssVerify, rsassaSign, rsassaVerify } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import {
  TPMA_OBJECT,
  TPMT_SIG_SCHEME,
  TPMT_SIGNATURE,
  type TPMS_ECC_POINT,
  type TPMT_PUBLIC,
} from '../marshal/objects.js';
import { TPM2B_DIGEST, TPMT_TK_HASHCHECK, TPMT_TK_VERIFIED } from '../marshal/structures.js';
import { TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import type { KeyObject } from '../state/objects.js';
import type { Tpm } from '../tpm.js';
import { hashCheckTicket, verifiedTicketDigest } from './tickets.js';

type Scheme = { scheme: number; details: { hashAlg: number } | null };

/** The signing scheme each key type can use. */
const TYPE_SCHEMES: Record<number, readonly number[]> = {
  [TPM_ALG.RSA]: [TPM_ALG.RSASSA, TPM_ALG.RSAPSS],
  [TPM_ALG.ECC]: [TPM_ALG.ECDSA, TPM_ALG.ECSCHNORR],
  [TPM_ALG.KEYEDHASH]: [TPM_ALG.HMAC],
};

/** The reference's IsSigningObject for a loaded object: the sign attribute, and not a symmetric cipher. */
export function isSigningKey(key: KeyObject): boolean {
  const { type, objectAttributes } = key.publicArea;
  return (objectAttributes & TPMA_OBJECT.sign) !== 0 && type !== TPM_ALG.SYMCIPHER;
}

/** The loaded (transient or persistent) signing key at `handle`, else `rc`+H1. */
function signingKey(tpm: Tpm, handle: number, rc: number): KeyObject {
  const object = tpm.keyObject(handle);
  if (!object) throw new TpmError(rc, { handle: 1 });
  if (!isSigningKey(object)) throw new TpmError(rc, { handle: 1 });
  return object;
}

/**
 * The reference's CryptSelectSignScheme: the key's scheme when the command gives NULL, the
 * command's when the key has none; both given must agree in scheme and hash. Neither, or a
 * scheme the key type cannot sign with, is TPM_RC_SCHEME at the scheme's parameter `param`.
 */
export function selectScheme(publicArea: TPMT_PUBLIC, inScheme: Scheme, param = 2): { scheme: number; hashAlg: number } {
  const keyScheme = (publicArea.parameters as { scheme: Scheme }).scheme;
  let chosen: Scheme;
  if (keyScheme.scheme === TPM_ALG.NULL) chosen = inScheme;
  else if (inScheme.scheme === TPM_ALG.NULL) chosen = keyScheme;
  else if (keyScheme.scheme === inScheme.scheme && keyScheme.details?.hashAlg === inScheme.details?.hashAlg) chosen = inScheme;
  else throw new TpmError(TPM_RC.SCHEME, { param });
  const hashAlg = chosen.details?.hashAlg ?? TPM_ALG.NULL;
  if (!TYPE_SCHEMES[publicArea.type]?.includes(chosen.scheme) || !hashInfo(hashAlg)) throw new TpmError(TPM_RC.SCHEME, { param });
  return { scheme: chosen.scheme, hashAlg };
}

const rsaPublic = (p: TPMT_PUBLIC) => ({ n: p.unique as Uint8Array, exponent: (p.parameters as { exponent: number }).exponent });
const curveOf = (p: TPMT_PUBLIC) => (p.parameters as { curveID: number }).curveID;

/** The reference's CryptSign: the signature of `digest` under the selected scheme (Sign and the attestation commands). */
export function sign(tpm: Tpm, key: KeyObject, scheme: number, hashAlg: number, digest: Uint8Array): TPMT_SIGNATURE {
  const p = key.publicArea;
  switch (scheme) {
    case TPM_ALG.RSASSA:
    case TPM_ALG.RSAPSS: {
      const priv = { ...rsaPublic(p), p: key.sensitive };
      const sig = scheme === TPM_ALG.RSASSA
        ? rsassaSign(priv, hashAlg, digest, tpm.rsaCache)
        : rsapssSign(priv, hashAlg, digest, (n) => tpm.random(n), tpm.rsaCache);
      return { sigAlg: scheme, signature: { hash: hashAlg, sig } };
    }
    case TPM_ALG.ECDSA:
    case TPM_ALG.ECSCHNORR: {
      const { r, s } = scheme === TPM_ALG.ECDSA
        ? ecdsaSign(curveOf(p), key.sensitive, digest, (n) => tpm.random(n))
        : ecSchnorrSign(curveOf(p), hashAlg, key.sensitive, digest, (n) => tpm.random(n));
      return { sigAlg: scheme, signature: { hash: hashAlg, signatureR: r, signatureS: s } };
    }
    default:
      return { sigAlg: TPM_ALG.HMAC, signature: { hashAlg, digest: hmac(hashAlg, key.sensitive, digest) } };
  }
}

/**
 * The reference's CryptValidateSignature: TPM_RC_SCHEME when the signature's algorithm does
 * not belong to the key type, TPM_RC_SIGNATURE when it does not verify, TPM_RC_HANDLE for an
 * HMAC key without its secret, each at the signature's parameter number `param`.
 */
export function verifySignature(key: KeyObject, digest: Uint8Array, signature: TPMT_SIGNATURE, param: number): void {
  const p = key.publicArea;
  const { sigAlg } = signature;
  if (sigAlg === TPM_ALG.NULL) throw new TpmError(TPM_RC.SIGNATURE, { param });
  if (!TYPE_SCHEMES[p.type]?.includes(sigAlg)) throw new TpmError(TPM_RC.SCHEME, { param });
  let ok: boolean;
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    const { hash, sig } = signature.signature as { hash: number; sig: Uint8Array };
    ok = sigAlg === TPM_ALG.RSASSA ? rsassaVerify(rsaPublic(p), hash, digest, sig) : rsapssVerify(rsaPublic(p), hash, digest, sig);
  } else if (sigAlg === TPM_ALG.ECDSA || sigAlg === TPM_ALG.ECSCHNORR) {
    const { hash, signatureR, signatureS } = signature.signature as { hash: number; signatureR: Uint8Array; signatureS: Uint8Array };
    ok = sigAlg === TPM_ALG.ECDSA
      ? ecdsaVerify(curveOf(p), p.unique as TPMS_ECC_POINT, digest, signatureR, signatureS)
      : ecSchnorrVerify(curveOf(p), hash, p.unique as TPMS_ECC_POINT, digest, signatureR, signatureS);
  } else {
    if (key.publicOnly) throw new TpmError(TPM_RC.HANDLE, { param });
    const { hashAlg, digest: mac } = signature.signature as { hashAlg: number; digest: Uint8Array };
    const keyScheme = (p.parameters as { scheme: Scheme }).scheme;
    ok = (keyScheme.scheme === TPM_ALG.NULL || keyScheme.details?.hashAlg === hashAlg) &&
      constantTimeEqual(hmac(hashAlg, key.sensitive, digest), mac);
  }
  if (!ok) throw new TpmError(TPM_RC.SIGNATURE, { param });
}

/**
 * Part 3 §20.1 TPM2_VerifySignature: no authorization. RCs: TPM_RC_ATTRIBUTES+H1 (not a signing
 * key), TPM_RC_SCHEME+P2, TPM_RC_SIGNATURE+P2. The ticket is HMAC(proof, TPM_ST_VERIFIED ||
 * digest || keyName) under the key's hierarchy, or the NULL ticket for the NULL hierarchy.
 */
export const VerifySignature = command({
  code: TPM_CC.VerifySignature,
  handles: [{ name: 'keyHandle', type: TPMI_DH_OBJECT }],
  params: { digest: TPM2B_DIGEST, signature: TPMT_SIGNATURE },
  response: { validation: TPMT_TK_VERIFIED },
  run(tpm, { keyHandle }, { digest, signature }) {
    const key = signingKey(tpm, keyHandle, TPM_RC.ATTRIBUTES);
    verifySignature(key, digest, signature, 2);
    const proof = tpm.hierarchyProof(key.hierarchy);
    if (key.hierarchy === TPM_RH.NULL || key.publicArea.nameAlg === TPM_ALG.NULL || !proof) {
      return { validation: { tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) } };
    }
    const ticket = verifiedTicketDigest(tpm, key.hierarchy, digest, key.name);
    return { validation: { tag: TPM_ST.VERIFIED, hierarchy: key.hierarchy, digest: ticket } };
  },
});

/**
 * Part 3 §20.2 TPM2_Sign: USER authorization. RCs: TPM_RC_KEY+H1 (not a signing key),
 * TPM_RC_ATTRIBUTES+H1 (an x509sign key), TPM_RC_SCHEME+P2, TPM_RC_TICKET+P3 (a restricted key,
 * or a ticket given, and the ticket is not this TPM's for this digest), TPM_RC_SIZE+P1 (the
 * digest is not the size of the scheme's hash).
 */
export const Sign = command({
  code: TPM_CC.Sign,
  handles: [{ name: 'keyHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { digest: TPM2B_DIGEST, inScheme: TPMT_SIG_SCHEME, validation: TPMT_TK_HASHCHECK },
  response: { signature: TPMT_SIGNATURE },
  run(tpm, { keyHandle }, { digest, inScheme, validation }) {
    const key = signingKey(tpm, keyHandle, TPM_RC.KEY);
    if (key.publicArea.objectAttributes & TPMA_OBJECT.x509sign) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    const { scheme, hashAlg } = selectScheme(key.publicArea, inScheme);
    if (validation.digest.length !== 0 || (key.publicArea.objectAttributes & TPMA_OBJECT.restricted) !== 0) {
      const expected = hashCheckTicket(tpm, validation.hierarchy, hashAlg, digest).digest;
      if (expected.length === 0 || !constantTimeEqual(expected, validation.digest)) throw new TpmError(TPM_RC.TICKET, { param: 3 });
    }
    if (digest.length !== hashInfo(hashAlg)!.digestSize) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    return { signature: sign(tpm, key, scheme, hashAlg, digest) };
  },
});
