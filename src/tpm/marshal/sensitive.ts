/**
 * Part 2 §12.3 sensitive structures: TPMT_SENSITIVE (what TPM2B_PRIVATE protects and what
 * LoadExternal takes in clear), TPM2B_SENSITIVE, TPM2B_PRIVATE and TPM2B_IV (§11.1.9).
 * The sensitive union is selected by the object type, as TPMT_PUBLIC's is; an RSA key keeps
 * one prime (the modulus in the public area gives the rest).
 */
import { MAX_DIGEST_SIZE } from '../algorithms.js';
import { TPM_ALG } from '../constants.js';
import { Infer, sized, struct, tpm2b, union } from './codec.js';
import { TPMI_ALG_PUBLIC, TPM2B_ECC_PARAMETER } from './objects.js';
import { MAX_SYM_DATA, TPM2B_AUTH, TPM2B_DIGEST, TPM2B_SENSITIVE_DATA } from './structures.js';

/** libtpms' largest RSA key (3072 bits): TPM2B_PRIVATE_KEY_RSA holds one prime, half its size. */
export const MAX_RSA_KEY_BYTES = 3072 / 8;
/** AES-256: the largest symmetric key (TPM2B_SYM_KEY) and AES's block (TPM2B_IV). */
export const MAX_SYM_KEY_BYTES = 32;
export const MAX_SYM_BLOCK_SIZE = 16;

/** §11.2.4.7 TPM2B_PRIVATE_KEY_RSA, §11.1.8 TPM2B_SYM_KEY, §11.1.9 TPM2B_IV. */
export const TPM2B_PRIVATE_KEY_RSA = tpm2b(MAX_RSA_KEY_BYTES / 2);
export const TPM2B_SYM_KEY = tpm2b(MAX_SYM_KEY_BYTES);
export const TPM2B_IV = tpm2b(MAX_SYM_BLOCK_SIZE);

/** §12.3.2.3 TPMT_SENSITIVE with §12.3.2.2 TPMU_SENSITIVE_COMPOSITE. */
export const TPMT_SENSITIVE = struct({
  sensitiveType: TPMI_ALG_PUBLIC,
  authValue: TPM2B_AUTH,
  seedValue: TPM2B_DIGEST,
  sensitive: union('sensitiveType', {
    [TPM_ALG.RSA]: TPM2B_PRIVATE_KEY_RSA,
    [TPM_ALG.ECC]: TPM2B_ECC_PARAMETER,
    [TPM_ALG.KEYEDHASH]: TPM2B_SENSITIVE_DATA,
    [TPM_ALG.SYMCIPHER]: TPM2B_SYM_KEY,
  }),
});
export type TPMT_SENSITIVE = Infer<typeof TPMT_SENSITIVE>;

/** §12.3.3 TPM2B_SENSITIVE: empty (null) when LoadExternal gets a public key only. */
export const TPM2B_SENSITIVE = sized(TPMT_SENSITIVE, true);

/**
 * §12.3.7 TPM2B_PRIVATE: the reference sizes it as _PRIVATE (outer and inner integrity, then a
 * TPM2B_SENSITIVE). With the IV of the outer wrap that is what a protected RSA-3072 key needs.
 */
const SENSITIVE_MAX = 2 + (2 + MAX_DIGEST_SIZE) * 2 + Math.max(MAX_RSA_KEY_BYTES / 2, MAX_SYM_DATA) + 2;
export const MAX_PRIVATE_SIZE = (2 + MAX_DIGEST_SIZE) * 2 + 2 + SENSITIVE_MAX;
export const TPM2B_PRIVATE = tpm2b(MAX_PRIVATE_SIZE);
