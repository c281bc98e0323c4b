/**
 * The TPM 2.0 engine: `execute(command, locality) → response`, pure and synchronous (Part 3
 * §5 "Command Processing"). It parses the header, handle area and authorization area,
 * dispatches to the command's handler and assembles the response. Every failure becomes a
 * TPM response code; an exception that is not a TpmError is a bug, answered with
 * TPM_RC_FAILURE and logged, and the engine keeps serving.
 */
import { TPM_ALG, TPM_CC, TPM_HT, TPM_RC, TPM_RH, TPM_RS_PW, TPM_ST, TPMA_NV, TPMA_SESSION } from './constants.js';
import { daOf } from './state/dictionary-attack.js';
import { COMMANDS } from './commands/index.js';
import { DEFAULT_PROFILE, ProfileError, profileRules, type TpmProfile } from './profile.js';
import { StateFormatError } from './state/serialize.js';
import type { CommandDef } from './command.js';
import { concatBytes } from './crypto/bytes.js';
import { constantTimeEqual, hash, hmac, randomBytes } from './crypto/index.js';
import { formatRc, TpmError } from './errors.js';
import { nvFind, nvPublic } from './state/nv.js';
import { PCR_ATTRIBUTES } from './state/pcr.js';
import { decryptParameter, encryptParameter } from './auth/param-encryption.js';
import { Reader } from './marshal/reader.js';
import { Writer } from './marshal/writer.js';
import type { Codec, FieldCodec } from './marshal/codec.js';
import { TPM2B_AUTH, TPM2B_NONCE } from './marshal/structures.js';
import { TPMI_SH_AUTH_SESSION, TPMI_ST_COMMAND_TAG } from './marshal/tpmi.js';
import { deserializePersistent, manufacture, serializePersistent } from './state/persistent.js';
import { hashData, hashEnd, hashStart } from './state/hash-events.js';
import { restoreVolatile, saveVolatile } from './state/volatile.js';
import { EngineEnv, MAX_BUFFER_SIZE, Tpm } from './tpm.js';
import { errorResponse, HEADER_SIZE } from './response.js';

export { errorResponse } from './response.js';
import { trimTrailingZeros } from './state/auth-value.js';
import { policyOf, resetPolicy, type Session } from './state/sessions.js';
import { TPMA_OBJECT } from './marshal/objects.js';
import { auditCommand, checkAuditAttributes } from './auth/audit.js';
import { isAudited } from './state/audit.js';

export type { EngineEnv } from './tpm.js';
export { MAX_BUFFER_SIZE } from './tpm.js';

/** Part 1 §18.4: at most three sessions per command. */
const MAX_SESSION_NUM = 3;

export const defaultEnv: EngineEnv = {
  random: randomBytes,
  now: () => performance.timeOrigin + performance.now(),
  log: (message) => process.stderr.write(`vtpmd: ${message}\n`),
};

export class Engine {
  readonly tpm: Tpm;
  private readonly commands: ReadonlyMap<number, CommandDef>;

  private constructor(tpm: Tpm) {
    this.tpm = tpm;
    // The profile stored at manufacture decides what this TPM runs, for as long as it lives.
    tpm.rules = profileRules(this.profile);
    this.commands = new Map([...COMMANDS].filter(([code]) => tpm.rules.commands.has(code)));
    tpm.commands = [...this.commands.values()].sort((a, b) => a.code - b.code);
  }

  /**
   * A new TPM with fresh seeds (manufacturing) and `profile` (checked by parseProfile; default:
   * DEFAULT_PROFILE). Its permanent state is dirty until saved.
   */
  static manufacture(env: EngineEnv = defaultEnv, profile?: TpmProfile): Engine {
    // The default profile is not stored: a state without one has it, and older vtpmd reads it.
    const stored = profile === undefined || profile.name === DEFAULT_PROFILE.name ? undefined : profile;
    const state = manufacture(env.random, stored);
    // No PCR bank of a hash the profile disables: no command could name it (PCR_Read, PCR_Allocate).
    const hashes = profileRules(stored ?? DEFAULT_PROFILE).algorithms;
    for (const alg of [...state.pcrAllocation.keys()]) if (!hashes.has(alg)) state.pcrAllocation.delete(alg);
    const engine = new Engine(new Tpm(env, state));
    engine.tpm.markDirty();
    return engine;
  }

  /** A TPM from a permanent-state blob; throws StateFormatError if the blob cannot be read. */
  static restore(permanent: Uint8Array, env: EngineEnv = defaultEnv): Engine {
    const tpm = new Tpm(env, deserializePersistent(permanent));
    try {
      return new Engine(tpm);
    } catch (e) {
      if (e instanceof ProfileError) throw new StateFormatError(`permanent state has a profile this vtpmd cannot run: ${e.message}`);
      throw e;
    }
  }

