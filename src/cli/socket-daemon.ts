/**
 * `vtpmd socket`: storage, device, socket front end, pid file, signals. Resolves with the exit
 * code once the daemon has stopped (CMD_SHUTDOWN, SIGTERM/SIGINT, terminate options).
 */
import { describeEndpoint } from '../frontends/socket/listen.js';
import { SocketFrontend } from '../frontends/socket/socket-frontend.js';
import { logsToStderr, openDevice, pidFileFromConfig, powerOnAtLaunch, StartupError } from './daemon-setup.js';
import { UsageError } from './key-value.js';
import { reportDaemonReady } from './daemonize.js';
import { createNotifier } from './sd-notify.js';
import type { SocketConfig } from './socket-config.js';

export { StartupError } from './daemon-setup.js';

export async function runSocketDaemon(config: SocketConfig): Promise<number> {
  const { log, device } = openDevice(config);
  const notifier = createNotifier(log);

  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  let stopping = false;
  let frontend: SocketFrontend | undefined;
  let removePid: () => void = () => undefined;

  const stop = async (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${reason}`);
    // Sent before the process can exit: the message names our pid, which must still exist.
    const stoppingSent = notifier.send({ STOPPING: '1', STATUS: `stopping: ${reason}` });
    try {
      await frontend?.close();
      await device.close(); // auto-shutdown, persist, release the lock
    } catch (e) {
      log.error(`while stopping: ${(e as Error).message}`);
      code = code || 1;
    }
    removePid();
    await stoppingSent;
    log.close();
    finish(code);
  };

  try {
    // Power on before the sockets accept anything: a client must never see the TPM between
    // INIT and the launch-time TPM2_Startup (swtpm serves nothing before its main loop either).
    // The CLI prints the StartupError on stderr; log it only when the log goes elsewhere, so the
    // message appears once on the terminal.
    await powerOnAtLaunch(device, config, logsToStderr(config.log));
    frontend = await SocketFrontend.start({
      device,
      log,
      ...(config.data ? { data: config.data } : {}),
      ...(config.ctrl ? { ctrl: config.ctrl } : {}),
      terminateOnDataClose: config.terminate,
      onTerminate: (reason) => void stop(reason),
    });
    removePid = pidFileFromConfig(config);
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
  // READY=1 only now: the sockets/device accept commands and the TPM is powered on.
  void notifier.send({ READY: '1', STATUS: describeSockets(config) });
  reportDaemonReady();
  log.info('ready');
  return done;
}

/** systemd's STATUS= line: where the channels listen. */
function describeSockets(config: SocketConfig): string {
  const parts: string[] = [];
  if (config.data) parts.push(`data ${describeEndpoint(config.data.endpoint)}`);
  if (config.ctrl) parts.push(`control ${describeEndpoint(config.ctrl.endpoint)}`);
  return `serving ${parts.join(', ')}`;
}
