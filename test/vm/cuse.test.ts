// vtpmd cuse in a real kernel: one QEMU TCG guest (Debian's kernel, CONFIG_CUSE=m) boots once
// for this file and runs cuse-scenario.sh with the host's own node, swtpm_ioctl and tpm2-tools;
// the tests check each step's output. Skipped, with the reason printed, only when QEMU cannot run.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { capabilities } from '../../src/control/handlers.js';
import { guestTest, stepReaders } from './guest-results.js';
import { removeShare, runScenario, type GuestRun } from './guest-runner.js';

// A TCG guest on a loaded two-core host took over 420 s; idle it takes about 70 s.
const GUEST_LIMIT_S = 900;

let run: GuestRun | undefined;
let share = '';
let skipReason: string | null = null;

const { out, rc, num } = stepReaders(() => share);

beforeAll(async () => {
  run = await runScenario('cuse-scenario.sh', GUEST_LIMIT_S);
  share = run.share;
  skipReason = run.skipReason;
  if (skipReason) return;
  const scenario = num('t2') - num('t0');
  console.log(`test/vm: guest total ${run.seconds.toFixed(1)} s (boot and shutdown ≈ ${(run.seconds - scenario).toFixed(1)} s, scenario ${scenario.toFixed(1)} s)`);
}, (GUEST_LIMIT_S + 90) * 1000);

afterAll(() => removeShare(run));

