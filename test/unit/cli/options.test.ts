import { describe, expect, it } from 'vitest';
import { capabilitiesJson } from '../../../src/cli/capabilities.js';
import { parseKeyValues, UsageError } from '../../../src/cli/key-value.js';
import { parseSocketConfig } from '../../../src/cli/socket-config.js';

const SPEC = { type: 'string', port: 'uint', n: 'int', on: 'boolean', mode: 'mode', profile: 'string' } as const;

describe('swtpm key=value parser', () => {
  it('parses comma-separated key=value items', () => {
    expect(parseKeyValues('type=tcp,port=2321', SPEC, '--x')).toEqual({ type: 'tcp', port: 2321 });
  });
  it('a bare key means true', () => {
    expect(parseKeyValues('on', SPEC, '--x')).toEqual({ on: true });
  });
  it('booleans: true/1 in any case are true, anything else false', () => {
    expect(parseKeyValues('on=TRUE', SPEC, '--x').on).toBe(true);
    expect(parseKeyValues('on=1', SPEC, '--x').on).toBe(true);
    expect(parseKeyValues('on=yes', SPEC, '--x').on).toBe(false);
    expect(parseKeyValues('on=0', SPEC, '--x').on).toBe(false);
  });
  it('an unknown key is an error naming it', () => {
    expect(() => parseKeyValues('type=tcp,colour=red', SPEC, '--server')).toThrow(UsageError);
    expect(() => parseKeyValues('type=tcp,colour=red', SPEC, '--server')).toThrow(/--server: unknown option 'colour=red'/);
    expect(() => parseKeyValues('type=', SPEC, '--x')).toThrow(/unknown option 'type='/);
  });
  it('numbers are checked', () => {
    expect(() => parseKeyValues('port=abc', SPEC, '--x')).toThrow(/invalid number 'abc'/);
    expect(() => parseKeyValues('port', SPEC, '--x')).toThrow(/invalid number 'true'/);
    expect(() => parseKeyValues('port=-1', SPEC, '--x')).toThrow(/outside/);
    expect(parseKeyValues('n=-5', SPEC, '--x').n).toBe(-5);
  });
  it('modes are octal ≤ 0777', () => {
    expect(parseKeyValues('mode=0640', SPEC, '--x').mode).toBe(0o640);
    expect(parseKeyValues('mode=621', SPEC, '--x').mode).toBe(0o621);
    expect(() => parseKeyValues('mode=0888', SPEC, '--x')).toThrow(/invalid mode/);
    expect(() => parseKeyValues('mode=1777', SPEC, '--x')).toThrow(/at most 0777/);
  });
  it('a value starting with { runs to the matching }', () => {
    expect(parseKeyValues('profile={"a":{"b":1,"c":2}},on', SPEC, '--x')).toEqual({ profile: '{"a":{"b":1,"c":2}}', on: true });
    expect(() => parseKeyValues('profile={"a":1', SPEC, '--x')).toThrow(/unterminated JSON map/);
    expect(() => parseKeyValues('profile={"a":1}x', SPEC, '--x')).toThrow(/unexpected character following JSON map/);
  });
  it('the first occurrence of a key wins (swtpm)', () => {
    expect(parseKeyValues('port=1,port=2', SPEC, '--x').port).toBe(1);
  });
});

