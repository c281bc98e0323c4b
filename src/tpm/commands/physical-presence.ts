/**
 * Part 3 §26.2 TPM2_PP_Commands and the physical-presence list (Part 1 §28.3): the commands
 * that, under platform authorization, also need physical presence. libtpms' command attributes
 * say which commands may be on it (PP_COMMAND) and which always are (PP_REQUIRED).
 */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { list, UINT32 } from '../marshal/codec.js';
import { MAX_CAP_CC } from '../marshal/capability.js';
import { TPMI_RH_PLATFORM } from '../marshal/nv.js';

/** The commands that can be put on the list (libtpms 0.9 PP_COMMAND). */
export const PP_COMMAND_CODES: ReadonlySet<number> = new Set([
  TPM_CC.ChangeEPS, TPM_CC.ChangePPS, TPM_CC.Clear, TPM_CC.ClearControl, TPM_CC.ClockRateAdjust,
  TPM_CC.ClockSet, TPM_CC.CreateLoaded, TPM_CC.CreatePrimary, TPM_CC.EvictControl, TPM_CC.HierarchyChangeAuth,
  TPM_CC.HierarchyControl, TPM_CC.NV_DefineSpace, TPM_CC.NV_GlobalWriteLock, TPM_CC.NV_UndefineSpace,
  TPM_CC.NV_UndefineSpaceSpecial, TPM_CC.PCR_Allocate, TPM_CC.PCR_SetAuthPolicy, TPM_CC.SetPrimaryPolicy,
]);

/** The commands that are on it always (PP_REQUIRED); also the list a new TPM starts with. */
export const PP_REQUIRED_CODES: readonly number[] = [TPM_CC.PP_Commands];

const TPML_CC = list(UINT32, MAX_CAP_CC);

/**
 * Puts the implemented commands of setList that may need physical presence on the list and
 * takes those of clearList off it (not PP_Commands itself); the list persists. Needs physical
 * presence itself, which no front end asserts: it then fails TPM_RC_PP at its authorization.
 */
export const PP_Commands = command({
  code: TPM_CC.PP_Commands,
  nv: true,
  handles: [{ name: 'auth', type: TPMI_RH_PLATFORM, auth: 'USER' }],
  params: { setList: TPML_CC, clearList: TPML_CC },
  response: {},
  run(tpm, _h, { setList, clearList }) {
    const implemented = new Set(tpm.commands.map((c) => c.code));
    const pp = new Set(tpm.ppCommands());
    for (const cc of setList) if (implemented.has(cc) && PP_COMMAND_CODES.has(cc)) pp.add(cc);
    for (const cc of clearList) if (implemented.has(cc) && !PP_REQUIRED_CODES.includes(cc)) pp.delete(cc);
    tpm.persistent.ppCommands = [...pp].sort((a, b) => a - b);
    tpm.markDirty();
    return {};
  },
});
