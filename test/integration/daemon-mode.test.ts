// -d/--daemon: the launcher exits 0 only once the background daemon serves; a daemon that cannot
// start makes the launcher exit 1 with the daemon's message.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, registerCleanup, VTPMD_MAIN, vtpmdAvailable } from '../helpers/daemon.js';
import { run, swtpmIoctl, tpm2ok } from '../helpers/tools.js';

describe.skipIf(!vtpmdAvailable())('vtpmd socket --daemon', () => {
  it('returns once the daemon serves; the pid file names the background process; a failing start exits 1', async () => {
    const dir = makeTempDir();
    const sock = path.join(makeTempDir('vtpmd-sock-'), 'tpm');
    const pidFile = path.join(dir, 'pid');
    const base = ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--flags', 'not-need-init,startup-clear'];
    const r = await run(process.execPath, [VTPMD_MAIN, ...base, '--daemon', '--server', `type=unixio,path=${sock}`, '--ctrl', `type=unixio,path=${sock}.ctrl`, '--pid', `file=${pidFile}`]);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    registerCleanup(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    });
    expect(r.code, r.stderr).toBe(0);
    expect(pid).toBeGreaterThan(0);
    // serving at once: no wait between the launcher's exit and the first command
    expect((await tpm2ok('getrandom', `swtpm:path=${sock}`, ['--hex', '8'])).stdout).toMatch(/^[0-9a-f]{16}$/);

    const second = await run(process.execPath, [VTPMD_MAIN, ...base, '-d', '--ctrl', `type=unixio,path=${sock}.2`]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/is in use by/);

    expect((await swtpmIoctl({ ctrlPath: `${sock}.ctrl` }, ['-s'])).code).toBe(0);
  });
});
