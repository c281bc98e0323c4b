/**
 * Listening sockets for the data and control channels: TCP (default bind 127.0.0.1) or a unix
 * socket path (unlinked before bind, chmodded to `mode`, unlinked again at close).
 */
import * as fs from 'node:fs';
import net from 'node:net';

export type Endpoint =
  | { type: 'tcp'; port: number; host: string }
  | { type: 'unix'; path: string; mode: number };

export function describeEndpoint(e: Endpoint): string {
  return e.type === 'tcp' ? `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}` : e.path;
}

export class ListenError extends Error {
  readonly code = 'VTPMD_LISTEN';
  constructor(message: string) {
    super(message);
    this.name = 'ListenError';
  }
}

export interface Listener {
  readonly server: net.Server;
  readonly endpoint: Endpoint;
  close(): Promise<void>;
}

export async function listen(
  endpoint: Endpoint,
  onConnection: (socket: net.Socket) => void,
  options: { pauseOnConnect?: boolean; what: string },
): Promise<Listener> {
  const server = net.createServer({ pauseOnConnect: options.pauseOnConnect ?? false }, onConnection);
  if (endpoint.type === 'unix') {
    try {
      fs.unlinkSync(endpoint.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ListenError(`cannot remove old ${options.what} socket ${endpoint.path}: ${(e as Error).message}`);
      }
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new ListenError(`cannot listen for the ${options.what} on ${describeEndpoint(endpoint)}: ${e.code === 'EADDRINUSE' ? 'address already in use; choose another port or path' : e.message}`)),
    );
    if (endpoint.type === 'tcp') server.listen({ port: endpoint.port, host: endpoint.host, backlog: 16 }, resolve);
    else server.listen({ path: endpoint.path, backlog: 16 }, resolve);
  });
  server.on('error', () => {
    /* accept errors (EMFILE...) must not kill the daemon */
  });
  if (endpoint.type === 'unix') {
    try {
      fs.chmodSync(endpoint.path, endpoint.mode);
    } catch (e) {
      server.close();
      throw new ListenError(`cannot set mode ${endpoint.mode.toString(8)} on ${endpoint.path}: ${(e as Error).message}`);
    }
  }
  return {
    server,
    endpoint,
    // Stops accepting at once; open connections are the front end's to end.
    close: async () => {
      server.close();
      if (endpoint.type === 'unix') {
        try {
          fs.unlinkSync(endpoint.path);
        } catch {
          /* already gone */
        }
      }
    },
  };
}
