/** Part 3 §16 Random Number Generator. */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { UINT16 } from '../marshal/codec.js';
import { TPM2B_DIGEST, TPM2B_SENSITIVE_DATA } from '../marshal/structures.js';
import { MAX_DIGEST_SIZE } from '../algorithms.js';

/**
 * Part 3 §16.1 TPM2_GetRandom: at most one digest's worth per call (the reference returns
 * sizeof(TPMU_HA) bytes when more are asked for, and clients loop).
 */
export const GetRandom = command({
  code: TPM_CC.GetRandom,
  handles: [],
  params: { bytesRequested: UINT16 },
  response: { randomBytes: TPM2B_DIGEST },
  run(tpm, _h, { bytesRequested }) {
    return { randomBytes: tpm.random(Math.min(bytesRequested, MAX_DIGEST_SIZE)) };
  },
});

/**
 * Part 3 §16.2 TPM2_StirRandom. The OS CSPRNG behind GetRandom cannot be reseeded from here,
 * and the spec lets the TPM decide how much the input counts; the command is accepted and the
 * input discarded, which is never worse than mixing it in.
 */
export const StirRandom = command({
  code: TPM_CC.StirRandom,
  handles: [],
  params: { inData: TPM2B_SENSITIVE_DATA },
  response: {},
  nv: true,
  run() {
    return {};
  },
});
