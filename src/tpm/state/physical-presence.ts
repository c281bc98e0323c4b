/**
 * The physical-presence list (Part 1 §28.3): the commands that, under platform authorization,
 * also need physical presence. libtpms 0.9's command attributes say which commands may be on
 * it (PP_COMMAND) and which always are (PP_REQUIRED). The list is permanent state.
 */
import { TPM_CC } from '../constants.js';
import type { PersistentState } from './persistent.js';

/** The commands that can be put on the list. */
export const PP_COMMAND_CODES: ReadonlySet<number> = new Set([
  TPM_CC.ChangeEPS, TPM_CC.ChangePPS, TPM_CC.Clear, TPM_CC.ClearControl, TPM_CC.ClockRateAdjust,
  TPM_CC.ClockSet, TPM_CC.CreateLoaded, TPM_CC.CreatePrimary, TPM_CC.EvictControl, TPM_CC.HierarchyChangeAuth,
  TPM_CC.HierarchyControl, TPM_CC.NV_DefineSpace, TPM_CC.NV_GlobalWriteLock, TPM_CC.NV_UndefineSpace,
  TPM_CC.NV_UndefineSpaceSpecial, TPM_CC.PCR_Allocate, TPM_CC.PCR_SetAuthPolicy, TPM_CC.SetPrimaryPolicy,
]);

/** The commands that are on it always; also the list a new TPM starts with. */
export const PP_REQUIRED_CODES: readonly number[] = [TPM_CC.PP_Commands];

/** The list in ascending command-code order; states written before it existed have the manufacturer's. */
export function ppCommandList(p: PersistentState): readonly number[] {
  return p.ppCommands ?? PP_REQUIRED_CODES;
}