  /** The active profile (swtpm GET_INFO's ActiveProfile). */
  get profile(): TpmProfile {
    return this.tpm.persistent.profile ?? DEFAULT_PROFILE;
  }

  /** _TPM_Init (power on / platform reset): the TPM then needs TPM2_Startup. */
  init(): void {
    this.tpm.powerOn();
  }

  /** True once TPM2_Startup has succeeded since the last init(). */
  get started(): boolean {
    return this.tpm.started;
  }

  /** The permanent state if it changed since the last call, else null. Persist it before replying. */
  takePermanentChanges(): Uint8Array | null {
    if (!this.tpm.persistentDirty) return null;
    this.tpm.persistentDirty = false;
    return this.permanentBlob();
  }

  permanentBlob(): Uint8Array {
    this.tpm.syncClock();
    return serializePersistent(this.tpm.persistent);
  }

  /**
   * _TPM_Hash_Start (H-CRTM/DRTM, Part 1 §34): starts an event sequence, flushing a loaded
   * object when no slot is free, and sets tpmEstablished.
   */
  hashStart(): void {
    hashStart(this.tpm);
  }

  /** _TPM_Hash_Data: digests `data` in the running sequence (nothing without one). */
  hashData(data: Uint8Array): void {
    hashData(this.tpm, data);
  }

  /**
   * _TPM_Hash_End: after Startup, PCRs 17–22 reset and PCR 17 extended (DRTM); before Startup,
   * PCR 0 gets 0…04 extended with the digests at the next Startup (H-CRTM).
   */
  hashEnd(): void {
    hashEnd(this.tpm);
  }

  /** The platform's tpmEstablished bit (PC Client TPM_ACCESS). */
  get tpmEstablished(): boolean {
    return this.tpm.tpmEstablished;
  }

  /** Clears tpmEstablished (the platform checks the locality). */
  resetTpmEstablished(): void {
    this.tpm.tpmEstablished = false;
  }

  /** The volatile state (state/volatile.ts says what it holds and what it leaves out). */
  volatileBlob(): Uint8Array {
    const { blob, notes } = saveVolatile(this.tpm);
    if (notes.droppedSequences.length > 0) {
      const handles = notes.droppedSequences.map((h) => `0x${h.toString(16)}`).join(', ');
      this.tpm.env.log(`volatile state leaves out hash/event sequence ${handles}: their digest state cannot be saved`);
    }
    return blob;
  }

  /** Resumes from a volatile blob after init(); throws StateFormatError and changes nothing if it is bad. */
  restoreVolatile(blob: Uint8Array): void {
    restoreVolatile(this.tpm, blob);
  }

  /** swtpm's SET_BUFFERSIZE: the command/response size limit clients see as TPM_PT_MAX_*_SIZE. */
  get bufferSize(): number {
    return this.tpm.bufferSize;
  }

  set bufferSize(size: number) {
    this.tpm.bufferSize = Math.min(size, MAX_BUFFER_SIZE);
  }

  /** Executes one command at `locality` (0–4). Never throws. */
  execute(command: Uint8Array, locality = 0): Uint8Array {
    try {
      this.tpm.locality = locality;
      return this.dispatch(command);
    } catch (e) {
      if (e instanceof TpmError) return errorResponse(e.rc);
      const code = command.length >= HEADER_SIZE ? new DataView(command.buffer, command.byteOffset).getUint32(6) : -1;
      this.tpm.env.log(`internal error in command 0x${code.toString(16)}: ${(e as Error).stack ?? String(e)}`);
      return errorResponse(TPM_RC.FAILURE);
    }
  }

