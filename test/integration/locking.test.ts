// The state directory lock against a real swtpm (swtpm-compat §5.5): swtpm fcntl-locks
// <dir>/.lock, vtpmd takes an open-file-description lock on the same file; each keeps the other
// out, and a SIGKILLed daemon leaves nothing that blocks the next start.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, startDaemon, swtpmAvailable, VTPMD_MAIN, vtpmdAvailable, type Impl } from '../helpers/daemon.js';
import { run, swtpmIoctl } from '../helpers/tools.js';

/** Starts `impl` on `stateDir` with the TPM powered on at launch (which takes the lock) and waits for its exit. */
function startExpectingExit(impl: Impl, stateDir: string) {
  const ctrl = path.join(makeTempDir('vtpmd-sock-'), 'ctrl');
  const args = ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--ctrl', `type=unixio,path=${ctrl}`, '--flags', 'not-need-init'];
  return impl === 'vtpmd' ? run(process.execPath, [VTPMD_MAIN, ...args], { timeoutMs: 15_000 }) : run('swtpm', args, { timeoutMs: 15_000 });
}

/** The daemon listens before its launch-time INIT has taken the lock; INIT writes the first permall. */
async function lockTaken(stateDir: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!existsSync(path.join(stateDir, 'tpm2-00.permall'))) {
    if (Date.now() > deadline) throw new Error(`no permall in ${stateDir} after 20 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The engines' state formats differ: the next daemon starts on a directory without the other's state (the lock file stays). */
function dropState(stateDir: string): void {
  for (const f of readdirSync(stateDir)) if (f.startsWith('tpm2-')) rmSync(path.join(stateDir, f));
}

describe.skipIf(!swtpmAvailable() || !vtpmdAvailable())('state directory lock, vtpmd against swtpm', () => {
  for (const [holder, intruder] of [
    ['vtpmd', 'swtpm'],
    ['swtpm', 'vtpmd'],
  ] as const) {
    it(`${holder} holds the directory: ${intruder} cannot start on it; after a SIGKILL of ${holder} it can`, async () => {
      const stateDir = makeTempDir();
      const d = await startDaemon({ impl: holder, flags: ['not-need-init'], stateDir });
      await lockTaken(stateDir);
      const refused = await startExpectingExit(intruder, stateDir);
      expect(refused.code, refused.stdout + refused.stderr).not.toBe(0);
      if (intruder === 'vtpmd') expect(refused.stderr).toMatch(new RegExp(`in use by process ${d.pid} \\(a vtpmd or swtpm\\)`));
      else expect(refused.stderr).toMatch(/lock/i);
      await d.kill(); // SIGKILL: no cleanup of any kind
      dropState(stateDir);
      const next = await startDaemon({ impl: intruder, flags: ['not-need-init'], stateDir });
      expect((await swtpmIoctl(next, ['-i'])).code).toBe(0);
      await next.stop();
    }, 60_000);
  }

  it('INIT on a vtpmd whose directory swtpm holds fails and the daemon keeps serving; it succeeds once swtpm is gone', async () => {
    const stateDir = makeTempDir();
    const v = await startDaemon({ impl: 'vtpmd', stateDir }); // TPM off: no lock yet
    const s = await startDaemon({ impl: 'swtpm', flags: ['not-need-init'], stateDir });
    await lockTaken(stateDir);
    const r = await swtpmIoctl(v, ['-i']);
    expect(r.code).not.toBe(0);
    await s.kill();
    dropState(stateDir);
    expect((await swtpmIoctl(v, ['-i'])).code).toBe(0);
    await v.stop();
  }, 60_000);
});
