/**
 * `vtpmd cuse`: storage, device, /dev/NAME through CUSE, pid file, signals. Resolves with the
 * exit code once the daemon has stopped (PTM_SHUTDOWN, SIGTERM/SIGINT, the kernel dropping the
 * connection). The pid file is written after the device exists, as swtpm does.
 */
import { CuseDevice, CuseError } from '../frontends/cuse/device-io.js';
import type { CuseConfig } from './cuse-config.js';
import { openDevice, pidFileFromConfig, powerOnAtLaunch, StartupError } from './daemon-setup.js';
import { UsageError } from './key-value.js';
import { createNotifier } from './sd-notify.js';

export async function runCuseDaemon(config: CuseConfig): Promise<number> {
  const { log, device } = openDevice(config);
  const notifier = createNotifier(log);

  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  let stopping = false;
  let cuse: CuseDevice | undefined;
  let removePid: () => void = () => undefined;

  const stop = async (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${reason}`);
    // Sent before the process can exit: the message names our pid, which must still exist.
    const stoppingSent = notifier.send({ STOPPING: '1', STATUS: `stopping: ${reason}` });
    try {
      if (cuse && !(await cuse.close())) {
        // The thread-pool read on /dev/cuse could not be woken: a normal exit would wait for it.
        log.error(`could not close ${cuse.nodePath} cleanly; killing the process`);
        removePid();
        process.kill(process.pid, 'SIGKILL');
      }
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
    await powerOnAtLaunch(device, config, true);
    cuse = await CuseDevice.start({
      device,
      name: config.name,
      ...(config.devMajor !== undefined ? { devMajor: config.devMajor } : {}),
      ...(config.devMinor !== undefined ? { devMinor: config.devMinor } : {}),
      log,
      onShutdown: () => void stop('PTM_SHUTDOWN'),
      onLost: (reason) => void stop(reason, 1),
    });
    removePid = pidFileFromConfig(config);
  } catch (e) {
    stopping = true;
    await cuse?.close();
    await device.close().catch(() => undefined);
    removePid();
    log.close();
    if (e instanceof UsageError || e instanceof StartupError || e instanceof CuseError) throw e;
    throw new StartupError((e as Error).message);
  }

  process.on('SIGPIPE', () => undefined);
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // READY=1 only now: the sockets/device accept commands and the TPM is powered on.
  void notifier.send({ READY: '1', STATUS: `serving ${cuse.nodePath}` });
  log.info(`ready: ${cuse.nodePath}`);
  return done;
}