  private dispatch(command: Uint8Array): Uint8Array {
    let r = new Reader(command);
    r.profile = this.tpm.rules;
    const tag = TPMI_ST_COMMAND_TAG.read(r);
    const commandSize = r.u32();
    if (commandSize !== command.length || commandSize > this.tpm.bufferSize) {
      throw new TpmError(TPM_RC.COMMAND_SIZE);
    }
    const code = r.u32();
    const def = this.commands.get(code);
    if (!def) throw new TpmError(TPM_RC.COMMAND_CODE);
    if (this.tpm.started === (code === TPM_CC.Startup)) throw new TpmError(TPM_RC.INITIALIZE);
    this.selfHeal();

    // Handle area (Part 3 §5.2): each handle is validated against its interface type.
    const handles: Record<string, number> = {};
    const handleList: number[] = [];
    for (let i = 0; i < def.handles.length; i++) {
      const spec = def.handles[i]!;
      const h = readAt(spec.type, r, HANDLE_AT[i]!);
      handles[spec.name] = h;
      handleList.push(h);
    }
    for (let i = 0; i < handleList.length; i++) {
      // Part 3 §5.3: a transient object that is not loaded is a reference to nothing; a
      // persistent object or NV index that does not exist is a bad handle.
      const h = handleList[i]!;
      if (this.tpm.isLoaded(h)) {
        // A disabled hierarchy's handles, persistent objects and NV indices (ms-tpm EntityGetLoadStatus).
        const rc = this.tpm.hierarchyStatus(h, code);
        if (rc) throw new TpmError(rc, { handle: i + 1 });
        continue;
      }
      // A saved session is there but not loaded (ms-tpm HandleProcess).
      if (h >>> 24 === TPM_HT.TRANSIENT || this.tpm.sessions.isSaved(h)) throw new TpmError(TPM_RC.REFERENCE_H0 + i);
      throw new TpmError(TPM_RC.HANDLE, { handle: i + 1 });
    }

    // Authorization area (Part 1 §18). The parameter bytes follow it; HMACs cover them raw.
    const authIndexes = def.authHandles;
    let sessions: SessionUse[] = [];
    // Where the parameters start: after the authorization area when there is one.
    let paramsAt = r.pos;
    // cpHash (Part 1 §18.7) over the parameters as sent and the handles' Names as they are
    // before the command runs, once per hash algorithm for every session, policy and audit.
    let names: Uint8Array[] | undefined;
    const cpHash = perHashAlg((alg) => {
      names ??= handleList.map((h) => this.tpm.entityName(h));
      return hash(alg, codeBytes(code), ...names, command.subarray(paramsAt));
    });
    if (tag === TPM_ST.SESSIONS) {
      if (def.noSessions) throw new TpmError(TPM_RC.AUTH_CONTEXT);
      const authSize = r.u32();
      if (authSize < 9 || authSize > r.remaining) throw new TpmError(TPM_RC.SIZE);
      sessions = this.readSessions(new Reader(command, r.pos, r.pos + authSize), def);
      r.pos += authSize;
      for (const i of authIndexes) if (i >= sessions.length) throw new TpmError(TPM_RC.AUTH_MISSING);
      paramsAt = r.pos;
      const cpParams = command.subarray(paramsAt);
      sessions.forEach((s, i) => this.checkSession(s, i, sessions, def, handleList, cpParams, cpHash));
      const decrypt = sessions.findIndex((s) => s.attributes & TPMA_SESSION.decrypt);
      if (decrypt >= 0) r = this.decryptFirstParameter(sessions[decrypt]!, decrypt, command.slice(r.pos));
    } else if (authIndexes.length > 0) {
      throw new TpmError(TPM_RC.AUTH_MISSING);
    }

    // Parameter area: each top-level parameter is numbered for response codes.
    const params: Record<string, unknown> = {};
    for (let i = 0; i < def.params.length; i++) {
      const [name, codec] = def.params[i]!;
      params[name] = readAt(codec, r, PARAM_AT[i] ?? { param: i + 1 }, params);
    }
    if (r.remaining !== 0) throw new TpmError(TPM_RC.SIZE);

    // Audit hashes the command with the handles' Names as they are before it runs.
    const audited = isAudited(this.tpm.persistent, code) || sessions.some((s) => s.attributes & TPMA_SESSION.audit);
    if (audited) names ??= handleList.map((h) => this.tpm.entityName(h));
    const out = def.run(this.tpm, handles, params);
    return this.buildResponse(tag, def, out, sessions, cpHash);
  }

  /** ms-tpm DASelfHeal, run as TPM time advances (before each command). */
  private selfHeal(): void {
    const da = daOf(this.tpm.persistent);
    if (da.failedTries === 0 && da.lockoutAuthEnabled) return;
    if (this.tpm.da.selfHeal(this.tpm.persistent, this.tpm.timeInfo().time)) this.tpm.markDirty();
  }

