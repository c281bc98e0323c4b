/**
 * The TPM as command handlers see it: state in its four lifetimes (persistent, orderly,
 * volatile, per command) and the few services a handler may use (randomness, time). It does
 * no I/O; `Engine` owns one and drives it.
 */
import { HR, TPM_CC, TPM_HT, TPM_RC, TPM_RH, TPMA_NV } from './constants.js';
import { RsaCache } from './crypto/index.js';
import { PcrBanks } from './state/pcr.js';
import { ObjectSlots, type KeyObject, type TransientObject } from './state/objects.js';
import { SessionSlots } from './state/sessions.js';
import { nvAuthUnavailable, nvAuthUsed, nvDaExempt, nvFind, nvLoadOrderly, nvName, type NvRamEntry } from './state/nv.js';
import { DictionaryAttack } from './state/dictionary-attack.js';
import { EMPTY_POLICY, PersistentState, SEED_SIZE, type AuthPolicy, type StateClearData } from './state/persistent.js';
import { isPlatformPersistent } from './state/persistent-objects.js';
import { newCommitState, type CommitState } from './state/commit.js';
import { PCR_ATTRIBUTES } from './state/pcr.js';
import { CLOCK_NOMINAL, clockCrossesUpdate } from './state/clock.js';
import { ppCommandList } from './state/physical-presence.js';
import type { TPMS_TIME_INFO } from './marshal/structures.js';
import type { CommandDef } from './command.js';
import type { ProfileRules } from './profile.js';

/** What the host supplies: entropy, a monotonic millisecond clock and a log sink. */
export interface EngineEnv {
  random(n: number): Uint8Array;
  now(): number;
  log(message: string): void;
}

/** libtpms' default and largest TPM_PT_MAX_COMMAND_SIZE / MAX_RESPONSE_SIZE. */
export const MAX_BUFFER_SIZE = 4096;

/** TPMA_OBJECT.noDA (Part 2 §8.3). */
const NO_DA = 1 << 10;

/** The empty value entityAuth, entityName and entityAuthPolicy answer with: one array, as nothing can be written to it. */
const NO_BYTES = new Uint8Array(0);

export class Tpm {
  readonly env: EngineEnv;
  persistent: PersistentState;
  /** Set by any change to `persistent`; the engine's owner saves and clears it. */
  persistentDirty = false;

  /** The commands the profile enables, in code order (GetCapability lists them). */
  commands: readonly CommandDef[] = [];
  /** The profile's rules (fixed at manufacture, kept in `persistent.profile`). */
  rules!: ProfileRules;

