/**
 * `vtpmd socket`: storage, device, socket front end, pid file, signals. Resolves with the exit
 * code once the daemon has stopped (CMD_SHUTDOWN, SIGTERM/SIGINT, terminate options).
 */
import { describeEndpoint } from '../frontends/socket/listen.js';
import { SocketFrontend } from '../frontends/socket/socket-frontend.js';
import { runDaemon } from './daemon-run.js';
import { logsToStderr, powerOnAtLaunch } from './daemon-setup.js';
import type { SocketConfig } from './socket-config.js';

export { StartupError } from './daemon-setup.js';

export function runSocketDaemon(config: SocketConfig): Promise<number> {
  return runDaemon(config, async ({ log, device, stop }) => {
    // Power on before the sockets accept anything: a client must never see the TPM between
    // INIT and the launch-time TPM2_Startup (swtpm serves nothing before its main loop either).
    // The CLI prints the StartupError on stderr; log it only when the log goes elsewhere, so the
    // message appears once on the terminal.
    await powerOnAtLaunch(device, config, logsToStderr(config.log));
    const frontend = await SocketFrontend.start({
      device,
      log,
      ...(config.data ? { data: config.data } : {}),
      ...(config.ctrl ? { ctrl: config.ctrl } : {}),
      terminateOnDataClose: config.terminate,
      onTerminate: (reason) => stop(reason),
    });
    return {
      close: async () => {
        await frontend.close();
        return true;
      },
      what: 'the sockets',
      status: describeSockets(config),
      readyMessage: 'ready',
    };
  });
}

/** systemd's STATUS= line: where the channels listen. */
function describeSockets(config: SocketConfig): string {
  const parts: string[] = [];
  if (config.data) parts.push(`data ${describeEndpoint(config.data.endpoint)}`);
  if (config.ctrl) parts.push(`control ${describeEndpoint(config.ctrl.endpoint)}`);
  return `serving ${parts.join(', ')}`;
}
