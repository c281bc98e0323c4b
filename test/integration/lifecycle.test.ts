// TPM2_Shutdown / daemon restart on the same state dir / TPM2_Startup: Resume (STATE/STATE),
// Reset (CLEAR), the refused Startup(STATE) after Shutdown(CLEAR) or a crash.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { type Daemon, describeImpls, type Impl, makeTempDir, startDaemon } from '../helpers/daemon.js';
import { parsePcrReadOutput, parseYamlScalars, swtpmIoctl, tpm2, tpm2ok } from '../helpers/tools.js';
import { cmd, dataTarget, RC, transmitOnce } from '../helpers/tpm.js';

const DIGEST = '11'.repeat(32);

async function pcr10(tcti: string): Promise<string> {
  const r = await tpm2ok('pcrread', tcti, ['sha256:10']);
  return parsePcrReadOutput(r.stdout).get('sha256')!.get(10)!;
}
async function clock(tcti: string): Promise<Map<string, string>> {
  return parseYamlScalars((await tpm2ok('readclock', tcti)).stdout);
}
/** A daemon on stateDir that is powered on without a CMD_INIT. */
function startPowered(impl: Impl, stateDir: string, flags: string[] = []): Promise<Daemon> {
  return startDaemon({ impl, flags: ['not-need-init', ...flags], stateDir });
}
/** A powered daemon after Startup(CLEAR) with PCR 10 extended by DIGEST. */
async function startExtended(impl: Impl, stateDir: string): Promise<Daemon> {
  const d = await startPowered(impl, stateDir);
  await tpm2ok('startup', d.tcti, ['-c']);
  await tpm2ok('pcrextend', d.tcti, [`10:sha256=${DIGEST}`]);
  return d;
}

describeImpls('shutdown, restart, startup', (impl) => {
  it('Shutdown(STATE) + restart + Startup(STATE) keeps PCRs and counts a restart', async () => {
    const stateDir = makeTempDir();
    let d = await startExtended(impl, stateDir);
    const before = await pcr10(d.tcti);
    expect(before).not.toBe('00'.repeat(32));
    const c0 = await clock(d.tcti);
    await tpm2ok('shutdown', d.tcti); // default: SU_STATE
    await d.stop();

    d = await startPowered(impl, stateDir);
    await tpm2ok('startup', d.tcti); // SU_STATE: TPM Restart
    expect(await pcr10(d.tcti)).toBe(before);
    const c1 = await clock(d.tcti);
    expect(c1.get('reset_count')).toBe(c0.get('reset_count'));
    expect(Number(c1.get('restart_count'))).toBe(Number(c0.get('restart_count')) + 1);
    expect(c1.get('safe')).toBe('yes');
    // the clock survives the restart
    expect(Number(c1.get('clock'))).toBeGreaterThanOrEqual(Number(c0.get('clock')));
  });

  it('Shutdown(CLEAR) + restart: Startup(STATE) is refused (0x1C4), Startup(CLEAR) resets PCRs', async () => {
    const stateDir = makeTempDir();
    let d = await startExtended(impl, stateDir);
    const c0 = await clock(d.tcti);
    await tpm2ok('shutdown', d.tcti, ['-c']);
    await d.stop();

    d = await startPowered(impl, stateDir);
    const bad = await tpm2('startup', d.tcti);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/0x1C4/i); // TPM_RC_VALUE + TPM_RC_P + TPM_RC_1
    await tpm2ok('startup', d.tcti, ['-c']);
    expect(await pcr10(d.tcti)).toBe('00'.repeat(32));
    const c1 = await clock(d.tcti);
    expect(Number(c1.get('reset_count'))).toBe(Number(c0.get('reset_count')) + 1);
    expect(c1.get('restart_count')).toBe('0');
    expect(c1.get('safe')).toBe('yes');
  });

  it('after a crash (SIGKILL, no Shutdown) Startup(STATE) is refused and Startup(CLEAR) works, clock not safe', async () => {
    const stateDir = makeTempDir();
    let d = await startExtended(impl, stateDir);
    await d.kill();

    d = await startPowered(impl, stateDir);
    const bad = await tpm2('startup', d.tcti);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/0x1C4/i);
    // before a successful Startup every other command gets TPM_RC_INITIALIZE
    const rc = await tpm2('getrandom', d.tcti, ['8']);
    expect(rc.code).not.toBe(0);
    expect(rc.stderr).toMatch(/0x100\b|not initialized/i);
    await tpm2ok('startup', d.tcti, ['-c']);
    expect(await pcr10(d.tcti)).toBe('00'.repeat(32));
    expect((await clock(d.tcti)).get('safe')).toBe('no');
  });

  it('state survives many restarts (permanent state written and reloaded)', async () => {
    const stateDir = makeTempDir();
    for (let i = 0; i < 3; i++) {
      const d = await startPowered(impl, stateDir);
      await tpm2ok('startup', d.tcti, i === 0 ? ['-c'] : []);
      expect((await tpm2ok('getrandom', d.tcti, ['8'])).stdoutBytes.length).toBe(8);
      await tpm2ok('shutdown', d.tcti);
      await d.stop();
    }
  });
});

