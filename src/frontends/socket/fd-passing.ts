/**
 * Receiving file descriptors (SCM_RIGHTS) on a unix-socket connection without native code, for
 * CMD_SET_DATAFD (swtpm-compat §1.5).
 *
 * Node's public net API drops ancillary data. libuv does read SCM_RIGHTS on pipes opened in IPC
 * mode (it uses recvmsg and queues the fds), and Node hands such an fd to JS as the stream
 * handle's `pendingHandle` — the mechanism child_process uses. So each accepted control
 * connection is re-opened as an IPC pipe on the same fd. This relies on the internal
 * `process.binding('pipe_wrap')` (documentation-deprecated, DEP0111, but still shipped); if it
 * is missing, fd passing is reported unavailable and SET_DATAFD is not advertised.
 *
 * Caveat: the original accepted handle cannot give up its fd, so it is kept (inert, never read,
 * never closed) for the life of the process; the IPC pipe owns and closes the fd. A later issue
 * replaces this with a native helper.
 */
import net from 'node:net';

interface PipeHandle {
  open(fd: number): number;
  onread: (...args: unknown[]) => unknown;
  pendingHandle?: unknown;
  fd?: number;
}
interface PipeBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { IPC: number };
}

function loadPipeBinding(): PipeBinding | null {
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding('pipe_wrap') as PipeBinding;
    return typeof binding?.Pipe === 'function' && typeof binding.constants?.IPC === 'number' ? binding : null;
  } catch {
    return null;
  }
}

export interface FdReceiver {
  /** Wraps an accepted (paused, never read) unix connection so it can receive descriptors. */
  upgrade(accepted: net.Socket, onDescriptor: (socket: net.Socket) => void): net.Socket | null;
}

/** Null when this Node cannot receive descriptors. */
export function createFdReceiver(): FdReceiver | null {
  const binding = loadPipeBinding();
  if (!binding) return null;
  // Accepted handles whose fd now belongs to an IPC pipe: they must never be closed or collected.
  const inert = new Set<net.Socket>();
  return {
    upgrade(accepted, onDescriptor) {
      const handle = (accepted as unknown as { _handle?: { fd?: number } })._handle;
      const fd = handle?.fd;
      if (typeof fd !== 'number' || fd < 0) return null;
      const ipc = new binding.Pipe(binding.constants.IPC);
      if (ipc.open(fd) !== 0) return null;
      inert.add(accepted);
      const socket = new net.Socket({ handle: ipc, readable: true, writable: true } as net.SocketConstructorOpts);
      // Node sets onread in the Socket constructor; look at pendingHandle before each chunk is
      // pushed, so a descriptor is seen before the bytes it came with.
      const onread = ipc.onread;
      ipc.onread = function (this: unknown, ...args: unknown[]) {
        const pending = ipc.pendingHandle;
        if (pending) {
          ipc.pendingHandle = undefined;
          onDescriptor(new net.Socket({ handle: pending, readable: true, writable: true } as net.SocketConstructorOpts));
        }
        return onread.apply(this, args);
      };
      return socket;
    },
  };
}
