// `vtpmd setup`'s swtpm_setup options beyond manufacturing: state encryption at setup
// (--keyfile/--keyfile-fd/--pwdfile/--pwdfile-fd with --cipher), --reconfigure --pcr-banks on an
// existing state, --create-config-files, and --print-capabilities. Each is checked end to end:
// the state is then served by `vtpmd socket` (with the matching --key, and refused without it)
// and read with tpm2-tools.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, startDaemon, VTPMD_MAIN, vtpmdAvailable } from '../helpers/daemon.js';
import { run, tpm2ok } from '../helpers/tools.js';

const setup = (args: string[], env?: Record<string, string>) => run(process.execPath, [VTPMD_MAIN, 'setup', ...args], { timeoutMs: 60_000, ...(env ? { env } : {}) });
const PERMALL = 'tpm2-00.permall';
const EC_EK = ['--createek', '--ek1keyalgo', 'secp256r1', '--ek2keyalgo', 'secp256r1'];

/** `vtpmd socket` on `state` with these extra options: exit code and stderr when it cannot start. */
async function socketFails(state: string, extra: string[]) {
  const dir = makeTempDir('vtpmd-sock-');
  return run(process.execPath, [VTPMD_MAIN, 'socket', '--tpm2', '--tpmstate', `dir=${state}`, '--server', `type=unixio,path=${dir}/d`, '--ctrl', `type=unixio,path=${dir}/c`, '--flags', 'not-need-init,startup-clear', ...extra], { timeoutMs: 30_000 });
}

/** The EK at 0x8101000a read back through a daemon started with `extra`. */
async function readEk(state: string, extra: string[]): Promise<string> {
  const d = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], stateDir: state, extraArgs: extra });
  try {
    return (await tpm2ok('readpublic', d.tcti, ['-c', '0x8101000a'])).stdout;
  } finally {
    await d.stop();
  }
}

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

