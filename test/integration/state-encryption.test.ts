// State encryption at rest and encrypted state blobs, checked against Debian's swtpm
// (swtpm-compat §5.2, §5.3): swtpm reads what vtpmd's storage layer encrypts and the other way
// round, passphrase KDFs agree, migration blobs cross between the two, wrong keys are refused.
// The engines' payloads differ (libtpms vs vtpmd), so the cross tests move swtpm's own payload
// through our encryption code and let swtpm judge the result by its PCRs.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseKeyOption } from '../../src/cli/key-options.js';
import { unwrapState, wrapState } from '../../src/storage/envelope.js';
import { exportStateBlob, importStateBlob } from '../../src/storage/state-blob.js';
import { makeTempDir, startDaemon, swtpmAvailable, VTPMD_MAIN, vtpmdAvailable, type Impl } from '../helpers/daemon.js';
import { parsePcrReadOutput, run, swtpmIoctl, tpm2ok } from '../helpers/tools.js';

const DIGEST = '5a'.repeat(32);
const PERMALL = 'tpm2-00.permall';

async function pcr10(tcti: string): Promise<string> {
  return parsePcrReadOutput((await tpm2ok('pcrread', tcti, ['sha256:10'])).stdout).get('sha256')!.get(10)!;
}

function secrets() {
  const dir = makeTempDir('vtpmd-keys-');
  const keyFile = path.join(dir, 'key');
  writeFileSync(keyFile, `${'c3'.repeat(32)}\n`);
  const otherKeyFile = path.join(dir, 'other');
  writeFileSync(otherKeyFile, `${'c4'.repeat(32)}\n`);
  const pwdFile = path.join(dir, 'pwd');
  writeFileSync(pwdFile, 'correct horse battery staple\n');
  const keyOpt = `file=${keyFile},mode=aes-256-cbc`;
  const migOpt = `pwdfile=${pwdFile},mode=aes-256-cbc`;
  return { keyFile, otherKeyFile, pwdFile, keyOpt, migOpt, key: parseKeyOption(keyOpt, '--key'), mig: parseKeyOption(migOpt, '--migration-key') };
}

/** A TPM with PCR 10 extended and saved by Shutdown(STATE); returns the PCR value. */
async function extendAndSave(impl: Impl, stateDir: string, extraArgs: string[]): Promise<string> {
  const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'], stateDir, extraArgs });
  await tpm2ok('pcrextend', d.tcti, [`10:sha256=${DIGEST}`]);
  const value = await pcr10(d.tcti);
  await tpm2ok('shutdown', d.tcti);
  await d.stop();
  return value;
}

async function resumedPcr10(impl: Impl, stateDir: string, extraArgs: string[]): Promise<string> {
  const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-state'], stateDir, extraArgs });
  const v = await pcr10(d.tcti);
  await d.stop();
  return v;
}

describe.skipIf(!swtpmAvailable() || !vtpmdAvailable())('state encryption, interoperable with swtpm', () => {
  it('swtpm --key state decrypts with our code; swtpm loads state our code encrypted; PCRs survive both ways', async () => {
    const s = secrets();
    const a = makeTempDir();
    const pcr = await extendAndSave('swtpm', a, ['--key', s.keyOpt]);
    const encrypted = readFileSync(path.join(a, PERMALL));
    expect(encrypted.readUInt16BE(4)).toBe(0x09); // encrypted, 256-bit key
    const plain = unwrapState(encrypted, PERMALL, s.key);

    const b = makeTempDir();
    writeFileSync(path.join(b, PERMALL), wrapState(plain));
    expect(await resumedPcr10('swtpm', b, [])).toBe(pcr);

    const c = makeTempDir();
    writeFileSync(path.join(c, PERMALL), wrapState(plain, s.key));
    expect(await resumedPcr10('swtpm', c, ['--key', s.keyOpt])).toBe(pcr);
  }, 60_000);

  it('passphrase keys: swtpm and vtpmd derive the same key (pbkdf2 and sha512)', async () => {
    const s = secrets();
    for (const opt of [`pwdfile=${s.pwdFile}`, `pwdfile=${s.pwdFile},kdf=sha512,mode=aes-256-cbc`]) {
      const dir = makeTempDir();
      await extendAndSave('swtpm', dir, ['--key', opt]);
      const file = readFileSync(path.join(dir, PERMALL));
      expect(file.readUInt16BE(4) & 0x01).toBe(1);
      expect(unwrapState(file, PERMALL, parseKeyOption(opt, '--key')).length).toBeGreaterThan(1000);
    }
  }, 60_000);

  it('migration blobs: swtpm_ioctl --save from swtpm opens with our code, ours load into swtpm', async () => {
    const s = secrets();
    const keys = ['--key', s.keyOpt, '--migration-key', s.migOpt];
    const a = makeTempDir();
    const pcr = await extendAndSave('swtpm', a, keys);
    const plain = unwrapState(readFileSync(path.join(a, PERMALL)), PERMALL, s.key);

    const d = await startDaemon({ impl: 'swtpm', flags: ['not-need-init'], stateDir: a, extraArgs: keys });
    const saved = path.join(makeTempDir(), 'permanent');
    const r = await swtpmIoctl(d, ['--save', 'permanent', saved]);
    expect(r.code, r.stderr).toBe(0);
    await d.stop();
    const blob = readFileSync(saved);
    expect(blob.readUInt16BE(4)).toBe(0x16); // migration data under a 256-bit migration key; swtpm_ioctl asks for DECRYPTED
    expect(Buffer.from(importStateBlob(blob, false, { file: s.key, migration: s.mig }))).toEqual(Buffer.from(plain));

    // our blob of the same payload, into a fresh swtpm with the same keys
    const ours = path.join(makeTempDir(), 'ours');
    writeFileSync(ours, exportStateBlob(plain, { file: s.key, migration: s.mig }).blob);
    const dest = await startDaemon({ impl: 'swtpm', stateDir: makeTempDir(), extraArgs: keys });
    expect((await swtpmIoctl(dest, ['--load', 'permanent', ours])).code).toBe(0);
    expect((await swtpmIoctl(dest, ['-i'])).code).toBe(0);
    await tpm2ok('startup', dest.tcti); // SU_STATE
    expect(await pcr10(dest.tcti)).toBe(pcr);
    await dest.stop();
  }, 60_000);
});

