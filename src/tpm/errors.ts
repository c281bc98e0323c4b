/**
 * TPM response codes as exceptions inside the engine (Part 2 §6.6). A codec or handler throws
 * `TpmError(rc)`; the engine adds the handle, parameter or session number to format-1 codes
 * and turns the error into a 10-byte response. Nothing outside `tpm/` ever sees one.
 */
import { RC_FMT1, RC_P, RC_S, TPM_RC } from './constants.js';

export type RcPosition = { handle: number } | { param: number } | { session: number };

export class TpmError extends Error {
  readonly rc: number;

  constructor(rc: number, position?: RcPosition) {
    const full = position === undefined ? rc : withPosition(rc, position);
    super(`TPM error ${formatRc(full)}`);
    this.rc = full;
  }
}

/** True for format-1 codes without a position yet: the engine may still add one. */
export function isPositionless(rc: number): boolean {
  return (rc & RC_FMT1) !== 0 && (rc & 0xf40) === 0;
}

/**
 * Adds a position to a format-1 code (Part 2 §6.6.3): handles and sessions count from 1 to 7,
 * parameters from 1 to 15. Format-0 codes carry no position and are returned unchanged.
 */
export function withPosition(rc: number, position: RcPosition): number {
  if (!isPositionless(rc)) return rc;
  if ('param' in position) return rc | RC_P | ((position.param & 0xf) << 8);
  if ('handle' in position) return rc | ((position.handle & 0x7) << 8);
  return rc | RC_S | ((position.session & 0x7) << 8);
}

/**
 * Runs `f`, giving any TPM error it throws `position` if it has none yet (the reference's
 * RcSafeAddToResult): for helpers that return codes without knowing which parameter they read.
 */
export function atPosition<T>(position: RcPosition, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TpmError) throw new TpmError(e.rc, position);
    throw e;
  }
}

const RC_NAMES = new Map<number, string>(Object.entries(TPM_RC).map(([name, value]) => [value, name]));

/** `TPM_RC_VALUE+P1 (0x1c4)`: a response code in the words of the spec, for logs and messages. */
export function formatRc(rc: number): string {
  const hex = `0x${rc.toString(16).padStart(3, '0')}`;
  if (rc & RC_FMT1) {
    const base = RC_NAMES.get(rc & 0xbf);
    const n = (rc >> 8) & 0xf;
    let where = '';
    if (rc & RC_P) where = `+P${n}`;
    else if (n & 0x8) where = `+S${n & 0x7}`;
    else if (n) where = `+H${n}`;
    return `TPM_RC_${base ?? 'UNKNOWN'}${where} (${hex})`;
  }
  return `TPM_RC_${RC_NAMES.get(rc) ?? 'UNKNOWN'} (${hex})`;
}
