/** The engine's one crypto interface (style.md §7): primitives keyed by TPM_ALG id, bytes as Uint8Array; nothing else imports a crypto library. */
export { hash, hashStart, type HashState } from './hash.js';
export { hmac, hmacStart } from './hmac.js';
export { kdfa, kdfe, mgf1 } from './kdf.js';
export { randomBytes } from './random.js';
export { constantTimeEqual } from './compare.js';
export { ecdsaSign, ecdsaVerify, ecSchnorrSign, ecSchnorrVerify, eccCurveParameters, eccNewKeyPair, eccPointMultiply, eccIsPointOnCurve, eccIsValidPrivate, eccPrivateFromBits, eccPrivateInputBits, eccPublicPoint, eccSharedX } from './ecc.js';
export { aesCbcDecrypt, aesCbcEncrypt, aesCfbDecrypt, aesCfbEncrypt, aesModeCrypt, type AesMode } from './sym.js';
export {
  RSA_DEFAULT_EXPONENT,
  RsaCache,
  rsaCheckExponent,
  rsaDecrypt,
  rsaEncrypt,
  rsaGenerateKey,
  rsaPssSaltSize,
  rsapssSign,
  rsapssVerify,
  rsassaSign,
  rsassaVerify,
  type RsaDecryptScheme,
  type RsaPrivateKey,
  type RsaPublicKey,
} from './rsa.js';
