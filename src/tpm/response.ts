/** Part 3 §5.1: an error response is the 10-byte header alone, tagged TPM_ST_NO_SESSIONS. */
import { TPM_ST } from './constants.js';

export const HEADER_SIZE = 10;

export function errorResponse(rc: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE);
  const view = new DataView(out.buffer);
  view.setUint16(0, TPM_ST.NO_SESSIONS);
  view.setUint32(2, HEADER_SIZE);
  view.setUint32(6, rc);
  return out;
}
