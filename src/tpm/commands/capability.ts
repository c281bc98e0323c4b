/**
 * Part 3 §30.2 TPM2_GetCapability. Every list is derived from what is implemented (the command
 * table, IMPLEMENTED_ALGS, the PCR attributes), so a new command or algorithm shows up here
 * without being listed twice, and filtered by the TPM's profile (tpm.rules).
 */
import { command } from '../command.js';
import { daOf } from '../state/dictionary-attack.js';
import { CONTEXT_INTEGRITY_HASH_ALG, ECC_CURVES, IMPLEMENTED_ALGS, MAX_DIGEST_SIZE } from '../algorithms.js';
import {
  PT_FIXED,
  PT_VAR,
  TPM_ALG,
  TPM_CAP,
  TPM_CC,
  TPM_HT,
  TPM_PT,
  TPM_PT_PCR,
  TPM_RC,
  TPM_RH,
  TPMA_PERMANENT,
  TPMA_STARTUP_CLEAR,
} from '../constants.js';
import { TpmError } from '../errors.js';
import { BOOL, UINT32, oneOf } from '../marshal/codec.js';
import {
  MAX_CAP_ALGS,
  MAX_CAP_BUFFER,
  MAX_CAP_CC,
  MAX_CAP_HANDLES,
  MAX_ECC_CURVES,
  MAX_PCR_PROPERTIES,
  MAX_TAGGED_POLICIES,
  MAX_TPM_PROPERTIES,
  TPMS_CAPABILITY_DATA,
} from '../marshal/capability.js';
import { MAX_DIGEST_BUFFER } from '../marshal/structures.js';
import { MAX_NV_BUFFER_SIZE, MAX_NV_INDEX_SIZE } from '../marshal/nv.js';
import { nvCounterCount, nvCountersAvail, nvPersistentAvail } from '../state/nv.js';
import { MAX_LOADED_OBJECTS } from '../state/objects.js';
import { MIN_EVICT_OBJECTS } from '../state/persistent-objects.js';
import { MAX_ACTIVE_SESSIONS, MAX_LOADED_SESSIONS } from '../state/sessions.js';
import { PCR_ATTRIBUTES, PCR_COUNT, PCR_SELECT_MAX, PCR_SELECT_MIN } from '../state/pcr.js';
import type { CommandDef } from '../command.js';
import { auditOf } from '../state/audit.js';
import type { Tpm } from '../tpm.js';
import { VENDOR } from '../vendor.js';

/** 2^NV_CLOCK_UPDATE_INTERVAL ms between Clock writes to NV (libtpms: 12). */
const CLOCK_UPDATE_MS = 1 << 12;
const CONTEXT_SLOT_MAX = 0xffff;
/** TPMA_MEMORY: sharedRAM | sharedNV | objectCopiedToRam? libtpms reports sharedNV | objectCopiedToRam. */
const TPMA_MEMORY = 0x6;
const CONTEXT_SYM_KEY_BITS = 256;
const SPLIT_MAX = 128;
const ORDERLY_COUNT = 255;
const MAX_OBJECT_CONTEXT = 2692;
const MAX_SESSION_CONTEXT = 404;

/** The permanent handles that exist on this TPM (TPM_CAP_HANDLES, TPM_HT_PERMANENT). */
const PERMANENT_HANDLES = [
  TPM_RH.OWNER,
  TPM_RH.NULL,
  TPM_RH.PW,
  TPM_RH.LOCKOUT,
  TPM_RH.ENDORSEMENT,
  TPM_RH.PLATFORM,
  TPM_RH.PLATFORM_NV,
];

/** The PCR property tags reported, in order (Part 2 §6.14). */
const PCR_PROPERTY_TAGS = [
  TPM_PT_PCR.SAVE,
  TPM_PT_PCR.EXTEND_L0,
  TPM_PT_PCR.RESET_L0,
  TPM_PT_PCR.EXTEND_L1,
  TPM_PT_PCR.RESET_L1,
  TPM_PT_PCR.EXTEND_L2,
  TPM_PT_PCR.RESET_L2,
  TPM_PT_PCR.EXTEND_L3,
  TPM_PT_PCR.RESET_L3,
  TPM_PT_PCR.EXTEND_L4,
  TPM_PT_PCR.RESET_L4,
  TPM_PT_PCR.NO_INCREMENT,
  TPM_PT_PCR.DRTM_RESET,
  TPM_PT_PCR.POLICY,
  TPM_PT_PCR.AUTH,
];