  // Volatile: lost at _TPM_Init.
  started = false;
  /** The last Startup followed an orderly Shutdown (TPMA_STARTUP_CLEAR.orderly). */
  startedOrderly = false;
  startupLocality = 0;
  pcrs: PcrBanks;
  readonly objects = new ObjectSlots();
  readonly sessions = new SessionSlots();
  /** Derived RSA primaries and imported RSA private keys (the prime search is slow). */
  readonly rsaCache = new RsaCache();
  /** Dictionary-attack timers (the counters are in `persistent`). */
  readonly da = new DictionaryAttack();
  /** SelfTest has run (full or incremental over everything). */
  selfTestDone = false;
  /** env.now() at _TPM_Init: identifies this run of TPM time. */
  private timeStart: number;
  /** env.now() when TPM time and `persistent.clock` were last brought up to date. */
  private clockAnchor: number;
  /** TPMS_TIME_INFO.time in ms since _TPM_Init, rate-adjusted, with its fraction. */
  private timeMs = 0;
  /** ClockRateAdjust's rate: CLOCK_NOMINAL ticks per nominal period; higher runs slower. Reset at _TPM_Init. */
  clockRate = CLOCK_NOMINAL;
  /** The current command buffer size (swtpm's SET_BUFFERSIZE). */
  bufferSize = MAX_BUFFER_SIZE;
  /** The locality of the command being executed. */
  locality = 0;
  /**
   * The platform's TPM_ACCESS.tpmEstablished (PC Client PTP): set by _TPM_Hash_Start, cleared
   * only by the platform from locality 3 or 4. Kept with the volatile state, as libtpms does.
   */
  tpmEstablished = false;
  /** The event sequence of a running H-CRTM/DRTM sequence (_TPM_Hash_Start), or null. */
  drtmHandle: number | null = null;
  /**
   * H-CRTM digests per bank from a _TPM_Hash_End before Startup: Startup sets PCR 0 to 0…04 and
   * extends them instead of recording the startup locality (ms-tpm g_DrtmPreStartup).
   */
  hcrtm: Map<number, Uint8Array> | null = null;
  /** The NULL hierarchy's seed and proof: new at every TPM Reset (Part 1 §14.4). */
  nullSeed: Uint8Array;
  nullProof: Uint8Array;
  /**
   * EC_Ephemeral's commit nonce, counter and outstanding counts: reset data, new at every TPM
   * Reset. Made at first use, so a TPM that never commits draws no random bytes for it.
   */
  commit: CommitState | null = null;
  /** platformAuth lives in state-clear data: set by HierarchyChangeAuth, empty after Startup(CLEAR). */
  platformAuth: Uint8Array = new Uint8Array(0);
  /** platformPolicy (SetPrimaryPolicy) is state-clear data too. */
  platformPolicy: AuthPolicy = EMPTY_POLICY;
  /** HierarchyControl's enables: shEnable, ehEnable and phEnableNV are state-clear data. */
  shEnable = true;
  ehEnable = true;
  phEnableNV = true;
  /** phEnable is SET by every Startup (Part 1 §13.3). */
  phEnable = true;
  /** The PCR auth group's authValue (PCR_SetAuthValue), state-clear data. */
  pcrAuth: Uint8Array = new Uint8Array(0);
  /**
   * The platform's physical-presence signal. No front end asserts it (nor does swtpm), so a
   * command on the physical-presence list fails TPM_RC_PP under platform authorization.
   */
  physicalPresence = false;
  private objectContextId = 0n;
  /** The exclusive audit session (Part 1 §19.6.14, ms-tpm g_exclusiveAuditSession), or null. */
  exclusiveAuditSession: number | null = null;
  /** The live attributes and data of orderly NV indices (state/nv.ts); saved at Shutdown. */
  readonly nvRam = new Map<number, NvRamEntry>();

  constructor(env: EngineEnv, persistent: PersistentState) {
    this.env = env;
    this.persistent = persistent;
    this.pcrs = new PcrBanks(persistent.pcrAllocation);
    this.timeStart = env.now();
    this.clockAnchor = this.timeStart;
    this.nullSeed = env.random(SEED_SIZE);
    this.nullProof = env.random(SEED_SIZE);
    nvLoadOrderly(this);
  }

  /** Persistent objects, which share the NV budget with NV indices (Part 1 §37.2). */
  persistentObjectCount(): number {
    return this.persistent.objects.size;
  }

  /** TPM Reset: objects of the NULL hierarchy from before can never be recreated or trusted. */
  resetNullHierarchy(): void {
    this.nullSeed = this.env.random(SEED_SIZE);
    this.nullProof = this.env.random(SEED_SIZE);
    this.objectContextId = 0n;
    // Outstanding commitments die with the nonce they were derived from (CryptStartup).
    this.commit = null;
  }

  /** The commit state, made now if this TPM Reset has none yet. */
  commitState(): CommitState {
    return (this.commit ??= newCommitState((n) => this.random(n)));
  }

  /** The sequence number of the next saved object context (Part 1 §30.4). */
  nextObjectContextId(): bigint {
    const id = this.objectContextId;
    this.objectContextId += 1n;
    return id;
  }

  /** The primary seed of a hierarchy (Part 1 §14.4). */
  hierarchySeed(hierarchy: number): Uint8Array {
    switch (hierarchy) {
      case TPM_RH.PLATFORM:
        return this.persistent.pps;
      case TPM_RH.OWNER:
        return this.persistent.sps;
      case TPM_RH.ENDORSEMENT:
        return this.persistent.eps;
      default:
        return this.nullSeed;
    }
  }

