/** Part 3 §29 Clocks and Timers. */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPMS_TIME_INFO } from '../marshal/structures.js';

/** Part 3 §29.1 TPM2_ReadClock. */
export const ReadClock = command({
  code: TPM_CC.ReadClock,
  handles: [],
  params: {},
  response: { currentTime: TPMS_TIME_INFO },
  run(tpm) {
    return { currentTime: tpm.timeInfo() };
  },
});
