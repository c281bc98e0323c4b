// The CUSE protocol layer against hand-built kernel messages (swtpm-compat §3): every opcode,
// the INIT handshake bytes, write/read through the real engine, partial reads, EBUSY, the PTM
// ioctls in host byte order, interrupts and poll, and malformed requests.
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/log.js';
import { capabilities } from '../../../src/control/handlers.js';
import { Device } from '../../../src/device/device.js';
import { realEngines } from '../../../src/device/engine-factory.js';
import { FUSE_MIN_READ_BUFFER } from '../../../src/frontends/cuse/kernel-structs.js';
import { CuseSession, MAX_WRITE, REQUEST_BUFFER_SIZE } from '../../../src/frontends/cuse/session.js';
import { DirStorage } from '../../../src/storage/storage.js';
import * as k from './kernel-messages.js';
import { hex, parseReply, u32le } from './kernel-messages.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

// PTM ioctl numbers as swtpm-compat §1.1 lists them (x86_64).
const PTM = {
  GET_CAPABILITY: 0x80085000,
  INIT: 0xc0045001,
  SHUTDOWN: 0x80045002,
  GET_TPMESTABLISHED: 0x80085003,
  SET_LOCALITY: 0xc0045004,
  RESET_TPMESTABLISHED: 0xc004500a,
  STOP: 0x8004500d,
  GET_CONFIG: 0x8008500e,
  SET_DATAFD: 0x8004500f,
  SET_BUFFERSIZE: 0xc0105010,
} as const;
const ioSize = (cmd: number) => (cmd >>> 16) & 0x3fff;
const ioDirIn = (cmd: number) => ((cmd >>> 30) & 1) !== 0;

const STARTUP_CLEAR = Uint8Array.from(Buffer.from('80010000000c000001440000', 'hex'));
const GET_RANDOM_16 = Uint8Array.from(Buffer.from('80010000000c0000017b0010', 'hex'));
const FATAL = '80010000000a00000101';

function setup(opts: { devMajor?: number; devMinor?: number; offer?: (response: Uint8Array) => void; takeWrites?: (maxBytes: number) => void } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpmd-cuse-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const device = new Device({ storage: new DirStorage({ dir }), engines: realEngines() });
  cleanups.push(() => void device.close());
  const replies: Uint8Array[] = [];
  let shutdowns = 0;
  let inits = 0;
  const session = new CuseSession({
    device,
    name: 'vtpm0',
    log: silentLogger,
    send: (b) => replies.push(Uint8Array.from(b)),
    onInit: () => inits++,
    onShutdown: () => shutdowns++,
    ...opts,
  });
  let unique = 100n;
  /** Sends one request and returns the replies it produced once everything settled. */
  const send = async (req: Uint8Array) => {
    session.handle(req);
    await session.settled();
    return replies.splice(0);
  };
  const next = () => (unique += 2n);
  /** A PTM ioctl with in/out sizes from its number, as the kernel sends restricted ioctls. */
  const ptm = async (cmd: number, input: Uint8Array = new Uint8Array(0)) => {
    const inSize = ioDirIn(cmd) ? ioSize(cmd) : 0;
    const padded = new Uint8Array(inSize);
    padded.set(input.subarray(0, inSize));
    const u = next();
    const [r, ...rest] = await send(k.ioctl(u, cmd, padded, ioSize(cmd)));
    expect(rest).toEqual([]);
    const p = parseReply(r!);
    expect(p.unique).toBe(u);
    expect(p.error).toBe(0);
    expect(p.len).toBe(r!.length);
    // fuse_ioctl_out: result 0 (the ioctl's return), flags/iovs 0; then the struct.
    expect(hex(p.payload.subarray(0, 16))).toBe('00'.repeat(16));
    return p.payload.subarray(16);
  };
  const tpm = async (command: Uint8Array) => {
    const u = next();
    const [w] = await send(k.write(u, command));
    expect(hex(w!)).toBe(hex(k.cat(k.le([24, 4], [0, 4], [u, 8], [command.length, 4], [0, 4]))));
    const [r] = await send(k.read(next(), 4096));
    return parseReply(r!).payload;
  };
  return { device, session, send, next, ptm, tpm, replies, counts: () => ({ shutdowns, inits }) };
}