describe('vtpmd socket options', () => {
  const base = { tpm2: true, tpmstate: 'dir=/tmp/s', server: 'type=tcp,port=2321', ctrl: 'type=tcp,port=2322' };

  it('requires --tpm2 with a clear message', () => {
    expect(() => parseSocketConfig({ ...base, tpm2: false })).toThrow('vtpmd emulates TPM 2.0 only; pass --tpm2');
  });

  it('the README command line', () => {
    const c = parseSocketConfig({ ...base, tpmstate: 'dir=.vtpmd-state', flags: 'not-need-init,startup-clear' }, {});
    expect(c.data).toEqual({ endpoint: { type: 'tcp', port: 2321, host: '127.0.0.1' }, disconnect: false });
    expect(c.ctrl).toEqual({ endpoint: { type: 'tcp', port: 2322, host: '127.0.0.1' }, terminate: false });
    expect(c.stateDir).toBe(`${process.cwd()}/.vtpmd-state`);
    expect(c).toMatchObject({ notNeedInit: true, startup: 'clear', autoShutdown: true, lock: true, terminate: false });
  });

  it('--tpmstate: dir, backend-uri=dir://, mode, $TPM_PATH', () => {
    expect(parseSocketConfig({ ...base, tpmstate: 'backend-uri=dir:///var/x,mode=0600' }, {})).toMatchObject({ stateDir: '/var/x', stateMode: 0o600 });
    expect(parseSocketConfig({ ...base, tpmstate: undefined }, { TPM_PATH: '/p' }).stateDir).toBe('/p');
    expect(() => parseSocketConfig({ ...base, tpmstate: undefined }, {})).toThrow(/--tpmstate dir=DIR is required/);
    expect(parseSocketConfig({ ...base, tpmstate: 'backend-uri=file:///var/lib/t/tpm.img,mode=0600' }, {})).toMatchObject({ stateFile: '/var/lib/t/tpm.img', stateDir: '/var/lib/t', stateMode: 0o600, lock: false });
    expect(() => parseSocketConfig({ ...base, tpmstate: 'backend-uri=file://rel.img' }, {})).toThrow(/absolute path/);
    expect(() => parseSocketConfig({ ...base, tpmstate: 'backend-uri=file:///x,lock' }, {})).toThrow(/not supported/);
    expect(() => parseSocketConfig({ ...base, tpmstate: 'mode=0600' }, {})).toThrow(/dir=DIR/);
  });

  it('--server and --ctrl: tcp, unixio, bindaddr, disconnect, terminate, modes', () => {
    const c = parseSocketConfig({ ...base, server: 'type=unixio,path=/run/d.sock,mode=0600', ctrl: 'type=unixio,path=/run/c.sock,terminate' }, {});
    expect(c.data).toEqual({ endpoint: { type: 'unix', path: '/run/d.sock', mode: 0o600 }, disconnect: false });
    expect(c.ctrl).toEqual({ endpoint: { type: 'unix', path: '/run/c.sock', mode: 0o770 }, terminate: true });
    const t = parseSocketConfig({ ...base, server: 'port=5,bindaddr=::1,disconnect' }, {});
    expect(t.data).toEqual({ endpoint: { type: 'tcp', port: 5, host: '::1' }, disconnect: true });
    expect(() => parseSocketConfig({ ...base, ctrl: 'port=2322' }, {})).toThrow(/--ctrl needs type=tcp or type=unixio/);
    expect(() => parseSocketConfig({ ...base, ctrl: 'type=tcp' }, {})).toThrow(/--ctrl type=tcp needs port=N/);
    expect(() => parseSocketConfig({ ...base, server: 'type=unixio' }, {})).toThrow(/needs path=/);
    expect(() => parseSocketConfig({ ...base, server: 'type=udp' }, {})).toThrow(/unsupported type 'udp'/);
    expect(() => parseSocketConfig({ ...base, server: 'type=tcp,port=70000' }, {})).toThrow(/outside 1..65535/);
    expect(() => parseSocketConfig({ ...base, ctrl: 'type=tcp,port=2321' }, {})).toThrow(/both use port 2321/);
  });

  it('tcp --server without port uses $TPM_PORT', () => {
    expect(parseSocketConfig({ ...base, server: 'type=tcp' }, { TPM_PORT: '4000' }).data?.endpoint).toMatchObject({ port: 4000 });
    expect(() => parseSocketConfig({ ...base, server: 'type=tcp' }, {})).toThrow(/TPM_PORT/);
  });

  it('-p/--port is --server type=tcp,disconnect', () => {
    const c = parseSocketConfig({ ...base, server: undefined, port: '2400' }, {});
    expect(c.data).toEqual({ endpoint: { type: 'tcp', port: 2400, host: '127.0.0.1' }, disconnect: true });
    expect(() => parseSocketConfig({ ...base, port: '2400' }, {})).toThrow(/either -p\/--port or --server/);
    expect(() => parseSocketConfig({ ...base, server: undefined, port: 'x' }, {})).toThrow(/cannot parse port/);
  });

  it('needs at least one channel', () => {
    expect(() => parseSocketConfig({ tpm2: true, tpmstate: 'dir=/x' }, {})).toThrow(/--server .* and\/or --ctrl/);
  });

  it('--flags', () => {
    const f = (flags: string) => parseSocketConfig({ ...base, flags }, {});
    expect(f('not-need-init')).toMatchObject({ notNeedInit: true, startup: null });
    expect(f('startup-state')).toMatchObject({ notNeedInit: true, startup: 'state' });
    expect(f('startup-clear,startup-state')).toMatchObject({ startup: 'clear' });
    expect(f('startup-none')).toMatchObject({ notNeedInit: false, startup: null });
    expect(f('disable-auto-shutdown')).toMatchObject({ autoShutdown: false });
    expect(() => f('startup-deactivated')).toThrow(/not valid for a TPM 2/);
    expect(() => f('fast')).toThrow(/--flags: unknown option 'fast'/);
  });

  it('--pid and --log', () => {
    const c = parseSocketConfig({ ...base, pid: 'file=/run/v.pid', log: 'file=/tmp/l,level=20,prefix=X,truncate' }, {});
    expect(c.pidFile).toBe('/run/v.pid');
    expect(c.log).toEqual({ file: '/tmp/l', level: 20, prefix: 'X', truncate: true });
    expect(parseSocketConfig({ ...base, pid: 'fd=5' }, {}).pidFd).toBe(5);
    expect(() => parseSocketConfig({ ...base, pid: '' }, {})).toThrow(/unknown option ''/);
    expect(() => parseSocketConfig({ ...base, log: 'level=x' }, {})).toThrow(/invalid number/);
  });

  it('-t/--terminate', () => {
    expect(parseSocketConfig({ ...base, terminate: true }, {}).terminate).toBe(true);
  });
});