/** Which PCRs carry a PCR property tag. */
function pcrsWith(tag: number): Uint8Array {
  const select = new Uint8Array(PCR_SELECT_MAX);
  for (let pcr = 0; pcr < PCR_COUNT; pcr++) {
    const a = PCR_ATTRIBUTES[pcr]!;
    let has = false;
    if (tag === TPM_PT_PCR.SAVE) has = a.stateSave;
    else if (tag === TPM_PT_PCR.NO_INCREMENT) has = a.noIncrement;
    else if (tag === TPM_PT_PCR.DRTM_RESET) has = (a.resetLocality & 0x10) !== 0;
    else if (tag === TPM_PT_PCR.POLICY || tag === TPM_PT_PCR.AUTH) has = a.authGroup;
    else if (tag >= TPM_PT_PCR.EXTEND_L0 && tag <= TPM_PT_PCR.RESET_L4) {
      const locality = (tag - 1) >> 1;
      const mask = tag & 1 ? a.extendLocality : a.resetLocality;
      has = (mask & (1 << locality)) !== 0;
    }
    if (has) select[pcr >> 3]! |= 1 << (pcr & 7);
  }
  return select;
}

/** Every TPM_PT property in ascending order with its current value. */
function properties(tpm: Tpm, commands: readonly CommandDef[]): [number, number][] {
  const p = tpm.persistent;
  let permanent = TPMA_PERMANENT.tpmGeneratedEPS;
  if (p.ownerAuth.length) permanent |= TPMA_PERMANENT.ownerAuthSet;
  if (p.endorsementAuth.length) permanent |= TPMA_PERMANENT.endorsementAuthSet;
  if (p.lockoutAuth.length) permanent |= TPMA_PERMANENT.lockoutAuthSet;
  if (tpm.da.inLockout(p)) permanent |= TPMA_PERMANENT.inLockout;
  if (p.disableClear) permanent |= TPMA_PERMANENT.disableClear;
  const da = daOf(p);
  let startupClear = 0;
  if (tpm.phEnable) startupClear |= TPMA_STARTUP_CLEAR.phEnable;
  if (tpm.shEnable) startupClear |= TPMA_STARTUP_CLEAR.shEnable;
  if (tpm.ehEnable) startupClear |= TPMA_STARTUP_CLEAR.ehEnable;
  if (tpm.phEnableNV) startupClear |= TPMA_STARTUP_CLEAR.phEnableNV;
  if (tpm.startedOrderly) startupClear |= TPMA_STARTUP_CLEAR.orderly;
  const loaded = tpm.objects.count;
  const sessions = tpm.sessions.count;
  const saved = tpm.sessions.savedHandles().length;
  return [
    [TPM_PT.FAMILY_INDICATOR, VENDOR.familyIndicator],
    [TPM_PT.LEVEL, VENDOR.specLevel],
    [TPM_PT.REVISION, VENDOR.specRevision],
    [TPM_PT.DAY_OF_YEAR, VENDOR.specDayOfYear],
    [TPM_PT.YEAR, VENDOR.specYear],
    [TPM_PT.MANUFACTURER, VENDOR.manufacturer],
    [TPM_PT.VENDOR_STRING_1, VENDOR.vendorString1],
    [TPM_PT.VENDOR_STRING_2, VENDOR.vendorString2],
    [TPM_PT.VENDOR_STRING_3, VENDOR.vendorString3],
    [TPM_PT.VENDOR_STRING_4, VENDOR.vendorString4],
    [TPM_PT.VENDOR_TPM_TYPE, VENDOR.tpmType],
    [TPM_PT.FIRMWARE_VERSION_1, VENDOR.firmwareVersion1],
    [TPM_PT.FIRMWARE_VERSION_2, VENDOR.firmwareVersion2],
    [TPM_PT.INPUT_BUFFER, MAX_DIGEST_BUFFER],
    [TPM_PT.HR_TRANSIENT_MIN, MAX_LOADED_OBJECTS],
    [TPM_PT.HR_PERSISTENT_MIN, MIN_EVICT_OBJECTS],
    [TPM_PT.HR_LOADED_MIN, MAX_LOADED_SESSIONS],
    [TPM_PT.ACTIVE_SESSIONS_MAX, MAX_ACTIVE_SESSIONS],
    [TPM_PT.PCR_COUNT, PCR_COUNT],
    [TPM_PT.PCR_SELECT_MIN, PCR_SELECT_MIN],
    [TPM_PT.CONTEXT_GAP_MAX, CONTEXT_SLOT_MAX],
    [TPM_PT.NV_COUNTERS_MAX, 0],
    [TPM_PT.NV_INDEX_MAX, MAX_NV_INDEX_SIZE],
    [TPM_PT.MEMORY, TPMA_MEMORY],
    [TPM_PT.CLOCK_UPDATE, CLOCK_UPDATE_MS],
    [TPM_PT.CONTEXT_HASH, CONTEXT_INTEGRITY_HASH_ALG],
    [TPM_PT.CONTEXT_SYM, TPM_ALG.AES],
    [TPM_PT.CONTEXT_SYM_SIZE, CONTEXT_SYM_KEY_BITS],
    [TPM_PT.ORDERLY_COUNT, ORDERLY_COUNT],
    [TPM_PT.MAX_COMMAND_SIZE, tpm.bufferSize],
    [TPM_PT.MAX_RESPONSE_SIZE, tpm.bufferSize],
    [TPM_PT.MAX_DIGEST, MAX_DIGEST_SIZE],
    [TPM_PT.MAX_OBJECT_CONTEXT, MAX_OBJECT_CONTEXT],
    [TPM_PT.MAX_SESSION_CONTEXT, MAX_SESSION_CONTEXT],
    // libtpms reports the library specification's version for the platform specification too.
    [TPM_PT.PS_FAMILY_INDICATOR, VENDOR.familyIndicator],
    [TPM_PT.PS_LEVEL, VENDOR.specLevel],
    [TPM_PT.PS_REVISION, VENDOR.specRevision],
    [TPM_PT.PS_DAY_OF_YEAR, VENDOR.specDayOfYear],
    [TPM_PT.PS_YEAR, VENDOR.specYear],
    [TPM_PT.SPLIT_MAX, SPLIT_MAX],
    [TPM_PT.TOTAL_COMMANDS, commands.length],
    [TPM_PT.LIBRARY_COMMANDS, commands.length],
    [TPM_PT.VENDOR_COMMANDS, 0],
    [TPM_PT.NV_BUFFER_MAX, MAX_NV_BUFFER_SIZE],
    [TPM_PT.MODES, 0],
    [TPM_PT.MAX_CAP_BUFFER, MAX_CAP_BUFFER],
    [TPM_PT.PERMANENT, permanent],
    [TPM_PT.STARTUP_CLEAR, startupClear >>> 0],
    [TPM_PT.HR_NV_INDEX, p.nv.length],
    [TPM_PT.HR_LOADED, sessions],
    [TPM_PT.HR_LOADED_AVAIL, MAX_LOADED_SESSIONS - sessions],
    [TPM_PT.HR_ACTIVE, sessions + saved],
    [TPM_PT.HR_ACTIVE_AVAIL, MAX_ACTIVE_SESSIONS - sessions - saved],
    [TPM_PT.HR_TRANSIENT_AVAIL, MAX_LOADED_OBJECTS - loaded],
    [TPM_PT.HR_PERSISTENT, tpm.persistentObjectCount()],
    [TPM_PT.HR_PERSISTENT_AVAIL, nvPersistentAvail(tpm)],
    [TPM_PT.NV_COUNTERS, nvCounterCount(tpm)],
    [TPM_PT.NV_COUNTERS_AVAIL, nvCountersAvail(tpm)],
    [TPM_PT.ALGORITHM_SET, p.algorithmSet ?? 0],
    [TPM_PT.LOADED_CURVES, tpm.rules.curves.size],
    [TPM_PT.LOCKOUT_COUNTER, da.failedTries],
    [TPM_PT.MAX_AUTH_FAIL, da.maxTries],
    [TPM_PT.LOCKOUT_INTERVAL, da.recoveryTime],
    [TPM_PT.LOCKOUT_RECOVERY, da.lockoutRecovery],
    [TPM_PT.NV_WRITE_RECOVERY, 0],
    [TPM_PT.AUDIT_COUNTER_0, Number(auditOf(p).counter >> 32n)],
    [TPM_PT.AUDIT_COUNTER_1, Number(auditOf(p).counter & 0xffffffffn)],
  ];
}

