/**
 * `-r/--runas USER` (swtpm-compat §4.2): give up root for USER (its uid, primary gid and
 * supplementary groups). `vtpmd socket` does it first thing, as swtpm does, so every file and
 * socket is then created as USER: the state directory, log and pid file must be writable by it.
 */
import { execFileSync } from 'node:child_process';
import { UsageError } from './key-value.js';

export function dropPrivileges(user: string): void {
  let entry: string;
  try {
    entry = execFileSync('getent', ['passwd', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    throw new UsageError(`-r/--runas: no user '${user}' on this system`);
  }
  const [name, , uid, gid] = entry.split('\n')[0]!.split(':');
  if (!name || !/^\d+$/.test(uid ?? '') || !/^\d+$/.test(gid ?? '')) throw new UsageError(`-r/--runas: cannot read the account of '${user}'`);
  if (process.getuid?.() !== 0) {
    if (process.getuid?.() === Number(uid)) return; // already that user
    throw new UsageError(`-r/--runas ${user} needs root; start vtpmd as root or drop the option`);
  }
  try {
    (process as unknown as { initgroups(user: string, group: number): void }).initgroups(name, Number(gid));
    process.setgid!(Number(gid));
    process.setuid!(Number(uid));
  } catch (e) {
    throw new UsageError(`-r/--runas: cannot become ${user}: ${(e as Error).message}`);
  }
}