  private readSessions(r: Reader, def: CommandDef): SessionUse[] {
    const sessions: SessionUse[] = [];
    let decrypt = false;
    let encrypt = false;
    let audit = false;
    while (r.remaining > 0) {
      const n = sessions.length + 1;
      if (sessions.length === MAX_SESSION_NUM) throw new TpmError(TPM_RC.SIZE, { session: n });
      const at = SESSION_AT[n - 1]!;
      const handle = readAt(TPMI_SH_AUTH_SESSION, r, at);
      const nonceCaller = readAt(TPM2B_NONCE, r, at);
      const attributes = readAt(ATTRIBUTES, r, at);
      const hmac = readAt(TPM2B_AUTH, r, at);
      if (handle === TPM_RS_PW) {
        const forbidden = TPMA_SESSION.encrypt | TPMA_SESSION.decrypt | TPMA_SESSION.audit |
          TPMA_SESSION.auditExclusive | TPMA_SESSION.auditReset;
        if (attributes & forbidden) throw new TpmError(TPM_RC.ATTRIBUTES, { session: n });
        if (nonceCaller.length !== 0) throw new TpmError(TPM_RC.NONCE, { session: n });
        sessions.push({ handle, attributes, nonceCaller, hmac, includeAuth: true });
        continue;
      }
      const session = this.tpm.sessions.get(handle);
      if (!session) throw new TpmError(TPM_RC.REFERENCE_S0 + sessions.length);
      if (sessions.some((s) => s.handle === handle)) throw new TpmError(TPM_RC.HANDLE, { session: n });
      // Part 1 §21.1: one session may decrypt the first command parameter and one may encrypt
      // the first response parameter, and only where that parameter is a TPM2B.
      if (attributes & TPMA_SESSION.decrypt) {
        if (!def.params[0]?.[1] || !('sizedBuffer' in def.params[0][1]) || decrypt) {
          throw new TpmError(TPM_RC.ATTRIBUTES, { session: n });
        }
        if (session.symmetric.algorithm === TPM_ALG.NULL) throw new TpmError(TPM_RC.SYMMETRIC, { session: n });
        decrypt = true;
      }
      if (attributes & TPMA_SESSION.encrypt) {
        if (!encryptable(def) || encrypt) throw new TpmError(TPM_RC.ATTRIBUTES, { session: n });
        if (session.symmetric.algorithm === TPM_ALG.NULL) throw new TpmError(TPM_RC.SYMMETRIC, { session: n });
        encrypt = true;
      }
      if (attributes & TPMA_SESSION.audit) {
        checkAuditAttributes(this.tpm, session, attributes, audit, n);
        audit = true;
      }
      sessions.push({ handle, attributes, nonceCaller, hmac, session, includeAuth: false });
    }
    return sessions;
  }

  /**
   * Session i authorizes handle i when that handle has an auth role (Part 1 §19.2): a password
   * is compared, an HMAC session's HMAC over cpHash is verified (Part 1 §19.6.5), a policy
   * session's digest must equal the entity's authPolicy. A session that authorizes nothing
   * must be there for parameter encryption; its HMAC is keyed by the session key alone.
   */
  private checkSession(
    use: SessionUse,
    i: number,
    all: SessionUse[],
    def: CommandDef,
    handles: number[],
    cpParams: Uint8Array,
    cpHash: (alg: number) => Uint8Array,
  ): void {
    const n = i + 1;
    const session = use.session;
    const authorizes = i < def.handles.length && def.handles[i]!.auth !== undefined;
    if (!authorizes && !session) throw new TpmError(TPM_RC.HANDLE, { session: n });
    // Platform authorization of a command on the physical-presence list needs PP asserted.
    if (authorizes && handles[i] === TPM_RH.PLATFORM && !this.tpm.physicalPresence && this.tpm.ppCommands().includes(def.code)) {
      throw new TpmError(TPM_RC.PP, { session: n });
    }
    if (session?.kind === 'trial') throw new TpmError(TPM_RC.ATTRIBUTES, { session: n });
    // A session bound to a DA-protected entity is subject to DA however it is used (Part 1 §19.8).
    const bind = session?.bind;
    if (bind && !this.tpm.isDaExempt(bind.handle)) this.checkLockedOut(bind.handle === TPM_RH.LOCKOUT);
    if (!authorizes) {
      const unauthorizing = TPMA_SESSION.decrypt | TPMA_SESSION.encrypt | TPMA_SESSION.audit;
      if (!(use.attributes & unauthorizing)) throw new TpmError(TPM_RC.ATTRIBUTES, { session: n });
      if (!this.verifyHmac(use, i, all, cpHash, session!.sessionKey)) this.authFailed(use, n);
      return;
    }
    const entity = handles[i]!;
    use.associated = entity;
    const stored = this.tpm.entityAuth(entity);
    if (stored === undefined) throw new TpmError(TPM_RC.HANDLE, { session: n });
    const authValue = trimTrailingZeros(stored);
    // Whether this entity can be authorized this way by this command at all (NV attributes).
    const unavailable = this.tpm.authUnavailable(entity, def.code, def.handles[i]!.auth!, session?.kind === 'policy');
    if (unavailable) throw new TpmError(unavailable);
    if (!session) {
      use.includeAuth = true;
    } else if (session.kind === 'policy') {
      const policy = policyOf(session);
      use.includeAuth = policy.authValueNeeded || policy.passwordNeeded;
      use.passwordOnly = policy.passwordNeeded;
    } else {
      // The authValue is left out of the key only for the entity the session is bound to.
      const bound = bind != null && bind.handle === entity && constantTimeEqual(bind.authValue, authValue);
      use.includeAuth = !bound;
    }
    // An authorization that uses a DA-protected authValue is refused while locked out.
    if (use.includeAuth && !this.tpm.isDaExempt(entity)) this.checkLockedOut(entity === TPM_RH.LOCKOUT);
    if (session?.kind === 'policy') this.checkPolicy(session, i, def, entity, handles, cpParams, cpHash);
    else if (this.policyRequired(def, i, entity)) throw new TpmError(TPM_RC.AUTH_TYPE, { session: n });
    else if (!this.authValueAvailable(def, i, entity)) throw new TpmError(TPM_RC.AUTH_UNAVAILABLE, { session: n });
    if (!session || use.passwordOnly) {
      // A password (or PolicyPassword: the authValue in clear in the HMAC field, Part 1 §19.7.6).
      const ok = constantTimeEqual(trimTrailingZeros(use.hmac), authValue);
      this.tpm.authValueUsed(entity, ok);
      if (!ok) this.authFailed(use, n);
      return;
    }
    const key = use.includeAuth ? concat(session.sessionKey, authValue) : session.sessionKey;
    const ok = this.verifyHmac(use, i, all, cpHash, key);
    // An NV PIN index counts each use of its authValue, good or bad.
    if (use.includeAuth) this.tpm.authValueUsed(entity, ok);
    if (!ok) this.authFailed(use, n);
  }