/** The first `count` items at or after `start`, and whether more remain (the TPM's moreData). */
function page<T>(items: readonly T[], key: (t: T) => number, start: number, count: number, max: number): [T[], boolean] {
  const from = items.filter((t) => key(t) >>> 0 >= start >>> 0);
  const n = Math.min(count, max);
  return [from.slice(0, n), from.length > n];
}

/** Values a capability selector may take; anything else is TPM_RC_VALUE+P1. */
const TPM_CAP_CODEC = oneOf(
  UINT32,
  [
    TPM_CAP.ALGS,
    TPM_CAP.HANDLES,
    TPM_CAP.COMMANDS,
    TPM_CAP.PP_COMMANDS,
    TPM_CAP.AUDIT_COMMANDS,
    TPM_CAP.PCRS,
    TPM_CAP.TPM_PROPERTIES,
    TPM_CAP.PCR_PROPERTIES,
    TPM_CAP.ECC_CURVES,
    TPM_CAP.AUTH_POLICIES,
    TPM_CAP.ACT,
  ],
  TPM_RC.VALUE,
);

/**
 * Part 3 §30.2 TPM2_GetCapability. RCs: TPM_RC_VALUE+P1 (unknown capability), TPM_RC_HANDLE+P2
 * (a handle type that has no list), TPM_RC_VALUE+P2 (PCRS with a property, AUTH_POLICIES
 * outside the permanent range).
 */
