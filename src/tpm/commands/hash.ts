/** Part 3 §15.4 TPM2_Hash, §15.5 TPM2_HMAC and §17 hash, HMAC and event sequences. */
import { command } from '../command.js';
import { HASH_ALGS, isHashAlg } from '../algorithms.js';
import { TPM_ALG, TPM_CC, TPM_RC, TPM_RH } from '../constants.js';
import { hash, hashStart, hmac, hmacStart, type HashState } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import {
  TPM2B_AUTH,
  TPM2B_DIGEST,
  TPM2B_MAX_BUFFER,
  TPML_DIGEST_VALUES,
  TPMT_TK_HASHCHECK,
} from '../marshal/structures.js';
import { TPMA_OBJECT, type TPMT_SYM_DEF_OBJECT } from '../marshal/objects.js';
import { TPMI_ALG_HASH, TPMI_ALG_MAC_SCHEME, TPMI_DH_OBJECT, TPMI_DH_PCR, TPMI_RH_HIERARCHY } from '../marshal/tpmi.js';
import { UINT32 } from '../marshal/codec.js';
import type { HashSequence } from '../state/objects.js';
import { trimTrailingZeros } from '../state/auth-value.js';
import type { Tpm } from '../tpm.js';
import { checkExtendLocality, noteChange } from './pcr.js';
import { hashCheckTicket, isFirstBlockTicketSafe, nullHashCheck, startsWithGeneratedValue } from './tickets.js';

/** The sequence object behind a handle, or TPM_RC_MODE for handle `n` if it is not one of `kinds`. */
function sequence(tpm: Tpm, handle: number, n: number, kinds?: readonly HashSequence['kind'][]): HashSequence {
  const object = tpm.objects.get(handle);
  if (!object || object.kind === 'key' || (kinds && !kinds.includes(object.kind))) throw new TpmError(TPM_RC.MODE, { handle: n });
  return object;
}

/**
 * The checks TPM2_HMAC and TPM2_HMAC_Start share, in the order libtpms makes them (its
 * CryptSelectMac, as for TPM2_MAC and TPM2_MAC_Start, which share these command codes): the
 * MAC is the key's unless the key names none (then the command's), and must be one the key can
 * compute; then the key must be unrestricted and sign. RCs: TPM_RC_TYPE+H1 (neither a keyed
 * hash nor a symmetric key), TPM_RC_VALUE+P2 (both name a MAC and they differ, or neither
 * does), TPM_RC_SCHEME+P2 (not a MAC of this key: a symmetric key, CMAC not being
 * implemented), TPM_RC_ATTRIBUTES+H1 (restricted), TPM_RC_KEY+H1 (no sign).
 */
function hmacKey(tpm: Tpm, handle: number, inMac: number): { key: Uint8Array; hashAlg: number } {
  const object = tpm.object(handle);
  const type = object?.kind === 'key' ? object.publicArea.type : TPM_ALG.NULL;
  if (object?.kind !== 'key' || (type !== TPM_ALG.KEYEDHASH && type !== TPM_ALG.SYMCIPHER)) throw new TpmError(TPM_RC.TYPE, { handle: 1 });
  let keyMac: number = TPM_ALG.NULL;
  if (type === TPM_ALG.KEYEDHASH) {
    const { scheme } = object.publicArea.parameters as { scheme: { scheme: number; details: { hashAlg: number } | null } };
    if (scheme.scheme !== TPM_ALG.NULL) keyMac = scheme.details!.hashAlg;
  } else {
    const { sym } = object.publicArea.parameters as { sym: TPMT_SYM_DEF_OBJECT };
    if (sym.algorithm !== TPM_ALG.NULL) keyMac = sym.mode as number;
  }
  let mac = inMac;
  if (mac !== TPM_ALG.NULL) {
    if (keyMac !== TPM_ALG.NULL && mac !== keyMac) throw new TpmError(TPM_RC.VALUE, { param: 2 });
  } else {
    if (keyMac === TPM_ALG.NULL) throw new TpmError(TPM_RC.VALUE, { param: 2 });
    mac = keyMac;
  }
  if (type !== TPM_ALG.KEYEDHASH || !isHashAlg(mac)) throw new TpmError(TPM_RC.SCHEME, { param: 2 });
  const a = object.publicArea.objectAttributes;
  if (a & TPMA_OBJECT.restricted) throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 1 });
  if ((a & TPMA_OBJECT.sign) === 0) throw new TpmError(TPM_RC.KEY, { handle: 1 });
  return { key: object.sensitive, hashAlg: mac };
}

