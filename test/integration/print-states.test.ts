// `--print-states` (swtpm-compat §5.1, §7.10): byte-identical output from vtpmd and swtpm for an
// empty directory, dummy blobs, and a directory a running daemon holds locked.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, startDaemon, swtpmAvailable, VTPMD_MAIN, vtpmdAvailable } from '../helpers/daemon.js';
import { run } from '../helpers/tools.js';

async function printStates(impl: 'vtpmd' | 'swtpm', dir: string): Promise<{ code: number | null; stdout: string }> {
  const args = ['socket', '--tpm2', '--print-states', '--tpmstate', `dir=${dir}`];
  const r = impl === 'vtpmd' ? await run(process.execPath, [VTPMD_MAIN, ...args]) : await run('swtpm', args);
  return { code: r.code, stdout: r.stdout };
}

describe.skipIf(!swtpmAvailable() || !vtpmdAvailable())('--print-states, vtpmd vs swtpm', () => {
  it('empty dir, dummy files (exact sizes), no trailing newline: identical output', async () => {
    const dir = makeTempDir();
    const empty = await printStates('vtpmd', dir);
    expect(empty).toEqual({ code: 0, stdout: '{ "type": "swtpm", "states": [] }' });
    expect(await printStates('swtpm', dir)).toEqual(empty);
    writeFileSync(path.join(dir, 'tpm2-00.permall'), 'abcdef');
    writeFileSync(path.join(dir, 'tpm2-00.volatilestate'), 'xyz');
    const two = await printStates('vtpmd', dir);
    expect(two.stdout).toBe('{ "type": "swtpm", "states": [ {"name": "permall", "size": 6}, {"name": "volatilestate", "size": 3} ] }');
    expect(await printStates('swtpm', dir)).toEqual(two);
  });

  // swtpm 0.7.1 takes the lock here and fails while another daemon holds it; newer swtpm takes
  // none, and neither does vtpmd. Once the holder is gone the outputs agree.
  it('works while a daemon holds the directory locked, and reports the real permall size', async () => {
    for (const holder of ['vtpmd', 'swtpm'] as const) {
      const d = await startDaemon({ impl: holder, flags: ['not-need-init'] });
      const v = await printStates('vtpmd', d.stateDir);
      expect(v.code).toBe(0);
      expect(v.stdout).toMatch(/^\{ "type": "swtpm", "states": \[ \{"name": "permall", "size": \d+\} \] \}$/);
      await d.stop();
      expect(await printStates('swtpm', d.stateDir)).toEqual(await printStates('vtpmd', d.stateDir));
    }
  });
});
