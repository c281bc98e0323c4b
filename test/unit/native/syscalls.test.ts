// The native addon against the kernel: real locks (and swtpm's kind of lock, taken by python3's
// fcntl.lockf), real datagrams received by python3, a real chroot in a child process, and
// descriptors sent with SCM_RIGHTS by python3 arriving with their bytes, and a served
// connection's writes, queue and close.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  changeRoot,
  lockWholeFile,
  sendDatagram,
  serveConnection,
  SyscallError,
  type ConnectionHandlers,
  type NativeConnection,
  watchDevice,
  type DeviceStats,
  type DeviceWatch,
} from '../../../src/native/syscalls.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const tempDir = tempDirs('vtpmd-native-');

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

/** A unix server whose connections are served by the addon, with `onConnection` as the handlers. */
async function nativeServer(onConnection: (conn: { socket: net.Socket; serve: (h: ConnectionHandlers) => NativeConnection }) => void) {
  const sock = path.join(tempDir(), 's');
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    onConnection({ socket, serve: (h) => serveConnection(fd, h) });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return { sock, server };
}

describe('serveConnection', () => {
  it('hands over the descriptors sent with some bytes before those bytes, then the end', async () => {
    const events: string[] = [];
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    const { sock, server } = await nativeServer(({ socket, serve }) => {
      serve({
        data(bytes, fds) {
          for (const d of fds) {
            const st = fs.fstatSync(d);
            events.push(st.isSocket() ? 'socket' : st.isFile() ? `file:${fs.readFileSync(d, 'utf8')}` : 'other');
            fs.closeSync(d);
          }
          events.push(`bytes:${Buffer.from(bytes).toString()}`);
        },
        close(errno) {
          events.push(`end:${errno}`);
          socket.destroy();
          ended();
        },
      });
    });
    const file = path.join(tempDir(), 'f');
    fs.writeFileSync(file, 'hello');
    // Not spawnSync: the event loop must run while the sender sends, as it would in the daemon.
    const sender = spawn('python3', ['-c', `
import socket, array, time
s = socket.socket(socket.AF_UNIX); s.connect(${JSON.stringify(sock)})
a, b = socket.socketpair()
f = open(${JSON.stringify(file)})
s.sendall(b'one')
time.sleep(0.1)
s.sendmsg([b'two'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [a.fileno(), f.fileno()]))])
time.sleep(0.1)
s.close()`], { stdio: 'inherit' });
    expect(await new Promise((r) => sender.once('exit', r))).toBe(0);
    await done;
    server.close();
    expect(events).toEqual(['bytes:one', 'socket', 'file:hello', 'bytes:two', 'end:null']);
  });

  it('answers each message at once, queues what the socket cannot take, and closes after the queue when asked', async () => {
    // 4 MiB is far more than a unix socket buffers: most of it waits for the reader.
    const big = Buffer.alloc(4 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
    let closedWith: string | null | undefined;
    const { sock, server } = await nativeServer(({ socket, serve }) => {
      const conn = serve({
        data(bytes) {
          if (Buffer.from(bytes).toString() === 'ping') expect(conn.write(Buffer.from('pong'))).toBe(true);
          if (Buffer.from(bytes).toString() === 'big') {
            expect(conn.write(big)).toBe(true);
            expect(conn.write(Buffer.from('end'))).toBe(true);
            conn.close(true);
            expect(conn.closed).toBe(false); // told once the caller's code has run
            expect(conn.write(Buffer.from('late'))).toBe(false);
          }
        },
        close(errno) {
          closedWith = errno;
          socket.destroy();
        },
      });
    });
    const client = net.connect(sock);
    const chunks: Buffer[] = [];
    client.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => client.once('connect', r));
    client.write('ping');
    while (Buffer.concat(chunks).toString() !== 'pong') await new Promise((r) => setTimeout(r, 5));
    chunks.length = 0;
    client.write('big');
    await new Promise((r) => client.once('end', r));
    server.close();
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(big.length + 3);
    expect(got.subarray(0, big.length).equals(big)).toBe(true);
    expect(got.subarray(big.length).toString()).toBe('end');
    expect(closedWith).toBeNull();
  });

  it('a write to a peer that went away ends the connection with its errno', async () => {
    let closedWith: string | null | undefined;
    let conn!: NativeConnection;
    const { sock, server } = await nativeServer(({ socket, serve }) => {
      conn = serve({ data() {}, close: (errno) => ((closedWith = errno), socket.destroy()) });
    });
    const client = net.connect(sock);
    await new Promise((r) => client.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    client.destroy();
    await new Promise((r) => setTimeout(r, 50));
    // The peer's end was read first: closed without an errno, and nothing more is written.
    expect(closedWith).toBeNull();
    expect(conn.write(Buffer.from('x'))).toBe(false);
    server.close();
  });
});

describe('watchDevice', () => {
  it('reads a pollable descriptor from the event loop, one read per readable event, until its end', async () => {
    // A FIFO stands in for /dev/cuse: poll and read(2) behave alike, and the caller keeps the fd.
    const fifo = path.join(tempDir(), 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const events: string[] = [];
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    const rx = new Uint8Array(64);
    const watch = watchDevice(fd, rx, 0, (event) => {
      if (event.request) {
        // The request is read into the caller's buffer, in place; nothing was offered.
        expect(event.request.buffer).toBe(rx.buffer);
        expect(event.served).toBe(-1);
        events.push(`bytes:${Buffer.from(event.request).toString()}`);
      } else {
        events.push(`end:${event.errno}`);
        ended();
      }
    });
    const writer = spawn('sh', ['-c', `exec 3>${JSON.stringify(fifo)}; printf first >&3; sleep 0.2; printf second >&3; sleep 0.2`]);
    expect(await new Promise((r) => writer.once('exit', r))).toBe(0);
    await done;
    watch.stop();
    watch.stop(); // twice: harmless
    fs.closeSync(fd); // still ours
    expect(events).toEqual(['bytes:first', 'bytes:second', 'end:null']);
  });

  const header = (len: number, unique: number) => Buffer.concat([u32le(len), u32le(0), u64le(unique)]).toString('hex');
  const u32le = (v: number) => Buffer.from(new Uint32Array([v]).buffer);
  const u64le = (v: number) => Buffer.from(new BigUint64Array([BigInt(v)]).buffer);

  /**
   * python3 plays the kernel's side of /dev/cuse over a unix socket: `requests` (Python, with
   * request(opcode, unique, body) to send one and print the reply in hex) against watchDevice on
   * the accepted socket, which takes WRITEs up to `takeWrites` bytes from the start. Returns the
   * replies and the addon's counts at the end.
   */
  async function fakeKernel(
    requests: string,
    followUpUs: number,
    takeWrites: number,
    onRequest: (event: { request: Uint8Array; served: number; answered: number }, watch: DeviceWatch) => void,
  ) {
    const script = `
import socket, struct
s = socket.socket(socket.AF_UNIX); s.connect(SOCK)
def request(opcode, unique, body):
    s.sendall(struct.pack('<IIQQIIIHH', 40 + len(body), opcode, unique, 0, 0, 0, 1, 0, 0) + body)
    print(s.recv(65536).hex(), flush=True)
def io(size):
    return struct.pack('<QQIIQII', 0, 0, size, 0, 0, 0, 0)
${requests}
s.close()`;
    let stats!: DeviceStats;
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    const sock = path.join(tempDir(), 's');
    const server = net.createServer({ pauseOnConnect: true }, (socket) => {
      const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
      const watch: DeviceWatch = watchDevice(fd, new Uint8Array(4096), followUpUs, (event) => {
        if (event.request) return onRequest(event, watch);
        stats = watch.stats();
        watch.stop();
        socket.destroy();
        ended();
      });
      watch.takeWrites(takeWrites);
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const child = spawn('python3', ['-c', script.replace('SOCK', JSON.stringify(sock))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    expect(await new Promise((r) => child.once('exit', r))).toBe(0);
    await done;
    server.close();
    return { replies: out.trim().split('\n'), stats };
  }

  for (const followUpUs of [0, 2_000_000]) {
    it(`answers the READs of an offered response without JS, and tells JS what they took (follow-up ${followUpUs} µs)`, async () => {
      // A WRITE, then READs of 6 and 4096 bytes and one more READ, then a RELEASE-like request.
      const response = Buffer.from('0123456789abcdef');
      const seen: string[] = [];
      const { replies, stats } = await fakeKernel(
        `request(16, 1, io(3) + b'cmd')
for unique, size in ((2, 6), (3, 4096), (4, 4096)):
    request(15, unique, io(size))
request(18, 5, struct.pack('<QIIQ', 0, 0, 0, 0))`,
        followUpUs,
        0,
        (event, watch) => {
          const opcode = Buffer.from(event.request).readUInt32LE(4);
          const unique = Number(Buffer.from(event.request).readBigUInt64LE(8));
          seen.push(`${opcode}/${event.served}`);
          if (opcode === 16) {
            watch.write(Buffer.concat([Buffer.from(header(24, unique), 'hex'), u32le(3), u32le(0)]));
            watch.offer(response); // by the time the callback returns, as the session does
          } else {
            watch.write(Buffer.from(header(16, unique), 'hex'));
          }
        },
      );
      // JS saw the WRITE and the last request only; that one says the READs took all 16 bytes.
      expect(seen).toEqual(['16/-1', '18/16']);
      expect(stats).toMatchObject({ answeredWrites: 0, servedReads: 3 });
      expect(replies).toEqual([
        header(24, 1) + '0300000000000000',
        header(22, 2) + response.subarray(0, 6).toString('hex'),
        header(26, 3) + response.subarray(6).toString('hex'),
        header(16, 4), // used up: no bytes, as swtpm cuse answers
        header(16, 5),
      ]);
    });
  }

  it('answers well-formed WRITEs itself while JS lets it, taking at most what JS said, and hands JS the data', async () => {
    // WRITEs of 3 and 6 bytes taken by the addon (the second cut to 4), one answered by JS (taking
    // was turned off), and one whose size overruns its data, which the addon leaves to JS.
    const seen: string[] = [];
    const takeNext = [4, 0, 4096];
    const { replies, stats } = await fakeKernel(
      `for unique, size, data in ((1, 3, b'cmd'), (2, 6, b'abcdef'), (3, 3, b'xyz'), (4, 10, b'abc')):
    request(16, unique, io(size) + data)`,
      0,
      4096,
      (event, watch) => {
        const unique = Number(Buffer.from(event.request).readBigUInt64LE(8));
        const data = Buffer.from(event.request.subarray(80, 80 + (event.answered || 3))).toString();
        seen.push(`${unique}:${event.answered}:${data}`);
        if (event.answered === 0) watch.write(Buffer.concat([Buffer.from(header(24, unique), 'hex'), u32le(99), u32le(0)]));
        watch.takeWrites(takeNext.shift() ?? 0);
      },
    );
    expect(seen).toEqual(['1:3:cmd', '2:4:abcd', '3:0:xyz', '4:0:abc']);
    expect(stats).toMatchObject({ answeredWrites: 2, servedReads: 0 });
    expect(replies).toEqual([
      header(24, 1) + '0300000000000000',
      header(24, 2) + '0400000000000000',
      header(24, 3) + '6300000000000000',
      header(24, 4) + '6300000000000000',
    ]);
  });
});
