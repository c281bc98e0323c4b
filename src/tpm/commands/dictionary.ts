/** Part 3 §25 Dictionary Attack Functions (state/dictionary-attack.ts holds the logic). */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { UINT32 } from '../marshal/codec.js';
import { TPMI_RH_LOCKOUT } from '../marshal/tpmi.js';
import { daOf } from '../state/dictionary-attack.js';

/** Part 3 §25.2 TPM2_DictionaryAttackLockReset: failedTries back to zero (lockoutAuth required). */
export const DictionaryAttackLockReset = command({
  code: TPM_CC.DictionaryAttackLockReset,
  handles: [{ name: 'lockHandle', type: TPMI_RH_LOCKOUT, auth: 'USER' }],
  params: {},
  response: {},
  nv: true,
  run(tpm) {
    daOf(tpm.persistent).failedTries = 0;
    tpm.markDirty();
    return {};
  },
});

/**
 * Part 3 §25.3 TPM2_DictionaryAttackParameters: maxTries, recoveryTime (s, 0 disables DA)
 * and lockoutRecovery (s, 0: lockoutAuth comes back only at Startup). failedTries is kept.
 */
export const DictionaryAttackParameters = command({
  code: TPM_CC.DictionaryAttackParameters,
  handles: [{ name: 'lockHandle', type: TPMI_RH_LOCKOUT, auth: 'USER' }],
  params: { newMaxTries: UINT32, newRecoveryTime: UINT32, lockoutRecovery: UINT32 },
  response: {},
  nv: true,
  run(tpm, _h, { newMaxTries, newRecoveryTime, lockoutRecovery }) {
    const da = daOf(tpm.persistent);
    da.maxTries = newMaxTries;
    da.recoveryTime = newRecoveryTime;
    da.lockoutRecovery = lockoutRecovery;
    tpm.markDirty();
    return {};
  },
});
