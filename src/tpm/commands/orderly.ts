/**
 * Part 1 "orderly" state: after Shutdown, a command that changes state the Shutdown saved
 * makes the next start non-orderly (the reference's RETURN_IF_ORDERLY / g_clearOrderly).
 */
import type { Tpm } from '../tpm.js';

export function clearOrderly(tpm: Tpm): void {
  const p = tpm.persistent;
  if (p.orderly === 'NONE') return;
  p.orderly = 'NONE';
  p.savedState = null;
  tpm.markDirty();
}