describe('CUSE_INIT', () => {
  it('answers with 7.min(kernel,38), restricted ioctls, max_read/max_write 128 KiB and DEVNAME', async () => {
    const t = setup();
    const [r, ...rest] = await t.send(k.cuseInit(2n, 7, 37));
    expect(rest).toEqual([]);
    expect(hex(r!)).toBe(
      [
        '66000000', '00000000', '0200000000000000', // out header: len 102, error 0, unique 2
        '07000000', '25000000', '00000000', '00000000', // major 7, minor 37, unused, flags 0
        '00000200', '00000200', '00000000', '00000000', // max_read, max_write 131072; dev 0:0
        '00'.repeat(40), // spare[10]
        Buffer.from('DEVNAME=vtpm0\0').toString('hex'),
      ].join(''),
    );
    expect(t.session.initialized).toBe(true);
    expect(t.counts().inits).toBe(1);
  });

  it('caps the minor at 38 and sends --maj/--min', async () => {
    const t = setup({ devMajor: 250, devMinor: 3 });
    const [r] = await t.send(k.cuseInit(2n, 7, 41));
    const p = parseReply(r!);
    expect(hex(p.payload.subarray(4, 8))).toBe('26000000');
    expect(hex(p.payload.subarray(24, 32))).toBe('fa00000003000000');
  });

  it('refuses a kernel with another major version or minor < 11 (EPROTO)', async () => {
    const t = setup();
    const [a] = await t.send(k.cuseInit(2n, 8, 0));
    expect(hex(a!)).toBe('10000000' + 'b9ffffff' + '0200000000000000');
    const [b] = await t.send(k.cuseInit(4n, 7, 10));
    expect(parseReply(b!).error).toBe(-71);
    expect(t.session.initialized).toBe(false);
  });
});

it('the request buffer is as large as the kernel demands for the max_write we announce', () => {
  // fuse_dev_do_read: EINVAL below max(FUSE_MIN_READ_BUFFER, in_header + write_in + max_write).
  expect(REQUEST_BUFFER_SIZE).toBeGreaterThanOrEqual(Math.max(FUSE_MIN_READ_BUFFER, 40 + 40 + MAX_WRITE));
  expect(MAX_WRITE).toBeGreaterThanOrEqual(64 * 1024);
});

describe('OPEN / RELEASE', () => {
  it('allows one opener at a time: a second OPEN gets EBUSY until RELEASE', async () => {
    const t = setup();
    const [a] = await t.send(k.open(10n));
    expect(hex(a!)).toBe('20000000' + '00000000' + '0a00000000000000' + '0100000000000000' + '00000000' + '00000000');
    const [b] = await t.send(k.open(12n));
    expect(hex(b!)).toBe('10000000' + 'f0ffffff' + '0c00000000000000'); // -EBUSY (16)
    const [c] = await t.send(k.release(14n, 1n));
    expect(hex(c!)).toBe('10000000' + '00000000' + '0e00000000000000');
    const [d] = await t.send(k.open(16n));
    expect(parseReply(d!).error).toBe(0);
    expect(hex(parseReply(d!).payload.subarray(0, 8))).toBe('0200000000000000'); // fh 2
  });

  it('answers RELEASE even for an unknown fh or a short body', async () => {
    const t = setup();
    expect(parseReply((await t.send(k.release(2n, 99n)))[0]!).error).toBe(0);
    expect(parseReply((await t.send(k.request(k.OP.RELEASE, 4n)))[0]!).error).toBe(0);
  });

  it('refuses OPEN with ENODEV while closing', async () => {
    const t = setup();
    t.session.closing = true;
    expect(parseReply((await t.send(k.open(2n)))[0]!).error).toBe(-19);
  });
});

