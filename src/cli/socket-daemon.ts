/**
 * `vtpmd socket`: storage, device, socket front end, pid file, signals. Resolves with the exit
 * code once the daemon has stopped (CMD_SHUTDOWN, SIGTERM/SIGINT, terminate options).
 */
import { createLogger, openLogFile, silentLogger, type Logger, type LogLevel } from '../common/log.js';
import { Device } from '../device/device.js';
import { realEngines } from '../device/engine-factory.js';
import { SocketFrontend } from '../frontends/socket/socket-frontend.js';
import { DirStorage } from '../storage/storage.js';
import { defaultEnv } from '../tpm/engine.js';
import { UsageError } from './key-value.js';
import { notifyReady, writePidFile } from './process-files.js';
import type { LogConfig, SocketConfig } from './socket-config.js';

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
function logsToStderr(c: LogConfig): boolean {
  return c.file === undefined && (c.fd === undefined || c.fd === 2);
}

export async function runSocketDaemon(config: SocketConfig): Promise<number> {
  const log = openLogger(config.log);
  const storage = new DirStorage({
    dir: config.stateDir,
    ...(config.stateMode !== undefined ? { mode: config.stateMode, explicitMode: true } : {}),
    lock: config.lock,
  });
  try {
    storage.prepare();
  } catch (e) {
    log.close();
    throw new StartupError((e as Error).message);
  }
  const device = new Device({
    storage,
    engines: realEngines({ ...defaultEnv, log: (m) => log.error(m) }),
    log,
    autoShutdown: config.autoShutdown,
  });

  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  let stopping = false;
  let frontend: SocketFrontend | undefined;
  let removePid: () => void = () => undefined;

  const stop = async (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${reason}`);
    try {
      await frontend?.close();
      await device.close(); // auto-shutdown, persist, release the lock
    } catch (e) {
      log.error(`while stopping: ${(e as Error).message}`);
      code = code || 1;
    }
    removePid();
    log.close();
    finish(code);
  };

  try {
    frontend = await SocketFrontend.start({
      device,
      log,
      ...(config.data ? { data: config.data } : {}),
      ...(config.ctrl ? { ctrl: config.ctrl } : {}),
      terminateOnDataClose: config.terminate,
      onTerminate: (reason) => void stop(reason),
    });
    if (config.notNeedInit) {
      // The CLI prints the StartupError on stderr; log it only when the log goes elsewhere, so
      // the message appears once on the terminal.
      const r = await device.init({ quiet: logsToStderr(config.log) });
      if (!r.ok) throw new StartupError(`could not initialize the TPM: ${r.error.message}`);
    }
    if (config.startup) {
      const rsp = await device.startup(config.startup);
      const rc = Buffer.from(rsp).readUInt32BE(6);
      if (rc !== 0) throw new StartupError(`TPM2_Startup(${config.startup.toUpperCase()}) at launch failed: rc 0x${rc.toString(16)}`);
    }
    if (config.pidFile !== undefined || config.pidFd !== undefined) {
      removePid = writePidFile({
        ...(config.pidFile !== undefined ? { file: config.pidFile } : {}),
        ...(config.pidFd !== undefined ? { fd: config.pidFd } : {}),
      });
    }
  } catch (e) {
    stopping = true;
    await frontend?.close();
    await device.close().catch(() => undefined);
    removePid();
    log.close();
    if (e instanceof UsageError || e instanceof StartupError) throw e;
    throw new StartupError((e as Error).message);
  }

  process.on('SIGPIPE', () => undefined);
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  notifyReady(log);
  log.info('ready');
  return done;
}
