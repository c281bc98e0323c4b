/**
 * The engine's volatile state (Part 1 "TPM Resume": what _TPM_Init loses), saved for swtpm's
 * STORE_VOLATILE and VOLATILE state blobs and restored by the next INIT so the TPM resumes as it
 * was: started or not, PCRs and their update counter, tpmEstablished, a pending H-CRTM, the NULL
 * hierarchy's seed and proof, the commit state, loaded sessions and loaded key objects.
 *
 * Hash and event sequences are NOT saved: their digests in progress are node:crypto Hash objects,
 * whose internal state cannot be exported (libtpms does save them). A restored TPM has those slots
 * empty, as if the sequences had been flushed; a client then gets TPM_RC_REFERENCE_H0 for them.
 * The alternative, keeping every byte a sequence was fed to replay it, would make sequence
 * memory unbounded. The TPMS_TIME_INFO.time counter restarts, as after _TPM_Init.
 */
import { HR } from '../constants.js';
import { EMPTY_POLICY } from './persistent.js';
import type { Tpm } from '../tpm.js';
import type { KeyObject } from './objects.js';
import { MAX_LOADED_OBJECTS } from './objects.js';
import { PcrBanks, PCR_COUNT } from './pcr.js';
import { MAX_ACTIVE_SESSIONS, MAX_LOADED_SESSIONS, type Session } from './sessions.js';
import { deserializeState, serializeState, StateFormatError } from './serialize.js';
import { nvLoadOrderly, type NvRamEntry } from './nv.js';
import { isCommitState, type CommitState } from './commit.js';

export const VOLATILE_VERSION = 1;

interface VolatileBody {
  started: boolean;
  startupLocality: number;
  startedOrderly: boolean;
  selfTestDone: boolean;
  pcrs: Map<number, (Uint8Array | null)[]>;
  pcrUpdateCounter: number;
  tpmEstablished: boolean;
  /** Added after version 1 was first written: absent means empty. */
  platformAuth?: Uint8Array;
  platformPolicy?: { alg: number; digest: Uint8Array };
  /** Hierarchy enables and the PCR group's authValue (added after version 1: absent means the defaults). */
  enables?: { phEnable: boolean; shEnable: boolean; ehEnable: boolean; phEnableNV: boolean };
  pcrAuth?: Uint8Array;
  hcrtm: Map<number, Uint8Array> | null;
  nullSeed: Uint8Array;
  nullProof: Uint8Array;
  /** The commit nonce, counter and outstanding counts (added after version 1: absent or null means none yet). */
  commit?: CommitState | null;
  sessions: Session[];
  objects: { handle: number; object: KeyObject }[];
  /** The RAM copies of orderly NV indices (added after version 1: absent means the saved copies). */
  nvRam?: Map<number, NvRamEntry>;
  /** The exclusive audit session (added after version 1: absent means none). */
  exclusiveAuditSession?: number | null;
}

/** What `saveVolatile` left out, for the log. */
export interface VolatileSaveNotes {
  droppedSequences: number[];
}

export function saveVolatile(tpm: Tpm): { blob: Uint8Array; notes: VolatileSaveNotes } {
  const pcrs = new Map([...tpm.pcrs.values].map(([alg, bank]) => [alg, Array.from({ length: PCR_COUNT }, (_, i) => bank[i] ?? null)]));
  const objects: VolatileBody['objects'] = [];
  const droppedSequences: number[] = [];
  for (const handle of tpm.objects.handles()) {
    const object = tpm.objects.get(handle)!;
    if (object.kind === 'key') objects.push({ handle, object });
    else droppedSequences.push(handle);
  }
  const sessions = tpm.sessions.handles().map((h) => tpm.sessions.get(h)!);
  const body: VolatileBody = {
    started: tpm.started,
    startupLocality: tpm.startupLocality,
    startedOrderly: tpm.startedOrderly,
    selfTestDone: tpm.selfTestDone,
    pcrs,
    pcrUpdateCounter: tpm.pcrs.updateCounter,
    tpmEstablished: tpm.tpmEstablished,
    platformAuth: tpm.platformAuth,
    platformPolicy: tpm.platformPolicy,
    enables: { phEnable: tpm.phEnable, shEnable: tpm.shEnable, ehEnable: tpm.ehEnable, phEnableNV: tpm.phEnableNV },
    pcrAuth: tpm.pcrAuth,
    hcrtm: tpm.hcrtm,
    nullSeed: tpm.nullSeed,
    nullProof: tpm.nullProof,
    commit: tpm.commit,
    sessions,
    objects,
    nvRam: tpm.nvRam,
    exclusiveAuditSession: tpm.exclusiveAuditSession,
  };
  return { blob: serializeState('volatile', VOLATILE_VERSION, 1, body), notes: { droppedSequences } };
}

/**
 * Replaces the volatile state of a TPM that has just been powered on. Everything is parsed and
 * checked first; the TPM is changed only when the whole blob is good (StateFormatError otherwise).
 */
