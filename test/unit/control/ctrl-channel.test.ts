// Every implemented control command over a real control connection (socket layout, big-endian),
// against a Device with a fake engine: success and error replies, byte for byte.
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CMD, PTM_CAP, PTM_CAP_REQUIRED_BY_QEMU } from '../../../src/control/codes.js';
import { capabilities, CONTROL_TABLE } from '../../../src/control/handlers.js';
import { Device } from '../../../src/device/device.js';
import { CtrlConnection } from '../../../src/frontends/socket/ctrl-channel.js';
import { crc32 } from '../../../src/storage/envelope.js';
import { CC, fakeWorld, tpmCommand } from '../device/fake-engine.js';

let server: net.Server;
let port: number;
let device: Device;
let world: ReturnType<typeof fakeWorld>;
let shutdowns: number;
let adopted: (net.Socket | null)[];

beforeEach(async () => {
  world = fakeWorld();
  device = new Device({ storage: world.storage, engines: world.factory });
  shutdowns = 0;
  adopted = [];
  server = net.createServer((s) => {
    new CtrlConnection(s, {
      device,
      log: { error() {}, warn() {}, info() {}, debug() {}, close() {} },
      fdPassing: true,
      adoptDataSocket: (fd) => {
        adopted.push(fd);
        return fd ? 0 : 3;
      },
      onShutdown: () => shutdowns++,
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
afterEach(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

/** Sends the hex chunks (separate writes, `gapMs` apart) and returns the reply as hex ('' if closed without one). */
async function ctrl(chunks: string | string[], gapMs = 0): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', () => r()));
  const got: Buffer[] = [];
  const done = new Promise<string>((resolve) => {
    let idle: NodeJS.Timeout | undefined;
    s.on('data', (d) => {
      got.push(d);
      clearTimeout(idle);
      idle = setTimeout(() => resolve(Buffer.concat(got).toString('hex')), 40);
    });
    s.on('close', () => resolve(Buffer.concat(got).toString('hex')));
  });
  for (const c of [chunks].flat()) {
    s.write(Buffer.from(c.replace(/ /g, ''), 'hex'));
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  const out = await done;
  s.destroy();
  return out;
}

const running = async () => {
  expect(await ctrl('00000002 00000000')).toBe('00000000');
};

describe('control channel (socket layout)', () => {
  it('GET_CAPABILITY: result 0 and the mask of implemented commands', async () => {
    // every control bit but SEND_COMMAND_HEADER (bit 15: data-channel framing, not implemented)
    expect(await ctrl('00000001')).toBe('00000000' + '00017fff');
    expect(capabilities({ fdPassing: true }) & PTM_CAP_REQUIRED_BY_QEMU).toBe(0x348f);
    expect(capabilities({ fdPassing: false }) & PTM_CAP.SET_DATAFD).toBe(0);
  });

  it('unknown commands: 00 00 00 0a', async () => {
    for (const code of ['000000ff', '00000000', '00000014']) {
      expect(await ctrl(code)).toBe('0000000a');
    }
    expect(CONTROL_TABLE.has(0x14)).toBe(false);
  });

  it('INIT: body exactly 4 bytes; manufactures and starts the TPM', async () => {
    expect(await ctrl('00000002 00000000 00')).toBe('00000003');
    expect(device.running).toBe(false);
    await running();
    expect(device.running).toBe(true);
    expect(world.storage.permall).not.toBeNull();
  });

  it('INIT failure (damaged state): 00 00 00 09, process keeps serving, a later INIT works', async () => {
    world.storage.failLoad = new Error('damaged');
    expect(await ctrl('00000002 00000000')).toBe('00000009');
    world.storage.failLoad = null;
    await running();
  });

  it('a body that stays short is answered 00 00 00 03 after 500 ms (newer swtpm; 0.7.1 closes)', async () => {
    const t0 = Date.now();
    expect(await ctrl('00000002 0000')).toBe('00000003');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    // the TPM was not touched and the connection is still usable
    expect(world.engines).toHaveLength(0);
  });

  it('short bodies after 500 ms: gate first (0x0a while stopped), then length (0x03); < 4 bytes → 0x03', async () => {
    expect(await ctrl('0000000b')).toBe('0000000a'); // RESET_TPMESTABLISHED, TPM stopped
    expect(await ctrl('00000005')).toBe('00000003'); // SET_LOCALITY without loc
    expect(await ctrl('0000')).toBe('00000003'); // not even a command code
    await running();
    expect(await ctrl('0000000b')).toBe('00000003'); // RESET_TPMESTABLISHED without loc, running
  });

  it('after a timed-out request the connection serves the next one', async () => {
    const s = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => s.once('connect', () => r()));
    const replies: Buffer[] = [];
    s.on('data', (d) => replies.push(d));
    s.write(Buffer.from('00000002 00'.replace(/ /g, ''), 'hex'));
    await new Promise((r) => setTimeout(r, 650));
    s.write(Buffer.from('0000000200000000', 'hex'));
    await new Promise((r) => setTimeout(r, 100));
    s.destroy();
    expect(Buffer.concat(replies).toString('hex')).toBe('00000003' + '00000000');
  });

  it('a body split across writes within 500 ms is collected', async () => {
    expect(await ctrl(['0000', '0002 0000', '0000'], 20)).toBe('00000000');
  });

  it('GET_TPMESTABLISHED: needs a running TPM; res, bit, 3 pad', async () => {
    expect(await ctrl('00000004')).toBe('0000000a');
    await running();
    expect(await ctrl('00000004 00')).toBe('00000003');
    expect(await ctrl('00000004')).toBe('00000000' + '00000000');
    world.engine().tpmEstablished = true;
    expect(await ctrl('00000004')).toBe('00000000' + '01000000');
  });

  it('RESET_TPMESTABLISHED: running; 1–4 byte loc; only locality 3 or 4', async () => {
    expect(await ctrl('0000000b 03')).toBe('0000000a');
    await running();
    world.engine().tpmEstablished = true;
    device.locality = 0;
    expect(await ctrl('0000000b 00')).toBe('0000003d');
    expect(await ctrl('0000000b 05')).toBe('0000003d');
    expect(device.tpmEstablished).toBe(true);
    expect(await ctrl('0000000b 03000000')).toBe('00000000');
    expect(device.tpmEstablished).toBe(false);
    expect(await ctrl('0000000b 04')).toBe('00000000');
    expect(device.locality).toBe(0);
  });

  it('SET_LOCALITY: 1–4 bytes, 0..4 accepted, 5 → 0x3d, works while stopped', async () => {
    expect(await ctrl('00000005 04')).toBe('00000000');
    expect(device.locality).toBe(4);
    expect(await ctrl('00000005 02000000')).toBe('00000000');
    expect(device.locality).toBe(2);
    expect(await ctrl('00000005 05')).toBe('0000003d');
    expect(device.locality).toBe(2);
  });

  it('CANCEL_TPM_CMD: running, empty body', async () => {
    expect(await ctrl('00000009')).toBe('0000000a');
    await running();
    expect(await ctrl('00000009')).toBe('00000000');
    expect(await ctrl('00000009 00')).toBe('00000003');
  });

  it('STOP: auto-shutdown, TPM stopped, TPM commands then fail; body must be empty', async () => {
    await running();
    await device.executeTpm(tpmCommand(CC.Startup, [0, 0]));
    expect(await ctrl('0000000e 00')).toBe('00000003');
    expect(await ctrl('0000000e')).toBe('00000000');
    expect(device.running).toBe(false);
    expect(world.engine().executed.at(-1)).toMatchObject({ cc: CC.Shutdown, su: 1 });
    expect(Buffer.from(await device.executeTpm(tpmCommand(CC.GetRandom))).toString('hex')).toBe('80010000000a00000101');
  });

  it('GET_CONFIG: 8 zero bytes; extra body → 0x03', async () => {
    expect(await ctrl('0000000f')).toBe('0000000000000000');
    expect(await ctrl('0000000f 00')).toBe('00000003');
  });

  it('SET_BUFFERSIZE: query always; set only while stopped; clamped; res,size,min,max', async () => {
    expect(await ctrl('00000011 00000000')).toBe('00000000' + '00001000' + '00000af8' + '00001000');
    expect(await ctrl('00000011 00000064')).toBe('00000000' + '00000af8' + '00000af8' + '00001000');
    expect(await ctrl('00000011 00002710')).toBe('00000000' + '00001000' + '00000af8' + '00001000');
    expect(await ctrl('00000011 00000fa0')).toBe('00000000' + '00000fa0' + '00000af8' + '00001000');
    expect(await ctrl('00000011 0000')).toBe('00000003');
    await running();
    expect(world.engine().bufferSize).toBe(4000);
    expect(await ctrl('00000011 00000fa0')).toBe('0000000a');
    expect(await ctrl('00000011 00000000')).toBe('00000000' + '00000fa0' + '00000af8' + '00001000');
  });

  it('SET_DATAFD without a descriptor: 0x03 from the front end', async () => {
    expect(await ctrl('00000010')).toBe('00000003');
    expect(adopted).toEqual([null]);
  });

  it('SHUTDOWN: body must be empty; replies, then asks the process to end', async () => {
    await running();
    expect(await ctrl('00000003 00')).toBe('00000003');
    expect(shutdowns).toBe(0);
    expect(await ctrl('00000003')).toBe('00000000');
    expect(shutdowns).toBe(1);
    expect(device.running).toBe(false);
  });

  it('several commands on one connection, one reply each', async () => {
    const s = net.connect(port, '127.0.0.1');
    const replies: string[] = [];
    await new Promise<void>((r) => s.once('connect', () => r()));
    for (const c of ['00000001', '0000000500', '0000000f']) {
      const got = new Promise<string>((r) => s.once('data', (d) => r(d.toString('hex'))));
      s.write(Buffer.from(c, 'hex'));
      replies.push(await got);
    }
    s.destroy();
    expect(replies).toEqual(['0000000000017fff', '00000000', '0000000000000000']);
  });

  it('HASH_START / HASH_DATA / HASH_END: running, exact bodies; HASH_DATA takes u32 length + data', async () => {
    for (const c of ['00000006', '00000007 00000001 61', '00000008']) expect(await ctrl(c)).toBe('0000000a');
    await running();
    expect(await ctrl('00000006 00')).toBe('00000003');
    expect(await ctrl('00000006')).toBe('00000000');
    expect(await ctrl('00000007 00000004 31323334')).toBe('00000000');
    // the data may come in several writes; no 500 ms deadline once the length is in
    expect(await ctrl(['00000007 00000003', '6162', '63'], 300)).toBe('00000000');
    expect(await ctrl('00000007 000000')).toBe('00000003'); // no complete length: after 500 ms
    expect(await ctrl('00000008 00')).toBe('00000003');
    expect(await ctrl('00000008')).toBe('00000000');
    expect(world.engine().hashing).toEqual(['start', 'data 31323334', 'data 616263', 'end']);
    expect(device.tpmEstablished).toBe(true);
  });

  it('HASH_DATA above the socket limit: 00 00 00 09 at once, without the data', async () => {
    await running();
    expect(await ctrl('00000007 01000001')).toBe('00000009');
    expect(world.engine().hashing).toEqual([]);
  });

  it('STORE_VOLATILE: running, empty body; writes the volatile state', async () => {
    expect(await ctrl('0000000a')).toBe('0000000a');
    await running();
    expect(await ctrl('0000000a 00')).toBe('00000003');
    expect(await ctrl('0000000a')).toBe('00000000');
    expect(Buffer.from(world.storage.volatile!).toString('hex')).toBe('5600010203');
  });

  it('INIT resumes from the volatile file; flag 1 deletes it afterwards, flag 0 keeps it', async () => {
    world.storage.permall = new Uint8Array([9]);
    world.storage.volatile = new Uint8Array([0x56, 1, 9]);
    await running();
    expect(world.engine().restoredVolatile).toEqual(new Uint8Array([0x56, 1, 9]));
    expect(world.storage.volatile).not.toBeNull();
    expect(await ctrl('00000002 00000001')).toBe('00000000');
    expect(world.engine().restoredVolatile).toEqual(new Uint8Array([0x56, 1, 9]));
    expect(world.engine().started).toBe(true);
    expect(world.storage.volatile).toBeNull();
    // a damaged volatile file fails INIT and nothing is deleted
    world.storage.volatile = new Uint8Array([0xff]);
    expect(await ctrl('00000002 00000001')).toBe('00000009');
    expect(device.running).toBe(false);
    expect(world.storage.volatile).toEqual(new Uint8Array([0xff]));
  });

  const blobOf = (data: string) => {
    // swtpm-compat §5.2: header v2/min1/10, flags 0x04, totlen; TLV 4 { TLV 1 data, TLV 0x7601 crc32 }
    const d = Buffer.from(data, 'hex');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(d));
    const inner = Buffer.concat([Buffer.from([0, 1]), u32(d.length), d, Buffer.from([0x76, 0x01]), u32(4), crc]);
    const body = Buffer.concat([Buffer.from([0, 4]), u32(inner.length), inner]);
    return Buffer.concat([Buffer.from([2, 1, 0, 10, 0, 4]), u32(10 + body.length), body]).toString('hex');
  };

  it('GET_STATEBLOB: running; PERMANENT in the 0x04 envelope from offset; 16-byte header on errors', async () => {
    expect(await ctrl('0000000c 00000000 00000001 00000000')).toBe('0000000a');
    await running();
    const blob = blobOf('010203');
    const len = (n: number) => n.toString(16).padStart(8, '0');
    expect(await ctrl('0000000c 00000000 00000001 00000000')).toBe('00000000' + '00000000' + len(blob.length / 2).repeat(2) + blob);
    expect(await ctrl('0000000c 00000000 00000001 00000005')).toBe('00000000' + '00000000' + len(blob.length / 2 - 5).repeat(2) + blob.slice(10));
    expect(await ctrl('0000000c 00000000 00000001 00001000')).toBe('00000000' + '00000000' + '00000000' + '00000000');
    // SAVESTATE: a TPM 2 has none → TPM_RETRY with the full header; the storage lock is released
    expect(await ctrl('0000000c 00000001 00000003 00000000')).toBe('00000800' + '00000000'.repeat(3));
    expect(world.storage.locked).toBe(false);
    expect(await ctrl('0000000c 00000000 00000009 00000000')).toBe('00000009' + '00000000'.repeat(3));
    expect(await ctrl('0000000c 00000000 00000001 0000')).toBe('00000003'); // short: 4 bytes only
  });

  it('GET_STATEBLOB VOLATILE: stores, returns and deletes the volatile state', async () => {
    await running();
    const blob = blobOf('5600010203');
    expect(await ctrl('0000000c 00000000 00000002 00000000')).toBe('00000000' + '00000000' + '00000025'.repeat(2) + blob);
    expect(world.storage.volatile).toBeNull();
    expect(world.events.slice(-2)).toEqual(['store volatile 5', 'delete volatile']);
  });

  it('SET_STATEBLOB: stopped only; cached until INIT, which writes permall; length 0 clears', async () => {
    await running();
    const hdr = (flags: number, type: number, len: number) => [flags, type, len].map((v) => v.toString(16).padStart(8, '0')).join('');
    expect(await ctrl('0000000d ' + hdr(0, 1, 0))).toBe('0000000a');
    expect(await ctrl('0000000e')).toBe('00000000');
    const blob = blobOf('070809');
    // header and blob in two writes, as QEMU sends them
    expect(await ctrl(['0000000d ' + hdr(0, 1, blob.length / 2), blob], 50)).toBe('00000000');
    expect(world.storage.permall).toEqual(new Uint8Array([1, 2, 3]));
    const v = blobOf('56000708');
    expect(await ctrl('0000000d ' + hdr(0, 2, v.length / 2) + v)).toBe('00000000');
    await running();
    expect(world.storage.permall).toEqual(new Uint8Array([7, 8, 9]));
    expect(world.engine().state).toEqual(new Uint8Array([7, 8, 9]));
    expect(world.engine().restoredVolatile).toEqual(new Uint8Array([0x56, 0, 7, 8]));
    // consumed: the next INIT loads the files again
    expect(await ctrl('0000000e')).toBe('00000000');
    expect(await ctrl('0000000d ' + hdr(0, 1, blob.length / 2) + blob)).toBe('00000000');
    expect(await ctrl('0000000d ' + hdr(0, 1, 0))).toBe('00000000'); // clears it
    world.storage.permall = new Uint8Array([4]);
    await running();
    expect(world.engine().state).toEqual(new Uint8Array([4]));
  });

  it('SET_STATEBLOB errors: encrypted 0x0d, damaged 0x03, unloadable 0x09, savestate data 0x34, > 512 KiB 0x09, lock 0x1f', async () => {
    const hdr = (flags: number, type: number, len: number) => [flags, type, len].map((v) => v.toString(16).padStart(8, '0')).join('');
    const blob = blobOf('070809');
    expect(await ctrl('0000000d ' + hdr(2, 1, blob.length / 2) + blob)).toBe('0000000d');
    const fileKey = blob.slice(0, 8) + '0005' + blob.slice(12);
    expect(await ctrl('0000000d ' + hdr(0, 1, blob.length / 2) + fileKey)).toBe('0000000d');
    const corrupt = blob.slice(0, -2) + 'ff';
    expect(await ctrl('0000000d ' + hdr(0, 1, blob.length / 2) + corrupt)).toBe('00000003');
    expect(await ctrl('0000000d ' + hdr(0, 1, 4) + '02010000')).toBe('00000003');
    const unloadable = blobOf('ff');
    expect(await ctrl('0000000d ' + hdr(0, 1, unloadable.length / 2) + unloadable)).toBe('00000009');
    expect(await ctrl('0000000d ' + hdr(0, 3, 1) + '00')).toBe('00000034');
    expect(await ctrl('0000000d ' + hdr(0, 3, 0))).toBe('00000000');
    expect(await ctrl('0000000d ' + hdr(0, 1, 512 * 1024 + 1))).toBe('00000009');
    expect(await ctrl('0000000d ' + hdr(0, 1, 0) + '00')).toBe('00000003'); // more data than announced
    world.storage.locked = false;
    world.storage.lockBusy = 1;
    expect(await ctrl('0000000d ' + hdr(0, 1, 0))).toBe('0000001f');
    expect(shutdowns).toBe(1);
  });

  it('GET_INFO: any state; totlength includes the NUL; offset pages; offset ≥ strlen → 0x03', async () => {
    const spec = '{"TPMSpecification":{"family":"2.0","level":0,"revision":164}}';
    const attrs = '{"TPMAttributes":{"manufacturer":"id:00001014","version":"id:20191023","model":"swtpm"}}';
    const info = (flags: number, offset = 0) => ctrl('00000012 ' + flags.toString(16).padStart(16, '0') + offset.toString(16).padStart(8, '0') + '00000000');
    const len = (n: number) => n.toString(16).padStart(8, '0');
    const nul = (s: string) => Buffer.from(s + '\0').toString('hex');
    expect(await info(1)).toBe('00000000' + len(spec.length + 1).repeat(2) + nul(spec));
    expect(await info(2)).toBe('00000000' + len(attrs.length + 1).repeat(2) + nul(attrs));
    const both = '{' + spec.slice(1, -1) + ',' + attrs.slice(1, -1) + '}';
    expect(await info(3)).toBe('00000000' + len(both.length + 1).repeat(2) + nul(both));
    expect(await info(0x100)).toBe('00000000' + '00000003'.repeat(2) + '7b7d00');
    expect(await info(1, 60)).toBe('00000000' + len(spec.length + 1) + len(spec.length + 1 - 60) + nul(spec.slice(60)));
    expect(await info(1, spec.length)).toBe('00000003');
    expect(await ctrl('00000012 0000000000000001 00000000')).toBe('00000003'); // 12 of 16 bytes
  });

  it('LOCK_STORAGE: any state; u32 retries, 10 ms apart; 0x09 when the lock stays taken', async () => {
    world.storage.lockBusy = 3;
    expect(await ctrl('00000013 00000001')).toBe('00000009');
    expect(world.storage.locked).toBe(false);
    const t0 = Date.now();
    expect(await ctrl('00000013 00000005')).toBe('00000000');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(9);
    expect(world.storage.locked).toBe(true);
    expect(await ctrl('00000013 00000000')).toBe('00000000'); // held already
    expect(await ctrl('00000013 00')).toBe('00000003');
  });
});

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
