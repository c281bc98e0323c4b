/** Part 3 §29 Clocks and Timers. */
import { command } from '../command.js';
import { TPM_CC, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';
import { UINT64 } from '../marshal/codec.js';
import { TPMS_TIME_INFO } from '../marshal/structures.js';
import { TPM_CLOCK_ADJUST, TPMI_RH_PROVISION } from '../marshal/tpmi.js';
import { adjustClockRate } from '../state/clock.js';

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

/** The largest Clock ClockSet accepts (Part 3 §29.2). */
const CLOCK_SET_MAX = 0xffff000000000000n;

/**
 * Part 3 §29.2 TPM2_ClockSet: Clock moves forward only. Crossing an NV update interval writes
 * it and makes it safe. RCs: TPM_RC_VALUE+P1 (behind the current Clock, or past 0xFFFF000000000000).
 */
export const ClockSet = command({
  code: TPM_CC.ClockSet,
  nv: true,
  handles: [{ name: 'auth', type: TPMI_RH_PROVISION, auth: 'USER' }],
  params: { newTime: UINT64 },
  response: {},
  run(tpm, _h, { newTime }) {
    if (newTime > CLOCK_SET_MAX || newTime < tpm.syncClock()) throw new TpmError(TPM_RC.VALUE, { param: 1 });
    tpm.setClock(newTime);
    return {};
  },
});

/**
 * Part 3 §29.3 TPM2_ClockRateAdjust: one coarse, medium or fine step slower or faster, for TPM
 * time and Clock, until the next _TPM_Init. RCs: TPM_RC_VALUE+P1 (not -3..3, from the unmarshaller).
 */
export const ClockRateAdjust = command({
  code: TPM_CC.ClockRateAdjust,
  handles: [{ name: 'auth', type: TPMI_RH_PROVISION, auth: 'USER' }],
  params: { rateAdjust: TPM_CLOCK_ADJUST },
  response: {},
  run(tpm, _h, { rateAdjust }) {
    tpm.syncClock();
    tpm.clockRate = adjustClockRate(tpm.clockRate, rateAdjust);
    return {};
  },
});
