/**
 * swtpm's socket mode (swtpm-compat §4.1, §1.5): a data channel and a control channel, each TCP
 * or unix, in front of one Device. Any number of data connections may be open (tpm2-tss opens
 * one per command and also connects and closes without data); the Device serialises their
 * commands. A data socket can also arrive over the control channel (CMD_SET_DATAFD).
 */
import type net from 'node:net';
import type { Logger } from '../../common/log.js';
import { PTM_RES } from '../../control/codes.js';
import type { Device } from '../../device/device.js';
import { CtrlConnection } from './ctrl-channel.js';
import { serveDataConnection } from './data-channel.js';
import { readWithDescriptors } from './fd-passing.js';
import { describeEndpoint, listen, type Endpoint, type Listener } from './listen.js';

export type { Endpoint } from './listen.js';

export interface SocketFrontendOptions {
  device: Device;
  log: Logger;
  /** `--server`: absent with a control channel only (the data socket then comes by SET_DATAFD). */
  data?: { endpoint: Endpoint; disconnect: boolean };
  /** `--ctrl` */
  ctrl?: { endpoint: Endpoint; terminate: boolean };
  /** `-t/--terminate`: end when a data connection is lost. */
  terminateOnDataClose: boolean;
  /** The front end wants the process to end (CMD_SHUTDOWN, terminate options). */
  onTerminate(reason: string): void;
}

export class SocketFrontend {
  private readonly listeners: Listener[] = [];
  private readonly connections = new Set<net.Socket>();
  private fdDataSocket: net.Socket | null = null;

  private constructor(private readonly options: SocketFrontendOptions) {}

  static async start(options: SocketFrontendOptions): Promise<SocketFrontend> {
    const fe = new SocketFrontend(options);
    try {
      if (options.data) {
        const { endpoint, disconnect } = options.data;
        // Paused: the native addon reads data connections (data-channel.ts), never Node.
        fe.listeners.push(await listen(endpoint, (s) => fe.acceptData(s, disconnect), { what: 'data channel', pauseOnConnect: true }));
        options.log.info(`data channel on ${describeEndpoint(endpoint)}`);
      }
      if (options.ctrl) {
        const { endpoint } = options.ctrl;
        const unix = endpoint.type === 'unix';
        fe.listeners.push(await listen(endpoint, (s) => fe.acceptCtrl(s, unix), { what: 'control channel', pauseOnConnect: unix }));
        options.log.info(`control channel on ${describeEndpoint(endpoint)}`);
      }
    } catch (e) {
      await fe.close();
      throw e;
    }
    return fe;
  }

  private track(socket: net.Socket, onClose?: () => void): void {
    this.connections.add(socket);
    socket.on('close', () => {
      this.connections.delete(socket);
      onClose?.();
    });
  }

  private acceptData(socket: net.Socket, disconnect: boolean): void {
    this.track(socket, () => {
      if (this.options.terminateOnDataClose) this.options.onTerminate('the data connection closed (--terminate)');
    });
    serveDataConnection(socket, { device: this.options.device, log: this.options.log, disconnect });
  }

  /** A unix control connection is read with recvmsg, so descriptors sent with it arrive. */
  private acceptCtrl(socket: net.Socket, unix: boolean): void {
    this.track(socket, () => {
      if (this.options.ctrl?.terminate) this.options.onTerminate('the control connection closed (terminate)');
    });
    const options = {
      device: this.options.device,
      log: this.options.log,
      fdPassing: true,
      adoptDataSocket: (fd: net.Socket | null) => this.adoptDataSocket(fd),
      onShutdown: () => this.options.onTerminate('CMD_SHUTDOWN'),
    };
    if (unix) {
      const conn = new CtrlConnection(socket, { ...options, externalInput: true });
      if (readWithDescriptors(socket, { descriptor: (fd) => conn.descriptor(fd), data: (chunk) => conn.receive(chunk) })) return;
      socket.destroy(); // an accepted unix connection always has its descriptor
      return;
    }
    new CtrlConnection(socket, options);
  }

  /** CMD_SET_DATAFD: swtpm answers IOERROR when a data channel exists, BAD_PARAMETER without fd. */
  private adoptDataSocket(fd: net.Socket | null): number {
    if (this.options.data || this.fdDataSocket) return PTM_RES.IOERROR;
    if (!fd) return PTM_RES.BAD_PARAMETER;
    this.fdDataSocket = fd;
    this.track(fd, () => {
      this.fdDataSocket = null; // a later SET_DATAFD may bring a new one (as in swtpm)
      if (this.options.terminateOnDataClose) this.options.onTerminate('the data connection closed (--terminate)');
    });
    serveDataConnection(fd, { device: this.options.device, log: this.options.log, disconnect: false });
    return PTM_RES.SUCCESS;
  }

  /** Stops listening (unix socket files are removed) and ends every connection. */
  async close(): Promise<void> {
    for (const l of this.listeners.splice(0)) await l.close();
    for (const s of this.connections) s.destroy();
    this.connections.clear();
  }
}
