/**
 * TPM profiles end to end: real tpm2-tools against `vtpmd socket --profile ...`, swtpm_ioctl's
 * GET_INFO, and `vtpmd setup` with a profile followed by a daemon on that state. Debian's swtpm
 * is 0.7.1 (libtpms 0.9), which has no profiles, so there is no differential run.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_COMMANDS } from '../../src/tpm/commands/index.js';
import { TPM_CC } from '../../src/tpm/constants.js';
import { DEFAULT_PROFILE, formatCommandRanges } from '../../src/tpm/profile.js';
import { makeTempDir, startDaemon, VTPMD_MAIN, vtpmdAvailable } from '../helpers/daemon.js';
import { run, swtpmIoctl, tpm2, tpm2ok } from '../helpers/tools.js';

/** A custom profile without GetRandom, SHA-1 and P-521. */
const RESTRICTED = JSON.stringify({
  Name: 'custom:no-random',
  Commands: formatCommandRanges(ALL_COMMANDS.map((c) => c.code).filter((c) => c !== TPM_CC.GetRandom)),
  Algorithms: DEFAULT_PROFILE.algorithms.split(',').filter((v) => v !== 'sha1' && v !== 'ecc-nist').concat('ecc-nist-p256', 'ecc-nist-p384').join(','),
});

const setup = (args: string[]) => run(process.execPath, [VTPMD_MAIN, 'setup', '--tpm2', ...args], { timeoutMs: 60_000 });

/** The algorithm names `tpm2_getcap algorithms` lists (top-level YAML keys). */
const algorithmNames = (yaml: string) => [...yaml.matchAll(/^(\w+):/gm)].map((m) => m[1]);

async function activeProfile(ctrlPort: number): Promise<{ Name: string; Commands: string; Algorithms: string }> {
  const r = await swtpmIoctl({ ctrlPort }, ['--info', '0x20']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { ActiveProfile: { Name: string; Commands: string; Algorithms: string } }).ActiveProfile;
}

describe.skipIf(!vtpmdAvailable())('TPM profiles with tpm2-tools', () => {
  it('vtpmd socket --profile profile=JSON: getcap shows the restriction, the disabled command and hash fail', async () => {
    const d = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], extraArgs: ['--profile', `profile=${RESTRICTED}`] });
    const cmds = (await tpm2ok('getcap', d.tcti, ['commands'])).stdout;
    expect(cmds).not.toMatch(/TPM2_CC_GetRandom:/);
    expect(cmds).toMatch(/TPM2_CC_StirRandom:/);
    const algs = algorithmNames((await tpm2ok('getcap', d.tcti, ['algorithms'])).stdout);
    expect(algs).not.toContain('sha1');
    expect(algs).toContain('sha256');
    expect(algs).toContain('sha512');
    expect((await tpm2ok('getcap', d.tcti, ['ecc-curves'])).stdout).not.toMatch(/NIST_P521/);

    const random = await tpm2('getrandom', d.tcti, ['--hex', '8']);
    expect(random.code).not.toBe(0);
    expect(random.stderr).toMatch(/0x143|command code not supported/i);
    const sha1 = await tpm2('pcrextend', d.tcti, [`16:sha1=${'00'.repeat(20)}`]);
    expect(sha1.code).not.toBe(0);
    expect(sha1.stderr).toMatch(/0x1c3|hash algorithm not supported/i);
    await tpm2ok('pcrextend', d.tcti, [`16:sha256=${'00'.repeat(32)}`]);
    const primary = await tpm2('createprimary', d.tcti, ['-C', 'o', '-g', 'sha1', '-G', 'ecc', '-c', path.join(makeTempDir(), 'p.ctx')]);
    expect(primary.code).not.toBe(0);
    expect(primary.stderr).toMatch(/0x2c3|hash algorithm not supported/i);

    const active = await activeProfile(d.ctrlPort);
    expect(active.Name).toBe('custom:no-random');
    expect(active.Commands).not.toContain('0x17a-');
    await d.stop();

    // After a restart on the same state, with another profile asked for: the stored one wins.
    const again = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], stateDir: d.stateDir, extraArgs: ['--profile', 'name=default-v1'] });
    expect((await tpm2('getrandom', again.tcti, ['--hex', '8'])).code).not.toBe(0);
    expect((await activeProfile(again.ctrlPort)).Name).toBe('custom:no-random');
    expect(again.output()).toMatch(/profile 'default-v1' asked for is not applied: the TPM keeps the profile 'custom:no-random'/);
    await again.stop();
  });

  it('without --profile a TPM has the default profile, and everything is listed', async () => {
    const d = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'] });
    await tpm2ok('getrandom', d.tcti, ['--hex', '8']);
    expect(algorithmNames((await tpm2ok('getcap', d.tcti, ['algorithms'])).stdout)).toContain('sha1');
    expect(await activeProfile(d.ctrlPort)).toEqual(JSON.parse(`{"Name":"default-v1","Commands":"${DEFAULT_PROFILE.commands}","Algorithms":"${DEFAULT_PROFILE.algorithms}","Description":"${DEFAULT_PROFILE.description}"}`));
    await d.stop();
  });

  it('vtpmd setup --profile-name / --profile-file: a daemon on the state keeps that profile', async () => {
    const named = path.join(makeTempDir(), 'state');
    const r1 = await setup(['--tpm-state', named, '--profile-name', 'builtin:custom', '--createek', '--ek1keyalgo', 'secp256r1', '--ek2keyalgo', 'secp256r1']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stdout).toMatch(/Active profile: custom/);
    const d1 = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], stateDir: named });
    expect((await activeProfile(d1.ctrlPort)).Name).toBe('custom');
    await tpm2ok('readpublic', d1.tcti, ['-c', '0x8101000a']);
    await d1.stop();

    const dir = makeTempDir();
    const file = path.join(dir, 'profile.json');
    writeFileSync(file, RESTRICTED);
    const state = path.join(dir, 'state');
    const r2 = await setup(['--tpm-state', state, '--profile-file', file]);
    expect(r2.code, r2.stderr).toBe(0);
    const d2 = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], stateDir: state });
    expect((await tpm2('getrandom', d2.tcti, ['--hex', '8'])).code).not.toBe(0);
    expect((await tpm2ok('getcap', d2.tcti, ['commands'])).stdout).not.toMatch(/TPM2_CC_GetRandom:/);
    expect((await activeProfile(d2.ctrlPort)).Name).toBe('custom:no-random');
    await d2.stop();

    const bad = await setup(['--tpm-state', path.join(dir, 'other'), '--profile', '{"Name":"custom","Algorithms":"rsa,tdes"}']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--profile: Algorithms: 'tdes' is not an algorithm vtpmd implements/);
  });

  it('--print-profiles prints the built-in profiles as swtpm does, without a newline', async () => {
    const r = await run(process.execPath, [VTPMD_MAIN, 'socket', '--tpm2', '--print-profiles']);
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('}')).toBe(true);
    const names = (JSON.parse(r.stdout) as { AvailableProfiles: { Name: string }[] }).AvailableProfiles.map((p) => p.Name);
    expect(names).toEqual(['default-v1', 'custom']);
    const s = await setup(['--print-profiles']);
    expect(s.code).toBe(0);
    expect((JSON.parse(s.stdout) as { builtin: { Name: string }[] }).builtin.map((p) => p.Name)).toEqual(names);
  });
});