  /** ms-tpm CheckLockedOut; TPM_RC_LOCKOUT has no position. Records that DA was used. */
  private checkLockedOut(lockout: boolean): void {
    if (this.tpm.da.checkLockedOut(this.tpm.persistent, lockout)) this.tpm.markDirty();
  }

  /**
   * ms-tpm IncrementLockout: a failed authorization is TPM_RC_BAD_AUTH when DA does not apply
   * (an exempt entity, or an HMAC without its authValue in a session not bound to a protected
   * one); else failedTries counts it (or lockoutAuth is disabled) and it is TPM_RC_AUTH_FAIL.
   * The new counts are persisted before the error response leaves.
   */
  private authFailed(use: SessionUse, n: number): never {
    let handle = use.associated;
    const exempt = (h: number | undefined) => h === undefined || this.tpm.isDaExempt(h);
    if (!use.session) {
      if (exempt(handle)) throw new TpmError(TPM_RC.BAD_AUTH, { session: n });
    } else {
      const bind = use.session.bind;
      const daBound = bind !== null && !exempt(bind.handle);
      if (daBound && bind!.handle === TPM_RH.LOCKOUT) handle = TPM_RH.LOCKOUT;
      if (!daBound && (exempt(handle) || !use.includeAuth)) throw new TpmError(TPM_RC.BAD_AUTH, { session: n });
    }
    this.tpm.da.registerFailure(this.tpm.persistent, handle ?? TPM_RH.NULL, this.tpm.timeInfo().time);
    this.tpm.markDirty();
    throw new TpmError(TPM_RC.AUTH_FAIL, { session: n });
  }

  /**
   * Part 1 §19.7.1 and ms-tpm IsPolicySessionRequired: a DUP role always needs a policy
   * session, and an ADMIN role of an object with adminWithPolicy too (else TPM_RC_AUTH_TYPE).
   */
  private policyRequired(def: CommandDef, i: number, entity: number): boolean {
    const role = def.handles[i]!.auth;
    if (role === 'DUP') return true;
    if (role !== 'ADMIN') return false;
    const object = this.tpm.keyObject(entity);
    return object !== undefined && (object.publicArea.objectAttributes & TPMA_OBJECT.adminWithPolicy) !== 0;
  }

  /**
   * ms-tpm IsAuthValueAvailable for objects, checked after IsPolicySessionRequired: an object
   * loaded without its sensitive area (LoadExternal of a public key) has no authValue, and the
   * USER role of an object without userWithAuth is open to a policy session only (Part 1
   * §19.7.3); a password or HMAC session gets TPM_RC_AUTH_UNAVAILABLE, not TPM_RC_AUTH_TYPE.
   */
  private authValueAvailable(def: CommandDef, i: number, entity: number): boolean {
    const object = this.tpm.keyObject(entity);
    if (object === undefined) return true;
    if (object.publicOnly) return false;
    return def.handles[i]!.auth !== 'USER' || (object.publicArea.objectAttributes & TPMA_OBJECT.userWithAuth) !== 0;
  }