  /** _TPM_Init: volatile state is lost; the TPM waits for TPM2_Startup. */
  powerOn(): void {
    this.started = false;
    this.objects.clear();
    this.sessions.clear();
    this.exclusiveAuditSession = null;
    this.pcrs = new PcrBanks(this.persistent.pcrAllocation);
    this.selfTestDone = false;
    this.drtmHandle = null;
    this.hcrtm = null;
    this.syncClock();
    this.timeStart = this.env.now();
    this.timeMs = 0;
    this.clockRate = CLOCK_NOMINAL;
  }

  /** The state-clear data as Shutdown(STATE) keeps it. */
  stateClear(): StateClearData {
    const { shEnable, ehEnable, phEnableNV, platformAuth, platformPolicy, pcrAuth } = this;
    return { shEnable, ehEnable, phEnableNV, platformAuth, platformPolicy, pcrAuth };
  }

  /** Sets the state-clear data: a Resume's saved copy, or the defaults of Startup(CLEAR) when none. */
  setStateClear(d: StateClearData | undefined): void {
    this.shEnable = d?.shEnable ?? true;
    this.ehEnable = d?.ehEnable ?? true;
    this.phEnableNV = d?.phEnableNV ?? true;
    this.platformAuth = d?.platformAuth ?? new Uint8Array(0);
    this.platformPolicy = d?.platformPolicy ?? EMPTY_POLICY;
    this.pcrAuth = d?.pcrAuth ?? new Uint8Array(0);
  }

  /** ms-tpm HierarchyIsEnabled: the NULL hierarchy always is. */
  hierarchyEnabled(hierarchy: number): boolean {
    switch (hierarchy) {
      case TPM_RH.PLATFORM:
        return this.phEnable;
      case TPM_RH.OWNER:
        return this.shEnable;
      case TPM_RH.ENDORSEMENT:
        return this.ehEnable;
      default:
        return true;
    }
  }

  /** ms-tpm ObjectFlushHierarchy: the loaded objects of a hierarchy that was disabled or changed go. */
  flushHierarchy(hierarchy: number): void {
    for (const handle of this.objects.handles()) {
      const object = this.objects.get(handle);
      if (object?.kind === 'key' && object.hierarchy === hierarchy) this.objects.remove(handle);
    }
  }

  /**
   * ms-tpm EntityGetLoadStatus beyond "is it there": an entity of a disabled hierarchy is
   * TPM_RC_HIERARCHY for a hierarchy handle and TPM_RC_HANDLE for a persistent object or NV index
   * (it looks undefined). 0 when usable; the caller adds the handle's position.
   */
  hierarchyStatus(handle: number, commandCode: number): number {
    const type = handle >>> 24;
    if (type === TPM_HT.PERMANENT) return this.hierarchyEnabled(handle) ? 0 : TPM_RC.HIERARCHY;
    if (type === TPM_HT.PERSISTENT) {
      if (isPlatformPersistent(handle) ? !this.phEnable : !this.shEnable) return TPM_RC.HANDLE;
      const object = this.persistent.objects.get(handle);
      if (object?.hierarchy === TPM_RH.ENDORSEMENT && !this.ehEnable && commandCode !== TPM_CC.EvictControl) return TPM_RC.HANDLE;
      return 0;
    }
    if (type === TPM_HT.NV_INDEX) {
      const index = nvFind(this, handle);
      if (!index) return 0;
      const platform = (index.public.attributes & TPMA_NV.PLATFORMCREATE) !== 0;
      if (platform ? !this.phEnableNV : !this.shEnable) return TPM_RC.HANDLE;
    }
    return 0;
  }

  /** The physical-presence list (PP_Commands). */
  ppCommands(): readonly number[] {
    return ppCommandList(this.persistent);
  }

  random(n: number): Uint8Array {
    return this.env.random(n);
  }