describe.skipIf(!vtpmdAvailable())('vtpmd setup: encryption, --reconfigure, config files', () => {
  it('--pwdfile with aes-256-cbc: vtpmd socket --key pwdfile=... serves it; without the key or with the wrong mode it refuses', async () => {
    const dir = makeTempDir('vtpmd-enc-');
    const pwd = path.join(dir, 'pwd');
    writeFileSync(pwd, 'a passphrase for the vTPM');
    const state = path.join(dir, 'state');
    const r = await setup(['--tpm2', '--tpm-state', state, ...EC_EK, '--pwdfile', pwd, '--cipher', 'aes-256-cbc']);
    expect(r.code, r.stderr).toBe(0);
    // swtpm's envelope flags: encrypted with the file key, 256 bits.
    expect(readFileSync(path.join(state, PERMALL)).readUInt16BE(4)).toBe(0x09);
    expect(await readEk(state, ['--key', `pwdfile=${pwd},mode=aes-256-cbc`])).toMatch(/name-alg:\s*\n\s*value: sha256/);
    const plain = await socketFails(state, []);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/tpm2-00.permall is encrypted; give the --key it was written with/);
    const wrongMode = await socketFails(state, ['--key', `pwdfile=${pwd}`]);
    expect(wrongMode.code).toBe(1);
    expect(wrongMode.stderr).toMatch(/encrypted with a 256-bit key, the key given has 128 bits/);
    writeFileSync(path.join(dir, 'other'), 'another passphrase');
    const wrongPass = await socketFails(state, ['--key', `pwdfile=${path.join(dir, 'other')},mode=aes-256-cbc`]);
    expect(wrongPass.code).toBe(1);
    expect(wrongPass.stderr).toMatch(/wrong key/);
  });

  it("--pwdfile-fd (libvirt's way) and --keyfile-fd read from an inherited descriptor; --keyfile takes a hex key", async () => {
    const dir = makeTempDir('vtpmd-encfd-');
    const pwd = path.join(dir, 'pwd');
    writeFileSync(pwd, 'passphrase through a descriptor');
    const key = path.join(dir, 'key');
    writeFileSync(key, `${'5e'.repeat(16)}\n`);
    const viaFd = async (state: string, file: string, option: string, cipher: string[]) =>
      run('bash', ['-c', `exec 7<"$1"; shift; exec "$@"`, 'sh', file, process.execPath, VTPMD_MAIN, 'setup', '--tpm2', '--tpm-state', state, ...EC_EK, option, '7', ...cipher], { timeoutMs: 60_000 });

    const a = path.join(dir, 'a');
    const r1 = await viaFd(a, pwd, '--pwdfile-fd', ['--cipher', 'aes-256-cbc']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(await readEk(a, ['--key', `pwdfile=${pwd},mode=aes-256-cbc`])).toMatch(/0x8101000a|ecc/i);

    const b = path.join(dir, 'b');
    const r2 = await viaFd(b, key, '--keyfile-fd', []);
    expect(r2.code, r2.stderr).toBe(0);
    expect(readFileSync(path.join(b, PERMALL)).readUInt16BE(4)).toBe(0x01); // 128-bit key, aes-128-cbc default
    await readEk(b, ['--key', `file=${key}`]);

    const c = path.join(dir, 'c');
    const r3 = await setup(['--tpm2', '--tpm-state', c, ...EC_EK, '--keyfile', key]);
    expect(r3.code, r3.stderr).toBe(0);
    await readEk(c, ['--key', `file=${key},mode=aes-128-cbc`]);
    expect((await socketFails(c, [])).code).toBe(1);

    // --not-overwrite on an encrypted state: nothing is read or written, exit 0.
    const before = sha(path.join(c, PERMALL));
    expect((await setup(['--tpm2', '--tpm-state', c, ...EC_EK, '--keyfile', key, '--not-overwrite'])).code).toBe(0);
    expect(sha(path.join(c, PERMALL))).toBe(before);
  });

  it('--reconfigure --pcr-banks reallocates the banks of an existing (encrypted) state and keeps its EK', async () => {
    const dir = makeTempDir('vtpmd-reconf-');
    const pwd = path.join(dir, 'pwd');
    writeFileSync(pwd, 'reconfigure me');
    const state = path.join(dir, 'state');
    const key = ['--pwdfile', pwd];
    expect((await setup(['--tpm2', '--tpm-state', state, ...EC_EK, ...key, '--pcr-banks', 'sha1,sha384'])).code).toBe(0);
    const ek = await readEk(state, ['--key', `pwdfile=${pwd}`]);
    const before = sha(path.join(state, PERMALL));

    const r = await setup(['--tpm2', '--tpm-state', state, '--reconfigure', '--pcr-banks', 'sha256', ...key]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Starting vTPM reconfiguration/);
    expect(r.stdout).toMatch(/Successfully activated PCR banks sha256 among sha1,sha256,sha384,sha512/);
    expect(sha(path.join(state, PERMALL))).not.toBe(before);

    const d = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], stateDir: state, extraArgs: ['--key', `pwdfile=${pwd}`] });
    const caps = (await tpm2ok('getcap', d.tcti, ['pcrs'])).stdout;
    expect(caps).toMatch(/sha1:\s*\[\s*\]/);
    expect(caps).toMatch(/sha256:\s*\[ 0, 1, 2,/);
    expect(caps).toMatch(/sha384:\s*\[\s*\]/);
    // The EK (persistent object and seed) is the one manufactured before.
    expect((await tpm2ok('readpublic', d.tcti, ['-c', '0x8101000a'])).stdout).toBe(ek);
    await d.stop();

    // Refusals: no state, creation options, a wrong key (the state is left as it was).
    const none = await setup(['--tpm2', '--tpm-state', path.join(dir, 'none'), '--reconfigure', '--pcr-banks', 'sha256']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/there is no TPM state in .*none to reconfigure/);
    expect(existsSync(path.join(dir, 'none', PERMALL))).toBe(false);
    const creating = await setup(['--tpm2', '--tpm-state', state, '--reconfigure', '--create-ek-cert', ...key]);
    expect(creating.code).toBe(1);
    expect(creating.stderr).toMatch(/--reconfigure changes only the PCR banks of an existing state; drop --create-ek-cert/);
    const after = sha(path.join(state, PERMALL));
    const noKey = await setup(['--tpm2', '--tpm-state', state, '--reconfigure', '--pcr-banks', 'sha1']);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/is encrypted; give the --key/);
    expect(sha(path.join(state, PERMALL))).toBe(after);
    const badBank = await setup(['--tpm2', '--tpm-state', state, '--reconfigure', '--pcr-banks', 'sha3', ...key]);
    expect(badBank.code).toBe(1);
    expect(badBank.stderr).toMatch(/--pcr-banks: unknown PCR bank "sha3"/);
    expect(sha(path.join(state, PERMALL))).toBe(after);
  });

  it('key option errors: clear message, exit 1, no state left', async () => {
    const dir = makeTempDir('vtpmd-keybad-');
    writeFileSync(path.join(dir, 'pwd'), 'x');
    writeFileSync(path.join(dir, 'short'), 'abcd\n');
    const cases: [string[], RegExp][] = [
      [['--pwdfile', path.join(dir, 'pwd'), '--cipher', 'aes-192-cbc'], /--cipher: unsupported cipher "aes-192-cbc"; use aes-128-cbc or aes-256-cbc/],
      [['--cipher', 'aes-256-cbc'], /--cipher needs a key/],
      [['--pwdfile', path.join(dir, 'pwd'), '--keyfile', path.join(dir, 'short')], /give only one of --keyfile, --keyfile-fd, --pwdfile and --pwdfile-fd/],
      [['--pwdfile-fd', 'x3'], /--pwdfile-fd: "x3" is not a file descriptor number/],
      [['--pwdfile', path.join(dir, 'missing')], /--pwdfile: cannot read the passphrase from .*missing: ENOENT/],
      [['--keyfile', path.join(dir, 'short')], /--keyfile: the key has 4 hex digits, the mode needs 32/],
      [['--pwdfile-fd', '250'], /--pwdfile-fd: cannot read the passphrase from fd 250: EBADF/],
    ];
    for (const [extra, message] of cases) {
      const state = path.join(dir, `s${cases.findIndex((c) => c[0] === extra)}`);
      const r = await setup(['--tpm2', '--tpm-state', state, ...EC_EK, ...extra]);
      expect(r.code, r.cmd).toBe(1);
      expect(r.stderr, r.cmd).toMatch(message);
      expect(existsSync(path.join(state, PERMALL))).toBe(false);
    }
  });

  it('--create-config-files writes setup.conf, localca.conf and localca.options that vtpmd setup then uses', async () => {
    const home = makeTempDir('vtpmd-xdg-');
    const env = { XDG_CONFIG_HOME: home };
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      const refused = await setup(['--create-config-files'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/as root the files would shadow those in \/etc\/vtpmd; add the root flag/);
      expect(existsSync(path.join(home, 'vtpmd', 'setup.conf'))).toBe(false);
    }
    const flags = asRoot ? 'root' : '';
    const r = await setup(['--create-config-files', flags], env);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['setup.conf', 'localca.conf', 'localca.options']) expect(r.stdout).toContain(`Writing ${path.join(home, 'vtpmd', f)}.`);
    expect(readFileSync(path.join(home, 'vtpmd', 'setup.conf'), 'utf8')).toBe(`create_certs_tool_config = ${home}/vtpmd/localca.conf\ncreate_certs_tool_options = ${home}/vtpmd/localca.options\n`);
    expect(readFileSync(path.join(home, 'vtpmd', 'localca.conf'), 'utf8')).toMatch(new RegExp(`^statedir = ${home}/vtpmd/localca\nsigningkey = ${home}/vtpmd/localca/signkey.pem\n`));
    expect(readFileSync(path.join(home, 'vtpmd', 'localca.options'), 'utf8')).toMatch(/^--platform-manufacturer \S+\n--platform-version \S+\n--platform-model \S+\n$/);
    const conf = statSync(path.join(home, 'vtpmd', 'setup.conf')).mtimeMs;

    const again = await setup(['--create-config-files', asRoot ? 'root' : ''], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/setup.conf already exists; add the overwrite flag to replace it, or skip-if-exist to keep it/);
    const skip = await setup(['--create-config-files', asRoot ? 'root,skip-if-exist' : 'skip-if-exist'], env);
    expect(skip.code).toBe(0);
    expect(statSync(path.join(home, 'vtpmd', 'setup.conf')).mtimeMs).toBe(conf);
    const both = await setup(['--create-config-files', 'overwrite,skip-if-exist,root'], env);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/overwrite and skip-if-exist exclude each other/);
    const unknown = await setup(['--create-config-files', 'root,everything'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown flag "everything"/);
    expect((await setup(['--create-config-files', asRoot ? 'root,overwrite' : 'overwrite'], env)).code).toBe(0);

    // Without --config, setup reads the user's setup.conf: the CA is made in the user's directory.
    const state = makeTempDir('vtpmd-userca-');
    const certs = makeTempDir('vtpmd-usercerts-');
    const p = await setup(['--tpm2', '--tpm-state', state, '--create-ek-cert', '--ek1keyalgo', 'secp256r1', '--ek2keyalgo', 'secp256r1', '--write-ek-cert-files', certs], env);
    expect(p.code, p.stderr).toBe(0);
    expect(existsSync(path.join(home, 'vtpmd', 'localca', 'issuercert.pem'))).toBe(true);
    const verify = await run('openssl', ['verify', '-CAfile', path.join(home, 'vtpmd', 'localca', 'localca-rootca-cert.pem'), '-untrusted', path.join(home, 'vtpmd', 'localca', 'issuercert.pem'),
      await derToPem(path.join(certs, 'ek-secp256r1.crt'))]);
    expect(verify.stdout, verify.stderr).toMatch(/: OK/);
  });

  it('--print-capabilities lists what vtpmd setup supports, in swtpm_setup\'s order', async () => {
    const r = await setup(['--print-capabilities']);
    expect(r.code).toBe(0);
    const caps = JSON.parse(r.stdout) as { type: string; features: string[] };
    expect(caps.features).toEqual([
      'tpm-2.0', 'cmdarg-keyfile-fd', 'cmdarg-pwdfile-fd', 'cmdarg-write-ek-cert-files', 'cmdarg-create-config-files',
      'cmdarg-reconfigure-pcr-banks', 'tpm2-rsa-keysize-2048', 'tpm2-rsa-keysize-3072', 'cmdarg-profile', 'cmdarg-ek1keyalgo', 'cmdarg-ek2keyalgo',
    ]);
    // Each listed command-line option is accepted (yargs is strict: an unknown option fails).
    const help = (await setup(['--help'])).stdout;
    for (const opt of ['--keyfile-fd', '--pwdfile-fd', '--write-ek-cert-files', '--create-config-files', '--reconfigure', '--ek1keyalgo', '--ek2keyalgo', '--profile', '--profile-file', '--profile-file-fd']) expect(help).toContain(opt);
  });
});

async function derToPem(der: string): Promise<string> {
  const out = `${der}.pem`;
  expect((await run('openssl', ['x509', '-inform', 'der', '-in', der, '-out', out])).code).toBe(0);
  return out;
}
