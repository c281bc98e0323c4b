/**
 * Loading an object (the reference's ObjectLoad and CryptValidateKeys): the public area is
 * checked as at creation, and where the TPM did not make the key itself (a parent that is not
 * fixedTPM, LoadExternal) the key material is checked against the public area.
 */
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_RC } from '../constants.js';
import { eccIsPointOnCurve, eccIsValidPrivate, eccPublicPoint, constantTimeEqual } from '../crypto/index.js';
import { atPosition, TpmError } from '../errors.js';
import { TPMA_OBJECT, type TPMS_ECC_POINT, type TPMT_PUBLIC } from '../marshal/objects.js';
import type { TPMT_SENSITIVE } from '../marshal/sensitive.js';
import { eccCurveInfo } from '../algorithms.js';
import { publicAttributesValidation, schemeChecks } from './object-checks.js';
import { symmetricUnique } from './object-create.js';

/** Which parameters errors are blamed on: the public and the sensitive part's numbers. */
export interface Blame {
  readonly pub: number;
  readonly priv: number;
}

const at = (rc: number, param: number): TpmError => new TpmError(rc, { param });

/**
 * ObjectLoad's checks. `parent` is null for LoadExternal; `checkKeys` says whether the key
 * material must be validated (the reference skips it below a fixedTPM parent, whose integrity
 * check already proves the TPM made the key).
 */
export function loadChecks(
  parent: TPMT_PUBLIC | null,
  publicArea: TPMT_PUBLIC,
  sensitive: TPMT_SENSITIVE | null,
  checkKeys: boolean,
  blame: Blame,
): void {
  if (sensitive === null || publicArea.nameAlg === TPM_ALG.NULL) {
    atPosition({ param: blame.pub }, () => schemeChecks(publicArea));
  } else {
    if (sensitive.seedValue.length > hashInfo(publicArea.nameAlg)!.digestSize) throw at(TPM_RC.KEY_SIZE, blame.priv);
    atPosition({ param: blame.pub }, () => publicAttributesValidation(parent, publicArea));
  }
  if (checkKeys) validateKeys(publicArea, sensitive, blame);
}

/**
 * CryptValidateKeys: sizes, points on the curve, and the binding of a private part to its public
 * area. RCs: TPM_RC_TYPE/SIZE/KEY_SIZE (sensitive), TPM_RC_KEY/ECC_POINT (public),
 * TPM_RC_BINDING (they do not belong together; no position, as in the reference).
 */
export function validateKeys(publicArea: TPMT_PUBLIC, sensitive: TPMT_SENSITIVE | null, blame: Blame): void {
  const digestSize = hashInfo(publicArea.nameAlg)?.digestSize ?? 0;
  if (sensitive) {
    if (sensitive.sensitiveType !== publicArea.type) throw at(TPM_RC.TYPE, blame.priv);
    if (digestSize > 0 && sensitive.authValue.length > digestSize) throw at(TPM_RC.SIZE, blame.priv);
  }
  switch (publicArea.type) {
    case TPM_ALG.ECC: {
      const curve = (publicArea.parameters as { curveID: number }).curveID;
      const size = eccCurveInfo(curve)!.bytes;
      const point = publicArea.unique as TPMS_ECC_POINT;
      if (!sensitive) {
        if (point.x.length !== size || point.y.length !== size) throw at(TPM_RC.KEY, blame.pub);
        if (publicArea.nameAlg !== TPM_ALG.NULL && !eccIsPointOnCurve(curve, point.x, point.y)) throw at(TPM_RC.ECC_POINT, blame.pub);
      } else {
        if (!eccIsValidPrivate(curve, sensitive.sensitive)) throw new TpmError(TPM_RC.KEY_SIZE);
        if (publicArea.nameAlg !== TPM_ALG.NULL) {
          const padded = new Uint8Array(size);
          padded.set(sensitive.sensitive, size - sensitive.sensitive.length);
          const expected = eccPublicPoint(curve, padded);
          if (!sameNumber(expected.x, point.x) || !sameNumber(expected.y, point.y)) throw new TpmError(TPM_RC.BINDING);
        }
      }
      break;
    }
    case TPM_ALG.SYMCIPHER:
    case TPM_ALG.KEYEDHASH: {
      const unique = publicArea.unique as Uint8Array;
      if (!sensitive) {
        if (unique.length !== digestSize) throw at(TPM_RC.KEY, blame.pub);
        break;
      }
      if (publicArea.type === TPM_ALG.SYMCIPHER) {
        const keyBits = (publicArea.parameters as { sym: { keyBits: number } }).sym.keyBits;
        if (sensitive.sensitive.length * 8 !== keyBits) throw at(TPM_RC.KEY_SIZE, blame.priv);
      } else {
        const scheme = (publicArea.parameters as { scheme: { scheme: number; details: { hashAlg: number } | null } }).scheme;
        const max = scheme.scheme === TPM_ALG.NULL ? 128 : hashInfo(scheme.details!.hashAlg)!.blockSize;
        if (sensitive.sensitive.length > max) throw at(TPM_RC.KEY_SIZE, blame.priv);
      }
      if (publicArea.nameAlg !== TPM_ALG.NULL) {
        if (sensitive.seedValue.length !== digestSize) throw at(TPM_RC.KEY_SIZE, blame.priv);
        if (!constantTimeEqual(symmetricUnique(publicArea, sensitive.seedValue, sensitive.sensitive), unique)) {
          throw new TpmError(TPM_RC.BINDING);
        }
      }
      break;
    }
    default:
      // RSA keys are checked by their own module when they arrive.
      break;
  }
  const a = publicArea.objectAttributes;
  if ((a & TPMA_OBJECT.restricted) !== 0 && (a & TPMA_OBJECT.decrypt) !== 0 && sensitive && publicArea.nameAlg !== TPM_ALG.NULL) {
    // A parent's seed protects its children: at least half a digest.
    if (sensitive.seedValue.length < digestSize / 2 || sensitive.seedValue.length > digestSize) throw at(TPM_RC.SIZE, blame.priv);
  }
}

/** Equal as big-endian numbers (leading zeros aside), as the reference's AdjustNumberB compares. */
function sameNumber(a: Uint8Array, b: Uint8Array): boolean {
  const strip = (x: Uint8Array) => {
    let i = 0;
    while (i < x.length && x[i] === 0) i++;
    return x.subarray(i);
  };
  return constantTimeEqual(strip(a), strip(b));
}
