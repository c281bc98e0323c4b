// `vtpmd setup` end to end: an ECC EK whose certificate tpm2-tools can match against the key it
// recreates, --not-overwrite/--overwrite, exit codes and messages, the certificates and NV
// indices swtpm_setup makes for the same request, and 20 provisioning runs timed against
// swtpm_setup's. Steps that need a command the engine does not list yet (EvictControl, NV) skip
// themselves with the reason printed and switch on once GetCapability lists the command.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, startDaemon, swtpmAvailable, VTPMD_MAIN, vtpmdAvailable } from '../helpers/daemon.js';
import { run, tpm2, tpm2ok } from '../helpers/tools.js';
import { listCommands, TpmClient } from '../helpers/tpm.js';
import { tryFlock } from '../../src/native/syscalls.js';

const haveSwtpmSetup = existsSync('/usr/bin/swtpm_setup') && existsSync('/usr/bin/swtpm_localca') && swtpmAvailable();
const CC = { EvictControl: 0x120, NV_ReadPublic: 0x169, NV_Read: 0x14e } as const;

let work: string;
let setupConf: string;

const setup = (args: string[]) => run(process.execPath, [VTPMD_MAIN, 'setup', ...args], { timeoutMs: 60_000 });

/** Every file under `dir` with its SHA-256. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, name);
    try {
      out[name] = createHash('sha256').update(readFileSync(p)).digest('hex');
    } catch {
      // a directory
    }
  }
  return out;
}

/** The commands a vtpmd engine lists (a daemon on a scratch state). */
let vtpmdCommands: Set<number> = new Set();

function gate(cc: number, name: string): boolean {
  const ok = vtpmdCommands.has(cc);
  if (!ok) console.warn(`[vtpmd tests] skipping the ${name} check: the engine does not list ${name} yet`);
  return ok;
}

beforeAll(async () => {
  if (!vtpmdAvailable()) return;
  work = makeTempDir('vtpmd-setup-');
  writeFileSync(path.join(work, 'ca.conf'), `statedir = ${path.join(work, 'ca')}\n`);
  writeFileSync(path.join(work, 'options'), '--platform-manufacturer Fedora\n--platform-version 2.1\n--platform-model QEMU\n');
  setupConf = path.join(work, 'setup.conf');
  writeFileSync(setupConf, `create_certs_tool_config = ${path.join(work, 'ca.conf')}\ncreate_certs_tool_options = ${path.join(work, 'options')}\n`);
  const d = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'] });
  const c = await TpmClient.connect({ port: d.port });
  vtpmdCommands = new Set((await listCommands(c)).map((a) => a & 0xffff));
  c.close();
  await d.stop();
}, 120_000);