describe('WRITE / READ', () => {
  it('gives the fatal 10-byte response while the TPM is not initialised', async () => {
    const t = setup();
    expect(hex(await t.tpm(GET_RANDOM_16))).toBe(FATAL);
  });

  it('runs a command through the real engine after PTM_INIT; partial reads; 0 bytes once used up', async () => {
    const t = setup();
    expect(hex(await t.ptm(PTM.INIT, u32le(0)))).toBe('00000000');
    expect(hex(await t.tpm(STARTUP_CLEAR))).toBe('80010000000a00000000');
    const u = t.next();
    await t.send(k.write(u, GET_RANDOM_16));
    const [a] = await t.send(k.read(t.next(), 4));
    expect(hex(parseReply(a!).payload)).toBe('80010000'); // tag, first half of size
    const [b] = await t.send(k.read(t.next(), 6));
    expect(hex(parseReply(b!).payload)).toBe('001c00000000'); // size 28, rc 0
    const [c] = await t.send(k.read(t.next(), 4096));
    const rest = parseReply(c!).payload;
    expect(rest.length).toBe(18);
    expect(hex(rest.subarray(0, 2))).toBe('0010');
    const [d] = await t.send(k.read(t.next(), 4096));
    expect(hex(d!)).toBe(hex(k.cat(k.le([16, 4], [0, 4], [t.next() - 2n, 8]))));
    expect(parseReply(d!).payload.length).toBe(0);
  });

  it('answers a WRITE before its command runs and offers the response before handle() returns; READs resume where the offer was left', async () => {
    const offers: Uint8Array[] = [];
    const t = setup({ offer: (r) => offers.push(r.slice()) });
    await t.ptm(PTM.INIT, u32le(0));
    await t.tpm(STARTUP_CLEAR);
    offers.length = 0;
    const order: string[] = [];
    t.session['options'].offer = (r: Uint8Array) => (order.push('offer'), offers.push(r.slice()));
    const send = t.session['options'].send;
    t.session['options'].send = (b: Uint8Array) => (order.push('reply'), send(b));
    const device = t.session['options'].device;
    const executeTpmNow = device.executeTpmNow.bind(device);
    device.executeTpmNow = (c: Uint8Array) => (order.push('execute'), executeTpmNow(c));
    const [w] = await t.send(k.write(t.next(), GET_RANDOM_16));
    // The client is on its way to its READ while the engine runs; the offer is there before the
    // I/O layer reads the next request.
    expect(order).toEqual(['reply', 'execute', 'offer']);
    expect(parseReply(w!).error).toBe(0);
    expect(offers.length).toBe(1);
    expect(offers[0]!.length).toBe(28);
    // The I/O layer answered READs for 10 bytes of it; the session goes on from there.
    t.session.offerTaken(10);
    const [r] = await t.send(k.read(t.next(), 4096));
    expect(hex(parseReply(r!).payload)).toBe(hex(offers[0]!.subarray(10)));
    // All of it taken: the next READ gets nothing.
    await t.send(k.write(t.next(), GET_RANDOM_16));
    t.session.offerTaken(28);
    const [e] = await t.send(k.read(t.next(), 4096));
    expect(parseReply(e!).payload.length).toBe(0);
  });

  it('drops an unread remainder at the next write', async () => {
    const t = setup();
    await t.ptm(PTM.INIT, u32le(0));
    await t.tpm(STARTUP_CLEAR);
    await t.send(k.write(t.next(), GET_RANDOM_16));
    await t.send(k.read(t.next(), 4));
    // A second Startup: TPM_RC_INITIALIZE, and nothing of the GetRandom response is left.
    expect(hex(await t.tpm(STARTUP_CLEAR))).toBe('80010000000a00000100');
  });

  it('reads 0 bytes before any command', async () => {
    const t = setup();
    const [r] = await t.send(k.read(2n, 4096));
    expect(parseReply(r!)).toMatchObject({ len: 16, error: 0, unique: 2n });
  });

  it('truncates a write to 4096 bytes and says so', async () => {
    const t = setup();
    const big = new Uint8Array(5000);
    big.set(GET_RANDOM_16);
    const [w] = await t.send(k.write(2n, big));
    expect(hex(parseReply(w!).payload)).toBe('0010000000000000'); // size 4096
  });

  it('after PTM_STOP, the buffered response is dropped and commands get the fatal response', async () => {
    const t = setup();
    await t.ptm(PTM.INIT, u32le(0));
    await t.send(k.write(t.next(), STARTUP_CLEAR));
    expect(hex(await t.ptm(PTM.STOP))).toBe('00000000');
    expect(parseReply((await t.send(k.read(t.next(), 100)))[0]!).payload.length).toBe(0);
    expect(hex(await t.tpm(GET_RANDOM_16))).toBe(FATAL);
  });
});

