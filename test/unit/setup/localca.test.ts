// The local CA's configuration file, its serial file and its lock (no CA keys are made here).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expandVars, parseLocalCaConfig, DEFAULT_LOCALCA_DIR, LocalCaConfigError } from '../../../src/setup/localca-config.js';
import { acquireLocalCaLock, LocalCaLockError } from '../../../src/setup/localca-lock.js';
import { nextSerialFromFile, serialHex } from '../../../src/setup/localca.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'vtpmd-localca-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('configuration', () => {
  it('defaults live under /var/lib/vtpmd/localca', () => {
    const c = parseLocalCaConfig('');
    expect(c.statedir).toBe(DEFAULT_LOCALCA_DIR);
    expect(c.signingkey).toBe(`${DEFAULT_LOCALCA_DIR}/signkey.pem`);
    expect(c.issuercert).toBe(`${DEFAULT_LOCALCA_DIR}/issuercert.pem`);
    expect(c.certserial).toBe(`${DEFAULT_LOCALCA_DIR}/certserial`);
  });

  it('keys, comments, ${VAR} from the environment and from env: lines', () => {
    const c = parseLocalCaConfig(
      '# local CA\nenv:CADIR = ${BASE}/ca\nstatedir = ${CADIR}\nsigningkey = ${CADIR}/key.pem\n  issuercert=${CADIR}/cert.pem\nsigningkey_password = s3cret\n',
      { env: { BASE: '/srv' } },
    );
    expect(c).toMatchObject({ statedir: '/srv/ca', signingkey: '/srv/ca/key.pem', issuercert: '/srv/ca/cert.pem', certserial: '/srv/ca/certserial', signingkeyPassword: 's3cret' });
    expect(c.env).toEqual({ CADIR: '/srv/ca' });
    expect(expandVars('${NOPE}x', {})).toBe('x');
  });

  it('relative paths are taken from the configuration file directory; bad lines and PKCS#11 keys are refused', () => {
    expect(parseLocalCaConfig('statedir = ca\n', { baseDir: '/etc/vtpmd' }).statedir).toBe('/etc/vtpmd/ca');
    expect(() => parseLocalCaConfig('statedir /x\n')).toThrow(/line 1: expected "key = value"/);
    expect(() => parseLocalCaConfig('signingkey = pkcs11:token=x\n')).toThrow(LocalCaConfigError);
  });
});

describe('serial file', () => {
  it('a missing file starts at 2 (swtpm_localca 0.7), then +1 per certificate, written back', () => {
    const f = path.join(tmp(), 'certserial');
    expect(nextSerialFromFile(f)).toBe(2n);
    expect(nextSerialFromFile(f)).toBe(3n);
    expect(readFileSync(f, 'utf8')).toBe('3');
  });

  it('garbage restarts at 1; a serial past 20 octets restarts at a random one that fits', () => {
    const f = path.join(tmp(), 'certserial');
    writeFileSync(f, 'banana');
    expect(nextSerialFromFile(f)).toBe(2n);
    writeFileSync(f, ((1n << 159n) - 1n).toString());
    const s = nextSerialFromFile(f);
    expect(s > 0n && s < 1n << 64n).toBe(true);
  });

  it('hex serials stay positive in DER', () => {
    expect(serialHex(2n)).toBe('02');
    expect(serialHex(0x80n)).toBe('0080');
    expect(serialHex(0x123n)).toBe('0123');
  });
});

describe('lock', () => {
  it('excludes a second holder until released; the file stays', async () => {
    const f = path.join(tmp(), '.lock.swtpm-localca');
    const release = await acquireLocalCaLock(f);
    await expect(acquireLocalCaLock(f, 100)).rejects.toThrow(LocalCaLockError);
    await expect(acquireLocalCaLock(f, 100)).rejects.toThrow(/locked by another process .* for over 0 s/);
    release();
    release(); // twice: harmless
    expect(existsSync(f)).toBe(true);
    (await acquireLocalCaLock(f, 100))();
  });

  it('a waiter gets the lock as soon as it is released', async () => {
    const f = path.join(tmp(), '.lock.swtpm-localca');
    const release = await acquireLocalCaLock(f);
    setTimeout(release, 50);
    (await acquireLocalCaLock(f, 5000))();
  });

  it("excludes swtpm_localca's flock held by another process, and is free once that process dies", async () => {
    const f = path.join(tmp(), '.lock.swtpm-localca');
    const holder = spawn('python3', ['-c', `import fcntl, sys\nf = open(${JSON.stringify(f)}, 'w')\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()`], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await new Promise((r) => holder.stdout.once('data', r));
    await expect(acquireLocalCaLock(f, 100)).rejects.toThrow(LocalCaLockError);
    holder.kill('SIGKILL'); // a crashed provisioning run: the kernel drops its lock
    await new Promise((r) => holder.once('exit', r));
    (await acquireLocalCaLock(f, 1000))();
  });
});