describe.skipIf(!vtpmdAvailable())('vtpmd setup', () => {
  it('an ECC P-256 EK: its certificate verifies, and tpm2_createek recreates the same public key', async () => {
    const state = path.join(work, 'e2e');
    const certs = makeTempDir('vtpmd-ekcerts-');
    const r = await setup(['--tpm2', '--tpm-state', state, '--createek', '--create-ek-cert', '--create-platform-cert', '--lock-nvram',
      '--ek1keyalgo', 'secp256r1', '--ek2keyalgo', 'ecc_nist_p256', '--vmid', 'vm-e2e', '--config', setupConf,
      '--write-ek-cert-files', certs, '--pcr-banks', 'sha256,sha384']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Successfully created ECC P-256 EK/);
    expect(r.stdout).toMatch(/Successfully activated PCR banks sha256,sha384 among sha1,sha256,sha384,sha512/);
    const certFile = path.join(certs, 'ek-secp256r1.crt');
    expect((await run('openssl', ['x509', '-inform', 'der', '-in', certFile, '-noout', '-subject'])).stdout).toMatch(/CN ?= ?vm-e2e/);
    const pemCert = path.join(certs, 'ek.pem');
    expect((await run('openssl', ['x509', '-inform', 'der', '-in', certFile, '-out', pemCert])).code).toBe(0);
    const verify = await run('openssl', ['verify', '-CAfile', path.join(work, 'ca', 'localca-rootca-cert.pem'), '-untrusted', path.join(work, 'ca', 'issuercert.pem'), pemCert]);
    expect(verify.stdout, verify.stderr).toMatch(/: OK/);

    const d = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], stateDir: state });
    const ekPem = path.join(certs, 'ek-pub.pem');
    await tpm2ok('createek', d.tcti, ['-G', 'ecc', '-c', path.join(certs, 'ek.ctx'), '-u', ekPem, '-f', 'pem']);
    const certKey = (await run('openssl', ['x509', '-in', pemCert, '-noout', '-pubkey'])).stdout;
    expect(readFileSync(ekPem, 'utf8').trim()).toBe(certKey.trim());
    // The PCR banks asked for, after the TPM Reset the daemon's start-up is.
    const caps = (await tpm2ok('getcap', d.tcti, ['pcrs'])).stdout;
    expect(caps).toMatch(/sha1:\s*\[\s*\]/);
    expect(caps).toMatch(/sha384:\s*\[ 0, 1,/);
    if (gate(CC.EvictControl, 'EvictControl')) {
      await tpm2ok('readpublic', d.tcti, ['-c', '0x8101000a', '-o', path.join(certs, 'persistent.pub')]);
    }
    if (gate(CC.NV_Read, 'NV_Read')) {
      const out = path.join(certs, 'nv.der');
      await tpm2ok('nvread', d.tcti, ['0x01c0000a', '-C', 'o', '-o', out]);
      expect(readFileSync(out).equals(readFileSync(certFile))).toBe(true);
      await tpm2ok('getekcertificate', d.tcti, ['-o', path.join(certs, 'getek.der')]);
    }
    await d.stop();
  });

  it('--not-overwrite leaves state and CA byte-identical (exit 0); without it exit 1; --overwrite replaces', async () => {
    const state = path.join(work, 'idem');
    const args = ['--tpm2', '--tpm-state', state, '--createek', '--create-ek-cert', '--config', setupConf, '--ek1keyalgo', 'secp384r1'];
    expect((await setup(args)).code).toBe(0);
    const before = { state: snapshot(state), ca: snapshot(path.join(work, 'ca')) };
    const again = await setup([...args, '--not-overwrite']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/exists; not overwriting/);
    expect({ state: snapshot(state), ca: snapshot(path.join(work, 'ca')) }).toEqual(before);
    const refused = await setup(args);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/TPM state already exists in .*; add --overwrite to replace it or --not-overwrite to keep it/);
    expect(snapshot(state)).toEqual(before.state);
    expect((await setup([...args, '--overwrite'])).code).toBe(0);
    expect(snapshot(state)['tpm2-00.permall']).not.toBe(before.state['tpm2-00.permall']);
  });

  it('errors exit 1 with a message that says what to fix, and leave no state files', async () => {
    const cases: [string[], RegExp][] = [
      [['--pcr-banks', 'sha256,md5'], /--pcr-banks: unknown PCR bank "md5"; use a comma list of sha1, sha256, sha384, sha512/],
      [['--ek1keyalgo', 'dsa'], /--ek1keyalgo: unknown key algorithm "dsa"/],
      [['--overwrite', '--not-overwrite'], /exclude each other/],
    ];
    for (const [extra, message] of cases) {
      const state = makeTempDir('vtpmd-bad-');
      const r = await setup(['--tpm2', '--tpm-state', state, '--createek', ...extra]);
      expect(r.code, r.cmd).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(readdirSync(state).filter((f) => f.startsWith('tpm2-'))).toEqual([]);
    }
    const noTpm2 = await setup(['--tpm-state', makeTempDir()]);
    expect(noTpm2.code).toBe(1);
    expect(noTpm2.stderr).toMatch(/add --tpm2/);

    // A CA directory that cannot be created (its parent is a file): the run fails after the TPM
    // was manufactured, and the new state files are removed again.
    const blocker = path.join(work, 'not-a-dir');
    writeFileSync(blocker, '');
    writeFileSync(path.join(work, 'bad-ca.conf'), `statedir = ${blocker}/ca\n`);
    writeFileSync(path.join(work, 'bad-setup.conf'), `create_certs_tool_config = ${path.join(work, 'bad-ca.conf')}\n`);
    const state = makeTempDir('vtpmd-bad-');
    const r = await setup(['--tpm2', '--tpm-state', state, '--create-ek-cert', '--config', path.join(work, 'bad-setup.conf'), '--ek1keyalgo', 'secp256r1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the local CA directory .*not-a-dir\/ca is not writable .*statedir=/);
    expect(readdirSync(state).filter((f) => f.startsWith('tpm2-'))).toEqual([]);

    // A state directory a daemon is using.
    const busy = makeTempDir('vtpmd-busy-');
    const d = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], stateDir: busy });
    const locked = await setup(['--tpm2', '--tpm-state', busy, '--createek', '--overwrite']);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/lock|in use/i);
    // --not-overwrite leaves a running TPM's state alone and succeeds.
    expect((await setup(['--tpm2', '--tpm-state', busy, '--createek', '--not-overwrite'])).code).toBe(0);
    await d.stop();
  });

  it('SIGTERM while provisioning (a unit start timeout) removes the partial state; --not-overwrite then provisions anew', async () => {
    // In a guest under load, systemd's start timeout stopped `vtpmd setup` between "manufactured a
    // new TPM" and the EK; a permall left behind would make the next start skip provisioning for
    // good. The state is written once at the end, and a stop before that leaves none.
    const state = makeTempDir('vtpmd-term-');
    const args = ['--tpm2', '--tpm-state', state, '--createek', '--create-ek-cert', '--config', setupConf, '--ek1keyalgo', 'rsa3072', '--ek2keyalgo', 'secp384r1'];
    const child = spawn(process.execPath, [VTPMD_MAIN, 'setup', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const permall = path.join(state, 'tpm2-00.permall');
    const deadline = Date.now() + 30_000;
    while (!(stdout + stderr).includes('Starting vTPM manufacturing') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(stdout + stderr, 'setup never started manufacturing').toContain('Starting vTPM manufacturing');
    child.kill('SIGTERM');
    const code = await exited;
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('vtpmd setup: interrupted by SIGTERM; the partial state was removed');
    expect(readdirSync(state).filter((f) => f.startsWith('tpm2-'))).toEqual([]);
    const again = await setup([...args, '--not-overwrite']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).not.toContain('not overwriting');
    expect(existsSync(permall)).toBe(true);
  });

  it('four VMs provisioned at once against one CA: the lock serialises it, every serial is unique', async () => {
    const certs = makeTempDir('vtpmd-par-');
    const runs = await Promise.all(
      [0, 1, 2, 3].map((i) => {
        mkdirSync(path.join(certs, `c${i}`));
        return setup(['--tpm2', '--tpm-state', path.join(certs, `s${i}`), '--create-ek-cert', '--ek1keyalgo', 'secp256r1', '--ek2keyalgo', 'secp384r1',
          '--config', setupConf, '--write-ek-cert-files', path.join(certs, `c${i}`), '--display']);
      }),
    );
    const serials: string[] = [];
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      // --display: each EK's public key and certificate.
      // With EvictControl in the engine the EK is also persistent, and --display names its handle.
      expect(r.stdout).toMatch(/EK secp256r1 \(persistent handle 0x8101000a\):\n-----BEGIN PUBLIC KEY-----/);
      expect(r.stdout).toMatch(/EK certificate \(NV index 0x1c0000a\): serial \d+, subject CN=unknown, issuer CN=vtpmd-localca\n-----BEGIN CERTIFICATE-----/);
    }
    for (let i = 0; i < 4; i++) {
      for (const alg of ['secp256r1', 'secp384r1']) serials.push(new x509.X509Certificate(readFileSync(path.join(certs, `c${i}`, `ek-${alg}.crt`))).serialNumber);
    }
    expect(new Set(serials).size).toBe(8);
    // The lock file stays, as swtpm_localca's does; nobody holds its lock any more.
    const lockFd = openSync(path.join(work, 'ca', '.lock.swtpm-localca'), 'r');
    expect(tryFlock(lockFd)).toBe(true);
    closeSync(lockFd);
  });

  it('--print-capabilities prints swtpm_setup-style JSON', async () => {
    const r = await setup(['--print-capabilities']);
    expect(r.code).toBe(0);
    const caps = JSON.parse(r.stdout) as { type: string; features: string[]; version: string };
    expect(caps.type).toBe('swtpm_setup');
    expect(caps.features).toContain('tpm-2.0');
    expect(caps.features).toContain('cmdarg-write-ek-cert-files');
  });
});

