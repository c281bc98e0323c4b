/**
 * Part 3 §14 Asymmetric Primitives on ECC keys: TPM2_ECDH_KeyGen, TPM2_ECDH_ZGen,
 * TPM2_ECC_Parameters, TPM2_ZGen_2Phase and TPM2_EC_Ephemeral.
 */
import { eccCurveInfo } from '../algorithms.js';
import { command } from '../command.js';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE, TPM_RC } from '../constants.js';
import { eccCurveParameters, eccIsPointOnCurve, eccNewKeyPair, eccPointMultiply, eccPublicPoint } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { algorithm, oneOf, UINT16 } from '../marshal/codec.js';
import {
  TPM2B_ECC_POINT,
  TPMA_OBJECT,
  TPMS_ALGORITHM_DETAIL_ECC,
  type TPMS_ECC_POINT,
} from '../marshal/objects.js';
import { TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import { commitCount, commitRandom, endCommit } from '../state/commit.js';
import { ECC_CURVES } from '../algorithms.js';
import type { KeyObject } from '../state/objects.js';
import type { Tpm } from '../tpm.js';

/** §9.29 TPMI_ECC_CURVE: a curve with key support, else TPM_RC_CURVE. */
const TPMI_ECC_CURVE = oneOf(UINT16, ECC_CURVES.map((c) => c.curve), TPM_RC.CURVE, undefined, 'curve');

/** The SP 800-56A KDF hash libtpms reports with each curve (its eccCurves table). */
const CURVE_KDF_HASH: ReadonlyMap<number, number> = new Map([
  [TPM_ECC_CURVE.NIST_P256, TPM_ALG.SHA256],
  [TPM_ECC_CURVE.NIST_P384, TPM_ALG.SHA384],
  [TPM_ECC_CURVE.NIST_P521, TPM_ALG.SHA512],
]);

type EccParms = { curveID: number; scheme: { scheme: number } };

/** The loaded ECC key at `handle`, else TPM_RC_KEY+H1. */
function eccKey(tpm: Tpm, handle: number): { object: KeyObject; parms: EccParms } {
  const object = tpm.object(handle);
  if (object?.kind !== 'key' || object.publicArea.type !== TPM_ALG.ECC) throw new TpmError(TPM_RC.KEY, { handle: 1 });
  return { object, parms: object.publicArea.parameters as EccParms };
}

/**
 * Part 3 §14.4 TPM2_ECDH_KeyGen: an ephemeral key pair on the key's curve and Z = d_e·Q_key,
 * no authorization (only the public key is used). RCs: TPM_RC_KEY+H1 (not an ECC key, or its
 * point is not on the curve).
 */
export const ECDH_KeyGen = command({
  code: TPM_CC.ECDH_KeyGen,
  handles: [{ name: 'keyHandle', type: TPMI_DH_OBJECT }],
  params: {},
  response: { zPoint: TPM2B_ECC_POINT, pubPoint: TPM2B_ECC_POINT },
  run(tpm, { keyHandle }) {
    const { object, parms } = eccKey(tpm, keyHandle);
    for (;;) {
      const ephemeral = eccNewKeyPair(parms.curveID, (n) => tpm.random(n));
      try {
        const zPoint = eccPointMultiply(parms.curveID, ephemeral.d, object.publicArea.unique as TPMS_ECC_POINT);
        return { zPoint, pubPoint: ephemeral.q };
      } catch (e) {
        if (e instanceof TpmError && e.rc === TPM_RC.ECC_POINT) throw new TpmError(TPM_RC.KEY, { handle: 1 });
        // The point at infinity needs d_e ≡ 0 mod n, which eccNewKeyPair never gives; retry as the reference does.
        if (!(e instanceof TpmError && e.rc === TPM_RC.NO_RESULT)) throw e;
      } finally {
        ephemeral.d.fill(0);
      }
    }
  },
});

/**
 * Part 3 §14.5 TPM2_ECDH_ZGen: Z = d_key·inPoint, USER authorization. RCs: TPM_RC_KEY+H1 (not
 * an ECC key), TPM_RC_ATTRIBUTES+H1 (restricted or not decrypt), TPM_RC_SCHEME+H1 (a scheme
 * other than ECDH or NULL), TPM_RC_ECC_POINT+P1 (inPoint is not on the curve), TPM_RC_NO_RESULT.
 */
export const ECDH_ZGen = command({
  code: TPM_CC.ECDH_ZGen,
  handles: [{ name: 'keyHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { inPoint: TPM2B_ECC_POINT },
  response: { outPoint: TPM2B_ECC_POINT },
  run(tpm, { keyHandle }, { inPoint }) {
    const { object, parms } = eccKey(tpm, keyHandle);
    const a = object.publicArea.objectAttributes;
    if ((a & TPMA_OBJECT.restricted) !== 0 || (a & TPMA_OBJECT.decrypt) === 0) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    if (parms.scheme.scheme !== TPM_ALG.ECDH && parms.scheme.scheme !== TPM_ALG.NULL) throw new TpmError(TPM_RC.SCHEME, { handle: 1 });
    try {
      return { outPoint: eccPointMultiply(parms.curveID, object.sensitive, inPoint) };
    } catch (e) {
      if (e instanceof TpmError && e.rc === TPM_RC.ECC_POINT) throw new TpmError(TPM_RC.ECC_POINT, { param: 1 });
      throw e;
    }
  },
});

/** Part 3 §14.6 TPM2_ECC_Parameters: a curve's domain parameters. RCs: TPM_RC_CURVE+P1. */
export const ECC_Parameters = command({
  code: TPM_CC.ECC_Parameters,
  handles: [],
  params: { curveID: TPMI_ECC_CURVE },
  response: { parameters: TPMS_ALGORITHM_DETAIL_ECC },
  run(_tpm, _h, { curveID }) {
    const info = eccCurveInfo(curveID)!;
    return {
      parameters: {
        curveID,
        keySize: info.keyBits,
        kdf: { scheme: TPM_ALG.KDF1_SP800_56A, details: { hashAlg: CURVE_KDF_HASH.get(curveID)! } },
        sign: { scheme: TPM_ALG.NULL, details: null },
        ...eccCurveParameters(curveID),
      },
    };
  },
});

/**
 * §9.30 TPMI_ECC_KEY_EXCHANGE+: ECDH (ECMQV and SM2 are not implemented, as in libtpms 0.9),
 * else TPM_RC_SCHEME.
 */
const TPMI_ECC_KEY_EXCHANGE = algorithm([TPM_ALG.ECDH], TPM_RC.SCHEME);

/**
 * Part 3 §14.7 TPM2_ZGen_2Phase, the TPM's half of a two-phase key exchange (SP 800-56A C(2e, 2s)):
 * for ECDH, outZ1 = d_keyA·inQsB and outZ2 = r·inQeB, where r is the ephemeral private value of
 * EC_Ephemeral's `counter`, usable once. USER authorization. RCs in the reference's order:
 * TPM_RC_KEY+H1 (not ECC), TPM_RC_ATTRIBUTES+H1 (restricted or not decrypt), TPM_RC_SCHEME+P3
 * (the key's scheme is neither NULL nor inScheme, or both are NULL), TPM_RC_ECC_POINT+P1/+P2 (a
 * point off the key's curve), TPM_RC_VALUE+P4 (no outstanding commitment for counter).
 */
export const ZGen_2Phase = command({
  code: TPM_CC.ZGen_2Phase,
  handles: [{ name: 'keyA', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { inQsB: TPM2B_ECC_POINT, inQeB: TPM2B_ECC_POINT, inScheme: TPMI_ECC_KEY_EXCHANGE.plus, counter: UINT16 },
  response: { outZ1: TPM2B_ECC_POINT, outZ2: TPM2B_ECC_POINT },
  run(tpm, { keyA }, { inQsB, inQeB, inScheme, counter }) {
    const { object, parms } = eccKey(tpm, keyA);
    const a = object.publicArea.objectAttributes;
    if ((a & TPMA_OBJECT.restricted) !== 0 || (a & TPMA_OBJECT.decrypt) === 0) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
    const keyScheme = parms.scheme.scheme;
    if (keyScheme !== TPM_ALG.NULL && keyScheme !== inScheme) throw new TpmError(TPM_RC.SCHEME, { param: 3 });
    const scheme = keyScheme === TPM_ALG.NULL ? inScheme : keyScheme;
    if (scheme === TPM_ALG.NULL) throw new TpmError(TPM_RC.SCHEME, { param: 3 });
    if (!onCurve(parms.curveID, inQsB)) throw new TpmError(TPM_RC.ECC_POINT, { param: 1 });
    if (!onCurve(parms.curveID, inQeB)) throw new TpmError(TPM_RC.ECC_POINT, { param: 2 });
    const commit = tpm.commitState();
    const r = commitRandom(commit, parms.curveID, counter);
    if (r === null) throw new TpmError(TPM_RC.VALUE, { param: 4 });
    // Only ECDH gets here: the key's scheme is a key-exchange scheme only if its template said
    // ECDH, and inScheme admits nothing else.
    if (scheme !== TPM_ALG.ECDH) throw new TpmError(TPM_RC.SCHEME, { param: 3 });
    try {
      const outZ1 = eccPointMultiply(parms.curveID, object.sensitive, inQsB);
      const outZ2 = eccPointMultiply(parms.curveID, r, inQeB);
      endCommit(commit, counter);
      return { outZ1, outZ2 };
    } finally {
      r.fill(0);
    }
  },
});

function onCurve(curve: number, q: TPMS_ECC_POINT): boolean {
  return eccIsPointOnCurve(curve, q.x, q.y);
}

/**
 * Part 3 §14.8 TPM2_EC_Ephemeral: Q = r·G for a new commit count, whose r ZGen_2Phase derives
 * again from the commit nonce (nothing secret is kept per count). No authorization.
 * RCs: TPM_RC_CURVE+P1 (a curve vtpmd does not have), TPM_RC_NO_RESULT (no r found).
 */
export const EC_Ephemeral = command({
  code: TPM_CC.EC_Ephemeral,
  handles: [],
  params: { curveID: TPMI_ECC_CURVE },
  response: { Q: TPM2B_ECC_POINT, counter: UINT16 },
  run(tpm, _h, { curveID }) {
    const commit = tpm.commitState();
    const r = commitRandom(commit, curveID, null);
    if (r === null) throw new TpmError(TPM_RC.NO_RESULT);
    try {
      // 0 < r < n, so r·G is never the point at infinity.
      const Q = eccPublicPoint(curveID, r);
      return { Q, counter: commitCount(commit) };
    } finally {
      r.fill(0);
    }
  },
});
