/** Part 3 §11 Session Commands: TPM2_StartAuthSession. */
import { command } from '../command.js';
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_CC, TPM_HT, TPM_RC, TPM_RH, TPM_SE } from '../constants.js';
import { secretDecrypt } from '../auth/secret.js';
import { concatBytes } from '../crypto/bytes.js';
import { kdfa } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { UINT32 } from '../marshal/codec.js';
import { TPMA_OBJECT } from '../marshal/objects.js';
import { TPM2B_ENCRYPTED_SECRET, TPM2B_NONCE, TPMT_SYM_DEF } from '../marshal/structures.js';
import { TPM_SE_CODEC, TPMI_ALG_HASH, TPMI_DH_ENTITY, TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import { freshPolicyState, type SessionKind } from '../state/sessions.js';
import { trimTrailingZeros } from '../state/auth-value.js';

const ASYMMETRIC = new Set<number>([TPM_ALG.RSA, TPM_ALG.ECC]);

const KIND: Record<number, SessionKind> = { [TPM_SE.HMAC]: 'hmac', [TPM_SE.POLICY]: 'policy', [TPM_SE.TRIAL]: 'trial' };

/**
 * Part 3 §11.1 TPM2_StartAuthSession. The session key is KDFa(authHash, bindAuth || salt,
 * "ATH", nonceTPM, nonceCaller) (Part 1 §19.6.8), empty for an unbound, unsalted session.
 * The salt comes from encryptedSalt decrypted with tpmKey (auth/secret.ts, label "SECRET").
 * RCs: TPM_RC_SIZE+P1 (nonceCaller under 16 bytes or over the authHash digest size),
 * TPM_RC_KEY+H1 (tpmKey is not asymmetric), TPM_RC_HANDLE+H1 (tpmKey without its private
 * part), TPM_RC_ATTRIBUTES+H1 (tpmKey is not a decryption key), TPM_RC_VALUE+P2 (a salt
 * without a tpmKey, none with one, or one that does not decrypt), TPM_RC_MODE+P4 (a block
 * cipher in a mode other than CFB), TPM_RC_SESSION_MEMORY / TPM_RC_SESSION_HANDLES.
 */
export const StartAuthSession = command({
  code: TPM_CC.StartAuthSession,
  handles: [
    { name: 'tpmKey', type: TPMI_DH_OBJECT.plus },
    { name: 'bind', type: TPMI_DH_ENTITY.plus },
  ],
  params: {
    nonceCaller: TPM2B_NONCE,
    encryptedSalt: TPM2B_ENCRYPTED_SECRET,
    sessionType: TPM_SE_CODEC,
    symmetric: TPMT_SYM_DEF,
    authHash: TPMI_ALG_HASH,
  },
  response: { sessionHandle: UINT32, nonceTPM: TPM2B_NONCE },
  responseHandle: 'sessionHandle',
  run(tpm, { tpmKey, bind }, { nonceCaller, encryptedSalt, sessionType, symmetric, authHash }) {
    const digestSize = hashInfo(authHash)!.digestSize;
    if (nonceCaller.length < 16 || nonceCaller.length > digestSize) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    let salt: Uint8Array = new Uint8Array(0);
    if (tpmKey !== TPM_RH.NULL) {
      const key = tpmKey >>> 24 === TPM_HT.TRANSIENT ? tpm.objects.get(tpmKey) : undefined;
      if (key?.kind !== 'key' || !ASYMMETRIC.has(key.publicArea.type)) throw new TpmError(TPM_RC.KEY, { handle: 1 });
      if (encryptedSalt.length === 0) throw new TpmError(TPM_RC.VALUE, { param: 2 });
      if (key.sensitive.length === 0) throw new TpmError(TPM_RC.HANDLE, { handle: 1 });
      if (!(key.publicArea.objectAttributes & TPMA_OBJECT.decrypt)) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
      try {
        salt = secretDecrypt(key, 'SECRET', encryptedSalt, tpm.rsaCache);
      } catch (e) {
        if (e instanceof TpmError) throw new TpmError(TPM_RC.VALUE, { param: 2 });
        throw e;
      }
    } else if (encryptedSalt.length !== 0) {
      throw new TpmError(TPM_RC.VALUE, { param: 2 });
    }
    let bindInfo: { handle: number; authValue: Uint8Array } | null = null;
    if (bind !== TPM_RH.NULL) {
      const authValue = tpm.entityAuth(bind);
      if (authValue === undefined) throw new TpmError(TPM_RC.HANDLE, { handle: 2 });
      bindInfo = { handle: bind, authValue: trimTrailingZeros(authValue) };
    }
    if (symmetric.algorithm !== TPM_ALG.NULL && symmetric.algorithm !== TPM_ALG.XOR && symmetric.mode !== TPM_ALG.CFB) {
      throw new TpmError(TPM_RC.MODE, { param: 4 });
    }
    // Part 1 §19.6.3: nonceTPM is as long as nonceCaller.
    const nonceTPM = tpm.random(nonceCaller.length);
    // A key whenever the session is bound or salted, even if both inputs are empty (ms-tpm SessionCreate).
    const sessionKey =
      bindInfo || salt.length > 0
        ? kdfa(authHash, concatBytes(bindInfo?.authValue ?? new Uint8Array(0), salt), 'ATH', nonceTPM, nonceCaller, digestSize * 8)
        : new Uint8Array(0);
    const kind = KIND[sessionType]!;
    const session = tpm.sessions.add(
      (handle) => ({
        handle,
        kind,
        authHash,
        sessionKey,
        symmetric: {
          algorithm: symmetric.algorithm,
          keyBits: (symmetric.keyBits as number | null) ?? 0,
          mode: (symmetric.mode as number | null) ?? TPM_ALG.NULL,
        },
        nonceTPM,
        bind: bindInfo,
        policyDigest: new Uint8Array(digestSize),
        policy: freshPolicyState(tpm.timeInfo().time),
      }),
      kind,
    );
    return { sessionHandle: session.handle, nonceTPM };
  },
});
