import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFs, type FsOps } from '../../../src/storage/atomic-write.js';
import { crc32, unwrapState, wrapState } from '../../../src/storage/envelope.js';
import { lockStateDir, LockError } from '../../../src/storage/lock.js';
import { DirStorage, StateFileError, StorageError } from '../../../src/storage/storage.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const tempDir = tempDirs('vtpmd-storage-');

describe('state envelope', () => {
  it('uses swtpm\'s header: version 2, min 1, hdrsize 10, flags 0, totlen = file length', () => {
    const file = wrapState(new Uint8Array([0xaa, 0xbb]));
    expect(Buffer.from(file.subarray(0, 16)).toString('hex')).toBe('0201000a0000' + '0000001c' + '0001' + '00000002');
    expect(file.length).toBe(0x1c); // 10 header + 6+2 data TLV + 6+4 CRC TLV
    expect(unwrapState(file, 'x')).toEqual(new Uint8Array([0xaa, 0xbb]));
  });

  it('crc32 matches zlib', () => {
    expect(crc32(new TextEncoder().encode('abc'))).toBe(0x352441c2);
  });

  it('refuses truncated, extended and corrupted files', () => {
    const file = wrapState(new Uint8Array(100).fill(7));
    expect(() => unwrapState(file.subarray(0, 50), 'f')).toThrow(StateFileError);
    expect(() => unwrapState(file.subarray(0, 5), 'f')).toThrow(/only 5 bytes/);
    expect(() => unwrapState(new Uint8Array([...file, 0]), 'f')).toThrow(/header says/);
    const bad = file.slice();
    bad[40] ^= 1;
    expect(() => unwrapState(bad, 'f')).toThrow(/checksum mismatch/);
  });
});

describe('DirStorage', () => {
  it('creates a missing state dir with mode 0700 and round-trips permall', () => {
    const dir = path.join(tempDir(), 'a', 'b');
    const s = new DirStorage({ dir });
    s.lock();
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(s.loadPermanent()).toBeNull();
    s.storePermanent(new Uint8Array([1, 2, 3]));
    expect(fs.existsSync(path.join(dir, 'tpm2-00.permall'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'TMP2-00.permall'))).toBe(false);
    expect(s.loadPermanent()).toEqual(new Uint8Array([1, 2, 3]));
    s.unlock();
  });

  it('reports a directory it cannot create clearly', () => {
    const file = path.join(tempDir(), 'f');
    fs.writeFileSync(file, '');
    expect(() => new DirStorage({ dir: path.join(file, 'sub') }).prepare()).toThrow(StorageError);
    expect(() => new DirStorage({ dir: path.join(file, 'sub') }).prepare()).toThrow(/cannot create state directory/);
  });

  it('applies an explicit mode exactly', () => {
    const dir = tempDir();
    const s = new DirStorage({ dir, mode: 0o600, explicitMode: true });
    s.storePermanent(new Uint8Array([1]));
    expect(fs.statSync(path.join(dir, 'tpm2-00.permall')).mode & 0o777).toBe(0o600);
  });

  it('a crash between write and rename leaves the old file intact', () => {
    const dir = tempDir();
    new DirStorage({ dir }).storePermanent(new Uint8Array([1, 1, 1]));
    const crashing: FsOps = {
      ...nodeFs,
      renameSync: () => {
        throw new Error('simulated crash');
      },
    };
    const s = new DirStorage({ dir, fs: crashing });
    expect(() => s.storePermanent(new Uint8Array([2, 2, 2, 2]))).toThrow(StorageError);
    expect(new DirStorage({ dir }).loadPermanent()).toEqual(new Uint8Array([1, 1, 1]));
  });

  it('fsyncs the temp file before the rename and the directory after it', () => {
    const dir = tempDir();
    const calls: string[] = [];
    const ops: FsOps = {
      ...nodeFs,
      fsyncSync: (fd) => {
        calls.push('fsync');
        nodeFs.fsyncSync(fd);
      },
      renameSync: (a, b) => {
        calls.push(`rename ${path.basename(a)}`);
        nodeFs.renameSync(a, b);
      },
    };
    new DirStorage({ dir, fs: ops }).storePermanent(new Uint8Array([5]));
    expect(calls).toEqual(['fsync', 'rename TMP2-00.permall', 'fsync']);
  });

  it('a damaged permall is reported, not half-loaded', () => {
    const dir = tempDir();
    const s = new DirStorage({ dir });
    s.storePermanent(new Uint8Array(64).fill(3));
    const f = path.join(dir, 'tpm2-00.permall');
    fs.truncateSync(f, 40);
    expect(() => s.loadPermanent()).toThrow(/tpm2-00.permall is damaged/);
  });

  // cuse --runas: root writes the state at power-on, then the files become the user's.
  it.skipIf(process.getuid?.() !== 0)('chownFiles gives the permall, volatile state, journal and lock to the user, and nothing else', () => {
    const dir = tempDir();
    const s = new DirStorage({ dir });
    s.lock();
    s.storePermanent(new Uint8Array([1]));
    s.storePermanent(new Uint8Array([2])); // the second store goes to the journal
    s.storeVolatile(new Uint8Array([3]));
    fs.writeFileSync(path.join(dir, 'other'), '');
    s.chownFiles(65534, 65533);
    const owners = Object.fromEntries(fs.readdirSync(dir).sort().map((f) => [f, `${fs.statSync(path.join(dir, f)).uid}:${fs.statSync(path.join(dir, f)).gid}`]));
    expect(owners).toEqual({
      '.lock': '65534:65533',
      other: '0:0',
      'tpm2-00.permall': '65534:65533',
      'tpm2-00.permall.journal': '65534:65533',
      'tpm2-00.volatilestate': '65534:65533',
    });
    // The storage goes on working with the files it holds open (as root here).
    s.storePermanent(new Uint8Array([4]));
    expect(s.loadPermanent()).toEqual(new Uint8Array([4]));
    s.unlock();
  });
});

describe('state dir lock', () => {
  it('a second lock on the same dir fails while the first is held, even in the same process', () => {
    const dir = tempDir();
    const a = lockStateDir(dir);
    expect(() => lockStateDir(dir)).toThrow(LockError);
    a.release();
    lockStateDir(dir).release();
    expect(fs.readFileSync(path.join(dir, '.lock'), 'utf8')).toBe(''); // swtpm's empty lock file
  });

  it("conflicts with swtpm's POSIX record lock (fcntl F_SETLK) and names its holder; a SIGKILLed holder leaves no lock", async () => {
    const dir = tempDir();
    const file = path.join(dir, '.lock');
    // what swtpm does: open .lock and F_SETLK a write lock on the whole file, then keep running
    const holder = spawn('perl', ['-MFcntl', '-e', `$| = 1; open(my $f, '>', $ARGV[0]) or die; my $l = pack('s s x4 q q l x4', F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLK, $l) or die; print "locked\n"; sleep 60`, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    expect(() => lockStateDir(dir)).toThrow(new RegExp(`in use by process ${holder.pid}`));
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    lockStateDir(dir).release();
  });

  it('a lock file with content (an older vtpmd wrote its pid) is no obstacle', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, '.lock'), String(process.ppid));
    lockStateDir(dir).release();
  });
});