describe('a command that cannot run at once (device busy)', () => {
  /** Holds the device's queue until release() is called. */
  function hold(device: Device) {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    void device.exclusive(() => gate);
    return release;
  }

  it('defers READ until the response is ready; EAGAIN with O_NONBLOCK; EBUSY for another write; poll and notify', async () => {
    const t = setup();
    await t.ptm(PTM.INIT, u32le(0));
    await t.tpm(STARTUP_CLEAR);
    const release = hold(t.device);
    t.session.handle(k.write(20n, GET_RANDOM_16));
    expect(parseReply(t.replies.shift()!)).toMatchObject({ error: 0, unique: 20n });
    t.session.handle(k.write(22n, GET_RANDOM_16));
    expect(parseReply(t.replies.shift()!)).toMatchObject({ error: -16, unique: 22n });
    t.session.handle(k.read(24n, 4096, { flags: 2 | 0o4000 }));
    expect(parseReply(t.replies.shift()!)).toMatchObject({ error: -11, unique: 24n });
    t.session.handle(k.poll(26n, 0xabcdn, 1));
    const p = parseReply(t.replies.shift()!);
    expect(hex(p.payload)).toBe('0401000000000000'); // POLLOUT|POLLWRNORM only
    t.session.handle(k.read(28n, 4096));
    expect(t.replies).toEqual([]);
    release();
    await t.session.settled();
    const [read, notify] = t.replies.splice(0);
    expect(parseReply(read!)).toMatchObject({ error: 0, unique: 28n });
    expect(parseReply(read!).payload.length).toBe(28);
    // FUSE_NOTIFY_POLL: unique 0, error = notify code 1, fuse_notify_poll_wakeup_out { kh }.
    expect(hex(notify!)).toBe('18000000' + '01000000' + '0000000000000000' + 'cdab000000000000');
    const [ready] = await t.send(k.poll(30n, 1n, 0));
    expect(hex(parseReply(ready!).payload)).toBe('4501000000000000'); // IN|OUT|RDNORM|WRNORM
  });

  it('lets the I/O layer answer WRITEs (up to 4096 bytes) only while a write is a command taken at once; takeCommand runs one as a WRITE would, without a reply', async () => {
    const told: number[] = [];
    const offers: Uint8Array[] = [];
    const t = setup({ takeWrites: (max) => told.push(max), offer: (r) => offers.push(r.slice()) });
    await t.ptm(PTM.INIT, u32le(0));
    expect(told).toEqual([4096]); // told once, not again for every request
    await t.tpm(STARTUP_CLEAR);
    // A command whose WRITE the I/O layer answered: no reply from the session, the response offered.
    offers.length = 0;
    t.session.takeCommand(GET_RANDOM_16);
    expect(t.replies).toEqual([]);
    expect(offers.map((o) => o.length)).toEqual([28]);
    const [r] = await t.send(k.read(t.next(), 4096));
    expect(hex(parseReply(r!).payload)).toBe(hex(offers[0]!));
    // A command waiting for the device: the next WRITE must get EBUSY from the session.
    const release = hold(t.device);
    t.session.takeCommand(GET_RANDOM_16);
    expect(told).toEqual([4096, 0]);
    release();
    await t.session.settled();
    expect(told).toEqual([4096, 0, 4096]);
    // SET mode: a write is state-blob data, for the session; told before the ioctl's reply.
    await t.ptm(PTM.STOP);
    const sendReply = t.session['options'].send;
    t.session['options'].send = (b: Uint8Array) => (told.push(-1), sendReply(b));
    const SET_STATEBLOB = 0xcc0c500c;
    await t.ptm(SET_STATEBLOB, k.le([0, 4], [1, 4], [0, 4]));
    expect(told).toEqual([4096, 0, 4096, 0, -1]);
    const [w] = await t.send(k.write(t.next(), Uint8Array.of(1, 2, 3)));
    expect(parseReply(w!).error).toBe(0);
    await t.ptm(SET_STATEBLOB, k.le([0, 4], [1, 4], [0, 4]));
    expect(told.filter((x) => x >= 0)).toEqual([4096, 0, 4096, 0, 4096]);
  });

  it('a command that throws after its WRITE was answered leaves the fatal response for the READ, whoever answered the WRITE', async () => {
    const t = setup({ offer: () => undefined });
    await t.ptm(PTM.INIT, u32le(0));
    t.device.executeTpmNow = () => {
      throw new Error('boom');
    };
    t.session.takeCommand(GET_RANDOM_16);
    expect(t.replies).toEqual([]);
    const [r] = await t.send(k.read(t.next(), 4096));
    expect(hex(parseReply(r!).payload)).toBe(FATAL);
    // Answered by the session: one reply (the WRITE's), then the same for the READ.
    const u = t.next();
    const replies = await t.send(k.write(u, GET_RANDOM_16));
    expect(replies.map((x) => parseReply(x))).toMatchObject([{ unique: u, error: 0 }]);
    const [r2] = await t.send(k.read(t.next(), 4096));
    expect(hex(parseReply(r2!).payload)).toBe(FATAL);
  });

  it('INTERRUPT of a waiting READ answers it with EINTR; INTERRUPT itself gets no reply', async () => {
    const t = setup();
    await t.ptm(PTM.INIT, u32le(0));
    const release = hold(t.device);
    t.session.handle(k.write(40n, STARTUP_CLEAR));
    t.replies.splice(0);
    t.session.handle(k.read(42n, 4096));
    t.session.handle(k.interrupt(42n));
    expect(t.replies.splice(0).map((r) => parseReply(r))).toMatchObject([{ len: 16, error: -4, unique: 42n }]);
    t.session.handle(k.interrupt(999n)); // unknown: ignored
    release();
    await t.session.settled();
    expect(t.replies.splice(0).map(hex)).toEqual([]);
    expect(hex(parseReply((await t.send(k.read(44n, 100)))[0]!).payload)).toBe('80010000000a00000000');
  });
});