export const GetCapability = command({
  code: TPM_CC.GetCapability,
  handles: [],
  params: { capability: TPM_CAP_CODEC, property: UINT32, propertyCount: UINT32 },
  response: { moreData: BOOL, capabilityData: TPMS_CAPABILITY_DATA },
  run(tpm, _h, { capability, property, propertyCount: count }) {
    const reply = (moreData: boolean, data: TPMS_CAPABILITY_DATA['data']) => ({
      moreData,
      capabilityData: { capability, data },
    });
    switch (capability) {
      case TPM_CAP.ALGS: {
        const enabled = IMPLEMENTED_ALGS.filter((a) => tpm.rules.algorithms.has(a.alg));
        const [algs, more] = page(enabled, (a) => a.alg, property, count, MAX_CAP_ALGS);
        return reply(more, algs.map((a) => ({ alg: a.alg, algProperties: a.attributes })));
      }
      case TPM_CAP.HANDLES: {
        const type = property >>> 24;
        const handles = handlesOfType(tpm, type);
        // Session lists hold HMAC and policy handles alike: they are paged by context slot.
        const bySlot = type === TPM_HT.HMAC_SESSION || type === TPM_HT.POLICY_SESSION;
        const key = bySlot ? (h: number) => h & 0xffffff : (h: number) => h;
        const [list, more] = page(handles, key, bySlot ? property & 0xffffff : property, count, MAX_CAP_HANDLES);
        return reply(more, list);
      }
      case TPM_CAP.COMMANDS: {
        const cmds = tpm.commands;
        const [list, more] = page(cmds, (c) => c.code, property, count, MAX_CAP_CC);
        return reply(more, list.map((c) => c.attributes));
      }
      case TPM_CAP.PP_COMMANDS: {
        const [list, more] = page(tpm.ppCommands(), (c) => c, property, count, MAX_CAP_CC);
        return reply(more, list);
      }
      case TPM_CAP.AUDIT_COMMANDS: {
        const [list, more] = page(auditOf(tpm.persistent).commands, (c) => c, property, count, MAX_CAP_CC);
        return reply(more, list);
      }
      case TPM_CAP.PCRS: {
        if (property !== 0) throw new TpmError(TPM_RC.VALUE, { param: 2 });
        if (count === 0) return reply(true, []);
        const banks = [...tpm.persistent.pcrAllocation].map(([hash, pcrSelect]) => ({
          hash,
          sizeofSelect: pcrSelect.length,
          pcrSelect,
        }));
        return reply(false, banks);
      }
      case TPM_CAP.TPM_PROPERTIES: {
        // A request walks one group only, fixed or variable, as the reference does.
        const group = property >>> 0 >= PT_VAR ? PT_VAR : PT_FIXED;
        const inGroup = properties(tpm, tpm.commands).filter(([tag]) => (tag & ~0xff) === group);
        const [list, more] = page(inGroup, ([tag]) => tag, Math.max(property, PT_FIXED), count, MAX_TPM_PROPERTIES);
        return reply(more, list.map(([p, value]) => ({ property: p, value })));
      }
      case TPM_CAP.PCR_PROPERTIES: {
        const [tags, more] = page(PCR_PROPERTY_TAGS, (t) => t, property, count, MAX_PCR_PROPERTIES);
        return reply(more, tags.map((tag) => ({ tag, sizeofSelect: PCR_SELECT_MAX, pcrSelect: pcrsWith(tag) })));
      }
      case TPM_CAP.ECC_CURVES: {
        const enabled = ECC_CURVES.map((c) => c.curve).filter((c) => tpm.rules.curves.has(c));
        const [curves, more] = page(enabled, (c) => c, property, count, MAX_ECC_CURVES);
        return reply(more, curves);
      }
      case TPM_CAP.AUTH_POLICIES: {
        if (property >>> 24 !== TPM_HT.PERMANENT) throw new TpmError(TPM_RC.VALUE, { param: 2 });
        const withPolicy = [TPM_RH.OWNER, TPM_RH.LOCKOUT, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM];
        const [list, more] = page(withPolicy, (h) => h, property, count, MAX_TAGGED_POLICIES);
        const policies = tpm.persistent.policies;
        const policyOf = (h: number) =>
          h === TPM_RH.PLATFORM ? tpm.platformPolicy : h === TPM_RH.OWNER ? policies?.owner : h === TPM_RH.ENDORSEMENT ? policies?.endorsement : policies?.lockout;
        return reply(more, list.map((handle) => {
          // SetPrimaryPolicy's hash algorithm and digest; TPM_ALG_NULL (and no digest) until one is set.
          const policy = policyOf(handle);
          const set = policy !== undefined && policy.alg !== TPM_ALG.NULL;
          return { handle, policyHash: set ? { hashAlg: policy.alg, digest: policy.digest } : { hashAlg: TPM_ALG.NULL, digest: null } };
        }));
      }
      case TPM_CAP.ACT:
        // No authenticated countdown timers are implemented.
        if (property < TPM_RH_ACT_0 || property > TPM_RH_ACT_F) throw new TpmError(TPM_RC.VALUE, { param: 2 });
        return reply(false, []);
      default:
        throw new TpmError(TPM_RC.VALUE, { param: 1 });
    }
  },
});

