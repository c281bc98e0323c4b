/**
 * The engine's persistent state (Part 1 "NV memory": the reference's `gp` and the orderly
 * data `go` saved by Shutdown). It survives daemon restarts; `device/` writes it before a
 * response that changed it leaves.
 */
import { HASH_ALGS } from '../algorithms.js';
import { defaultAllocation, PcrAllocation } from './pcr.js';
import { deserializeState, serializeState, StateFormatError } from './serialize.js';
import type { PersistentObjects } from './persistent-objects.js';
import type { NvIndex } from './nv.js';
import { manufactureDa, type DaPersistent } from './dictionary-attack.js';
import { manufactureAudit, type AuditPersistent } from './audit.js';
import type { TpmProfile } from '../profile.js';

/** Size of the primary seeds and hierarchy proofs (Part 1 §14.4: at least the largest digest). */
export const SEED_SIZE = 64;

/** What the last Shutdown recorded: NONE means the TPM was not shut down orderly. */
export type OrderlyState = 'NONE' | 'CLEAR' | 'STATE';

/** Data kept by Shutdown(STATE) for Startup(STATE) (Part 1 "TPM Resume"). */
export interface SavedState {
  pcrs: Map<number, (Uint8Array | null)[]>;
  pcrUpdateCounter: number;
  /** Startup(STATE) must come from the locality the interrupted Startup came from. */
  startupLocality: number;
  /** The state-clear data Resume restores; states saved before it existed resume with the defaults. */
  stateClear?: StateClearData;
}

/**
 * State-clear data (the reference's `gc`, Part 1 §36.6): kept by Shutdown(STATE) for a Resume,
 * back to its defaults at every Startup(CLEAR).
 */
export interface StateClearData {
  shEnable: boolean;
  ehEnable: boolean;
  phEnableNV: boolean;
  platformAuth: Uint8Array;
  platformPolicy: AuthPolicy;
  /** The authValue of the PCR auth group (PCR_SetAuthValue). */
  pcrAuth: Uint8Array;
}

/** A hierarchy's authPolicy and its hash algorithm (SetPrimaryPolicy); NULL with an empty digest when none. */
export interface AuthPolicy {
  alg: number;
  digest: Uint8Array;
}

export const EMPTY_POLICY: AuthPolicy = { alg: 0x0010, digest: new Uint8Array(0) };

export interface PersistentState {
  /** Endorsement, storage (owner) and platform primary seeds. */
  eps: Uint8Array;
  sps: Uint8Array;
  pps: Uint8Array;
  /** Hierarchy proofs: HMAC keys for tickets of each hierarchy. */
  phProof: Uint8Array;
  shProof: Uint8Array;
  ehProof: Uint8Array;
  ownerAuth: Uint8Array;
  endorsementAuth: Uint8Array;
  lockoutAuth: Uint8Array;
  pcrAllocation: PcrAllocation;
  /** Set by PCR_Allocate: the allocation the next TPM Reset switches to. */
  pcrAllocationNext?: PcrAllocation;
  /** Clock (Part 1 §36.3) in ms at the last save, and whether it is known not to have gone back. */
  clock: bigint;
  clockSafe: boolean;
  resetCount: number;
  restartCount: number;
  orderly: OrderlyState;
  savedState: SavedState | null;
  /** Persistent objects by handle (EvictControl). Added in version 2. */
  objects: PersistentObjects;
  /** Defined NV indices in definition order (state/nv.ts). Added in version 2. */
  nv: NvIndex[];
  /** The highest value a deleted counter index had: new counters start above it (Part 1 §37.4.3). */
  nvMaxCounter: bigint;
  /** ownerPolicy, endorsementPolicy and lockoutPolicy; states written before they existed have none. */
  policies?: { owner: AuthPolicy; endorsement: AuthPolicy; lockout: AuthPolicy };
  /** Dictionary-attack counters and parameters (state/dictionary-attack.ts); added in version 2. */
  da?: DaPersistent;
  /** Command audit settings, counter and digest (state/audit.ts); states written before it have the defaults. */
  audit?: AuditPersistent;
  /** ClearControl: TPM2_Clear is refused while set (TPMA_PERMANENT.disableClear). Absent: clear. */
  disableClear?: boolean;
  /** The authPolicy of the PCR policy group (PCR_SetAuthPolicy). Absent: none. */
  pcrPolicy?: AuthPolicy;
  /** The commands that need physical presence with platform authorization (PP_Commands). Absent: the manufacturer's list. */
  ppCommands?: number[];
  /** The platform's algorithm set (SetAlgorithmSet, reported as TPM_PT_ALGORITHM_SET). Absent: 0. */
  algorithmSet?: number;
  /** The profile chosen at manufacture (tpm/profile.ts). Absent: the default profile. */
  profile?: TpmProfile;
}