/**
 * Part 3 §15.4 TPM2_Hash: a digest and, when the data could not be a TPM-generated structure,
 * a hashcheck ticket for `hierarchy`.
 */
export const Hash = command({
  code: TPM_CC.Hash,
  handles: [],
  params: { data: TPM2B_MAX_BUFFER, hashAlg: TPMI_ALG_HASH, hierarchy: TPMI_RH_HIERARCHY.plus },
  response: { outHash: TPM2B_DIGEST, validation: TPMT_TK_HASHCHECK },
  run(tpm, _h, { data, hashAlg, hierarchy }) {
    const outHash = hash(hashAlg, data);
    const validation =
      hierarchy === TPM_RH.NULL || startsWithGeneratedValue(data)
        ? nullHashCheck()
        : hashCheckTicket(tpm, hierarchy, hashAlg, outHash);
    return { outHash, validation };
  },
});

/** Part 3 §15.5 TPM2_HMAC: the HMAC of `buffer` under a keyed-hash key (RCs: hmacKey's). */
export const HMAC = command({
  code: TPM_CC.HMAC,
  handles: [{ name: 'handle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { buffer: TPM2B_MAX_BUFFER, hashAlg: TPMI_ALG_MAC_SCHEME.plus },
  response: { outHMAC: TPM2B_DIGEST },
  run(tpm, { handle }, { buffer, hashAlg }) {
    const k = hmacKey(tpm, handle, hashAlg);
    return { outHMAC: hmac(k.hashAlg, k.key, buffer) };
  },
});

/**
 * Part 3 §17.2 TPM2_HMAC_Start: an HMAC sequence under a keyed-hash key, continued by
 * SequenceUpdate and finished by SequenceComplete. RCs: hmacKey's, TPM_RC_OBJECT_MEMORY.
 */
export const HMAC_Start = command({
  code: TPM_CC.HMAC_Start,
  handles: [{ name: 'handle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { auth: TPM2B_AUTH, hashAlg: TPMI_ALG_MAC_SCHEME.plus },
  response: { sequenceHandle: UINT32 },
  responseHandle: 'sequenceHandle',
  run(tpm, { handle }, { auth, hashAlg }) {
    const k = hmacKey(tpm, handle, hashAlg);
    const sequenceHandle = tpm.objects.add({
      kind: 'hmac',
      auth: trimTrailingZeros(auth).slice(),
      states: new Map([[k.hashAlg, hmacStart(k.hashAlg, k.key)]]),
      firstBlockSeen: false,
      ticketSafe: false,
    });
    return { sequenceHandle };
  },
});

/**
 * Part 3 §17.3 TPM2_HashSequenceStart: TPM_ALG_NULL starts an event sequence that digests
 * with every implemented hash. RCs: TPM_RC_OBJECT_MEMORY (no free object slot).
 */
export const HashSequenceStart = command({
  code: TPM_CC.HashSequenceStart,
  handles: [],
  params: { auth: TPM2B_AUTH, hashAlg: TPMI_ALG_HASH.plus },
  response: { sequenceHandle: UINT32 },
  responseHandle: 'sequenceHandle',
  run(tpm, _h, { auth, hashAlg }) {
    const event = hashAlg === TPM_ALG.NULL;
    const algs = event ? HASH_ALGS.map((h) => h.alg) : [hashAlg];
    const sequenceHandle = tpm.objects.add({
      kind: event ? 'event' : 'hash',
      auth: trimTrailingZeros(auth).slice(),
      states: new Map(algs.map((alg) => [alg, hashStart(alg)])),
      firstBlockSeen: false,
      ticketSafe: false,
    });
    return { sequenceHandle };
  },
});

/** Part 3 §17.4 TPM2_SequenceUpdate. RCs: TPM_RC_MODE+H1 (not a hash or event sequence). */
export const SequenceUpdate = command({
  code: TPM_CC.SequenceUpdate,
  handles: [{ name: 'sequenceHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { buffer: TPM2B_MAX_BUFFER },
  response: {},
  run(tpm, { sequenceHandle }, { buffer }) {
    const seq = sequence(tpm, sequenceHandle, 1);
    if (seq.kind === 'hash' && !seq.firstBlockSeen) {
      seq.firstBlockSeen = true;
      seq.ticketSafe = isFirstBlockTicketSafe(buffer);
    }
    for (const state of seq.states.values()) state.update(buffer);
    return {};
  },
});

/**
 * Part 3 §17.5 TPM2_SequenceComplete: the digest of a hash sequence, with a ticket when its
 * first block was safe, or the HMAC of an HMAC sequence with the NULL ticket; the sequence
 * object is flushed. RCs: TPM_RC_MODE+H1 (an event sequence).
 */
export const SequenceComplete = command({
  code: TPM_CC.SequenceComplete,
  handles: [{ name: 'sequenceHandle', type: TPMI_DH_OBJECT, auth: 'USER' }],
  params: { buffer: TPM2B_MAX_BUFFER, hierarchy: TPMI_RH_HIERARCHY.plus },
  response: { result: TPM2B_DIGEST, validation: TPMT_TK_HASHCHECK },
  flushed: true,
  run(tpm, { sequenceHandle }, { buffer, hierarchy }) {
    const seq = sequence(tpm, sequenceHandle, 1, ['hash', 'hmac']);
    const [[hashAlg, state]] = [...seq.states] as [[number, HashState]];
    if (!seq.firstBlockSeen) seq.ticketSafe = seq.kind === 'hash' && isFirstBlockTicketSafe(buffer);
    const result = state.update(buffer).digest();
    tpm.objects.remove(sequenceHandle);
    const validation =
      hierarchy !== TPM_RH.NULL && seq.ticketSafe ? hashCheckTicket(tpm, hierarchy, hashAlg, result) : nullHashCheck();
    return { result, validation };
  },
});

/**
 * Part 3 §17.6 TPM2_EventSequenceComplete: digests in every implemented hash, extended into
 * pcrHandle's allocated banks unless it is TPM_RH_NULL; the sequence is flushed.
 * RCs: TPM_RC_LOCALITY (PCR not extendable here), TPM_RC_MODE+H2 (not an event sequence).
 */
export const EventSequenceComplete = command({
  code: TPM_CC.EventSequenceComplete,
  handles: [
    { name: 'pcrHandle', type: TPMI_DH_PCR.plus, auth: 'USER' },
    { name: 'sequenceHandle', type: TPMI_DH_OBJECT, auth: 'USER' },
  ],
  params: { buffer: TPM2B_MAX_BUFFER },
  response: { results: TPML_DIGEST_VALUES },
  nv: true,
  flushed: true,
  run(tpm, { pcrHandle, sequenceHandle }, { buffer }) {
    const seq = sequence(tpm, sequenceHandle, 2, ['event']);
    if (pcrHandle !== TPM_RH.NULL) checkExtendLocality(tpm, pcrHandle);
    const results = [...seq.states].map(([hashAlg, state]) => ({ hashAlg, digest: state.update(buffer).digest() }));
    tpm.objects.remove(sequenceHandle);
    if (pcrHandle !== TPM_RH.NULL) {
      noteChange(tpm, pcrHandle);
      tpm.pcrs.extendAllBanks(pcrHandle, new Map(results.map((d) => [d.hashAlg, d.digest])));
    }
    return { results };
  },
});
