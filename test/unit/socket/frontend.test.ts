// The socket front end with a fake engine: data-channel framing, connection patterns of tpm2-tss
// and QEMU, unix sockets, and CMD_SET_DATAFD with a real SCM_RIGHTS descriptor.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/log.js';
import { Device } from '../../../src/device/device.js';
import { CommandFramer, INCOMPLETE_HEADER_MS, INCOMPLETE_MS } from '../../../src/frontends/socket/data-channel.js';
import { SocketFrontend, type Endpoint } from '../../../src/frontends/socket/socket-frontend.js';
import { realEngines } from '../../../src/device/engine-factory.js';
import { CC, fakeWorld, MemoryStorage, tpmCommand } from '../device/fake-engine.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-fe-'));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function start(opts: { data?: Endpoint | null; ctrl?: Endpoint; disconnect?: boolean; terminate?: boolean }) {
  const world = fakeWorld();
  const device = new Device({ storage: world.storage, engines: world.factory });
  const terminations: string[] = [];
  const fe = await SocketFrontend.start({
    device,
    log: silentLogger,
    ...(opts.data ? { data: { endpoint: opts.data, disconnect: opts.disconnect ?? false } } : {}),
    ...(opts.ctrl ? { ctrl: { endpoint: opts.ctrl, terminate: false } } : {}),
    terminateOnDataClose: opts.terminate ?? false,
    onTerminate: (r) => terminations.push(r),
  });
  cleanups.push(() => fe.close());
  return { world, device, fe, terminations };
}

function connect(target: { port: number } | { path: string }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = 'path' in target ? net.connect(target.path) : net.connect(target.port, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => void s.destroy());
  });
}

/** Reads `n` bytes (or what is there when the peer closes). */
function read(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= n) finish();
    };
    const finish = () => {
      s.off('data', onData);
      s.off('close', finish);
      resolve(got);
    };
    s.on('data', onData);
    s.on('close', finish);
  });
}

async function tcpPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const p = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return p;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** A plain Uint8Array copy: what the data channel pushes into the framer. */
const u8 = (b: Uint8Array) => new Uint8Array(b);