  markDirty(): void {
    this.persistentDirty = true;
  }

  /**
   * Advances TPM time and persistent.clock to now at the adjusted rate; called before either is
   * read or saved (ms-tpm TimeUpdate).
   */
  syncClock(): bigint {
    const now = this.env.now();
    const real = now - this.clockAnchor;
    if (real > 0) {
      this.clockAnchor = now;
      const before = Math.floor(this.timeMs);
      this.timeMs += (real * CLOCK_NOMINAL) / this.clockRate;
      const ticks = Math.floor(this.timeMs) - before;
      if (ticks > 0) this.setClock(this.persistent.clock + BigInt(ticks));
    }
    return this.persistent.clock;
  }

  /**
   * ms-tpm TimeClockUpdate: Clock goes to NV each time it crosses an update interval, and that
   * write makes it safe again after a shutdown that was not orderly.
   */
  setClock(value: bigint): void {
    const p = this.persistent;
    if (clockCrossesUpdate(p.clock, value)) {
      p.clockSafe = true;
      this.markDirty();
    }
    p.clock = value;
  }

  timeInfo(): TPMS_TIME_INFO {
    const clock = this.syncClock();
    return {
      time: BigInt(Math.floor(this.timeMs)),
      clockInfo: {
        clock,
        resetCount: this.persistent.resetCount,
        restartCount: this.persistent.restartCount,
        safe: this.persistent.clockSafe,
      },
    };
  }

  /** The proof value behind tickets of a hierarchy (Part 1 §14.5), or undefined for NULL. */
  hierarchyProof(hierarchy: number): Uint8Array | undefined {
    switch (hierarchy) {
      case TPM_RH.PLATFORM:
        return this.persistent.phProof;
      case TPM_RH.OWNER:
        return this.persistent.shProof;
      case TPM_RH.ENDORSEMENT:
        return this.persistent.ehProof;
      case TPM_RH.NULL:
        return this.nullProof;
      default:
        return undefined;
    }
  }

  /**
   * The object a transient or persistent handle refers to. A persistent object is used where it
   * is, not copied into a transient slot as the reference does for the length of a command: it
   * never changes while in use (ObjectChangeAuth returns a new private, it does not edit the
   * object), and so it takes no slot and cannot fail with TPM_RC_OBJECT_MEMORY.
   */
  object(handle: number): TransientObject | undefined {
    const type = handle >>> 24;
    if (type === TPM_HT.TRANSIENT) return this.objects.get(handle);
    if (type === TPM_HT.PERSISTENT) return this.persistent.objects.get(handle);
    return undefined;
  }

  /** A key or data object (not a sequence) at a transient or persistent handle. */
  keyObject(handle: number): KeyObject | undefined {
    const object = this.object(handle);
    return object?.kind === 'key' ? object : undefined;
  }

  /**
   * The authValue of an entity for password and HMAC authorization, or undefined when the
   * handle names nothing that can be authorized (TPM_RC_HANDLE).
   */
  entityAuth(handle: number): Uint8Array | undefined {
    const type = handle >>> 24;
    if (type === TPM_HT.PCR) return PCR_ATTRIBUTES[handle]?.authGroup ? this.pcrAuth : NO_BYTES;
    if (type === TPM_HT.TRANSIENT || type === TPM_HT.PERSISTENT) return this.object(handle)?.auth;
    if (type === TPM_HT.NV_INDEX) return nvFind(this, handle)?.authValue;
    switch (handle) {
      case TPM_RH.OWNER:
        return this.persistent.ownerAuth;
      case TPM_RH.ENDORSEMENT:
        return this.persistent.endorsementAuth;
      case TPM_RH.LOCKOUT:
        return this.persistent.lockoutAuth;
      case TPM_RH.PLATFORM:
        return this.platformAuth;
      case TPM_RH.NULL:
        return NO_BYTES;
      default:
        return undefined;
    }
  }