/** [oid, critical, value] of each extension; the key identifier depends on the CA. */
const extensionsOf = (der: Uint8Array) =>
  new x509.X509Certificate(der).extensions.map((e) => [e.type, e.critical, e.type === '2.5.29.35' ? '(key id)' : Buffer.from(e.value).toString('hex')]);

function swtpmSetupConf(dir: string): string {
  writeFileSync(path.join(dir, 'ca.conf'), `statedir = ${dir}/ca\nsigningkey = ${dir}/ca/signkey.pem\nissuercert = ${dir}/ca/issuercert.pem\ncertserial = ${dir}/ca/certserial\n`);
  writeFileSync(path.join(dir, 'options'), '--platform-manufacturer Fedora\n--platform-version 2.1\n--platform-model QEMU\n');
  const conf = path.join(dir, 'swtpm_setup.conf');
  writeFileSync(conf, `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${dir}/ca.conf\ncreate_certs_tool_options = ${dir}/options\n`);
  return conf;
}

describe.skipIf(!vtpmdAvailable() || !haveSwtpmSetup)('vtpmd setup next to swtpm_setup 0.7', () => {
  const flags = ['--createek', '--create-ek-cert', '--create-platform-cert', '--lock-nvram', '--vmid', 'vm1'];

  it('the ECC P-384 EK certificate has the same fields and extensions', async () => {
    const dir = makeTempDir('swtpm-setup-');
    const theirs = path.join(dir, 'certs');
    const ours = path.join(dir, 'ours');
    mkdirSync(theirs);
    mkdirSync(ours);
    mkdirSync(path.join(dir, 'state'));
    const s = await run('swtpm_setup', ['--tpm2', '--tpmstate', path.join(dir, 'state'), ...flags, '--config', swtpmSetupConf(dir), '--write-ek-cert-files', theirs], { timeoutMs: 60_000 });
    expect(s.code, s.stdout + s.stderr).toBe(0);
    const v = await setup(['--tpm2', '--tpm-state', path.join(dir, 'vstate'), ...flags, '--config', setupConf, '--write-ek-cert-files', ours]);
    expect(v.code, v.stderr).toBe(0);
    const a = new Uint8Array(readFileSync(path.join(ours, 'ek-secp384r1.crt')));
    const b = new Uint8Array(readFileSync(path.join(theirs, 'ek-secp384r1.crt')));
    expect(extensionsOf(a)).toEqual(extensionsOf(b));
    expect(new x509.X509Certificate(a).subject).toBe(new x509.X509Certificate(b).subject);
    expect(new x509.X509Certificate(a).notAfter.toISOString()).toBe(new x509.X509Certificate(b).notAfter.toISOString());

    // NV indices and attributes, once the engine has NV.
    if (!gate(CC.NV_ReadPublic, 'NV_ReadPublic')) return;
    const nv = async (impl: 'vtpmd' | 'swtpm', state: string) => {
      const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'], stateDir: state });
      const out = (await tpm2('nvreadpublic', d.tcti)).stdout;
      await d.stop();
      return [...out.matchAll(/^(0x[0-9a-f]+):[\s\S]*?attributes:\s*\n\s*friendly: .*\n\s*value: (0x[0-9A-Fa-f]+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    };
    const swtpmNv = await nv('swtpm', path.join(dir, 'state'));
    const vtpmdNv = await nv('vtpmd', path.join(dir, 'vstate'));
    // The RSA EK's index needs RSA keys; compare the indices both made.
    expect(vtpmdNv.every((e) => swtpmNv.includes(e)), `${vtpmdNv} vs ${swtpmNv}`).toBe(true);
  });

  it('provisioning 20 state directories in a row: seconds per VM, vtpmd and swtpm_setup', async () => {
    const dir = makeTempDir('setup-bench-');
    const conf = swtpmSetupConf(dir);
    // Both CAs exist before timing starts (vtpmd's was made by the tests above or now).
    await setup(['--tpm2', '--tpm-state', path.join(dir, 'warm-v'), ...flags, '--config', setupConf]);
    for (const name of ['warm-s', ...Array.from({ length: 20 }, (_, i) => `s${i}`)]) mkdirSync(path.join(dir, name));
    await run('swtpm_setup', ['--tpm2', '--tpmstate', path.join(dir, 'warm-s'), ...flags, '--config', conf], { timeoutMs: 60_000 });
    const N = 20;
    const time = async (fn: (i: number) => Promise<{ code: number | null }>) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) expect((await fn(i)).code).toBe(0);
      return Number(process.hrtime.bigint() - t0) / 1e9 / N;
    };
    const vtpmd = await time((i) => setup(['--tpm2', '--tpm-state', path.join(dir, `v${i}`), ...flags, '--config', setupConf]));
    const swtpm = await time((i) => run('swtpm_setup', ['--tpm2', '--tpmstate', path.join(dir, `s${i}`), ...flags, '--config', conf], { timeoutMs: 60_000 }));
    console.log(`[vtpmd setup bench] ${N} VMs: vtpmd setup ${vtpmd.toFixed(2)} s/VM, swtpm_setup ${swtpm.toFixed(2)} s/VM`);
    expect(vtpmd).toBeGreaterThan(0);
  }, 600_000);
});