  /**
   * ms-tpm CheckPolicyAuthSession: everything the policy's assertions recorded must hold now.
   * RCs (the caller's session number added): TPM_RC_MODE (PolicySecret through a policy
   * without an authValue), TPM_RC_PCR_CHANGED, TPM_RC_AUTH_UNAVAILABLE (no authPolicy),
   * TPM_RC_POLICY_FAIL, TPM_RC_EXPIRED, TPM_RC_POLICY_CC, TPM_RC_LOCALITY, TPM_RC_PP.
   */
  private checkPolicy(
    session: Session,
    i: number,
    def: CommandDef,
    entity: number,
    handles: number[],
    cpParams: Uint8Array,
    cpHash: (alg: number) => Uint8Array,
  ): void {
    const n = { session: i + 1 };
    const p = policyOf(session);
    if (def.code === TPM_CC.PolicySecret && !p.passwordNeeded && !p.authValueNeeded) throw new TpmError(TPM_RC.MODE, n);
    if (p.pcrCounter !== null && p.pcrCounter !== this.tpm.pcrs.updateCounter) throw new TpmError(TPM_RC.PCR_CHANGED, n);
    const policy = this.tpm.entityAuthPolicy(entity);
    // A PCR has a policy only in the policy group, empty until PCR_SetAuthPolicy (ms-tpm IsAuthPolicyAvailable).
    const available = entity >>> 24 === TPM_HT.PCR ? PCR_ATTRIBUTES[entity]?.authGroup === true : policy.length !== 0;
    if (!available) throw new TpmError(TPM_RC.AUTH_UNAVAILABLE, n);
    if (!constantTimeEqual(policy, session.policyDigest)) throw new TpmError(TPM_RC.POLICY_FAIL, n);
    if (p.timeout !== 0n && p.timeout < this.tpm.timeInfo().time) throw new TpmError(TPM_RC.EXPIRED, n);
    if (p.commandCode !== 0) {
      if (p.commandCode !== def.code) throw new TpmError(TPM_RC.POLICY_CC, n);
    } else if (def.handles[i]!.auth === 'ADMIN' || def.handles[i]!.auth === 'DUP') {
      throw new TpmError(TPM_RC.POLICY_FAIL, n);
    }
    if (p.locality !== 0) {
      const l = this.tpm.locality;
      const ok = p.locality < 32 ? (p.locality & (1 << l)) !== 0 : p.locality === l;
      if (!ok) throw new TpmError(TPM_RC.LOCALITY, n);
    }
    // Physical presence is never asserted on a virtual TPM (swtpm's platform neither).
    if (p.ppRequired) throw new TpmError(TPM_RC.PP, n);
    if (p.hash.length !== 0) {
      let actual: Uint8Array;
      if (p.hashKind === 'cpHash') actual = cpHash(session.authHash);
      else if (p.hashKind === 'template') actual = templateHash(session.authHash, def.code, cpParams);
      else actual = hash(session.authHash, ...handles.map((h) => this.tpm.entityName(h)));
      if (!constantTimeEqual(actual, p.hash)) throw new TpmError(TPM_RC.POLICY_FAIL, n);
    }
    // PolicyNvWritten: the authorized entity must be an NV index whose TPMA_NV_WRITTEN is as asserted.
    if (p.nvWritten !== null) {
      const index = entity >>> 24 === TPM_HT.NV_INDEX ? nvFind(this.tpm, entity) : undefined;
      if (!index || ((nvPublic(this.tpm, index).attributes & TPMA_NV.WRITTEN) !== 0) !== p.nvWritten) {
        throw new TpmError(TPM_RC.POLICY_FAIL, n);
      }
    }
  }

  /**
   * Part 1 §19.6.5: HMAC(key, cpHash || nonceCaller || nonceTPM || [nonceDecrypt] ||
   * [nonceEncrypt] || attributes). The extra nonces (those of separate decrypt and encrypt
   * sessions) go only into the first session's HMAC when it authorizes a handle. An empty key
   * with an empty HMAC is accepted as the empty HMAC it computes to.
   */
  private verifyHmac(
    use: SessionUse,
    i: number,
    all: SessionUse[],
    cpHash: (alg: number) => Uint8Array,
    key: Uint8Array,
  ): boolean {
    const session = use.session!;
    if (key.length === 0 && use.hmac.length === 0) return true;
    const extra: Uint8Array[] = [];
    if (i === 0 && use.associated !== undefined) {
      const d = all.findIndex((s) => s.attributes & TPMA_SESSION.decrypt);
      const e = all.findIndex((s) => s.attributes & TPMA_SESSION.encrypt);
      if (d > 0) extra.push(all[d]!.session!.nonceTPM);
      if (e > 0 && e !== d) extra.push(all[e]!.session!.nonceTPM);
    }
    const expected = hmac(session.authHash, key, cpHash(session.authHash), use.nonceCaller, session.nonceTPM, ...extra, BYTES[use.attributes]!);
    return constantTimeEqual(expected, use.hmac);
  }

  /** The authValue an encrypting or HMAC session adds to its session key now (Part 1 §19.6.8, §21.1). */
  private extraKey(use: SessionUse): Uint8Array {
    if (use.associated === undefined) return EMPTY;
    return trimTrailingZeros(this.tpm.entityAuth(use.associated) ?? EMPTY);
  }