/**
 * Version 2 added persistent objects, NV indices and dictionary-attack state; a version-1 blob
 * loads with none of them (DA with its defaults). Version 3 added disableClear, the PCR group's
 * policy, the physical-presence list, the state-clear data a Resume restores, command audit
 * settings and the algorithm set; older blobs load with the defaults. Version 4 added the
 * profile; older blobs have the default profile. Those four are JSON, and each blob named the
 * oldest version that could read it. Version 5 writes the same fields as binary tagged values
 * (serialize.ts), which only version 5 reads.
 */
export const PERSISTENT_VERSION = 5;

/** A new TPM; without `profile` it has the default one. */
export function manufacture(random: (n: number) => Uint8Array, profile?: TpmProfile): PersistentState {
  return {
    ...(profile !== undefined ? { profile } : {}),
    eps: random(SEED_SIZE),
    sps: random(SEED_SIZE),
    pps: random(SEED_SIZE),
    phProof: random(SEED_SIZE),
    shProof: random(SEED_SIZE),
    ehProof: random(SEED_SIZE),
    ownerAuth: new Uint8Array(0),
    endorsementAuth: new Uint8Array(0),
    lockoutAuth: new Uint8Array(0),
    pcrAllocation: defaultAllocation(),
    clock: 0n,
    clockSafe: true,
    resetCount: 0,
    restartCount: 0,
    // A new TPM behaves as after Shutdown(CLEAR): Startup(CLEAR) is a TPM Reset, STATE is refused.
    orderly: 'CLEAR',
    savedState: null,
    objects: new Map(),
    nv: [],
    nvMaxCounter: 0n,
    da: manufactureDa(),
    audit: manufactureAudit(),
  };
}

export function serializePersistent(s: PersistentState): Uint8Array {
  return serializeState('permanent', PERSISTENT_VERSION, PERSISTENT_VERSION, s, 'binary');
}

export function deserializePersistent(blob: Uint8Array): PersistentState {
  const { body } = deserializeState('permanent', PERSISTENT_VERSION, blob);
  const s = body as PersistentState;
  for (const key of ['eps', 'sps', 'pps', 'phProof', 'shProof', 'ehProof', 'ownerAuth'] as const) {
    if (!(s[key] instanceof Uint8Array)) throw new StateFormatError(`permanent state lacks ${key}`);
  }
  if (s.objects === undefined) s.objects = new Map();
  if (!(s.objects instanceof Map)) throw new StateFormatError('permanent state has damaged persistent objects');
  if (!(s.pcrAllocation instanceof Map)) throw new StateFormatError('permanent state lacks the PCR allocation');
  if (s.pcrAllocationNext !== undefined && !(s.pcrAllocationNext instanceof Map)) throw new StateFormatError('bad pending PCR allocation');
  for (const alg of [...s.pcrAllocation.keys(), ...(s.pcrAllocationNext?.keys() ?? [])]) {
    if (!HASH_ALGS.some((h) => h.alg === alg)) throw new StateFormatError(`unknown PCR bank 0x${alg.toString(16)}`);
  }
  s.nv ??= [];
  s.nvMaxCounter ??= 0n;
  if (!Array.isArray(s.nv) || typeof s.nvMaxCounter !== 'bigint') throw new StateFormatError('permanent state has bad NV indices');
  for (const i of s.nv) {
    if (!(i?.authValue instanceof Uint8Array) || !(i.data instanceof Uint8Array) || !(i.public?.authPolicy instanceof Uint8Array)) {
      throw new StateFormatError('permanent state has a damaged NV index');
    }
    if (i.data.length !== i.public.dataSize) throw new StateFormatError(`NV index 0x${Number(i.public.nvIndex).toString(16)} has the wrong data size`);
  }
  if (s.disableClear !== undefined && typeof s.disableClear !== 'boolean') throw new StateFormatError('permanent state has a bad disableClear');
  if (s.pcrPolicy !== undefined && !(s.pcrPolicy?.digest instanceof Uint8Array)) throw new StateFormatError('permanent state has a bad PCR policy');
  if (s.ppCommands !== undefined && !(Array.isArray(s.ppCommands) && s.ppCommands.every((c) => Number.isInteger(c)))) {
    throw new StateFormatError('permanent state has a bad physical-presence list');
  }
  if (s.algorithmSet !== undefined && !(Number.isInteger(s.algorithmSet) && s.algorithmSet >= 0 && s.algorithmSet <= 0xffffffff)) {
    throw new StateFormatError('permanent state has a bad algorithm set');
  }
  if (s.profile !== undefined) {
    const p = s.profile as Partial<TpmProfile> | null;
    if (typeof p?.name !== 'string' || typeof p.commands !== 'string' || typeof p.algorithms !== 'string' || typeof p.description !== 'string') {
      throw new StateFormatError('permanent state has a damaged profile');
    }
  }
  const sc = s.savedState?.stateClear;
  if (sc !== undefined && !(sc?.platformAuth instanceof Uint8Array && sc.pcrAuth instanceof Uint8Array && sc.platformPolicy?.digest instanceof Uint8Array)) {
    throw new StateFormatError('permanent state has damaged saved state-clear data');
  }
  return s;
}
