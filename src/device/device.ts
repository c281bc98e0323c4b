/**
 * One virtual TPM bound to one state directory (design.md "device/"). It owns the engine and the
 * storage, runs TPM and control operations strictly one at a time, persists changed permanent
 * state before a response is released, and holds the control-channel state swtpm keeps beside
 * libtpms: power (stopped/running), locality, tpmEstablished, buffer size and the last command
 * ordinal for the automatic TPM2_Shutdown (swtpm-compat §1.7, §2).
 */
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import type { Storage } from '../storage/storage.js';
import { LockError } from '../storage/lock.js';
import { exportStateBlob, importStateBlob, type StateKeys } from '../storage/state-blob.js';
import { errorResponse } from '../tpm/response.js';
import { TPM_CC, TPM_RC, TPM_ST, TPM_SU } from '../tpm/constants.js';
import type { TpmProfile } from '../tpm/profile.js';

/** The part of tpm/engine.ts's Engine the device drives. */
export interface TpmEngine {
  init(): void;
  readonly started: boolean;
  execute(command: Uint8Array, locality: number): Uint8Array;
  takePermanentChanges(): Uint8Array | null;
  permanentBlob(): Uint8Array;
  bufferSize: number;
  /** _TPM_Hash_Start / _TPM_Hash_Data / _TPM_Hash_End (H-CRTM, DRTM). */
  hashStart(): void;
  hashData(data: Uint8Array): void;
  hashEnd(): void;
  readonly tpmEstablished: boolean;
  resetTpmEstablished(): void;
  /** The volatile state; restoreVolatile after init() resumes from it (throws, changing nothing, if bad). */
  volatileBlob(): Uint8Array;
  restoreVolatile(blob: Uint8Array): void;
  /** The profile fixed when the TPM was manufactured (GET_INFO's ActiveProfile); absent in fakes. */
  readonly profile?: TpmProfile;
}

/** How the device gets engines: the real one in production (engine-factory.ts), fakes in tests. */
export interface EngineFactory {
  manufacture(): TpmEngine;
  restore(permanent: Uint8Array): TpmEngine;
  /** The largest command/response size the engine supports. */
  readonly maxBufferSize: number;
}

export interface DeviceOptions {
  storage: Storage;
  engines: EngineFactory;
  log?: Logger;
  /** `--flags disable-auto-shutdown` turns the automatic TPM2_Shutdown off. */
  autoShutdown?: boolean;
  /** `--key` and `--migration-key`: the keys state blobs are encrypted with. */
  keys?: StateKeys;
  /** How long the TPM stays idle after a permanent-state change before the storage checkpoints. */
  checkpointIdleMs?: number;
}

/** The default of DeviceOptions.checkpointIdleMs. */
export const CHECKPOINT_IDLE_MS = 1000;

/**
 * libtpms' lower bound for SET_BUFFERSIZE, sizeof(TPMS_CONTEXT) + 128. 2808 is what Debian's
 * swtpm 0.7.1 / libtpms 0.9 reports (newer libtpms: 2832).
 */
export const MIN_BUFFER_SIZE = 2808;

const HEADER_SIZE = 10;
const HEADER_CC_OFFSET = 6;

/** swtpm's answer to any TPM command while the TPM is not running (swtpm-compat §7.1). */
export const NOT_RUNNING_RESPONSE: Uint8Array = errorResponse(TPM_RC.FAILURE);

/** `resumed`: the volatile state put the TPM back where it was, already started (no Startup is due). */
export type InitResult = { ok: true; resumed: boolean } | { ok: false; error: Error };

/** The state blob types of GET/SET_STATEBLOB (swtpm-compat §1.3). */
export type BlobType = 'permanent' | 'volatile' | 'savestate';

/** GET_STATEBLOB: the blob in swtpm's envelope, or `absent` (a TPM 2 has no savestate). */
export type GetBlobResult = { ok: true; blob: Uint8Array; encrypted: boolean } | { ok: false; absent: true };

