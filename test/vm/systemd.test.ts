// The host service for real: a QEMU TCG guest boots the host's own systemd as PID 1 (on an overlay
// of the host's root, with systemd-udevd), and systemd-scenario.sh installs vtpmd with
// scripts/install and drives vtpmd@vm1 and vtpmd-socket@vm2 with systemctl, as an operator
// would: provisioning on the first start, the udev owner/mode/link, tpm2-tools through the device,
// state kept across a stop and a SIGKILL (Restart=on-failure). Skipped only when QEMU cannot run.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { guestTest, stepReaders } from './guest-results.js';
import { removeShare, runScenario, type GuestRun } from './guest-runner.js';

const GUEST_LIMIT_S = 900;

let run: GuestRun | undefined;
let share = '';
let skipReason: string | null = null;

const { out, rc, num } = stepReaders(() => share);
/** `systemctl show -p ...` output as a record. */
const show = (name: string) =>
  Object.fromEntries(
    out(name)
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;

beforeAll(async () => {
  run = await runScenario('systemd-scenario.sh', GUEST_LIMIT_S, { systemd: true });
  share = run.share;
  skipReason = run.skipReason;
  if (skipReason) return;
  const t = (a: string, b: string) => (num(b) - num(a)).toFixed(1);
  console.log(
    `test/vm systemd: guest total ${run.seconds.toFixed(1)} s (boot to scenario and shutdown ≈ ${(run.seconds - (num('t4') - num('t0'))).toFixed(1)} s); ` +
      `install ${t('t0', 't1')} s, first start with provisioning ${t('t1', 't2')} s, CUSE unit ${t('t2', 't3')} s, socket unit ${t('t3', 't4')} s`,
  );
}, (GUEST_LIMIT_S + 90) * 1000);

afterAll(() => removeShare(run));

describe('vtpmd@vm1 and vtpmd-socket@vm2 under systemd as PID 1 in a QEMU guest', () => {
  const test = guestTest(() => skipReason);

  test('the guest runs systemd as PID 1, and scripts/install installs and reloads', () => {
    expect(out('pid1').trim()).toBe('systemd');
    expect(rc('install'), out('install')).toBe(0);
    expect(out('install')).toContain('installed /etc/udev/rules.d/70-vtpmd.rules');
  });

  test('the first start provisions the state (ExecStartPre vtpmd setup) and the unit is ready', () => {
    expect(rc('stateBefore')).not.toBe(0);
    expect(rc('start1'), out('start1')).toBe(0);
    const s = show('show1');
    expect(s.ActiveState).toBe('active');
    expect(s.SubState).toBe('running');
    expect(s.StatusText).toContain('/dev/vtpm-vm1');
    expect(out('stateDir').trim()).toBe('700 root');
    expect(out('stateFiles')).toContain('tpm2-00.permall');
    // The daemon sees its own node appear, though DevicePolicy=closed denies it access(2) to it.
    expect(out('journal')).not.toContain('did not appear');
    expect(out('journal')).toContain('Starting vTPM manufacturing in /var/lib/vtpmd/vm1');
    expect(out('journal')).toContain('Successfully created RSA 2048 EK with handle 0x81010001.');
  });

  test('udev: /dev/vtpm-vm1 is root:kvm 0660 with the link /dev/vtpm/vm1 as soon as systemctl start returns', () => {
    expect(out('kvmGid')).toMatch(/^kvm:/);
    expect(out('devAtStart').trim()).toBe('root:kvm 660 character special file');
    expect(out('linkAtStart').trim()).toBe('../vtpm-vm1');
  });

  test('tpm2-tools through /dev/vtpm/vm1: random, PCR extend, the provisioned EK and its certificate', () => {
    expect(rc('startup1'), out('startup1')).toBe(0);
    expect(out('random1').trim()).toMatch(/^[0-9a-f]{32}$/);
    expect(rc('extend1'), out('extend1')).toBe(0);
    const digest = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    const pcr16 = createHash('sha256').update(Buffer.concat([Buffer.alloc(32), digest])).digest('hex').toUpperCase();
    expect(out('pcr1')).toContain(`15: 0x${pcr16}`);
    expect(out('pcr1')).toContain(`16: 0x${pcr16}`);
    expect(rc('ekPub1'), out('ekPub1')).toBe(0);
    expect(rc('ekCert1'), out('ekCert1')).toBe(0);
    expect(out('ekCertSubject')).toMatch(/^issuer=.+/);
    // The certificate in NV certifies the persistent EK.
    expect(rc('ekCertKeyIsEk'), out('ekCertKeyIsEk')).toBe(0);
    expect(rc('nvDefine'), out('nvDefine')).toBe(0);
    expect(rc('nvWrite1'), out('nvWrite1')).toBe(0);
  });

  test('systemctl stop: a clean exit, the device and its link are gone, the state stays', () => {
    expect(rc('stop1'), out('stop1')).toBe(0);
    const s = show('show2');
    expect(s.ActiveState).toBe('inactive');
    expect(s.Result).toBe('success');
    expect(rc('devGone')).not.toBe(0);
    expect(rc('linkGone')).not.toBe(0);
    expect(out('stateFilesStopped')).toContain('tpm2-00.permall');
    // Shutdown(STATE) keeps its saved state in the permanent file; no volatile file is written.
    // The journal stays allocated for the next start (its records folded into the permall).
    expect(out('stateFilesStopped').trim().split('\n')).toEqual(['tpm2-00.permall', 'tpm2-00.permall.journal']);
  });

  test('the second start keeps the state: Startup(STATE) resumes PCR 15, same EK, EK certificate and NV data', () => {
    expect(rc('start2'), out('start2')).toBe(0);
    expect(show('show3').ActiveState).toBe('active');
    expect(rc('startup2'), out('startup2')).toBe(0);
    // PCR 0-15 are restored on a resume; PCR 16 (debug) is not, as in the reference's PCR table.
    expect(out('pcr2')).toMatch(/^ +15: 0x(.{64})$/m);
    expect(/^ +15: 0x(.{64})$/m.exec(out('pcr2'))![1]).toBe(/^ +15: 0x(.{64})$/m.exec(out('pcr1'))![1]);
    expect(out('pcr2')).toContain(`16: 0x${'0'.repeat(64)}`);
    expect(rc('ekSame2'), out('ekSame2')).toBe(0);
    expect(rc('ekCertSame2'), out('ekCertSame2')).toBe(0);
    expect(rc('nvSame2'), out('nvSame2')).toBe(0);
    expect(out('journal')).toContain('not overwriting it (--not-overwrite)');
  });

  test('SIGKILL: Restart=on-failure brings the daemon back with what it had persisted', () => {
    expect(rc('kill'), out('kill')).toBe(0);
    expect(rc('restarted')).toBe(0);
    const s = show('show4');
    expect(s.ActiveState).toBe('active');
    expect(s.NRestarts).toBe('1');
    expect(Number(s.MainPID)).toBeGreaterThan(0);
    expect(Number(s.MainPID)).not.toBe(num('pidBeforeKill'));
    expect(out('devAfterCrash').trim()).toBe('root:kvm 660 character special file');
    // No orderly shutdown before the crash: a resume is refused, a fresh start works.
    expect(rc('startupStateAfterCrash')).not.toBe(0);
    expect(rc('startup3'), out('startup3')).toBe(0);
    expect(out('random3').trim()).toMatch(/^[0-9a-f]{32}$/);
    expect(rc('ekSame3'), out('ekSame3')).toBe(0);
    // The NV write answered before the kill was on disk.
    expect(rc('nvSame3'), out('nvSame3')).toBe(0);
    expect(rc('stop3'), out('stop3')).toBe(0);
    expect(show('show5').Result).toBe('success');
  });

  test('systemd-analyze security rates the running vtpmd@vm1 OK', () => {
    const m = /Overall exposure level for vtpmd@vm1\.service: (\d+\.\d+) (\w+)/.exec(out('security'));
    expect(m, out('security')).not.toBeNull();
    console.log(`test/vm systemd: live exposure vtpmd@vm1 ${m![1]} ${m![2]}`);
    expect(['SAFE', 'OK']).toContain(m![2]);
  });

  test('vtpmd-socket@vm2: sockets root:kvm 0660, QEMU-style INIT on the control socket, tpm2-tools over swtpm:path=', () => {
    expect(rc('sockStart'), out('sockStart')).toBe(0);
    expect(show('sockShow1').ActiveState).toBe('active');
    expect(out('sockPerm')).toMatch(/^\/run\/vtpmd\/vm2\/tpm\.sock root:kvm 660 socket$/m);
    expect(out('sockPerm')).toMatch(/^\/run\/vtpmd\/vm2\/tpm\.sock\.ctrl root:kvm 660 socket$/m);
    expect(rc('sockInit'), out('sockInit')).toBe(0);
    expect(rc('sockStartup'), out('sockStartup')).toBe(0);
    expect(out('sockRandom').trim()).toMatch(/^[0-9a-f]{32}$/);
    expect(rc('sockEkCert'), out('sockEkCert')).toBe(0);
    expect(out('sockEkCertSubject')).toMatch(/^issuer=.+/);
    const m = /Overall exposure level for vtpmd-socket@vm2\.service: (\d+\.\d+) (\w+)/.exec(out('sockSecurity'));
    expect(m, out('sockSecurity')).not.toBeNull();
    console.log(`test/vm systemd: live exposure vtpmd-socket@vm2 ${m![1]} ${m![2]}`);
    expect(rc('sockStop'), out('sockStop')).toBe(0);
    expect(show('sockShow2').Result).toBe('success');
    expect(rc('sockGone')).not.toBe(0);
  });

  test('no vtpmd unit failed', () => {
    expect(out('failedAtEnd')).not.toMatch(/vtpmd/);
  });
});