describe('CommandFramer', () => {
  const chunks = (f: CommandFramer, ...cs: Uint8Array[]) => {
    for (const c of cs) f.push(c);
    return f.next();
  };

  it('reads a commandSize split over one-byte chunks (and a bad one) without joining them', () => {
    const f = new CommandFramer();
    const a = u8(tpmCommand(CC.GetRandom, [0, 8]));
    for (let i = 0; i < a.length - 1; i++) {
      f.push(a.subarray(i, i + 1));
      expect(f.next(), `after byte ${i}`).toEqual({ waitMs: i < 9 ? INCOMPLETE_HEADER_MS : INCOMPLETE_MS });
    }
    f.push(a.subarray(a.length - 1));
    expect(f.next()).toEqual({ command: a, reason: 'complete' });
    // A 300-byte command (size 0x0000012c) whose size field is split over three chunks.
    const long = u8(Buffer.concat([Buffer.from('80010000012c0000017d', 'hex'), Buffer.alloc(290, 7)]));
    const h = new CommandFramer();
    for (const [from, to] of [[0, 3], [3, 5], [5, 300]]) h.push(long.subarray(from, to));
    expect(h.next()).toEqual({ command: long, reason: 'complete' });
    // 0x00012345 bytes: over MAX_FRAME, known from the split header alone.
    const big = u8(Buffer.from('80010001234500000176', 'hex'));
    const g = new CommandFramer();
    const cuts = [0, 1, 3, 4, 7, big.length];
    for (let i = 0; i + 1 < cuts.length; i++) g.push(big.subarray(cuts[i], cuts[i + 1]));
    expect(g.next()).toEqual({ command: big, reason: 'badSize' });
  });

  it('frames by commandSize across chunks; a chunk after a complete command starts the next one', () => {
    const f = new CommandFramer();
    const a = u8(tpmCommand(CC.GetRandom, [0, 8]));
    const b = u8(tpmCommand(CC.Startup, [0, 0]));
    expect(chunks(f, a.subarray(0, 5))).toEqual({ waitMs: INCOMPLETE_HEADER_MS });
    expect(chunks(f, a.subarray(5, 11))).toEqual({ waitMs: INCOMPLETE_MS });
    expect(chunks(f, a.subarray(11))).toEqual({ command: a, reason: 'complete' });
    expect(f.next()).toBeNull();
    f.push(b);
    expect(f.next()).toEqual({ command: b, reason: 'complete' });
    expect(f.buffered).toBe(0);
  });

  it('bytes beyond commandSize in the same chunk belong to the command (swtpm: the whole read is the command)', () => {
    const a = u8(tpmCommand(CC.GetRandom, [0, 8]));
    const two = u8(Buffer.concat([a, u8(tpmCommand(CC.Startup, [0, 0]))]));
    expect(chunks(new CommandFramer(), two)).toEqual({ command: two, reason: 'extra' });
    // also when the over-long chunk completes a command that began in an earlier chunk
    const f = new CommandFramer();
    expect(chunks(f, a.subarray(0, 4))).toEqual({ waitMs: INCOMPLETE_HEADER_MS });
    expect(chunks(f, u8(Buffer.concat([a.subarray(4), Buffer.from('0000', 'hex')])))).toEqual({
      command: u8(Buffer.concat([a, Buffer.from('0000', 'hex')])),
      reason: 'extra',
    });
  });

  it('a chunk queued behind a complete command is not merged into it', () => {
    const f = new CommandFramer();
    const a = u8(tpmCommand(CC.GetRandom, [0, 8]));
    const b = u8(tpmCommand(CC.Startup, [0, 0]));
    f.push(a);
    f.push(b); // arrived while `a` was executing
    expect(f.next()).toEqual({ command: a, reason: 'complete' });
    expect(f.next()).toEqual({ command: b, reason: 'complete' });
  });

  it('an impossible commandSize: what arrived is the command, at once', () => {
    for (const h of ['80010000000500000000', '8001ffffffff00000000', '800100001401' + '0000017b0008']) {
      const bytes = Buffer.from(h, 'hex');
      expect(chunks(new CommandFramer(), bytes)).toEqual({ command: bytes, reason: 'badSize' });
    }
  });

  it('flush hands over whatever is buffered', () => {
    const f = new CommandFramer();
    f.push(Buffer.from('80010000', 'hex'));
    f.push(Buffer.from('0010', 'hex'));
    expect(hex(f.flush())).toBe('800100000010');
    expect(f.next()).toBeNull();
  });
});

