// The native addon against the kernel: real locks (and swtpm's kind of lock, taken by python3's
// fcntl.lockf), real datagrams received by python3, a real chroot in a child process, and
// descriptors sent with SCM_RIGHTS by python3 arriving with their bytes.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { changeRoot, lockWholeFile, sendDatagram, SyscallError, watchDescriptors } from '../../../src/native/syscalls.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-native-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs a python3 program until it prints a line; returns the line and the process. */
async function python(script: string): Promise<{ line: string; child: ReturnType<typeof spawn> }> {
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`python3 exited ${code}`)));
  });
  return { line, child };
}

describe('lockWholeFile', () => {
  it('one open file holds the lock; another open of the same file is refused until it closes', () => {
    const file = path.join(tempDir(), '.lock');
    const a = fs.openSync(file, 'w');
    const b = fs.openSync(file, 'w');
    expect(lockWholeFile(a)).toEqual({ locked: true });
    // The same process, another open file: an OFD lock conflicts (a POSIX lock would not).
    expect(lockWholeFile(b)).toEqual({ locked: false, holderPid: null });
    fs.closeSync(a);
    expect(lockWholeFile(b)).toEqual({ locked: true });
    fs.closeSync(b);
  });

  it("conflicts with swtpm's POSIX lock and names its holder", async () => {
    const file = path.join(tempDir(), '.lock');
    const { child } = await python(
      `import fcntl, os, sys\nf = open(${JSON.stringify(file)}, 'w')\nfcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\nprint(os.getpid(), flush=True)\nsys.stdin.read()`,
    );
    const fd = fs.openSync(file, 'w');
    try {
      expect(lockWholeFile(fd)).toEqual({ locked: false, holderPid: child.pid });
    } finally {
      child.stdin!.end();
      await new Promise((r) => child.once('exit', r));
    }
    expect(lockWholeFile(fd)).toEqual({ locked: true });
    fs.closeSync(fd);
  });

  it('a bad descriptor is a SyscallError naming the errno', () => {
    expect(() => lockWholeFile(999_999)).toThrow(SyscallError);
    expect(() => lockWholeFile(999_999)).toThrow(/EBADF/);
  });
});

describe('sendDatagram', () => {
  const listener = (address: string) => `
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(${JSON.stringify(address)})
print('ready', flush=True)
for _ in range(2):
    print(s.recv(4096).hex(), flush=True)
`;

  for (const [what, name] of [
    ['a path', (d: string) => path.join(d, 'notify')],
    ['an abstract name (@name)', () => `@vtpmd-test-${process.pid}-${Date.now()}`],
  ] as const) {
    it(`sends one datagram per call to ${what}, in order`, async () => {
      const address = name(tempDir());
      const pyAddress = address.startsWith('@') ? `\0${address.slice(1)}` : address;
      const { child } = await python(listener(pyAddress));
      const lines: string[] = [];
      child.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
      sendDatagram(address, Buffer.from('READY=1\nSTATUS=up'));
      sendDatagram(address, Buffer.from('STOPPING=1'));
      await new Promise((r) => child.once('exit', r));
      expect(lines.map((h) => Buffer.from(h, 'hex').toString())).toEqual(['READY=1\nSTATUS=up', 'STOPPING=1']);
    });
  }

  it('nobody listening, or a name too long, is a SyscallError', () => {
    expect(() => sendDatagram(path.join(tempDir(), 'none'), Buffer.from('x'))).toThrow(/ENOENT/);
    expect(() => sendDatagram(`@vtpmd-nobody-${process.pid}`, Buffer.from('x'))).toThrow(/ECONNREFUSED/);
    expect(() => sendDatagram(`/tmp/${'x'.repeat(200)}`, Buffer.from('x'))).toThrow(/ENAMETOOLONG/);
  });
});

describe('changeRoot', () => {
  const asRoot = process.getuid?.() === 0;
  it.skipIf(!asRoot)('moves a process into the directory: / is the directory, the old root is gone', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'marker'), 'inside');
    const syscalls = new URL('../../../dist/native/syscalls.js', import.meta.url).pathname;
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `
import * as fs from 'node:fs';
const { changeRoot } = await import(${JSON.stringify(syscalls)});
changeRoot(${JSON.stringify(dir)});
console.log(fs.readFileSync('/marker', 'utf8'), process.cwd(), fs.existsSync(${JSON.stringify(syscalls)}));`],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('inside / false');
  });

  it('without the privilege, or to a missing directory, is a SyscallError', () => {
    expect(() => changeRoot(path.join(tempDir(), 'missing'))).toThrow(asRoot ? /ENOENT/ : /EPERM/);
  });
});

describe('watchDescriptors', () => {
  it('hands over the descriptors sent with some bytes before those bytes, then the end', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 's');
    const events: string[] = [];
    let watch: { stop(): void } | undefined;
    const ended = new Promise<void>((resolve) => {
      const server = net.createServer({ pauseOnConnect: true }, (conn) => {
        const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
        watch = watchDescriptors(fd, (bytes, fds, errno) => {
          for (const d of fds) {
            const st = fs.fstatSync(d);
            events.push(st.isSocket() ? 'socket' : st.isFile() ? `file:${fs.readFileSync(d, 'utf8')}` : 'other');
            fs.closeSync(d);
          }
          if (bytes) events.push(`bytes:${bytes.toString()}`);
          else {
            events.push(`end:${errno}`);
            conn.destroy();
            server.close();
            resolve();
          }
        });
      });
      server.listen(sock);
    });
    await new Promise((r) => setTimeout(r, 50));
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'hello');
    // Not spawnSync: the event loop must run while the sender sends, as it would in the daemon.
    const sender = spawn('python3', ['-c', `
import socket, array
s = socket.socket(socket.AF_UNIX); s.connect(${JSON.stringify(sock)})
a, b = socket.socketpair()
f = open(${JSON.stringify(file)})
s.sendall(b'one')
import time; time.sleep(0.1)
s.sendmsg([b'two'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [a.fileno(), f.fileno()]))])
time.sleep(0.1)
s.close()`], { stdio: 'inherit' });
    expect(await new Promise((r) => sender.once('exit', r))).toBe(0);
    await ended;
    expect(events).toEqual(['bytes:one', 'socket', 'file:hello', 'bytes:two', 'end:null']);
    watch!.stop(); // after the end: harmless
  });
});
