// -R/--chroot: as root, vtpmd socket changes its root before it opens anything: the state
// directory, sockets and pid file named "/..." are made inside the chroot, it serves and persists
// as usual there (every module and the addon were loaded before), and with --runas it becomes
// the user looked up outside. A chroot it cannot make is a one-line error.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, registerCleanup, VTPMD_MAIN, vtpmdAvailable } from '../helpers/daemon.js';
import { run, tpm2ok } from '../helpers/tools.js';

const nobodyUid = (() => {
  try {
    return Number(execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).split(':')[2]);
  } catch {
    return undefined;
  }
})();
const skip = process.getuid?.() !== 0 ? 'needs root' : nobodyUid === undefined ? 'no user nobody' : false;

describe.skipIf(skip !== false || !vtpmdAvailable())(`vtpmd socket --chroot${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('serves from inside the chroot, as the --runas user; state persists there; a bad chroot is an error', { timeout: 60_000 }, async () => {
    const root = makeTempDir();
    chmodSync(root, 0o755);
    mkdirSync(path.join(root, 'state'));
    chownSync(path.join(root, 'state'), nobodyUid!, 0);
    mkdirSync(path.join(root, 'run'));
    chownSync(path.join(root, 'run'), nobodyUid!, 0);
    const args = ['socket', '--tpm2', '--chroot', root, '--runas', 'nobody', '--tpmstate', 'dir=/state',
      '--server', 'type=unixio,path=/run/tpm.sock', '--ctrl', 'type=unixio,path=/run/tpm.sock.ctrl',
      '--flags', 'not-need-init,startup-clear', '--pid', 'file=/run/pid'];
    const start = () => {
      const child = spawn(process.execPath, [VTPMD_MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      registerCleanup(async () => {
        if (child.exitCode === null) child.kill('SIGKILL');
        await exited;
      });
      return { child, exited, stderr: () => stderr };
    };
    const sock = path.join(root, 'run', 'tpm.sock');
    const waitFor = async (d: ReturnType<typeof start>) => {
      for (let i = 0; !existsSync(path.join(root, 'run', 'pid')); i++) {
        if (i > 800 || d.child.exitCode !== null) throw new Error(`vtpmd --chroot did not start: ${d.stderr()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };

    const first = start();
    await waitFor(first);
    expect(readFileSync(path.join(root, 'run', 'pid'), 'utf8')).toBe(String(first.child.pid));
    expect(readFileSync(`/proc/${first.child.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${nobodyUid}\\s`, 'm'));
    expect(execFileSync('readlink', [`/proc/${first.child.pid}/root`], { encoding: 'utf8' }).trim()).toBe(root);
    expect((await tpm2ok('getrandom', `swtpm:path=${sock}`, ['--hex', '8'])).stdout).toMatch(/^[0-9a-f]{16}$/);
    await tpm2ok('nvdefine', `swtpm:path=${sock}`, ['0x1500016', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite|authread|authwrite']);
    await tpm2ok('nvwrite', `swtpm:path=${sock}`, ['0x1500016', '-C', 'o', '-i', '-'], { input: 'chrooted' });
    expect(statSync(path.join(root, 'state', 'tpm2-00.permall')).uid).toBe(nobodyUid);
    first.child.kill('SIGTERM');
    expect(await first.exited, first.stderr()).toBe(0);
    expect(existsSync(path.join(root, 'run', 'pid'))).toBe(false);

    // A second start from the same chroot finds the NV index the first one wrote.
    const second = start();
    await waitFor(second);
    expect((await tpm2ok('nvread', `swtpm:path=${sock}`, ['0x1500016', '-C', 'o'])).stdout).toBe('chrooted');
    second.child.kill('SIGTERM');
    expect(await second.exited, second.stderr()).toBe(0);

    const bad = await run(process.execPath, [VTPMD_MAIN, 'socket', '--tpm2', '--chroot', path.join(root, 'missing'), '--tpmstate', 'dir=/state', '--ctrl', 'type=unixio,path=/c']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe(`vtpmd: -R/--chroot ${path.join(root, 'missing')}: chroot(${path.join(root, 'missing')}): ENOENT (no such file or directory)`);
  });
});
