// `vtpmd cuse` option parsing (swtpm cuse's names) and the start-up errors that need no kernel.
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCuseConfig } from '../../../src/cli/cuse-config.js';
import { UsageError } from '../../../src/cli/key-value.js';
import { silentLogger } from '../../../src/common/log.js';
import { Device } from '../../../src/device/device.js';
import { CuseDevice, openCuseChannel } from '../../../src/frontends/cuse/device-io.js';
import { fakeWorld } from '../device/fake-engine.js';

describe('parseCuseConfig', () => {
  it('takes -n, -M, -m, --tpmstate, --flags, --pid, --log', () => {
    const c = parseCuseConfig({ tpm2: true, name: 'vtpm0', maj: '250', min: '3', tpmstate: 'dir=/tmp/x', flags: 'not-need-init,startup-clear', pid: 'file=/tmp/p', log: 'file=/tmp/l,level=2' }, {});
    expect(c).toMatchObject({ name: 'vtpm0', devMajor: 250, devMinor: 3, stateDir: '/tmp/x', notNeedInit: true, startup: 'clear', pidFile: '/tmp/p' });
    expect(c.log).toMatchObject({ file: '/tmp/l', level: 2 });
  });
  it('uses $TPM_PATH without --tpmstate', () => {
    expect(parseCuseConfig({ tpm2: true, name: 'vtpm1' }, { TPM_PATH: '/tmp/y' }).stateDir).toBe('/tmp/y');
  });
  it.each([
    [{ name: 'vtpm0', tpmstate: 'dir=/x' }, 'pass --tpm2'],
    [{ tpm2: true, tpmstate: 'dir=/x' }, '-n/--name NAME is required'],
    [{ tpm2: true, name: '../evil', tpmstate: 'dir=/x' }, 'not a valid device name'],
    [{ tpm2: true, name: 'vtpm0', tpmstate: 'dir=/x', maj: 'x' }, 'is not a device number'],
    [{ tpm2: true, name: 'vtpm0', tpmstate: 'dir=/x', maj: '5000' }, 'larger than 4095'],
    [{ tpm2: true, name: 'vtpm0', tpmstate: 'dir=/x', min: '1' }, 'needs -M/--maj'],
    [{ tpm2: true, name: 'vtpm0', tpmstate: 'dir=/x', flags: 'bogus' }, "unknown option 'bogus'"],
    [{ tpm2: true, name: 'vtpm0' }, '--tpmstate dir=DIR is required'],
  ])('%j → %s', (args, message) => {
    expect(() => parseCuseConfig(args, {})).toThrow(UsageError);
    expect(() => parseCuseConfig(args, {})).toThrow(message);
  });
});

describe('start-up errors', () => {
  it('a missing /dev/cuse says to load the module', () => {
    expect(() => openCuseChannel('/nonexistent/cuse')).toThrow('the cuse kernel module is not loaded: modprobe cuse');
  });
  it('a taken name is refused before /dev/cuse is opened', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-dev-'));
    fs.writeFileSync(path.join(dir, 'vtpm0'), '');
    const w = fakeWorld();
    const device = new Device({ storage: w.storage, engines: w.factory });
    await expect(
      CuseDevice.start({ device, name: 'vtpm0', log: silentLogger, onShutdown: () => undefined, devDir: dir, cusePath: '/nonexistent/cuse' }),
    ).rejects.toThrow(`${dir}/vtpm0 already exists`);
    fs.rmSync(dir, { recursive: true });
  });
});
