// -r/--runas: as root, vtpmd socket becomes the user before it opens anything; its state files
// and sockets belong to that user and it serves as usual.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, registerCleanup, VTPMD_MAIN, vtpmdAvailable } from '../helpers/daemon.js';
import { run, tpm2ok } from '../helpers/tools.js';

function nobody(): { uid: number; gid: number } | undefined {
  try {
    const [, , uid, gid] = execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}
const who = nobody();
const skip = process.getuid?.() !== 0 ? 'needs root' : !who ? 'no user nobody' : false;

describe.skipIf(skip !== false || !vtpmdAvailable())(`vtpmd socket --runas nobody${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('runs as nobody; state and sockets belong to nobody; an unknown user is a usage error', async () => {
    const top = makeTempDir();
    chmodSync(top, 0o755);
    const dir = path.join(top, 'state');
    mkdirSync(dir);
    chownSync(dir, who!.uid, who!.gid);
    // the sockets go where nobody may create them
    const sock = path.join(dir, 'sock');
    const child = spawn(process.execPath, [VTPMD_MAIN, 'socket', '--tpm2', '--runas', 'nobody', '--tpmstate', `dir=${dir}`, '--server', `type=unixio,path=${sock}`, '--ctrl', `type=unixio,path=${sock}.ctrl`, '--flags', 'not-need-init,startup-clear'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    registerCleanup(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    for (let i = 0; !existsSync(`${sock}.ctrl`); i++) {
      if (i > 800 || child.exitCode !== null) throw new Error('vtpmd --runas nobody did not start');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await tpm2ok('getrandom', `swtpm:path=${sock}`, ['--hex', '8'])).stdout).toMatch(/^[0-9a-f]{16}$/);
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${who!.uid}\\s+${who!.uid}\\s+${who!.uid}`, 'm'));
    expect(status).toMatch(new RegExp(`^Gid:\\s+${who!.gid}\\s`, 'm'));
    expect(statSync(path.join(dir, 'tpm2-00.permall')).uid).toBe(who!.uid);
    expect(statSync(sock).uid).toBe(who!.uid);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const bad = await run(process.execPath, [VTPMD_MAIN, 'socket', '--tpm2', '--runas', 'no-such-user-x', '--tpmstate', `dir=${dir}`, '--ctrl', `type=unixio,path=${path.join(top, 'c')}`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--runas: no user 'no-such-user-x'/);
    // vtpmd cuse looks the user up before it opens /dev/cuse (which this kernel lacks): the user
    // is the error reported, and nothing is created.
    const cuseDir = path.join(top, 'cuse-state');
    const badCuse = await run(process.execPath, [VTPMD_MAIN, 'cuse', '--tpm2', '-n', 'vtpm-x', '--runas', 'no-such-user-x', '--tpmstate', `dir=${cuseDir}`]);
    expect(badCuse.code).toBe(1);
    expect(badCuse.stderr).toMatch(/--runas: no user 'no-such-user-x'/);
    expect(existsSync(cuseDir)).toBe(false);
  });
});
