// Boots the QEMU guest of scripts/vm/run-guest.sh once with a scenario script and returns where
// its results are. Shared by the test/vm files.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface GuestRun {
  share: string;
  /** Set when QEMU cannot run at all (the only reason to skip). */
  skipReason: string | null;
  seconds: number;
}

export interface GuestOptions {
  /** Boot the host's systemd as PID 1 on an overlay of the host's root; the share is /share. */
  systemd?: boolean;
}

export async function runScenario(scenario: string, limitSeconds: number, opts: GuestOptions = {}): Promise<GuestRun> {
  const share = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-vm-'));
  const script = fs.readFileSync(path.join(REPO, 'test/vm', scenario), 'utf8');
  fs.writeFileSync(path.join(share, 'cmd.sh'), `REPO='${REPO}'\n${script}`);
  const t0 = Date.now();
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
    const child = spawn(path.join(REPO, 'scripts/vm/run-guest.sh'), [...(opts.systemd ? ['--systemd'] : []), share, String(limitSeconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', () => undefined);
    // run-guest.sh has its own wall-clock kill; this is the last line of defence.
    const timer = setTimeout(() => child.kill('SIGKILL'), (limitSeconds + 60) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stderr });
    });
  });
  const seconds = (Date.now() - t0) / 1000;
  if (r.code === 3) {
    console.warn(`test/vm skipped: ${r.stderr.trim()}`);
    return { share, skipReason: r.stderr.trim(), seconds };
  }
  if (r.code !== 0) throw new Error(`the guest failed (run-guest.sh exit ${r.code}):\n${r.stderr}`);
  return { share, skipReason: null, seconds };
}

export function removeShare(run: GuestRun | undefined): void {
  if (run && !process.env.VTPMD_KEEP_VM_SHARE) fs.rmSync(run.share, { recursive: true, force: true });
}