describe('vtpmd cuse in a QEMU guest', () => {
  const test = guestTest(() => skipReason);

  test('start-up: /dev/vtpm0 appears as a character device, the pid file holds the pid', () => {
    expect(rc('node')).toBe(0);
    expect(out('node')).toMatch(/^c[rw-]{9} .* \/dev\/vtpm0\n$/);
    expect(out('pidfile')).toBe(out('pid').trim());
  });

  test('clear errors: no --tpm2, a taken name, no access to /dev/cuse', () => {
    expect(rc('noTpm2')).toBe(1);
    expect(out('noTpm2')).toContain('pass --tpm2');
    expect(rc('nameTaken')).toBe(1);
    expect(out('nameTaken')).toContain('/dev/vtpm0 already exists');
    expect(rc('noAccess')).toBe(1);
    expect(out('noAccess')).toContain('cannot open /dev/cuse: permission denied');
  });

  test('swtpm_ioctl -c reports the CUSE capability mask (what is implemented, no SET_DATAFD)', () => {
    const caps = capabilities({ fdPassing: false });
    expect(out('caps').trim()).toBe(`ptm capability is 0x${caps.toString(16)}`);
    expect(caps & ~0x16fff).toBe(0);
  });

  test('before INIT a TPM command fails with 0x101; after -i and Startup, tpm2-tools work', () => {
    expect(rc('randomBeforeInit')).not.toBe(0);
    expect(out('randomBeforeInit')).toMatch(/0x101/);
    expect(rc('init')).toBe(0);
    expect(rc('startup')).toBe(0);
    expect(rc('random')).toBe(0);
    expect(out('random').trim()).toMatch(/^[0-9a-f]{32}$/);
  });

  test('tpm2_pcrextend + tpm2_pcrread: PCR 16 = SHA256(0^32 || digest)', () => {
    expect(rc('extend')).toBe(0);
    const digest = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    const want = createHash('sha256').update(Buffer.concat([Buffer.alloc(32), digest])).digest('hex').toUpperCase();
    expect(out('pcrread')).toContain(`16: 0x${want}`);
  });

  test('locality: -l 2 applies to later commands (PCR_Reset(20) works at 2, 0x907 at 1)', () => {
    expect(rc('loc2')).toBe(0);
    expect(rc('pcrReset20Loc2')).toBe(0);
    expect(rc('loc1')).toBe(0);
    expect(rc('pcrReset20Loc1')).not.toBe(0);
    expect(out('pcrReset20Loc1')).toMatch(/0x907/);
    expect(rc('loc0')).toBe(0);
  });

  test('tpmEstablished: 0, 1 after -h, 0 after -r 3', () => {
    expect(out('estBefore')).toContain('tpmEstablished is 0');
    expect(rc('hash')).toBe(0);
    expect(out('estAfterHash')).toContain('tpmEstablished is 1');
    expect(rc('resetEst')).toBe(0);
    expect(out('estAfterReset')).toContain('tpmEstablished is 0');
  });

  test('--info 1 and -b 0 answer', () => {
    expect(rc('info')).toBe(0);
    expect(out('info')).toContain('"TPMSpecification"');
    expect(rc('bufsize')).toBe(0);
    expect(out('bufsize')).toContain('4096');
  });

  test('read/write semantics: EBUSY for a second open, partial reads, leftover dropped, 4096-byte truncation', () => {
    expect(out('bigWrite')).toBe('4096\n');
    expect(rc('partial')).toBe(0);
    expect(JSON.parse(out('partial'))).toEqual({
      secondOpen: 'EBUSY',
      writeSize: 12,
      first4: '80010000',
      rest: 24,
      afterUsedUp: 0,
      afterDrop: '80010000000a00000100',
      reopen: 'ok',
    });
  });

  test('state: -v writes volatilestate; --save permanent, --stop (then 0x101), --load permanent, -i, Startup', () => {
    expect(rc('saveVolatileFile')).toBe(0);
    expect(rc('volatileExists')).toBe(0);
    expect(rc('savePermanent')).toBe(0);
    expect(fs.statSync(path.join(share, 'permanent.bin')).size).toBeGreaterThan(100);
    expect(rc('stop')).toBe(0);
    expect(out('randomStopped')).toMatch(/0x101/);
    expect(rc('loadPermanent')).toBe(0);
    expect(rc('initAfterLoad')).toBe(0);
    expect(rc('startupAfterLoad')).toBe(0);
    expect(out('randomAfterLoad').trim()).toMatch(/^[0-9a-f]{16}$/);
  });

  test('throughput: the device path (WRITE and READ answered by the addon) against the socket path over TCP and over a unix socket', () => {
    expect(rc('throughput'), out('throughput')).toBe(0);
    expect(rc('throughputUnix'), out('throughputUnix')).toBe(0);
    const log = fs.readFileSync(path.join(share, 'vtpmd.log'), 'utf8');
    expect(log).toContain('cuse: reading requests through the event loop');
    type Rates = Record<'device' | 'socket', { getRandom: number; pcrExtend: number }> & {
      ops: number;
      commandsPerPath: number;
      cpuPerCommandUs?: Record<'device' | 'socket', { user: number; system: number }>;
    };
    const runs: [string, Rates][] = [
      ['TCP', JSON.parse(out('throughput')) as Rates],
      ['unix', JSON.parse(out('throughputUnix')) as Rates],
    ];
    for (const [kind, t] of runs) {
      const ratio = (w: 'getRandom' | 'pcrExtend') => (t.device[w] / t.socket[w]).toFixed(2);
      console.log(`test/vm throughput (ops/s) against ${kind}: device GetRandom ${t.device.getRandom}, PCR_Extend ${t.device.pcrExtend}; socket GetRandom ${t.socket.getRandom}, PCR_Extend ${t.socket.pcrExtend}; device/socket ${ratio('getRandom')}/${ratio('pcrExtend')}`);
      const cpu = t.cpuPerCommandUs;
      if (cpu) console.log(`test/vm daemon CPU per command against ${kind} (µs user+system): device ${cpu.device.user}+${cpu.device.system}, socket ${cpu.socket.user}+${cpu.socket.system}`);
      // Both paths with the same blocking client (as QEMU's passthrough and emulator backends), in
      // many short alternating rounds, so changes in the host's load hit both. On the idle 2-core
      // host, device/socket (GetRandom/PCR_Extend) against TCP 0.95-1.31 / 0.97-1.11, against a
      // unix socket 0.72-0.95 / 0.71-1.21 (README: a CUSE command is two exchanges with the
      // daemon). A TCG guest's timing moves with the host's load, so the bound only catches a
      // path that has become pathologically slow.
      expect(t.device.getRandom).toBeGreaterThanOrEqual(0.5 * t.socket.getRandom);
      expect(t.device.pcrExtend).toBeGreaterThanOrEqual(0.5 * t.socket.pcrExtend);
    }
    // The mechanism, counted by the addon and logged at shutdown: every command of both runs
    // (their warm-up rounds too) had its WRITE and its READ answered without JS.
    const stats = /cuse: the addon answered (\d+) WRITEs and (\d+) READs without JS; the client's READ was queued already after (\d+) WRITEs/.exec(log);
    expect(stats).not.toBeNull();
    const [answered, served, queued] = stats!.slice(1).map(Number) as [number, number, number];
    console.log(`test/vm addon: ${answered} WRITEs and ${served} READs answered without JS; READ queued at once after ${queued}`);
    const commands = runs.reduce((n, [, t]) => n + t.commandsPerPath, 0);
    expect(answered).toBeGreaterThanOrEqual(commands);
    expect(served).toBeGreaterThanOrEqual(commands);
  });

  test('udev: 70-vtpmd.rules gives /dev/vtpm-vm1 root:kvm 0660 and the link /dev/vtpm/vm1', () => {
    expect(rc('started3')).toBe(0);
    expect(rc('udevTest')).toBe(0);
    const kvm = out('kvmGid').split(':')[2];
    const log = out('udevTest');
    expect(log).toMatch(/70-vtpmd\.rules:\d+ OWNER 0\n/);
    expect(log).toMatch(new RegExp(`70-vtpmd\\.rules:\\d+ GROUP ${kvm}\\n`));
    expect(log).toMatch(/70-vtpmd\.rules:\d+ MODE 0660\n/);
    expect(log).toMatch(/^DEVLINKS=\/dev\/vtpm\/vm1$/m);
    expect(out('udevLink')).toMatch(/^crw-rw---- 1 root kvm .* \/dev\/vtpm\/vm1\n$/);
    expect(rc('exited3')).toBe(0);
  });

  test('--runas nobody --daemon: returns once the device exists, the daemon runs as uid 65534 and writes its state as that user; SIGTERM removes the node', () => {
    expect(rc('runasStart'), out('runasStart')).toBe(0);
    expect(out('runasDevice')).toMatch(/^c/);
    expect(out('runasUid').trim()).toBe('65534');
    expect(rc('runasRandom'), out('runasRandom')).toBe(0);
    expect(rc('runasNvDefine'), out('runasNvDefine')).toBe(0);
    // Written as root at power-on, the state files became nobody's before it dropped root; the
    // NV index went into the journal as nobody.
    expect(out('runasFiles')).toBe('65534 .lock\n65534 tpm2-00.permall\n65534 tpm2-00.permall.journal\n');
    expect(rc('runasGone')).toBe(0);
  });

  test('--chroot /tmp/chr --daemon: /dev/cuse, the state and the pid file inside the chroot; the device serves outside it; SIGTERM removes the node', () => {
    expect(rc('chrootStart'), out('chrootStart')).toBe(0);
    expect(out('chrootRoot').trim()).toBe('/tmp/chr');
    expect(rc('chrootRandom'), out('chrootRandom')).toBe(0);
    expect(out('chrootRandom').trim()).toMatch(/^[0-9a-f]{16}$/);
    expect(out('chrootFiles')).toContain('tpm2-00.permall');
    expect(rc('chrootGone')).toBe(0);
  });

  test('swtpm_ioctl -s: the process ends with 0, /dev/vtpm0 and the pid file are gone', () => {
    expect(rc('shutdown')).toBe(0);
    expect(num('exited.rc')).toBe(0);
    expect(num('exitcode.out')).toBe(0);
    expect(rc('nodeGone')).not.toBe(0);
    expect(rc('pidfileGone')).not.toBe(0);
  });

  test('thread-pool reader, -M 240 -m 7, --flags startup-clear; SIGTERM removes the node, exit code 0', () => {
    expect(num('started2.rc')).toBe(0);
    expect(out('node2')).toMatch(/^c[rw-]{9} .* 240, +7 .*\/dev\/vtpm0\n$/);
    expect(fs.readFileSync(path.join(share, 'vtpmd2.log'), 'utf8')).not.toContain('through the event loop');
    expect(rc('throughputThreadpool')).toBe(0);
    const t = JSON.parse(out('throughputThreadpool')) as Record<'device' | 'socket', { getRandom: number; pcrExtend: number }>;
    console.log(`test/vm throughput, thread-pool reader (ops/s): device GetRandom ${t.device.getRandom}, PCR_Extend ${t.device.pcrExtend}; socket GetRandom ${t.socket.getRandom}, PCR_Extend ${t.socket.pcrExtend}`);
    expect(rc('randomStartupClear')).toBe(0);
    expect(num('exited2.rc')).toBe(0);
    expect(num('exitcode2.out')).toBe(0);
    expect(rc('nodeGone2')).not.toBe(0);
  });

  test('tpm2_createprimary through the device: an RSA-2048 storage key, the same one again from the same seed', () => {
    expect(rc('createprimary'), out('createprimary')).toBe(0);
    expect(out('createprimary')).toMatch(/^type:\n {2}value: rsa\n/m);
    expect(out('createprimary')).toMatch(/^bits: 2048$/m);
    expect(out('createprimary')).toMatch(/restricted\|decrypt/);
    for (const flush of ['flush1', 'flush2', 'flush3', 'flush4']) expect(rc(flush), out(flush)).toBe(0);
    expect(rc('primaryPublic'), out('primaryPublic')).toBe(0);
    expect(rc('createprimaryAgain'), out('createprimaryAgain')).toBe(0);
    expect(rc('primaryPublicAgain'), out('primaryPublicAgain')).toBe(0);
    const name = (step: string) => /^name: ([0-9a-f]{68})$/m.exec(out(step))?.[1];
    expect(name('primaryPublic')).toMatch(/^000b/);
    expect(name('primaryPublicAgain')).toBe(name('primaryPublic'));
  });
});
