/**
 * What every vtpmd daemon front end (socket, cuse) sets up the same way: the logger from
 * swtpm's --log options, the state directory and the Device on top of it.
 */
import { createLogger, openLogFile, silentLogger, type Logger, type LogLevel } from '../common/log.js';
import { Device } from '../device/device.js';
import { realEngines } from '../device/engine-factory.js';
import type { StateKeys } from '../storage/state-blob.js';
import { LinearFileStorage } from '../storage/linear-file.js';
import { DirStorage } from '../storage/storage.js';
import { defaultEnv } from '../tpm/engine.js';
import type { TpmProfile } from '../tpm/profile.js';
import { UsageError } from './key-value.js';
import { writePidFile } from './process-files.js';
import type { LogConfig } from './socket-config.js';

/** An error the CLI reports as one line and exit code 1. */
export class StartupError extends Error {
  readonly code = 'VTPMD_STARTUP';
}

function levelName(n: number): LogLevel {
  return n <= 0 ? 'error' : n === 1 ? 'warn' : n === 2 ? 'info' : 'debug';
}

export function openLogger(c: LogConfig): Logger {
  const level = levelName(c.level);
  const prefix = c.prefix !== undefined ? `${c.prefix} ` : '';
  if (c.file === '-') return silentLogger;
  if (c.file !== undefined) {
    try {
      return createLogger({ fd: openLogFile(c.file, c.truncate), level, prefix, ownsFd: true });
    } catch (e) {
      throw new UsageError(`--log: cannot open ${c.file}: ${(e as Error).message}`);
    }
  }
  return createLogger({ fd: c.fd ?? 2, level, prefix });
}

/** True when `--log` writes to stderr, where the CLI also prints start-up errors. */
export function logsToStderr(c: LogConfig): boolean {
  return c.file === undefined && (c.fd === undefined || c.fd === 2);
}

/** The state options both daemons take from --tpmstate and --flags. */
export interface DeviceConfig {
  log: LogConfig;
  stateDir: string;
  /** backend-uri=file://: the whole state in this file (stateDir is its directory). */
  stateFile?: string;
  stateMode?: number;
  lock: boolean;
  autoShutdown: boolean;
  keys: StateKeys;
  /** --profile: the profile a TPM manufactured now gets. */
  profile?: TpmProfile;
}

/**
 * Opens the log, prepares the state directory (a problem there is a StartupError) and builds
 * the Device with the real engine; the TPM stays off until the caller INITs it.
 */
export function openDevice(config: DeviceConfig): { log: Logger; device: Device } {
  const log = openLogger(config.log);
  const mode = config.stateMode !== undefined ? { mode: config.stateMode, explicitMode: true } : {};
  const fileKey = config.keys.file ? { fileKey: config.keys.file } : {};
  const storage =
    config.stateFile !== undefined
      ? new LinearFileStorage({ file: config.stateFile, ...mode, ...fileKey })
      : new DirStorage({ dir: config.stateDir, ...mode, lock: config.lock, ...fileKey });
  try {
    storage.prepare();
  } catch (e) {
    log.close();
    throw new StartupError((e as Error).message);
  }
  const device = new Device({
    storage,
    engines: realEngines({ ...defaultEnv, log: (m) => log.error(m) }, config.profile),
    log,
    autoShutdown: config.autoShutdown,
    keys: config.keys,
  });
  return { log, device };
}

/**
 * `--flags not-need-init` and `startup-clear|startup-state`: power the TPM on at launch and send
 * TPM2_Startup. A failure is a StartupError; `quiet` leaves the report to the CLI (which prints
 * it on stderr) instead of also logging it.
 */
export async function powerOnAtLaunch(
  device: Device,
  config: { notNeedInit: boolean; startup: 'clear' | 'state' | null },
  quiet: boolean,
): Promise<void> {
  let resumed = false;
  if (config.notNeedInit) {
    const r = await device.init({ quiet });
    if (!r.ok) throw new StartupError(`could not initialize the TPM: ${r.error.message}`);
    resumed = r.resumed;
  }
  // A TPM resumed from its volatile state is already started: as swtpm, send no Startup then.
  if (config.startup && !resumed) {
    const rsp = await device.startup(config.startup);
    const rc = new DataView(rsp.buffer, rsp.byteOffset, rsp.byteLength).getUint32(6);
    if (rc !== 0) throw new StartupError(`TPM2_Startup(${config.startup.toUpperCase()}) at launch failed: rc 0x${rc.toString(16)}`);
  }
}

/** `--pid file=|fd=`: writes the pid file if one was asked for; returns what removes it. */
export function pidFileFromConfig(config: { pidFile?: string; pidFd?: number }): () => void {
  if (config.pidFile === undefined && config.pidFd === undefined) return () => undefined;
  return writePidFile({
    ...(config.pidFile !== undefined ? { file: config.pidFile } : {}),
    ...(config.pidFd !== undefined ? { fd: config.pidFd } : {}),
  });
}
