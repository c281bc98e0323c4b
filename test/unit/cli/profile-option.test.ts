/** The profile options of vtpmd socket/cuse and vtpmd setup, and GET_INFO's profile text. */
import { mkdtempSync, openSync, closeSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCuseConfig } from '../../../src/cli/cuse-config.js';
import { parseProfileOption, parseSetupProfile, setupPrintProfilesText } from '../../../src/cli/profile-option.js';
import { parseSetupArgs } from '../../../src/cli/setup-config.js';
import { parseSocketConfig } from '../../../src/cli/socket-config.js';
import { tpmInfoJson } from '../../../src/tpm/info.js';
import { DEFAULT_PROFILE, profileJson } from '../../../src/tpm/profile.js';

const base = { tpm2: true, tpmstate: 'dir=/tmp/s', server: 'type=tcp,port=2321' };

describe('--profile (socket, cuse)', () => {
  it('name=, profile= (a JSON map with commas), file= and fd= give the same checked profile', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpmd-profile-'));
    const json = '{"Name":"custom:x","Algorithms":"' + DEFAULT_PROFILE.algorithms.replace('sha1,', '') + '"}';
    const file = path.join(dir, 'p.json');
    writeFileSync(file, `${json}\n`);
    expect(parseProfileOption('name=default-v1')).toBe(DEFAULT_PROFILE);
    const fromJson = parseProfileOption(`profile=${json}`);
    expect(fromJson.name).toBe('custom:x');
    expect(parseProfileOption(`file=${file}`)).toEqual(fromJson);
    const fd = openSync(file, 'r');
    try {
      expect(parseProfileOption(`fd=${fd}`)).toEqual(fromJson);
    } finally {
      closeSync(fd);
    }
    expect(parseSocketConfig({ ...base, profile: `profile=${json}` }, {}).profile).toEqual(fromJson);
    expect(parseSocketConfig(base, {}).profile).toBeUndefined();
    expect(parseCuseConfig({ tpm2: true, name: 'vtpm0', tpmstate: 'dir=/tmp/s', profile: 'name=custom' }, {}).profile?.name).toBe('custom');
  });

  it('refuses what it cannot honour, naming the option', () => {
    expect(() => parseProfileOption('name=null')).toThrow(/--profile: unknown profile 'null'/);
    expect(() => parseProfileOption('name=custom,file=/x')).toThrow(/exactly one of name=, profile=, file= or fd=/);
    expect(() => parseProfileOption('name=custom,remove-disabled=check')).toThrow(/remove-disabled is not supported/);
    expect(() => parseProfileOption('file=/nonexistent/p.json')).toThrow(/cannot read the profile from \/nonexistent\/p.json: ENOENT/);
    expect(() => parseProfileOption('profile={"Name":"custom","Attributes":"fips-host"}')).toThrow(/no profile attributes/);
  });
});

describe('vtpmd setup profile options', () => {
  it('--profile, --profile-name [builtin:], --profile-file; one at a time; not with --reconfigure', () => {
    expect(parseSetupProfile({})).toBeUndefined();
    expect(parseSetupProfile({ profileName: 'builtin:default-v1' })).toBe(DEFAULT_PROFILE);
    expect(parseSetupProfile({ profile: '{"Name":"custom"}' })?.name).toBe('custom');
    expect(() => parseSetupProfile({ profileName: 'local:mine' })).toThrow(/no local profile directory/);
    expect(() => parseSetupProfile({ profile: '{"Name":"custom"}', profileName: 'custom' })).toThrow(/give only one of --profile, --profile-name/);
    expect(() => parseSetupProfile({ profileFileFd: 'x' })).toThrow(/--profile-file-fd: "x" is not a file descriptor number/);
    expect(parseSetupArgs({ tpm2: true, tpmState: '/s', profileName: 'custom' }).profile?.name).toBe('custom');
    expect(() => parseSetupArgs({ tpm2: true, tpmState: '/s', reconfigure: true, pcrBanks: 'sha256', profileName: 'custom' })).toThrow(/--reconfigure keeps the TPM's profile/);
    // swtpm_setup's map of profile sources, one line; vtpmd has only built-in profiles.
    const printed = setupPrintProfilesText();
    expect(printed.endsWith('}\n')).toBe(true);
    const { builtin } = JSON.parse(printed) as { builtin: { Name: string }[] };
    expect(Object.keys(JSON.parse(printed))).toEqual(['builtin']);
    expect(builtin[0]).toEqual(JSON.parse(profileJson(DEFAULT_PROFILE)));
    expect(builtin.map((p) => p.Name)).toEqual(['default-v1', 'custom']);
  });
});

describe('GET_INFO text', () => {
  it('ActiveProfile (0x20) after the other parts, AvailableProfiles (0x40); no ActiveProfile without a running TPM', () => {
    const active = tpmInfoJson(0x21, DEFAULT_PROFILE);
    expect(active).toMatch(/^\{"TPMSpecification":\{[^}]*\},"ActiveProfile":\{"Name":"default-v1","Commands":"0x11f-/);
    expect(JSON.parse(active).ActiveProfile).toEqual(JSON.parse(profileJson(DEFAULT_PROFILE)));
    expect(tpmInfoJson(0x20, null)).toBe('{}');
    expect(JSON.parse(tpmInfoJson(0x40)).AvailableProfiles.map((p: { Name: string }) => p.Name)).toEqual(['default-v1', 'custom']);
  });
});