// swtpm ≥ 0.8 sends TPM2_Shutdown(SU_STATE) itself when it exits on SIGTERM (swtpm-compat.md §2);
// Debian's swtpm 0.7.1 does not (Startup(STATE) then fails with 0x1C4), so this is vtpmd-only.
describeImpls('auto-shutdown on SIGTERM', (impl) => {
  it('SIGTERM without TPM2_Shutdown: a later Startup(STATE) resumes with PCRs kept', async () => {
    const stateDir = makeTempDir();
    let d = await startExtended(impl, stateDir);
    const before = await pcr10(d.tcti);
    await d.stop();
    d = await startPowered(impl, stateDir);
    await tpm2ok('startup', d.tcti);
    expect(await pcr10(d.tcti)).toBe(before);
  });
}, ['vtpmd']);

describeImpls('volatile state across a daemon restart', (impl) => {
  it('-v, SHUTDOWN, restart, -i: PCRs unchanged, no Startup needed, volatile file gone', async () => {
    const stateDir = makeTempDir();
    let d = await startExtended(impl, stateDir);
    const before = await pcr10(d.tcti);
    expect((await swtpmIoctl(d, ['-v'])).code).toBe(0);
    const volatileFile = path.join(stateDir, 'tpm2-00.volatilestate');
    expect(existsSync(volatileFile)).toBe(true);
    expect((await swtpmIoctl(d, ['-s'])).code).toBe(0);
    await d.exited;

    d = await startDaemon({ impl, stateDir }); // no not-need-init: INIT comes from -i
    expect((await swtpmIoctl(d, ['-i'])).code).toBe(0);
    expect(await pcr10(d.tcti)).toBe(before);
    expect((await transmitOnce(dataTarget(d), cmd.startup())).rc).toBe(RC.INITIALIZE); // already started
    expect(existsSync(volatileFile)).toBe(false);
  });

  it('--flags not-need-init with a leftover volatile file resumes from it and keeps the file', async () => {
    const stateDir = makeTempDir();
    let d = await startExtended(impl, stateDir);
    const before = await pcr10(d.tcti);
    expect((await swtpmIoctl(d, ['-v'])).code).toBe(0);
    expect((await swtpmIoctl(d, ['-s'])).code).toBe(0);
    await d.exited;

    d = await startPowered(impl, stateDir);
    expect(await pcr10(d.tcti)).toBe(before);
    expect(existsSync(path.join(stateDir, 'tpm2-00.volatilestate'))).toBe(true);
  });

  it('--flags startup-state (or startup-clear) after TPM2_Shutdown(STATE) and -v: the resumed TPM is served, no Startup is sent', async () => {
    const stateDir = makeTempDir();
    let d = await startPowered(impl, stateDir, ['startup-clear']);
    await tpm2ok('pcrextend', d.tcti, [`10:sha256=${DIGEST}`]);
    const before = await pcr10(d.tcti);
    await tpm2ok('shutdown', d.tcti, []);
    expect((await swtpmIoctl(d, ['-v'])).code).toBe(0);
    await d.stop();

    for (const startup of ['startup-state', 'startup-clear']) {
      d = await startPowered(impl, stateDir, [startup]);
      // The volatile state put the TPM back as it was, started: PCR 10 kept, a Startup now refused.
      expect(await pcr10(d.tcti)).toBe(before);
      expect((await transmitOnce(dataTarget(d), cmd.startup())).rc).toBe(RC.INITIALIZE);
      await d.stop();
    }
  });
});