  /**
   * Part 1 §21: decrypts the first parameter's buffer in a copy of the parameter area, after
   * every HMAC has been checked over the bytes as sent. The key includes the authValue of the
   * entity the session authorizes, bound or not (ms-tpm ParseSessionBuffer).
   * RCs: TPM_RC_SIZE+Sn (the size field claims more bytes than the command holds).
   */
  private decryptFirstParameter(use: SessionUse, i: number, params: Uint8Array): Reader {
    const session = use.session!;
    if (params.length < 2) throw new TpmError(TPM_RC.SIZE, { session: i + 1 });
    const size = (params[0]! << 8) | params[1]!;
    if (size > params.length - 2) throw new TpmError(TPM_RC.SIZE, { session: i + 1 });
    const key = concat(session.sessionKey, this.extraKey(use));
    const clear = decryptParameter(session.symmetric, session.authHash, key, use.nonceCaller, session.nonceTPM, params.subarray(2, 2 + size));
    params.set(clear, 2);
    const r = new Reader(params);
    r.profile = this.tpm.rules;
    return r;
  }

  /**
   * Part 1 §19.6.6: HMAC(key, rpHash || nonceTPM || nonceCaller || attributes) for an HMAC or
   * policy session, the key with the authValue as the command left it (HierarchyChangeAuth and
   * the like answer under the new value). Empty for a password, for PolicyPassword, and where an
   * empty key met an empty command HMAC.
   */
  private responseHmac(use: SessionUse, rpHash: (alg: number) => Uint8Array): Uint8Array {
    const session = use.session;
    if (!session || use.passwordOnly) return EMPTY;
    const key = use.includeAuth ? concat(session.sessionKey, this.extraKey(use)) : session.sessionKey;
    if (key.length === 0 && use.hmac.length === 0) return EMPTY;
    return hmac(session.authHash, key, rpHash(session.authHash), session.nonceTPM, use.nonceCaller, BYTES[use.attributes]!);
  }

  private buildResponse(
    tag: number,
    def: CommandDef,
    out: Record<string, unknown>,
    sessions: SessionUse[],
    cpHash: (alg: number) => Uint8Array,
  ): Uint8Array {
    const w = new Writer(256);
    w.u16(tag);
    const sizeAt = w.length;
    w.u32(0);
    w.u32(TPM_RC.SUCCESS);
    if (def.responseHandle) w.u32(out[def.responseHandle] as number);
    const closeParams = tag === TPM_ST.SESSIONS ? w.sizePrefix(4) : undefined;
    const paramsAt = w.length;
    for (const [name, codec] of def.response) {
      if (name === def.responseHandle) continue;
      writeField(codec, w, out[name], out);
    }
    closeParams?.();
    // Part 1 §19.6.6 and §21: every session gets a fresh nonceTPM first; the encrypt session
    // encrypts the first response parameter with it; the HMACs then cover the ciphertext.
    for (const use of sessions) if (use.session) use.session.nonceTPM = this.tpm.random(use.session.nonceTPM.length);
    const encryptor = sessions.find((s) => s.attributes & TPMA_SESSION.encrypt);
    if (encryptor) {
      const session = encryptor.session!;
      const size = (w.peek(paramsAt, paramsAt + 2)[0]! << 8) | w.peek(paramsAt, paramsAt + 2)[1]!;
      const data = w.peek(paramsAt + 2, paramsAt + 2 + size);
      const key = concat(session.sessionKey, this.extraKey(encryptor));
      data.set(encryptParameter(session.symmetric, session.authHash, key, session.nonceTPM, encryptor.nonceCaller, data));
    }
    // rpHash (Part 1 §18.8), once per hash algorithm and only when audit or an HMAC needs it;
    // the parameters are a view of the response buffer, valid until the session area follows them.
    const paramsEnd = w.length;
    const rpHash = perHashAlg((alg) => hash(alg, RC_SUCCESS_BYTES, codeBytes(def.code), w.peek(paramsAt, paramsEnd)));
    auditCommand(this.tpm, def.code, !def.noSessions, sessions, cpHash, rpHash);
    // Every response HMAC before the session area is written after the parameters.
    const macs = sessions.map((use) => this.responseHmac(use, rpHash));
    sessions.forEach((use, i) => {
      const session = use.session;
      if (!session) {
        // Password sessions answer with an empty nonce and HMAC and continueSession set (Part 1 §19.6.6).
        w.u16(0);
        w.u8(use.attributes | TPMA_SESSION.continueSession);
        w.u16(0);
        return;
      }
      const mac = macs[i]!;
      w.u16(session.nonceTPM.length);
      w.bytes(session.nonceTPM);
      w.u8(use.attributes);
      w.u16(mac.length);
      w.bytes(mac);
      if (!(use.attributes & TPMA_SESSION.continueSession)) this.tpm.sessions.remove(session.handle);
      // A policy session that goes on starts a new policy (ms-tpm UpdateInternalSession).
      else if (session.kind === 'policy') resetPolicy(session, this.tpm.timeInfo().time);
    });
    w.setU32(sizeAt, w.length);
    return w.finishShortLived();
  }
}

