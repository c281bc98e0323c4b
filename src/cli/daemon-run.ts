/**
 * The life of a daemon, the same for `vtpmd socket` and `vtpmd cuse`: open the state and the
 * Device, start the front end, write the pid file, report readiness (systemd, a `--daemon`
 * launcher), and on a stop request (the front end's, SIGTERM, SIGINT) close the front end, shut
 * the Device down (auto-shutdown, persist, unlock), remove the pid file and resolve with the exit
 * code. Only starting the front end differs between the two.
 */
import type { Logger } from '../common/log.js';
import type { Device } from '../device/device.js';
import { openDevice, pidFileFromConfig, StartupError, type DeviceConfig } from './daemon-setup.js';
import { reportDaemonReady } from './daemonize.js';
import { UsageError } from './key-value.js';
import { createNotifier } from './sd-notify.js';

/** What a front end's start gives the lifecycle. */
export interface RunningFrontend {
  /**
   * Stops serving; called once, before the Device closes. False when it could not stop cleanly
   * and a normal exit would hang (the CUSE thread-pool read cannot be woken): the daemon then
   * ends with SIGKILL after removing its pid file.
   */
  close(): Promise<boolean>;
  /** What the front end serves, for the message when it cannot close (e.g. /dev/vtpm0). */
  readonly what: string;
  /** systemd's STATUS= line once ready, e.g. "serving /dev/vtpm0". */
  readonly status: string;
  /** The log line once ready. */
  readonly readyMessage: string;
}

export interface FrontendContext {
  readonly log: Logger;
  readonly device: Device;
  /** Asks the daemon to stop; `code` is the exit code. */
  stop(reason: string, code?: number): void;
}

export async function runDaemon(
  config: DeviceConfig & { pidFile?: string; pidFd?: number },
  start: (ctx: FrontendContext) => Promise<RunningFrontend>,
  /** Errors of the front end's own that already say what to fix (printed as they are). */
  isReportable: (e: unknown) => boolean = () => false,
): Promise<number> {
  const { log, device } = openDevice(config);
  const notifier = createNotifier(log);

  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  let stopping = false;
  let frontend: RunningFrontend | undefined;
  let removePid: () => void = () => undefined;

  const stop = async (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${reason}`);
    notifier.send({ STOPPING: '1', STATUS: `stopping: ${reason}` });
    try {
      if (frontend && !(await frontend.close())) {
        log.error(`could not close ${frontend.what} cleanly; killing the process`);
        removePid();
        process.kill(process.pid, 'SIGKILL');
      }
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
    frontend = await start({
      log,
      device,
      stop: (reason, code) => void stop(reason, code),
    });
    // Handlers before the pid file: whoever sees the file may signal at once, and a SIGTERM
    // that arrived before them would kill the process without persisting the state.
    process.on('SIGPIPE', () => undefined);
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    removePid = pidFileFromConfig(config);
  } catch (e) {
    stopping = true;
    await frontend?.close();
    await device.close().catch(() => undefined);
    removePid();
    log.close();
    if (e instanceof UsageError || e instanceof StartupError || isReportable(e)) throw e;
    throw new StartupError((e as Error).message);
  }

  // READY=1 only now: the sockets/device accept commands and the TPM is powered on.
  notifier.send({ READY: '1', STATUS: frontend.status });
  reportDaemonReady();
  log.info(frontend.readyMessage);
  return done;
}