export function restoreVolatile(tpm: Tpm, blob: Uint8Array): void {
  const { body } = deserializeState('volatile', VOLATILE_VERSION, blob);
  const b = body as Partial<VolatileBody> | null;
  const bad = (why: string) => new StateFormatError(`volatile state ${why}`);
  if (!b || typeof b !== 'object') throw bad('has no body');
  for (const key of ['started', 'startedOrderly', 'selfTestDone', 'tpmEstablished'] as const) {
    if (typeof b[key] !== 'boolean') throw bad(`lacks ${key}`);
  }
  if (!isU32(b.startupLocality) || b.startupLocality > 4) throw bad('has a bad startup locality');
  if (!isU32(b.pcrUpdateCounter)) throw bad('has a bad PCR update counter');
  if (!(b.nullSeed instanceof Uint8Array) || !(b.nullProof instanceof Uint8Array)) throw bad('lacks the NULL hierarchy seed');
  if (!(b.pcrs instanceof Map)) throw bad('lacks PCR values');
  const banks = new PcrBanks(tpm.persistent.pcrAllocation);
  for (const [alg, values] of b.pcrs) {
    if (!tpm.persistent.pcrAllocation.has(alg)) throw bad(`has PCR bank 0x${Number(alg).toString(16)}, which is not allocated`);
    if (!Array.isArray(values) || values.length !== PCR_COUNT) throw bad('has a bad PCR bank');
    const bank = values.map((v) => (v instanceof Uint8Array ? v : undefined));
    banks.values.set(alg, bank);
  }
  if (b.started && banks.values.size !== tpm.persistent.pcrAllocation.size) throw bad('lacks an allocated PCR bank');
  banks.updateCounter = b.pcrUpdateCounter;
  if (b.hcrtm !== null && !(b.hcrtm instanceof Map)) throw bad('has a bad H-CRTM record');
  if (!Array.isArray(b.sessions) || !Array.isArray(b.objects)) throw bad('lacks sessions or objects');
  if (b.nvRam !== undefined && !(b.nvRam instanceof Map)) throw bad('has bad NV RAM');
  const enables = b.enables ?? { phEnable: true, shEnable: true, ehEnable: true, phEnableNV: true };
  if (Object.values(enables).some((v) => typeof v !== 'boolean') || Object.keys(enables).length !== 4) throw bad('has bad hierarchy enables');
  if (b.pcrAuth !== undefined && !(b.pcrAuth instanceof Uint8Array)) throw bad('has a bad PCR authValue');
  if (b.commit !== undefined && b.commit !== null && !isCommitState(b.commit)) throw bad('has a bad commit state');
  for (const [handle, e] of b.nvRam ?? []) {
    const index = tpm.persistent.nv.find((i) => i.public.nvIndex === handle);
    if (!index || !isU32(e?.attributes) || !(e.data instanceof Uint8Array) || e.data.length !== index.public.dataSize) {
      throw bad('has NV RAM for an index that is not defined');
    }
  }
  for (const s of b.sessions) {
    if (!s || !isU32(s.handle) || !(s.sessionKey instanceof Uint8Array) || !(s.nonceTPM instanceof Uint8Array) || !(s.policyDigest instanceof Uint8Array)) {
      throw bad('has a damaged session');
    }
    if (s.bind !== null && !(s.bind?.authValue instanceof Uint8Array)) throw bad('has a damaged session binding');
    if (s.auditDigest !== undefined && !(s.auditDigest instanceof Uint8Array)) throw bad('has a damaged session audit digest');
  }
  if (b.sessions.length > MAX_LOADED_SESSIONS) throw bad('has too many sessions');
  if (new Set(b.sessions.map((s) => s.handle & 0xffffff)).size !== b.sessions.length) throw bad('has two sessions in one slot');
  if (b.sessions.some((s) => (s.handle & 0xffffff) >= MAX_ACTIVE_SESSIONS)) throw bad('has a bad session handle');
  if (new Set(b.objects.map((o) => o?.handle)).size !== b.objects.length) throw bad('has two objects in one slot');
  for (const o of b.objects) {
    const slot = isU32(o?.handle) ? o.handle - HR.TRANSIENT : -1;
    if (slot < 0 || slot >= MAX_LOADED_OBJECTS || o.object?.kind !== 'key') throw bad('has a damaged object');
  }

  // All checked: replace.
  tpm.started = b.started!;
  tpm.startupLocality = b.startupLocality;
  tpm.startedOrderly = b.startedOrderly!;
  tpm.selfTestDone = b.selfTestDone!;
  tpm.pcrs = banks;
  tpm.tpmEstablished = b.tpmEstablished!;
  tpm.platformAuth = b.platformAuth instanceof Uint8Array ? b.platformAuth : new Uint8Array(0);
  tpm.platformPolicy = b.platformPolicy?.digest instanceof Uint8Array ? b.platformPolicy : EMPTY_POLICY;
  tpm.phEnable = enables.phEnable;
  tpm.shEnable = enables.shEnable;
  tpm.ehEnable = enables.ehEnable;
  tpm.phEnableNV = enables.phEnableNV;
  tpm.pcrAuth = b.pcrAuth ?? new Uint8Array(0);
  tpm.hcrtm = b.hcrtm ?? null;
  tpm.nullSeed = b.nullSeed;
  tpm.nullProof = b.nullProof;
  tpm.commit = b.commit ?? null;
  tpm.drtmHandle = null;
  tpm.sessions.clear();
  for (const s of b.sessions) tpm.sessions.put(s);
  tpm.exclusiveAuditSession = isU32(b.exclusiveAuditSession) ? b.exclusiveAuditSession : null;
  tpm.objects.clear();
  for (const o of b.objects) tpm.objects.put(o.handle, o.object);
  nvLoadOrderly(tpm);
  for (const [handle, e] of b.nvRam ?? []) if (tpm.nvRam.has(handle)) tpm.nvRam.set(handle, e);
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}
