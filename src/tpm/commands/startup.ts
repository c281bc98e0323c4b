/** Part 3 §9 Start-up: TPM2_Startup and TPM2_Shutdown with Reset, Restart and Resume. */
import { command } from '../command.js';
import { daOf } from '../state/dictionary-attack.js';
import { commandAuditReset } from '../state/audit.js';
import { TPM_CC, TPM_RC, TPM_SU } from '../constants.js';
import { TpmError } from '../errors.js';
import { TPM_SU_CODEC } from '../marshal/tpmi.js';
import { applyHcrtm } from '../state/hash-events.js';
import { nvSaveOrderly, nvStartup } from '../state/nv.js';
import { PcrBanks } from '../state/pcr.js';

/**
 * Part 3 §9.3 TPM2_Startup. After Shutdown(STATE), Startup(STATE) is a TPM Resume (saved PCRs
 * come back) and Startup(CLEAR) a TPM Restart; anything else is a TPM Reset (Part 1 §12.2.3).
 * RCs: TPM_RC_LOCALITY (not locality 0 or 3, or Resume from another startup locality),
 * TPM_RC_VALUE+P1 (STATE without a preceding Shutdown(STATE)).
 */
export const Startup = command({
  code: TPM_CC.Startup,
  handles: [],
  params: { startupType: TPM_SU_CODEC },
  response: {},
  nv: true,
  noSessions: true,
  run(tpm, _h, { startupType }) {
    const p = tpm.persistent;
    const locality = tpm.locality;
    if (locality !== 0 && locality !== 3) throw new TpmError(TPM_RC.LOCALITY);
    const saved = p.orderly === 'STATE' ? p.savedState : null;
    if (startupType === TPM_SU.STATE) {
      if (!saved) throw new TpmError(TPM_RC.VALUE, { param: 1 });
      if (saved.startupLocality !== locality) throw new TpmError(TPM_RC.LOCALITY);
    }

    const kind = startupType === TPM_SU.STATE && saved ? 'resume' : saved ? 'restart' : 'reset';
    nvStartup(tpm, kind, p.orderly !== 'NONE');
    if (startupType === TPM_SU.STATE && saved) {
      // TPM Resume: the PCRs Shutdown(STATE) saved come back.
      const pcrs = new Map([...saved.pcrs].map(([alg, values]) => [alg, values.map((v) => v ?? undefined)]));
      tpm.pcrs.startup(locality, saved.pcrUpdateCounter, pcrs);
      p.restartCount = (p.restartCount + 1) >>> 0;
    } else if (saved) {
      // TPM Restart: PCRs start over, counters carry on.
      tpm.pcrs.startup(locality, saved.pcrUpdateCounter);
      p.restartCount = (p.restartCount + 1) >>> 0;
    } else {
      // TPM Reset. A reset after no orderly shutdown may have lost clock updates.
      if (p.orderly === 'NONE') p.clockSafe = false;
      // A PCR_Allocate since the last reset takes effect now.
      if (p.pcrAllocationNext) {
        p.pcrAllocation = p.pcrAllocationNext;
        delete p.pcrAllocationNext;
        tpm.pcrs = new PcrBanks(p.pcrAllocation);
      }
      tpm.pcrs.startup(locality, 0);
      tpm.resetNullHierarchy();
      commandAuditReset(p);
      p.resetCount = (p.resetCount + 1) >>> 0;
      p.restartCount = 0;
    }
    // An H-CRTM sequence before this Startup goes into PCR 0; a Resume keeps the saved PCR 0.
    if (startupType === TPM_SU.STATE && saved) tpm.hcrtm = null;
    else applyHcrtm(tpm);
    // Startup(CLEAR) (Reset or Restart) sets the state-clear data to its defaults (platformAuth
    // empty, every hierarchy enabled); a Resume gets back what Shutdown(STATE) kept.
    tpm.setStateClear(startupType === TPM_SU.STATE ? saved?.stateClear : undefined);
    tpm.phEnable = true;
    tpm.da.startup(p, p.orderly !== 'NONE');
    tpm.startupLocality = locality;
    tpm.startedOrderly = p.orderly !== 'NONE';
    tpm.started = true;
    p.orderly = 'NONE';
    p.savedState = null;
    tpm.markDirty();
    return {};
  },
});

/**
 * Part 3 §9.4 TPM2_Shutdown. STATE keeps what a later Startup(STATE) restores; either type
 * makes the next start orderly. RCs: TPM_RC_VALUE+P1 (bad type, from the unmarshaller),
 * TPM_RC_TYPE+P1 (STATE after a PCR_Allocate: the saved PCRs would not fit the new banks).
 */
export const Shutdown = command({
  code: TPM_CC.Shutdown,
  handles: [],
  params: { shutdownType: TPM_SU_CODEC },
  response: {},
  nv: true,
  run(tpm, _h, { shutdownType }) {
    const p = tpm.persistent;
    if (shutdownType === TPM_SU.STATE && p.pcrAllocationNext) throw new TpmError(TPM_RC.TYPE, { param: 1 });
    tpm.syncClock();
    p.clockSafe = true;
    // Orderly NV indices keep what was written to their RAM copies.
    nvSaveOrderly(tpm);
    if (shutdownType === TPM_SU.STATE) {
      const pcrs = new Map([...tpm.pcrs.saveState()].map(([alg, values]) => [alg, values.map((v) => v ?? null)]));
      p.savedState = { pcrs, pcrUpdateCounter: tpm.pcrs.updateCounter, startupLocality: tpm.startupLocality, stateClear: tpm.stateClear() };
      p.orderly = 'STATE';
      daOf(p).daUsed = false;
    } else {
      p.savedState = null;
      p.orderly = 'CLEAR';
      daOf(p).daUsed = false;
    }
    tpm.markDirty();
    return {};
  },
});
