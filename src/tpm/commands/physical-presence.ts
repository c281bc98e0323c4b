/** Part 3 §26.2 TPM2_PP_Commands: changes the physical-presence list (state/physical-presence.ts). */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { list, UINT32 } from '../marshal/codec.js';
import { MAX_CAP_CC } from '../marshal/capability.js';
import { TPMI_RH_PLATFORM } from '../marshal/nv.js';
import { PP_COMMAND_CODES, PP_REQUIRED_CODES } from '../state/physical-presence.js';

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