describe('data channel', () => {
  it('stopped TPM: swtpm\'s fatal response; the connection stays open', async () => {
    const port = await tcpPort();
    await start({ data: { type: 'tcp', port, host: '127.0.0.1' } });
    const s = await connect({ port });
    s.write(tpmCommand(CC.GetRandom, [0, 8]));
    expect(hex(await read(s, 10))).toBe('80010000000a00000101');
    s.write(tpmCommand(CC.GetRandom, [0, 8]));
    expect(hex(await read(s, 10))).toBe('80010000000a00000101');
  });

  it('tpm2-tss pattern: empty connect-then-close, then one connection per command', async () => {
    const port = await tcpPort();
    const { device, world } = await start({ data: { type: 'tcp', port, host: '127.0.0.1' } });
    await device.init();
    (await connect({ port })).end();
    for (const cc of [CC.Startup, CC.GetRandom, CC.GetRandom]) {
      const s = await connect({ port });
      s.write(tpmCommand(cc, [0, 0]));
      expect(hex(await read(s, 10))).toBe('80010000000a00000000');
      s.end();
    }
    expect(world.engine().executed.map((e) => e.cc)).toEqual([CC.Startup, CC.GetRandom, CC.GetRandom]);
  });

  it('a command split across writes gets one response; two commands in one write are one (bad) command', async () => {
    const port = await tcpPort();
    const { device, world } = await start({ data: { type: 'tcp', port, host: '127.0.0.1' } });
    await device.init();
    const s = await connect({ port });
    const startup = Buffer.from(tpmCommand(CC.Startup, [0, 0]));
    s.write(startup.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 30));
    s.write(startup.subarray(3));
    expect(hex(await read(s, 10))).toBe('80010000000a00000000');
    // one response for the lot (the fake engine answers by the first command code; the real
    // engine's TPM_RC_COMMAND_SIZE is checked below)
    s.write(Buffer.concat([tpmCommand(CC.GetRandom), tpmCommand(CC.Startup, [0, 0])]));
    expect(hex(await read(s, 10))).toBe('80010000000a00000000');
    await new Promise((r) => setTimeout(r, 50));
    expect(world.engine().executed.map((e) => e.cc)).toEqual([CC.Startup, CC.GetRandom]);
  });

  it('disconnect: the connection closes after each response', async () => {
    const port = await tcpPort();
    await start({ data: { type: 'tcp', port, host: '127.0.0.1' }, disconnect: true });
    const s = await connect({ port });
    const closed = new Promise((r) => s.once('close', r));
    s.write(tpmCommand(CC.GetRandom));
    expect(hex(await read(s, 10))).toBe('80010000000a00000101');
    await closed;
  });

  it('unix sockets: mode applied, file removed at close; --terminate reports the closed data connection', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'data.sock');
    const { fe, terminations } = await start({ data: { type: 'unix', path: p, mode: 0o621 }, terminate: true });
    expect(fs.statSync(p).mode & 0o777).toBe(0o621);
    const s = await connect({ path: p });
    s.write(tpmCommand(CC.GetRandom));
    expect(hex(await read(s, 10))).toBe('80010000000a00000101');
    s.end();
    await new Promise((r) => setTimeout(r, 50));
    expect(terminations).toHaveLength(1);
    await fe.close();
    expect(fs.existsSync(p)).toBe(false);
  });
});

