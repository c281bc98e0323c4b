/**
 * Clock (Part 1 §36.3): how often it reaches NV and how ClockRateAdjust scales it. The numbers
 * are libtpms 0.9's (TpmProfile.h NV_CLOCK_UPDATE_INTERVAL, Platform Clock.c).
 */

/** Clock is written to NV whenever it crosses a multiple of 2^12 ms (about 4 s). */
export const NV_CLOCK_UPDATE_INTERVAL = 12;
const CLOCK_UPDATE_MASK = (1n << BigInt(NV_CLOCK_UPDATE_INTERVAL)) - 1n;

/** Whether moving Clock from `from` to `to` crosses an update interval (ms-tpm TimeClockUpdate). */
export function clockCrossesUpdate(from: bigint, to: bigint): boolean {
  return (to | CLOCK_UPDATE_MASK) > (from | CLOCK_UPDATE_MASK);
}

/** The nominal rate and the steps of TPM2_ClockRateAdjust; the rate stays within ±CLOCK_ADJUST_LIMIT. */
export const CLOCK_NOMINAL = 30000;
export const CLOCK_ADJUST_COARSE = 300;
export const CLOCK_ADJUST_MEDIUM = 30;
export const CLOCK_ADJUST_FINE = 1;
export const CLOCK_ADJUST_LIMIT = 5000;

/** Part 2 §6.11 TPM_CLOCK_ADJUST → the change of the rate divisor (slower = a larger divisor). */
export const CLOCK_ADJUST_STEP: ReadonlyMap<number, number> = new Map([
  [-3, CLOCK_ADJUST_COARSE],
  [-2, CLOCK_ADJUST_MEDIUM],
  [-1, CLOCK_ADJUST_FINE],
  [0, 0],
  [1, -CLOCK_ADJUST_FINE],
  [2, -CLOCK_ADJUST_MEDIUM],
  [3, -CLOCK_ADJUST_COARSE],
]);

/** ms-tpm _plat__ClockAdjustRate: one step, kept within the limit. */
export function adjustClockRate(rate: number, adjust: number): number {
  const next = rate + (CLOCK_ADJUST_STEP.get(adjust) ?? 0);
  return Math.min(CLOCK_NOMINAL + CLOCK_ADJUST_LIMIT, Math.max(CLOCK_NOMINAL - CLOCK_ADJUST_LIMIT, next));
}
