/** Part 3 §11 Session Commands: TPM2_StartAuthSession. */
import { command } from '../command.js';
import { hashInfo } from '../algorithms.js';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH, TPM_SE } from '../constants.js';
import { kdfa } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { UINT32 } from '../marshal/codec.js';
import { TPM2B_ENCRYPTED_SECRET, TPM2B_NONCE, TPMT_SYM_DEF } from '../marshal/structures.js';
import { TPM_SE_CODEC, TPMI_ALG_HASH, TPMI_DH_ENTITY, TPMI_DH_OBJECT } from '../marshal/tpmi.js';
import type { SessionKind } from '../state/sessions.js';
import { trimTrailingZeros } from '../state/auth-value.js';

const KIND: Record<number, SessionKind> = { [TPM_SE.HMAC]: 'hmac', [TPM_SE.POLICY]: 'policy', [TPM_SE.TRIAL]: 'trial' };

/**
 * Part 3 §11.1 TPM2_StartAuthSession. The session key is KDFa(authHash, bindAuth || salt,
 * "ATH", nonceTPM, nonceCaller) (Part 1 §19.6.8), empty for an unbound, unsalted session.
 * Salted sessions need a decryption key, which arrives with the objects issue.
 * RCs: TPM_RC_HANDLE+H1 (a salt key: none can be loaded yet), TPM_RC_VALUE+P2 (a salt
 * without a tpmKey), TPM_RC_SIZE+P1 (nonceCaller under 16 bytes),
 * TPM_RC_SESSION_MEMORY / TPM_RC_SESSION_HANDLES.
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
    if (tpmKey !== TPM_RH.NULL) throw new TpmError(TPM_RC.HANDLE, { handle: 1 });
    if (encryptedSalt.length !== 0) throw new TpmError(TPM_RC.VALUE, { param: 2 });
    if (nonceCaller.length < 16) throw new TpmError(TPM_RC.SIZE, { param: 1 });
    let bindInfo: { handle: number; authValue: Uint8Array } | null = null;
    if (bind !== TPM_RH.NULL) {
      const authValue = tpm.entityAuth(bind);
      if (authValue === undefined) throw new TpmError(TPM_RC.HANDLE, { handle: 2 });
      bindInfo = { handle: bind, authValue: trimTrailingZeros(authValue) };
    }
    const digestSize = hashInfo(authHash)!.digestSize;
    const nonceTPM = tpm.random(digestSize);
    const seed = bindInfo?.authValue ?? new Uint8Array(0);
    const sessionKey = seed.length === 0 ? new Uint8Array(0) : kdfa(authHash, seed, 'ATH', nonceTPM, nonceCaller, digestSize * 8);
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
      }),
      kind,
    );
    return { sessionHandle: session.handle, nonceTPM };
  },
});