describe('PTM ioctls (host-endian structs)', () => {
  it('GET_CAPABILITY: a bare u64 with the bits of what is implemented, without SET_DATAFD', async () => {
    const t = setup();
    const caps = await t.ptm(PTM.GET_CAPABILITY);
    const value = Number(Buffer.from(caps).readBigUInt64LE(0));
    expect(hex(caps)).toBe(hex(k.le([capabilities({ fdPassing: false }), 8])));
    expect(value & ~0x16fff).toBe(0); // within swtpm cuse's mask: no SET_DATAFD, no SEND_COMMAND_HEADER
    expect(value & 0x348f & ~(1 << 12)).toBe(0x348f & ~(1 << 12)); // QEMU's required bits but SET_DATAFD
  });

  it('SET_LOCALITY: 0..4 accepted (used by later commands), 5 → TPM_BAD_LOCALITY 0x3d', async () => {
    const t = setup();
    expect(hex(await t.ptm(PTM.SET_LOCALITY, Uint8Array.of(2, 0xee, 0xee, 0xee)))).toBe('00000000');
    expect(t.device.locality).toBe(2);
    expect(hex(await t.ptm(PTM.SET_LOCALITY, Uint8Array.of(5)))).toBe('3d000000');
    expect(t.device.locality).toBe(2);
  });

  it('INIT, GET_TPMESTABLISHED gate, STOP, SET_BUFFERSIZE query/set, GET_CONFIG', async () => {
    const t = setup();
    expect(hex(await t.ptm(PTM.GET_TPMESTABLISHED))).toBe('0a00000000000000');
    expect(hex(await t.ptm(PTM.SET_BUFFERSIZE, u32le(0)))).toBe('00000000' + '00100000' + 'f80a0000' + '00100000');
    expect(hex(await t.ptm(PTM.INIT, u32le(0)))).toBe('00000000');
    expect(t.device.running).toBe(true);
    expect(hex(await t.ptm(PTM.GET_TPMESTABLISHED))).toBe('0000000000000000');
    expect(hex(await t.ptm(PTM.SET_BUFFERSIZE, u32le(4000)))).toBe('0a000000' + '00'.repeat(12));
    expect(hex(await t.ptm(PTM.STOP))).toBe('00000000');
    expect(t.device.running).toBe(false);
    expect(hex(await t.ptm(PTM.SET_BUFFERSIZE, u32le(4000)))).toBe('00000000' + 'a00f0000' + 'f80a0000' + '00100000');
    expect(hex(await t.ptm(PTM.GET_CONFIG))).toBe('00'.repeat(8));
  });

  it('RESET_TPMESTABLISHED answers 0x3d for locality > 4 (swtpm cuse would hang)', async () => {
    const t = setup();
    await t.ptm(PTM.INIT, u32le(0));
    expect(hex(await t.ptm(PTM.RESET_TPMESTABLISHED, Uint8Array.of(7)))).toBe('3d000000');
    expect(hex(await t.ptm(PTM.RESET_TPMESTABLISHED, Uint8Array.of(3)))).toBe('00000000');
  });

  it('SHUTDOWN answers, then asks the daemon to end', async () => {
    const t = setup();
    await t.ptm(PTM.INIT, u32le(0));
    expect(hex(await t.ptm(PTM.SHUTDOWN))).toBe('00000000');
    expect(t.counts().shutdowns).toBe(1);
    expect(t.device.running).toBe(false);
  });

  it('unknown ioctls and SET_DATAFD get EINVAL', async () => {
    const t = setup();
    for (const [u, cmd] of [[2n, 0x5401], [4n, PTM.SET_DATAFD], [6n, 0xc0045063], [8n, 0x80085000 | (1 << 16)]] as const) {
      const [r] = await t.send(k.ioctl(u, cmd, new Uint8Array(0), 8));
      expect(hex(r!)).toBe('10000000' + 'eaffffff' + hex(k.le([u, 8])));
    }
  });
});

