/**
 * The systemd notification protocol (sd_notify(3)): `KEY=VALUE` lines sent as one datagram to
 * the AF_UNIX socket named by NOTIFY_SOCKET. Node has no AF_UNIX datagram sockets, so each
 * message is handed to the `systemd-notify` binary, which sends it for us.
 *
 * Two details make that reliable. `--pid=<our pid>` puts the daemon's pid into the message's
 * credentials (root may name another process), so systemd attributes the message to the main
 * process even after the short-lived sender has exited; without the privilege the kernel sends
 * the sender's own pid and the unit needs NotifyAccess=all. And messages are sent one at a time
 * in order, so STOPPING=1 can never overtake READY=1.
 *
 * The `systemd-notify` npm package wraps the same binary but knows only --ready and --status;
 * STOPPING=1 and arbitrary assignments need the binary's positional `KEY=VALUE` form, so this
 * module calls it directly.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../common/log.js';

/** How long one message may take to hand over. */
const SEND_TIMEOUT_MS = 2000;

export type NotifyFields = Partial<Record<'READY' | 'STOPPING' | 'STATUS' | 'MAINPID' | 'ERRNO', string>>;

export interface Notifier {
  /** Queues one message; resolves once it was handed over (or given up on). Never rejects. */
  send(fields: NotifyFields): Promise<void>;
  /** Whether a service manager listens (NOTIFY_SOCKET was set). */
  readonly active: boolean;
}

/** The arguments for one message: the pid claim, then the assignments in a stable order. */
export function notifyArgs(fields: NotifyFields, pid: number): string[] {
  const args = [`--pid=${pid}`];
  for (const key of ['MAINPID', 'READY', 'STOPPING', 'ERRNO', 'STATUS'] as const) {
    const value = fields[key];
    if (value === undefined) continue;
    // One message is newline-separated assignments: a newline inside a value would forge a field.
    args.push(`${key}=${value.replace(/[\r\n]+/g, ' ')}`);
  }
  return args;
}

export function createNotifier(log: Logger, env: NodeJS.ProcessEnv = process.env, binary = 'systemd-notify'): Notifier {
  const socket = env.NOTIFY_SOCKET;
  let chain: Promise<void> = Promise.resolve();
  const sendOne = (fields: NotifyFields) =>
    new Promise<void>((resolve) => {
      let child;
      try {
        child = spawn(binary, notifyArgs(fields, process.pid), { stdio: ['ignore', 'ignore', 'pipe'], env });
      } catch (e) {
        log.warn(`${binary}: ${(e as Error).message}`);
        resolve();
        return;
      }
      let err = '';
      // A stop must not wait on a stuck sender (a full socket buffer blocks it).
      const timer = setTimeout(() => child.kill('SIGKILL'), SEND_TIMEOUT_MS);
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.once('error', (e) => {
        clearTimeout(timer);
        log.warn(`${binary}: ${e.message}; systemd will not see ${Object.keys(fields).join(', ')}`);
        resolve();
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code !== 0) log.warn(`${binary} ${signal ? `was killed (${signal})` : `exited with ${code}`}: ${err.trim()}`);
        resolve();
      });
    });
  return {
    active: socket !== undefined && socket !== '',
    send(fields) {
      if (!socket) return Promise.resolve();
      chain = chain.then(() => sendOne(fields));
      return chain;
    },
  };
}