/**
 * PolicyTemplate's check (ms-tpm CompareTemplateHash): the digest of inPublic's contents, the
 * second parameter of CreatePrimary, Create and CreateLoaded; any other command fails it.
 */
function templateHash(hashAlg: number, code: number, cpParams: Uint8Array): Uint8Array {
  if (code !== TPM_CC.CreatePrimary && code !== TPM_CC.Create && code !== TPM_CC.CreateLoaded) return new Uint8Array(0);
  if (cpParams.length < 2) return new Uint8Array(0);
  const skip = 2 + ((cpParams[0]! << 8) | cpParams[1]!);
  if (cpParams.length < skip + 2) return new Uint8Array(0);
  const size = (cpParams[skip]! << 8) | cpParams[skip + 1]!;
  return hash(hashAlg, cpParams.subarray(skip + 2, skip + 2 + size));
}

/** Whether a command's first response parameter is a TPM2B (response parameter encryption). */
function encryptable(def: CommandDef): boolean {
  const first = def.response.find(([name]) => name !== def.responseHandle);
  return first !== undefined && 'sizedBuffer' in first[1];
}

/** One entry of a command's authorization area and what checking it established. */
interface SessionUse {
  handle: number;
  attributes: number;
  nonceCaller: Uint8Array;
  hmac: Uint8Array;
  /** The HMAC or policy session; undefined for TPM_RS_PW. */
  session?: Session;
  /** The handle this session authorizes (ms-tpm s_associatedHandles), if any. */
  associated?: number;
  /** Whether the associated entity's authValue is part of the HMAC key (set by checkSession). */
  includeAuth: boolean;
  /** A policy session with PolicyPassword: the response HMAC is empty. */
  passwordOnly?: boolean;
}

const EMPTY = new Uint8Array(0);

/** Each byte value as a one-byte array, for the session attributes hashed into HMACs (never written to). */
const BYTES: readonly Uint8Array[] = Array.from({ length: 256 }, (_, i) => new Uint8Array([i]));

const u32 = (v: number): Uint8Array => new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);

const RC_SUCCESS_BYTES = u32(TPM_RC.SUCCESS);

/** Command codes as hashed into cpHash and rpHash, made once per code (never written to). */
const CODE_BYTES = new Map<number, Uint8Array>();

function codeBytes(code: number): Uint8Array {
  let bytes = CODE_BYTES.get(code);
  if (bytes === undefined) {
    bytes = u32(code);
    CODE_BYTES.set(code, bytes);
  }
  return bytes;
}

/** `digest` computed once per hash algorithm (a command's sessions seldom use more than one). */
function perHashAlg(digest: (alg: number) => Uint8Array): (alg: number) => Uint8Array {
  // Most commands (no session, no audit) never ask: the lists are made on first use.
  let algs: number[] | undefined;
  let digests: Uint8Array[] | undefined;
  return (alg) => {
    const i = algs ? algs.indexOf(alg) : -1;
    if (i >= 0) return digests![i]!;
    const d = digest(alg);
    (algs ??= []).push(alg);
    (digests ??= []).push(d);
    return d;
  };
}

/** a || b; b alone or a alone when the other is empty (callers never write to the result). */
function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  return concatBytes(a, b);
}

const ATTRIBUTES: Codec<number> = { read: (r) => r.u8(), write: (w, v) => w.u8(v) };

/**
 * The positions readAt reports in response codes, made once: it runs for every handle, parameter
 * and session field of every command. (Commands have at most 3 handles and 3 sessions.)
 */
const positions = <K extends string>(key: K, n: number) => Array.from({ length: n }, (_, i) => Object.freeze({ [key]: i + 1 }) as { readonly [P in K]: number });
const HANDLE_AT = positions('handle', 8);
const PARAM_AT = positions('param', 16);
const SESSION_AT = positions('session', 8);
/** The parent a codec without dependent fields is read with. */
const NO_PARENT: Record<string, unknown> = Object.freeze({});

function readAt<T>(
  codec: Codec<T> | FieldCodec<T>,
  r: Reader,
  position: { handle: number } | { param: number } | { session: number },
  parent: Record<string, unknown> = NO_PARENT,
): T {
  try {
    return 'dependent' in codec ? codec.read(r, parent) : codec.read(r);
  } catch (e) {
    if (e instanceof TpmError) throw new TpmError(e.rc, position);
    throw e;
  }
}

function writeField(codec: Codec<unknown> | FieldCodec<unknown>, w: Writer, v: unknown, parent: Record<string, unknown>): void {
  if ('dependent' in codec) codec.write(w, v, parent);
  else codec.write(w, v);
}


export { formatRc };