describe('other opcodes and malformed requests', () => {
  it('FLUSH, FSYNC and unknown opcodes get ENOSYS; FORGET gets no reply', async () => {
    const t = setup();
    for (const op of [k.OP.FLUSH, k.OP.FSYNC, 9999]) {
      const [r] = await t.send(k.request(op, 2n, new Uint8Array(16)));
      expect(parseReply(r!)).toMatchObject({ len: 16, error: -38, unique: 2n });
    }
    expect(await t.send(k.request(k.OP.FORGET, 4n, new Uint8Array(8)))).toEqual([]);
  });

  it('ignores a request shorter than the header; EINVAL for a length mismatch or a short body', async () => {
    const t = setup();
    expect(await t.send(new Uint8Array(10))).toEqual([]);
    expect(await t.send(new Uint8Array(0))).toEqual([]);
    const cases = [
      k.request(k.OP.READ, 2n, new Uint8Array(40), { len: 100 }), // len ≠ bytes
      k.request(k.OP.READ, 2n, new Uint8Array(12)), // short fuse_read_in
      k.request(k.OP.OPEN, 2n, new Uint8Array(4)),
      k.request(k.OP.CUSE_INIT, 2n, new Uint8Array(8)),
      k.request(k.OP.IOCTL, 2n, new Uint8Array(20)),
      k.request(k.OP.POLL, 2n, new Uint8Array(10)),
      k.request(k.OP.WRITE, 2n, new Uint8Array(30)),
      k.write(2n, new Uint8Array(10), { size: 11 }), // size beyond the data
      k.ioctl(2n, PTM.INIT, new Uint8Array(2), 4, { inSize: 4 }), // in_size beyond the data
    ];
    for (const req of cases) {
      const replies = await t.send(req);
      expect(replies.map((r) => hex(r))).toEqual(['10000000' + 'eaffffff' + '0200000000000000']);
    }
  });

  it('survives random garbage: never throws, every reply is a well-formed header', async () => {
    const t = setup();
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const ops = [k.OP.OPEN, k.OP.READ, k.OP.WRITE, k.OP.RELEASE, k.OP.IOCTL, k.OP.POLL, k.OP.INTERRUPT, k.OP.CUSE_INIT, 7];
    for (let i = 0; i < 500; i++) {
      const body = new Uint8Array(rnd() % 120);
      for (let j = 0; j < body.length; j++) body[j] = rnd() & 0xff;
      const req = k.request(ops[rnd() % ops.length]!, BigInt(2 * i + 2), body, rnd() % 8 === 0 ? { len: rnd() % 200 } : {});
      t.session.handle(req);
    }
    await t.session.settled();
    for (const r of t.replies) {
      const p = parseReply(r);
      expect(p.len).toBe(r.length);
      expect(p.error).toBeLessThanOrEqual(0);
      expect(p.error).toBeGreaterThanOrEqual(-511);
    }
  });
});
