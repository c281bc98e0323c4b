/**
 * Receiving file descriptors (SCM_RIGHTS) on a unix control connection, for CMD_SET_DATAFD
 * (swtpm-compat §1.5): QEMU's emulator backend hands its data socket over that way, and
 * cloud-hypervisor attaches descriptors to its control writes.
 *
 * Node's streams read with read(2), which drops ancillary data (the kernel closes the
 * descriptors), so a unix control connection is accepted paused and read by the native addon
 * with recvmsg instead. The net.Socket still stands for the connection: it writes the replies,
 * and closing it ends the reading.
 */
import * as fs from 'node:fs';
import net from 'node:net';
import { serveConnection } from '../../native/syscalls.js';

/** Where the bytes and descriptors of one control connection go, in the order they came. */
export interface ControlInput {
  /** A descriptor that came with the next bytes; the receiver owns the socket. */
  descriptor(socket: net.Socket): void;
  data(chunk: Buffer): void;
}

/**
 * Reads an accepted, paused unix connection through the addon. False when the connection has
 * no descriptor of its own to read (it is then left to Node).
 */
export function readWithDescriptors(accepted: net.Socket, input: ControlInput): boolean {
  const fd = (accepted as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return false;
  const conn = serveConnection(fd, {
    data(bytes, fds) {
      for (const d of fds) {
        const socket = socketOf(d);
        if (socket) input.descriptor(socket);
      }
      input.data(Buffer.from(bytes)); // a copy: the view is of a reused buffer
    },
    close(errno) {
      accepted.destroy(errno ? new Error(`read: ${errno}`) : undefined);
    },
  });
  accepted.once('close', () => conn.close());
  return true;
}

/**
 * A received descriptor as a Node socket that Node never reads (the data channel reads it
 * through the addon); one that is no socket or pipe is closed and ignored.
 */
function socketOf(fd: number): net.Socket | null {
  try {
    return new net.Socket({ fd, readable: false, writable: true });
  } catch {
    fs.closeSync(fd);
    return null;
  }
}
