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
import { errorResponse } from '../tpm/response.js';
import { TPM_CC, TPM_RC, TPM_ST, TPM_SU } from '../tpm/constants.js';

/** The part of tpm/engine.ts's Engine the device drives. */
export interface TpmEngine {
  init(): void;
  readonly started: boolean;
  execute(command: Uint8Array, locality: number): Uint8Array;
  takePermanentChanges(): Uint8Array | null;
  permanentBlob(): Uint8Array;
  bufferSize: number;
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
}

/**
 * libtpms' lower bound for SET_BUFFERSIZE, sizeof(TPMS_CONTEXT) + 128. 2808 is what Debian's
 * swtpm 0.7.1 / libtpms 0.9 reports (newer libtpms: 2832).
 */
export const MIN_BUFFER_SIZE = 2808;

const HEADER_SIZE = 10;
const HEADER_CC_OFFSET = 6;

/** swtpm's answer to any TPM command while the TPM is not running (swtpm-compat §7.1). */
export const NOT_RUNNING_RESPONSE: Uint8Array = errorResponse(TPM_RC.FAILURE);

export type InitResult = { ok: true } | { ok: false; error: Error };

export class Device {
  /** SET_LOCALITY: used by every later data-channel command; never reset by the device. */
  locality = 0;
  /** The platform's tpmEstablished bit (swtpm-compat §1.7); no H-CRTM sequence sets it yet. */
  tpmEstablished = false;

  private engine: TpmEngine | null = null;
  private lastCommand = 0;
  private bufferSizeSetting: number;
  private queue: Promise<unknown> = Promise.resolve();
  /** Operations queued and not yet settled; 0 lets executeTpmNow run at once. */
  private pending = 0;
  private readonly storage: Storage;
  private readonly engines: EngineFactory;
  private readonly log: Logger;
  private readonly autoShutdownEnabled: boolean;

  constructor(options: DeviceOptions) {
    this.storage = options.storage;
    this.engines = options.engines;
    this.log = options.log ?? silentLogger;
    this.autoShutdownEnabled = options.autoShutdown ?? true;
    this.bufferSizeSetting = options.engines.maxBufferSize;
  }

  /** True between a successful INIT and the next STOP/SHUTDOWN/INIT. */
  get running(): boolean {
    return this.engine !== null;
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
    if (command.length >= HEADER_SIZE) this.lastCommand = ordinalOf(command);
    return this.runEngine(this.engine, command, locality);
  }

  /**
   * CMD_INIT / PTM_INIT: auto-shutdown a running TPM, then power on from the stored state (or
   * manufacture a new TPM and save it at once). On failure the TPM stays stopped and the error
   * is logged, unless `quiet` (the caller reports it itself, as the CLI does at launch).
   */
  init(flags = 0, options: { quiet?: boolean } = {}): Promise<InitResult> {
    return this.exclusive((): InitResult => {
      this.powerOff();
      try {
        this.storage.lock();
        const stored = this.storage.loadPermanent();
        let engine: TpmEngine;
        if (stored) {
          engine = this.engines.restore(stored);
        } else {
          engine = this.engines.manufacture();
          this.storage.storePermanent(engine.takePermanentChanges() ?? engine.permanentBlob());
          this.log.info(`manufactured a new TPM`);
        }
        engine.bufferSize = this.bufferSizeSetting;
        engine.init();
        // flags bit 0 (DELETE_VOLATILE) has nothing to delete until volatile state exists.
        void flags;
        this.engine = engine;
        return { ok: true };
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        if (!options.quiet) this.log.error(`could not initialize the TPM: ${error.message}`);
        return { ok: false, error };
      }
    });
  }

  /** `--flags startup-clear|startup-state`: TPM2_Startup at launch; counts as the last command. */
  startup(type: 'clear' | 'state'): Promise<Uint8Array> {
    const su = type === 'clear' ? TPM_SU.CLEAR : TPM_SU.STATE;
    return this.executeTpm(simpleCommand(TPM_CC.Startup, su));
  }

  /** CMD_STOP (and the first half of CMD_SHUTDOWN): auto-shutdown, then the TPM is stopped. */
  stop(): Promise<void> {
    return this.exclusive(() => this.powerOff());
  }

  /** Process exit: stop the TPM and release the state directory. */
  close(): Promise<void> {
    return this.exclusive(() => {
      this.powerOff();
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

  /** Executes and persists; a failed write turns the response into TPM_RC_FAILURE. */
  private runEngine(engine: TpmEngine, command: Uint8Array, locality: number): Uint8Array {
    const response = engine.execute(command, locality);
    const changed = engine.takePermanentChanges();
    if (changed) {
      try {
        this.storage.storePermanent(changed);
      } catch (e) {
        this.log.error(`could not save the TPM state after command 0x${ordinalOf(command).toString(16)}: ${(e as Error).message}`);
        return errorResponse(TPM_RC.FAILURE);
      }
    }
    return response;
  }
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

