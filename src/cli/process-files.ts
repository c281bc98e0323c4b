/** The pid file (`--pid`) and systemd readiness (`NOTIFY_SOCKET`). */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Logger } from '../common/log.js';

/** Writes the decimal pid without a newline, mode 0644 (as swtpm). Returns a remover. */
export function writePidFile(target: { file?: string; fd?: number }, pid = process.pid): () => void {
  if (target.file !== undefined) {
    const file = target.file;
    fs.writeFileSync(file, String(pid), { mode: 0o644 });
    return () => {
      try {
        fs.unlinkSync(file);
      } catch {
        /* already gone */
      }
    };
  }
  if (target.fd !== undefined) {
    fs.writeSync(target.fd, String(pid));
    fs.closeSync(target.fd);
  }
  return () => undefined;
}

/**
 * READY=1 for systemd. Node has no AF_UNIX datagram sockets, so this runs `systemd-notify
 * --ready` when NOTIFY_SOCKET is set (the unit needs NotifyAccess=all); best effort.
 */
export function notifyReady(log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  if (!env.NOTIFY_SOCKET) return;
  try {
    const child = spawn('systemd-notify', ['--ready', `--pid=${process.pid}`], { stdio: 'ignore' });
    child.on('error', (e) => log.warn(`systemd-notify: ${e.message}`));
    child.unref();
  } catch (e) {
    log.warn(`systemd-notify: ${(e as Error).message}`);
  }
}