/** Part 2 §7.4: the ACT handles TPM_RH_ACT_0..TPM_RH_ACT_F. */
const TPM_RH_ACT_0 = 0x40000110;
const TPM_RH_ACT_F = 0x4000011f;

/** Handles of one type that exist now; TPM_RC_HANDLE+P2 for a type with no list. */
function handlesOfType(tpm: Tpm, type: number): number[] {
  switch (type) {
    case TPM_HT.PCR:
      return Array.from({ length: PCR_COUNT }, (_, i) => i);
    case TPM_HT.PERMANENT:
      return PERMANENT_HANDLES;
    case TPM_HT.TRANSIENT:
      return tpm.objects.handles();
    case TPM_HT.HMAC_SESSION:
      // TPM_HT_LOADED_SESSION: every loaded session, HMAC and policy alike.
      return tpm.sessions.handles().sort((a, b) => (a & 0xffffff) - (b & 0xffffff));
    case TPM_HT.POLICY_SESSION:
      // TPM_HT_SAVED_SESSION: the sessions whose context is saved.
      return tpm.sessions.savedHandles();
    case TPM_HT.PERSISTENT:
      return [...tpm.persistent.objects.keys()].sort((a, b) => a - b);
    case TPM_HT.NV_INDEX:
      return tpm.persistent.nv.map((i) => i.public.nvIndex).sort((a, b) => a - b);
    default:
      throw new TpmError(TPM_RC.HANDLE, { param: 2 });
  }
}