/** LOCK_STORAGE and the lock before each TPM command: 10 ms between tries (swtpm-compat §5.5). */
export const LOCK_RETRY_INTERVAL_MS = 10;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Device {
  /** SET_LOCALITY: used by every later data-channel command; never reset by the device. */
  locality = 0;
  private engine: TpmEngine | null = null;
  /** SET_STATEBLOB blobs (engine state, envelope removed) waiting for the next INIT. */
  private readonly cachedBlobs = new Map<'permanent' | 'volatile', Uint8Array>();
  private lastCommand = 0;
  private bufferSizeSetting: number;
  private queue: Promise<unknown> = Promise.resolve();
  /** Operations queued and not yet settled; 0 lets executeTpmNow run at once. */
  private pending = 0;
  private readonly storage: Storage;
  private readonly engines: EngineFactory;
  private readonly log: Logger;
  private readonly autoShutdownEnabled: boolean;
  private readonly keys: StateKeys;
  private readonly checkpointIdleMs: number;
  /** When the permanent state last changed (performance.now()), and the timer watching for idleness. */
  private lastStoreAt = 0;
  /** A change was stored since the last checkpoint. */
  private uncheckpointed = false;
  private checkpointTimer: NodeJS.Timeout | null = null;

  constructor(options: DeviceOptions) {
    this.storage = options.storage;
    this.engines = options.engines;
    this.log = options.log ?? silentLogger;
    this.autoShutdownEnabled = options.autoShutdown ?? true;
    this.keys = options.keys ?? {};
    this.checkpointIdleMs = options.checkpointIdleMs ?? CHECKPOINT_IDLE_MS;
    this.bufferSizeSetting = options.engines.maxBufferSize;
  }

  /** Before the process gives up root for `uid` (cuse --runas): the state files become that user's. */
  giveStateTo(uid: number, gid: number): void {
    this.storage.chownFiles?.(uid, gid);
  }

  /** Which keys were given: GET_CONFIG's FILE_KEY and MIGRATION_KEY flags. */
  get hasKeys(): { file: boolean; migration: boolean } {
    return { file: this.keys.file !== undefined, migration: this.keys.migration !== undefined };
  }

  /** True between a successful INIT and the next STOP/SHUTDOWN/INIT. */
  get running(): boolean {
    return this.engine !== null;
  }

  /** The running TPM's profile; null while stopped (libtpms has none before TPMLIB_MainInit). */
  get activeProfile(): TpmProfile | null {
    return this.engine?.profile ?? null;
  }

  /** The platform's tpmEstablished bit, kept by the engine with its volatile state; false while stopped. */
  get tpmEstablished(): boolean {
    return this.engine?.tpmEstablished ?? false;
  }

  /** The ordinal of the last client command of at least 10 bytes (swtpm-compat §2). */
  get lastCommandCode(): number {
    return this.lastCommand;
  }

  /** Runs `fn` after everything queued before it; the device's one-at-a-time rule. */
  exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    this.pending++;
    const run = this.queue.then(fn);
    const settled = () => {
      this.pending--;
    };
    this.queue = run.then(settled, settled);
    return run;
  }

  /**
   * One TPM command from a client. Resolves with the full response once any permanent-state
   * change it caused is on disk. Never rejects.
   */
  executeTpm(command: Uint8Array, locality: number = this.locality): Promise<Uint8Array> {
    return this.exclusive(() => this.runTpm(command, locality));
  }

  /**
   * The hot path: when nothing else is queued, the command runs now and its response (state
   * already persisted) comes back synchronously, with no promise in between. Returns null while
   * other operations are queued; the caller then uses executeTpm.
   */
  executeTpmNow(command: Uint8Array, locality: number = this.locality): Uint8Array | null {
    return this.pending === 0 ? this.runTpm(command, locality) : null;
  }

  private runTpm(command: Uint8Array, locality: number): Uint8Array {
    if (!this.engine) return NOT_RUNNING_RESPONSE.slice();
    try {
      // Released after a SAVESTATE fetch (outgoing migration): taken again before the TPM runs.
      this.storage.lock();
    } catch (e) {
      this.log.error(`cannot lock the state directory: ${(e as Error).message}`);
      return errorResponse(TPM_RC.FAILURE);
    }
    if (command.length >= HEADER_SIZE) this.lastCommand = ordinalOf(command);
    return this.runEngine(this.engine, command, locality);
  }

  /**
   * CMD_INIT / PTM_INIT: auto-shutdown a running TPM, then power on from the stored state (or
   * manufacture a new TPM and save it at once), resuming from the volatile state if there is
   * one (a SET_STATEBLOB blob wins over the file). `deleteVolatile` (swtpm's DELETE_VOLATILE
   * init flag) removes the volatile file once loaded. Nothing on disk changes unless everything loaded. On
   * failure the TPM stays stopped and the error is logged, unless `quiet` (the caller reports it
   * itself, as the CLI does at launch).
   */
  init(options: { deleteVolatile?: boolean; quiet?: boolean } = {}): Promise<InitResult> {
    return this.exclusive((): InitResult => {
      this.powerOff();
      try {
        this.storage.lock();
        this.storage.checkpoint();
        const cachedPermanent = this.cachedBlobs.get('permanent');
        const stored = cachedPermanent ?? this.storage.loadPermanent();
        let engine: TpmEngine;
        let manufactured = false;
        if (stored) {
          engine = this.engines.restore(stored);
        } else {
          engine = this.engines.manufacture();
          manufactured = true;
        }
        engine.bufferSize = this.bufferSizeSetting;
        engine.init();
        // A SET_STATEBLOB volatile blob wins over the file (swtpm-compat §1.7 INIT).
        const volatile = this.cachedBlobs.get('volatile') ?? this.storage.loadVolatile();
        if (volatile) engine.restoreVolatile(volatile);
        // Everything loaded: only now does anything on disk change.
        if (manufactured) {
          this.storePermanent(engine.takePermanentChanges() ?? engine.permanentBlob());
          this.log.info(`manufactured a new TPM`);
        } else if (cachedPermanent) {
          this.storePermanent(cachedPermanent);
        }
        if (options.deleteVolatile) this.storage.deleteVolatile();
        this.cachedBlobs.clear();
        this.engine = engine;
        return { ok: true, resumed: engine.started };
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        if (!options.quiet) this.log.error(`could not initialize the TPM: ${error.message}`);
        return { ok: false, error };
      }
    });
  }

  /** HASH_START / HASH_DATA / HASH_END on the running engine; a DRTM may change permanent state. */
  hash(step: 'start' | 'end'): Promise<void>;
  hash(step: 'data', data: Uint8Array): Promise<void>;
  hash(step: 'start' | 'data' | 'end', data?: Uint8Array): Promise<void> {
    return this.exclusive(() => {
      const engine = this.requireEngine();
      if (step === 'start') engine.hashStart();
      else if (step === 'data') engine.hashData(data!);
      else engine.hashEnd();
      const changed = engine.takePermanentChanges();
      if (changed) this.storePermanent(changed);
    });
  }

  /** RESET_TPMESTABLISHED (the control handler checks the locality). */
  resetTpmEstablished(): Promise<void> {
    return this.exclusive(() => this.requireEngine().resetTpmEstablished());
  }

  /** STORE_VOLATILE: writes `tpm2-00.volatilestate` atomically. */
  storeVolatile(): Promise<void> {
    return this.exclusive(() => this.storage.storeVolatile(this.requireEngine().volatileBlob()));
  }

  /**
   * GET_STATEBLOB: PERMANENT from the file; VOLATILE stored, read back and the file deleted (as
   * swtpm does); SAVESTATE never exists for a TPM 2, and fetching it releases the storage lock
   * (outgoing migration: the destination takes over). Under a file key the blob stays encrypted
   * with it unless `decrypted` is asked for; a migration key always encrypts it.
   */
  getStateBlob(type: BlobType, decrypted = false): Promise<GetBlobResult> {
    return this.exclusive((): GetBlobResult => {
      const engine = this.requireEngine();
      if (type === 'savestate') {
        // The destination takes over the directory: it finds the state in the permall file.
        this.checkpoint();
        this.storage.unlock();
        return { ok: false, absent: true };
      }
      let data: Uint8Array | null;
      if (type === 'permanent') {
        this.storage.checkpoint();
        data = this.storage.loadPermanent();
      } else {
        try {
          this.storage.storeVolatile(engine.volatileBlob());
          data = this.storage.loadVolatile();
        } finally {
          this.storage.deleteVolatile();
        }
      }
      return data ? { ok: true, ...exportStateBlob(data, this.keys, decrypted) } : { ok: false, absent: true };
    });
  }

  /**
   * SET_STATEBLOB (TPM stopped; the caller checks): validates the blob and caches it for the next
   * INIT; an empty blob clears the cache of that type. Throws StateBlobError for a blob that is
   * encrypted or damaged, and the engine's error for state it cannot load.
   */
  setStateBlob(type: BlobType, blob: Uint8Array, encrypted: boolean): Promise<void> {
    return this.exclusive(() => {
      // The TPM is stopped, so this folds only what a failed checkpoint at STOP left behind.
      this.storage.checkpoint();
      if (type === 'savestate') {
        if (blob.length !== 0) throw new BlobTypeError('a TPM 2 has no savestate');
        return;
      }
      if (blob.length === 0) {
        this.cachedBlobs.delete(type);
        return;
      }
      const data = importStateBlob(blob, encrypted, this.keys);
      if (type === 'permanent') {
        this.engines.restore(data);
      } else {
        // The volatile state is checked against the permanent state it will join.
        const permanent = this.cachedBlobs.get('permanent') ?? this.storage.loadPermanent();
        if (permanent) {
          const engine = this.engines.restore(permanent);
          engine.init();
          engine.restoreVolatile(data);
        }
      }
      this.cachedBlobs.set(type, data);
    });
  }

  /** Takes the storage lock: one try plus `retries` more, 10 ms apart. False if it stays held elsewhere. */
  lockStorage(retries: number): Promise<boolean> {
    return this.exclusive(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          this.storage.lock();
          return true;
        } catch (e) {
          if (!(e instanceof LockError)) throw e;
          if (attempt >= retries) {
            this.log.warn(`could not lock the state directory after ${retries} retries: ${e.message}`);
            return false;
          }
        }
        await sleep(LOCK_RETRY_INTERVAL_MS);
      }
    });
  }

  private requireEngine(): TpmEngine {
    if (!this.engine) throw new Error('the TPM is not running');
    return this.engine;
  }

  /** `--flags startup-clear|startup-state`: TPM2_Startup at launch; counts as the last command. */
  startup(type: 'clear' | 'state'): Promise<Uint8Array> {
    const su = type === 'clear' ? TPM_SU.CLEAR : TPM_SU.STATE;
    return this.executeTpm(simpleCommand(TPM_CC.Startup, su));
  }

  /** CMD_STOP (and the first half of CMD_SHUTDOWN): auto-shutdown, then the TPM is stopped. */
  stop(): Promise<void> {
    return this.exclusive(() => {
      this.powerOff();
      this.checkpoint();
    });
  }

  /** Process exit: stop the TPM, fold the journal into the permall and release the state directory. */
  close(): Promise<void> {
    return this.exclusive(() => {
      this.powerOff();
      this.checkpoint();
      this.storage.unlock();
    });
  }

  /** SET_BUFFERSIZE: 0 queries; otherwise clamps to [min, max] (the caller checks the gate). */
  bufferSize(requested: number): { size: number; min: number; max: number } {
    const max = this.engines.maxBufferSize;
    if (requested !== 0) this.bufferSizeSetting = Math.min(Math.max(requested, MIN_BUFFER_SIZE), max);
    return { size: this.bufferSizeSetting, min: MIN_BUFFER_SIZE, max };
  }

  private powerOff(): void {
    const engine = this.engine;
    if (!engine) return;
    if (this.autoShutdownEnabled && this.lastCommand !== TPM_CC.Shutdown) this.autoShutdown(engine);
    this.engine = null;
  }

  /** swtpm-compat §2: TPM2_Shutdown(SU_STATE), else SU_CLEAR; nothing if Startup never ran. */
  private autoShutdown(engine: TpmEngine): void {
    for (const su of [TPM_SU.STATE, TPM_SU.CLEAR]) {
      const rc = responseCode(this.runEngine(engine, simpleCommand(TPM_CC.Shutdown, su), this.locality));
      if (rc === TPM_RC.SUCCESS) {
        this.lastCommand = TPM_CC.Shutdown;
        return;
      }
      if (rc === TPM_RC.INITIALIZE) return;
    }
  }

  /** Persists a change (durable on return) and watches for the idle time after which it is checkpointed. */
  private storePermanent(blob: Uint8Array): void {
    this.storage.storePermanent(blob);
    this.lastStoreAt = performance.now();
    this.uncheckpointed = true;
    if (this.checkpointTimer) return;
    this.armCheckpoint(this.checkpointIdleMs);
  }

  /** One timer for a whole burst of changes: when it fires early it waits for the rest of the idle time. */
  private armCheckpoint(ms: number): void {
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = null;
      const wait = this.lastStoreAt + this.checkpointIdleMs - performance.now();
      if (wait > 1) this.armCheckpoint(wait);
      // Not after a stop or close, which checkpointed (and may have released the directory).
      else void this.exclusive(() => this.uncheckpointed && this.checkpoint());
    }, ms);
    // A pending checkpoint never keeps the process alive: exit paths checkpoint themselves.
    this.checkpointTimer.unref();
  }

  /** Folds the journal into the permall file; a failure is logged (every change is durable already). */
  private checkpoint(): void {
    if (this.checkpointTimer) {
      clearTimeout(this.checkpointTimer);
      this.checkpointTimer = null;
    }
    this.uncheckpointed = false;
    try {
      this.storage.checkpoint();
    } catch (e) {
      this.log.error(`could not checkpoint the TPM state: ${(e as Error).message}`);
    }
  }

  /** Executes and persists; a failed write turns the response into TPM_RC_FAILURE. */
  private runEngine(engine: TpmEngine, command: Uint8Array, locality: number): Uint8Array {
    // The engine takes plain Uint8Arrays (design.md). A front end's Buffer would leak into the
    // engine's state through views of the command, and a Buffer serialises differently (toJSON).
    if (Object.getPrototypeOf(command) !== Uint8Array.prototype) command = new Uint8Array(command);
    const response = engine.execute(command, locality);
    const changed = engine.takePermanentChanges();
    if (changed) {
      try {
        this.storePermanent(changed);
      } catch (e) {
        this.log.error(`could not save the TPM state after command 0x${ordinalOf(command).toString(16)}: ${(e as Error).message}`);
        return errorResponse(TPM_RC.FAILURE);
      }
    }
    return response;
  }
}

/** A SAVESTATE blob for a TPM 2 (swtpm answers TPM_BAD_TYPE). */
export class BlobTypeError extends Error {
  readonly code = 'VTPMD_BLOB_TYPE';
  override name = 'BlobTypeError';
}

function ordinalOf(command: Uint8Array): number {
  if (command.length < HEADER_SIZE) return 0;
  return new DataView(command.buffer, command.byteOffset, command.byteLength).getUint32(HEADER_CC_OFFSET);
}

function responseCode(response: Uint8Array): number {
  return ordinalOf(response);
}

/** A TPM_ST_NO_SESSIONS command with one UINT16 parameter (Startup, Shutdown). */
function simpleCommand(cc: number, param: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + 2);
  const v = new DataView(out.buffer);
  v.setUint16(0, TPM_ST.NO_SESSIONS);
  v.setUint32(2, out.length);
  v.setUint32(6, cc);
  v.setUint16(10, param);
  return out;
}