  /**
   * The Name of an entity (Part 1 §16): its handle for PCRs, permanent handles and sessions;
   * the Empty Buffer for a sequence object, which has no nameAlg.
   */
  entityName(handle: number): Uint8Array {
    const object = this.object(handle);
    if (object) return object.kind === 'key' ? object.name : NO_BYTES;
    const index = handle >>> 24 === TPM_HT.NV_INDEX ? nvFind(this, handle) : undefined;
    if (index) return nvName(this, index);
    return new Uint8Array([handle >>> 24, (handle >>> 16) & 0xff, (handle >>> 8) & 0xff, handle & 0xff]);
  }

  /** The authPolicy of an entity (Part 1 §19.7.9); empty where none is set (PCRs, sequences). */
  entityAuthPolicy(handle: number): Uint8Array {
    const type = handle >>> 24;
    if (type === TPM_HT.TRANSIENT || type === TPM_HT.PERSISTENT) return this.keyObject(handle)?.publicArea.authPolicy ?? NO_BYTES;
    if (type === TPM_HT.NV_INDEX) return nvFind(this, handle)?.public.authPolicy ?? NO_BYTES;
    if (handle === TPM_RH.PLATFORM) return this.platformPolicy.digest;
    if (type === TPM_HT.PCR) return PCR_ATTRIBUTES[handle]?.authGroup ? (this.persistent.pcrPolicy?.digest ?? NO_BYTES) : NO_BYTES;
    const policies = this.persistent.policies;
    if (handle === TPM_RH.OWNER) return policies?.owner.digest ?? NO_BYTES;
    if (handle === TPM_RH.ENDORSEMENT) return policies?.endorsement.digest ?? NO_BYTES;
    if (handle === TPM_RH.LOCKOUT) return policies?.lockout.digest ?? NO_BYTES;
    return NO_BYTES;
  }

  /** Identifies this run of TPM time, which restarts at _TPM_Init: expiring tickets carry it. */
  get timeEpoch(): bigint {
    return BigInt(Math.floor(this.timeStart));
  }

  /**
   * Part 1 §19.3 / the reference's IsAuthValueAvailable, IsAuthPolicyAvailable and
   * IsPolicySessionRequired: TPM_RC_AUTH_TYPE or TPM_RC_AUTH_UNAVAILABLE when the entity cannot be
   * authorized that way by this command, else 0. Only NV indices restrict this here; objects'
   * and roles' rules are the engine's (policyRequired).
   */
  authUnavailable(handle: number, commandCode: number, role: string, policySession: boolean): number {
    if (handle >>> 24 === TPM_HT.NV_INDEX) return nvAuthUnavailable(this, handle, commandCode, role, policySession);
    return 0;
  }

  /** Called after an authValue was checked for `handle`: PIN indices count uses and failures. */
  authValueUsed(handle: number, ok: boolean): void {
    if (handle >>> 24 === TPM_HT.NV_INDEX) nvAuthUsed(this, handle, ok);
  }

  /** Whether a handle refers to something present now (Part 1 "entity load status"). */
  isLoaded(handle: number): boolean {
    const type = handle >>> 24;
    if (type === HR.TRANSIENT >>> 24 || type === HR.PERSISTENT >>> 24) return this.object(handle) !== undefined;
    if (type === HR.NV_INDEX >>> 24) return nvFind(this, handle) !== undefined;
    if (type === HR.HMAC_SESSION >>> 24 || type === HR.POLICY_SESSION >>> 24) return this.sessions.get(handle) !== undefined;
    return true;
  }

  /**
   * Part 1 §19.8: entities exempt from dictionary-attack protection fail with TPM_RC_BAD_AUTH,
   * the rest with TPM_RC_AUTH_FAIL: lockoutAuth and objects without noDA are protected.
   */
  isDaExempt(handle: number): boolean {
    if (handle === TPM_RH.LOCKOUT) return false;
    const object = this.object(handle);
    if (object?.kind === 'key') return (object.publicArea.objectAttributes & NO_DA) !== 0;
    if (handle >>> 24 === TPM_HT.NV_INDEX) return nvDaExempt(this, handle);
    return true;
  }
}
