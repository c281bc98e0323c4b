/**
 * The systemd notification protocol (sd_notify(3)): `KEY=VALUE` lines sent as one datagram to
 * the AF_UNIX socket named by NOTIFY_SOCKET (a path, or "@name" for an abstract socket). Node has
 * no AF_UNIX datagram sockets, so the native addon sends it, from this process: the kernel puts
 * our pid into the message's credentials, so systemd attributes it to the main process and
 * NotifyAccess=main is enough. Each message is one sendto(2) from the event loop, so messages
 * arrive in the order they were sent (STOPPING=1 never overtakes READY=1).
 *
 * The `systemd-notify` npm package spawns the `systemd-notify` binary, which knows only --ready
 * and --status and sends with its own pid; a process per message is also what this module no
 * longer needs.
 */
import type { Logger } from '../common/log.js';
import { sendDatagram } from '../native/syscalls.js';

export type NotifyFields = Partial<Record<'READY' | 'STOPPING' | 'STATUS' | 'MAINPID' | 'ERRNO', string>>;

export interface Notifier {
  /** Sends one message (the kernel has it when this returns). A failure is a warning, never thrown. */
  send(fields: NotifyFields): void;
  /** Whether a service manager listens (NOTIFY_SOCKET was set). */
  readonly active: boolean;
}

/** One message: the assignments in a stable order, one per line. */
export function notifyMessage(fields: NotifyFields): string {
  const lines: string[] = [];
  for (const key of ['MAINPID', 'READY', 'STOPPING', 'ERRNO', 'STATUS'] as const) {
    const value = fields[key];
    if (value === undefined) continue;
    // Assignments are newline-separated: a newline inside a value would forge a field.
    lines.push(`${key}=${value.replace(/[\r\n]+/g, ' ')}`);
  }
  return lines.join('\n');
}

export function createNotifier(
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
  send: (socketPath: string, message: Buffer) => void = sendDatagram,
): Notifier {
  const socket = env.NOTIFY_SOCKET;
  return {
    active: socket !== undefined && socket !== '',
    send(fields) {
      if (!socket) return;
      try {
        send(socket, Buffer.from(notifyMessage(fields)));
      } catch (e) {
        log.warn(`NOTIFY_SOCKET ${socket}: ${(e as Error).message}; systemd will not see ${Object.keys(fields).join(', ')}`);
      }
    },
  };
}
