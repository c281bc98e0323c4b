/**
 * `vtpmd cuse`: storage, device, /dev/NAME through CUSE, pid file, signals. Resolves with the
 * exit code once the daemon has stopped (PTM_SHUTDOWN, SIGTERM/SIGINT, the kernel dropping the
 * connection). The pid file is written after the device exists, as swtpm does.
 */
import { CuseDevice, CuseError } from '../frontends/cuse/device-io.js';
import type { CuseConfig } from './cuse-config.js';
import { openDevice, StartupError } from './daemon-setup.js';
import { UsageError } from './key-value.js';
import { notifyReady, writePidFile } from './process-files.js';

export async function runCuseDaemon(config: CuseConfig): Promise<number> {
  const { log, device } = openDevice(config);

  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  let stopping = false;
  let cuse: CuseDevice | undefined;
  let removePid: () => void = () => undefined;

  const stop = async (reason: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info(`stopping: ${reason}`);
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
    log.close();
    finish(code);
  };

  try {
    if (config.notNeedInit) {
      const r = await device.init({ quiet: true });
      if (!r.ok) throw new StartupError(`could not initialize the TPM: ${r.error.message}`);
    }
    if (config.startup) {
      const rsp = await device.startup(config.startup);
      const rc = Buffer.from(rsp).readUInt32BE(6);
      if (rc !== 0) throw new StartupError(`TPM2_Startup(${config.startup.toUpperCase()}) at launch failed: rc 0x${rc.toString(16)}`);
    }
    cuse = await CuseDevice.start({
      device,
      name: config.name,
      ...(config.devMajor !== undefined ? { devMajor: config.devMajor } : {}),
      ...(config.devMinor !== undefined ? { devMinor: config.devMinor } : {}),
      log,
      onShutdown: () => void stop('PTM_SHUTDOWN'),
      onLost: (reason) => void stop(reason, 1),
    });
    if (config.pidFile !== undefined || config.pidFd !== undefined) {
      removePid = writePidFile({
        ...(config.pidFile !== undefined ? { file: config.pidFile } : {}),
        ...(config.pidFd !== undefined ? { fd: config.pidFd } : {}),
      });
    }
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
  notifyReady(log);
  log.info(`ready: ${cuse.nodePath}`);
  return done;
}
