/**
 * The TPM as command handlers see it: state in its four lifetimes (persistent, orderly,
 * volatile, per command) and the few services a handler may use (randomness, time). It does
 * no I/O; `Engine` owns one and drives it.
 */
import { HR, TPM_HT, TPM_RH } from './constants.js';
import { RsaCache } from './crypto/index.js';
import { PcrBanks } from './state/pcr.js';
import { ObjectSlots, type KeyObject, type TransientObject } from './state/objects.js';
import { SessionSlots } from './state/sessions.js';
import { nvAuthUnavailable, nvAuthUsed, nvDaExempt, nvFind, nvLoadOrderly, nvName, type NvRamEntry } from './state/nv.js';
import { DictionaryAttack } from './state/dictionary-attack.js';
import { EMPTY_POLICY, PersistentState, SEED_SIZE, type AuthPolicy } from './state/persistent.js';
import type { TPMS_TIME_INFO } from './marshal/structures.js';
import type { CommandDef } from './command.js';

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

export class Tpm {
  readonly env: EngineEnv;
  persistent: PersistentState;
  /** Set by any change to `persistent`; the engine's owner saves and clears it. */
  persistentDirty = false;

  /** The implemented commands in code order (GetCapability lists them). */
  commands: readonly CommandDef[] = [];

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
  /** env.now() at _TPM_Init: TPMS_TIME_INFO.time counts from here. */
  private timeStart: number;
  /** env.now() when `persistent.clock` was last brought up to date. */
  private clockAnchor: number;
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
  /** platformAuth lives in state-clear data: set by HierarchyChangeAuth, empty after Startup(CLEAR). */
  platformAuth: Uint8Array = new Uint8Array(0);
  /** platformPolicy (SetPrimaryPolicy) is state-clear data too. */
  platformPolicy: AuthPolicy = EMPTY_POLICY;
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
  }

  random(n: number): Uint8Array {
    return this.env.random(n);
  }

  markDirty(): void {
    this.persistentDirty = true;
  }

  /** Advances persistent.clock to now; called before the clock is read or saved. */
  syncClock(): bigint {
    const now = this.env.now();
    const elapsed = Math.max(0, Math.floor(now - this.clockAnchor));
    if (elapsed > 0) {
      this.persistent.clock += BigInt(elapsed);
      this.clockAnchor += elapsed;
    }
    return this.persistent.clock;
  }

  timeInfo(): TPMS_TIME_INFO {
    const clock = this.syncClock();
    return {
      time: BigInt(Math.max(0, Math.floor(this.env.now() - this.timeStart))),
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
    if (type === TPM_HT.PCR) return new Uint8Array(0);
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
        return new Uint8Array(0);
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
    if (object) return object.kind === 'key' ? object.name : new Uint8Array(0);
    const index = handle >>> 24 === TPM_HT.NV_INDEX ? nvFind(this, handle) : undefined;
    if (index) return nvName(this, index);
    return new Uint8Array([handle >>> 24, (handle >>> 16) & 0xff, (handle >>> 8) & 0xff, handle & 0xff]);
  }

  /** The authPolicy of an entity (Part 1 §19.7.9); empty where none is set (PCRs, sequences). */
  entityAuthPolicy(handle: number): Uint8Array {
    const type = handle >>> 24;
    if (type === TPM_HT.TRANSIENT || type === TPM_HT.PERSISTENT) return this.keyObject(handle)?.publicArea.authPolicy ?? new Uint8Array(0);
    if (type === TPM_HT.NV_INDEX) return nvFind(this, handle)?.public.authPolicy ?? new Uint8Array(0);
    if (handle === TPM_RH.PLATFORM) return this.platformPolicy.digest;
    const policies = this.persistent.policies;
    if (handle === TPM_RH.OWNER) return policies?.owner.digest ?? new Uint8Array(0);
    if (handle === TPM_RH.ENDORSEMENT) return policies?.endorsement.digest ?? new Uint8Array(0);
    if (handle === TPM_RH.LOCKOUT) return policies?.lockout.digest ?? new Uint8Array(0);
    return new Uint8Array(0);
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
