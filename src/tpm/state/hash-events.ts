/**
 * H-CRTM and DRTM measurement (Part 1 §34 "_TPM_Hash_Start/_TPM_Hash_Data/_TPM_Hash_End",
 * the reference's events/_TPM_Hash_*.c and PCR.c PcrDrtm/PCRResetDynamics, PC Client PTP).
 * The platform signals a sequence; its digests go into PCR 17 after Startup (DRTM) or into
 * PCR 0 at the next Startup (H-CRTM).
 */
import { HASH_ALGS, hashInfo } from '../algorithms.js';
import { TPM_RC } from '../constants.js';
import { hashStart as startDigest } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import type { Tpm } from '../tpm.js';
import { DRTM_PCR, HCRTM_PCR, isSelected, PCR_ATTRIBUTES, PCR_COUNT } from './pcr.js';

/** The locality an H-CRTM PCR 0 starts from (PC Client: 0…04). */
const HCRTM_LOCALITY = 4;

/**
 * _TPM_Hash_Start: a running sequence is discarded; a new event sequence takes an object slot,
 * and when none is free the first loaded object is flushed to make room, as the reference
 * does. The platform's tpmEstablished is set.
 */
export function hashStart(tpm: Tpm): void {
  if (tpm.drtmHandle !== null) {
    tpm.objects.remove(tpm.drtmHandle);
    tpm.drtmHandle = null;
  }
  const make = () => ({
    kind: 'event' as const,
    auth: new Uint8Array(0),
    states: new Map(HASH_ALGS.map((h) => [h.alg, startDigest(h.alg)])),
    firstBlockSeen: false,
    ticketSafe: false,
  });
  try {
    tpm.drtmHandle = tpm.objects.add(make());
  } catch (e) {
    if (!(e instanceof TpmError && e.rc === TPM_RC.OBJECT_MEMORY)) throw e;
    const victim = tpm.objects.handles()[0];
    if (victim === undefined) throw e;
    tpm.objects.remove(victim);
    tpm.drtmHandle = tpm.objects.add(make());
  }
  tpm.tpmEstablished = true;
}

/** The PCR a sequence measures into: 17 once started (DRTM), else 0 (H-CRTM). */
function targetPcr(tpm: Tpm): number {
  return tpm.started ? DRTM_PCR : HCRTM_PCR;
}

function allocated(tpm: Tpm, alg: number, pcr: number): boolean {
  const bitmap = tpm.persistent.pcrAllocation.get(alg);
  return bitmap !== undefined && isSelected(bitmap, pcr);
}

/** _TPM_Hash_Data: without a sequence nothing happens; else every bank allocated for the target PCR digests `data`. */
export function hashData(tpm: Tpm, data: Uint8Array): void {
  const seq = sequence(tpm);
  if (!seq) return;
  const pcr = targetPcr(tpm);
  for (const [alg, state] of seq.states) if (allocated(tpm, alg, pcr)) state.update(data);
}

/**
 * _TPM_Hash_End: after Startup (DRTM) PCRs 17–22 (those locality 4 may reset) become 0, PCR 17
 * is extended with each bank's digest and restartCount goes up; before Startup (H-CRTM) the
 * digests are kept for Startup to put into PCR 0. The sequence is flushed. Without a sequence
 * nothing happens.
 */
export function hashEnd(tpm: Tpm): void {
  const seq = sequence(tpm);
  if (!seq) return;
  const pcr = targetPcr(tpm);
  const digests = new Map<number, Uint8Array>();
  for (const [alg, state] of seq.states) if (allocated(tpm, alg, pcr)) digests.set(alg, state.digest());
  tpm.objects.remove(tpm.drtmHandle!);
  tpm.drtmHandle = null;
  if (!tpm.started) {
    tpm.hcrtm = digests;
    return;
  }
  for (const [alg, bank] of tpm.pcrs.values) {
    const size = hashInfo(alg)!.digestSize;
    for (let i = 0; i < PCR_COUNT; i++) {
      if (bank[i] && PCR_ATTRIBUTES[i]!.resetLocality & 0x10) bank[i] = new Uint8Array(size);
    }
  }
  for (const [alg, digest] of digests) tpm.pcrs.extend(DRTM_PCR, alg, digest);
  tpm.persistent.restartCount = (tpm.persistent.restartCount + 1) >>> 0;
  tpm.markDirty();
}

/**
 * Startup after an H-CRTM sequence (TPM Reset or Restart): PCR 0 of each bank that got a digest
 * becomes 0…04 extended with it, instead of the startup locality. Called by TPM2_Startup.
 */
export function applyHcrtm(tpm: Tpm): void {
  const digests = tpm.hcrtm;
  if (!digests) return;
  for (const [alg, digest] of digests) {
    const bank = tpm.pcrs.values.get(alg);
    if (!bank?.[HCRTM_PCR]) continue;
    const start = new Uint8Array(hashInfo(alg)!.digestSize);
    start[start.length - 1] = HCRTM_LOCALITY;
    bank[HCRTM_PCR] = start;
    tpm.pcrs.extend(HCRTM_PCR, alg, digest);
  }
  tpm.hcrtm = null;
}

function sequence(tpm: Tpm) {
  if (tpm.drtmHandle === null) return undefined;
  const object = tpm.objects.get(tpm.drtmHandle);
  if (!object || object.kind !== 'event') {
    // A client flushed it (FlushContext): the sequence is gone, as in the reference.
    tpm.drtmHandle = null;
    return undefined;
  }
  return object;
}