describe.skipIf(!vtpmdAvailable())('vtpmd --key and --migration-key', () => {
  it('state written under --key: encrypted on disk, resumed with the key; a wrong or missing key is refused and the file kept', async () => {
    const s = secrets();
    const dir = makeTempDir();
    const pcr = await extendAndSave('vtpmd', dir, ['--key', s.keyOpt]);
    const file = readFileSync(path.join(dir, PERMALL));
    expect(file.readUInt16BE(4)).toBe(0x09);
    expect(unwrapState(file, PERMALL, s.key).length).toBeGreaterThan(0);
    expect(await resumedPcr10('vtpmd', dir, ['--key', s.keyOpt])).toBe(pcr);

    const before = readFileSync(path.join(dir, PERMALL));
    for (const [args, msg] of [
      [['--key', `file=${s.otherKeyFile},mode=aes-256-cbc`], /cannot decrypt .*permall: the HMAC does not match/],
      [['--key', `file=${s.keyFile.replace(/key$/, 'key')},mode=aes-128-cbc`], /the key has 64 hex digits, the mode needs 32/],
      [[], /permall is encrypted; give the --key/],
    ] as const) {
      const sock = path.join(makeTempDir('vtpmd-sock-'), 'ctrl');
      const r = await run(process.execPath, [VTPMD_MAIN, 'socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--ctrl', `type=unixio,path=${sock}`, '--flags', 'not-need-init', ...args], { timeoutMs: 15_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toContain('c3c3c3');
    }
    expect(readFileSync(path.join(dir, PERMALL))).toEqual(before);
  }, 60_000);

  it('GET_CONFIG flags; migration through swtpm_ioctl --save/--load needs the migration key (0x0d without, 0x21 wrong)', async () => {
    const s = secrets();
    const keys = ['--key', s.keyOpt, '--migration-key', s.migOpt];
    const src = await startDaemon({ impl: 'vtpmd', flags: ['not-need-init', 'startup-clear'], extraArgs: keys });
    expect((await swtpmIoctl(src, ['-g'])).stdout).toMatch(/0x3\b/);
    await tpm2ok('pcrextend', src.tcti, [`10:sha256=${DIGEST}`]);
    const pcr = await pcr10(src.tcti);
    const out = makeTempDir();
    for (const t of ['permanent', 'volatile']) expect((await swtpmIoctl(src, ['--save', t, path.join(out, t)])).code).toBe(0);
    await src.stop();
    expect(readFileSync(path.join(out, 'permanent')).readUInt16BE(4)).toBe(0x16); // as swtpm's

    const noKey = await startDaemon({ impl: 'vtpmd' });
    const r0 = await swtpmIoctl(noKey, ['--load', 'permanent', path.join(out, 'permanent')]);
    expect(r0.code).not.toBe(0);
    expect(r0.stdout + r0.stderr).toMatch(/0xd\b|0x0d\b|\b13\b/i);
    await noKey.stop();
    const wrong = await startDaemon({ impl: 'vtpmd', extraArgs: ['--key', s.keyOpt, '--migration-key', `file=${s.otherKeyFile},mode=aes-256-cbc`] });
    const r1 = await swtpmIoctl(wrong, ['--load', 'permanent', path.join(out, 'permanent')]);
    expect(r1.stdout + r1.stderr).toMatch(/0x21\b|\b33\b/i);
    await wrong.stop();

    const dest = await startDaemon({ impl: 'vtpmd', extraArgs: keys });
    for (const t of ['permanent', 'volatile']) {
      const r = await swtpmIoctl(dest, ['--load', t, path.join(out, t)]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    expect((await swtpmIoctl(dest, ['-i'])).code).toBe(0);
    expect(await pcr10(dest.tcti)).toBe(pcr);
    await dest.stop();
  }, 60_000);
});
