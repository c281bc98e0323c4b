/**
 * Part 3 §28 Context Management: ContextSave, ContextLoad, FlushContext. A saved object
 * context is AES-256-CFB encrypted and HMAC-SHA-512 protected with keys derived by KDFa from
 * its hierarchy's proof, the sequence number and the handle (Part 1 §30.3); the HMAC also
 * covers resetCount, so a context does not outlive a TPM Reset.
 */
import { command } from '../command.js';
import { CONTEXT_INTEGRITY_HASH_ALG } from '../algorithms.js';
import { HR, TPM_CC, TPM_RC, TPM_RH } from '../constants.js';
import { aesCfbDecrypt, aesCfbEncrypt, constantTimeEqual, hmac, kdfa } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { decode, encode, struct, tpm2b, UINT16, UINT32, UINT64, UINT8 } from '../marshal/codec.js';
import { objectName, TPM2B_NAME, TPM2B_PUBLIC, TPMS_CONTEXT } from '../marshal/objects.js';
import { TPMI_DH_CONTEXT } from '../marshal/tpmi.js';
import { MAX_LOADED_OBJECTS, type KeyObject } from '../state/objects.js';
import { policyOf, type PolicyState, type Session, type SessionKind } from '../state/sessions.js';
import type { Tpm } from '../tpm.js';

/** The handle a saved ordinary object context carries (Part 2 §14.5: 0x80000000). */
const SAVED_OBJECT = HR.TRANSIENT;
const AES_KEY_BYTES = 32;
const IV_BYTES = 16;

/** What a session context blob holds, encrypted (Part 1 §30.5). */
const SESSION_KIND_CODE = { hmac: 0, policy: 1, trial: 3 } as const;
const SESSION_CONTEXT = struct({
  kind: UINT8,
  authHash: UINT16,
  sessionKey: tpm2b(64),
  nonceTPM: tpm2b(64),
  bindHandle: UINT32,
  bindAuth: tpm2b(64),
  symAlgorithm: UINT16,
  symKeyBits: UINT16,
  symMode: UINT16,
  policyDigest: tpm2b(64),
  policy: struct({
    commandCode: UINT32,
    hashKind: UINT8,
    hash: tpm2b(64),
    locality: UINT8,
    pcrCounter: UINT32,
    flags: UINT8,
    timeout: UINT64,
    startTime: UINT64,
  }),
  /** An audit session's digest; empty for a session not (yet) used for audit. */
  auditDigest: tpm2b(64),
});

/** The policy state's one-byte fields, packed for the context blob. */
const HASH_KINDS = ['none', 'cpHash', 'nameHash', 'template'] as const;
const FLAG = { authValue: 1, password: 2, pp: 4, pcrSet: 8, nvChecked: 16, nvWritten: 32 } as const;

function packPolicy(session: Session) {
  const p = policyOf(session);
  return {
    commandCode: p.commandCode,
    hashKind: HASH_KINDS.indexOf(p.hashKind),
    hash: p.hash,
    locality: p.locality,
    pcrCounter: p.pcrCounter ?? 0,
    flags:
      (p.authValueNeeded ? FLAG.authValue : 0) | (p.passwordNeeded ? FLAG.password : 0) | (p.ppRequired ? FLAG.pp : 0) |
      (p.pcrCounter !== null ? FLAG.pcrSet : 0) | (p.nvWritten !== null ? FLAG.nvChecked : 0) | (p.nvWritten ? FLAG.nvWritten : 0),
    timeout: p.timeout,
    startTime: p.startTime,
  };
}

function unpackPolicy(v: ReturnType<typeof packPolicy>): PolicyState {
  return {
    commandCode: v.commandCode,
    hashKind: HASH_KINDS[v.hashKind] ?? 'none',
    hash: v.hash,
    locality: v.locality,
    pcrCounter: v.flags & FLAG.pcrSet ? v.pcrCounter : null,
    authValueNeeded: (v.flags & FLAG.authValue) !== 0,
    passwordNeeded: (v.flags & FLAG.password) !== 0,
    ppRequired: (v.flags & FLAG.pp) !== 0,
    nvWritten: v.flags & FLAG.nvChecked ? (v.flags & FLAG.nvWritten) !== 0 : null,
    timeout: v.timeout,
    startTime: v.startTime,
  };
}

const isSessionHandle = (h: number): boolean => h >>> 24 === HR.HMAC_SESSION >>> 24 || h >>> 24 === HR.POLICY_SESSION >>> 24;

/** What an object context blob holds, encrypted. */
const CONTEXT_OBJECT = struct({
  publicArea: TPM2B_PUBLIC,
  auth: tpm2b(64),
  sensitive: tpm2b(1024),
  seedValue: tpm2b(64),
  qualifiedName: TPM2B_NAME,
  /** Bit 0: publicOnly, bit 1: external (LoadExternal), bit 2: below an stClear parent. */
  flags: UINT8,
});

const u32 = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
const u64 = (v: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v);
  return b;
};

