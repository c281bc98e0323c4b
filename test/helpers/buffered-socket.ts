// A client connection whose received bytes gather in one buffer, for the data- and
// control-channel clients: each frames responses its own way from `buf`.
import net from 'node:net';

/** Where to connect: a unix socket path, or a TCP port (host default 127.0.0.1). */
export type SocketAddress = { path: string } | { port: number; host?: string };

/** Resolves with the connected socket, or rejects with the connect error. */
export function connectSocket(to: SocketAddress): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = 'path' in to ? net.connect(to.path) : net.connect(to.port, to.host ?? '127.0.0.1');
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export class BufferedSocket {
  /** Bytes received and not yet taken by a read. */
  protected buf: Buffer = Buffer.alloc(0);
  /** The peer ended or closed the connection, or it failed. */
  protected closed = false;
  private wake: (() => void) | undefined;

  protected constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    const onEnd = () => {
      this.closed = true;
      this.wake?.();
    };
    sock.on('end', onEnd);
    sock.on('close', onEnd);
    sock.on('error', onEnd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Waits `ms`, or less if bytes arrive or the connection ends meanwhile. */
  protected async waitForBytes(ms: number): Promise<void> {
    await new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
    this.wake = undefined;
  }

  close(): void {
    this.sock.destroy();
  }
}
