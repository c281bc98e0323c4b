/**
 * `-r/--runas USER` (swtpm-compat §4.2): give up root for USER (its uid, primary gid and
 * supplementary groups). `vtpmd socket` does it first thing, as swtpm does, so every file and
 * socket is then created as USER: the state directory, log and pid file must be writable by it.
 * `vtpmd cuse` needs root to open /dev/cuse, so it looks the user up first (a bad name is a
 * usage error before anything is opened) and becomes USER once the device exists, as swtpm cuse.
 */
import { execFileSync } from 'node:child_process';
import { UsageError } from './key-value.js';

/** A user to become: the account's name, uid and primary gid. */
export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

/** Looks USER up and checks that this process may become it. */
export function resolveRunAs(user: string): RunAs {
  let entry: string;
  try {
    entry = execFileSync('getent', ['passwd', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    throw new UsageError(`-r/--runas: no user '${user}' on this system`);
  }
  const [name, , uid, gid] = entry.split('\n')[0]!.split(':');
  if (!name || !/^\d+$/.test(uid ?? '') || !/^\d+$/.test(gid ?? '')) throw new UsageError(`-r/--runas: cannot read the account of '${user}'`);
  if (process.getuid?.() !== 0 && process.getuid?.() !== Number(uid)) {
    throw new UsageError(`-r/--runas ${user} needs root; start vtpmd as root or drop the option`);
  }
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** Becomes the user (a no-op when already it). */
export function becomeUser(account: RunAs): void {
  if (process.getuid?.() === account.uid) return;
  try {
    (process as unknown as { initgroups(user: string, group: number): void }).initgroups(account.name, account.gid);
    process.setgid!(account.gid);
    process.setuid!(account.uid);
  } catch (e) {
    throw new UsageError(`-r/--runas: cannot become ${account.name}: ${(e as Error).message}`);
  }
}