/** Encryption key, IV and integrity key of one context (Part 1 §30.3). */
function contextKeys(tpm: Tpm, hierarchy: number, sequence: bigint, handle: number) {
  const proof = tpm.hierarchyProof(hierarchy);
  if (!proof) throw new TpmError(TPM_RC.HIERARCHY, { param: 1 });
  const material = kdfa(CONTEXT_INTEGRITY_HASH_ALG, proof, 'CONTEXT', u64(sequence), u32(handle), (AES_KEY_BYTES + IV_BYTES) * 8);
  const integrityKey = kdfa(CONTEXT_INTEGRITY_HASH_ALG, proof, 'INTEGRITY', u64(sequence), u32(handle), 512);
  return { key: material.subarray(0, AES_KEY_BYTES), iv: material.subarray(AES_KEY_BYTES), integrityKey };
}

function integrity(tpm: Tpm, integrityKey: Uint8Array, sequence: bigint, handle: number, encrypted: Uint8Array): Uint8Array {
  return hmac(CONTEXT_INTEGRITY_HASH_ALG, integrityKey, u32(tpm.persistent.resetCount), u64(sequence), u32(handle), encrypted);
}

function blobCodec() {
  return struct({ integrity: tpm2b(64), encrypted: tpm2b(2600) });
}

/**
 * A session context: protected under the NULL hierarchy's proof, so it dies with a TPM Reset
 * as the spec requires (Part 1 §30.5); the session leaves memory but keeps its handle.
 */
function saveSession(tpm: Tpm, handle: number) {
  const session = tpm.sessions.get(handle);
  if (!session) throw new TpmError(TPM_RC.HANDLE, { handle: 1 });
  const sequence = tpm.nextObjectContextId();
  const plain = encode(SESSION_CONTEXT, {
    kind: SESSION_KIND_CODE[session.kind],
    authHash: session.authHash,
    sessionKey: session.sessionKey,
    nonceTPM: session.nonceTPM,
    bindHandle: session.bind?.handle ?? 0,
    bindAuth: session.bind?.authValue ?? new Uint8Array(0),
    symAlgorithm: session.symmetric.algorithm,
    symKeyBits: session.symmetric.keyBits,
    symMode: session.symmetric.mode,
    policyDigest: session.policyDigest,
    policy: packPolicy(session),
    auditDigest: session.auditDigest ?? new Uint8Array(0),
  });
  const { key, iv, integrityKey } = contextKeys(tpm, TPM_RH.NULL, sequence, handle);
  const encrypted = aesCfbEncrypt(key, iv, plain);
  plain.fill(0);
  const integrity_ = integrity(tpm, integrityKey, sequence, handle, encrypted);
  tpm.sessions.save(handle, sequence);
  return { sequence, savedHandle: handle, hierarchy: TPM_RH.NULL, contextBlob: encode(blobCodec(), { integrity: integrity_, encrypted }) };
}

function loadSession(tpm: Tpm, context: { sequence: bigint; savedHandle: number; hierarchy: number; contextBlob: Uint8Array }): number {
  let blob;
  try {
    blob = decode(blobCodec(), context.contextBlob);
  } catch {
    throw new TpmError(TPM_RC.SIZE, { param: 1 });
  }
  const { key, iv, integrityKey } = contextKeys(tpm, TPM_RH.NULL, context.sequence, context.savedHandle);
  const expected = integrity(tpm, integrityKey, context.sequence, context.savedHandle, blob.encrypted);
  if (!constantTimeEqual(expected, blob.integrity)) throw new TpmError(TPM_RC.INTEGRITY, { param: 1 });
  const p = decode(SESSION_CONTEXT, aesCfbDecrypt(key, iv, blob.encrypted));
  const kind = (Object.entries(SESSION_KIND_CODE).find(([, v]) => v === p.kind)?.[0] ?? 'hmac') as SessionKind;
  const session: Session = {
    handle: context.savedHandle,
    kind,
    authHash: p.authHash,
    sessionKey: p.sessionKey,
    symmetric: { algorithm: p.symAlgorithm, keyBits: p.symKeyBits, mode: p.symMode },
    nonceTPM: p.nonceTPM,
    bind: p.bindHandle === 0 ? null : { handle: p.bindHandle, authValue: p.bindAuth },
    policyDigest: p.policyDigest,
    policy: unpackPolicy(p.policy),
    ...(p.auditDigest.length > 0 ? { auditDigest: p.auditDigest } : {}),
  };
  try {
    tpm.sessions.load(session, context.sequence);
  } catch (e) {
    if (e instanceof TpmError) throw new TpmError(e.rc, { param: 1 });
    throw e;
  }
  return session.handle;
}

/**
 * Part 3 §28.2 TPM2_ContextSave: a loaded key or data object (which stays loaded) or a session
 * (which leaves memory until ContextLoad). RCs: TPM_RC_HANDLE+H1 (nothing loaded there),
 * TPM_RC_TYPE+H1 (a hash sequence, whose running digest cannot be exported).
 */
