/**
 * PCR banks with the PC Client platform's attributes (PC Client PTP, "PCR attributes";
 * the same table libtpms uses): which localities may extend or reset each PCR, which are
 * saved by Shutdown(STATE), and which leave pcrUpdateCounter alone.
 */
import { HASH_ALGS, hashInfo } from '../algorithms.js';
import { hash } from '../crypto/index.js';

export const PCR_COUNT = 24;
/** Bytes of a pcrSelect bitmap: enough for PCR_COUNT (Part 2 §10.6.1 PCR_SELECT_MAX). */
export const PCR_SELECT_MAX = PCR_COUNT / 8;
export const PCR_SELECT_MIN = PCR_SELECT_MAX;
/** The PCR H-CRTM and Startup locality are recorded in (PC Client). */
export const HCRTM_PCR = 0;
/** The first PCR a DRTM event resets and extends (PC Client). */
export const DRTM_PCR = 17;

interface PcrAttributes {
  /** Restored by Startup(STATE) after Shutdown(STATE). */
  readonly stateSave: boolean;
  /** Extending it does not increment pcrUpdateCounter. */
  readonly noIncrement: boolean;
  /** Bit n set: locality n may reset it. */
  readonly resetLocality: number;
  /** Bit n set: locality n may extend it. */
  readonly extendLocality: number;
  /** Member of the PCR policy and auth-value group (PCR_SetAuthPolicy / PCR_SetAuthValue). */
  readonly authGroup: boolean;
}

const STATIC: PcrAttributes = { stateSave: true, noIncrement: false, resetLocality: 0, extendLocality: 0x1f, authGroup: false };
const pcr = (stateSave: boolean, noIncrement: boolean, resetLocality: number, extendLocality: number, authGroup = false): PcrAttributes =>
  ({ stateSave, noIncrement, resetLocality, extendLocality, authGroup });

/**
 * Index = PCR number (PC Client PTP, "PCR Attributes"; the values libtpms 0.9 uses). PCRs
 * 17-22 start at all-ones because locality 4 (DRTM) may reset them.
 */
export const PCR_ATTRIBUTES: readonly PcrAttributes[] = [
  ...Array.from({ length: 16 }, () => STATIC),
  pcr(false, true, 0x0f, 0x1f), // 16 debug
  pcr(false, false, 0x10, 0x1c), // 17 DRTM, locality 4
  pcr(false, false, 0x10, 0x1c), // 18 locality 3
  pcr(false, false, 0x10, 0x0c), // 19 locality 2
  pcr(false, false, 0x14, 0x0e, true), // 20 locality 1
  pcr(false, true, 0x14, 0x04, true), // 21 dynamic OS
  pcr(false, true, 0x14, 0x04, true), // 22 dynamic OS
  pcr(false, true, 0x0f, 0x1f), // 23 application
];

/** A bank selection: hash algorithm → bitmap of PCR_SELECT_MAX bytes (bit i%8 of byte i/8 = PCR i). */
export type PcrAllocation = Map<number, Uint8Array>;

/** The allocation a new TPM gets: every implemented bank with all PCRs, as libtpms does. */
export function defaultAllocation(): PcrAllocation {
  return new Map(HASH_ALGS.map((h) => [h.alg, new Uint8Array(PCR_SELECT_MAX).fill(0xff)]));
}

export function isSelected(bitmap: Uint8Array, pcr: number): boolean {
  const byte = pcr >> 3;
  return byte < bitmap.length && (bitmap[byte]! & (1 << (pcr & 7))) !== 0;
}

export function initialValue(pcr: number, alg: number, startupLocality: number): Uint8Array {
  const size = hashInfo(alg)!.digestSize;
  const value = new Uint8Array(size).fill(PCR_ATTRIBUTES[pcr]!.resetLocality & 0x10 ? 0xff : 0);
  if (pcr === HCRTM_PCR) value[size - 1] = startupLocality;
  return value;
}

/** The PCR values of every allocated bank, plus the update counter reported by PCR_Read. */
export class PcrBanks {
  /** alg → PCR number → value; a PCR not in the bank's allocation has no entry. */
  readonly values = new Map<number, (Uint8Array | undefined)[]>();
  updateCounter = 0;

  constructor(readonly allocation: PcrAllocation) {}

  /**
   * Startup: every PCR to its initial value, except those `saved` restores (TPM Resume).
   * `counter` is the update counter to continue from (0 after a TPM Reset); each PCR that
   * gets its initial value counts as a change, as in the reference's PCRStartup.
   */
  startup(startupLocality: number, counter: number, saved?: ReadonlyMap<number, readonly (Uint8Array | undefined)[]>): void {
    this.values.clear();
    for (const [alg, bitmap] of this.allocation) {
      const bank: (Uint8Array | undefined)[] = new Array(PCR_COUNT);
      for (let pcr = 0; pcr < PCR_COUNT; pcr++) {
        if (!isSelected(bitmap, pcr)) continue;
        const restored = PCR_ATTRIBUTES[pcr]!.stateSave ? saved?.get(alg)?.[pcr] : undefined;
        bank[pcr] = restored ?? initialValue(pcr, alg, startupLocality);
      }
      this.values.set(alg, bank);
    }
    this.updateCounter = counter;
    for (let pcr = 0; pcr < PCR_COUNT; pcr++) {
      if (!(saved && PCR_ATTRIBUTES[pcr]!.stateSave)) this.bumpCounter(pcr);
    }
  }

  get(alg: number, pcr: number): Uint8Array | undefined {
    return this.values.get(alg)?.[pcr];
  }

  /**
   * PCR_Extend semantics for one bank: value = H(value || digest). An unallocated bank is
   * skipped; an allocated one counts as one change (the reference counts per bank).
   */
  extend(pcr: number, alg: number, digest: Uint8Array): void {
    const bank = this.values.get(alg);
    const old = bank?.[pcr];
    if (!bank || !old) return;
    bank[pcr] = hash(alg, old, digest);
    this.bumpCounter(pcr);
  }

  /** Extends each bank named in `digests` (PCR_Event, EventSequenceComplete). */
  extendAllBanks(pcr: number, digests: ReadonlyMap<number, Uint8Array>): void {
    for (const [alg, digest] of digests) this.extend(pcr, alg, digest);
  }

  /** PC Client: changes to PCR 0 and PCRs outside the no-increment group move pcrUpdateCounter. */
  private bumpCounter(pcr: number): void {
    if (pcr === 0 || !PCR_ATTRIBUTES[pcr]!.noIncrement) this.updateCounter = (this.updateCounter + 1) >>> 0;
  }

  /** PCR_Reset: every bank of one PCR to its initial value (startup locality irrelevant past 0). */
  reset(pcr: number): void {
    for (const [alg, bank] of this.values) {
      if (bank[pcr]) bank[pcr] = initialValue(pcr, alg, 0);
    }
    this.bumpCounter(pcr);
  }

  /** Values to keep across Shutdown(STATE): the stateSave PCRs of every bank. */
  saveState(): Map<number, (Uint8Array | undefined)[]> {
    const saved = new Map<number, (Uint8Array | undefined)[]>();
    for (const [alg, bank] of this.values) {
      saved.set(
        alg,
        bank.map((v, pcr) => (v && PCR_ATTRIBUTES[pcr]!.stateSave ? v : undefined)),
      );
    }
    return saved;
  }

}
