/**
 * `vtpmd cuse`: storage, device, /dev/NAME through CUSE, pid file, signals. Resolves with the
 * exit code once the daemon has stopped (PTM_SHUTDOWN, SIGTERM/SIGINT, the kernel dropping the
 * connection). The pid file is written after the device exists and root is given up for
 * --runas, as swtpm does.
 */
import { CuseDevice, CuseError } from '../frontends/cuse/device-io.js';
import type { CuseConfig } from './cuse-config.js';
import { runDaemon } from './daemon-run.js';
import { powerOnAtLaunch } from './daemon-setup.js';
import { becomeUser } from './runas.js';

export function runCuseDaemon(config: CuseConfig): Promise<number> {
  return runDaemon(
    config,
    async ({ log, device, stop }) => {
      await powerOnAtLaunch(device, config, true);
      const cuse = await CuseDevice.start({
        device,
        name: config.name,
        ...(config.devMajor !== undefined ? { devMajor: config.devMajor } : {}),
        ...(config.devMinor !== undefined ? { devMinor: config.devMinor } : {}),
        log,
        onShutdown: () => stop('PTM_SHUTDOWN'),
        onLost: (reason) => stop(reason, 1),
      });
      // /dev/cuse needed root; the device exists now, so root is given up (swtpm cuse does the same).
      if (config.runas) {
        try {
          // The power-on wrote the state as root: it is the user's to go on writing (and to
          // open again when a later daemon starts as that user).
          device.giveStateTo(config.runas.uid, config.runas.gid);
          becomeUser(config.runas);
        } catch (e) {
          await cuse.close();
          throw e;
        }
        log.info(`running as ${config.runas.name} (uid ${config.runas.uid})`);
      }
      return {
        close: () => cuse.close(),
        what: cuse.nodePath,
        status: `serving ${cuse.nodePath}`,
        readyMessage: `ready: ${cuse.nodePath}`,
      };
    },
    (e) => e instanceof CuseError,
  );
}
