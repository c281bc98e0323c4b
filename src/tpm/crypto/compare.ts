/** Constant-time comparison for session HMAC and authValue checks, so a mismatch leaks no timing. */
import * as nodeCrypto from 'node:crypto';

/**
 * True when `a` and `b` hold the same bytes. The time taken depends on the lengths only,
 * never on the contents; lengths are public (they travel in the command), so unequal lengths
 * return false at once.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return nodeCrypto.timingSafeEqual(a, b);
}