describe('--print-capabilities', () => {
  it('is one line of JSON in swtpm\'s spacing with only what vtpmd implements', () => {
    const s = capabilitiesJson('1.2.3');
    expect(s.startsWith(
      '{ "type": "swtpm", "features": [ "tpm-2.0", "flags-opt-startup", "flags-opt-disable-auto-shutdown", "ctrl-opt-terminate", "cmdarg-key-fd", "cmdarg-pwd-fd", "cmdarg-print-states", "cmdarg-chroot", "nvram-backend-dir", "nvram-backend-file", "rsa-keysize-1024", "rsa-keysize-2048", "rsa-keysize-3072", "cmdarg-profile", "cmdarg-print-profiles" ], ' +
        '"profiles": { "names": [ "default-v1", "custom" ], "algorithms": { "canbedisabled": "',
    )).toBe(true);
    expect(s).toMatch(/", "implemented": "[^"]+" }, "commands": \{ "canbedisabled": "[^"]+", "implemented": "0x11f-[^"]+" } }, "version": "1\.2\.3" }$/);
    const caps = JSON.parse(s) as { features: string[]; profiles: { algorithms: { canbedisabled: string } } };
    expect(caps.features).not.toContain('tpm-1.2');
    // What libtpms lets a profile switch off, among what vtpmd implements.
    expect(caps.profiles.algorithms.canbedisabled).toBe('sha1,sha512,rsassa,rsaes,rsapss,ecschnorr,ctr,ofb,cbc,ecb,ecc-nist-p521');
  });
});
