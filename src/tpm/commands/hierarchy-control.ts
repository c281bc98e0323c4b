/**
 * Part 3 §24 Hierarchy Commands that switch, clear or re-seed hierarchies: TPM2_HierarchyControl,
 * TPM2_Clear, TPM2_ClearControl, TPM2_ChangeEPS, TPM2_ChangePPS.
 */
import { command } from '../command.js';
import { TPM_CC, TPM_RC, TPM_RH, TPMA_NV } from '../constants.js';
import { TpmError } from '../errors.js';
import { BOOL } from '../marshal/codec.js';
import { TPMI_RH_PLATFORM } from '../marshal/nv.js';
import { TPMI_RH_CLEAR, TPMI_RH_ENABLES, TPMI_RH_HIERARCHY } from '../marshal/tpmi.js';
import { daOf, manufactureDa } from '../state/dictionary-attack.js';
import { EMPTY_POLICY, SEED_SIZE } from '../state/persistent.js';
import type { Tpm } from '../tpm.js';
import { deleteIndex } from './nv.js';
import { clearOrderly } from './orderly.js';

/**
 * A hierarchy's objects go: the loaded ones (ms-tpm ObjectFlushHierarchy) and the persistent
 * ones (NvFlushHierarchy); for the owner's, so do the NV indices the owner defined. Platform
 * indices survive ChangePPS.
 */
function removeHierarchyObjects(tpm: Tpm, hierarchy: number): void {
  tpm.flushHierarchy(hierarchy);
  const p = tpm.persistent;
  for (const [handle, object] of p.objects) if (object.hierarchy === hierarchy) p.objects.delete(handle);
  if (hierarchy === TPM_RH.OWNER) {
    for (const index of [...p.nv]) {
      if (!(index.public.attributes & TPMA_NV.PLATFORMCREATE)) deleteIndex(tpm, index.public.nvIndex);
    }
  }
  tpm.markDirty();
}

/**
 * Part 3 §24.9 TPM2_HierarchyControl: enables or disables a hierarchy. Once disabled, the
 * owner's and endorsement's come back only with platform authorization, the platform's only
 * with the next Startup. Objects of a disabled hierarchy are flushed; its handles answer
 * TPM_RC_HIERARCHY and its persistent objects and NV indices look undefined (Tpm.hierarchyStatus).
 * RCs: TPM_RC_AUTH_TYPE (enable not switchable with this authHandle), TPM_RC_VALUE+P1/P2 (unmarshal).
 */
export const HierarchyControl = command({
  code: TPM_CC.HierarchyControl,
  nv: true,
  extensive: true,
  handles: [{ name: 'authHandle', type: TPMI_RH_HIERARCHY, auth: 'USER' }],
  params: { enable: TPMI_RH_ENABLES, state: BOOL },
  response: {},
  run(tpm, { authHandle }, { enable, state }) {
    const platform = authHandle === TPM_RH.PLATFORM;
    switch (enable) {
      case TPM_RH.PLATFORM:
      case TPM_RH.PLATFORM_NV:
        if (!platform) throw new TpmError(TPM_RC.AUTH_TYPE);
        break;
      case TPM_RH.OWNER:
        if (!platform && authHandle !== TPM_RH.OWNER) throw new TpmError(TPM_RC.AUTH_TYPE);
        if (!tpm.shEnable && state && !platform) throw new TpmError(TPM_RC.AUTH_TYPE);
        break;
      default:
        if (!platform && authHandle !== TPM_RH.ENDORSEMENT) throw new TpmError(TPM_RC.AUTH_TYPE);
        if (!tpm.ehEnable && state && !platform) throw new TpmError(TPM_RC.AUTH_TYPE);
    }
    const key = enable === TPM_RH.OWNER ? 'shEnable' : enable === TPM_RH.ENDORSEMENT ? 'ehEnable' : enable === TPM_RH.PLATFORM ? 'phEnable' : 'phEnableNV';
    if (tpm[key] !== state) {
      tpm[key] = state;
      if (!state && enable !== TPM_RH.PLATFORM_NV) tpm.flushHierarchy(enable);
      clearOrderly(tpm);
    }
    return {};
  },
});

/**
 * Part 3 §24.6 TPM2_Clear: a new owner. New storage seed and owner and endorsement proofs; the
 * owner's, endorsement's and lockout's authValues and policies go, and with them the owner's and
 * endorsement's objects and the owner's NV indices; dictionary-attack parameters return to
 * their defaults; Clock, resetCount and restartCount start over at zero. RCs: TPM_RC_DISABLED
 * (ClearControl has disabled it).
 */