export const ContextSave = command({
  code: TPM_CC.ContextSave,
  handles: [{ name: 'saveHandle', type: TPMI_DH_CONTEXT }],
  params: {},
  response: { context: TPMS_CONTEXT },
  noSessions: true,
  run(tpm, { saveHandle }) {
    if (isSessionHandle(saveHandle)) return { context: saveSession(tpm, saveHandle) };
    const object = tpm.objects.get(saveHandle);
    if (!object) throw new TpmError(TPM_RC.HANDLE, { handle: 1 });
    if (object.kind !== 'key') throw new TpmError(TPM_RC.TYPE, { handle: 1 });
    const sequence = tpm.nextObjectContextId();
    const plain = encode(CONTEXT_OBJECT, {
      publicArea: object.publicArea,
      auth: object.auth,
      sensitive: object.sensitive,
      seedValue: object.seedValue,
      qualifiedName: object.qualifiedName,
      flags: (object.publicOnly ? 1 : 0) | (object.external ? 2 : 0) | (object.stClear ? 4 : 0),
    });
    const { key, iv, integrityKey } = contextKeys(tpm, object.hierarchy, sequence, SAVED_OBJECT);
    const encrypted = aesCfbEncrypt(key, iv, plain);
    plain.fill(0);
    const mac = integrity(tpm, integrityKey, sequence, SAVED_OBJECT, encrypted);
    return {
      context: {
        sequence,
        savedHandle: SAVED_OBJECT,
        hierarchy: object.hierarchy,
        contextBlob: encode(struct({ integrity: tpm2b(64), encrypted: tpm2b(2600) }), { integrity: mac, encrypted }),
      },
    };
  },
});

/**
 * Part 3 §28.3 TPM2_ContextLoad: verifies and decrypts a context; an object loads at the next
 * free handle, a session at its own. RCs: TPM_RC_INTEGRITY+P1 (tampered, another TPM's, or from
 * before a TPM Reset), TPM_RC_HANDLE+P1 (no such saved context, or an older copy of a session's),
 * TPM_RC_HIERARCHY+P1 (an object of a disabled hierarchy), TPM_RC_OBJECT_MEMORY, TPM_RC_SESSION_MEMORY+P1.
 */
export const ContextLoad = command({
  code: TPM_CC.ContextLoad,
  handles: [],
  params: { context: TPMS_CONTEXT },
  response: { loadedHandle: UINT32 },
  responseHandle: 'loadedHandle',
  noSessions: true,
  run(tpm, _h, { context }) {
    if (isSessionHandle(context.savedHandle)) return { loadedHandle: loadSession(tpm, context) };
    if (context.savedHandle !== SAVED_OBJECT) throw new TpmError(TPM_RC.HANDLE, { param: 1 });
    let blob;
    try {
      blob = decode(struct({ integrity: tpm2b(64), encrypted: tpm2b(2600) }), context.contextBlob);
    } catch {
      throw new TpmError(TPM_RC.SIZE, { param: 1 });
    }
    const { key, iv, integrityKey } = contextKeys(tpm, context.hierarchy, context.sequence, context.savedHandle);
    const expected = integrity(tpm, integrityKey, context.sequence, context.savedHandle, blob.encrypted);
    if (!constantTimeEqual(expected, blob.integrity)) throw new TpmError(TPM_RC.INTEGRITY, { param: 1 });
    // No object of a disabled hierarchy comes back (ms-tpm TPM2_ContextLoad).
    if (!tpm.hierarchyEnabled(context.hierarchy)) throw new TpmError(TPM_RC.HIERARCHY, { param: 1 });
    if (tpm.objects.count === MAX_LOADED_OBJECTS) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    const plain = decode(CONTEXT_OBJECT, aesCfbDecrypt(key, iv, blob.encrypted));
    const object: KeyObject = {
      kind: 'key',
      publicArea: plain.publicArea,
      name: objectName(plain.publicArea),
      qualifiedName: plain.qualifiedName,
      auth: plain.auth,
      sensitive: plain.sensitive,
      seedValue: plain.seedValue,
      hierarchy: context.hierarchy,
      ...(plain.flags & 1 ? { publicOnly: true } : {}),
      ...(plain.flags & 2 ? { external: true } : {}),
      ...(plain.flags & 4 ? { stClear: true } : {}),
    };
    return { loadedHandle: tpm.objects.add(object) };
  },
});

/**
 * Part 3 §28.4 TPM2_FlushContext: unloads a transient object or ends a session. The handle is
 * a parameter, not a handle, so errors name P1. RCs: TPM_RC_HANDLE+P1 (nothing there).
 */
export const FlushContext = command({
  code: TPM_CC.FlushContext,
  handles: [],
  params: { flushHandle: TPMI_DH_CONTEXT },
  response: {},
  noSessions: true,
  run(tpm, _h, { flushHandle }) {
    if (flushHandle >>> 24 === HR.TRANSIENT >>> 24) {
      if (!tpm.objects.get(flushHandle)) throw new TpmError(TPM_RC.HANDLE, { param: 1 });
      tpm.objects.remove(flushHandle);
    } else {
      if (!tpm.sessions.get(flushHandle) && !tpm.sessions.isSaved(flushHandle)) throw new TpmError(TPM_RC.HANDLE, { param: 1 });
      tpm.sessions.remove(flushHandle);
    }
    return {};
  },
});
