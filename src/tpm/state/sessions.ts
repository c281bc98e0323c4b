/**
 * Authorization sessions (Part 1 §19): HMAC, policy and trial sessions held by the TPM.
 * Handles are the session type's base plus a context slot, as in the reference, so the first
 * session a client starts is 0x02000000 (HMAC) or 0x03000000 (policy) on vtpmd as on swtpm.
 */
import { HR, TPM_RC } from '../constants.js';
import { TpmError } from '../errors.js';

/** libtpms' MAX_LOADED_SESSIONS and MAX_ACTIVE_SESSIONS. */
export const MAX_LOADED_SESSIONS = 3;
export const MAX_ACTIVE_SESSIONS = 64;

export type SessionKind = 'hmac' | 'policy' | 'trial';

/** A symmetric definition for parameter encryption (TPMT_SYM_DEF); NULL means none. */
export interface SessionSymmetric {
  algorithm: number;
  keyBits: number;
  mode: number;
}

/**
 * What the assertions of a policy session have asked for so far (Part 1 §19.7, ms-tpm
 * SESSION): checked when the session authorizes, reset by PolicyRestart and whenever the
 * session's nonce rolls after an authorization.
 */
export interface PolicyState {
  /** PolicyCommandCode: the one command the session may authorize, 0 for any. */
  commandCode: number;
  /** PolicyCpHash / PolicyNameHash / PolicyTemplate (they share one slot, as in the reference). */
  hashKind: 'none' | 'cpHash' | 'nameHash' | 'template';
  hash: Uint8Array;
  /** PolicyLocality: a TPMA_LOCALITY byte, 0 for any. */
  locality: number;
  /** PolicyPCR: the PCR update counter the PCR values were checked at, or null. */
  pcrCounter: number | null;
  authValueNeeded: boolean;
  passwordNeeded: boolean;
  ppRequired: boolean;
  /** PolicyNvWritten: the written state required of the NV index, or null. */
  nvWritten: boolean | null;
  /** Expiry in TPM time (ms since _TPM_Init), 0n for none. */
  timeout: bigint;
  /** TPM time when the session started or was last reset (expirations count from here). */
  startTime: bigint;
}

export function freshPolicyState(startTime: bigint): PolicyState {
  return {
    commandCode: 0,
    hashKind: 'none',
    hash: new Uint8Array(0),
    locality: 0,
    pcrCounter: null,
    authValueNeeded: false,
    passwordNeeded: false,
    ppRequired: false,
    nvWritten: null,
    timeout: 0n,
    startTime,
  };
}

/** The policy state of a session (sessions restored from older volatile state have none yet). */
export function policyOf(session: Session): PolicyState {
  session.policy ??= freshPolicyState(0n);
  return session.policy;
}

/** PolicyRestart and a rolled nonce: the digest back to zeros and every assertion forgotten. */
export function resetPolicy(session: Session, now: bigint): void {
  session.policyDigest = new Uint8Array(session.policyDigest.length);
  session.policy = freshPolicyState(now);
}

export interface Session {
  readonly handle: number;
  readonly kind: SessionKind;
  readonly authHash: number;
  readonly sessionKey: Uint8Array;
  readonly symmetric: SessionSymmetric;
  nonceTPM: Uint8Array;
  /**
   * The entity the session is bound to and its authValue then (Part 1 §19.6.11), or null. An
   * audit session is not bound (ms-tpm InitAuditSession), so the first audit unbinds it.
   */
  bind: { handle: number; authValue: Uint8Array } | null;
  /** Policy sessions: the running policy digest. */
  policyDigest: Uint8Array;
  /** Policy sessions: what the assertions require at authorization (see policyOf). */
  policy?: PolicyState;
  /** HMAC sessions used for audit: the session audit digest (state/audit.ts); undefined before the first audit. */
  auditDigest?: Uint8Array;
}

export class SessionSlots {
  private readonly slots: (Session | undefined)[] = new Array(MAX_ACTIVE_SESSIONS);
  /**
   * Context-saved sessions (Part 1 §30.5): the slot stays reserved and remembers the sequence
   * number of the one context that may bring it back, so an older copy cannot be replayed.
   */
  private readonly saved = new Map<number, { handle: number; sequence: bigint }>();

  /**
   * Creates a session in the first free context slot.
   * RCs: TPM_RC_SESSION_MEMORY (MAX_LOADED_SESSIONS loaded), TPM_RC_SESSION_HANDLES (no slot).
   */
  add(make: (handle: number) => Session, kind: SessionKind): Session {
    if (this.count >= MAX_LOADED_SESSIONS) throw new TpmError(TPM_RC.SESSION_MEMORY);
    const slot = this.slots.findIndex((s, i) => s === undefined && !this.saved.has(i));
    if (slot < 0) throw new TpmError(TPM_RC.SESSION_HANDLES);
    const base = kind === 'hmac' ? HR.HMAC_SESSION : HR.POLICY_SESSION;
    const session = make(base + slot);
    this.slots[slot] = session;
    return session;
  }

  /** Puts a session back at its handle's slot (restoring saved volatile state); the slot must be free. */
  put(session: Session): void {
    const slot = session.handle & 0xffffff;
    if (slot >= MAX_ACTIVE_SESSIONS || this.slots[slot] || this.count >= MAX_LOADED_SESSIONS) {
      throw new RangeError(`session slot for 0x${session.handle.toString(16)} is not free`);
    }
    this.slots[slot] = session;
  }

  get(handle: number): Session | undefined {
    const session = this.slots[handle & 0xffffff];
    return session?.handle === handle ? session : undefined;
  }

  /** Ends a session, loaded or saved. */
  remove(handle: number): void {
    if (this.get(handle)) this.slots[handle & 0xffffff] = undefined;
    if (this.isSaved(handle)) this.saved.delete(handle & 0xffffff);
  }

  /** ContextSave: the session leaves memory; only the context with `sequence` can reload it. */
  save(handle: number, sequence: bigint): void {
    this.slots[handle & 0xffffff] = undefined;
    this.saved.set(handle & 0xffffff, { handle, sequence });
  }

  isSaved(handle: number): boolean {
    return this.saved.get(handle & 0xffffff)?.handle === handle;
  }

  /**
   * ContextLoad of a session. RCs (the caller adds P1): TPM_RC_HANDLE (not saved, or a context
   * other than the last one saved), TPM_RC_SESSION_MEMORY (no room to load it).
   */
  load(session: Session, sequence: bigint): void {
    const slot = session.handle & 0xffffff;
    const saved = this.saved.get(slot);
    if (!saved || saved.handle !== session.handle || saved.sequence !== sequence) throw new TpmError(TPM_RC.HANDLE);
    if (this.count >= MAX_LOADED_SESSIONS) throw new TpmError(TPM_RC.SESSION_MEMORY);
    this.saved.delete(slot);
    this.slots[slot] = session;
  }

  savedHandles(): number[] {
    return [...this.saved.values()].map((s) => s.handle).sort((a, b) => (a & 0xffffff) - (b & 0xffffff));
  }

  handles(): number[] {
    return this.slots.flatMap((s) => (s ? [s.handle] : []));
  }

  get count(): number {
    return this.slots.reduce((n, s) => n + (s ? 1 : 0), 0);
  }

  clear(): void {
    this.slots.fill(undefined);
    this.saved.clear();
  }
}