export const Clear = command({
  code: TPM_CC.Clear,
  nv: true,
  extensive: true,
  handles: [{ name: 'authHandle', type: TPMI_RH_CLEAR, auth: 'USER' }],
  params: {},
  response: {},
  run(tpm) {
    const p = tpm.persistent;
    if (p.disableClear) throw new TpmError(TPM_RC.DISABLED);
    p.sps = tpm.random(SEED_SIZE);
    p.shProof = tpm.random(SEED_SIZE);
    p.ehProof = tpm.random(SEED_SIZE);
    tpm.shEnable = true;
    tpm.ehEnable = true;
    p.ownerAuth = new Uint8Array(0);
    p.endorsementAuth = new Uint8Array(0);
    p.lockoutAuth = new Uint8Array(0);
    p.policies = { owner: EMPTY_POLICY, endorsement: EMPTY_POLICY, lockout: EMPTY_POLICY };
    removeHierarchyObjects(tpm, TPM_RH.OWNER);
    removeHierarchyObjects(tpm, TPM_RH.ENDORSEMENT);
    // DAPreInstall_Init: the counters and parameters, not the "DA used" mark.
    Object.assign(daOf(p), { ...manufactureDa(), daUsed: daOf(p).daUsed });
    tpm.syncClock();
    p.clock = 0n;
    p.clockSafe = true;
    p.resetCount = 0;
    p.restartCount = 0;
    tpm.pcrAuth = new Uint8Array(0);
    tpm.pcrs.updateCounter = (tpm.pcrs.updateCounter + 1) >>> 0;
    tpm.markDirty();
    clearOrderly(tpm);
    return {};
  },
});

/**
 * Part 3 §24.7 TPM2_ClearControl: disableClear. Lockout authorization may set it, only the
 * platform may clear it. RCs: TPM_RC_AUTH_FAIL (lockout clearing it), as in the reference.
 */
export const ClearControl = command({
  code: TPM_CC.ClearControl,
  nv: true,
  handles: [{ name: 'auth', type: TPMI_RH_CLEAR, auth: 'USER' }],
  params: { disable: BOOL },
  response: {},
  run(tpm, { auth }, { disable }) {
    if (auth === TPM_RH.LOCKOUT && !disable) throw new TpmError(TPM_RC.AUTH_FAIL);
    tpm.persistent.disableClear = disable;
    tpm.markDirty();
    return {};
  },
});

/**
 * Part 3 §24.5 TPM2_ChangeEPS: a new endorsement seed and proof. The endorsement hierarchy is
 * enabled with an empty authValue and policy; its loaded and persistent objects go.
 */
export const ChangeEPS = command({
  code: TPM_CC.ChangeEPS,
  nv: true,
  extensive: true,
  handles: [{ name: 'authHandle', type: TPMI_RH_PLATFORM, auth: 'USER' }],
  params: {},
  response: {},
  run(tpm) {
    const p = tpm.persistent;
    p.eps = tpm.random(SEED_SIZE);
    p.ehProof = tpm.random(SEED_SIZE);
    tpm.ehEnable = true;
    p.endorsementAuth = new Uint8Array(0);
    if (p.policies) p.policies.endorsement = EMPTY_POLICY;
    removeHierarchyObjects(tpm, TPM_RH.ENDORSEMENT);
    clearOrderly(tpm);
    return {};
  },
});

/**
 * Part 3 §24.4 TPM2_ChangePPS: a new platform seed and proof; platformPolicy and the PCR
 * group's policy are emptied; the platform's loaded and persistent objects go (its NV indices
 * stay).
 */
export const ChangePPS = command({
  code: TPM_CC.ChangePPS,
  nv: true,
  extensive: true,
  handles: [{ name: 'authHandle', type: TPMI_RH_PLATFORM, auth: 'USER' }],
  params: {},
  response: {},
  run(tpm) {
    const p = tpm.persistent;
    p.pps = tpm.random(SEED_SIZE);
    p.phProof = tpm.random(SEED_SIZE);
    tpm.platformPolicy = EMPTY_POLICY;
    removeHierarchyObjects(tpm, TPM_RH.PLATFORM);
    delete p.pcrPolicy;
    clearOrderly(tpm);
    return {};
  },
});