const havePython = spawnSync('python3', ['-c', 'import socket; socket.SCM_RIGHTS'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!havePython)('CMD_SET_DATAFD (SCM_RIGHTS, via python3 as the client)', () => {
  it('adopts the passed socket as the data channel (test_setdatafd.py flow) and refuses a second one', async () => {
    const dir = tempDir();
    const ctrlPath = path.join(dir, 'ctrl.sock');
    const { device, fe } = await start({ data: null, ctrl: { type: 'unix', path: ctrlPath, mode: 0o770 } });
    await device.init();
    const script = `
import socket, array, sys
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
a, b = socket.socketpair()
c.sendmsg([bytes.fromhex('00000010')], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [b.fileno()]))])
print(c.recv(16).hex()); b.close()
a.sendall(bytes.fromhex('80010000000a00000181')); print(a.recv(100).hex())
x, y = socket.socketpair()
c.sendmsg([bytes.fromhex('00000010')], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [y.fileno()]))])
print(c.recv(16).hex())
c.sendall(bytes.fromhex('00000001')); print(c.recv(16).hex())
c.sendall(bytes.fromhex('00000010')); print(c.recv(16).hex())
`;
    const { spawn } = await import('node:child_process');
    const py = spawn('python3', ['-c', script, ctrlPath]);
    let out = '';
    py.stdout.on('data', (d) => (out += d));
    py.stderr.on('data', (d) => (out += d));
    await new Promise((r) => py.on('exit', r));
    expect(out.trim().split('\n')).toEqual([
      '00000000', // SET_DATAFD accepted
      '80010000000a00000100', // ReadClock over the passed socket: running, no Startup yet
      '0000001f', // a data channel exists already
      '000000000001' + '7fff', // GET_CAPABILITY
      '0000001f',
    ]);
  });

  it('without a descriptor: 0x03', async () => {
    const dir = tempDir();
    const ctrlPath = path.join(dir, 'ctrl.sock');
    await start({ data: null, ctrl: { type: 'unix', path: ctrlPath, mode: 0o770 } });
    const s = await connect({ path: ctrlPath });
    s.write(Buffer.from('00000010', 'hex'));
    expect(hex(await read(s, 4))).toBe('00000003');
  });
});

describe('data channel framing with the real engine (what swtpm answers)', () => {
  async function real() {
    const port = await tcpPort();
    const storage = new MemoryStorage([]);
    const device = new Device({ storage, engines: realEngines() });
    const fe = await SocketFrontend.start({
      device,
      log: silentLogger,
      data: { endpoint: { type: 'tcp', port, host: '127.0.0.1' }, disconnect: false },
      terminateOnDataClose: false,
      onTerminate: () => undefined,
    });
    cleanups.push(() => fe.close());
    await device.init();
    expect(hex(await device.executeTpm(tpmCommand(CC.Startup, [0, 0])))).toBe('80010000000a00000000');
    const s = await connect({ port });
    /** Sends `bytes` in one write; the response as hex and how long it took. */
    const send = async (bytes: Uint8Array) => {
      const t0 = Date.now();
      s.write(bytes);
      const r = await read(s, 10);
      return { hex: hex(r), ms: Date.now() - t0 };
    };
    const getRandomOk = async () => {
      const r = await send(tpmCommand(CC.GetRandom, [0, 4]));
      expect(r.hex.slice(0, 20)).toBe('800100000010' + '00000000');
    };
    return { s, send, getRandomOk };
  }
  const SIZE = '80010000000a00000142';

  it('(a) a commandSize smaller than the bytes in the chunk: TPM_RC_COMMAND_SIZE for the whole chunk, not two answers', async () => {
    const { s, send, getRandomOk } = await real();
    expect((await send(Buffer.from('80010000000a0000017b0008', 'hex'))).hex).toBe(SIZE);
    // two well-formed commands in one write: one answer (swtpm answers the same)
    expect((await send(Buffer.concat([tpmCommand(CC.GetRandom, [0, 4]), tpmCommand(CC.GetRandom, [0, 4])]))).hex).toBe(SIZE);
    await new Promise((r) => setTimeout(r, 2 * INCOMPLETE_MS));
    expect(s.bytesRead).toBe(20);
    await getRandomOk();
  });

  it('(b) a commandSize bigger than what arrives: answered TPM_RC_COMMAND_SIZE after a short silence', async () => {
    const { send, getRandomOk } = await real();
    const r = await send(Buffer.from('8001000000100000017b0008', 'hex'));
    expect(r.hex).toBe(SIZE);
    expect(r.ms).toBeGreaterThanOrEqual(INCOMPLETE_MS - 10);
    expect(r.ms).toBeLessThan(INCOMPLETE_MS + 500);
    await getRandomOk();
  });

  it('(b) a slow client whose chunks keep coming is still framed by commandSize', async () => {
    const { s, getRandomOk } = await real();
    const cmd = Buffer.from(tpmCommand(CC.GetRandom, [0, 4]));
    for (const part of [cmd.subarray(0, 4), cmd.subarray(4, 11), cmd.subarray(11)]) {
      s.write(part);
      await new Promise((r) => setTimeout(r, INCOMPLETE_MS / 2));
    }
    expect(hex(await read(s, 10)).slice(0, 20)).toBe('800100000010' + '00000000');
    await getRandomOk();
  });

  it('(c) commandSize < 10 or > max: the engine\'s verdict at once, and the connection stays open', async () => {
    const { send, getRandomOk } = await real();
    for (const [bytes, want] of [
      ['8001000000040000017b0008', SIZE],
      ['8001ffffffff0000017b0008', SIZE],
      ['800100001401' + '0000017b0008', SIZE],
      ['00000000000000000000', '80010000000a00000084'], // bad tag before bad size, as libtpms
      ['ffffffffffffffffffffffff', '80010000000a00000084'],
    ] as const) {
      const r = await send(Buffer.from(bytes, 'hex'));
      expect(r.hex, bytes).toBe(want);
      expect(r.ms, bytes).toBeLessThan(INCOMPLETE_MS);
      await getRandomOk();
    }
  });

  it('fewer than 10 bytes: swtpm waits for the header; vtpmd answers after a longer silence', { timeout: 10_000 }, async () => {
    const { send, getRandomOk } = await real();
    const r = await send(Buffer.from('800100000010', 'hex'));
    expect(r.hex).toBe(SIZE);
    expect(r.ms).toBeGreaterThanOrEqual(INCOMPLETE_HEADER_MS - 10);
    await getRandomOk();
  });
});
