// QEMU as the consumer: `-tpmdev emulator` on the control socket (QEMU drives INIT, SET_DATAFD,
// SET_LOCALITY, SET_BUFFERSIZE, ... and sends TPM commands over the data fd it passes), SeaBIOS
// under TCG measures into PCRs 0-7, then QEMU is killed (SIGKILL, so it sends no CMD_SHUTDOWN and
// the TPM keeps running). swtpm_ioctl then stores the volatile state and shuts the daemon down; a
// restart with not-need-init resumes from it and the PCRs are read back. vtpmd's must equal
// swtpm's under the same QEMU command line.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, registerCleanup, startDaemon, swtpmAvailable, VTPMD_MAIN, vtpmdAvailable, type Impl } from '../helpers/daemon.js';
import { parsePcrReadOutput, swtpmIoctl, tpm2ok } from '../helpers/tools.js';

const QEMU = 'qemu-system-x86_64';
const BIOS = ['/usr/share/seabios/bios-256k.bin', '/usr/share/qemu/bios-256k.bin'].find((p) => existsSync(p));
const qemuMissing = spawnSync(QEMU, ['--version']).error ? `${QEMU} is not installed (Debian: qemu-system-x86)` : !BIOS ? 'SeaBIOS bios-256k.bin not found (Debian: seabios)' : false;
if (qemuMissing) console.log(`skipping the QEMU -tpmdev emulator test: ${qemuMissing}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs SeaBIOS against `impl` until it gives up booting; returns the state dir holding what it measured. */
async function biosMeasurements(impl: Impl): Promise<string> {
  const stateDir = makeTempDir();
  const ctrl = path.join(makeTempDir('vtpmd-sock-'), 'ctrl.sock');
  const args = ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--ctrl', `type=unixio,path=${ctrl}`];
  const tpm = impl === 'vtpmd' ? spawn(process.execPath, [VTPMD_MAIN, ...args], { stdio: 'ignore' }) : spawn('swtpm', args, { stdio: 'ignore' });
  const tpmExit = new Promise((r) => tpm.once('exit', r));
  registerCleanup(async () => {
    if (tpm.exitCode === null && tpm.signalCode === null) tpm.kill('SIGKILL');
  });
  for (let i = 0; !existsSync(ctrl); i++) {
    if (i > 400) throw new Error(`${impl} did not create ${ctrl}`);
    await sleep(25);
  }
  const log = path.join(stateDir, '..', `${path.basename(stateDir)}-bios.log`);
  const qemu = spawn(QEMU, [
    '-machine', 'q35', '-accel', 'tcg', '-nographic', '-nodefaults', '-no-user-config', '-m', '128',
    '-bios', BIOS!, '-serial', 'none', '-monitor', 'none',
    '-chardev', `socket,id=chrtpm,path=${ctrl}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', 'tpm-tis,tpmdev=tpm0',
    '-debugcon', `file:${log}`, '-global', 'isa-debugcon.iobase=0x402',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let qemuErr = '';
  qemu.stderr.on('data', (d) => (qemuErr += d));
  const qemuExit = new Promise((r) => qemu.once('exit', r));
  registerCleanup(async () => {
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
  });
  for (let i = 0; ; i++) {
    if (existsSync(log) && readFileSync(log, 'latin1').includes('No bootable device')) break;
    if (qemu.exitCode !== null) throw new Error(`QEMU exited early: ${qemuErr}`);
    if (i > 1200) throw new Error(`SeaBIOS did not finish within 30 s; QEMU: ${qemuErr}`);
    await sleep(25);
  }
  qemu.kill('SIGKILL');
  await qemuExit;
  for (const op of ['-v', '-s']) {
    const r = await swtpmIoctl({ ctrlPath: ctrl }, [op]);
    expect(r.code, `${impl}: swtpm_ioctl ${op}: ${r.stdout}${r.stderr}`).toBe(0);
  }
  await Promise.race([tpmExit, sleep(10_000)]);
  expect(tpm.exitCode, `${impl} should exit after CMD_SHUTDOWN`).toBe(0);
  return stateDir;
}

async function pcrs(impl: Impl, stateDir: string): Promise<Map<string, Map<number, string>>> {
  const d = await startDaemon({ impl, stateDir, flags: ['not-need-init'] }); // resumes from the volatile state
  const out = parsePcrReadOutput((await tpm2ok('pcrread', d.tcti, ['sha1:0,1,2,3,4,5,6,7+sha256:0,1,2,3,4,5,6,7'])).stdout);
  await d.stop();
  return out;
}

describe.skipIf(qemuMissing !== false || !vtpmdAvailable() || !swtpmAvailable())('QEMU -tpmdev emulator with SeaBIOS, vtpmd vs swtpm', () => {
  it('PCRs 0-7 after SeaBIOS (stored with STORE_VOLATILE, read after a restart) are identical', async () => {
    const v = await pcrs('vtpmd', await biosMeasurements('vtpmd'));
    const s = await pcrs('swtpm', await biosMeasurements('swtpm'));
    expect(v.get('sha256')!.get(0)).not.toBe('00'.repeat(32));
    expect([...v.get('sha256')!.entries()]).toEqual([...s.get('sha256')!.entries()]);
    expect([...v.get('sha1')!.entries()]).toEqual([...s.get('sha1')!.entries()]);
    console.log(`[qemu] PCR0 sha256 vtpmd = swtpm = ${v.get('sha256')!.get(0)}`);
  }, 120_000);
});
